"""Quadrotor fallback controller: PD/PID hover at the position where the fault happened, then a controlled
descent at a fixed rate to the floor, then motors off. numpy only; same command kind as the policy
(``limits.interface``): per-motor RPM, M1..M4, through the mixer below; or, for "ctbr", collective thrust [N]
and body-rate setpoints [rad/s, FLU] for the autopilot's rate loop (rate setpoint = attitude error x
attitude_freq / (2 attitude_damping), the P gain that gives the PD loop's time constant with an ideal rate loop;
yaw rate 0).

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
from deploy.safety.quadrotor_motors import MotorModel

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


def trim_limit_nm(limits: QuadrotorLimits) -> float:
    """The largest torque trim per axis [N m]: trim_max_fraction of weight x a motor's distance from each axis."""
    lever = limits.body.arm_length_m / math.sqrt(2.0)
    return limits.fallback.trim_max_fraction * limits.body.mass_kg * GRAVITY_M_S2 * lever


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
        self.ctbr = limits.interface == "ctbr"
        self.phase: _Phase | None = None
        # rpm: body torque [N m] (3,) added to the PD loop's, the one the policy held (deploy/safety/trim.py)
        self.trim_nm = np.zeros(3)
        # rpm: the motors' lag, the lead and the torque observer (deploy/safety/quadrotor_motors.py)
        self.motors = MotorModel(limits, self.mixer, trim_limit_nm(limits))
        # factor on the collective thrust: the real vehicle's need over the nominal one's (deploy/safety/trim.py)
        self.thrust_scale = 1.0

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

    def blind_command(self) -> np.ndarray:
        """Equal motor speeds (ctbr: zero rates) for blind_thrust_fraction of the weight: sinks without attitude
        control."""
        thrust = self.limits.fallback.blind_thrust_fraction * self.weight_n()
        if self.ctbr:
            return np.array([float(np.clip(thrust, 4 * self.min_thrust_n, 4 * self.max_thrust_n)), 0.0, 0.0, 0.0])
        return self.rpm(np.full(4, thrust / 4.0))

    def weight_n(self) -> float:
        """The vehicle's weight in the nominal thrust mapping [N]: the profile's times ``thrust_scale``."""
        return self.thrust_scale * self.limits.body.mass_kg * GRAVITY_M_S2

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
        stamp_s: float | None = None,
    ) -> np.ndarray:
        """The command (4,) from a finite measured state. position/velocity: (3,) world; rates: (3,) body;
        stamp_s: its measurement time [s] (None: now)."""
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
        force = self.thrust_scale * body.mass_kg * (accel + np.array([0.0, 0.0, GRAVITY_M_S2]))
        return self.attitude_command(force, quat_wxyz, rates_rad_s, now, stamp_s)

    def attitude_command(
        self,
        force_world_n: np.ndarray,
        quat_wxyz: np.ndarray,
        rates_rad_s: np.ndarray,
        now: float | None = None,
        stamp_s: float | None = None,
    ) -> np.ndarray:
        """The command (4,) that turns body z toward ``force_world_n`` (3,) [N] with the collective thrust
        projected on body z: per-motor RPM (PD on the attitude error and the body rates, yaw rate damped only, plus
        ``trim_nm``),
        or for ctbr (thrust N, roll, pitch, yaw rate rad/s) with the rates proportional to the attitude error."""
        gains = self.limits.gains
        if not self.ctbr:  # the observer reads the measured rates at their stamp; the loop, the state carried to now
            compensation = self.motors.compensation(now, rates_rad_s, stamp_s, self.trim_nm)
            quat_wxyz, rates_rad_s = self.motors.predicted(now, stamp_s, quat_wxyz, rates_rad_s)
        rot = quat_to_rotation(quat_wxyz)
        z_body = rot[:, 2]
        z_des = force_world_n / np.linalg.norm(force_world_n)
        collective = max(float(force_world_n @ z_body), 0.0)
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
        if self.ctbr:
            limit = np.asarray(self.limits.rates.max_body_rate_rad_s)
            rates_sp = np.clip(wa / (2.0 * za) * err_body, -limit, limit)
            rates_sp[2] = 0.0
            return np.array([float(np.clip(collective, 4 * self.min_thrust_n, 4 * self.max_thrust_n)), *rates_sp])
        ang_acc = wa * wa * err_body - 2.0 * za * wa * np.asarray(rates_rad_s, dtype=float)
        ang_acc[2] = -gains.yaw_rate_gain_1_s * rates_rad_s[2]
        torque = self.inertia * ang_acc + compensation
        return self.rpm(self.motors.led(self.mixer.thrusts(np.array([collective, *torque]))))


