"""The batched quadrotor env: registry contract, latency, noise, randomization, determinism, compile parity."""

from __future__ import annotations

import pytest
import torch

from sim.env import OBS_GROUPS
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg, default_randomization
from sim.quadrotor.env import QuadrotorEnv, delay_select
from sim.quadrotor.native import load_kernel
from sim.randomization import ParamDistribution as D
from sim.randomization import RandomizationSpec, RandomizationSpecError
from sim.tasks import TASKS, make_env, task_entry

QUIET = RandomizationSpec({"obs_noise_scale": D("constant", mean=0.0)})  # nominal parameters, no sensor noise


def const(value: float) -> D:
    return D("constant", mean=value, operation="absolute")


def quiet_env(n=4, spec=QUIET, init: InitCfg | None = None, **cfg) -> QuadrotorEnv:
    init = init or InitCfg(0.0, 0.0, 0.0, 0.0)
    return QuadrotorEnv(QuadrotorTaskCfg(randomization=spec, init=init, **cfg), n, seed=0, compile=False)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_registry_task_contract(name):
    env = make_env(name, 32, seed=3, compile=False)
    obs, _ = env.reset()
    assert obs["policy"].shape == (32, env.obs_spec.dim)
    assert obs["critic"].shape == (32, env.critic_spec.dim)
    assert obs["privileged"].shape == (32, env.privileged_spec.dim)
    # the articulated tasks add policy_now (the newest observation without the history) for a critic to choose
    assert set(OBS_GROUPS["critic"]) <= set(obs.keys()) <= set(OBS_GROUPS["critic"]) | {"policy_now"}
    g = torch.Generator().manual_seed(0)
    for _ in range(100):  # 1 s of random actions
        obs, rew, done, extras = env.step(2 * torch.rand(32, env.num_actions, generator=g) - 1)
        assert rew.shape == (32,) and done.dtype == torch.bool and extras["time_outs"].shape == (32,)
        for group in obs.values():
            assert torch.isfinite(group).all()
        assert torch.isfinite(rew).all()
    assert task_entry(name).description


def test_unknown_task_is_refused():
    with pytest.raises(KeyError, match="registered tasks"):
        make_env("quadrotor-backflip", 4)


def test_same_seed_same_rollout_different_seed_differs():
    def rollout(seed):
        env = make_env("quadrotor-track", 16, seed=seed, compile=False)
        g = torch.Generator().manual_seed(99)
        for _ in range(30):
            obs, *_ = env.step(2 * torch.rand(16, 4, generator=g) - 1)
        return obs["policy"].clone(), env.params.clone()

    a, pa = rollout(1)
    b, pb = rollout(1)
    c, pc = rollout(2)
    assert torch.equal(a, b) and torch.equal(pa, pb)
    assert not torch.allclose(a, c) and not torch.equal(pa, pc)


def test_hover_command_holds_and_time_outs_are_not_failures():
    env = quiet_env(n=4, episode_s=0.5)
    env.reset()
    for step in range(50):
        _, rew, done, extras = env.step(torch.zeros(4, 4))
        if step < 49:
            assert not done.any()
    assert done.all() and extras["time_outs"].all()
    assert rew.gt(0).all()


def test_leaving_the_box_is_a_failure_not_a_time_out():
    env = quiet_env(n=2)
    env.set_state_rows("position", torch.tensor([[5.0, 0.0, 1.0]]), torch.tensor([0]))
    _, rew, done, extras = env.step(torch.zeros(2, 4))
    assert done.tolist() == [True, False]
    assert not extras["time_outs"].any()
    assert rew[0] < 0


@pytest.mark.parametrize("latency", [0, 1, 2])
def test_action_latency_applies_actions_k_steps_later(latency):
    spec = QUIET.replace(action_latency=const(latency))
    env = quiet_env(n=1, spec=spec)
    hover = env.state_rows("rotor_rpm")[0, 0].item()
    first_response = None
    for step in range(5):
        action = torch.ones(1, 4) if step == 0 else torch.zeros(1, 4)
        env.step(action)
        if first_response is None and env.state_rows("rotor_rpm")[0, 0].item() > hover + 50:
            first_response = step
    assert first_response == latency


