"""Reward and termination terms of the quadrotor tasks: pure functions of tensors.

Named ``<quantity>_<kernel>``. Vectors are component-major, (3, N), like the simulator's state, so a whole
step compiles into one vectorised loop; rotation matrices are (9, N) row-major body -> world; actions (A, N).
"""

from __future__ import annotations

import torch
from torch import Tensor


def position_error_l2(pos: Tensor, target: Tensor) -> Tensor:
    """Squared distance to the target. pos, target: (3, N) m -> (N,) m^2."""
    return (pos - target).square().sum(0)


def lin_vel_l2(vel: Tensor) -> Tensor:
    """Squared speed. vel: (3, N) m/s -> (N,)."""
    return vel.square().sum(0)


def ang_vel_l2(ang_vel: Tensor) -> Tensor:
    """Squared body rate. (3, N) rad/s -> (N,)."""
    return ang_vel.square().sum(0)


def tilt_cos(rot_zz: Tensor) -> Tensor:
    """1 - cos(tilt) from the world-z component of the body z axis (R[2, 2]): 0 upright, 2 upside down. (N,)."""
    return 1.0 - rot_zz


def action_l2(action: Tensor) -> Tensor:
    """Squared normalized action (0 = the hover command). (A, N) -> (N,)."""
    return action.square().sum(0)


def action_rate_l2(action: Tensor, previous: Tensor) -> Tensor:
    """Squared change of the normalized action between control steps. (A, N) -> (N,)."""
    return (action - previous).square().sum(0)


def failure_any(
    pos_err: Tensor, vel: Tensor, ang_vel: Tensor, height: Tensor, limits: tuple[float, float, float, float]
) -> Tensor:
    """Crash / failure. limits = (position box half-size m, speed m/s, body rate rad/s, floor height m).

    pos_err, vel, ang_vel: (3, N); height: (N,) m. Non-finite states are failures. Returns (N,) bool.
    """
    pos_lim, speed_lim, rate_lim, floor = limits
    bad = (pos_err.abs() > pos_lim).any(0)
    bad |= vel.square().sum(0) > speed_lim * speed_lim
    bad |= ang_vel.square().sum(0) > rate_lim * rate_lim
    bad |= height < floor
    finite = torch.isfinite(pos_err).all(0) & torch.isfinite(vel).all(0) & torch.isfinite(ang_vel).all(0)
    return bad | ~finite
