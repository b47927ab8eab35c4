"""The C++ CPU kernel computes the same step as the torch reference (same seed -> same trajectory)."""

from __future__ import annotations

import pytest
import torch

from sim.quadrotor.config import QuadrotorTaskCfg, default_randomization
from sim.quadrotor.env import QuadrotorEnv
from sim.quadrotor.native import load_kernel, widest
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
    """With every imperfection drawn too (default_randomization: motor spread, thrust curve, sag, ground effect,
    CoM offset, substep latency)."""
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
    from sim.quadrotor import native_build

    monkeypatch.setattr(native_build, "_kernels", {})
    monkeypatch.setenv("SIM2REAL_CACHE", str(tmp_path))  # nothing cached: it must build
    monkeypatch.setenv("CXX", "no-such-compiler-for-sim2real")
    with caplog.at_level("WARNING", logger="sim.quadrotor.native_build"):
        env = QuadrotorEnv(QuadrotorTaskCfg(task="hover"), 8, seed=0)
    assert env.backend == "eager"
    assert "falling back to the torch step" in caplog.text and "no C++ compiler" in caplog.text
    obs, rew, done, _ = env.step(torch.zeros(8, 4))
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all() and not done.any()


def equal_obs(a, b) -> bool:
    return all(torch.equal(a[group], b[group]) for group in ("policy", "critic", "privileged"))


@pytest.mark.parametrize("observed_interval", [False, True])
def test_in_pass_resets_equal_the_eager_reset_path(monkeypatch, observed_interval):
    """The kernel's in-pass resets (pool draws, state, delay lines, privileged group, first observations, episode
    logs) give bit for bit what the eager reset path gives, including steps where the pool runs short mid-step
    and interval draws (of observation parameters too) in the same step."""
    from sim.quadrotor import reset_pool

    monkeypatch.setattr(reset_pool, "RESET_POOL", 8)  # refills (discarding the rest of the pool) every few steps
    terms = {
        "action_latency": D("int_uniform", low=0, high=2, operation="absolute"),
        "obs_latency": D("int_uniform", low=0, high=2, operation="absolute"),
        "disturbance_force": D("uniform", low=-0.01, high=0.01, operation="absolute", when="interval", interval_s=0.05),
    }
    if observed_interval:
        terms["obs_noise_scale"] = D("uniform", low=0.5, high=1.5, when="interval", interval_s=0.07)
    spec = default_randomization().replace(**terms)
    cfg = QuadrotorTaskCfg(task="hover", randomization=spec, episode_s=0.8)
    inline = QuadrotorEnv(cfg, 203, seed=5, native=True)
    eager = QuadrotorEnv(cfg, 203, seed=5, native=True)
    eager._native.inline_resets = False
    assert inline._interval_observed == observed_interval
    g = torch.Generator().manual_seed(2)
    refills = logged = due = 0
    for step in range(120):
        a = 2 * torch.rand(203, 4, generator=g) - 1  # crashes from ~35 steps on
        a[:60] *= 0.05  # these time out and reach the interval draws
        pool_before = inline._pool["state"]
        on, rn, dn, xn = inline.step(a)
        oe, re, de, xe = eager.step(a)
        refills += inline._pool["state"] is not pool_before
        due += inline._native.counts[2] > 0
        assert equal_obs(on, oe), f"step {step}: observations differ"
        assert torch.equal(rn, re) and torch.equal(dn, de) and torch.equal(xn["time_outs"], xe["time_outs"])
        assert xn.keys() == xe.keys()
        if "log" in xe:
            logged += 1
            for key, value in xe["log"].items():
                assert torch.equal(xn["log"][key], value), f"step {step}: {key} differs"
        assert inline._pool_next == eager._pool_next and torch.equal(inline._pool["state"], eager._pool["state"])
    for name in ("params", "episode_return", "episode_length_buf", "privileged", "error_integral"):
        assert torch.equal(getattr(inline, name), getattr(eager, name)), name
    assert torch.equal(inline._native.state, eager._native.state)
    assert all(torch.equal(x, y) for x, y in zip(inline._native.act_slots, eager._native.act_slots))
    assert torch.equal(inline.generator.get_state(), eager.generator.get_state())
    assert refills > 10 and logged > 35 and due > 10


