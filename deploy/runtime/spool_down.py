"""Landing that does not depend on the policy: the runtime spools the motors down once the vehicle is on the floor.

A quadrotor policy lands by tracking a reference that keeps sinking below the start height, so that it presses the
vehicle onto the ground and its thrust falls below the touchdown bound (:func:`deploy.safety.touched_down`). Nothing
makes a policy learn that: a retrained policy may hold hover thrust on the floor (measured: ~1.02 of hover, against
the 0.8 bound), and every flight then ends in FALLBACK "not at rest". An autopilot's land detector does not trust the
controller either: once the vehicle is down and still it takes the thrust away itself (PX4: "maybe landed" ->
"landed" -> disarm).

:class:`SpoolDown` does that in the plan's land phase: while the vehicle is within ``touchdown.height_m`` of the
start height and slower than ``touchdown.speed_m_s``, the commanded collective thrust is multiplied by a factor that
falls linearly from 1 to 0 over ``touchdown.spool_down_s`` (per-motor RPM by its square root, so the motors keep
their ratios; ctbr: the thrust, rates untouched). Off the floor (a bounce, a gust) the factor climbs back at the same
rate, so the command never jumps. The command still passes the safety layer afterwards (its minimum RPM and slew
limits hold), and the touchdown check then disarms as before. Torch-free.
"""

from __future__ import annotations

import math

import numpy as np


class SpoolDown:
    """Thrust factor for the land phase. ``spool_down_s``: seconds from full to no thrust; ``interface``: the
    command's ("rpm" or "ctbr"). Whether the vehicle is on the floor is the caller's
    (:func:`deploy.safety.quadrotor_control.on_floor` with the profile's ``quadrotor.touchdown``)."""

    def __init__(self, spool_down_s: float, interface: str):
        if not (math.isfinite(spool_down_s) and spool_down_s > 0):
            raise ValueError(f"touchdown.spool_down_s: expected seconds > 0, got {spool_down_s!r}")
        self.spool_down_s = spool_down_s
        self.interface = interface
        self.started_s: float | None = None  # plan time the first spool-down of the run began (for the summary)
        self.reset()

    def reset(self) -> None:
        """Full thrust again (every cycle the vehicle is not armed)."""
        self.progress_s = 0.0  # seconds of spooling down so far (0: full thrust)
        self._last_t: float | None = None

    @property
    def factor(self) -> float:
        """Multiplier of the collective thrust, 1 -> 0."""
        return max(0.0, 1.0 - self.progress_s / self.spool_down_s)

    def apply(self, t: float, command: np.ndarray, floor: bool) -> np.ndarray:
        """The command of plan time ``t`` (s) with the thrust factor of this cycle. command: (4,) RPM or
        (thrust N, rates rad/s); floor: whether this cycle's state is on the floor."""
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        self.progress_s = min(self.spool_down_s, max(0.0, self.progress_s + (dt if floor else -dt)))
        if floor and self.started_s is None:
            self.started_s = t
        f = self.factor
        if f >= 1.0:
            return command
        out = np.array(command, dtype=np.float32)
        if self.interface == "ctbr":
            out[0] *= f
        else:
            out *= math.sqrt(f)
        return out

    def summary(self) -> dict:
        """For the run summary: when the runtime started spooling down (plan time s), None if it never did."""
        return {"spool_down_started_s": self.started_s, "spool_down_s": self.spool_down_s}
