"""Bad values on the command line: one line saying what was expected and what to do, exit code 2, no traceback,
no run directory left behind (the issue's cases: --num-envs 0, --device cuda:0 without CUDA, a truncated
checkpoint, a mass scale <= 0, negative motor time constants, a latency beyond the episode, legged-walk --interface
ctbr, files that do not exist)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import sim2real


def run(argv: list[str], caplog) -> tuple[int, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = sim2real.main(argv)
    return code, [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def spec(tmp_path: Path, term: str) -> Path:
    path = tmp_path / "randomization.yaml"
    path.write_text(f"terms:\n  {term}\n")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-envs", "0"], "--num-envs: expected a positive whole number, got 0"),
        (["--iterations", "-3"], "--iterations: expected a positive whole number, got -3"),
        (["--max-seconds", "-5"], "--max-seconds: expected seconds > 0"),
        (["--device", "cuda:0"], "this torch has no usable CUDA device"),
        (["--device", "tpu"], "--device 'tpu': not a torch device"),
        (["--threads", "0"], "--threads: expected a positive number"),
        (["--set", "env.physics_substeps=0"], "env.physics_substeps: expected a whole number >= 1, got 0"),
        (["--set", "env.control_hz=0"], "env.control_hz: expected a rate > 0 Hz, got 0.0"),
        (["--set", "env.episode_s=-1"], "env.episode_s: expected at least one control step (0.01 s), got -1.0"),
        (["--set", "env.params.mass=-1"], "--set: env.params.mass: quadrotor profile field 'mass' must be positive"),
        (["--set", "env.randomization.terms.kf.low=0"], "'kf': its values must be > 0, but it can reach 0"),
    ],
)
def test_train_refuses_bad_settings_before_making_a_run_directory(tmp_path, caplog, args, message):
    if "cuda:0" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the value is not bad here")
    code, errors = run(["train", "quadrotor-hover", "--runs", str(tmp_path / "runs"), *args], caplog)
    assert code == 2 and len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "runs").exists()


def test_train_names_a_run_directory_it_cannot_create(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, errors = run(["train", "quadrotor-hover", "--run-dir", str(blocker / "run"), "--num-envs", "4"], caplog)
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"--run-dir {blocker / 'run'}: cannot create")
    code, errors = run(["train", "quadrotor-hover", "--runs", str(blocker / "runs"), "--num-envs", "4"], caplog)
    assert code == 2 and "choose a directory you can write to" in errors[0], errors


def test_train_refuses_an_interface_the_task_has_not(tmp_path, caplog):
    code, errors = run(["train", "legged-walk", "--interface", "ctbr", "--runs", str(tmp_path / "runs")], caplog)
    assert code == 2 and "acts through joint position targets" in errors[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("mass: {distribution: uniform, low: 0.0, high: 1.2}", "'mass': its values must be > 0, but it can reach 0"),
        ("mass: {distribution: normal, mean: 1.0, std: 0.1}", "'mass': its values must be > 0, but it can reach -inf"),
        (
            "motor_tau_up: {distribution: uniform, low: -0.01, high: 0.02, operation: absolute}",
            "'motor_tau_up': its values must be > 0, but it can reach -0.01",
        ),
        (
            "km: {distribution: uniform, low: -1.0, high: 0.0, operation: offset}",
            "'km': its values must be > 0",
        ),
        (
            "action_latency: {distribution: int_uniform, low: 0, high: 5000, operation: absolute}",
            "'action_latency': up to 5000 steps, but an episode has 500",
        ),
        (
            "obs_noise_scale: {distribution: uniform, low: -1.0, high: 1.0, operation: absolute}",
            "'obs_noise_scale': its values must be >= 0",
        ),
        (
            "obs_noise.linear_velocity: {distribution: uniform, low: -0.01, high: 0.01, operation: absolute}",
            "'obs_noise.linear_velocity': its values must be >= 0, but it can reach -0.01",
        ),
        (
            "obs_latency: {distribution: int_uniform, low: -2, high: 1, operation: absolute}",
            "'obs_latency': a latency is a number of steps >= 0, but it can reach -2",
        ),
        ("inertia: {distribution: uniform, low: -0.5, high: 1.5}", "'inertia': its values must be > 0"),
    ],
)
def test_physically_impossible_randomization_is_refused_and_leaves_nothing(tmp_path, caplog, term, message):
    runs = tmp_path / "runs"
    argv = ["train", "quadrotor-hover", "--randomization", str(spec(tmp_path, term)), "--iterations", "1"]
    code, errors = run([*argv, "--runs", str(runs), "--no-progress"], caplog)
    assert code == 2 and len(errors) == 1 and message in errors[0], errors
    assert not runs.exists()


def test_export_and_eval_answer_missing_and_truncated_checkpoints(tmp_path, caplog):
    for command in ("export", "eval"):
        code, errors = run([command, str(tmp_path / "nothing")], caplog)
        assert code == 2 and "is neither a checkpoint file nor a run directory" in errors[0]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"infos": {}, "actor_state_dict": {}}, run_dir / "model_5.pt")
    (run_dir / "model_5.pt").write_bytes((run_dir / "model_5.pt").read_bytes()[:40])  # cut short
    code, errors = run(["export", str(run_dir)], caplog)
    assert code == 2 and "cannot read the checkpoint" in errors[0] and "truncated" in errors[0]


def test_a_bug_is_not_disguised_as_a_usage_error(monkeypatch):
    """Only the project's input errors become one line; anything else keeps its traceback."""
    import policies.export

    monkeypatch.setattr(policies.export, "run", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sim2real.main(["export", "whatever"])


def test_a_legged_link_mass_scale_of_zero_is_refused(tmp_path, caplog):
    runs = tmp_path / "runs"
    path = spec(tmp_path, "link_mass: {distribution: uniform, low: 0.0, high: 1.1}")
    argv = ["train", "legged-walk", "--randomization", str(path), "--iterations", "1", "--num-envs", "2"]
    code, errors = run([*argv, "--runs", str(runs), "--no-progress"], caplog)
    assert code == 2 and "'link_mass': its values must be > 0, but it can reach 0" in errors[0], errors
    assert not runs.exists()


def test_impossible_randomization_is_refused_before_the_run_directory_or_the_simulator(tmp_path, caplog, monkeypatch):
    """The spec is checked against the task's nominal values, not by building the env and cleaning up after."""
    import policies.train
    import sim.quadrotor.env

    def must_not_run(*args, **kwargs):
        raise AssertionError("reached")

    monkeypatch.setattr(policies.train, "make_run_dir", must_not_run)
    monkeypatch.setattr(sim.quadrotor.env.QuadrotorEnv, "__init__", must_not_run)
    path = spec(tmp_path, "motor_tau_down: {distribution: uniform, low: -0.5, high: 1.0}")
    code, errors = run(["train", "quadrotor-hover", "--randomization", str(path), "--runs", str(tmp_path)], caplog)
    assert code == 2 and "'motor_tau_down': its values must be > 0, but it can reach -" in errors[0], errors


def test_a_base_made_lighter_than_nothing_is_refused(tmp_path, caplog):
    runs = tmp_path / "runs"
    path = spec(tmp_path, "added_base_mass: {distribution: uniform, low: -50.0, high: 1.0, operation: offset}")
    code, errors = run(["train", "legged-walk", "--randomization", str(path), "--runs", str(runs)], caplog)
    assert code == 2 and "the base 'trunk'" in errors[0] and "can weigh -" in errors[0], errors
    assert not runs.exists()


def truncated_run(tmp_path: Path, run_dir: Path) -> Path:
    """A run directory whose only checkpoint is the first 1000 bytes of the trained run's latest one."""
    from policies.actor import resolve_checkpoint

    cut = tmp_path / "run"
    cut.mkdir()
    latest = resolve_checkpoint(run_dir)
    (cut / latest.name).write_bytes(latest.read_bytes()[:1000])
    return cut


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--episodes", "0"], "--episodes: expected a positive whole number of episodes, got 0"),
        (["--episodes", "-8"], "--episodes: expected a positive whole number of episodes, got -8"),
        (["--seconds", "-1"], "--seconds: expected an episode length > 0 s, got -1"),
        (["--seconds", "nan"], "--seconds: expected an episode length > 0 s, got nan"),
    ],
)
def test_eval_refuses_bad_settings_before_reading_the_policy(tmp_path, caplog, args, message):
    code, errors = run(["eval", str(tmp_path / "not-read"), *args], caplog)
    assert code == 2 and len(errors) == 1 and message in errors[0], errors
    assert list(tmp_path.iterdir()) == []


