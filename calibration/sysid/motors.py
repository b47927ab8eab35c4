"""Rotor speeds from logged commands: the simulator's first-order motor model, for many candidate time constants
and latencies at once.

Within one control period the command is constant and a rotor approaches it monotonically, so the simulator's
per-substep rule (rise constant while below the command, fall constant while above) keeps one constant for the
whole period and the substep speeds are exact: r_j = u + (r_0 - u) a^j, a = exp(-dt_sub / tau), j = 1..S.
Only the period-to-period recursion is a Python loop (K steps over (P, 4) arrays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RotorMeans:
    """Per control step k and lane p: means over the step's physics substeps. (P, K, 4) each, RPM and RPM^2."""

    speed: np.ndarray  # mean rotor speed
    speed_sq: np.ndarray  # mean squared rotor speed (thrust / kf)


def applied_commands(command: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """(K, 4) commands, (P,) integer latencies in control steps -> (P, K, 4): what the motors receive at step k
    (the command of step k - latency; the first command before the log starts)."""
    k = np.arange(len(command))[None, :] - np.asarray(latency, dtype=int)[:, None]
    return command[np.clip(k, 0, None)]


def rotor_means(
    command: np.ndarray,
    tau_up: np.ndarray,
    tau_down: np.ndarray,
    latency: np.ndarray,
    dt: float,
    substeps: int,
    r0: np.ndarray | None = None,
) -> tuple[RotorMeans, np.ndarray]:
    """Simulate the rotors of P lanes. command (K, 4) RPM; tau_up, tau_down (P,) s; latency (P,) steps.

    Returns the per-step means and the (P, K, 4) rotor speeds at the start of each step. r0: (P, 4) initial
    speeds (default: the first applied command)."""
    u = applied_commands(command, latency)  # (P, K, 4)
    k_steps = u.shape[1]
    h = dt / substeps
    a_up = np.exp(-h / np.asarray(tau_up, dtype=np.float64))[:, None]
    a_down = np.exp(-h / np.asarray(tau_down, dtype=np.float64))[:, None]
    a_up_s, a_down_s = a_up**substeps, a_down**substeps
    r = u[:, 0].copy() if r0 is None else np.asarray(r0, dtype=np.float64).copy()
    start = np.empty_like(u)
    rising = np.empty(u.shape, dtype=bool)
    for k in range(k_steps):
        uk = u[:, k]
        start[:, k] = r
        up = uk > r
        rising[:, k] = up
        r = uk + (r - uk) * np.where(up, a_up_s, a_down_s)
    a = np.where(rising, a_up[:, :, None], a_down[:, :, None])  # (P, K, 4)
    j = np.arange(1, substeps + 1)
    powers = a[..., None] ** j  # (P, K, 4, S)
    m1 = powers.mean(-1)
    m2 = (powers * powers).mean(-1)
    d = start - u
    means = RotorMeans(u + d * m1, u * u + 2 * u * d * m1 + d * d * m2)
    return means, start
