"""Excitation for system identification: input doublets the runtime adds to the policy's command during the hover.

A hover log determines the mass and little else (``calibration.sysid.identifiability``): the body barely rotates,
so the torque regressors that carry the inertias are mostly noise. A **doublet** on one axis (``+A`` for
``pulse_s``, ``-A`` for ``pulse_s``, then ``gap_s`` of nothing) gives a known, zero-mean torque pulse the policy
then corrects, the classic flight-test input for identifying rate dynamics. Profile (``plan.excitation``)::

    plan: {height_m: 1.0, hover_s: 16.0,
           excitation: {axes: [roll, pitch, yaw, thrust], amplitude: 0.12, pulse_s: 0.08, gap_s: 1.2,
                        repeats: 2, start_s: 3.0, max_tilt_rad: 0.5, max_rate_rad_s: 6.0}}

- The doublet is added to the policy's normalized action before the safety layer, which still bounds the command.
  Per axis, the pattern over the action (:data:`PATTERNS`): for an ``rpm`` policy the rotor combination of the
  project's motor layout (``sim.quadrotor.params``: roll torque ~ -F1 - F2 + F3 + F4, pitch ~ -F1 + F2 + F3 - F4,
  yaw ~ F1 - F2 + F3 - F4, thrust ~ all four); for a ``ctbr`` policy the body rate or the collective thrust.
- A doublet starts only when the vehicle's tilt is below half of ``max_tilt_rad`` and its body rates below half of
  ``max_rate_rad_s``; it is skipped otherwise. A running doublet stops at once when the tilt or the rates pass the
  whole bound. Both are logged: the log says which doublets were flown.
- It runs inside the hover phase, from ``start_s`` after the hover starts; a plan whose hover is too short for it
  is refused with the hover it needs.
- The policy's own action stays its observation's ``last action`` and is what ``policy/action`` records (so a
  replay of the log still matches the policy); the doublet is recorded as ``policy/excitation`` and the command the
  vehicle got carries it (what system identification reads).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields

import numpy as np

log = logging.getLogger("sim2real.deploy")

AXES = ("roll", "pitch", "yaw", "thrust")
#: per action interface and axis, the direction in the normalized action (unit entries)
PATTERNS: dict[str, dict[str, tuple[float, ...]]] = {
    "rpm": {  # motors M1..M4: front-right, back-right, back-left, front-left (sim.quadrotor.params)
        "roll": (-1.0, -1.0, 1.0, 1.0),
        "pitch": (-1.0, 1.0, 1.0, -1.0),
        "yaw": (1.0, -1.0, 1.0, -1.0),
        "thrust": (1.0, 1.0, 1.0, 1.0),
    },
    "ctbr": {  # collective thrust, roll rate, pitch rate, yaw rate
        "roll": (0.0, 1.0, 0.0, 0.0),
        "pitch": (0.0, 0.0, 1.0, 0.0),
        "yaw": (0.0, 0.0, 0.0, 1.0),
        "thrust": (1.0, 0.0, 0.0, 0.0),
    },
}
MAX_AMPLITUDE = 0.5  # of the normalized action range: more is not an excitation, it is a manoeuvre


class ExcitationError(ValueError):
    """An excitation the runtime will not fly; the message says what to change."""


def _number(name: str, value: object, low: float, high: float = math.inf, low_open: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if math.isfinite(high) else "")
        raise ExcitationError(f"plan.excitation.{name}: expected a number {bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Excitation:
    """Doublets on ``axes`` (in order, ``repeats`` times). Amplitude in normalized action units; times in s."""

    axes: tuple[str, ...] = AXES
    amplitude: float = 0.12
    pulse_s: float = 0.08
    gap_s: float = 1.2
    repeats: int = 2
    start_s: float = 3.0
    max_tilt_rad: float = 0.5
    max_rate_rad_s: float = 6.0

    def __post_init__(self) -> None:
        axes = (self.axes,) if isinstance(self.axes, str) else tuple(self.axes)
        bad = [a for a in axes if a not in AXES]
        if not axes or bad:
            raise ExcitationError(f"plan.excitation.axes: expected a list of {list(AXES)}, got {list(axes)!r}")
        object.__setattr__(self, "axes", axes)
        _number("amplitude", self.amplitude, 0.0, MAX_AMPLITUDE)
        _number("pulse_s", self.pulse_s, 0.0, 1.0)
        _number("gap_s", self.gap_s, 0.0)
        if not (isinstance(self.repeats, int) and not isinstance(self.repeats, bool) and self.repeats >= 1):
            raise ExcitationError(f"plan.excitation.repeats: expected an integer >= 1, got {self.repeats!r}")
        _number("start_s", self.start_s, 0.0, low_open=False)
        _number("max_tilt_rad", self.max_tilt_rad, 0.0, math.pi / 2)
        _number("max_rate_rad_s", self.max_rate_rad_s, 0.0)

    @classmethod
    def from_dict(cls, data: object) -> Excitation:
        if not isinstance(data, dict):
            raise ExcitationError(f"plan.excitation: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ExcitationError(f"plan.excitation: unknown keys {unknown}; keys are {sorted(known)}")
        return cls(**data)

    @property
    def slot_s(self) -> float:
        return 2.0 * self.pulse_s + self.gap_s

    @property
    def doublets(self) -> int:
        return self.repeats * len(self.axes)

    @property
    def duration_s(self) -> float:
        """From the start of the hover to the end of the last doublet's gap."""
        return self.start_s + self.doublets * self.slot_s

    def check_interface(self, interface: str) -> None:
        if interface not in PATTERNS:
            raise ExcitationError(
                f"plan.excitation: no doublet pattern for a {interface!r} policy; patterns exist for {sorted(PATTERNS)}"
            )


