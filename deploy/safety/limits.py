"""Typed safety limit profiles per robot class, with defaults and their sources.

Every field carries its unit in its name. Defaults come from /work/shared/FACTS.md ("Runtime safety: what
trusted systems do"); the source is written next to each. A profile sets limits, never whether a check runs.
Load a profile from the ``safety:`` section of a robot YAML with :func:`deploy.safety.profile_io.load_profile`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np


class ProfileError(ValueError):
    """A safety profile value is missing, of the wrong unit or type, or out of range."""


class RobotClass(enum.Enum):
    QUADROTOR = "quadrotor"
    LEGGED = "legged"
    ARM = "arm"


def _require(ok: bool, where: str, expected: str, found: object, todo: str = "") -> None:
    if not ok:
        msg = f"safety profile {where}: expected {expected}, found {found!r}"
        raise ProfileError(msg + (f"; {todo}" if todo else ""))


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(math.isfinite(value) and value > 0, f"{type(obj).__name__}.{name}", "a finite number > 0", value)


def _fraction(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(0.0 <= value <= 1.0, f"{type(obj).__name__}.{name}", "a fraction in [0, 1] (not percent)", value)


@dataclass(frozen=True)
class CommonLimits:
    """Checks every robot class runs."""

    control_period_s: float = 0.02  # 50 Hz legged/arm policy rate (legged_gym, unitree_rl_gym)
    #: state older than this -> FALLBACK. Franka aborts after 20 missed 1 kHz packets (20 ms); the Crazyflie
    #: supervisor levels out after 500 ms; 0.1 s = 5 periods at 50 Hz: older observations describe another robot.
    max_state_age_s: float = 0.1
    max_state_future_s: float = 0.005  # samples stamped further ahead of `now` are rejected (clock mismatch)
    max_heartbeat_age_s: float = 0.5  # operator dead-man; PX4 COM_RC_LOSS_T = 0.5 s
    #: inference slower than this is an overrun; None -> one control period.
    max_inference_time_s: float | None = None
    max_consecutive_overruns: int = 3  # then FALLBACK (Franka aborts after 20 missed 1 ms packets = 20 ms)
    arming_duration_s: float = 0.5  # checks must stay clean this long in ARMING before ACTIVE
    # --- state consistency gate (deploy/safety/consistency.py; docs/safety.md "State the runtime can trust") ---
    #: attitude gate: angle between the reported quaternion and the previous accepted one integrated with the
    #: mean of both gyro readings over dt may exceed this floor by at most max_angular_accel_rad_s2 * dt^2 / 4.
    #: 0.1 rad = 5.7 deg in one sample: estimator corrections are < 1 deg per sample (Crazyflie, A1 IMU), the
    #: simulated robot publishes its exact attitude with 0.005 rad/s gyro noise.
    attitude_jump_rad: float = 0.1
    #: bound on |d(omega)/dt| used to widen the gates over long gaps [rad/s^2]; a Crazyflie reaches ~500 rad/s^2
    #: at full differential thrust, legged robots see more at foot impacts: 1000 rad/s^2 covers both.
    max_angular_accel_rad_s2: float = 1000.0
    #: on the ground (DISARMED / ESTOP) this many inconsistent samples within consistency_window_s mark the
    #: state suspect (in flight, one is enough).
    consistency_max_rejections: int = 3
    consistency_window_s: float = 1.0
    #: suspect state becomes trusted again only on the ground, after this long without an inconsistent sample
    #: and without an input fault (never in flight).
    consistency_recover_s: float = 1.0
    #: on the ground only: this many consecutive rejected samples that agree with each other (a new track, e.g.
    #: the motion capture re-zeroed) re-anchor the gate. The state stays suspect for consistency_recover_s.
    consistency_reanchor_samples: int = 10

    @property
    def inference_deadline_s(self) -> float:
        """The inference time budget in seconds: max_inference_time_s, or one control period."""
        return self.control_period_s if self.max_inference_time_s is None else self.max_inference_time_s

    def __post_init__(self) -> None:
        _positive(self, "control_period_s", "max_state_age_s", "max_heartbeat_age_s")
        if self.max_inference_time_s is not None:
            _positive(self, "max_inference_time_s")
        _positive(self, "arming_duration_s")
        _require(self.max_state_future_s >= 0, "common.max_state_future_s", "seconds >= 0", self.max_state_future_s)
        for name in ("max_consecutive_overruns", "consistency_max_rejections", "consistency_reanchor_samples"):
            n = getattr(self, name)
            _require(isinstance(n, int) and n >= 1, f"common.{name}", "an integer >= 1", n)
        _positive(self, "attitude_jump_rad", "max_angular_accel_rad_s2", "consistency_window_s")
        _positive(self, "consistency_recover_s")
        _require(
            self.attitude_jump_rad <= math.pi,
            "common.attitude_jump_rad",
            "radians in (0, pi] (a value above pi is probably in degrees: multiply by pi/180)",
            self.attitude_jump_rad,
        )


@dataclass(frozen=True)
class QuadrotorBody:
    """Crazyflie 2.x defaults, one consistent set from gym-pybullet-drones (cf2x.urdf, BaseAviary, DSLPIDControl)."""

    mass_kg: float = 0.027
    arm_length_m: float = 0.0397  # centre to motor
    inertia_kg_m2: tuple[float, float, float] = (1.4e-5, 1.4e-5, 2.17e-5)  # diagonal, body x, y, z
    kf_n_per_rpm2: float = 3.16e-10  # thrust per motor = kf * rpm^2
    km_m: float = 0.0251  # yaw torque / thrust ratio (km/kf in gym-pybullet-drones), metres
    min_rpm: float = 9440.3  # PWM 20000 via RPM = 0.2685 PWM + 4070.3 (DSLPIDControl): idle while armed
    max_rpm: float = 21666.4  # PWM 65535 via the same map
    #: command slew limit; full range in ~30 ms, faster than the motor (rise ~56 ms, RLtools): stops only jumps.
    max_rpm_rate_per_s: float = 400_000.0

    def __post_init__(self) -> None:
        _positive(self, "mass_kg", "arm_length_m", "kf_n_per_rpm2", "km_m", "max_rpm", "max_rpm_rate_per_s")
        inertia = tuple(float(v) for v in self.inertia_kg_m2)
        _require(
            len(inertia) == 3 and all(v > 0 for v in inertia),
            "quadrotor.body.inertia_kg_m2",
            "3 positive diagonal entries [kg m^2]",
            self.inertia_kg_m2,
        )
        object.__setattr__(self, "inertia_kg_m2", inertia)
        _require(
            0 <= self.min_rpm < self.max_rpm,
            "quadrotor.body.min_rpm",
            f"0 <= min_rpm < max_rpm={self.max_rpm}",
            self.min_rpm,
        )
        hover_rpm = math.sqrt(self.mass_kg * 9.81 / (4 * self.kf_n_per_rpm2))
        _require(
            hover_rpm < self.max_rpm,
            "quadrotor.body.max_rpm",
            f"above the hover speed {hover_rpm:.0f} RPM (mass, kf and max_rpm disagree)",
            self.max_rpm,
        )


@dataclass(frozen=True)
class QuadrotorEnvelope:
    """Flight envelope; geofence is a horizontal circle around ``geofence_center_xy_m``."""

    geofence_radius_m: float = 2.0  # indoor lab default (PX4 GF_MAX_HOR_DIST is configurable)
    geofence_center_xy_m: tuple[float, float] = (0.0, 0.0)
    altitude_ceiling_m: float = 2.0  # world z, metres (PX4 GF_MAX_VER_DIST is configurable)
    altitude_floor_m: float = -0.1  # world z below this: the estimate is below the ground -> FALLBACK (lands)
    max_tilt_rad: float = math.radians(60.0)  # PX4 FD_FAIL_R / FD_FAIL_P = 60 deg
    max_tilt_duration_s: float = 0.3  # PX4 FD_FAIL_R_TTRI / FD_FAIL_P_TTRI = 0.3 s -> flight termination (ESTOP)
    battery_low_fraction: float = 0.15  # PX4 BAT_LOW_THR -> warning (CLAMP)
    battery_critical_fraction: float = 0.07  # PX4 BAT_CRIT_THR -> land (FALLBACK)

    def __post_init__(self) -> None:
        _positive(self, "geofence_radius_m", "max_tilt_rad")
        object.__setattr__(self, "geofence_center_xy_m", tuple(float(v) for v in self.geofence_center_xy_m))
        _require(
            len(self.geofence_center_xy_m) == 2,
            "quadrotor.envelope.geofence_center_xy_m",
            "2 values [m]",
            self.geofence_center_xy_m,
        )
        _require(
            self.altitude_floor_m < self.altitude_ceiling_m,
            "quadrotor.envelope.altitude_floor_m",
            f"below altitude_ceiling_m={self.altitude_ceiling_m}",
            self.altitude_floor_m,
        )
        _require(
            self.max_tilt_rad <= math.pi,
            "quadrotor.envelope.max_tilt_rad",
            "radians in (0, pi] (a value above pi is probably in degrees: multiply by pi/180)",
            self.max_tilt_rad,
        )
        _require(
            self.max_tilt_duration_s >= 0,
            "quadrotor.envelope.max_tilt_duration_s",
            "seconds >= 0",
            self.max_tilt_duration_s,
        )
        _fraction(self, "battery_low_fraction", "battery_critical_fraction")
        _require(
            self.battery_critical_fraction <= self.battery_low_fraction,
            "quadrotor.envelope.battery_critical_fraction",
            f"<= battery_low_fraction={self.battery_low_fraction}",
            self.battery_critical_fraction,
        )


@dataclass(frozen=True)
class QuadrotorFallback:
    """Fallback behaviour: hold position for ``hover_s``, descend at ``descent_rate_m_s``, motors off on the floor."""

    hover_s: float = 1.0
    descent_rate_m_s: float = 0.3  # gentler than PX4 MPC_LAND_SPEED 0.7 m/s: a 30 g vehicle indoors
    ground_z_m: float = 0.0  # world z of the landing floor
    landed_height_m: float = 0.05  # motors off once z <= ground_z_m + landed_height_m
    landing_timeout_margin_s: float = 5.0  # motors off anyway this long after the expected touchdown
    blind_thrust_fraction: float = 0.9  # without a valid state: equal thrust = this * weight (sinks)
    blind_timeout_s: float = 2.0  # state invalid this long -> motors off, ESTOP (Crazyflie supervisor 2000 ms)

    def __post_init__(self) -> None:
        _positive(self, "descent_rate_m_s", "landed_height_m", "landing_timeout_margin_s", "blind_timeout_s")
        _require(self.hover_s >= 0, "quadrotor.fallback.hover_s", "seconds >= 0", self.hover_s)
        _require(
            0 < self.blind_thrust_fraction < 1,
            "quadrotor.fallback.blind_thrust_fraction",
            "a fraction of the weight in (0, 1) so the vehicle sinks",
            self.blind_thrust_fraction,
        )


@dataclass(frozen=True)
class QuadrotorFallbackGains:
    """PD gains of the fallback controller as natural frequencies [rad/s] and damping ratios [-]."""

    position_freq_rad_s: float = 2.0
    position_damping: float = 1.0
    attitude_freq_rad_s: float = 8.0  # stable in tests with motor lags 0.03-0.15 s
    attitude_damping: float = 1.0
    yaw_rate_gain_1_s: float = 5.0  # yaw: damp the body rate only, heading is not held
    altitude_integral_gain_1_s3: float = 1.0  # integral of the altitude error; mass mismatch
    max_tilt_cmd_rad: float = math.radians(20.0)  # commanded tilt limit while in fallback

    def __post_init__(self) -> None:
        _positive(self, "position_freq_rad_s", "position_damping", "attitude_freq_rad_s", "attitude_damping")
        _positive(self, "yaw_rate_gain_1_s", "max_tilt_cmd_rad")
        _require(
            self.altitude_integral_gain_1_s3 >= 0,
            "quadrotor.gains.altitude_integral_gain_1_s3",
            ">= 0",
            self.altitude_integral_gain_1_s3,
        )


@dataclass(frozen=True)
class QuadrotorConsistency:
    """Position/velocity gate of a new state sample against the previous accepted one (dt apart):

        |p_new - (p_old + (v_old + v_new) / 2 * dt)| <= position_jump_m + max_accel_m_s2 * dt^2 / 4
        |v_new - v_old|                              <= velocity_jump_m_s + max_accel_m_s2 * dt

    The trapezoid residual of a body whose acceleration stays within max_accel is at most max_accel dt^2 / 4;
    the floors absorb sensor noise. At 100 Hz a real Crazyflie with motion capture (mm noise) or Lighthouse
    (cm, occasional few-cm corrections) and the simulated robot (2 mm position, 5 mm/s velocity noise) stay
    below 1 cm and 0.1 m/s per sample; a 0.5 m jump in 10 ms (50 m/s) or a 1000 m one is rejected.
    """

    position_jump_m: float = 0.1
    #: 1 m/s per sample also bounds how much of a position jump a faked velocity can explain: <= 5 mm at 100 Hz.
    velocity_jump_m_s: float = 1.0
    #: thrust-to-weight 2.2 (max_rpm / hover) gives ~22 m/s^2; 30 m/s^2 leaves margin for gusts and contact.
    max_accel_m_s2: float = 30.0

    def __post_init__(self) -> None:
        _positive(self, "position_jump_m", "velocity_jump_m_s", "max_accel_m_s2")


@dataclass(frozen=True)
class QuadrotorLevelDescent:
    """The fallback when the position is suspect: level on attitude and body rates only, descend, motors off.

    With a trusted velocity: collective = hover * (1 + vertical_gain_1_s * (-descent_rate - vz) / g) / cos(tilt)
    within [min_thrust_fraction, max_thrust_fraction] of hover, and the horizontal velocity is damped (no
    position error is ever formed). Without a trusted velocity: open loop, ``open_loop_thrust_fraction`` of hover
    until the descent rate would be reached, then ``glide_thrust_fraction`` (keeps sinking if the mass is within
    3 % of the model). Motors off after at most (altitude_ceiling_m - ground_z_m) / descent_rate_m_s +
    margin_s, or earlier at a detected touchdown (trusted velocity only).
    """

    descent_rate_m_s: float = 0.4
    vertical_gain_1_s: float = 3.0
    horizontal_damping_1_s: float = 2.0  # a_xy = -gain * v_xy while the velocity is trusted
    min_thrust_fraction: float = 0.75  # of hover thrust: at most 0.25 g downwards
    max_thrust_fraction: float = 1.2  # of hover thrust: can arrest a fall, climbs at most 0.2 g on a bad vz
    open_loop_thrust_fraction: float = 0.85  # 0.15 g down for descent_rate / (0.15 g) = 0.27 s
    glide_thrust_fraction: float = 0.97
    margin_s: float = 3.0

    def __post_init__(self) -> None:
        _positive(self, "descent_rate_m_s", "vertical_gain_1_s", "horizontal_damping_1_s", "margin_s")
        for name in ("min_thrust_fraction", "open_loop_thrust_fraction", "glide_thrust_fraction"):
            value = getattr(self, name)
            _require(0 < value < 1, f"quadrotor.level_descent.{name}", "a fraction of hover thrust in (0, 1)", value)
        _require(
            self.max_thrust_fraction >= 1.0,
            "quadrotor.level_descent.max_thrust_fraction",
            ">= 1 (a fall must be arrestable)",
            self.max_thrust_fraction,
        )


@dataclass(frozen=True)
class QuadrotorTouchdown:
    """Landed = height above the floor <= height_m, speed <= speed_m_s and mean commanded thrust (rpm^2) <=
    thrust_fraction of hover; the attitude-only fallback (no trusted height) needs speed and thrust for hold_s.
    PX4's land detector uses the same three signs. A vehicle flying at 5-15 cm commands ~hover thrust."""

    height_m: float = 0.1
    speed_m_s: float = 0.2
    thrust_fraction: float = 0.8
    hold_s: float = 0.3

    def __post_init__(self) -> None:
        _positive(self, "height_m", "speed_m_s", "thrust_fraction", "hold_s")


