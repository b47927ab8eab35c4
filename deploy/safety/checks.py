"""Checks every robot class runs, and the verdict type all checks return.

A check is a small object with a ``name``, limits with units in their field names, ``evaluate(inputs, now)
-> Verdict`` and ``reset()``. Checks never read a clock and never raise on bad data: missing, misshapen or
non-finite inputs are themselves verdicts. Evaluating twice at the same ``now`` gives the same verdict.
Order (see :func:`deploy.safety.layer.build_checks`): on ties of severity the earlier check's reason wins.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from deploy.safety.inputs import SafetyInputs


class Severity(enum.IntEnum):
    """OK: nothing to do. CLAMP: stay ACTIVE; the command is (or may be) modified, logged.
    FALLBACK: hand over to the robot class's fallback. ESTOP: stop category 0, latched."""

    OK = 0
    CLAMP = 1
    FALLBACK = 2
    ESTOP = 3


@dataclass(frozen=True)
class Verdict:
    severity: Severity
    check: str
    reason: str = ""


def ok(check: str) -> Verdict:
    return Verdict(Severity.OK, check)


def vector(value: object, size: int | None = None) -> np.ndarray | None:
    """``value`` as a float (N,) array, or None if it is missing, not numeric or not of ``size``."""
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 1 or (size is not None and arr.shape[0] != size):
        return None
    return arr


def unit_quaternion(value: object) -> np.ndarray | None:
    """``value`` as a unit (w, x, y, z) quaternion, or None if missing, non-finite or of zero norm.
    Scaled by its largest element first, so huge finite entries do not overflow."""
    q = vector(value, 4)
    if q is None or not np.all(np.isfinite(q)):
        return None
    peak = float(np.max(np.abs(q)))
    if not peak > 0.0:
        return None
    q = q / peak
    return q / math.sqrt(float(q @ q))


def describe_shape(value: object) -> str:
    return "None" if value is None else str(np.shape(value)) if np.ndim(value) else repr(value)


@dataclass
class EStopCheck:
    """Operator e-stop (latched until reset()) or the robot's hardware e-stop input -> ESTOP."""

    name: str = "estop"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        if inputs.estop_requested:
            return Verdict(
                Severity.ESTOP,
                self.name,
                "e-stop is latched (operator, hardware input or an ESTOP verdict; reset with reset())",
            )
        if inputs.state is not None and bool(inputs.state.estop_pressed):
            return Verdict(Severity.ESTOP, self.name, "hardware e-stop input is active")
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class ClockCheck:
    """The runtime clock: a non-finite ``now`` -> ESTOP (no deadline can be kept); ``now`` going backwards by
    more than ``max_backwards_s`` seconds -> FALLBACK (the loop must pass ``time.monotonic()``)."""

    max_backwards_s: float = 0.0
    name: str = "clock"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        if not math.isfinite(now):
            return Verdict(Severity.ESTOP, self.name, f"runtime time now={now!r} is not finite")
        if inputs.now_backwards_s > self.max_backwards_s:
            return Verdict(
                Severity.FALLBACK, self.name, f"runtime clock went backwards by {inputs.now_backwards_s:.6f} s"
            )
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class StateWatchdogCheck:
    """Stale state stream: the latest sample older than ``max_state_age_s`` seconds (or none yet) -> FALLBACK."""

    max_state_age_s: float = 0.1
    name: str = "state_watchdog"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        if inputs.state is None:
            return Verdict(Severity.FALLBACK, self.name, "no state received yet")
        age = now - inputs.state.stamp_s
        if not age <= self.max_state_age_s:
            return Verdict(Severity.FALLBACK, self.name, f"state is {age:.3f} s old > {self.max_state_age_s} s")
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class HeartbeatCheck:
    """Operator dead-man: no heartbeat for ``max_heartbeat_age_s`` seconds (or never) -> FALLBACK."""

    max_heartbeat_age_s: float = 0.5
    name: str = "heartbeat"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        if inputs.last_heartbeat_s is None:
            return Verdict(Severity.FALLBACK, self.name, "no operator heartbeat received yet")
        age = now - inputs.last_heartbeat_s
        if not age <= self.max_heartbeat_age_s:
            return Verdict(
                Severity.FALLBACK, self.name, f"operator heartbeat {age:.3f} s old > {self.max_heartbeat_age_s} s"
            )
        return ok(self.name)

    def reset(self) -> None:
        pass


