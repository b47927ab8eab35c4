"""SafetyLayer: the state machine, the ordered checks and the command limiter in one object.

Every command leaving the runtime is the return value of :meth:`SafetyLayer.filter`. The runtime loop calls,
with ``now`` from ``time.monotonic()``:

    layer.on_state(sample, now)       # each time the driver delivers a state
    layer.heartbeat(now)              # each time the operator's dead-man heartbeat arrives
    cmd = layer.filter(action, now, inference_time_s)   # once per control period; send cmd to the robot
    layer.arm(now) / layer.disarm(now) / layer.estop(now, reason) / layer.reset(now)   # operator commands
    layer.input_fault(now, name, reason) / layer.clear_input_fault(name)   # integrity faults seen outside

The layer never reads a clock, never sleeps and never raises on bad data in ``filter``.
An e-stop (operator, hardware input or an ESTOP verdict) is latched until :meth:`reset`; ``disarm`` does not
clear it. State samples pass a consistency gate (deploy/safety/consistency.py) before they are used.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from deploy.safety.check_list import build_checks, worst
from deploy.safety.checks import Severity, Verdict, vector
from deploy.safety.consistency import ConsistencyGate, InputFault, StateTrust
from deploy.safety.fallback import ClassCommand, Trust, behaviour_for
from deploy.safety.inputs import CommandMode, SafeCommand, SafetyInputs, StateSample
from deploy.safety.limits import SafetyProfile
from deploy.safety.state_machine import SafetyState, SafetyStateMachine, Transition

__all__ = ["SafetyLayer", "build_checks", "worst"]

logger = logging.getLogger(__name__)


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
        self._hw_estop_active = False  # the newest received sample reports the hardware e-stop input active
        self.gate = ConsistencyGate(profile)
        self.trust = StateTrust(profile.common)
        self._heartbeat_after_s = -math.inf  # after a reset, only heartbeats later than the reset count
        self._state_since_reset = True  # a state sample was accepted since the last reset
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

    @property
    def position_trusted(self) -> bool:
        """False once the state is suspect (an inconsistent sample, or an input fault that may feed the
        position). Latched in flight; trusted again only on the ground after consistency_recover_s clean."""
        return self.trust.position_trusted

    @property
    def velocity_trusted(self) -> bool:
        """False once the velocity jumped inconsistently or an input fault may feed it (latched like position)."""
        return self.trust.velocity_trusted

    @property
    def estop_latched(self) -> bool:
        """An e-stop (any source) is latched: the state is ESTOP until :meth:`reset`."""
        return self._estop_latched

    @property
    def input_faults(self) -> dict[str, InputFault]:
        return dict(self.trust.faults)

    @property
    def last_trusted_state(self) -> StateSample | None:
        """The last sample accepted while the position was trusted."""
        return self.trust.last_trusted

    def _in_flight(self) -> bool:
        return self.state in (SafetyState.ARMING, SafetyState.ACTIVE, SafetyState.FALLBACK)

    # --- inputs ---
    def on_state(self, sample: StateSample, now: float) -> bool:
        """Accept a state sample if its stamp is finite, newer than the last accepted one, not ahead of ``now``
        by more than ``max_state_future_s``, not older than ``max_state_age_s`` on arrival, and the sample is
        consistent with the last accepted one (deploy/safety/consistency.py). Returns whether it was accepted;
        a rejected sample is never used (inconsistent ones are counted and can mark the state suspect)."""
        stamp = getattr(sample, "stamp_s", None)
        c = self.profile.common
        if isinstance(sample, StateSample):
            # the hardware e-stop input is honoured from every sample, even one rejected below
            self._hw_estop_active = bool(sample.estop_pressed)
            if self._hw_estop_active:
                self._estop_latched = True
                if self.state is not SafetyState.ESTOP:
                    self.machine.go(SafetyState.ESTOP, self._time(now), "hardware e-stop input is active", "estop")
        why = ""
        if not isinstance(sample, StateSample):
            why = f"expected a StateSample, found {type(sample).__name__}"
        elif not (
            isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and math.isfinite(stamp)
        ) or not math.isfinite(now):
            why = f"stamp {stamp!r} or now {now!r} is not finite"
        elif self.latest_state is not None and stamp <= self.latest_state.stamp_s:
            why = f"stamp {stamp} is not newer than the last accepted {self.latest_state.stamp_s}"
        elif stamp > now + c.max_state_future_s:
            why = f"stamp {stamp} is ahead of now {now} (drivers must stamp in the runtime's monotonic clock)"
        elif now - stamp > c.max_state_age_s:
            why = f"stamp {stamp} is {now - stamp:.3f} s old on arrival (> max_state_age_s {c.max_state_age_s} s)"
        if why:
            logger.debug("state sample rejected: %s", why)
            return False
        suspect_in_flight = self._in_flight() and not (self.position_trusted and self.velocity_trusted)
        result = self.gate.check(sample, c.max_state_age_s if suspect_in_flight else math.inf)
        if not result.ok:
            agreeing = self.gate.reject(sample)
            self.trust.rejected(now, result, self._in_flight())
            if self._in_flight() or agreeing < c.consistency_reanchor_samples:
                logger.debug("state sample rejected: %s", result.reason)
                return False
            logger.warning(
                "state gate re-anchored on the ground after %d agreeing samples (state stays suspect)", agreeing
            )
        self.gate.accept(sample)
        self.latest_state = sample
        self.trust.accepted(sample)
        self._state_since_reset = True
        return True

    def heartbeat(self, now: float) -> None:
        """The operator's dead-man heartbeat arrived at ``now`` (seconds)."""
        if (
            math.isfinite(now)
            and now > self._heartbeat_after_s
            and (self.last_heartbeat_s is None or now > self.last_heartbeat_s)
        ):
            self.last_heartbeat_s = float(now)

    def input_fault(
        self, now: float, name: str, reason: str, position_suspect: bool = True, velocity_suspect: bool | None = None
    ) -> None:
        """An integrity fault seen outside the layer (e.g. "a second writer publishes state/pose"). While any is
        present: ``arm`` refuses naming it, ARMING -> DISARMED, ACTIVE -> FALLBACK (check ``input_integrity``).
        position_suspect: the samples the runtime passes may come from the faulty source (False only when the
        runtime passes samples of a pinned writer alone); marks the position suspect, latched in flight.
        velocity_suspect: the same for the velocity; None -> as position_suspect."""
        vel = position_suspect if velocity_suspect is None else velocity_suspect
        t = float(now) if math.isfinite(now) else self._time(now)
        fault = InputFault(str(name), str(reason), t, bool(position_suspect), bool(vel))
        if self.trust.faults.get(fault.name, None) != fault:
            logger.warning("input fault %s: %s (position suspect: %s)", fault.name, fault.reason, position_suspect)
        self.trust.add_fault(fault)

    def clear_input_fault(self, name: str) -> None:
        """The fault ``name`` is gone. A position it marked suspect stays suspect in flight (see position_trusted)."""
        if self.trust.faults.pop(str(name), None) is not None:
            logger.info("input fault %s cleared", name)

    # --- operator commands ---
    def arm(self, now: float) -> bool:
        """DISARMED -> ARMING if every check is OK on the latest state and heartbeat. Returns whether it armed."""
        if self._estop_latched or self.state is SafetyState.ESTOP:
            logger.warning("arm refused: the e-stop is latched (reset it first)")
            return False
        if self.state is not SafetyState.DISARMED:
            logger.warning("arm refused: state is %s, arm only from DISARMED", self.state.name)
            return False
        if not math.isfinite(now):
            logger.warning("arm refused: now=%r is not finite", now)
            return False
        if not self._state_since_reset:
            logger.warning("arm refused: no state sample accepted since the e-stop reset")
            return False
        self.trust.refresh(now, on_ground=True)
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
        """ARMING / ACTIVE / FALLBACK -> DISARMED; actuators go off next cycle. Does not clear an e-stop: in
        ESTOP it is refused (logged); use :meth:`reset`."""
        if self.state is SafetyState.ESTOP:
            logger.warning("disarm ignored: the e-stop is latched (reset it with reset())")
            return
        if self.state is not SafetyState.DISARMED:
            self.machine.go(SafetyState.DISARMED, self._time(now), reason, "operator.disarm")

    def estop(self, now: float, reason: str = "operator e-stop") -> None:
        """Any state (DISARMED included) -> ESTOP, latched until :meth:`reset`. Actuators go off at the next
        ``filter`` call (stop category 0)."""
        self._estop_latched = True
        if self.state is not SafetyState.ESTOP:
            self.machine.go(SafetyState.ESTOP, self._time(now), reason, "operator.estop")

    def reset(self, now: float, reason: str = "operator reset") -> bool:
        """ESTOP -> DISARMED, the only way out of ESTOP. Refused (False, logged) in any other state and while the
        hardware e-stop input of the latest state is still active. A new arm then needs a heartbeat later than
        ``now``, a state sample accepted after the reset and every check OK."""
        if self.state is not SafetyState.ESTOP:
            logger.warning("reset ignored: state is %s (reset only leaves ESTOP)", self.state.name)
            return False
        if self._hw_estop_active:
            logger.warning("reset refused: the hardware e-stop input is still active")
            return False
        t = self._time(now)
        self._estop_latched = False
        self.last_heartbeat_s = None
        self._heartbeat_after_s = t
        self._state_since_reset = False
        self.machine.go(SafetyState.DISARMED, t, reason, "operator.reset")
        return True

    def request_fallback(self, now: float, reason: str, check: str = "operator.fallback") -> bool:
        """ACTIVE -> FALLBACK now (the runtime's land request, a failed policy step); ARMING -> DISARMED.
        Returns whether the state changed; other states are left as they are."""
        t = self._time(now)
        if self.state is SafetyState.ACTIVE:
            self.machine.go(SafetyState.FALLBACK, t, reason, check)
            self.behaviour.start_fallback(t, self.latest_state, self._fresh(t), self.last_command.values, self._trust())
            return True
        if self.state is SafetyState.ARMING:
            self.machine.go(SafetyState.DISARMED, t, f"arming aborted: {reason}", check)
            return True
        return False

    # --- the cycle ---
    def filter(self, action: np.ndarray | None, now: float, inference_time_s: float | None) -> SafeCommand:
        """Run the checks, step the state machine, return the command that may leave the runtime.
        action: (A,) raw policy output in command units (RPM or rad); inference_time_s: seconds."""
        t = self._time(now)
        dt = 0.0 if self._last_now is None else max(t - self._last_now, 0.0)
        backwards = self._last_now - now if self._last_now is not None and math.isfinite(now) else 0.0
        required = self.state in (SafetyState.ARMING, SafetyState.ACTIVE)
        self.trust.refresh(t, on_ground=not self._in_flight())
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
            trust=self.trust.status(),
        )

    def _trust(self) -> Trust:
        return Trust(self.position_trusted, self.velocity_trusted, self.trust.last_trusted)

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
            self._estop_latched = True
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
            self.behaviour.start_fallback(t, self.latest_state, self._fresh(t), self.last_command.values, self._trust())

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
            command = self._make(ClassCommand(target, kp, kd), CommandMode.POLICY, t, "", dt)
            self.behaviour.observe_policy(t, self.latest_state, self._fresh(t), command.values)
            return command
        if state is SafetyState.ARMING:
            return self._make(self.behaviour.arming_command(self.latest_state, last), CommandMode.ARMING, t, "", dt)
        if state is SafetyState.FALLBACK:
            out = self.behaviour.fallback_command(t, self.latest_state, self._fresh(t), last, self._trust())
            if out.done or out.escalate:
                to = SafetyState.ESTOP if out.escalate else SafetyState.DISARMED
                self._estop_latched = self._estop_latched or out.escalate
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
