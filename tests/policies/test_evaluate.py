"""Evaluation: checkpoint and exported ONNX fly the same envs alike; report beside the PID baseline; CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sim2real
from policies.evaluate import evaluate, load_source

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_checkpoint_and_onnx_evaluations_agree(trained_run):
    source = load_source(trained_run.run_dir)
    names = [c.name for c in source.controllers]
    assert names == ["policy (model_2.pt)", "policy (policy.onnx)"]
    metrics, rollouts, cfg = evaluate(source, episodes=32, seconds=3.0, seed=2, pid=False)
    ck, ox = metrics[names[0]], metrics[names[1]]
    assert cfg.episode_s == 3.0 and ck["envs"] == ox["envs"] == 32
    assert ck["crash_rate"] == ox["crash_rate"]
    assert ck["success_rate"] == ox["success_rate"]
    assert ox["position_rmse_m"] == pytest.approx(ck["position_rmse_m"], rel=1e-3)
    # same envs, same actions up to float32 rounding of the physical round trip
    da = (rollouts[names[0]].action - rollouts[names[1]].action).abs()
    assert da[:50].max().item() < 1e-4


def test_eval_from_an_onnx_file_alone_matches_its_column(trained_run):
    source = load_source(trained_run.paths["onnx"])
    assert source.task == "quadrotor-hover" and source.action_spec.interface == "rpm"
    metrics, _, _ = evaluate(source, episodes=16, seconds=2.0, seed=2, pid=False)
    assert list(metrics) == ["policy (policy.onnx)"]
    assert 0.0 <= metrics["policy (policy.onnx)"]["crash_rate"] <= 1.0


def test_export_and_eval_commands_write_files_and_a_side_by_side_report(trained_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sim2real.COMMANDS, "export", ("policies.export", "export"))
    monkeypatch.setitem(sim2real.COMMANDS, "eval", ("policies.evaluate", "evaluate"))
    out = tmp_path / "export"
    assert sim2real.main(["export", str(trained_run.run_dir / "model_1.pt"), "--out", str(out)]) == 0
    assert (out / "policy.onnx").is_file() and (out / "policy.h").is_file()
    report_dir = tmp_path / "eval"
    argv = ["eval", str(trained_run.run_dir), "--episodes", "24", "--seconds", "10", "--out", str(report_dir)]
    argv += ["--randomization", str(ROOT / "launch" / "randomization" / "crazyflie2_base.yaml")]  # the PID's vehicle
    assert sim2real.main(argv) == 0
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert sorted(metrics) == ["PID", "policy (model_2.pt)", "policy (policy.onnx)"]
    assert metrics["PID"]["envs"] == 24
    assert metrics["PID"]["crash_rate"] <= 0.1  # the baseline holds hover from random starts
    assert metrics["PID"]["position_rmse_median_m"] < 0.05
    text = (report_dir / "report.md").read_text()
    assert "| success_rate |" in text and "PID" in text
    assert len(list(report_dir.glob("*.png"))) == 6
    argv = ["eval", str(trained_run.run_dir), "--task", "quadrotor-track", "--episodes", "4"]
    assert sim2real.main(argv) == 2  # one line: "... trained on 'quadrotor-hover'" (tests/policies/test_cli_errors.py)


def test_export_refuses_a_directory_without_checkpoints(tmp_path):
    from policies.actor import CheckpointError
    from policies.export import export

    with pytest.raises(CheckpointError, match=r"no model_<iteration>\.pt checkpoint"):
        export(tmp_path)