@dataclass(frozen=True)
class QuadrotorLimits:
    body: QuadrotorBody = field(default_factory=QuadrotorBody)
    envelope: QuadrotorEnvelope = field(default_factory=QuadrotorEnvelope)
    fallback: QuadrotorFallback = field(default_factory=QuadrotorFallback)
    gains: QuadrotorFallbackGains = field(default_factory=QuadrotorFallbackGains)
    consistency: QuadrotorConsistency = field(default_factory=QuadrotorConsistency)
    level_descent: QuadrotorLevelDescent = field(default_factory=QuadrotorLevelDescent)
    touchdown: QuadrotorTouchdown = field(default_factory=QuadrotorTouchdown)

    def level_descent_max_s(self) -> float:
        """The longest the attitude-only fallback runs before the motors go off [s]."""
        height = self.envelope.altitude_ceiling_m - self.fallback.ground_z_m
        return max(height, 0.0) / self.level_descent.descent_rate_m_s + self.level_descent.margin_s


def _per_joint(obj: JointLimits, name: str) -> None:
    value = getattr(obj, name)
    n = len(obj.names)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (float(value),) * n
    try:
        vec = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ProfileError(
            f"safety profile joints.{name}: expected {n} numbers or one number, found {value!r}"
        ) from None
    _require(
        len(vec) == n,
        f"joints.{name}",
        f"{n} values, one per joint {list(obj.names)}",
        vec,
        "list the values in the order of joints.names or give one number for all",
    )
    _require(all(math.isfinite(v) for v in vec), f"joints.{name}", "finite numbers", vec)
    object.__setattr__(obj, name, vec)


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits for arms and legged robots, in the profile's joint order. Scalars broadcast."""

    names: tuple[str, ...]
    position_min_rad: tuple[float, ...]
    position_max_rad: tuple[float, ...]
    velocity_max_rad_s: tuple[float, ...]
    torque_max_nm: tuple[float, ...]
    kp_nm_per_rad: tuple[float, ...]  # PD gains sent with position targets (drivers with PD at the motor)
    kd_nm_s_per_rad: tuple[float, ...]
    target_max_rate_rad_s: tuple[float, ...] | None = None  # position-target slew; None -> velocity_max_rad_s
    position_margin_rad: float = 0.05  # measured position may exceed the limits by this before FALLBACK
    #: joint gate, per joint: |q_new - (q_old + (qd_old + qd_new) / 2 * dt)| <= position_jump_rad +
    #: max_accel_rad_s2 * dt^2 / 4. 0.1 rad absorbs differentiated-encoder velocity noise (~1 rad/s on an A1 at
    #: 50 Hz: 0.02 rad); encoders never jump. 500 rad/s^2 covers foot impacts (Franka's spec is 10-20 rad/s^2).
    position_jump_rad: tuple[float, ...] = 0.1
    max_accel_rad_s2: float = 500.0

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        _require(len(names) > 0 and len(set(names)) == len(names), "joints.names", "unique joint names", names)
        object.__setattr__(self, "names", names)
        if self.target_max_rate_rad_s is None:
            object.__setattr__(self, "target_max_rate_rad_s", self.velocity_max_rad_s)
        for name in (
            "position_min_rad",
            "position_max_rad",
            "velocity_max_rad_s",
            "torque_max_nm",
            "kp_nm_per_rad",
            "kd_nm_s_per_rad",
            "target_max_rate_rad_s",
            "position_jump_rad",
        ):
            _per_joint(self, name)
        for i, (lo, hi) in enumerate(zip(self.position_min_rad, self.position_max_rad)):
            _require(lo < hi, f"joints.position_min_rad[{i}] ({names[i]})", f"< position_max_rad={hi}", lo)
        _positive(self, "max_accel_rad_s2")
        for name in ("velocity_max_rad_s", "torque_max_nm", "target_max_rate_rad_s", "position_jump_rad"):
            _require(all(v > 0 for v in getattr(self, name)), f"joints.{name}", "values > 0", getattr(self, name))
        for name in ("kp_nm_per_rad", "kd_nm_s_per_rad"):
            _require(all(v >= 0 for v in getattr(self, name)), f"joints.{name}", "values >= 0", getattr(self, name))
        _require(self.position_margin_rad >= 0, "joints.position_margin_rad", "radians >= 0", self.position_margin_rad)


