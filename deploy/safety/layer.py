"""SafetyLayer: the state machine, the ordered checks and the command limiter in one object.

Every command leaving the runtime is the return value of :meth:`SafetyLayer.filter`. The runtime loop calls,
with ``now`` from ``time.monotonic()``:

    layer.on_state(sample, now)       # each time the driver delivers a state
    layer.heartbeat(now)              # each time the operator's dead-man heartbeat arrives
    cmd = layer.filter(action, now, inference_time_s)   # once per control period; send cmd to the robot
    layer.arm(now) / layer.disarm(now) / layer.estop(now, reason)   # operator commands

The layer never reads a clock, never sleeps and never raises on bad data in ``filter``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from deploy.safety.checks import (
    ActionLimitCheck,
    ClockCheck,
    DeadlineCheck,
    EStopCheck,
    FiniteCheck,
    HeartbeatCheck,
    Severity,
    StateWatchdogCheck,
    Verdict,
    vector,
)
from deploy.safety.checks_robot import (
    AltitudeCheck,
    BaseTiltCheck,
    BatteryCheck,
    GeofenceCheck,
    JointRangeCheck,
    TiltCheck,
)
from deploy.safety.fallback import ClassCommand, behaviour_for
from deploy.safety.inputs import CommandMode, SafeCommand, SafetyInputs, StateSample
from deploy.safety.limits import RobotClass, SafetyProfile
from deploy.safety.state_machine import SafetyState, SafetyStateMachine, Transition

logger = logging.getLogger(__name__)


def build_checks(profile: SafetyProfile) -> list:
    """The ordered checks for ``profile``'s robot class. Which checks run depends only on the robot class."""
    c = profile.common
    checks: list = [
        EStopCheck(),
        ClockCheck(),
        StateWatchdogCheck(c.max_state_age_s),
        HeartbeatCheck(c.max_heartbeat_age_s),
        FiniteCheck(profile.command_size),
        DeadlineCheck(c.inference_deadline_s, c.max_consecutive_overruns),
    ]
    if profile.robot_class is RobotClass.QUADROTOR:
        env = profile.quadrotor.envelope
        checks += [
            TiltCheck(env.max_tilt_rad, env.max_tilt_duration_s),
            GeofenceCheck(env.geofence_radius_m, env.geofence_center_xy_m),
            AltitudeCheck(env.altitude_ceiling_m, env.altitude_floor_m),
            BatteryCheck(env.battery_low_fraction, env.battery_critical_fraction),
        ]
    else:
        j = profile.joints
        margin = j.position_margin_rad
        vel, tau = np.asarray(j.velocity_max_rad_s), np.asarray(j.torque_max_nm)
        checks += [
            JointRangeCheck(
                "joint_position",
                "joint_pos_rad",
                "rad",
                profile.command_low() - margin,
                profile.command_high() + margin,
                j.names,
            ),
            JointRangeCheck("joint_velocity", "joint_vel_rad_s", "rad/s", -vel, vel, j.names),
            JointRangeCheck("joint_torque", "joint_torque_nm", "N m", -tau, tau, j.names),
        ]
        if profile.robot_class is RobotClass.LEGGED:
            checks.append(BaseTiltCheck(profile.legged.max_base_tilt_rad))
    checks.append(ActionLimitCheck(profile.command_low(), profile.command_high(), profile.command_max_rate_per_s()))
    return checks


def worst(verdicts: list[Verdict]) -> Verdict:
    """The most severe verdict; on ties the earliest in check order."""
    best = verdicts[0]
    for v in verdicts[1:]:
        if v.severity > best.severity:
            best = v
    return best


