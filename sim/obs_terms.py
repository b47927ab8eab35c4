"""Stateful observation terms shared by the simulator and the deploy runtime (torch-free).

A term that depends on history (not only on the current state) is defined once here and used by both sides:
the simulator calls it on (3, N) torch tensors every control step, the runtime on (3,) numpy arrays every
cycle, so the policy sees the same quantity in both. Both tensors and arrays provide ``.clip``.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

POSITION_ERROR_INTEGRAL_LIMIT = 0.5  # m s per axis: anti-windup clamp of the integral


def integrate_position_error(integral: T, position_error: T, dt: float) -> T:
    """One control step of ``position_error_integral``: integral + error * dt, clamped to +-limit (anti-windup).

    integral: m s, position_error: m (the *estimated* error the policy observes, noise and delay included),
    dt: control period, s. Starts at zero at the beginning of an episode (on the robot: at arming).
    """
    lim = POSITION_ERROR_INTEGRAL_LIMIT
    return (integral + position_error * dt).clip(-lim, lim)  # type: ignore[operator,union-attr]
