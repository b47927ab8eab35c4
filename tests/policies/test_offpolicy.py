"""The off-policy learner (``--algo td3``): its target, time-outs in the replay buffer, determinism, checkpoints that
export with parity, and a short training that learns."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from policies.nstep import nstep_returns
from policies.td3 import Normalizer, ReplayBuffer, TwinCritic, td_target
from policies.train import train
from sim.quadrotor.config import base_randomization
from tests.policies.conftest import small_cfg

pytestmark = pytest.mark.usefixtures("one_thread")

PARITY_ATOL = 1e-5  # normalized action units, as for PPO checkpoints (tests/policies/test_export.py)


def td3_cfg(seed: int = 0, iterations: int = 3, envs: int = 16):
    """A few updates' worth of TD3 on the hover task: 16 envs x 8 steps per iteration, learning from the second."""
    cfg = small_cfg("quadrotor-hover", seed=seed, iterations=iterations, envs=envs)
    cfg.algo = "td3"
    cfg.td3.steps_per_iteration = 8
    cfg.td3.batch_size = 64
    cfg.td3.learning_starts = 128
    return cfg


def test_target_bootstraps_the_smaller_twin_with_the_stored_discount():
    returns = torch.tensor([1.0, 1.0, 0.5, -2.0])
    discount = torch.tensor([0.5, 0.0, 0.25, 0.0])  # running or time-out, failure, 2-step, failure
    next_q = torch.tensor([[2.0, 3.0, -1.0, 7.0], [4.0, 1.0, 0.0, 9.0]])
    target = td_target(returns, discount, next_q)
    assert torch.allclose(target, torch.tensor([1.0 + 0.5 * 2.0, 1.0, 0.5 + 0.25 * -1.0, -2.0]))


def test_nstep_returns_stop_at_failures_time_outs_and_the_chunk_end():
    """Two envs, 4 steps, n = 2, gamma = 0.5: env 0 runs throughout; env 1 fails at step 1, times out at step 3."""
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    failed = torch.tensor([[0, 0], [0, 1], [0, 0], [0, 0]], dtype=torch.bool)
    time_outs = torch.tensor([[0, 0], [0, 0], [0, 0], [0, 1]], dtype=torch.bool)
    returns, discount, next_index = nstep_returns(rewards, failed, time_outs, gamma=0.5, n=2)
    assert returns.tolist() == [[2.0, 1.5], [3.5, 1.0], [5.0, 1.5], [4.0, 1.0]]
    # failures: no bootstrap; time-out at step 3: bootstrap from its own observation before step 3 (obs[3])
    assert discount.tolist() == [[0.25, 0.0], [0.25, 0.0], [0.25, 0.25], [0.5, 0.5]]
    assert next_index[:, 0].tolist() == [2, 3, 4, 4]
    assert next_index[2:, 1].tolist() == [3, 3]
    one = nstep_returns(rewards, failed, time_outs, gamma=0.5, n=1)
    assert torch.equal(one[0], rewards)
    assert one[1].tolist() == [[0.5, 0.5], [0.5, 0.0], [0.5, 0.5], [0.5, 0.5]]


