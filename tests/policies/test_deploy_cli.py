"""`sim2real deploy` refuses, before arming, what does not fit: the policy against the robot, an unrecordable log."""

from __future__ import annotations

from pathlib import Path

import yaml

import sim2real

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def _profile(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((LAUNCH / "sim_quadrotor.yaml").read_text())
    data["robot"] = str(LAUNCH / "robots" / "crazyflie2.yaml")
    data.update(changes)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_deploy_refuses_a_policy_for_another_rate_or_robot(trained_run, tmp_path, caplog):
    onnx = trained_run.paths["onnx"]
    assert sim2real.main(["deploy", "--profile", str(_profile(tmp_path, control_hz=50)), "--policy", str(onnx)]) == 2
    assert "control rate (Hz): expected 50.0, found 100.0" in caplog.text
    heavier = yaml.safe_load((LAUNCH / "robots" / "crazyflie2.yaml").read_text())["quadrotor"] | {"mass": 0.032}
    assert sim2real.main(["deploy", "--profile", str(_profile(tmp_path, robot=heavier)), "--policy", str(onnx)]) == 2
    assert "robot profile hash" in caplog.text


def test_deploy_refuses_when_the_flight_cannot_be_recorded(trained_run, tmp_path, caplog):
    onnx = trained_run.paths["onnx"]
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    code = sim2real.main(
        ["deploy", "--profile", str(_profile(tmp_path)), "--policy", str(onnx), "--log", str(blocked / "run.mcap")]
    )
    assert code == 2
    assert "cannot be recorded" in caplog.text


def test_deploy_refuses_a_missing_policy(tmp_path, caplog):
    assert sim2real.main(["deploy", "--profile", str(_profile(tmp_path)), "--policy", str(tmp_path / "none.onnx")]) == 2
    assert "does not exist" in caplog.text