def assert_observed_late_by(env: QuadrotorEnv, latency: int, steps: int = 6) -> None:
    """The policy's position error at step t is the true one of step t - latency (a noise-free env of one vehicle)."""
    sl, true_sl = env.obs_spec.slice("position_error"), env.critic_spec.slice("true_position_error")
    policy, critic = [], []
    for _ in range(steps):
        obs, *_ = env.step(torch.zeros(1, 4))
        policy.append(obs["policy"][0, sl].clone())
        critic.append(obs["critic"][0, true_sl].clone())
    for t in range(latency, steps):
        torch.testing.assert_close(policy[t], critic[t - latency], atol=1e-6, rtol=0)
    if latency:
        assert not torch.allclose(policy[-1], critic[-1], atol=1e-4)


@pytest.mark.parametrize("latency", [0, 1, 2])
def test_observation_latency_delays_the_sensed_state(latency):
    spec = QUIET.replace(obs_latency=const(latency))
    assert_observed_late_by(quiet_env(n=1, spec=spec, init=InitCfg(0.0, 0.5, 0.0, 0.0)), latency)


@pytest.mark.parametrize("native", [False, True])
def test_the_observation_delay_line_is_as_long_as_the_observation_latency_needs(native):
    """An action latency longer than the observation latency lengthens the action delay line only; the observation
    is still late by exactly its own latency, on both backends."""
    if native and load_kernel() is None:
        pytest.skip("the native kernel could not be built (no g++?)")
    spec = QUIET.replace(obs_latency=const(1), action_latency=const(2))
    cfg = QuadrotorTaskCfg(randomization=spec, init=InitCfg(0.0, 0.5, 0.0, 0.0))
    env = (
        QuadrotorEnv(cfg, 1, seed=0, compile=False, native=True) if native else quiet_env(n=1, spec=spec, init=cfg.init)
    )
    assert (env.latency_slots, env.obs_latency_slots) == (3, 2)
    assert env.backend == ("native" if native else "eager")
    assert_observed_late_by(env, 1)


def test_observation_noise_statistics():
    spec = RandomizationSpec({"obs_noise_scale": D("constant", mean=1.0)})
    n = 512
    env = quiet_env(n=n, spec=spec)
    sl = env.obs_spec.slice("linear_velocity")
    true_sl = env.critic_spec.slice("true_linear_velocity")
    residuals = []
    for _ in range(40):
        obs, *_ = env.step(torch.zeros(n, 4))
        residuals.append(obs["policy"][:, sl] - obs["critic"][:, true_sl])
    r = torch.stack(residuals)  # (T, N, 3)
    std = env.obs_spec.term("linear_velocity").noise_std
    assert abs(r.std().item() / std - 1) < 0.03
    assert abs(r.mean().item()) < 4 * std / r.numel() ** 0.5
    lag1 = torch.corrcoef(torch.stack([r[1:].flatten(), r[:-1].flatten()]))[0, 1].item()
    cross = torch.corrcoef(torch.stack([r[..., 0].flatten(), r[..., 1].flatten()]))[0, 1].item()
    assert abs(lag1) < 0.02 and abs(cross) < 0.02


def test_randomization_reaches_the_simulator_per_env():
    env = make_env("quadrotor-hover", 256, seed=4, compile=False)
    mass = env.param("mass")[:, 0] / env.cfg.params.mass
    assert mass.min() >= 0.9 and mass.max() <= 1.2 and mass.std() > 0.05
    # privileged observation carries the truth
    torch.testing.assert_close(env.get_observations()["privileged"][:, 0], mass)
    # reset-time parameters are re-drawn on reset, startup ones are not
    before = env.param("mass").clone()
    env.reset()
    assert not torch.equal(before, env.param("mass"))


def test_interval_disturbances_are_redrawn_on_schedule():
    spec = QUIET.replace(
        disturbance_force=D(
            "uniform", low=-0.01, high=0.01, operation="absolute", when="interval", interval_s=0.1, per_component=True
        )
    )
    env = quiet_env(n=8, spec=spec)
    history = [env.param("disturbance_force").clone()]
    for _ in range(25):
        env.step(torch.zeros(8, 4))
        history.append(env.param("disturbance_force").clone())
    changes = [t for t in range(1, 26) if not torch.equal(history[t], history[t - 1])]
    assert changes == [10, 20]
    assert (history[-1].abs() <= 0.01).all()


