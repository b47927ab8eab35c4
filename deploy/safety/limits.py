"""Typed safety limit profiles per robot class, with defaults and their sources.

Every field carries its unit in its name. Defaults come from /work/shared/FACTS.md ("Runtime safety: what
trusted systems do"); the source is written next to each. A profile sets limits, never whether a check runs.
Load a profile from the ``safety:`` section of a robot YAML with :func:`deploy.safety.profile_io.load_profile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.safety.limits_base import ProfileError, RobotClass, _positive, _require
from deploy.safety.limits_quadrotor import (  # noqa: F401
    QuadrotorBody,
    QuadrotorConsistency,
    QuadrotorEnvelope,
    QuadrotorFallback,
    QuadrotorFallbackGains,
    QuadrotorLevelDescent,
    QuadrotorLimits,
    QuadrotorRates,
    QuadrotorTouchdown,
)


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
            return self.quadrotor.command_low()
        return np.asarray(self.joints.position_min_rad, dtype=float)

    def command_high(self) -> np.ndarray:
        if self.quadrotor is not None:
            return self.quadrotor.command_high()
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
        """Max change of each command element per second (RPM/s, ctbr N/s and rad/s^2, joints rad/s)."""
        if self.quadrotor is not None:
            return self.quadrotor.command_max_rate_per_s()
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
