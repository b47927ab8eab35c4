"""PX4 ULog and ArduPilot DataFlash logs in replay and identification.

The logs are written by the writers beside this file from a simulated flight with hidden parameters (mass x1.12)
and read back by pyulog / pymavlink (the files are valid) and by our readers. Tolerances asserted: positions,
velocities and rates 1e-6 (float32 storage), quaternions |q.q_ref| within 1e-6 of 1, times 1 us; motor commands
0.01 RPM from ULog (float32) and 0.06 % of max_rpm from DataFlash (PWM in whole microseconds); frames and the
throttle curve against hand-computed values; identified mass within 2 % of the truth from either log.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from calibration.sysid.synthetic import SyntheticFlight, fly, hidden_params
from deploy.replay import load_flight
from deploy.replay.throttle import ThrottleCurve

from .dataflash_writer import write_bin, write_flight_bin
from .ulog_writer import ODOMETRY, write_flight_ulog, write_ulog

TRUTH = hidden_params(mass=1.12)
CURVE = ThrottleCurve(max_rpm=21702.0, expo=0.65)
S = 0.5**0.5


@pytest.fixture(scope="module")
def flown(tmp_path_factory):
    out = tmp_path_factory.mktemp("autopilot")
    fly(out / "flight.mcap", SyntheticFlight(seconds=8.0, params=TRUTH, seed=5))
    ref = load_flight(out / "flight.mcap")
    logs = {
        "ulg": write_flight_ulog(out / "flight.ulg", ref, CURVE),
        "ulg_body": write_flight_ulog(out / "body.ulg", ref, CURVE, body_velocity=True),
        "bin": write_flight_bin(out / "flight.bin", ref, CURVE),
    }
    return ref, logs


def test_written_files_read_back_with_pyulog_and_pymavlink(flown):
    from pymavlink.DFReader import DFReader_binary
    from pyulog import ULog

    ref, logs = flown
    ulog = ULog(str(logs["ulg"]))
    assert not ulog.file_corruption and ulog.initial_parameters["SYS_AUTOSTART"] == 4001
    odom = ulog.get_dataset("vehicle_odometry").data
    assert len(odom["timestamp"]) == len(ref.state_t) and odom["timestamp"][0] == 5_000_000
    np.testing.assert_allclose(odom["position[2]"], -ref.position[:, 2], atol=1e-6)  # NED down = -up
    assert set(np.unique(odom["pose_frame"])) == {1}
    motors = ulog.get_dataset("actuator_motors").data
    assert np.isnan(motors["control[4]"]).all() and (motors["control[0]"] > 0.3).all()
    reader = DFReader_binary(str(logs["bin"]))
    counts = {}
    while (m := reader.recv_match()) is not None:
        counts[m.get_type()] = counts.get(m.get_type(), 0) + 1
        if m.get_type() == "XKF1" and m.C == 0 and "xkf1" not in counts:
            counts["xkf1"] = 1
            assert m.PD == pytest.approx(-ref.position[0, 2], abs=1e-6) and abs(m.Roll) < 5  # centidegrees scaled
    assert counts["ATT"] == counts["IMU"] == counts["RCOU"] == len(ref.state_t) and counts["XKF1"] == 2 * counts["ATT"]


@pytest.mark.parametrize("name", ["ulg", "ulg_body", "bin"])
def test_reader_recovers_the_trajectory(flown, name):
    ref, logs = flown
    f = load_flight(logs[name], needed=("pose", "twist", "command"), throttle=CURVE)
    assert f.problems == []
    np.testing.assert_allclose(f.state_t, ref.state_t, atol=1e-6)
    np.testing.assert_allclose(f.command_t, ref.command_t, atol=1e-6)
    np.testing.assert_allclose(f.position, ref.position, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(f.quaternion * ref.quaternion, 1)), 1.0, atol=1e-6)
    np.testing.assert_allclose(f.velocity, ref.velocity, atol=1e-6)
    np.testing.assert_allclose(f.angular_velocity, ref.angular_velocity, atol=1e-6)
    atol = 0.01 if name.startswith("ulg") else 6e-4 * CURVE.max_rpm
    np.testing.assert_allclose(f.command, ref.command, atol=atol)
    np.testing.assert_allclose(f.extra["rates_setpoint"]["rates"], ref.angular_velocity, atol=1e-4)
    assert len(f.extra["battery"]["t"]) == len(ref.state_t[::10])


def test_ulog_frames_hand_computed(tmp_path):
    rows = {
        "timestamp": np.array([1_000_000, 1_010_000, 1_020_000]),
        "position": np.array([[1.0, 2.0, 3.0]] * 3),  # NED
        # nose east (yaw 90 deg); nose north rolled right wing down 90 deg; nose east again
        "q": np.array([[S, 0, 0, S], [S, S, 0, 0], [S, 0, 0, S]]),
        "velocity": np.array([[1.0, 0.0, 0.0]] * 3),  # rows 0, 1: NED north; row 2: body forward
        "angular_velocity": np.array([[0.1, 0.2, 0.3]] * 3),  # FRD
        "pose_frame": np.array([1, 1, 1]),
        "velocity_frame": np.array([1, 1, 3]),
    }
    path = write_ulog(tmp_path / "frames.ulg", {"vehicle_odometry": (ODOMETRY, rows)})
    f = load_flight(path)
    assert f.t0_ns == 1_000_000_000 and f.state_t.tolist() == pytest.approx([0.0, 0.01, 0.02])
    np.testing.assert_allclose(f.position, [[2.0, 1.0, -3.0]] * 3, atol=1e-7)  # ENU
    q = f.quaternion * np.sign(f.quaternion[:, :1])
    # nose east = ENU yaw 0; nose north, right wing down: body x -> y, y (left) -> z (up), z -> x: 120 deg about 1,1,1
    np.testing.assert_allclose(q, [[1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(f.velocity, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(f.angular_velocity, [[0.1, -0.2, -0.3]] * 3, atol=1e-7)  # FLU


def test_dataflash_frames_and_pwm_hand_computed(tmp_path):
    msgs = []
    for k, us in enumerate((2_000_000, 2_020_000)):
        msgs.append((us, "ATT", [us, 0.0, 0.0, 0.0, 0.0, 90.0, 90.0, 3]))  # nose east
        msgs.append((us, "XKF1", [us, 0, 0.0, 0.0, 90.0, 1.0, 0.0, 0.0, 0.0, 1.0, 2.0, -3.0, 0, 0, 0, 0]))
        msgs.append((us, "IMU", [us, 0, 0.1, 0.2, 0.3, 0, 0, -9.81, 0, 0, 25.0, 1, 1, 400, 400]))
        msgs.append((us, "RCOU", [us, 1100 + k * 400, 1200, 1300, 1400, *([0] * 10)]))
    f = load_flight(write_bin(tmp_path / "frames.bin", msgs), throttle=ThrottleCurve(max_rpm=20000.0))
    np.testing.assert_allclose(f.position, [[2.0, 1.0, 3.0]] * 2, atol=1e-6)
    np.testing.assert_allclose(f.quaternion * np.sign(f.quaternion[:, :1]), [[1, 0, 0, 0]] * 2, atol=1e-7)
    np.testing.assert_allclose(f.velocity, [[0.0, 1.0, 0.0]] * 2, atol=1e-7)
    np.testing.assert_allclose(f.angular_velocity, [[0.1, -0.2, -0.3]] * 2, atol=1e-6)
    # C1 front-right, C2 back-left, C3 front-left, C4 back-right -> M1 FR, M2 BR, M3 BL, M4 FL; rpm linear (expo 1)
    np.testing.assert_allclose(f.command, [[2000, 8000, 4000, 6000], [10000, 8000, 4000, 6000]], atol=1e-6)


def test_throttle_curve_hand_computed_and_from_profile_and_cli(tmp_path):
    import argparse

    from deploy.replay.throttle import add_throttle_arguments, throttle_from_args

    u = np.array([[0.5, 0.0, 1.0, 0.25]])  # autopilot order
    assert ThrottleCurve(max_rpm=20000.0, expo=0.0).rpm(u)[0] == pytest.approx([20000 * S, 10000, 0, 20000])
    assert ThrottleCurve(max_rpm=20000.0, expo=0.5, idle_rpm=2000.0).rpm(u)[0, 0] == pytest.approx(
        2000 + 18000 * np.sqrt(0.5 * 0.5 + 0.5 * 0.25)
    )
    profile = tmp_path / "robot.yaml"
    profile.write_text("quadrotor: {max_rpm: 30000.0}\nthrottle_curve: {expo: 0.3, motor_order: [0, 1, 2, 3]}\n")
    p = argparse.ArgumentParser()
    add_throttle_arguments(p)
    curve = throttle_from_args(p.parse_args(["--idle-rpm", "1000"]), profile)
    assert (curve.max_rpm, curve.expo, curve.idle_rpm, curve.order) == (30000.0, 0.3, 1000.0, (0, 1, 2, 3))
    with pytest.raises(ValueError, match="permutation"):
        throttle_from_args(p.parse_args(["--motor-order", "0", "0", "1", "2"]))


@pytest.mark.parametrize("name", ["ulg", "bin"])
def test_truncated_log_keeps_the_complete_messages_and_says_where_it_stops(flown, tmp_path, name, caplog):
    import sim2real

    ref, logs = flown
    blob = logs[name].read_bytes()
    cut = tmp_path / f"cut.{name}"
    cut.write_bytes(blob[: int(len(blob) * 0.6) + 5])  # mid-message
    f = load_flight(cut, throttle=CURVE)
    assert any("mid-message" in p and "ends at byte" in p for p in f.problems), f.problems
    assert 0.4 * len(ref.state_t) < len(f.state_t) < 0.7 * len(ref.state_t)
    np.testing.assert_allclose(f.position, ref.position[: len(f.state_t)], atol=1e-6)
    with caplog.at_level(logging.WARNING):
        assert sim2real.main(["replay", str(cut), "--no-resim", "--out", str(tmp_path / "r")]) == 0
    assert "mid-message" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize(("suffix", "expected"), [(".ulg", "PX4 ULog"), (".bin", "ArduPilot DataFlash")])
def test_a_file_of_another_kind_is_refused_in_one_line(tmp_path, caplog, suffix, expected):
    import sim2real

    path = tmp_path / f"notes{suffix}"
    path.write_text("this is not a flight log\n")
    with caplog.at_level(logging.ERROR):
        assert sim2real.main(["sysid", str(path), "--out", str(tmp_path / "o")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and f"not a {expected}" in errors[0] and "expected it to start with" in errors[0]
    assert "\n" not in errors[0]


@pytest.mark.parametrize("name", ["ulg", "bin"])
def test_sysid_on_an_autopilot_log_finds_the_mass(flown, tmp_path, name):
    import sim2real

    _, logs = flown
    out = tmp_path / "out"
    args = ["sysid", str(logs[name]), "--out", str(out), "--max-latency", "1", "--throttle-expo", "0.65"]
    assert sim2real.main(args) == 0
    summary = json.loads((out / "sysid.json").read_text())
    assert summary["estimates"]["mass"]["value"] == pytest.approx(TRUTH.mass, rel=0.02)
    assert summary["usable_s"] > 7.0
    assert all((out / f).is_file() for f in ("randomization.yaml", "profile.yaml", "report.md"))


def test_replay_of_an_autopilot_log_skips_the_policy_replay_and_resimulates(flown, tmp_path, caplog, capsys):
    import sim2real

    from .conftest import POLICY

    _, logs = flown
    args = ["replay", str(logs["ulg"]), "--policy", str(POLICY), "--out", str(tmp_path / "r"), "--json"]
    args += ["--throttle-expo", "0.65"]
    with caplog.at_level(logging.WARNING):
        assert sim2real.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "policy_replay" not in summary and summary["resimulation"] is not None
    assert "no policy observations or actions" in caplog.text and "skipping the open-loop policy replay" in caplog.text
    assert (tmp_path / "r" / "report.md").is_file()


def test_older_px4_odometry_and_the_local_position_fallback_read_the_same(tmp_path):
    t = np.array([1_000_000, 1_010_000])
    old = [("uint64_t", "timestamp"), ("float", "x"), ("float", "y"), ("float", "z"), ("float[4]", "q"),
           ("float", "vx"), ("float", "vy"), ("float", "vz"), ("float", "rollspeed"), ("float", "pitchspeed"),
           ("float", "yawspeed"), ("uint8_t", "local_frame"), ("uint8_t", "velocity_frame")]  # fmt: skip
    rows = {"timestamp": t, "x": [1.0, 1.0], "y": [2.0, 2.0], "z": [3.0, 3.0], "q": [[S, 0, 0, S]] * 2,
            "vx": [1.0, 1.0], "vy": [0.0, 0.0], "vz": [0.0, 0.0], "rollspeed": [0.1, 0.1], "pitchspeed": [0.2, 0.2],
            "yawspeed": [0.3, 0.3], "local_frame": [0, 0], "velocity_frame": [0, 3]}  # fmt: skip
    f_old = load_flight(write_ulog(tmp_path / "old.ulg", {"vehicle_odometry": (old, rows)}))
    lp = [("uint64_t", "timestamp")] + [("float", n) for n in ("x", "y", "z", "vx", "vy", "vz")]
    att = [("uint64_t", "timestamp"), ("float[4]", "q")]
    av = [("uint64_t", "timestamp"), ("float[3]", "xyz")]
    topics = {
        "vehicle_local_position": (lp, {"timestamp": t, "x": [1.0] * 2, "y": [2.0] * 2, "z": [3.0] * 2,
                                        "vx": [1.0] * 2, "vy": [0.0] * 2, "vz": [0.0] * 2}),
        "vehicle_attitude": (att, {"timestamp": t, "q": [[S, 0, 0, S]] * 2}),
        "vehicle_angular_velocity": (av, {"timestamp": t, "xyz": [[0.1, 0.2, 0.3]] * 2}),
    }  # fmt: skip
    f_lp = load_flight(write_ulog(tmp_path / "lp.ulg", topics))
    for f in (f_old, f_lp):
        np.testing.assert_allclose(f.position, [[2.0, 1.0, -3.0]] * 2, atol=1e-6)
        np.testing.assert_allclose(np.abs(f.quaternion[:, 0]), 1.0, atol=1e-6)  # nose east = ENU yaw 0
        np.testing.assert_allclose(f.angular_velocity, [[0.1, -0.2, -0.3]] * 2, atol=1e-6)
    np.testing.assert_allclose(f_old.velocity, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], atol=1e-6)  # NED north; body fwd
    np.testing.assert_allclose(f_lp.velocity, [[0.0, 1.0, 0.0]] * 2, atol=1e-6)
    assert f_lp.topics["pose"] == "vehicle_local_position + vehicle_attitude"


def test_a_hover_log_says_what_it_cannot_identify(tmp_path, caplog):
    import sim2real

    fly(tmp_path / "hover.mcap", SyntheticFlight(seconds=4.0, excitation=0.0, setpoint_m=0.0, setpoint_s=0, seed=3))
    log = write_flight_ulog(tmp_path / "hover.ulg", load_flight(tmp_path / "hover.mcap"), ThrottleCurve())
    with caplog.at_level(logging.WARNING):
        assert sim2real.main(["sysid", str(log), "--out", str(tmp_path / "o"), "--max-latency", "1"]) == 0
    summary = json.loads((tmp_path / "o" / "sysid.json").read_text())
    assert {"drag_x", "drag_y", "inertia_z"} <= set(summary["not_identified"])
    assert "not identified by this log" in caplog.text and "drag_x" in caplog.text
    assert summary["estimates"]["mass"]["value"] == pytest.approx(TRUTH.mass / 1.12, rel=0.02)  # nominal mass
