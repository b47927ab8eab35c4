"""A slow single-env quadrotor in float64 numpy, written in matrix form: the reference the batched simulator is
checked against. Same model and integration scheme as :mod:`sim.quadrotor.dynamics`, independent code."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.quadrotor.params import GRAVITY, QuadrotorParams


@dataclass
class RefState:
    position: np.ndarray  # (3,) m world
    velocity: np.ndarray  # (3,) m/s world
    quaternion: np.ndarray  # (4,) w, x, y, z body -> world
    angular_velocity: np.ndarray  # (3,) rad/s body
    rotor_rpm: np.ndarray  # (4,)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, v1 = a[0], a[1:]
    w2, v2 = b[0], b[1:]
    return np.concatenate([[w1 * w2 - v1 @ v2], w1 * v2 + w2 * v1 + np.cross(v1, v2)])


def rotor_positions(arm_length: float) -> np.ndarray:
    a = arm_length / math.sqrt(2.0)
    return np.array([[a, -a, 0.0], [-a, -a, 0.0], [-a, a, 0.0], [a, a, 0.0]])


SPIN = np.array([-1.0, 1.0, -1.0, 1.0])  # +1 counter-clockwise seen from above (M2, M4)


def step(
    s: RefState,
    rpm_cmd: np.ndarray,
    p: QuadrotorParams,
    dt: float,
    force_w: np.ndarray | None = None,
    torque_b: np.ndarray | None = None,
) -> RefState:
    force_w = np.zeros(3) if force_w is None else force_w
    torque_b = np.zeros(3) if torque_b is None else torque_b
    tau = np.where(rpm_cmd > s.rotor_rpm, p.motor_tau_up, p.motor_tau_down)
    rpm = s.rotor_rpm + (rpm_cmd - s.rotor_rpm) * (1 - np.exp(-dt / tau))
    f = p.kf * rpm**2
    torque = sum(np.cross(r, [0.0, 0.0, fi]) for r, fi in zip(rotor_positions(p.arm_length), f))
    torque = torque + np.array([0.0, 0.0, -p.km * (SPIN @ f)]) + torque_b  # reaction opposes the spin
    R = quat_to_matrix(s.quaternion)
    v_body = R.T @ s.velocity
    drag = -np.asarray(p.drag) * (rpm.sum() * 2 * math.pi / 60) * v_body
    acc = (R @ (np.array([0.0, 0.0, f.sum()]) + drag) + force_w) / p.mass - np.array([0.0, 0.0, GRAVITY])
    vel = s.velocity + acc * dt
    pos = s.position + 0.5 * (s.velocity + vel) * dt
    J = np.diag(p.inertia)

    def wdot(w: np.ndarray) -> np.ndarray:
        return np.linalg.solve(J, torque - np.cross(w, J @ w))

    w0 = s.angular_velocity
    w1 = w0 + dt * wdot(w0 + 0.5 * dt * wdot(w0))
    wm = 0.5 * (w0 + w1)
    angle = np.linalg.norm(wm) * dt
    axis = wm / np.linalg.norm(wm) if angle > 0 else np.array([1.0, 0.0, 0.0])
    dq = np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])
    q = quat_mul(s.quaternion, dq)
    return RefState(pos, vel, q / np.linalg.norm(q), w1, rpm)