def test_bad_inputs_are_refused_clearly():
    env = quiet_env(n=2)
    with pytest.raises(ValueError, match="actions must have shape \\(num_envs, num_actions\\) = \\(2, 4\\)"):
        env.step(torch.zeros(2, 3))
    obs, *_ = env.step(torch.full((2, 4), float("nan")))  # a NaN action is the hover command, never NaN state
    assert torch.isfinite(obs["policy"]).all()
    with pytest.raises(RandomizationSpecError, match="unknown parameters"):
        quiet_env(spec=RandomizationSpec({"wingspan": D("uniform", low=1, high=2)}))


def test_delay_select_picks_per_env():
    slots = [(torch.tensor([0.0, 0.0, 0.0]),), (torch.tensor([1.0, 1.0, 1.0]),), (torch.tensor([2.0, 2.0, 2.0]),)]
    (out,) = delay_select(slots, torch.tensor([2, 0, 1]))
    assert out.tolist() == [2.0, 0.0, 1.0]


def test_compiled_step_matches_eager():
    cfg = QuadrotorTaskCfg(task="track", randomization=default_randomization())
    eager = QuadrotorEnv(cfg, 128, seed=11, compile=False)
    compiled = QuadrotorEnv(cfg, 128, seed=11, compile=True)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        a = 2 * torch.rand(128, 4, generator=g) - 1
        oe, _, de, _ = eager.step(a)
        oc, _, dc, _ = compiled.step(a)
        assert torch.equal(de, dc)
    torch.testing.assert_close(oc["policy"], oe["policy"], atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(oc["critic"], oe["critic"], atol=2e-4, rtol=1e-4)


def test_reset_draws_come_from_a_pool_without_reuse(monkeypatch):
    from sim.quadrotor import reset_pool

    monkeypatch.setattr(reset_pool, "RESET_POOL", 7)  # resets of 4 envs cross the pool's end every other time
    env = make_env("quadrotor-hover", 4, seed=5, compile=False)
    ratios, quats = [], []
    for _ in range(50):
        env.reset()
        ratios.append(env.param("mass")[:, 0] / env.cfg.params.mass)
        quats.append(env.state_rows("quaternion"))
    r = torch.cat(ratios)
    assert r.unique().numel() == r.numel()  # every reset got fresh draws
    assert r.min() >= 0.9 and r.max() <= 1.2 and abs(r.mean().item() - 1.05) < 0.02
    torch.testing.assert_close(torch.cat(quats).norm(dim=-1), torch.ones(200))
    # privileged observations follow the re-drawn parameters
    torch.testing.assert_close(env.get_observations()["privileged"][:, 0], ratios[-1])


@pytest.mark.parametrize("native", [False, True])
def test_observation_history_holds_the_previous_observations_and_restarts_at_reset(native):
    """Row t = [base_t, base_t-1, base_t-2, base_t-3]; an env that was reset starts with copies of its first base
    observation. The native kernel computes the base, the history is appended the same way on both paths."""
    spec = RandomizationSpec({})  # default noise on: the history must carry the noisy vectors the policy saw
    env = QuadrotorEnv(QuadrotorTaskCfg(randomization=spec), 16, seed=1, compile=False, native=native)
    assert env.backend == ("native" if native else "eager")
    k, d = env.history_steps, env.base_obs_spec.dim
    assert k == 3 and env.obs_spec.dim == 4 * d and env.obs_spec.names[-1] == "observation_history"
    obs, _ = env.reset()
    first = obs["policy"].clone()
    assert torch.equal(first, first[:, :d].repeat(1, 4))
    bases = [first[:, :d]]
    g = torch.Generator().manual_seed(0)
    resets = 0
    for _ in range(150):
        obs, _, done, _ = env.step(2 * torch.rand(16, 4, generator=g) - 1)  # random rotor commands: crashes
        cur = obs["policy"]
        bases = [cur[:, :d].clone(), *bases[:3]]
        for i in range(16):
            if done[i]:
                resets += 1
                bases = [b.clone() for b in bases]
                for b in bases[1:]:
                    b[i] = cur[i, :d]
        expected = torch.cat(bases + [bases[-1]] * (4 - len(bases)), 1)
        assert torch.equal(cur, expected)
    assert resets > 0  # random commands crash some envs: the reset branch was checked
    assert not torch.equal(cur[:, :d], cur[:, d : 2 * d])  # the history moved


def test_history_is_optional_and_validated():
    assert quiet_env(observation_history=0).obs_spec.dim == quiet_env(observation_history=0).base_obs_spec.dim
    with pytest.raises(ValueError, match="whole number of control steps"):
        quiet_env(observation_history=-1)
