"""A drone-models Crazyflie (``drone_models.first_principles``, parameters identified on real vehicles by the
package's authors) as a foreign robot.

What the model is (read from its source, drone-models 0.1.0): Newton-Euler rigid body; per-rotor thrust and drag
torque quadratic in RPM with an offset (``rpm2thrust``, ``rpm2torque``: fitted polynomials, not ``kf rpm^2``);
rotor speed dynamics with separate, nonlinear spin-up and spin-down laws (``rotor_dyn_coef``); linear body-frame
drag (``drag_matrix``); the propellers' gyroscopic torques (``prop_inertia``). It gives derivatives; this module
integrates them (RK4 for position, velocity, rates and rotor speeds at ``substep_s``, the attitude by the exact
rotation of the body rates, as the package's docs ask) and adds a ground: no penetration, the vehicle rests.

Frames: world z up; body x forward, y left, z up; quaternion (x, y, z, w). Its motors (``mixing_matrix``): 1
front-right, 2 back-right, 3 back-left, 4 front-left at +-L per axis, motor 1's reaction yaws the body -z (the
real Crazyflie's M1 spins counter-clockwise). Command: RPM per motor, as the project's.

Vehicles (``data/params.toml``): cf2x_L250 31.9 g, cf2x_P250 31.8 g, cf2x_T350 37.9 g (Crazyflie 2.x with three
propellers), cf21B_500 43.4 g (Crazyflie 2.1 Brushless). Only cf21B_500 hovers at an RPM and thrust-to-weight
inside the project's training range (docs/sim2sim.md); it is the default.
"""

from __future__ import annotations

import math
import os

import numpy as np

from drivers.foreign_sil.common import Rotors, VehicleState, quat_multiply, quat_z

DEFAULT_MODEL = "cf21B_500"


def _import_drone_models():
    # drone_models refuses to import once scipy is imported unless SCIPY_ARRAY_API=1 (it wants scipy's array-API
    # mode for jax/torch arrays). Only numpy arrays go in here, which scipy handles the same either way.
    os.environ.setdefault("SCIPY_ARRAY_API", "1")
    from drone_models.core import load_params
    from drone_models.first_principles import dynamics

    return load_params, dynamics


class DroneModelsQuadrotor:
    """One drone-models vehicle with its own identified parameters (none of the project's)."""

    name = "drone_models"

    def __init__(self, model: str = DEFAULT_MODEL, substep_s: float = 0.005):
        load_params, dynamics = _import_drone_models()
        self.model = model
        params = load_params("first_principles", model)
        keys = ("mass", "L", "prop_inertia", "gravity_vec", "J", "J_inv", "rpm2thrust", "rpm2torque")
        keys += ("mixing_matrix", "drag_matrix", "rotor_dyn_coef")
        self.params = {k: np.asarray(params[k], dtype=float) for k in keys}
        self._dynamics = dynamics
        self.mass_kg = float(self.params["mass"])
        mix, arm = self.params["mixing_matrix"], float(self.params["L"])
        # torque_x = L * mix[0] . f = sum(y_i f_i), torque_y = L * mix[1] . f = -sum(x_i f_i)
        self.rotors = Rotors(np.stack([-arm * mix[1], arm * mix[0]], axis=1), mix[2].copy())
        self.substep_s = substep_s
        self.reset(0.0, 0.0)

    def reset(self, yaw_rad: float, height_m: float) -> None:
        self.pos = np.array([0.0, 0.0, float(height_m)])
        self.quat = quat_z(yaw_rad)  # (w, x, y, z) here; (x, y, z, w) at the package's door
        self.vel, self.rates = np.zeros(3), np.zeros(3)
        self.rotor_rpm = np.full(4, self.hover_rpm() if height_m > 0 else 0.0)

    def hover_rpm(self) -> float:
        c0, c1, c2 = self.params["rpm2thrust"]
        f = self.mass_kg * 9.81 / 4 - c0
        return (-c1 + math.sqrt(c1 * c1 + 4 * c2 * f)) / (2 * c2)

    def _derivatives(self, vel, rates, rpm, cmd):
        w, x, y, z = self.quat
        _, _, vel_dot, rates_dot, rpm_dot = self._dynamics(
            self.pos, np.array([x, y, z, w]), vel, rates, cmd, rpm, **self.params
        )
        return np.asarray(vel_dot), np.asarray(rates_dot), np.asarray(rpm_dot)

    def _substep(self, cmd: np.ndarray, h: float) -> None:
        y0 = (self.vel, self.rates, self.rotor_rpm)
        k1 = self._derivatives(*y0, cmd)
        k2 = self._derivatives(*(a + 0.5 * h * d for a, d in zip(y0, k1)), cmd)
        k3 = self._derivatives(*(a + 0.5 * h * d for a, d in zip(y0, k2)), cmd)
        k4 = self._derivatives(*(a + h * d for a, d in zip(y0, k3)), cmd)
        new = [a + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4) for a, d1, d2, d3, d4 in zip(y0, k1, k2, k3, k4)]
        self.pos = self.pos + 0.5 * h * (self.vel + new[0])
        mean_rates = 0.5 * (self.rates + new[1])
        angle = float(np.linalg.norm(mean_rates)) * h
        if angle > 0:
            axis = mean_rates / np.linalg.norm(mean_rates)
            dq = np.array([math.cos(angle / 2), *(math.sin(angle / 2) * axis)])
            self.quat = quat_multiply(self.quat, dq)  # body rates: the rotation is applied on the right
            self.quat /= np.linalg.norm(self.quat)
        self.vel, self.rates, self.rotor_rpm = new[0], new[1], np.maximum(new[2], 0.0)
        if self.pos[2] < 0.0:  # resting on the ground: no penetration, friction stops it
            self.pos[2] = 0.0
            self.vel, self.rates = np.zeros(3), np.zeros(3)

    def step(self, rotor_rpm: np.ndarray, dt: float) -> VehicleState:
        cmd = np.asarray(rotor_rpm, dtype=float)
        n = max(1, round(dt / self.substep_s))
        for _ in range(n):
            self._substep(cmd, dt / n)
        return VehicleState(self.pos.copy(), self.quat.copy(), self.vel.copy(), self.rates.copy())
