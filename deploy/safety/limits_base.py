"""What every part of a safety profile shares: the error type, the robot classes and the value checks."""

from __future__ import annotations

import enum
import math


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
