"""Per robot class: the stop, arming and fallback commands.

    quadrotor  STOP: 0 RPM (motors off).  ARMING: all motors at min_rpm (idle spin).
               (ctbr: STOP thrust 0 and rates 0; ARMING the thrust at min_rpm and rates 0; the fallback's
               commands below as collective thrust and rate setpoints, see quadrotor_control.py.)
               FALLBACK, position trusted: PD/PID hover where the fault happened for hover_s, descend at
               descent_rate_m_s, motors off at the floor (-> DISARMED).
               FALLBACK, position suspect (from the start or at any time during the fallback; never back):
               level and descend on attitude, body rates and the velocity if trusted (LevelDescentController),
               motors off at a touchdown or after level_descent_max_s (-> DISARMED with touchdown evidence or a
               low last trusted height, else -> ESTOP).
               Without a valid fresh state: equal thrust below the weight (sink) for at most blind_timeout_s,
               then motors off (-> ESTOP).
    legged     STOP: zero torque (kp = kd = 0).  ARMING: hold the measured pose with the profile's gains.
               FALLBACK: damping (kp = 0, kd = damping_kd_nm_s_per_rad; Unitree damping mode kp 0, kd 8).
    arm        STOP: zero torque.  ARMING: hold the position measured when arming. FALLBACK: hold the position
               measured when the fallback started; with a suspect state, the last trusted one (accepted before
               the state went suspect), never the newest sample.

Position targets of joint robots always stay inside the joint limits, also when their gains are zero.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from deploy.safety.checks import unit_quaternion, vector
from deploy.safety.inputs import StateSample
from deploy.safety.limits import RobotClass, SafetyProfile
from deploy.safety.quadrotor_control import LevelDescentController
from deploy.safety.trim import TrimEstimator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassCommand:
    """values: (A,) command units. done: the fallback finished (motors off -> DISARMED).
    escalate: the fallback cannot go on (-> ESTOP). kp/kd: (A,) joint gains, None for a quadrotor."""

    values: np.ndarray
    kp: np.ndarray | None = None
    kd: np.ndarray | None = None
    done: bool = False
    escalate: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Trust:
    """What the fallback may use. position / velocity: trusted (see deploy/safety/consistency.py);
    last_trusted: the last sample accepted while the position was trusted."""

    position: bool = True
    velocity: bool = True
    last_trusted: StateSample | None = None


TRUSTED = Trust()

#: a measured value beyond this magnitude is treated as garbage (no robot here is 1000 km away or spins that fast)
PLAUSIBLE_MAGNITUDE = 1e6


def _finite(value: object, size: int) -> np.ndarray | None:
    arr = vector(value, size)
    return arr if arr is not None and np.all(np.abs(arr) < PLAUSIBLE_MAGNITUDE) else None


class QuadrotorBehaviour:
    def __init__(self, profile: SafetyProfile) -> None:
        self.profile = profile
        self.limits = profile.quadrotor
        self.controller = LevelDescentController(self.limits)
        self.trim = TrimEstimator(self.limits)
        self.last_valid_s = 0.0

    def observe_policy(self, now: float, state: StateSample | None, fresh: bool, values: np.ndarray) -> None:
        """A policy command that left the runtime (ACTIVE): feeds the fallback's trim (deploy/safety/trim.py)."""
        self.trim.observe(now, state, fresh, values)

    def stop_command(self, state: StateSample | None, last_values: np.ndarray) -> ClassCommand:
        return ClassCommand(np.zeros(4))

    def start_arming(self, state: StateSample | None, last_values: np.ndarray) -> None:
        self.trim.reset()

    def arming_command(self, state: StateSample | None, last_values: np.ndarray) -> ClassCommand:
        if self.limits.interface == "ctbr":
            return ClassCommand(np.array([self.limits.thrust_range_n()[0], 0.0, 0.0, 0.0]))  # idle thrust, no rates
        return ClassCommand(np.full(4, self.limits.body.min_rpm))

    def _measured(self, state: StateSample | None, fresh: bool) -> tuple[np.ndarray, ...] | None:
        if state is None or not fresh:
            return None
        parts = (
            _finite(state.position_m, 3),
            _finite(state.velocity_m_s, 3),
            unit_quaternion(state.quat_wxyz),
            _finite(state.body_rates_rad_s, 3),
        )
        if any(p is None for p in parts):
            return None
        return parts

    def start_fallback(
        self, now: float, state: StateSample | None, fresh: bool, last_values: np.ndarray, trust: Trust = TRUSTED
    ) -> None:
        self.controller.level = None
        self.last_valid_s = now
        self.controller.trim_nm = self.trim.torque_nm()
        self.controller.thrust_scale = self.trim.thrust_scale()
        if self.trim.enabled:
            log.info("fallback trim %s N m (roll, pitch, yaw) from %.2f s of steady flight",
                     np.array2string(self.controller.trim_nm, precision=6), self.trim.weight_s)  # fmt: skip
        if self.trim.thrust_enabled:
            log.info("fallback thrust x%.3f of nominal from %.2f s of flight", self.controller.thrust_scale,
                     self.trim.thrust_weight_s)  # fmt: skip
        self.controller.motors.restart(now, last_values)  # a new model, the motors at the policy's last command
        if not trust.position:
            self._start_level(now, trust)
            return
        measured = self._measured(state, fresh)
        self.controller.start(now, None if measured is None else measured[0])

    def _start_level(self, now: float, trust: Trust) -> None:
        last = None if trust.last_trusted is None else _finite(trust.last_trusted.position_m, 3)
        self.controller.start_level(now, math.nan if last is None else float(last[2]))

    def _blind(self, now: float) -> ClassCommand:
        blind_s = now - self.last_valid_s
        if blind_s > self.limits.fallback.blind_timeout_s:
            return ClassCommand(np.zeros(4), escalate=True, reason=f"no valid state for {blind_s:.2f} s")
        return ClassCommand(self.controller.blind_command(), reason="no valid state: sinking at equal thrust")

    def fallback_command(
        self, now: float, state: StateSample | None, fresh: bool, last_values: np.ndarray, trust: Trust = TRUSTED
    ) -> ClassCommand:
        self.controller.motors.sent(now, last_values)
        if not trust.position or self.controller.level is not None:
            return self._level_command(now, state, fresh, trust)
        measured = self._measured(state, fresh)
        if measured is None:
            return self._blind(now)
        self.last_valid_s = now
        if self.controller.landed(measured[0]):
            return ClassCommand(np.zeros(4), done=True, reason=f"landed at z = {measured[0][2]:.3f} m, motors off")
        if self.controller.phase is not None and now > self.controller.touchdown_deadline_s():
            return ClassCommand(np.zeros(4), done=True, reason="landing timeout, motors off")
        return ClassCommand(self.controller.command(now, *measured, stamp_s=state.stamp_s))

    def _level_command(self, now: float, state: StateSample | None, fresh: bool, trust: Trust) -> ClassCommand:
        """Position suspect: attitude, rates and (trusted) velocity only; the position is never read."""
        ctl = self.controller
        if ctl.level is None:
            self._start_level(now, trust)
        quat = unit_quaternion(None if state is None or not fresh else state.quat_wxyz)
        rates = None if state is None or not fresh else _finite(state.body_rates_rad_s, 3)
        if quat is None or rates is None:
            return self._blind(now)
        self.last_valid_s = now
        velocity = _finite(state.velocity_m_s, 3) if trust.velocity else None
        if ctl.touchdown(now, velocity):
            return ClassCommand(np.zeros(4), done=True, reason="position suspect: touchdown (speed ~0), motors off")
        if now > ctl.deadline_s():
            if ctl.started_low():
                return ClassCommand(
                    np.zeros(4), done=True, reason="position suspect: last trusted height at the floor, motors off"
                )
            return ClassCommand(
                np.zeros(4),
                escalate=True,
                reason=f"position suspect: no touchdown evidence after {self.limits.level_descent_max_s():.1f} s, "
                "motors off",
            )
        command = ctl.level_command(now, quat, rates, velocity, stamp_s=state.stamp_s)
        return ClassCommand(command, reason="position suspect: level, descend")


