"""Curriculum hook of the training loop: widen the task as the policy improves.

The quadrotor tasks use an initial-state curriculum: episodes start within a fraction ``level`` of the
configured initial-state ranges (position, velocity, tilt, body rates). A policy that starts from random
weights crashes from tumbling starts within a second and learns little from it; starting near hover it learns to
stabilise first, and the range widens while the crash rate stays low, up to the task as configured (level 1).
The level is a pure function of the training statistics, so training stays deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class CurriculumCfg:
    enabled: bool = True  # off: the task as configured from the first iteration (level 1)
    start: float = 0.2  # initial level: fraction of the task's initial-state ranges
    step: float = 0.1  # level change per decision
    promote_below: float = 0.1  # widen when the crash rate of the episodes that ended in an iteration is below
    demote_above: float = 0.6  # narrow when it is above (never below ``start``)

    def validate(self) -> None:
        if not (0.0 < self.start <= 1.0 and 0.0 < self.step <= 1.0):
            raise ValueError(f"curriculum start and step must be in (0, 1], got {self.start} and {self.step}")
        if not 0.0 <= self.promote_below <= self.demote_above <= 1.0:
            raise ValueError(
                "curriculum thresholds must satisfy 0 <= promote_below <= demote_above <= 1, got "
                f"{self.promote_below} and {self.demote_above}"
            )


class InitStateCurriculum:
    """Level in [start, 1] from the crash rate of each iteration; applied with ``env.set_init_scale``."""

    def __init__(self, cfg: CurriculumCfg):
        cfg.validate()
        self.cfg = cfg
        self.level = cfg.start if cfg.enabled else 1.0

    def apply(self, env: Any) -> None:
        if hasattr(env, "set_init_scale"):
            env.set_init_scale(self.level)

    def update(self, crash_rate: float) -> float:
        """The new level after an iteration whose ended episodes crashed at ``crash_rate`` (nan: none ended)."""
        c = self.cfg
        if not c.enabled or math.isnan(crash_rate):
            return self.level
        if crash_rate < c.promote_below:
            self.level = min(1.0, self.level + c.step)
        elif crash_rate > c.demote_above:
            self.level = max(c.start, self.level - c.step)
        self.level = round(self.level, 6)
        return self.level
