"""Training: determinism under a seed, the asymmetric actor-critic, the run directory and the CLI overrides."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from policies import train as train_mod
from policies.curriculum import CurriculumCfg, InitStateCurriculum
from policies.overrides import OverrideError
from policies.train import CHECKPOINT_FORMAT, cfg_from_args, train
from policies.train_cfg import train_cfg
from sim.quadrotor.config import default_randomization
from sim.randomization import RandomizationSpec
from tests.policies.conftest import small_cfg

pytestmark = pytest.mark.usefixtures("one_thread")


def actor_params(result) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result.runner.alg.get_policy().state_dict().items()}


def test_same_seed_gives_identical_actor_and_different_seeds_differ():
    a = actor_params(train(small_cfg(seed=7, iterations=2), None, progress=False))
    b = actor_params(train(small_cfg(seed=7, iterations=2), None, progress=False))
    c = actor_params(train(small_cfg(seed=8, iterations=2), None, progress=False))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between two runs with the same seed"
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith("mlp."))
    # the normalizer learned from data (two updates of 64 envs x 24 steps)
    assert a["obs_normalizer.count"].item() == 2 * 64 * small_cfg().ppo.num_steps_per_env
    assert not torch.allclose(a["obs_normalizer._std"], torch.ones_like(a["obs_normalizer._std"]))


def test_training_changes_the_actor_and_reports_per_iteration_stats():
    one = train(small_cfg(seed=3, iterations=1), None, progress=False)
    three = train(small_cfg(seed=3, iterations=3), None, progress=False)
    w1 = one.runner.alg.get_policy().mlp[0].weight
    w3 = three.runner.alg.get_policy().mlp[0].weight
    assert not torch.equal(w1, w3)
    assert [h.iteration for h in three.history] == [0, 1, 2]
    for h in three.history:
        assert h.steps_per_s > 0 and h.wall_s > 0
        assert 0.0 <= h.crash_rate <= 1.0 or h.crash_rate != h.crash_rate  # nan when no episode ended
    assert three.history[-1].wall_s >= three.history[0].wall_s


def test_actor_sees_policy_group_only_and_critic_sees_privileged_groups():
    result = train(small_cfg(iterations=1), None, progress=False)
    env, alg = result.runner.env, result.runner.alg
    assert alg.actor.obs_groups == ["policy"]
    assert alg.critic.obs_groups == ["policy", "critic", "privileged"]
    assert alg.actor.obs_dim == env.obs_spec.dim == 4 * 25  # 25 measured, then 3 steps of their history
    assert alg.critic.obs_dim == env.obs_spec.dim + env.critic_spec.dim + env.privileged_spec.dim


def test_max_seconds_stops_training_early():
    cfg = small_cfg(iterations=50)
    cfg.max_seconds = 1e-3
    result = train(cfg, None, progress=False)
    assert result.iterations == 1


def test_bad_config_values_are_refused_with_a_message():
    cfg = small_cfg()
    cfg.num_envs = 0
    with pytest.raises(ValueError, match="num_envs"):
        train(cfg, None, progress=False)


def run_cli(argv: list[str], monkeypatch) -> int:
    import sim2real

    monkeypatch.setitem(sim2real.COMMANDS, "train", ("policies.train", "train"))
    return sim2real.main(argv)


def test_cli_writes_run_directory_with_config_commit_randomization_checkpoints_and_logs(tmp_path, monkeypatch):
    spec = default_randomization().replace(disturbance_force=None, disturbance_torque=None)
    spec_path = tmp_path / "spec.yaml"
    spec.to_yaml(spec_path)
    run_dir = tmp_path / "run"
    argv = ["train", "quadrotor-hover", "--seed", "5", "--num-envs", "32", "--iterations", "2", "--interface"]
    argv += ["ctbr", "--randomization", str(spec_path), "--save-interval", "1", "--run-dir", str(run_dir)]
    assert run_cli([*argv, "--no-progress"], monkeypatch) == 0

    info = json.loads((run_dir / "run.json").read_text())
    assert info["git_commit"] and info["git_commit"] != "unknown"
    assert info["config"]["seed"] == 5 and info["config"]["num_envs"] == 32
    assert info["config"]["env"]["action_interface"] == "ctbr"
    assert info["rsl_rl"]["obs_groups"] == {"actor": ["policy"], "critic": ["policy", "critic", "privileged"]}
    saved = RandomizationSpec.from_yaml(run_dir / "randomization.yaml")
    assert saved.digest() == spec.digest() != default_randomization().digest()
    assert "disturbance_force" not in saved
    assert sorted(p.name for p in run_dir.glob("model_*.pt")) == ["model_1.pt"]
    assert list(run_dir.glob("events.out.tfevents.*"))

    ck = torch.load(run_dir / "model_1.pt", weights_only=False)
    infos = ck["infos"]
    assert infos["format"] == CHECKPOINT_FORMAT and infos["iteration"] == 1 and infos["seed"] == 5
    assert json.loads(infos["action_spec"])["interface"] == "ctbr"
    assert infos["randomization_digest"] == spec.digest()


def test_cli_defaults_and_overrides_resolve_into_the_typed_config():
    p = argparse.ArgumentParser()
    train_mod.add_arguments(p)
    cfg = cfg_from_args(p.parse_args(["quadrotor-track"]))
    assert (cfg.task, cfg.env.task, cfg.num_envs, cfg.seed, cfg.max_seconds) == (
        "quadrotor-track",
        "track",
        192,
        0,
        None,
    )
    cfg = cfg_from_args(
        p.parse_args(["quadrotor-hover", "--num-envs", "128", "--max-seconds", "30", "--device", "cpu"])
    )
    assert (cfg.num_envs, cfg.max_seconds, cfg.device) == (128, 30.0, "cpu")
    rsl = cfg.rsl_rl_dict()
    assert rsl["algorithm"]["class_name"] == "PPO" and rsl["num_steps_per_env"] == 32
    assert rsl["actor"]["obs_normalization"] and rsl["critic"]["obs_normalization"]
    assert rsl["actor"]["distribution_cfg"]["class_name"] == "GaussianDistribution"
    with pytest.raises(SystemExit):
        p.parse_args(["quadrotor-fly"])


def test_nan_from_the_env_stops_training_with_the_group_named(monkeypatch):
    import sim.tasks

    real_make_env = sim.tasks.make_env

    def make_env(*args, **kwargs):
        env = real_make_env(*args, **kwargs)
        step = env.step

        def nan_step(actions):
            obs, rew, done, extras = step(actions)
            obs["privileged"][0, 0] = float("nan")
            return obs, rew, done, extras

        env.step = nan_step
        return env

    monkeypatch.setattr(sim.tasks, "make_env", make_env)
    with pytest.raises(ValueError, match=r"'privileged'.*NaN"):
        train(small_cfg(iterations=1), None, progress=False)


def test_cli_default_run_directory_is_runs_task_timestamp(tmp_path, monkeypatch):
    argv = ["train", "quadrotor-hover", "--num-envs", "16", "--iterations", "1", "--runs", str(tmp_path / "runs")]
    assert run_cli([*argv, "--no-progress", "--threads", "1"], monkeypatch) == 0
    assert torch.get_num_threads() == 1  # (the one_thread fixture restores the previous count)
    assert run_cli([*argv, "--no-progress"], monkeypatch) == 0  # same second: a distinct directory
    runs = sorted((tmp_path / "runs" / "quadrotor-hover").iterdir())
    assert len(runs) == 2
    for run in runs:
        assert run.name[:4].isdigit() and (run / "model_0.pt").is_file() and (run / "run.json").is_file()


def test_set_overrides_reach_nested_fields_and_refuse_bad_input():
    p = argparse.ArgumentParser()
    train_mod.add_arguments(p)
    args = ["quadrotor-hover", "--set", "ppo.num_learning_epochs=3", "--set", "env.reward.position=4.5"]
    args += ["--set", "critic.hidden_dims=[32, 16]", "--set", "curriculum.enabled=false"]
    args += ["--set", "ppo.learning_rate=3e-4", "--set", "td3.exploration_noise=5E-2"]  # YAML 1.1 reads these as text
    args += ["--set", "obs_groups.critic=[policy, critic]"]  # an entry of a dict field
    cfg = cfg_from_args(p.parse_args(args))
    assert cfg.obs_groups == {"actor": ["policy"], "critic": ["policy", "critic"]}
    assert cfg.ppo.learning_rate == 3e-4 and cfg.td3.exploration_noise == 0.05
    assert cfg.ppo.num_learning_epochs == 3 and isinstance(cfg.ppo.num_learning_epochs, int)
    assert cfg.env.reward.position == 4.5 and cfg.critic.hidden_dims == (32, 16) and not cfg.curriculum.enabled
    # frozen parts (the robot profile, a randomization term) are rebuilt with the value and checked again
    more = ["--set", "env.params.mass=0.031", "--set", "env.randomization.terms.mass.high=1.3"]
    cfg = cfg_from_args(p.parse_args(["quadrotor-hover", *more]))
    assert cfg.env.params.mass == 0.031 and cfg.env.randomization.get("mass").high == 1.3
    assert cfg.env.params.kf == train_cfg("quadrotor-hover").env.params.kf  # the other fields kept
    for bad, message in (
        ("ppo.num_learning_epoch=3", "has no field 'num_learning_epoch'"),
        ("ppo.num_learning_epochs=2.5", "expected an integer"),
        ("env.reward.position=far", "expected a number"),
        ("curriculum.enabled=3", "expected true or false"),
        ("seed", "expected KEY=VALUE"),
        ("obs_groups.teacher=[policy]", "obs_groups has no entry 'teacher'; its entries: actor, critic"),
        ("env.params.mass=0", "env.params.mass: quadrotor profile field 'mass' must be positive"),
        ("env.randomization.terms.mass.low=2", "env.randomization.terms.mass.low: distribution 'uniform' needs"),
    ):
        with pytest.raises(OverrideError, match=re.escape("--set: ") + ".*" + re.escape(message)):
            cfg_from_args(p.parse_args(["quadrotor-hover", "--set", bad]))


def test_iteration_callback_time_is_paused_out_of_the_training_clock():
    seen = []

    def slow_eval(stats, runner):
        seen.append(stats.wall_s)
        time.sleep(0.5)
        return stats.iteration == 1  # stop after the second iteration

    t0 = time.perf_counter()
    result = train(small_cfg(iterations=3), None, progress=False, on_iteration=slow_eval)
    elapsed = time.perf_counter() - t0
    assert result.iterations == 2 and len(seen) == 2
    assert result.paused_s >= 1.0
    assert result.wall_s <= elapsed - 1.0 + 0.05  # both sleeps are outside the training clock
    assert seen[1] - seen[0] < 0.5  # the sleep after iteration 0 did not count as training time


def test_init_state_curriculum_widens_on_low_crash_rate_and_narrows_on_high():
    cur = InitStateCurriculum(CurriculumCfg(start=0.2, step=0.1, promote_below=0.1, demote_above=0.6))
    assert cur.level == 0.2
    assert cur.update(0.05) == pytest.approx(0.3)
    assert cur.update(float("nan")) == pytest.approx(0.3)  # no episode ended: no decision
    assert cur.update(0.3) == pytest.approx(0.3)
    assert cur.update(0.9) == pytest.approx(0.2)
    assert cur.update(0.9) == pytest.approx(0.2)  # never below start
    for _ in range(20):
        cur.update(0.0)
    assert cur.level == 1.0
    assert InitStateCurriculum(CurriculumCfg(enabled=False)).level == 1.0
    with pytest.raises(ValueError, match="promote_below <= demote_above"):
        InitStateCurriculum(CurriculumCfg(promote_below=0.7, demote_above=0.6))


def test_each_action_interface_gets_its_measured_learner_settings():
    from policies.train_cfg import train_cfg

    cfg = train_cfg("quadrotor-hover")
    assert cfg.env.action_interface == "rpm" and cfg.ppo.num_learning_epochs == 2 and cfg.curriculum.step == 0.2
    assert cfg.num_envs == 192 and cfg.ppo.gamma == 0.995
    cfg.select_interface("ctbr")
    assert cfg.env.action_interface == "ctbr" and cfg.ppo.num_learning_epochs == 5 and cfg.ppo.init_noise_std == 0.3
    assert cfg.curriculum.step == 0.1 and cfg.ppo.learning_rate == 1e-3
    assert cfg.num_envs == 512 and cfg.ppo.gamma == 0.99
    args = argparse.ArgumentParser()
    train_mod.add_arguments(args)
    argv = ["quadrotor-hover", "--interface", "ctbr", "--set", "ppo.num_mini_batches=3", "--num-envs", "64"]
    cli = cfg_from_args(args.parse_args(argv))
    assert cli.ppo.num_learning_epochs == 5 and cli.ppo.num_mini_batches == 3  # --set applies after the interface
    assert cli.num_envs == 64  # and so does --num-envs
    td3 = cfg_from_args(args.parse_args(["quadrotor-hover", "--algo", "td3", "--interface", "ctbr"]))
    assert td3.num_envs == td3.td3.num_envs  # the interface's PPO env count is not TD3's
    with pytest.raises(ValueError, match="unknown action interface 'thrust'"):
        cfg.select_interface("thrust")


def test_cli_trains_on_the_base_spec_file_and_by_default_on_the_imperfections(tmp_path, monkeypatch):
    """launch/randomization/crazyflie2_base.yaml (the ideal vehicle) is a spec training takes; without
    --randomization training draws the vehicle's imperfections (the default)."""
    from sim.quadrotor.config import base_randomization, default_randomization

    path = Path(__file__).resolve().parents[2] / "launch" / "randomization" / "crazyflie2_base.yaml"
    imperfections = {"com_offset", "motor_kf_scale", "battery_sag", "action_latency_substeps"}
    for spec, expected in ((["--randomization", str(path)], base_randomization()), ([], default_randomization())):
        run_dir = tmp_path / f"run{len(spec)}"
        argv = ["train", "quadrotor-hover", "--num-envs", "64", "--iterations", "2", *spec]
        assert run_cli([*argv, "--run-dir", str(run_dir), "--no-progress"], monkeypatch) == 0
        saved = RandomizationSpec.from_yaml(run_dir / "randomization.yaml")
        assert saved.digest() == expected.digest()
        assert (imperfections <= set(saved.terms)) == (not spec)


