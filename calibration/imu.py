"""IMU calibration from static logs: biases, accelerometer scale/misalignment, noise from Allan deviation.

Accelerometer model for the multi-position fit (Tedaldi, Pretto & Menegatti, ICRA 2014):
``a_true = T @ diag(s) @ (a_meas - b)`` with T = [[1, -a_yz, a_zy], [0, 1, -a_zx], [0, 0, 1]] (small axis
misalignment angles, rad), scale factors s (1 = perfect) and bias b (m/s^2). In every static pose
|a_true| = g, which gives 9 unknowns from >= 9 (better 12-30) distinct orientations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from calibration.allan import AllanNoise, allan_deviation, read_noise
from calibration.errors import NotEnoughViewsError
from calibration.imu_io import ImuLog

log = logging.getLogger(__name__)

GRAVITY = 9.80665  # m/s^2, standard gravity


@dataclass(frozen=True)
class StaticBiases:
    """Mean static readings. gyro_bias: (3,) rad/s (Earth rate, 7.3e-5 rad/s, is not removed);
    accel_bias: (3,) m/s^2 assuming the IMU lay level (z up), i.e. mean - [0, 0, g];
    gravity_magnitude_error: |mean accel| - g, m/s^2 (orientation-free); gyro_std, accel_std: (3,) sample std."""

    gyro_bias: np.ndarray
    accel_bias: np.ndarray
    gravity_magnitude_error: float
    gyro_std: np.ndarray
    accel_std: np.ndarray


def static_biases(imu: ImuLog, gravity: float = GRAVITY) -> StaticBiases:
    """Biases from a log of the IMU lying still and level."""
    acc = imu.accel.mean(0)
    return StaticBiases(
        gyro_bias=imu.gyro.mean(0),
        accel_bias=acc - np.array([0.0, 0.0, gravity]),
        gravity_magnitude_error=float(np.linalg.norm(acc) - gravity),
        gyro_std=imu.gyro.std(0),
        accel_std=imu.accel.std(0),
    )


def static_segments(imu: ImuLog, window_s: float = 0.5, min_static_s: float = 2.0, factor: float = 4.0) -> list[slice]:
    """Index ranges where the IMU was still: rolling accel variance below ``factor`` x its median, for at least
    ``min_static_s`` seconds (edges trimmed by one window). Assumes the log is mostly static."""
    w = max(3, round(window_s * imu.rate_hz))
    a = imu.accel
    c1 = np.concatenate([np.zeros((1, 3)), np.cumsum(a, 0)])
    c2 = np.concatenate([np.zeros((1, 3)), np.cumsum(a * a, 0)])
    var = ((c2[w:] - c2[:-w]) / w - ((c1[w:] - c1[:-w]) / w) ** 2).sum(1)  # (N - w + 1,) window starting at i
    still = var < factor * np.median(var)
    segments = []
    idx = np.flatnonzero(np.diff(np.concatenate([[0], still.astype(int), [0]])))
    for start, stop in zip(idx[::2], idx[1::2]):
        lo, hi = start + w, stop  # window i covers samples i..i+w-1; trim one window at each end
        if hi - lo >= min_static_s * imu.rate_hz:
            segments.append(slice(lo, hi))
    return segments


@dataclass(frozen=True)
class AccelCalibration:
    """Fitted accelerometer model (see module doc). scale: (3,); misalignment_rad: (a_yz, a_zy, a_zx); bias (3,) m/s^2;
    residual_rms: RMS of |a_true| - g over poses before (raw) and after the fit, m/s^2."""

    scale: np.ndarray
    misalignment_rad: np.ndarray
    bias: np.ndarray
    residual_rms: float
    raw_residual_rms: float
    poses: int

    def matrix(self) -> np.ndarray:
        """T @ diag(scale), (3, 3): a_true = matrix() @ (a_meas - bias)."""
        a_yz, a_zy, a_zx = self.misalignment_rad
        T = np.array([[1.0, -a_yz, a_zy], [0.0, 1.0, -a_zx], [0.0, 0.0, 1.0]])
        return T @ np.diag(self.scale)

    def correct(self, accel: np.ndarray) -> np.ndarray:
        """Calibrated specific force, (N, 3) m/s^2."""
        return (np.asarray(accel) - self.bias) @ self.matrix().T


def _model(p: np.ndarray, means: np.ndarray, gravity: float) -> np.ndarray:
    cal = AccelCalibration(p[3:6], p[:3], p[6:9], 0.0, 0.0, 0)
    return np.linalg.norm(cal.correct(means), axis=1) - gravity


def multi_position_accel(imu: ImuLog, gravity: float = GRAVITY, min_poses: int = 9, **segment_kw) -> AccelCalibration:
    """Fit scale, misalignment and bias from a log with the IMU held still in many orientations."""
    segs = static_segments(imu, **segment_kw)
    means = np.array([imu.accel[s].mean(0) for s in segs]) if segs else np.zeros((0, 3))
    if len(means) < min_poses:
        raise NotEnoughViewsError(
            f"multi-position accelerometer calibration needs >= {min_poses} static poses (12-30 recommended), "
            f"found {len(means)} static stretches of >= 2 s; hold the IMU still for a few seconds in each of many orientations"
        )
    spread = np.linalg.svd(means / np.linalg.norm(means, axis=1, keepdims=True), compute_uv=False)
    if spread.min() < 0.3:
        log.warning(
            "static poses span orientations poorly (singular values %s); add poses with each axis up and down",
            spread.round(2),
        )
    p0 = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0], float)
    fit = least_squares(_model, p0, args=(means, gravity), method="lm")
    return AccelCalibration(
        scale=fit.x[3:6],
        misalignment_rad=fit.x[:3],
        bias=fit.x[6:9],
        residual_rms=float(np.sqrt(np.mean(fit.fun**2))),
        raw_residual_rms=float(np.sqrt(np.mean((np.linalg.norm(means, axis=1) - gravity) ** 2))),
        poses=len(means),
    )


@dataclass
class ImuNoise:
    """Allan-deviation noise per axis: gyro/accel lists of 3 AllanNoise, plus the curves (taus (M,), adev (M, 3))."""

    rate_hz: float
    taus: np.ndarray
    gyro_adev: np.ndarray
    accel_adev: np.ndarray
    gyro: list[AllanNoise] = field(default_factory=list)
    accel: list[AllanNoise] = field(default_factory=list)

    @staticmethod
    def _mean(values: list[AllanNoise], attr: str) -> float:
        return float(np.mean([getattr(v, attr) for v in values]))

    def random_walk(self, sensor: str) -> tuple[float, bool]:
        """Mean random walk over axes and whether it was seen (+1/2 slope); when not seen, an upper bound from the
        longest tau: K <= adev(tau_max) * sqrt(3 / tau_max)."""
        values, adev = (self.gyro, self.gyro_adev) if sensor == "gyro" else (self.accel, self.accel_adev)
        if all(v.random_walk is not None for v in values):
            return self._mean(values, "random_walk"), True
        return float(np.mean(adev[-1]) * np.sqrt(3.0 / self.taus[-1])), False

    def noise_density(self, sensor: str) -> float:
        """Mean over axes of the white noise density (rad/s/sqrt(Hz) or m/s^2/sqrt(Hz))."""
        return self._mean(self.gyro if sensor == "gyro" else self.accel, "noise_density")


def imu_noise(imu: ImuLog) -> ImuNoise:
    """Allan deviation of every axis of a static log and the noise read off each."""
    rate = imu.rate_hz
    taus, g = allan_deviation(imu.gyro - imu.gyro.mean(0), rate)
    _, a = allan_deviation(imu.accel - imu.accel.mean(0), rate)
    out = ImuNoise(rate, taus, g, a)
    out.gyro = [read_noise(taus, g[:, k]) for k in range(3)]
    out.accel = [read_noise(taus, a[:, k]) for k in range(3)]
    return out


def synthetic_static_log(
    duration_s: float,
    rate_hz: float,
    rng: np.random.Generator,
    gyro_noise_density: float = 0.005,
    gyro_random_walk: float = 5e-4,
    accel_noise_density: float = 0.02,
    accel_random_walk: float = 2e-3,
    gyro_bias: tuple[float, float, float] = (0.01, -0.02, 0.005),
    accel_bias: tuple[float, float, float] = (0.05, -0.08, 0.1),
    gravity: float = GRAVITY,
) -> ImuLog:
    """A level, still IMU with white noise (std = density * sqrt(rate)) and bias random walks (Kalibr's model)."""
    n = int(duration_s * rate_hz)
    t = np.arange(n) / rate_hz

    def sensor(nd, rw, bias):
        walk = np.cumsum(rng.normal(0, rw / np.sqrt(rate_hz), (n, 3)), 0)
        return np.asarray(bias) + walk + rng.normal(0, nd * np.sqrt(rate_hz), (n, 3))

    return ImuLog(
        t,
        sensor(gyro_noise_density, gyro_random_walk, gyro_bias),
        sensor(accel_noise_density, accel_random_walk, accel_bias) + np.array([0.0, 0.0, gravity]),
    )


def synthetic_multi_position_log(
    calibration: AccelCalibration,
    poses: int,
    rng: np.random.Generator,
    rate_hz: float = 100.0,
    hold_s: float = 4.0,
    move_s: float = 1.5,
    noise_std: float = 0.02,
    gravity: float = GRAVITY,
) -> ImuLog:
    """Still in ``poses`` random orientations (hold_s each), moving (shaken) in between; accel from the inverse of
    ``calibration``'s model: a_meas = matrix()^-1 a_true + bias + noise."""
    dirs = rng.normal(size=(poses, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs[: min(6, poses)] = np.vstack([np.eye(3), -np.eye(3)])[: min(6, poses)]
    chunks = []
    for k in range(poses):
        chunks.append(np.repeat(dirs[k][None] * gravity, int(hold_s * rate_hz), 0))
        if k + 1 < poses:
            m = int(move_s * rate_hz)
            s = np.linspace(0, 1, m)[:, None]
            path = (1 - s) * dirs[k] + s * dirs[k + 1]
            chunks.append(path / np.linalg.norm(path, axis=1, keepdims=True) * gravity + rng.normal(0, 2.0, (m, 3)))
    a_true = np.concatenate(chunks)
    a_meas = a_true @ np.linalg.inv(calibration.matrix()).T + calibration.bias + rng.normal(0, noise_std, a_true.shape)
    n = len(a_meas)
    return ImuLog(np.arange(n) / rate_hz, rng.normal(0, 0.01, (n, 3)), a_meas)
