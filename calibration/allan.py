"""Allan deviation of a static IMU log and the noise parameters read off it.

FACTS.md ("Calibration formats"): white noise (noise density) is read at tau = 1 s on the -1/2 slope; bias
random walk on the +1/2 slope at tau = 3 s. Units: for a gyro in rad/s, noise density in rad/s/sqrt(Hz) and
random walk in rad/s^2/sqrt(Hz); for an accelerometer in m/s^2, m/s^2/sqrt(Hz) and m/s^3/sqrt(Hz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.errors import NotEnoughViewsError


def allan_deviation(x: np.ndarray, rate_hz: float, points_per_decade: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Allan deviation. x: (N,) or (N, k) samples at ``rate_hz`` -> taus (M,) s, adev (M,) or (M, k).

    Cluster sizes are log-spaced from 1 sample to N/9 (so the longest tau still averages >= 8 clusters).
    """
    x = np.asarray(x, dtype=float)
    squeeze = x.ndim == 1
    x = x[:, None] if squeeze else x
    n = x.shape[0]
    if n < 100:
        raise NotEnoughViewsError(f"Allan deviation needs a long static log (>= 100 samples, ideally hours); got {n}")
    theta = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)]) / rate_hz  # integrated signal
    max_m = max(1, n // 9)
    ms = np.unique(np.logspace(0, np.log10(max_m), int(np.log10(max_m) * points_per_decade) + 1).astype(int))
    tau0 = 1.0 / rate_hz
    adev = np.empty((len(ms), x.shape[1]))
    for i, m in enumerate(ms):
        tau = m * tau0
        d = theta[2 * m :] - 2 * theta[m:-m] + theta[: -2 * m]
        adev[i] = np.sqrt(np.sum(d * d, axis=0) / (2 * tau * tau * (n + 1 - 2 * m)))
    taus = ms * tau0
    return taus, adev[:, 0] if squeeze else adev


@dataclass(frozen=True)
class AllanNoise:
    """Noise parameters of one axis. noise_density: sigma at tau = 1 s on the -1/2 line; random_walk: sigma at
    tau = 3 s on the +1/2 line (None when the log is too short to show a +1/2 slope); bias_instability: minimum
    of the curve divided by 0.664 (same unit as the signal)."""

    noise_density: float
    random_walk: float | None
    bias_instability: float


def _fit_line(log_tau: np.ndarray, log_adev: np.ndarray, slope: float, tol: float) -> float | None:
    """Intercept b of log10 adev = slope * log10 tau + b over the stretch where the local slope is near ``slope``."""
    local = np.gradient(log_adev, log_tau)
    near = np.abs(local - slope) < tol
    if not near.any():
        return None
    # keep only the longest run of consecutive points near the slope (the straight part of the curve)
    idx = np.flatnonzero(near)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    run = max(runs, key=len)
    return float(np.median(log_adev[run] - slope * log_tau[run]))


def read_noise(taus: np.ndarray, adev: np.ndarray) -> AllanNoise:
    """Read white noise and bias random walk off one axis' Allan deviation curve (taus s, adev signal units)."""
    lt, la = np.log10(taus), np.log10(adev)
    b_white = _fit_line(lt, la, -0.5, 0.15)
    if b_white is None:  # fall back to the shortest taus, which white noise dominates for any real IMU
        b_white = float(la[0] + 0.5 * lt[0])
    b_rw = (
        _fit_line(lt[lt > lt[np.argmin(la)]], la[lt > lt[np.argmin(la)]], 0.5, 0.2)
        if np.argmin(la) < len(la) - 3
        else None
    )
    return AllanNoise(
        noise_density=float(10**b_white),  # at tau = 1: adev = N
        random_walk=None if b_rw is None else float(10 ** (b_rw + 0.5 * np.log10(3.0))),  # at tau = 3: adev = K
        bias_instability=float(adev.min() / 0.664),
    )


def save_allan_png(taus: np.ndarray, gyro: np.ndarray, accel: np.ndarray, path: str, notes: dict | None = None) -> None:
    """Log-log plot of gyro (rad/s) and accel (m/s^2) Allan deviations, (M, 3) each, with the read-off lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, data, label, key in ((axes[0], gyro, "gyro [rad/s]", "gyro"), (axes[1], accel, "accel [m/s^2]", "accel")):
        for k, axis in enumerate("xyz"):
            ax.loglog(taus, data[:, k], label=axis)
        if notes and key in notes:
            n, rw = notes[key]
            ax.loglog(taus, n / np.sqrt(taus), "k--", lw=0.8, label=f"N = {n:.3g} (tau=1 s)")
            if rw:
                ax.loglog(taus, rw * np.sqrt(taus / 3), "k:", lw=0.8, label=f"K = {rw:.3g} (tau=3 s)")
        ax.set_xlabel("tau [s]")
        ax.set_ylabel(f"Allan deviation, {label}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