def test_on_start_changes_the_learner_before_the_first_rollout_and_training_keeps_them():
    """The hook sees the learner before any data (an empty normalizer) and what it sets is what training starts
    from: an actor frozen there (its optimizer rebuilt over the critic) leaves training unchanged."""
    seen = {}

    def freeze_actor(runner):
        alg = runner.alg
        seen["count"] = alg.actor.obs_normalizer.count.item()
        with torch.no_grad():
            alg.actor.mlp[-1].bias.fill_(0.25)
        alg.actor.mlp.requires_grad_(False)
        alg.optimizer = torch.optim.Adam(alg.critic.parameters(), lr=alg.learning_rate)
        seen["mlp"] = {k: v.clone() for k, v in alg.actor.mlp.state_dict().items()}

    result = train(small_cfg(seed=5, iterations=2), None, progress=False, on_start=freeze_actor)
    assert seen["count"] == 0
    after = result.runner.alg.actor.mlp.state_dict()
    assert all(torch.equal(after[k], v) for k, v in seen["mlp"].items())
    assert torch.all(after[f"{len(result.runner.alg.actor.mlp) - 1}.bias"] == 0.25)
    td3 = small_cfg(iterations=1)
    td3.algo = "td3"
    with pytest.raises(ValueError, match="on_start"):
        train(td3, None, progress=False, on_start=freeze_actor)


