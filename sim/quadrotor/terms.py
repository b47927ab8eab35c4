"""Reward and termination terms of the quadrotor tasks: pure functions of tensors.

Named ``<quantity>_<kernel>``. Vectors are component-major, (3, N), like the simulator's state, so a whole
step compiles into one vectorised loop; rotation matrices are (9, N) row-major body -> world; actions (A, N).
Sums over the small leading axis are written as element-wise sums of its rows (``_sum_rows``): a reduction
would split the compiled step into several loops and force its intermediates through memory.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _sum_rows(x: Tensor) -> Tensor:
    rows = x.unbind(0)
    out = rows[0]
    for r in rows[1:]:
        out = out + r
    return out


def _any_rows(x: Tensor) -> Tensor:
    rows = x.unbind(0)
    out = rows[0]
    for r in rows[1:]:
        out = out | r
    return out


def position_error_l2(pos: Tensor, target: Tensor) -> Tensor:
    """Squared distance to the target. pos, target: (3, N) m -> (N,) m^2."""
    return _sum_rows((pos - target).square())


def position_error_norm(pos: Tensor, target: Tensor) -> Tensor:
    """Distance to the target. pos, target: (3, N) m -> (N,) m. Unlike the square, its slope does not vanish
    near the target, so centimetres still count: a policy trained on it hovers without a standing offset."""
    return position_error_l2(pos, target).sqrt()


def lin_vel_l2(vel: Tensor) -> Tensor:
    """Squared speed. vel: (3, N) m/s -> (N,)."""
    return _sum_rows(vel.square())


def ang_vel_l2(ang_vel: Tensor) -> Tensor:
    """Squared body rate. (3, N) rad/s -> (N,)."""
    return _sum_rows(ang_vel.square())


def tilt_cos(rot_zz: Tensor) -> Tensor:
    """1 - cos(tilt) from the world-z component of the body z axis (R[2, 2]): 0 upright, 2 upside down. (N,)."""
    return 1.0 - rot_zz


def action_l2(action: Tensor) -> Tensor:
    """Squared normalized action (0 = the hover command). (A, N) -> (N,)."""
    return _sum_rows(action.square())


def action_rate_l2(action: Tensor, previous: Tensor) -> Tensor:
    """Squared change of the normalized action between control steps. (A, N) -> (N,)."""
    return _sum_rows((action - previous).square())


def alive_exp(penalty: Tensor, alive: float) -> Tensor:
    """Per-step reward ``alive * exp(-penalty)``: in (0, alive] for any penalty >= 0, so staying alive always
    beats a crash (a reward that can go negative teaches a policy to end its episodes early). penalty: (N,)."""
    return alive * torch.exp(-penalty)


def failure_any(
    pos_err: Tensor, vel: Tensor, ang_vel: Tensor, height: Tensor, limits: tuple[float, float, float, float]
) -> Tensor:
    """Crash / failure. limits = (position box half-size m, speed m/s, body rate rad/s, floor height m).

    pos_err, vel, ang_vel: (3, N); height: (N,) m. Non-finite states are failures. Returns (N,) bool.
    """
    pos_lim, speed_lim, rate_lim, floor = limits
    bad = _any_rows(pos_err.abs() > pos_lim)
    bad = bad | (_sum_rows(vel.square()) > speed_lim * speed_lim)
    bad = bad | (_sum_rows(ang_vel.square()) > rate_lim * rate_lim)
    bad = bad | (height < floor)
    finite = torch.isfinite(_sum_rows(pos_err) + _sum_rows(vel) + _sum_rows(ang_vel))
    return bad | ~finite
