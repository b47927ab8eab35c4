"""The state estimator trained with the policy (policies/estimator.py): it learns its target, PPO's gradient does not
reach it, and the exported ONNX and C header compute the same action as the trained model, estimator included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from policies.train_cfg import TrainConfigError
from tests.domains import random_domain
from tests.policies.test_export import C_RTOL, PARITY_ATOL, command_range, random_observations

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(obs_dim: int = 10, estimate: int = 3):
    from policies.estimator import EstimatorMLPModel

    obs = TensorDict({"policy": torch.zeros(4, obs_dim)}, batch_size=[4])
    return EstimatorMLPModel(obs, {"actor": ["policy"]}, "actor", 2, hidden_dims=[16], activation="elu",
                             obs_normalization=True, estimator_dim=estimate, estimator_hidden_dims=[32])  # fmt: skip


def test_the_estimator_learns_its_target_and_ppo_gradients_do_not_reach_it():
    from policies.estimator import EstimatorTrainer

    torch.manual_seed(0)
    model = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 256, 10, generator=g)
    mixing = torch.randn(10, 3, generator=g)
    target = torch.tanh(x @ mixing)  # a smooth function of the observation
    obs = TensorDict({"policy": x, "critic": torch.cat([torch.randn(16, 256, 2, generator=g), target], -1)},
                     batch_size=[16, 256])  # fmt: skip
    trainer = EstimatorTrainer(model, slice(2, 5), learning_rate=3e-3, num_learning_epochs=1, num_mini_batches=8)
    first = trainer.update(obs)
    for _ in range(30):
        last = trainer.update(obs)
    assert last < 0.25 * first, (first, last)  # 0.68 -> ~0.15

    # PPO's loss flows through the actor MLP only: the estimate enters detached
    model.zero_grad(set_to_none=True)
    out = model(TensorDict({"policy": x[0]}, batch_size=[256]))
    out.square().sum().backward()
    assert all(p.grad is None for p in model.estimator.parameters())
    assert all(p.grad is not None for p in model.mlp.parameters())


def _trained(tmp_path, **estimator):
    from policies.train import train
    from policies.train_cfg import train_cfg

    cfg = train_cfg("legged-walk")
    cfg.seed, cfg.num_envs, cfg.max_iterations, cfg.save_interval = 0, 8, 2, 1
    cfg.ppo.num_steps_per_env = 8
    cfg.actor.estimator.enabled = True
    for key, value in estimator.items():
        setattr(cfg.actor.estimator, key, value)
    return train(cfg, tmp_path / "run", progress=False)


def test_exported_onnx_and_c_header_carry_the_estimator(tmp_path):
    import onnx

    from policies.actor import TorchActor, load_checkpoint
    from policies.c_export import c_compiler, run_header
    from policies.export import export
    from policies.onnx_policy import load_policy

    result = _trained(tmp_path)
    env, actor = result.runner.env, result.runner.alg.get_policy()
    ck = load_checkpoint(tmp_path / "run")
    assert ck.weights.estimate_dim == 3 and len(ck.weights.estimator) == 3  # base_lin_vel; 128-64 hidden
    est = ck.infos["actor"]["estimator"]
    assert (est["target"], est["scale"], est["unit"], est["hidden_dims"]) == ("base_lin_vel", 2.0, "m/s", [128, 64])
    paths = export(tmp_path / "run")
    model = onnx.load(str(paths["onnx"]))
    assert any(n.op_type == "Concat" for n in model.graph.node)
    meta = {p.key: p.value for p in model.metadata_props}
    assert '"target":"base_lin_vel"' in meta["sim2real.estimator"]
    policy = load_policy(paths["onnx"])
    assert policy.obs_spec == env.obs_spec  # the robot feeds its observation only; the estimate is inside

    obs = random_observations(env.obs_spec.dim, 256)
    actor.eval()
    with torch.no_grad():
        ref_action = actor({"policy": torch.from_numpy(obs)}).numpy()
        estimate = actor.estimator(actor.normalized({"policy": torch.from_numpy(obs)})).numpy()
    torch_actor = TorchActor(ck.weights)
    np.testing.assert_allclose(torch_actor(torch.from_numpy(obs)).numpy(), ref_action, atol=PARITY_ATOL)
    np.testing.assert_allclose(torch_actor.estimate(torch.from_numpy(obs)).numpy(), estimate, atol=PARITY_ATOL)
    assert np.abs(estimate).max() > 1e-3  # the estimate is not zero, so parity checks its path
    command, action = policy.run(obs)
    assert np.abs(action - ref_action).max() <= PARITY_ATOL
    # the runtime reads the estimate in m/s: the estimator's output over the observation scale (2.0)
    assert policy.estimator["target"] == "base_lin_vel"
    np.testing.assert_allclose(policy.last_estimate, estimate / 2.0, atol=PARITY_ATOL)
    policy.run(obs[0])
    np.testing.assert_allclose(policy.last_estimate, estimate[0] / 2.0, atol=PARITY_ATOL)
    if c_compiler() is not None:
        c = run_header(paths["header"], obs, repeats=1)
        assert np.all(np.abs(c.commands - command) <= C_RTOL * command_range(policy.action_spec))


def test_estimator_settings_a_run_cannot_use_are_refused(tmp_path):
    from policies.train_cfg import train_cfg

    with pytest.raises(ValueError, match="expected a term of the task's critic observation"):
        _trained(tmp_path, target="base_speed")
    cfg = train_cfg("legged-walk")
    cfg.actor.estimator.enabled = True
    cfg.select_algo("td3")
    with pytest.raises(TrainConfigError, match="trained inside PPO's loop"):
        cfg.check()


def test_the_runtime_scores_the_policy_velocity_estimate_in_sil(tmp_path, monkeypatch, capsys):
    """`sim2real deploy --sil` with an estimator policy: the runtime compares the estimate the ONNX outputs with
    the simulated robot's published twist, and replay reproduces the logged actions."""
    import json

    import yaml

    import sim2real
    from deploy.transport import LOOPBACK_CONFIG
    from policies.export import export

    _trained(tmp_path)
    policy = export(tmp_path / "run", header=False)["onnx"]
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random_domain()))
    monkeypatch.setenv("CYCLONEDDS_URI", LOOPBACK_CONFIG)
    launch = Path(__file__).resolve().parents[2] / "launch"
    data = yaml.safe_load((launch / "sim_a1.yaml").read_text())
    data["robot"] = str(launch / "robots" / "a1.yaml")
    data["plan"] = {"stand_s": 1.0, "hold_s": 0.5, "walk_s": 1.5, "velocity_command": [0.5, 0.0, 0.0], "stop_s": 0.5}
    data["recording"] = {"directory": str(tmp_path)}
    data["safety"] = {"common": {"max_state_age_s": 1.0}}  # the simulator shares two busy cores with this test
    data.pop("realtime_priority", None)
    profile = tmp_path / "sim_a1.yaml"
    profile.write_text(yaml.safe_dump(data))
    log = tmp_path / "run.mcap"
    sim2real.main(["deploy", "--profile", str(profile), "--policy", str(policy), "--sil", "--log", str(log)])
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    error = summary["tracking"].get("velocity_estimate_error_m_s")
    assert error is not None and 0.0 <= error < 20.0, summary  # an untrained estimator: any finite error
    args = ["replay", str(log), "--policy", str(policy), "--no-resim", "--json", "--out", str(tmp_path / "replay")]
    assert sim2real.main(args) == 0
    replay = json.loads((tmp_path / "replay" / "replay.json").read_text())
    assert replay["policy_replay"]["verdict"] == "match", replay["policy_replay"]