def test_bf16_update_precision_trains_the_same_modules():
    """``update_precision=bf16``: the learner's MLPs switch to the mixed-precision forward, training runs, and the
    actor differs from float32's (the arithmetic changed), not the parameters' names."""
    from policies.models import MixedPrecisionMLP

    cfg = small_cfg(seed=3, iterations=2)
    cfg.update_precision = "bf16"
    mixed = train(cfg, None, progress=False)
    assert type(mixed.runner.alg.actor.mlp) is MixedPrecisionMLP
    assert type(mixed.runner.alg.critic.mlp) is MixedPrecisionMLP
    plain = train(small_cfg(seed=3, iterations=2), None, progress=False)
    a, b = actor_params(mixed), actor_params(plain)
    assert a.keys() == b.keys()
    assert all(torch.isfinite(v).all() for v in a.values())
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("mlp."))


def test_deploy_average_is_the_moving_average_that_evaluation_and_checkpoints_use(tmp_path):
    """``deploy_average=d``: after each iteration deployed = d deployed + (1 - d) online, from the initial actor; the
    inference policy and the checkpoint's ``actor_state_dict`` are that average (export and eval read it), the
    online actor is kept as ``online_actor_state_dict``."""
    from policies.actor import load_checkpoint

    d, seen = 0.6, {}

    def grab_start(runner):
        seen[-1] = {k: v.clone() for k, v in runner.alg.actor.named_parameters()}

    def grab(stats, runner):
        seen[stats.iteration] = {k: v.clone() for k, v in runner.alg.actor.named_parameters()}
        return False

    cfg = small_cfg(seed=4, iterations=3)
    cfg.deploy_average = d
    result = train(cfg, tmp_path, progress=False, on_iteration=grab, on_start=grab_start)
    runner = result.runner
    expected = seen[-1]
    for it in range(3):
        expected = {k: d * expected[k] + (1 - d) * seen[it][k] for k in expected}
    deployed = dict(runner.average.module.named_parameters())
    online = dict(runner.alg.actor.named_parameters())
    for k, v in expected.items():
        torch.testing.assert_close(deployed[k], v, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(deployed[k], online[k]) for k in deployed if k.startswith("mlp."))
    assert torch.equal(runner.average.module.obs_normalizer._mean, runner.alg.actor.obs_normalizer._mean)
    assert runner.get_inference_policy() is runner.average.module
    saved = torch.load(result.checkpoints[-1], weights_only=False)
    assert torch.equal(saved["actor_state_dict"]["mlp.0.weight"], deployed["mlp.0.weight"])
    assert torch.equal(saved["online_actor_state_dict"]["mlp.0.weight"], online["mlp.0.weight"])
    weights = load_checkpoint(result.checkpoints[-1]).weights
    np.testing.assert_array_equal(weights.layers[0][0], deployed["mlp.0.weight"].detach().numpy())
    for bad in (1.0, -0.1, "0.5"):
        cfg.deploy_average = bad
        with pytest.raises(ValueError, match="deploy_average: expected a decay"):
            cfg.check()
    cfg.deploy_average, cfg.algo = 0.5, "td3"
    with pytest.raises(ValueError, match="deploy_average is PPO's"):
        cfg.check()
