"""The safety state machine: five states, an explicit table of allowed transitions, a record of each.

    DISARMED --arm (pre-arm checks pass, no e-stop latched)--> ARMING --arming window clean--> ACTIVE
    ACTIVE --fault / request_fallback--> FALLBACK
    ARMING --fault or disarm--> DISARMED     FALLBACK --landed or disarm--> DISARMED
    any state (DISARMED included) --estop / hardware e-stop / ESTOP verdict--> ESTOP (latched)
    ESTOP --reset (the only way out; disarm is refused there)--> DISARMED
    ARMING / ACTIVE / FALLBACK --disarm--> DISARMED

A transition that is not in :data:`ALLOWED_TRANSITIONS` raises :class:`ForbiddenTransition`: the layer
never attempts one, so reaching it is a bug. Every transition is kept (``history``) and logged.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class SafetyState(enum.Enum):
    DISARMED = "disarmed"  # actuators off; waits for an arm command
    ARMING = "arming"  # pre-flight window: checks must stay clean for arming_duration_s
    ACTIVE = "active"  # the policy's (clamped, rate-limited) command goes out
    FALLBACK = "fallback"  # the robot class's fallback controller drives the robot (stop category 1/2)
    ESTOP = "estop"  # latched stop: actuators off (stop category 0) until the operator's reset()


S = SafetyState

#: (from, to) pairs that may happen; anything else is a bug. The operator's estop is in here from every state,
#: so it can never be refused; disarm from every state but ESTOP, which only ``reset`` leaves (ESTOP, DISARMED).
ALLOWED_TRANSITIONS: frozenset[tuple[SafetyState, SafetyState]] = frozenset(
    {
        (S.DISARMED, S.ARMING),
        (S.DISARMED, S.ESTOP),
        (S.ARMING, S.ACTIVE),
        (S.ARMING, S.DISARMED),
        (S.ARMING, S.ESTOP),
        (S.ACTIVE, S.FALLBACK),
        (S.ACTIVE, S.DISARMED),
        (S.ACTIVE, S.ESTOP),
        (S.FALLBACK, S.DISARMED),
        (S.FALLBACK, S.ESTOP),
        (S.ESTOP, S.DISARMED),
    }
)


class ForbiddenTransition(RuntimeError):
    """A transition outside :data:`ALLOWED_TRANSITIONS` was requested."""


@dataclass(frozen=True)
class Transition:
    """One state change. time_s: runtime monotonic clock, seconds; check: the check (or operator
    command such as ``"operator.arm"``) that caused it."""

    time_s: float
    from_state: SafetyState
    to_state: SafetyState
    reason: str
    check: str

    def __str__(self) -> str:
        return f"t={self.time_s:.4f}s {self.from_state.name} -> {self.to_state.name} [{self.check}]: {self.reason}"


class SafetyStateMachine:
    """Holds the current state and the transition history; enforces the allowed-transition table."""

    def __init__(self) -> None:
        self.state: SafetyState = SafetyState.DISARMED
        self.entered_s: float = 0.0
        self.history: list[Transition] = []

    def can_go(self, to_state: SafetyState) -> bool:
        return (self.state, to_state) in ALLOWED_TRANSITIONS

    def go(self, to_state: SafetyState, now: float, reason: str, check: str) -> Transition:
        """Move to ``to_state``; records and logs the transition. Raises ForbiddenTransition if not allowed."""
        if not self.can_go(to_state):
            raise ForbiddenTransition(
                f"transition {self.state.name} -> {to_state.name} is not allowed (requested by {check}: {reason}); "
                f"allowed from {self.state.name}: "
                f"{sorted(t.name for f, t in ALLOWED_TRANSITIONS if f == self.state)}"
            )
        record = Transition(float(now), self.state, to_state, reason, check)
        self.state = to_state
        self.entered_s = float(now)
        self.history.append(record)
        level = (
            logging.INFO
            if to_state in (SafetyState.ARMING, SafetyState.ACTIVE, SafetyState.DISARMED)
            else logging.WARNING
        )
        if to_state is SafetyState.ESTOP:
            level = logging.ERROR
        logger.log(level, "safety transition %s", record)
        return record
