"""Quadrotor fallback controller: PD/PID hover at the position where the fault happened, then a controlled
descent at a fixed rate to the floor, then motors off. numpy only; same command kind as the policy
(per-motor RPM, M1..M4).

Simulator conventions (body frame x forward, y left, z up). Motors at (x, y):
M1 (+a, -a) front-right, M2 (-a, -a) back-right, M3 (-a, +a) back-left, M4 (+a, +a) front-left,
a = arm_length / sqrt(2). Thrust f_i along body +z, so tau = r_i x (0, 0, f_i) = (y_i f_i, -x_i f_i, 0):
    tau_x = a (-f1 - f2 + f3 + f4)      tau_y = a (-f1 + f2 + f3 - f4)
M1, M3 spin clockwise seen from above (reaction +km f), M2, M4 counter-clockwise (reaction -km f):
    tau_z = km (f1 - f2 + f3 - f4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deploy.safety.limits import QuadrotorLimits

GRAVITY_M_S2 = 9.81


def quat_to_rotation(quat_wxyz: np.ndarray) -> np.ndarray:
    """(4,) body-to-world quaternion (w, x, y, z), normalised here -> (3, 3) rotation matrix."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=float) / np.linalg.norm(quat_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


class QuadrotorMixer:
    """Maps motor thrusts f (4,) [N] <-> wrench (collective thrust [N], tau_x, tau_y, tau_z [N m])."""

    def __init__(self, arm_length_m: float, km_m: float) -> None:
        a = arm_length_m / math.sqrt(2.0)
        self.motor_xy_m = np.array([[a, -a], [-a, -a], [-a, a], [a, a]])
        spin_sign = np.array([1.0, -1.0, 1.0, -1.0])  # +1: clockwise seen from above -> reaction +km f
        x, y = self.motor_xy_m[:, 0], self.motor_xy_m[:, 1]
        self.allocation = np.stack([np.ones(4), y, -x, km_m * spin_sign])  # (4 wrench rows, 4 motors)
        self.inverse = np.linalg.inv(self.allocation)

    def wrench(self, thrusts_n: np.ndarray) -> np.ndarray:
        return self.allocation @ thrusts_n

    def thrusts(self, wrench: np.ndarray) -> np.ndarray:
        return self.inverse @ wrench


@dataclass
class _Phase:
    start_s: float
    hold_xy_m: np.ndarray
    start_z_m: float
    integral_m_s: float = 0.0
    last_s: float | None = None