@dataclass(frozen=True)
class LeggedLimits:
    max_base_tilt_rad: float = math.radians(75.0)  # rl_sar attitude protection 75 deg (legged_control: 90 deg)
    damping_kd_nm_s_per_rad: float = 8.0  # Unitree damping mode: kp 0, kd 8

    def __post_init__(self) -> None:
        _positive(self, "max_base_tilt_rad", "damping_kd_nm_s_per_rad")
        _require(
            self.max_base_tilt_rad <= math.pi,
            "legged.max_base_tilt_rad",
            "radians in (0, pi] (a value above pi is probably in degrees: multiply by pi/180)",
            self.max_base_tilt_rad,
        )


@dataclass(frozen=True)
class SafetyProfile:
    """Limits for one robot. ``quadrotor`` is set for QUADROTOR; ``joints`` for ARM and LEGGED; ``legged`` for LEGGED."""

    robot_class: RobotClass
    common: CommonLimits = field(default_factory=CommonLimits)
    quadrotor: QuadrotorLimits | None = None
    joints: JointLimits | None = None
    legged: LeggedLimits | None = None

    def __post_init__(self) -> None:
        rc = self.robot_class
        _require(isinstance(rc, RobotClass), "robot_class", f"one of {[c.value for c in RobotClass]}", rc)
        if rc is RobotClass.QUADROTOR:
            _require(self.quadrotor is not None, "quadrotor", "a quadrotor section for robot_class quadrotor", None)
            _require(
                self.joints is None and self.legged is None,
                "joints/legged",
                "no joint sections for a quadrotor",
                "a joints or legged section",
            )
        else:
            _require(
                self.joints is not None,
                "joints",
                f"a joints section for robot_class {rc.value}",
                None,
                "give names, position_min_rad, position_max_rad, velocity_max_rad_s, torque_max_nm, gains",
            )
            _require(self.quadrotor is None, "quadrotor", f"no quadrotor section for robot_class {rc.value}", "one")
            if rc is RobotClass.LEGGED and self.legged is None:
                object.__setattr__(self, "legged", LeggedLimits())
            _require(rc is RobotClass.LEGGED or self.legged is None, "legged", "no legged section for an arm", "one")

    # --- the command this robot takes: values (A,) with per-element [low, high] and max rate ---
    @property
    def command_size(self) -> int:
        return 4 if self.quadrotor is not None else len(self.joints.names)

    def command_low(self) -> np.ndarray:
        if self.quadrotor is not None:
            return np.full(4, self.quadrotor.body.min_rpm)
        return np.asarray(self.joints.position_min_rad, dtype=float)

    def command_high(self) -> np.ndarray:
        if self.quadrotor is not None:
            return np.full(4, self.quadrotor.body.max_rpm)
        return np.asarray(self.joints.position_max_rad, dtype=float)

    @property
    def fallback_max_s(self) -> float:
        """The longest the layer's own fallback runs before it ends by itself [s]: a quadrotor lands (position
        hold + descent + timeout, or the attitude-only descent, or blind_timeout_s without a state); a joint
        robot's fallback does not end by itself (0.0: the runtime bounds it with its own hold time)."""
        if self.quadrotor is None:
            return 0.0
        q = self.quadrotor
        fb = q.fallback
        height = max(q.envelope.altitude_ceiling_m - fb.ground_z_m, 0.0)
        held = fb.hover_s + height / fb.descent_rate_m_s + fb.landing_timeout_margin_s
        # worst case: the position goes suspect at the end of a held descent, then the attitude-only descent
        return held + q.level_descent_max_s() + fb.blind_timeout_s

    def command_max_rate_per_s(self) -> np.ndarray:
        """Max change of each command element per second (RPM/s or rad/s)."""
        if self.quadrotor is not None:
            return np.full(4, self.quadrotor.body.max_rpm_rate_per_s)
        return np.asarray(self.joints.target_max_rate_rad_s, dtype=float)