@pytest.mark.parametrize("inline", [True, False])
def test_native_steps_keep_each_steps_outputs_for_one_more_step(inline):
    """rsl_rl stores the observations of step t after step t + 1: the critic, reward and flags alternate between two
    buffers, and the policy group (with its history) is a window of the history ring that the next step, resets and
    the ring's wrap-around copies leave alone (40 steps: several wraps, time-outs every 15 steps)."""
    cfg = QuadrotorTaskCfg(task="hover", randomization=default_randomization(), episode_s=0.15)  # time-outs
    env = QuadrotorEnv(cfg, 64, seed=0)
    env._native.inline_resets = inline
    g = torch.Generator().manual_seed(0)
    prev = kept = None
    resets = 0
    for _ in range(40):
        obs, rew, done, _ = env.step(2 * torch.rand(64, 4, generator=g) - 1)
        resets += int(done.sum())
        if prev is not None:
            assert all(torch.equal(prev[0][k], kept[0][k]) for k in ("policy", "critic")), "obs rewritten a step early"
            assert torch.equal(prev[1], kept[1]) and torch.equal(prev[2], kept[2])
            assert obs["policy"].data_ptr() != prev[0]["policy"].data_ptr()
        prev = (obs, rew, done)
        kept = ({k: obs[k].clone() for k in ("policy", "critic")}, rew.clone(), done.clone())
    assert resets > 0 and env._native.ring_blocks < 40 - env.history_steps  # resets and ring wraps happened


@pytest.mark.skipif(widest() < 16, reason="the CPU has no AVX-512F: only the 8-env (AVX2) kernel can run here")
def test_avx512_kernel_equals_the_avx2_kernel_bit_for_bit():
    """16 envs per block (AVX-512) and 8 (AVX2) compute every lane alike: the same env stepped with either library
    gives identical observations, rewards, flags, state and episode buffers (resets, latency and noise included)."""
    spec = default_randomization().replace(
        action_latency=D("int_uniform", low=0, high=2, operation="absolute"),
        obs_latency=D("int_uniform", low=0, high=2, operation="absolute"),
        obs_noise_scale=D("uniform", low=0.5, high=1.5, when="interval", interval_s=0.07),
    )
    cfg = QuadrotorTaskCfg(task="hover", randomization=spec, episode_s=0.8)
    envs = {}
    for width in (16, 8):
        envs[width] = QuadrotorEnv(cfg, 2003, seed=3, native=True)  # 2003: partial last blocks of both widths
        envs[width]._native.lib = load_kernel(width)
    wide, narrow = envs[16], envs[8]
    assert wide._native.lib.quad_width() == 16 and narrow._native.lib.quad_width() == 8
    g = torch.Generator().manual_seed(0)
    resets = 0
    for step in range(100):
        a = 2 * torch.rand(2003, 4, generator=g) - 1  # crashes from ~35 steps on
        a[:600] *= 0.05  # these time out
        a[::29] = float("nan")
        ow, rw, dw, xw = wide.step(a)
        on, rn, dn, xn = narrow.step(a)
        assert equal_obs(ow, on), f"step {step}: observations differ"
        assert torch.equal(rw, rn), f"step {step}: rewards differ by up to {(rw - rn).abs().max():.3g}"
        assert torch.equal(dw, dn) and torch.equal(xw["time_outs"], xn["time_outs"]), f"step {step}: dones differ"
        resets += int(dw.sum())
    assert torch.equal(wide._native.state, narrow._native.state)
    for name in ("params", "episode_return", "episode_length_buf", "error_integral"):
        assert torch.equal(getattr(wide, name), getattr(narrow, name)), name
    assert resets > 500


def test_the_step_runs_torch_ops_on_one_thread_and_the_kernel_on_the_callers_threads(monkeypatch):
    """Inside a native step torch runs on one thread (its small ops would each wait for a second worker), the
    kernel gets the caller's thread count, and the caller's setting is restored after the step."""
    env = QuadrotorEnv(QuadrotorTaskCfg(task="hover", randomization=default_randomization()), 64, seed=0)
    seen = []
    draw = env._draw_reset_pool
    monkeypatch.setattr(env, "_draw_reset_pool", lambda n: seen.append(torch.get_num_threads()) or draw(n))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        env._pool_next = env._pool_size  # the next step's resets draw a new pool
        for _ in range(60):
            _, _, done, _ = env.step(2 * torch.rand(64, 4) - 1)
            if done.any() and seen:
                break
        assert seen and set(seen) == {1}
        assert env._native.args.num_threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