class JointBehaviour:
    """Arm (hold) and legged (damping) robots: position targets with PD gains per joint."""

    def __init__(self, profile: SafetyProfile) -> None:
        self.profile = profile
        joints = profile.joints
        self.low, self.high = profile.command_low(), profile.command_high()
        self.kp = np.asarray(joints.kp_nm_per_rad, dtype=float)
        self.kd = np.asarray(joints.kd_nm_s_per_rad, dtype=float)
        self.zero = np.zeros(len(joints.names))
        self.hold = (self.low + self.high) / 2.0

    def observe_policy(self, now: float, state: StateSample | None, fresh: bool, values: np.ndarray) -> None:
        """Joint robots' fallbacks hold or damp: nothing to learn from the policy's commands."""

    def _measured_or(self, state: StateSample | None, fallback_values: np.ndarray) -> np.ndarray:
        q = _finite(None if state is None else state.joint_pos_rad, len(self.low))
        return np.clip(fallback_values if q is None else q, self.low, self.high)

    def stop_command(self, state: StateSample | None, last_values: np.ndarray) -> ClassCommand:
        return ClassCommand(self._measured_or(state, last_values), self.zero, self.zero)

    def start_arming(self, state: StateSample | None, last_values: np.ndarray) -> None:
        self.hold = self._measured_or(state, last_values)

    def arming_command(self, state: StateSample | None, last_values: np.ndarray) -> ClassCommand:
        return ClassCommand(self.hold.copy(), self.kp, self.kd)

    def start_fallback(
        self, now: float, state: StateSample | None, fresh: bool, last_values: np.ndarray, trust: Trust = TRUSTED
    ) -> None:
        if not trust.position:  # never hold a pose measured after the state went suspect
            state, fresh = trust.last_trusted, trust.last_trusted is not None
        self.hold = self._measured_or(state if fresh else None, last_values)

    def fallback_command(
        self, now: float, state: StateSample | None, fresh: bool, last_values: np.ndarray, trust: Trust = TRUSTED
    ) -> ClassCommand:
        if self.profile.robot_class is RobotClass.LEGGED:
            kd = np.full_like(self.kd, self.profile.legged.damping_kd_nm_s_per_rad)
            return ClassCommand(np.clip(last_values, self.low, self.high), self.zero, kd, reason="damping")
        return ClassCommand(self.hold.copy(), self.kp, self.kd, reason="hold position")


def behaviour_for(profile: SafetyProfile) -> QuadrotorBehaviour | JointBehaviour:
    return QuadrotorBehaviour(profile) if profile.robot_class is RobotClass.QUADROTOR else JointBehaviour(profile)
