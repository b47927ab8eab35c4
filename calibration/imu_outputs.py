"""What IMU calibration writes: a Kalibr imu.yaml and the IMU noise section of the randomization spec.

Kalibr IMU YAML (FACTS.md, "Calibration formats"): accelerometer_noise_density [m/s^2/sqrt(Hz)],
accelerometer_random_walk [m/s^3/sqrt(Hz)], gyroscope_noise_density [rad/s/sqrt(Hz)],
gyroscope_random_walk [rad/s^2/sqrt(Hz)], update_rate [Hz], rostopic.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from calibration.imu import ImuNoise, StaticBiases
from sim.randomization import ParamDistribution, RandomizationSpec


def kalibr_dict(noise: ImuNoise, topic: str) -> dict:
    """The Kalibr imu.yaml mapping (mean over the three axes of each sensor)."""
    return {
        "accelerometer_noise_density": noise.noise_density("accel"),
        "accelerometer_random_walk": noise.random_walk("accel")[0],
        "gyroscope_noise_density": noise.noise_density("gyro"),
        "gyroscope_random_walk": noise.random_walk("gyro")[0],
        "rostopic": topic,
        "update_rate": float(round(noise.rate_hz, 3)),
    }


def write_kalibr_yaml(noise: ImuNoise, topic: str, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(kalibr_dict(noise, topic), sort_keys=False))
    return path


def read_kalibr_yaml(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def imu_randomization_spec(
    noise: ImuNoise, biases: StaticBiases | None, noise_spread: float = 0.5, episode_s: float = 20.0, name: str = "imu"
) -> RandomizationSpec:
    """IMU terms of the randomization spec.

    obs_noise.angular_velocity / obs_noise.linear_acceleration: white-noise std at the IMU rate
    (sigma = noise_density * sqrt(rate)), uniform over [(1 - noise_spread) sigma, (1 + noise_spread) sigma],
    operation absolute, drawn at reset.
    imu_gyro_bias / imu_accel_bias: normal(0, std) per component, clipped at +-3 std, absolute, at reset, with
    std = sqrt(mean over axes of measured static bias^2 + random_walk^2 * episode_s): the bias the log showed
    plus what the bias random walk adds over one episode.
    """
    if not 0 <= noise_spread < 1:
        raise ValueError(f"noise_spread must be in [0, 1), got {noise_spread}")
    terms: dict[str, ParamDistribution] = {}
    for key, sensor, unit in (("angular_velocity", "gyro", "rad/s"), ("linear_acceleration", "accel", "m/s^2")):
        sigma = noise.noise_density(sensor) * math.sqrt(noise.rate_hz)
        terms[f"obs_noise.{key}"] = ParamDistribution(
            "uniform", low=sigma * (1 - noise_spread), high=sigma * (1 + noise_spread), operation="absolute", unit=unit
        )
    for key, sensor, unit in (("imu_gyro_bias", "gyro", "rad/s"), ("imu_accel_bias", "accel", "m/s^2")):
        measured = 0.0
        if biases is not None:
            b = biases.gyro_bias if sensor == "gyro" else biases.accel_bias
            measured = float(np.mean(np.square(b)))
        std = math.sqrt(measured + noise.random_walk(sensor)[0] ** 2 * episode_s)
        terms[key] = ParamDistribution(
            "normal", mean=0.0, std=std, low=-3 * std, high=3 * std, operation="absolute", per_component=True, unit=unit
        )
    return RandomizationSpec(terms, name=name)
