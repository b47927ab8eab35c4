"""`sim2real deploy --profile launch/sim_a1.yaml --policy P.onnx --sil` end to end: the CLI starts the simulated A1,
runs the plan with an exported (briefly trained) policy, records, and prints the JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import sim2real
from deploy.recording import read_log
from deploy.transport import LOOPBACK_CONFIG
from tests.domains import random_domain

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def test_sim2real_deploy_runs_the_a1_in_sil_and_prints_a_summary(articulated_policies, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random_domain()))
    monkeypatch.setenv("CYCLONEDDS_URI", LOOPBACK_CONFIG)
    data = yaml.safe_load((LAUNCH / "sim_a1.yaml").read_text())
    data["robot"] = str(LAUNCH / "robots" / "a1.yaml")
    data["plan"] = {"stand_s": 1.0, "hold_s": 0.5, "walk_s": 1.0, "velocity_command": [0.5, 0.0, 0.0], "stop_s": 0.5}
    data["recording"] = {"directory": str(tmp_path)}
    data["safety"] = {"common": {"max_state_age_s": 1.0}}  # the simulator shares two busy cores with this test
    data.pop("realtime_priority")
    profile = tmp_path / "sim_a1.yaml"
    profile.write_text(yaml.safe_dump(data))
    policy = articulated_policies["legged-walk"]["trained"]
    log = tmp_path / "run.mcap"
    code = sim2real.main(["deploy", "--profile", str(profile), "--policy", str(policy), "--sil", "--log", str(log)])
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    assert summary["log"] == str(log)
    transitions = summary["transitions"]
    assert "DISARMED -> ARMING" in transitions[0] and "ARMING -> ACTIVE" in transitions[1], transitions
    fell = any("-> FALLBACK" in t or "-> ESTOP" in t for t in transitions)
    assert code == (1 if fell else 0), transitions
    if not fell:
        assert "plan complete" in transitions[-1]
    assert set(summary["tracking"]) >= {"joint_tracking_rms_rad", "walk_velocity_error_m_s"}
    assert summary["tracking"]["walk_velocity_error_m_s"] is None or summary["tracking"]["walk_velocity_error_m_s"] >= 0
    assert summary["loop"]["cycles"] > 50 and summary["loop"]["rate_hz"] == 50.0
    contents = read_log(log)
    assert contents.complete and contents.metadata["sim2real"]["robot_class"] == "legged"
    armed_at = contents.topic("/sim2real/safety/transition")[0].log_time_ns  # no command before the arming
    assert len(contents.topic("/sim2real/command/joints")) >= summary["loop"]["cycles"] - 10
    assert all(m.log_time_ns >= armed_at for m in contents.topic("/sim2real/command/joints"))
    assert len(contents.topic("/sim2real/policy/observation")) > 0
    # `sim2real replay` reads the log and the policy reproduces the logged actions from the logged observations
    out_dir = tmp_path / "replay"
    args = ["replay", str(log), "--policy", str(policy), "--no-resim", "--json", "--out", str(out_dir)]
    assert sim2real.main(args) == 0
    replay = json.loads((out_dir / "replay.json").read_text())
    assert replay["policy_replay"]["verdict"] == "match", replay["policy_replay"]
    assert len(replay["transitions"]) == len(transitions)