_STATE_ARRAYS = (
    "position_m",
    "velocity_m_s",
    "quat_wxyz",
    "body_rates_rad_s",
    "joint_pos_rad",
    "joint_vel_rad_s",
    "joint_torque_nm",
    "observation",
)


@dataclass
class FiniteCheck:
    """NaN/inf (or a wrong shape) in the observation, the action or any reported state field -> FALLBACK.
    A missing action is a fault only while one is required (ARMING, ACTIVE). ``action_size``: (A,)."""

    action_size: int
    name: str = "finite"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        if inputs.action is None:
            if inputs.action_required:
                return Verdict(Severity.FALLBACK, self.name, "no policy action this cycle")
        else:
            action = vector(inputs.action, self.action_size)
            if action is None:
                return Verdict(
                    Severity.FALLBACK,
                    self.name,
                    f"action has shape {describe_shape(inputs.action)}, expected ({self.action_size},)",
                )
            if not np.all(np.isfinite(action)):
                return Verdict(Severity.FALLBACK, self.name, f"action is not finite: {action.tolist()}")
        state = inputs.state
        if state is None:
            return ok(self.name)
        for field_name in _STATE_ARRAYS:
            raw = getattr(state, field_name)
            if raw is None:
                continue
            arr = vector(raw)
            if arr is None:
                return Verdict(Severity.FALLBACK, self.name, f"state.{field_name} is not a numeric vector")
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                return Verdict(Severity.FALLBACK, self.name, f"state.{field_name}[{bad[0]}] = {arr[bad[0]]}")
        if state.battery_fraction is not None and not math.isfinite(state.battery_fraction):
            return Verdict(Severity.FALLBACK, self.name, f"state.battery_fraction = {state.battery_fraction}")
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class DeadlineCheck:
    """Inference deadline: a cycle whose inference took longer than ``max_inference_time_s`` seconds (or a
    non-finite/negative time) is an overrun -> CLAMP (logged); ``max_consecutive_overruns`` in a row -> FALLBACK.
    ``inference_time_s=None`` (not measured, e.g. pre-arm) neither counts nor resets."""

    max_inference_time_s: float = 0.02
    max_consecutive_overruns: int = 3
    name: str = "inference_deadline"
    overruns: int = field(default=0, init=False)

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        t = inputs.inference_time_s
        if t is None:
            return ok(self.name)
        if math.isfinite(t) and 0.0 <= t <= self.max_inference_time_s:
            self.overruns = 0
            return ok(self.name)
        self.overruns += 1
        reason = f"inference took {t} s > {self.max_inference_time_s} s ({self.overruns} in a row)"
        severity = Severity.FALLBACK if self.overruns >= self.max_consecutive_overruns else Severity.CLAMP
        return Verdict(severity, self.name, reason)

    def reset(self) -> None:
        self.overruns = 0


@dataclass
class ActionLimitCheck:
    """Action outside [low, high] or changing faster than ``max_rate_per_s`` (units/s) -> CLAMP: the layer's
    limiter clamps and rate-limits it. low, high, max_rate_per_s: (A,) in command units."""

    low: np.ndarray
    high: np.ndarray
    max_rate_per_s: np.ndarray
    name: str = "action_limits"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        action = vector(inputs.action, self.low.shape[0])
        if action is None or not np.all(np.isfinite(action)):
            return ok(self.name)  # FiniteCheck reports it
        outside = np.flatnonzero((action < self.low) | (action > self.high))
        if outside.size:
            i = outside[0]
            return Verdict(
                Severity.CLAMP,
                self.name,
                f"action[{i}] = {action[i]:.6g} outside [{self.low[i]:.6g}, {self.high[i]:.6g}]",
            )
        step = np.abs(action - inputs.previous_values)
        too_fast = np.flatnonzero(step > self.max_rate_per_s * inputs.dt_s)
        if too_fast.size:
            i = too_fast[0]
            return Verdict(Severity.CLAMP, self.name, f"action[{i}] changes faster than {self.max_rate_per_s[i]:.6g}/s")
        return ok(self.name)

    def reset(self) -> None:
        pass
