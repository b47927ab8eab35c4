"""RotorPy's Crazyflie (``rotorpy.vehicles.multirotor.Multirotor`` with ``crazyflie_params``) as a foreign robot.

What RotorPy models (read from its source, rotorpy 3.0.0): a rigid body integrated by scipy's ``solve_ivp`` (RK45)
over each control period; first-order motors (``tau_m`` 0.072 s) commanded in rad/s; thrust ``k_eta w^2``
(2.3e-8 N/(rad/s)^2, from 14.5 g at 2500 rad/s), yaw moment ``k_m w^2``; rotor drag (H-force) and induced inflow
at each hub from the local airspeed (``k_d``, ``k_z``); a ground plane (normal force, friction, attitude levelled
on contact). Its body frame is FLU with rotor 1 front-left (cw in the project's sense: ``rotor_directions``
+1 yaws the body +z), world z up. Its vehicle: 30 g, arm 0.043 m, inertia 1.43e-5, 1.43e-5, 2.89e-5 kg m^2,
max 2500 rad/s (23,873 RPM).

Units: the project's RPM / 60 * 2 pi -> rad/s. Quaternions: RotorPy's (x, y, z, w) <-> the project's (w, x, y, z).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from drivers.foreign_sil.common import Rotors, VehicleState, quat_z

RPM_TO_RAD_S = 2.0 * math.pi / 60.0


class RotorpyQuadrotor:
    """One RotorPy multirotor with the package's own Crazyflie parameters (none of the project's)."""

    name = "rotorpy"

    def __init__(self, rk_method: str = "RK45"):
        from rotorpy.vehicles.crazyflie_params import quad_params
        from rotorpy.vehicles.multirotor import Multirotor

        self.params = copy.deepcopy(quad_params)
        self._multirotor_cls = Multirotor
        self.mass_kg = float(self.params["mass"])
        pos = self.params["rotor_pos"]
        self.rotors = Rotors(
            np.array([pos[k][:2] for k in sorted(pos)]), np.asarray(self.params["rotor_directions"], dtype=float)
        )
        self.rk_method = rk_method
        self.reset(0.0, 0.0)

    def reset(self, yaw_rad: float, height_m: float) -> None:
        """At rest, level, heading yaw_rad about world z, at height_m (0: on the ground, motors stopped;
        above it: rotors at hover speed)."""
        q = quat_z(yaw_rad)
        w0 = self.hover_rpm() * RPM_TO_RAD_S if height_m > 0 else 0.0
        self.state = {
            "x": np.array([0.0, 0.0, float(height_m)]),
            "v": np.zeros(3),
            "q": np.array([q[1], q[2], q[3], q[0]]),
            "w": np.zeros(3),
            "wind": np.zeros(3),
            "rotor_speeds": np.full(4, w0),
        }
        self.vehicle = self._multirotor_cls(
            self.params,
            initial_state=copy.deepcopy(self.state),
            control_abstraction="cmd_motor_speeds",
            aero=True,
            enable_ground=True,
            integrator_kwargs={"method": self.rk_method},
        )

    def hover_rpm(self) -> float:
        return math.sqrt(self.mass_kg * 9.81 / (4 * self.params["k_eta"])) / RPM_TO_RAD_S

    def step(self, rotor_rpm: np.ndarray, dt: float) -> VehicleState:
        control = {"cmd_motor_speeds": np.asarray(rotor_rpm, dtype=float) * RPM_TO_RAD_S}
        self.state = self.vehicle.step(self.state, control, dt)
        return self.true_state()

    def true_state(self) -> VehicleState:
        s = self.state
        x, y, z, w = s["q"]
        return VehicleState(s["x"].copy(), np.array([w, x, y, z]), s["v"].copy(), s["w"].copy())