def test_time_outs_keep_their_bootstrap_and_failures_lose_it():
    """Episodes of 5 steps: every time-out row stores its own observation as the next one and keeps its discount
    (gamma); with the floor above the hover point every step is a failure, stored with discount 0."""
    cfg = td3_cfg(iterations=2)
    cfg.env.episode_s = 0.05
    cfg.curriculum.start = 0.05  # no crash within 5 steps of a start this close to hover
    cfg.td3.learning_starts = 10**6
    cfg.td3.n_step = 1  # one reward per row (n-step rows: test_nstep_returns_...)
    learner = train(cfg, None, progress=False).runner
    buf = learner.buffer
    d = buf.obs_dim
    rows = buf.data[: buf.size]
    obs, next_obs, discount = rows[:, :d], rows[:, d : 2 * d], rows[:, -1]
    same = (obs == next_obs).all(1)
    steps = 2 * cfg.td3.steps_per_iteration
    assert buf.size == steps * cfg.num_envs
    assert int(same.sum()) == (steps // 5) * cfg.num_envs  # one time-out per env every 5 steps, nothing else
    assert torch.allclose(discount, torch.tensor(cfg.td3.gamma))

    cfg = td3_cfg(iterations=1)
    cfg.env.termination.floor_m = 1.5  # above the reference height (1 m): down at once
    learner = train(cfg, None, progress=False).runner
    rows = learner.buffer.data[: learner.buffer.size]
    assert torch.all(rows[:, -1] == 0.0)
    assert torch.all(rows[:, -2] < 0)  # the termination penalty


def test_replay_buffer_copies_rows_in_and_wraps_by_whole_chunks():
    buf = ReplayBuffer(capacity=10, rows_per_add=4, obs_dim=2, action_dim=1, device="cpu")
    assert buf.capacity == 12
    for k in range(4):
        obs = torch.full((4, 2), float(k))
        buf.add(obs, obs + 0.5, torch.zeros(4, 1), torch.full((4,), float(k)), torch.ones(4))
        obs.fill_(-1.0)  # the env rewrites its tensors: the buffer must hold copies
    assert buf.size == 12
    assert buf.data[:4, 0].tolist() == [3.0] * 4  # the 4th write replaced the oldest rows
    assert buf.data[4:, 0].tolist() == [1.0] * 4 + [2.0] * 4


def test_normalizer_matches_the_moments_of_everything_seen():
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(n, 3, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + 2.0 for n in (7, 50, 13)]
    norm = Normalizer(3)
    for b in batches:
        norm.update(b)
    allx = torch.cat(batches)
    assert torch.allclose(norm._mean[0], allx.mean(0), atol=1e-5)
    assert torch.allclose(norm._std[0], allx.std(0, unbiased=False), rtol=1e-4)
    assert int(norm.count) == 70


def test_twin_critic_is_two_independent_networks():
    g = torch.Generator().manual_seed(0)
    critic = TwinCritic([5, 8, 1], g, "cpu")
    x, a = torch.randn(6, 3), torch.randn(6, 2)
    q = critic(x, a)
    assert q.shape == (2, 6)
    for k in range(2):
        w0, b0, w1, b1 = critic.weights[0][k], critic.biases[0][k], critic.weights[1][k], critic.biases[1][k]
        expected = torch.relu(torch.cat([x, a], 1) @ w0 + b0) @ w1 + b1
        assert torch.allclose(q[k], expected[:, 0], atol=1e-6)


def actor_params(result) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result.runner.actor.state_dict().items()}


def test_same_seed_gives_identical_actor_and_different_seeds_differ():
    a = train(td3_cfg(seed=7), None, progress=False)
    b = train(td3_cfg(seed=7), None, progress=False)
    c = train(td3_cfg(seed=8), None, progress=False)
    assert a.runner.updates == b.runner.updates > 0
    pa, pb, pc = actor_params(a), actor_params(b), actor_params(c)
    for k in pa:
        assert torch.equal(pa[k], pb[k]), f"{k} differs between two runs with the same seed"
    assert any(not torch.equal(pa[k], pc[k]) for k in pa if k.startswith("mlp."))
    before = train(td3_cfg(seed=7, iterations=1), None, progress=False)  # no update yet (learning_starts)
    assert any(not torch.equal(actor_params(before)[k], pa[k]) for k in pa if k.startswith("mlp."))


