"""`sim2real demo` end to end (small): report, plots, metrics and a flight log two independent readers decode."""

from __future__ import annotations

import json

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader

import sim2real


def test_demo_writes_report_metrics_and_a_readable_flight_log(tmp_path):
    out = tmp_path / "demo"
    assert (
        sim2real.main(
            [
                "demo",
                "--out",
                str(out),
                "--num-envs",
                "48",
                "--seconds",
                "10",
                "--sil-policy",
                "none",
                "--train-seconds",
                "0",
            ]
        )
        == 0
    )
    for name in ("report.md", "errors.png", "trajectories.png", "run.json", "randomization.yaml", "flight.mcap"):
        assert (out / name).is_file(), name
    both = json.loads((out / "metrics.json").read_text())
    metrics = both["PID (ideal vehicle)"]
    assert metrics["envs"] == both["PID"]["envs"] == 48
    assert metrics["crash_rate"] <= 0.1
    assert metrics["position_rmse_median_m"] < 0.05  # the baseline from random, tilted starts
    # on the default's imperfect vehicles (same seed) the 100 Hz PID cannot hold what it holds on the ideal ones
    assert both["PID"]["crash_rate"] > metrics["crash_rate"] + 0.1
    assert "success_rate" in (out / "report.md").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == "quadrotor-hover" and run["git_commit"]

    # mcap-ros2-support reads the CDR messages back
    z = []
    with open(out / "flight.mcap", "rb") as f:
        for _, channel, _, msg in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            if channel.topic.endswith("state/pose"):
                z.append(msg.pose.position.z)
    assert len(z) == 1000
    assert abs(z[-1] - 1.0) < 0.2  # hovering near the 1 m reference at the end

    # rosbags reads the same file independently
    with AnyReader([out / "flight.mcap"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/sim2real/state/pose"] == 1000
    assert counts["/sim2real/command/motors"] == 1000
    assert counts["/sim2real/policy/observation"] == 1000


def test_demo_trains_exports_and_evaluates_the_policy_beside_the_baseline(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--num-envs", "16", "--seconds", "2", "--sil-policy", "none"]
    assert sim2real.main([*argv, "--train-seconds", "2"]) == 0
    assert (out / "train" / "policy.onnx").is_file() and (out / "train" / "policy.h").is_file()
    assert list((out / "train").glob("model_*.pt"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"policy (ONNX)", "PID", "PID (ideal vehicle)"}
    assert metrics["policy (ONNX)"]["envs"] == metrics["PID"]["envs"] == 16
    assert (out / "policy_errors.png").is_file()
    assert "policy (ONNX)" in (out / "report.md").read_text()


def test_a_second_demo_replaces_its_own_sil_flight_log_and_nothing_else(tmp_path):
    """The deploy runtime refuses an existing log, so a second `make demo` in the same checkout once lost its SIL
    flight ("log file ... already exists"); the demo now replaces its own SIL log and layout, and only those."""
    from policies.demo import _clear_previous_sil_log

    log_path = tmp_path / "sil_flight.mcap"
    log_path.write_bytes(b"an earlier demo's flight")
    layout = tmp_path / "sil_flight.foxglove-layout.json"
    layout.write_text("{}")
    other = tmp_path / "flight.mcap"
    other.write_bytes(b"kept")
    _clear_previous_sil_log(log_path)
    assert not log_path.exists() and not layout.exists()
    assert other.read_bytes() == b"kept"
    _clear_previous_sil_log(log_path)  # nothing there: nothing to do