@dataclass
class _LevelPhase:
    start_s: float
    start_z_m: float  # the last trusted height [m], NaN when unknown
    seen_descent: bool = False
    still_since_s: float | None = None


class LevelDescentController(HoverDescendController):
    """The fallback for a suspect position: level and descend on attitude, body rates and (when trusted) the
    velocity alone; no position error is ever formed. See :class:`deploy.safety.limits.QuadrotorLevelDescent`.
    Call :meth:`start` when the position goes suspect, then :meth:`level_command` and :meth:`touchdown` each cycle."""

    def __init__(self, limits: QuadrotorLimits) -> None:
        super().__init__(limits)
        self.level: _LevelPhase | None = None

    def start_level(self, now: float, last_trusted_z_m: float) -> None:
        self.level = _LevelPhase(now, float(last_trusted_z_m))

    def deadline_s(self) -> float:
        return self.level.start_s + self.limits.level_descent_max_s()

    def thrust_fraction(self, now: float, velocity_m_s: np.ndarray | None) -> float:
        """Collective thrust as a fraction of hover: closed loop on vz when the velocity is trusted, else the
        open-loop profile (open_loop_thrust_fraction until the descent rate is reached, then glide)."""
        ld = self.limits.level_descent
        if velocity_m_s is not None:
            a_z = ld.vertical_gain_1_s * (-ld.descent_rate_m_s - float(velocity_m_s[2]))
            return float(np.clip(1.0 + a_z / GRAVITY_M_S2, ld.min_thrust_fraction, ld.max_thrust_fraction))
        t_reach = ld.descent_rate_m_s / ((1.0 - ld.open_loop_thrust_fraction) * GRAVITY_M_S2)
        return ld.open_loop_thrust_fraction if now - self.level.start_s < t_reach else ld.glide_thrust_fraction

    def level_command(
        self,
        now: float,
        quat_wxyz: np.ndarray,
        rates_rad_s: np.ndarray,
        velocity_m_s: np.ndarray | None,
        stamp_s: float | None = None,
    ) -> np.ndarray:
        """The command (4,): level (horizontal velocity damped when trusted), descend. quat: (4,) body to
        world; rates: (3,) body rad/s; velocity: (3,) world m/s, or None when it is not trusted; stamp_s: the
        sample's measurement time [s] (None: now)."""
        ld, body = self.limits.level_descent, self.limits.body
        a_xy = np.zeros(2)
        if velocity_m_s is not None:
            a_xy = -ld.horizontal_damping_1_s * np.asarray(velocity_m_s[:2], dtype=float)
            a_max = GRAVITY_M_S2 * math.tan(self.limits.gains.max_tilt_cmd_rad)
            norm = math.hypot(*a_xy)
            if norm > a_max:
                a_xy *= a_max / norm
        a_z = GRAVITY_M_S2 * self.thrust_fraction(now, velocity_m_s)
        force = self.thrust_scale * body.mass_kg * np.array([a_xy[0], a_xy[1], a_z])
        return self.attitude_command(force, quat_wxyz, rates_rad_s, now, stamp_s)

    def touchdown(self, now: float, velocity_m_s: np.ndarray | None) -> bool:
        """Touchdown evidence without a trusted height: the vehicle descended (|vz| reached half the descent
        rate) or started within touchdown.height_m of the floor, and then its speed stayed <= touchdown.speed_m_s
        for touchdown.hold_s while a descent was commanded. Never without a trusted velocity."""
        if velocity_m_s is None:
            return False
        td, ph = self.limits.touchdown, self.level
        if float(velocity_m_s[2]) <= -0.5 * self.limits.level_descent.descent_rate_m_s:
            ph.seen_descent = True
        if not (ph.seen_descent or self.started_low()):
            return False
        if float(np.linalg.norm(velocity_m_s)) > td.speed_m_s:
            ph.still_since_s = None
            return False
        ph.still_since_s = now if ph.still_since_s is None else ph.still_since_s
        return now - ph.still_since_s >= td.hold_s

    def started_low(self) -> bool:
        """The last trusted height was within touchdown.height_m of the floor (it was on the ground)."""
        z = self.level.start_z_m
        return math.isfinite(z) and z - self.limits.fallback.ground_z_m <= self.limits.touchdown.height_m


