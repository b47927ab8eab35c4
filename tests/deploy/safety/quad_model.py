"""A tiny numpy rigid-body quadrotor for testing the fallback controller (no torch, no simulator).

Written independently of deploy.safety.quadrotor_control: torques come from r_i x F_i and each rotor's spin
direction, not from the mixer under test. Motors follow their command with a first-order lag.
"""

from __future__ import annotations

import numpy as np

from deploy.observation import quat_multiply
from deploy.safety.limits import QuadrotorBody

G = 9.81


def rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def body_wrench(body: QuadrotorBody, thrusts_n: np.ndarray) -> np.ndarray:
    """(thrust, tau_x, tau_y, tau_z) from motor thrusts by r x F plus rotor reaction torques."""
    a = body.arm_length_m / np.sqrt(2.0)
    positions = [np.array([a, -a, 0.0]), np.array([-a, -a, 0.0]), np.array([-a, a, 0.0]), np.array([a, a, 0.0])]
    spin_axes = [np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0])] * 2  # M1 CW, M2 CCW, M3 CW, M4 CCW
    torque = np.zeros(3)
    for r, axis, f in zip(positions, spin_axes, thrusts_n):
        torque += np.cross(r, np.array([0.0, 0.0, f]))
        torque += -body.km_m * f * axis  # the body feels the opposite of the rotor's drag torque
    return np.array([thrusts_n.sum(), *torque])


class QuadModel:
    def __init__(
        self, body: QuadrotorBody, motor_tau_s: float = 0.03, ground_z_m: float = 0.0, com_offset_m=(0.0, 0.0)
    ) -> None:
        self.body = body
        self.motor_tau_s = motor_tau_s
        self.ground_z_m = ground_z_m
        # centre of mass (x, y) in the body frame, off the rotors' centre: the thrust acts at -c from it
        self.com_offset_m = np.array([*com_offset_m, 0.0], dtype=float)
        self.p = np.zeros(3)
        self.v = np.zeros(3)
        self.q = np.array([1.0, 0.0, 0.0, 0.0])
        self.w = np.zeros(3)
        hover = np.sqrt(body.mass_kg * G / (4 * body.kf_n_per_rpm2))
        self.rpm = np.full(4, hover)

    def step(self, rpm_cmd: np.ndarray, dt: float) -> None:
        alpha = min(dt / self.motor_tau_s, 1.0)
        self.rpm = self.rpm + alpha * (np.asarray(rpm_cmd, dtype=float) - self.rpm)
        wrench = body_wrench(self.body, self.body.kf_n_per_rpm2 * self.rpm**2)
        wrench[1:] += np.cross(-self.com_offset_m, np.array([0.0, 0.0, wrench[0]]))
        inertia = np.asarray(self.body.inertia_kg_m2)
        acc = rotation(self.q) @ np.array([0.0, 0.0, wrench[0]]) / self.body.mass_kg - np.array([0.0, 0.0, G])
        self.v = self.v + acc * dt
        self.p = self.p + self.v * dt
        if self.p[2] < self.ground_z_m:
            self.p[2], self.v = self.ground_z_m, np.zeros(3)
        w_dot = (wrench[1:] - np.cross(self.w, inertia * self.w)) / inertia
        self.w = self.w + w_dot * dt
        self.q = self.q + 0.5 * quat_multiply(self.q, np.array([0.0, *self.w])) * dt
        self.q = self.q / np.linalg.norm(self.q)

    def tilt_rad(self) -> float:
        return float(np.arccos(np.clip(rotation(self.q)[2, 2], -1.0, 1.0)))