def test_eval_answers_the_wrong_task_a_truncated_checkpoint_and_a_missing_policy(tmp_path, caplog, trained_run):
    code, errors = run(["eval", str(trained_run.run_dir), "--task", "legged-walk"], caplog)
    assert code == 2 and "the policy was trained on 'quadrotor-hover'; pass --task quadrotor-hover" in errors[0]
    cut = truncated_run(tmp_path, trained_run.run_dir)
    code, errors = run(["eval", str(cut)], caplog)
    assert code == 2 and "cannot read the checkpoint" in errors[0] and "train again" in errors[0], errors
    code, errors = run(["eval", str(tmp_path / "policy.onnx")], caplog)
    assert code == 2 and "does not exist; export one with `sim2real export RUN_DIR`" in errors[0], errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no report directory


def test_export_of_an_exported_file_or_a_truncated_one_says_what_it_takes(tmp_path, caplog, trained_run):
    code, errors = run(["export", str(trained_run.paths["onnx"])], caplog)
    assert code == 2 and "is an exported policy, not a checkpoint; pass its run directory" in errors[0], errors
    cut = truncated_run(tmp_path, trained_run.run_dir)
    code, errors = run(["export", str(cut), "--out", str(tmp_path / "out")], caplog)
    assert code == 2 and "truncated" in errors[0]
    assert not (tmp_path / "out").exists() and len(list(cut.iterdir())) == 1
