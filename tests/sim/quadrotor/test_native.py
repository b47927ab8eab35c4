"""The C++ CPU kernel computes the same step as the torch reference (same seed -> same trajectory)."""

from __future__ import annotations

import pytest
import torch

from sim.quadrotor.config import QuadrotorTaskCfg, default_randomization
from sim.quadrotor.env import QuadrotorEnv
from sim.quadrotor.native import load_kernel
from sim.randomization import ParamDistribution as D

pytestmark = pytest.mark.skipif(load_kernel() is None, reason="the native kernel could not be built (no g++?)")


def pair(n: int, cfg: QuadrotorTaskCfg | None = None, seed: int = 11) -> tuple[QuadrotorEnv, QuadrotorEnv]:
    cfg = cfg or QuadrotorTaskCfg(task="hover", randomization=default_randomization())
    reference = QuadrotorEnv(cfg, n, seed=seed, compile=False)
    native = QuadrotorEnv(cfg, n, seed=seed, native=True)
    assert reference.backend == "eager" and native.backend == "native"
    return reference, native


def assert_obs_close(a, b) -> None:
    for group in ("policy", "critic", "privileged"):
        torch.testing.assert_close(b[group], a[group], atol=2e-4, rtol=1e-4, msg=lambda m, g=group: f"{g}: {m}")


@pytest.mark.parametrize("latency", [0, 1, 2])
def test_native_step_matches_torch_reference(latency):
    spec = default_randomization().replace(
        action_latency=D("int_uniform", low=0, high=latency, operation="absolute"),
        obs_latency=D("int_uniform", low=0, high=latency, operation="absolute"),
    )
    reference, native = pair(203, QuadrotorTaskCfg(task="hover", randomization=spec))  # 203: a partial last block
    assert_obs_close(reference.get_observations(), native.get_observations())
    g = torch.Generator().manual_seed(1)
    resets = crashes = 0
    for step in range(60):
        # Uniform random actions crash many envs (resets); every 3rd step hover commands, some NaN.
        a = 2 * torch.rand(203, 4, generator=g) - 1
        if step % 3 == 0:
            a = a * 0.05
            a[::17] = float("nan")
        oe, re, de, xe = reference.step(a)
        on, rn, dn, xn = native.step(a)
        assert torch.equal(de, dn), f"step {step}: done differs"
        assert torch.equal(xe["time_outs"], xn["time_outs"])
        torch.testing.assert_close(rn, re, atol=1e-5, rtol=1e-4)
        assert_obs_close(oe, on)
        resets += int(de.sum())
        crashes += int((de & ~xe["time_outs"]).sum())
    torch.testing.assert_close(native.episode_return, reference.episode_return, atol=1e-4, rtol=1e-4)
    assert torch.equal(native.episode_length_buf, reference.episode_length_buf)
    torch.testing.assert_close(native.params, reference.params)
    assert resets > 20 and crashes > 0  # the reset path was exercised


def test_native_time_outs_and_reset_observations():
    cfg = QuadrotorTaskCfg(task="hover", randomization=default_randomization(), episode_s=0.2)
    reference, native = pair(64, cfg)
    for _ in range(25):  # 20-step episodes: every env times out at least once
        oe, re, de, xe = reference.step(torch.zeros(64, 4))
        on, rn, dn, xn = native.step(torch.zeros(64, 4))
        assert torch.equal(de, dn) and torch.equal(xe["time_outs"], xn["time_outs"])
        torch.testing.assert_close(rn, re, atol=1e-5, rtol=1e-4)
        assert_obs_close(oe, on)
    assert xn["time_outs"].sum() == 0 and native.episode_length_buf.max() < 20
    # The observation after a reset is the fresh episode's: zero last action, true state of the new episode.
    sl = native.critic_spec.slice("true_position_error")
    torch.testing.assert_close(on["critic"][:, sl], native.state_rows("position") - torch.tensor([0.0, 0.0, 1.0]))


def test_native_keeps_the_public_api():
    reference, native = pair(16)
    native.set_state_rows("position", torch.tensor([[5.0, 0.0, 1.0]]), torch.tensor([0]))
    reference.set_state_rows("position", torch.tensor([[5.0, 0.0, 1.0]]), torch.tensor([0]))
    native.set_param("mass", 0.03, torch.tensor([1, 2]))
    reference.set_param("mass", 0.03, torch.tensor([1, 2]))
    native.episode_length_buf = torch.randint_like(native.episode_length_buf, 0, 400)  # as rsl_rl does
    reference.episode_length_buf = native.episode_length_buf.clone()
    oe, re, de, _ = reference.step(torch.zeros(16, 4))
    on, rn, dn, _ = native.step(torch.zeros(16, 4))
    assert dn[0] and torch.equal(de, dn)
    torch.testing.assert_close(rn, re, atol=1e-5, rtol=1e-4)
    assert_obs_close(oe, on)
    torch.testing.assert_close(native.state_rows("velocity"), reference.state_rows("velocity"), atol=1e-5, rtol=1e-4)


def test_native_is_refused_for_unsupported_configs_and_skipped_by_default():
    with pytest.raises(ValueError, match="native kernel does not support"):
        QuadrotorEnv(QuadrotorTaskCfg(task="track"), 8, native=True)
    assert QuadrotorEnv(QuadrotorTaskCfg(task="track"), 8, compile=False).backend == "eager"
    assert QuadrotorEnv(QuadrotorTaskCfg(task="hover"), 8).backend == "native"


def test_build_failure_falls_back_to_torch_with_a_warning(monkeypatch, tmp_path, caplog):
    from sim.quadrotor import native as native_module

    monkeypatch.setattr(native_module, "_kernel", None)
    monkeypatch.setattr(native_module, "_tried", False)
    monkeypatch.setenv("SIM2REAL_CACHE", str(tmp_path))  # nothing cached: it must build
    monkeypatch.setenv("CXX", "no-such-compiler-for-sim2real")
    with caplog.at_level("WARNING", logger="sim.quadrotor.native"):
        env = QuadrotorEnv(QuadrotorTaskCfg(task="hover"), 8, seed=0)
    assert env.backend == "eager"
    assert "falling back to the torch step" in caplog.text and "no C++ compiler" in caplog.text
    obs, rew, done, _ = env.step(torch.zeros(8, 4))
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all() and not done.any()