def thrust_fraction_of_hover(rpm: np.ndarray, body) -> float:
    """Mean commanded thrust (4,) RPM as a fraction of the hover thrust (thrust ~ rpm^2)."""
    hover_rpm2 = body.mass_kg * GRAVITY_M_S2 / (4.0 * body.kf_n_per_rpm2)
    return float(np.mean(np.square(np.asarray(rpm, dtype=float)))) / hover_rpm2


def commanded_thrust_fraction(values: np.ndarray, limits: QuadrotorLimits) -> float:
    """The command's collective thrust as a fraction of the hover thrust: (4,) RPM, or ctbr (thrust N, rates)."""
    if limits.interface == "ctbr":
        return float(values[0]) / (limits.body.mass_kg * GRAVITY_M_S2)
    return thrust_fraction_of_hover(values, limits.body)


def on_floor(position_m: np.ndarray, velocity_m_s: np.ndarray, touchdown, floor_z_m: float) -> bool:
    """Height above the floor <= touchdown.height_m and speed <= touchdown.speed_m_s (the two kinematic signs of
    :func:`touched_down`; the runtime's spool-down uses them alone). position_m, velocity_m_s: (3,) world frame;
    touchdown: QuadrotorTouchdown; floor_z_m: world z of the floor [m]. Non-finite inputs -> False."""
    p, v = np.asarray(position_m, dtype=float), np.asarray(velocity_m_s, dtype=float)
    return bool(
        np.all(np.isfinite(p))
        and np.all(np.isfinite(v))
        and p[2] - floor_z_m <= touchdown.height_m
        and float(np.linalg.norm(v)) <= touchdown.speed_m_s
    )


def touched_down(state, last_command, limits, floor_z_m: float | None = None) -> bool:
    """Whether a quadrotor is on the ground: height above the floor <= touchdown.height_m (0.1 m), speed <=
    touchdown.speed_m_s (0.2 m/s) and commanded collective thrust <= touchdown.thrust_fraction (0.8) of hover.

    state: a StateSample (position_m, velocity_m_s world frame). last_command: a SafeCommand or its (4,) values
    (RPM, or ctbr thrust N and rates). limits: QuadrotorLimits or a SafetyProfile with them. floor_z_m: world z of
    the floor [m] (e.g. the start position's z); None -> limits.fallback.ground_z_m. Missing or non-finite inputs
    -> False. Pure; the runtime uses it to decide when the plan's end may disarm (hold it for touchdown.hold_s)."""
    limits = getattr(limits, "quadrotor", None) or limits
    td = limits.touchdown
    values = getattr(last_command, "values", last_command)
    try:
        p = np.asarray(state.position_m, dtype=float).reshape(3)
        v = np.asarray(state.velocity_m_s, dtype=float).reshape(3)
        command = np.asarray(values, dtype=float).reshape(4)
    except (AttributeError, TypeError, ValueError):
        return False
    if not np.all(np.isfinite(command)):
        return False
    floor = limits.fallback.ground_z_m if floor_z_m is None else float(floor_z_m)
    return on_floor(p, v, td, floor) and commanded_thrust_fraction(command, limits) <= td.thrust_fraction
