"""Moving references of the ``trajectory`` tasks (track): per-env sums of sinusoids and figure-eights.

A trajectory is (TRAJ_ROWS, N): per axis (x, y, z) and component (2) an amplitude m, an angular frequency rad/s and a
phase rad. The reference is centred on (0, 0, height) and starts there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sim.quadrotor.config import TrajectoryCfg

TRAJ_ROWS = 18  # per axis (x, y, z) and component (2): amplitude m, angular frequency rad/s, phase rad


def sample_trajectories(
    tc: TrajectoryCfg, n: int, u_kind: Tensor, generator: torch.Generator, device: torch.device
) -> Tensor:
    """Figure-eight (a ``tc.figure_eight_fraction`` of draws, by ``u_kind`` (n,) uniform) or random smooth
    reference per env, (TRAJ_ROWS, n); one ``torch.rand`` on ``generator``."""
    u = torch.rand(TRAJ_ROWS + 2, n, generator=generator, device=device)
    lo, hi = tc.random_amplitude_m
    amp = lo + (hi - lo) * u[0:6]
    plo, phi = tc.random_period_s
    omega = 2 * math.pi / (plo + (phi - plo) * u[6:12])
    phase = 2 * math.pi * u[12:18]
    traj = torch.stack([amp, omega, phase], 1).reshape(TRAJ_ROWS, n)  # rows (axis, component, field)
    a = tc.figure_eight_amplitude_m[0] + (tc.figure_eight_amplitude_m[1] - tc.figure_eight_amplitude_m[0]) * u[18]
    w = (
        2
        * math.pi
        / (tc.figure_eight_period_s[0] + (tc.figure_eight_period_s[1] - tc.figure_eight_period_s[0]) * u[19])
    )
    z = torch.zeros_like(a)
    # Lemniscate of Gerono: x = a sin(wt), y = a/2 sin(2wt), z = 0.
    eight = torch.stack([a, w, z, z, w, z, a / 2, 2 * w, z, z, w, z, z, w, z, z, w, z])
    return torch.where((u_kind < tc.figure_eight_fraction)[None], eight, traj)


def reference(traj: Tensor, t: Tensor, height: float) -> tuple[Tensor, Tensor]:
    """Reference position and velocity (3, n) at times t (n,) s from trajectory rows (18, n).

    Centre (0, 0, height) + two sinusoids per axis, shifted so that the reference starts at the centre.
    """
    tr = traj.view(3, 2, 3, -1)  # axis, component, (amp, omega, phase), n
    amp, omega, phase = tr[:, :, 0], tr[:, :, 1], tr[:, :, 2]
    arg = omega * t + phase
    pos = (amp * (torch.sin(arg) - torch.sin(phase))).sum(1)
    vel = (amp * omega * torch.cos(arg)).sum(1)
    centre = torch.zeros_like(pos)
    centre[2] = height
    return pos + centre, vel