@dataclass
class ExcitationRun:
    """One flight's doublets at control period ``period_s``: which were flown, skipped or stopped (the run's summary
    and the log say it). Each half of a doublet is a whole number of control cycles (``pulse_s`` rounded), so a
    doublet flown to its end is exactly zero-mean whatever the loop's jitter; the slots start on time."""

    excitation: Excitation
    interface: str
    period_s: float
    flown: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    _slot: int = -1  # the slot whose gate was decided
    _running: bool = False
    _cycles: int = 0  # cycles of the running doublet so far

    def __post_init__(self) -> None:
        self.excitation.check_interface(self.interface)
        self.half_cycles = max(1, round(self.excitation.pulse_s / self.period_s))

    def _name(self, slot: int) -> str:
        axes = self.excitation.axes
        return f"{axes[slot % len(axes)]} #{slot // len(axes) + 1}"

    def delta(self, hover_t: float, tilt_rad: float, rate_rad_s: float) -> np.ndarray | None:
        """The normalized action to add ``hover_t`` s into the hover, or None (no doublet now)."""
        e = self.excitation
        t = hover_t - e.start_s
        if t < 0.0:
            return None
        slot = int(t // e.slot_s)
        if slot != self._slot:  # the first cycle of a slot decides whether its doublet is flown
            self._end()  # one still running when the next is due (a stalled loop) counts as stopped
            self._slot, self._cycles = slot, 0
            if slot >= e.doublets:
                return None
            self._running = tilt_rad < 0.5 * e.max_tilt_rad and rate_rad_s < 0.5 * e.max_rate_rad_s
            if not self._running:
                self.skipped.append(self._name(slot))
                log.warning(
                    "excitation: doublet %s skipped (tilt %.2f rad, rates %.2f rad/s; it starts below %.2f, %.2f)",
                    self._name(slot), tilt_rad, rate_rad_s, 0.5 * e.max_tilt_rad, 0.5 * e.max_rate_rad_s,
                )  # fmt: skip
        if not self._running:
            return None
        if tilt_rad > e.max_tilt_rad or rate_rad_s > e.max_rate_rad_s:
            log.warning("excitation: doublet %s stopped (tilt %.2f rad, rates %.2f rad/s)", self._name(slot),
                        tilt_rad, rate_rad_s)  # fmt: skip
            self._end()
            return None
        if self._cycles >= 2 * self.half_cycles:
            self._end()
            return None
        sign = 1.0 if self._cycles < self.half_cycles else -1.0
        self._cycles += 1
        return sign * e.amplitude * np.asarray(PATTERNS[self.interface][e.axes[slot % len(e.axes)]], np.float32)

    def _end(self) -> None:
        """A doublet ends flown when all its cycles went out, stopped otherwise."""
        if self._running:
            (self.flown if self._cycles >= 2 * self.half_cycles else self.stopped).append(self._name(self._slot))
        self._running = False

    def summary(self) -> dict:
        if self._running and self._cycles >= 2 * self.half_cycles:
            self._end()
        return {"flown": list(self.flown), "skipped": list(self.skipped), "stopped": list(self.stopped)}
