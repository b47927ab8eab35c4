"""The ``calibrate`` sub-commands end to end through calibration.cli (and sim2real's dispatcher)."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest
import yaml

from calibration import cli
from calibration.camera_model import read_ros_yaml
from calibration.handeye import make_transform, synthetic_hand_eye
from calibration.handeye_io import write_poses_yaml
from calibration.imu import synthetic_static_log
from calibration.imu_io import write_imu_mcap
from calibration.thrust import write_stand_csv
from calibration.thrust_report import synthetic_stand_log
from sim.randomization import RandomizationSpec

from .conftest import PINHOLE


def run_cli(argv: list[str], capsys) -> tuple[int, dict]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    rc = cli.run(parser.parse_args(argv))
    out = capsys.readouterr().out.strip()
    return rc, (json.loads(out.splitlines()[-1]) if out else {})


def test_camera_command(tmp_path, capsys, charuco_views):
    paths = []
    for i, img in enumerate(charuco_views[:8]):
        paths.append(str(tmp_path / f"img{i}.png"))
        cv2.imwrite(paths[-1], img)
    out = tmp_path / "out"
    argv = [
        "camera",
        *paths,
        "--board",
        "charuco",
        "--squares",
        "9",
        "6",
        "--square-size",
        "0.03",
        "--marker-size",
        "0.022",
    ]
    rc, summary = run_cli([*argv, "--out", str(out), "--camera-name", "front"], capsys)
    assert rc == 0
    cam = read_ros_yaml(out / "camera.yaml")
    assert cam.name == "front" and cam.fx == pytest.approx(PINHOLE.fx, rel=0.005)
    assert summary["views_used"] == 8 and set(summary["per_view_rms_px"]) == {f"img{i}.png" for i in range(8)}
    assert (out / "coverage.png").is_file()


def test_camera_command_reports_errors(tmp_path, capsys, caplog):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640), 128, np.uint8))
    argv = ["camera", str(blank), "--board", "chessboard", "--squares", "9", "6", "--square-size", "0.03"]
    rc, _ = run_cli([*argv, "--out", str(tmp_path / "o")], capsys)
    assert rc == 1 and "no chessboard board" in caplog.text


def test_hand_eye_command(tmp_path, capsys):
    X = make_transform(np.eye(3), [0.0, 0.05, 0.1])
    flange, board = synthetic_hand_eye(X, 8, np.random.default_rng(0))
    poses = write_poses_yaml(tmp_path / "poses.yaml", "eye_in_hand", flange, board)
    rc, summary = run_cli(["hand-eye", str(poses), "--out", str(tmp_path / "he")], capsys)
    assert rc == 0 and len(summary["methods"]) == 5
    result = yaml.safe_load((tmp_path / "he" / "hand_eye.yaml").read_text())
    np.testing.assert_allclose(result["best"]["translation"], [0.0, 0.05, 0.1], atol=1e-8)


def test_imu_command(tmp_path, capsys):
    log = synthetic_static_log(120, 100.0, np.random.default_rng(0))
    path = write_imu_mcap(log, tmp_path / "imu.mcap")
    rc, summary = run_cli(["imu", str(path), "--out", str(tmp_path / "imu")], capsys)
    assert rc == 0
    kalibr = yaml.safe_load((tmp_path / "imu" / "imu.yaml").read_text())
    assert kalibr["gyroscope_noise_density"] == pytest.approx(0.005, rel=0.1)
    spec = RandomizationSpec.from_yaml(tmp_path / "imu" / "imu_randomization.yaml")
    assert {"obs_noise.angular_velocity", "obs_noise.linear_acceleration", "imu_gyro_bias", "imu_accel_bias"} == set(
        spec.terms
    )
    assert (tmp_path / "imu" / "allan.png").is_file()
    np.testing.assert_allclose(summary["gyro_bias_rad_s"], [0.01, -0.02, 0.005], atol=0.005)


def test_thrust_command(tmp_path, capsys):
    path = write_stand_csv(synthetic_stand_log(np.random.default_rng(0)), tmp_path / "stand.csv")
    rc, summary = run_cli(["thrust", str(path), "--command-unit", "PWM", "--out", str(tmp_path / "th")], capsys)
    assert rc == 0 and summary["profile"]["kf"] == pytest.approx(3.16e-10, rel=0.01)
    for name in ("quadrotor_profile.yaml", "thrust_randomization.yaml", "thrust_fit.png"):
        assert (tmp_path / "th" / name).is_file()


def test_through_sim2real_dispatcher(tmp_path, capsys, monkeypatch):
    sim2real = pytest.importorskip("sim2real")
    monkeypatch.setitem(sim2real.COMMANDS, "calibrate", ("calibration.cli", "calibration"))
    path = write_stand_csv(synthetic_stand_log(np.random.default_rng(1)), tmp_path / "stand.csv")
    assert sim2real.main(["calibrate", "thrust", str(path), "--out", str(tmp_path / "th")]) == 0
    assert (tmp_path / "th" / "quadrotor_profile.yaml").is_file()