class HoverDescendController:
    """Stateful fallback controller. Call :meth:`start` on entering FALLBACK, then :meth:`command` each cycle."""

    def __init__(self, limits: QuadrotorLimits) -> None:
        self.limits = limits
        body = limits.body
        self.mixer = QuadrotorMixer(body.arm_length_m, body.km_m)
        self.inertia = np.asarray(body.inertia_kg_m2)
        self.min_thrust_n = body.kf_n_per_rpm2 * body.min_rpm**2
        self.max_thrust_n = body.kf_n_per_rpm2 * body.max_rpm**2
        self.phase: _Phase | None = None

    def start(self, now: float, position_m: np.ndarray | None) -> None:
        """Latch the hold point. position_m: (3,) world metres, or None when unknown."""
        if position_m is None:
            self.phase = _Phase(now, np.zeros(2), math.nan)
        else:
            self.phase = _Phase(now, np.array(position_m[:2], dtype=float), float(position_m[2]))

    def touchdown_deadline_s(self) -> float:
        """Time after which the motors go off even without a landed detection (landing timeout)."""
        fb = self.limits.fallback
        height = max(self.phase.start_z_m - fb.ground_z_m, 0.0) if math.isfinite(self.phase.start_z_m) else 0.0
        return self.phase.start_s + fb.hover_s + height / fb.descent_rate_m_s + fb.landing_timeout_margin_s

    def rpm(self, thrusts_n: np.ndarray) -> np.ndarray:
        body = self.limits.body
        f = np.clip(thrusts_n, self.min_thrust_n, self.max_thrust_n)
        return np.clip(np.sqrt(f / body.kf_n_per_rpm2), body.min_rpm, body.max_rpm)

    def blind_rpm(self) -> np.ndarray:
        """Equal motor speeds for blind_thrust_fraction of the weight: sinks without attitude control."""
        thrust = self.limits.fallback.blind_thrust_fraction * self.limits.body.mass_kg * GRAVITY_M_S2
        return self.rpm(np.full(4, thrust / 4.0))

    def landed(self, position_m: np.ndarray) -> bool:
        fb = self.limits.fallback
        return bool(position_m[2] <= fb.ground_z_m + fb.landed_height_m)

    def reference(self, now: float) -> tuple[float, float]:
        """(z_ref [m], vz_ref [m/s]): hold start_z for hover_s, then descend at descent_rate_m_s."""
        fb = self.limits.fallback
        t = now - self.phase.start_s - fb.hover_s
        if t <= 0:
            return self.phase.start_z_m, 0.0
        z_ref = self.phase.start_z_m - fb.descent_rate_m_s * t
        return max(z_ref, fb.ground_z_m - 0.5), -fb.descent_rate_m_s

    def command(
        self,
        now: float,
        position_m: np.ndarray,
        velocity_m_s: np.ndarray,
        quat_wxyz: np.ndarray,
        rates_rad_s: np.ndarray,
    ) -> np.ndarray:
        """Per-motor RPM (4,) from a finite measured state. position/velocity: (3,) world; rates: (3,) body."""
        if self.phase is None or not math.isfinite(self.phase.start_z_m):
            self.start(now, position_m)
        body, gains = self.limits.body, self.limits.gains
        phase = self.phase
        dt = 0.0 if phase.last_s is None else max(now - phase.last_s, 0.0)
        phase.last_s = now
        z_ref, vz_ref = self.reference(now)

        wp, zp = gains.position_freq_rad_s, gains.position_damping
        kp, kd = wp * wp, 2.0 * zp * wp
        err = np.array([phase.hold_xy_m[0] - position_m[0], phase.hold_xy_m[1] - position_m[1], z_ref - position_m[2]])
        verr = np.array([-velocity_m_s[0], -velocity_m_s[1], vz_ref - velocity_m_s[2]])
        ki = gains.altitude_integral_gain_1_s3
        i_max = 0.3 * GRAVITY_M_S2 / ki if ki > 0 else 0.0
        phase.integral_m_s = float(np.clip(phase.integral_m_s + err[2] * dt, -i_max, i_max))
        accel = kp * err + kd * verr
        accel[2] += ki * phase.integral_m_s
        a_xy_max = GRAVITY_M_S2 * math.tan(gains.max_tilt_cmd_rad)
        norm_xy = math.hypot(accel[0], accel[1])
        if norm_xy > a_xy_max:
            accel[:2] *= a_xy_max / norm_xy
        accel[2] = float(np.clip(accel[2], -0.6 * GRAVITY_M_S2, 0.8 * GRAVITY_M_S2))
        force = body.mass_kg * (accel + np.array([0.0, 0.0, GRAVITY_M_S2]))

        rot = quat_to_rotation(quat_wxyz)
        z_body = rot[:, 2]
        z_des = force / np.linalg.norm(force)
        collective = max(float(force @ z_body), 0.0)
        axis_world = np.cross(z_body, z_des)
        sin_angle = np.linalg.norm(axis_world)
        angle = math.atan2(sin_angle, float(z_body @ z_des))
        if sin_angle > 1e-9:
            err_body = rot.T @ (axis_world / sin_angle) * angle
        elif angle > 1.0:  # upside down: any horizontal body axis will do
            err_body = np.array([angle, 0.0, 0.0])
        else:
            err_body = np.zeros(3)
        wa, za = gains.attitude_freq_rad_s, gains.attitude_damping
        ang_acc = wa * wa * err_body - 2.0 * za * wa * np.asarray(rates_rad_s, dtype=float)
        ang_acc[2] = -gains.yaw_rate_gain_1_s * rates_rad_s[2]
        torque = self.inertia * ang_acc
        return self.rpm(self.mixer.thrusts(np.array([collective, *torque])))