class SafetyLayer:
    """Holds the state machine, runs the checks in order every cycle, returns the command that may leave."""

    def __init__(self, profile: SafetyProfile) -> None:
        self.profile = profile
        self.machine = SafetyStateMachine()
        self.checks = build_checks(profile)
        self.behaviour = behaviour_for(profile)
        self.low, self.high = profile.command_low(), profile.command_high()
        self.max_rate_per_s = profile.command_max_rate_per_s()
        self.latest_state: StateSample | None = None
        self.last_heartbeat_s: float | None = None
        self.last_verdicts: list[Verdict] = []
        self._estop_latched = False
        self._last_now: float | None = None
        start = self.behaviour.stop_command(None, (self.low + self.high) / 2.0)
        self.last_command = self._make(start, CommandMode.STOP, 0.0, "initial")
        self._issues: frozenset[str] = frozenset()

    # --- what the runtime reads ---
    @property
    def state(self) -> SafetyState:
        return self.machine.state

    @property
    def transitions(self) -> list[Transition]:
        return self.machine.history

    # --- inputs ---
    def on_state(self, sample: StateSample, now: float) -> bool:
        """Accept a state sample if its stamp is finite, newer than the last one and not ahead of ``now`` by
        more than ``max_state_future_s``. Returns whether it was accepted (rejected ones are logged)."""
        stamp = getattr(sample, "stamp_s", None)
        why = ""
        if not isinstance(sample, StateSample):
            why = f"expected a StateSample, found {type(sample).__name__}"
        elif not (isinstance(stamp, (int, float)) and math.isfinite(stamp) and math.isfinite(now)):
            why = f"stamp {stamp!r} or now {now!r} is not finite"
        elif self.latest_state is not None and stamp <= self.latest_state.stamp_s:
            why = f"stamp {stamp} is not newer than the last accepted {self.latest_state.stamp_s}"
        elif stamp > now + self.profile.common.max_state_future_s:
            why = f"stamp {stamp} is ahead of now {now} (drivers must stamp in the runtime's monotonic clock)"
        if why:
            logger.debug("state sample rejected: %s", why)
            return False
        self.latest_state = sample
        return True

    def heartbeat(self, now: float) -> None:
        """The operator's dead-man heartbeat arrived at ``now`` (seconds)."""
        if math.isfinite(now) and (self.last_heartbeat_s is None or now > self.last_heartbeat_s):
            self.last_heartbeat_s = float(now)

    # --- operator commands ---
    def arm(self, now: float) -> bool:
        """DISARMED -> ARMING if every check is OK on the latest state and heartbeat. Returns whether it armed."""
        if self.state is not SafetyState.DISARMED:
            logger.warning("arm refused: state is %s, arm only from DISARMED", self.state.name)
            return False
        if not math.isfinite(now):
            logger.warning("arm refused: now=%r is not finite", now)
            return False
        inputs = self._inputs(None, False, None, 0.0, 0.0)
        failing = [v for v in (check.evaluate(inputs, now) for check in self.checks) if v.severity > Severity.OK]
        if failing:
            logger.warning("arm refused: %s", "; ".join(f"{v.check}: {v.reason}" for v in failing))
            return False
        for check in self.checks:
            check.reset()
        self.behaviour.start_arming(self.latest_state, self.last_command.values)
        self.machine.go(SafetyState.ARMING, now, "arm command, pre-arm checks OK", "operator.arm")
        return True

    def disarm(self, now: float, reason: str = "operator disarm") -> None:
        """Any state -> DISARMED (from ESTOP this is the operator's reset). Actuators go off next cycle."""
        self._estop_latched = False
        if self.state is not SafetyState.DISARMED:
            self.machine.go(SafetyState.DISARMED, self._time(now), reason, "operator.disarm")

    def estop(self, now: float, reason: str = "operator e-stop") -> None:
        """Any state -> ESTOP, latched until :meth:`disarm`. Actuators go off next cycle (stop category 0)."""
        self._estop_latched = True
        if self.state is not SafetyState.ESTOP:
            self.machine.go(SafetyState.ESTOP, self._time(now), reason, "operator.estop")

    # --- the cycle ---
    def filter(self, action: np.ndarray | None, now: float, inference_time_s: float | None) -> SafeCommand:
        """Run the checks, step the state machine, return the command that may leave the runtime.
        action: (A,) raw policy output in command units (RPM or rad); inference_time_s: seconds."""
        t = self._time(now)
        dt = 0.0 if self._last_now is None else max(t - self._last_now, 0.0)
        backwards = self._last_now - now if self._last_now is not None and math.isfinite(now) else 0.0
        required = self.state in (SafetyState.ARMING, SafetyState.ACTIVE)
        inputs = self._inputs(action, required, inference_time_s, dt, max(backwards, 0.0))
        self.last_verdicts = [check.evaluate(inputs, now) for check in self.checks]
        verdict = worst(self.last_verdicts)
        self._log_issues()
        self._step(verdict, t)
        command = self._command(action, t, dt)
        self.last_command = command
        self._last_now = t
        return command

    # --- internals ---
    def _time(self, now: float) -> float:
        """A finite, non-decreasing time for records and rate limits."""
        last = self._last_now if self._last_now is not None else 0.0
        return max(float(now), last) if math.isfinite(now) else last

    def _inputs(self, action, required, inference_time_s, dt, backwards) -> SafetyInputs:
        return SafetyInputs(
            state=self.latest_state,
            action=action,
            action_required=required,
            inference_time_s=inference_time_s,
            last_heartbeat_s=self.last_heartbeat_s,
            previous_values=self.last_command.values,
            dt_s=dt,
            now_backwards_s=backwards,
            estop_requested=self._estop_latched,
        )

    def _log_issues(self) -> None:
        issues = frozenset(v.check for v in self.last_verdicts if v.severity > Severity.OK)
        level = logging.INFO if self.state in (SafetyState.DISARMED, SafetyState.ESTOP) else logging.WARNING
        for v in self.last_verdicts:
            if v.check in issues - self._issues:
                logger.log(level, "safety check %s: %s (%s)", v.check, v.reason, v.severity.name)
        self._issues = issues

    def _step(self, verdict: Verdict, t: float) -> None:
        state, sev = self.state, verdict.severity
        if sev is Severity.ESTOP and (state is not SafetyState.DISARMED or verdict.check == "estop"):
            if state is not SafetyState.ESTOP:
                self.machine.go(SafetyState.ESTOP, t, verdict.reason, verdict.check)
        elif state is SafetyState.ARMING:
            if sev is Severity.FALLBACK:
                self.machine.go(SafetyState.DISARMED, t, f"arming aborted: {verdict.reason}", verdict.check)
            elif (
                t - self.machine.entered_s >= self.profile.common.arming_duration_s
                and self.last_command.mode is CommandMode.ARMING  # the idle/hold command went out first
            ):
                self.machine.go(SafetyState.ACTIVE, t, "arming window clean", "arming")
        elif state is SafetyState.ACTIVE and sev is Severity.FALLBACK:
            self.machine.go(SafetyState.FALLBACK, t, verdict.reason, verdict.check)
            self.behaviour.start_fallback(t, self.latest_state, self._fresh(t), self.last_command.values)

    def _fresh(self, t: float) -> bool:
        s = self.latest_state
        return s is not None and 0.0 <= t - s.stamp_s <= self.profile.common.max_state_age_s

    def _command(self, action, t: float, dt: float) -> SafeCommand:
        state, last = self.state, self.last_command.values
        if state is SafetyState.ACTIVE:
            target = vector(action, self.low.shape[0])
            target = last if target is None else target
            joints = self.profile.joints
            kp = None if joints is None else np.asarray(joints.kp_nm_per_rad, dtype=float)
            kd = None if joints is None else np.asarray(joints.kd_nm_s_per_rad, dtype=float)
            return self._make(ClassCommand(target, kp, kd), CommandMode.POLICY, t, "", dt)
        if state is SafetyState.ARMING:
            return self._make(self.behaviour.arming_command(self.latest_state, last), CommandMode.ARMING, t, "", dt)
        if state is SafetyState.FALLBACK:
            out = self.behaviour.fallback_command(t, self.latest_state, self._fresh(t), last)
            if out.done or out.escalate:
                to = SafetyState.ESTOP if out.escalate else SafetyState.DISARMED
                self.machine.go(
                    to, t, f"fallback {'cannot continue' if out.escalate else 'complete'}: {out.reason}", "fallback"
                )
            else:
                return self._make(out, CommandMode.FALLBACK, t, out.reason, dt)
        stop = self.behaviour.stop_command(self.latest_state, last)
        return self._make(stop, CommandMode.STOP, t, self.state.name.lower())

    def _make(self, out: ClassCommand, mode: CommandMode, t: float, reason: str, dt: float = 0.0) -> SafeCommand:
        """Clamp to [low, high] and, unless this or the previous command is a STOP, rate-limit against the
        previous command; non-finite target elements keep the previous value."""
        values = np.asarray(out.values, dtype=float).copy()
        if mode is not CommandMode.STOP:
            prev = self.last_command.values
            values = np.where(np.isfinite(values), values, prev)
            if self.last_command.mode is not CommandMode.STOP:
                step = self.max_rate_per_s * dt
                values = prev + np.clip(values - prev, -step, step)
            values = np.clip(values, self.low, self.high)
        return SafeCommand(values, mode, self.state, t, reason, out.kp, out.kd)