def crazyflie_profile() -> SafetyProfile:
    """Crazyflie 2.x at 100 Hz with the defaults above."""
    return SafetyProfile(RobotClass.QUADROTOR, CommonLimits(control_period_s=0.01), quadrotor=QuadrotorLimits())


def a1_profile() -> SafetyProfile:
    """Unitree A1: limits from unitree_ros a1_description URDF; 33.5 N m / 21 rad/s (FACTS); Kp 20, Kd 0.5."""
    names = tuple(f"{leg}_{j}_joint" for leg in ("FR", "FL", "RR", "RL") for j in ("hip", "thigh", "calf"))
    lo = (-0.802851455917, -1.0471975512, -2.69653369433) * 4
    hi = (0.802851455917, 4.18879020479, -0.916297857297) * 4
    joints = JointLimits(names, lo, hi, 21.0, 33.5, kp_nm_per_rad=20.0, kd_nm_s_per_rad=0.5)
    return SafetyProfile(RobotClass.LEGGED, CommonLimits(control_period_s=0.02), joints=joints, legged=LeggedLimits())


def franka_profile() -> SafetyProfile:
    """Franka Emika Panda: joint limits from the FCI robot specification; gains from libfranka's joint
    impedance example; commanded at 50 Hz (the policy rate; the 1 kHz FCI loop interpolates)."""
    names = tuple(f"panda_joint{i}" for i in range(1, 8))
    lo = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
    hi = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
    vel = (2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100)
    tau = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
    kp = (600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0)
    kd = (50.0, 50.0, 50.0, 20.0, 20.0, 20.0, 10.0)
    joints = JointLimits(names, lo, hi, vel, tau, kp, kd)
    return SafetyProfile(RobotClass.ARM, CommonLimits(control_period_s=0.02), joints=joints)


PRESETS = {"crazyflie": crazyflie_profile, "a1": a1_profile, "franka": franka_profile}