def test_checkpoint_exports_to_onnx_and_c_matching_the_actor(tmp_path):
    from policies.actor import TorchActor, load_checkpoint
    from policies.c_export import c_compiler, run_header
    from policies.export import export
    from policies.onnx_policy import load_policy

    run_dir = tmp_path / "run"
    result = train(td3_cfg(), run_dir, progress=False)
    assert {"run.json", "randomization.yaml", "model_2.pt"} <= {p.name for p in run_dir.iterdir()}
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    ck = load_checkpoint(run_dir)
    assert ck.infos["algo"] == "td3" and ck.weights.output_activation == "tanh"
    paths = export(run_dir)
    policy = load_policy(paths["onnx"])
    rng = np.random.default_rng(0)
    obs = (rng.standard_normal((256, 100)) * rng.choice([0.1, 1.0, 5.0], size=(256, 1))).astype(np.float32)
    learner = result.runner
    with torch.no_grad():
        reference = learner.deployed_actor(torch.from_numpy(obs))
    assert reference.abs().max() < 1.0  # squashed by the tanh
    torch_actor = TorchActor(ck.weights, ck.action_spec)
    assert torch.allclose(torch_actor(torch.from_numpy(obs)), reference, atol=PARITY_ATOL)
    command, action = policy.run(obs)
    assert np.abs(action - reference.numpy()).max() <= PARITY_ATOL
    physical = ck.action_spec.to_physical(reference).numpy()
    span = np.asarray(ck.action_spec.high) - np.asarray(ck.action_spec.low)
    assert np.all(np.abs(command - physical) <= PARITY_ATOL * span)
    if c_compiler() is not None:
        c = run_header(paths["header"], obs, repeats=1)
        assert np.all(np.abs(c.commands - command) <= 1e-4 * span)


def fly(learner, cfg, envs: int = 128) -> dict[str, float]:
    """The learner's deterministic actor on fresh envs: 3 s episodes from a fifth of the initial-state ranges."""
    from tensordict import TensorDict

    from policies.rollout import rollout
    from sim.tasks import make_env

    env_cfg = copy.deepcopy(cfg.env)
    env_cfg.episode_s = 3.0
    env = make_env(cfg.task, envs, seed=123, cfg=env_cfg)
    env.set_init_scale(0.2)
    policy = learner.get_inference_policy()
    with torch.no_grad():
        act = lambda obs: policy(TensorDict({"policy": obs}, batch_size=[envs])).clamp(-1.0, 1.0)  # noqa: E731
        return rollout(env, act, env_cfg.max_episode_length).metrics()


def test_a_short_training_learns_to_stay_up():
    """~33 s: 1200 iterations of 64 envs x 16 steps (19,200 updates). The untrained actor crashes in (nearly) every
    episode; the trained one in at most a quarter of them and within a metre of the hover point. How fast it gets
    there depends on the host's floating-point path (same seed, deterministic on each): at 900 iterations 8 % crashes
    and 0.13 m RMSE on an AMD EPYC host, 50 % and 0.53 m on an Intel Xeon (family 6 model 167), whose seed 0 then
    went on to 3.1 % / 0.11 m at 1200 and 0.8 % / 0.08 m at 1500 iterations (2026-12-07); hence 1200, not 900. The
    untrained actor's RMSE is no yardstick, since its episodes end in a crash within a second."""
    cfg = td3_cfg(seed=0, iterations=1200, envs=64)
    # Without the observation history: with it, TD3 stays up as well (9 % crashes) but in this budget flies
    # bang-bang 0.65 m off instead of 0.13 m (measured; docs/training.md, "Observation history").
    cfg.env.observation_history = 0
    # The body-rate weight TD3 was measured with: with PPO's 0.1 (issue #22) this budget left it at curriculum level
    # 0.2 with a mean reward near 0 (not re-tuned for TD3; TD3 is not the default learner).
    cfg.env.reward.angular_velocity = 0.02
    # The ideal vehicle (base spec), as measured: on the default's imperfect ones this budget leaves 95 % crashing.
    cfg.env.randomization = base_randomization()
    cfg.td3.steps_per_iteration, cfg.td3.n_step, cfg.td3.batch_size, cfg.td3.learning_starts = 16, 10, 128, 2000
    result = train(cfg, None, progress=False)
    cfg.max_iterations = 1  # 1,024 transitions, below learning_starts: no update
    untrained = fly(train(cfg, None, progress=False).runner, cfg)
    trained = fly(result.runner, cfg)
    assert untrained["crash_rate"] >= 0.95
    assert trained["crash_rate"] <= 0.25, trained
    assert trained["position_rmse_m"] < 1.0, (untrained, trained)
    assert result.history[-1].episode_length_s > 2.0  # training episodes last 5 s unless they crash
