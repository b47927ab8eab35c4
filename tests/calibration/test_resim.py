"""Re-simulation against logs of the simulator itself, and the pieces it stands on (motor model, least squares)."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.resim import resimulate
from calibration.sysid.core import batched_lstsq
from calibration.sysid.data import from_flight
from calibration.sysid.motors import rotor_means
from calibration.sysid.synthetic import SyntheticFlight, fly, hidden_params
from deploy.replay import load_flight
from sim.quadrotor.params import QuadrotorParams

TRUTH = hidden_params(mass=1.1, inertia=1.25, km=0.6, motor_tau_up=0.8, motor_tau_down=1.2)


@pytest.fixture(scope="module")
def clean_log(tmp_path_factory):
    """10 s, no sensor noise, latency 1: re-simulating with the truth must reproduce it."""
    path = tmp_path_factory.mktemp("resim") / "clean.mcap"
    fly(path, SyntheticFlight(seconds=10.0, params=TRUTH, action_latency=1, noise=0.0, seed=5))
    return from_flight(load_flight(path), QuadrotorParams().hover_rpm)


def test_resimulation_with_the_truth_reproduces_a_noise_free_log(clean_log):
    gap = {d.horizon_s: d for d in resimulate(clean_log, TRUTH, latency=1)}
    assert gap[0.1].windows > 80 and gap[1.0].windows > 70
    assert gap[0.1].position_m["p90"] < 1e-4  # float32 simulator vs float64 re-simulation
    assert gap[1.0].position_m["p90"] < 2e-3 and gap[1.0].attitude_deg["p90"] < 0.1


def test_wrong_parameters_or_latency_diverge(clean_log):
    truth = {d.horizon_s: d for d in resimulate(clean_log, TRUTH, latency=1)}
    nominal = {d.horizon_s: d for d in resimulate(clean_log, QuadrotorParams(), latency=0)}
    late = {d.horizon_s: d for d in resimulate(clean_log, TRUTH, latency=2)}
    for h in (0.5, 1.0):
        assert nominal[h].position_m["median"] > 20 * truth[h].position_m["median"]
        assert late[h].attitude_deg["median"] > 10 * truth[h].attitude_deg["median"]
    assert nominal[1.0].position_m["median"] > 0.05  # 5 cm in 1 s: the gap the defaults leave


def test_rotor_means_match_the_simulators_substep_rule():
    rng = np.random.default_rng(1)
    cmd = rng.uniform(5000, 20000, (40, 4))
    tau_up, tau_down, dt, sub = np.array([0.03, 0.06]), np.array([0.2, 0.1]), 0.01, 5
    means, start = rotor_means(cmd, tau_up, tau_down, np.array([0, 2]), dt, sub)
    for lane, latency in enumerate((0, 2)):
        r = cmd[0].copy()
        for k in range(len(cmd)):
            u = cmd[max(k - latency, 0)]
            np.testing.assert_allclose(start[lane, k], r, rtol=1e-12)
            speeds = []
            for _ in range(sub):  # sim.quadrotor.dynamics.motor_step, alpha = 1 - exp(-h / tau)
                alpha = np.where(u > r, 1 - np.exp(-dt / sub / tau_up[lane]), 1 - np.exp(-dt / sub / tau_down[lane]))
                r = r + (u - r) * alpha
                speeds.append(r.copy())
            np.testing.assert_allclose(means.speed[lane, k], np.mean(speeds, 0), rtol=1e-10)
            np.testing.assert_allclose(means.speed_sq[lane, k], np.mean(np.square(speeds), 0), rtol=1e-10)


def test_batched_least_squares_matches_numpy():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 200, 3)) * np.array([1e8, 1.0, 1e-3])  # badly scaled columns
    theta = np.array([2e-8, -0.5, 40.0])
    y = X @ theta + rng.normal(0, 0.1, (3, 200))
    est, rss, cov = batched_lstsq(X, y)
    for p in range(3):
        ref, res, *_ = np.linalg.lstsq(X[p], y[p], rcond=None)
        np.testing.assert_allclose(est[p], ref, rtol=1e-8)
        np.testing.assert_allclose(rss[p], res[0], rtol=1e-8)
        expected = res[0] / 197 * np.linalg.inv(X[p].T @ X[p])
        np.testing.assert_allclose(cov[p], expected, rtol=1e-6)
