"""`sim2real deploy` checks every profile field before it starts a process or opens a file: bad values exit 2
with one line saying what was expected, and nothing is left behind. The children it starts (SIL robot, scripted
operator) get the profile's domain, namespace and vehicle id."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

import sim2real
from deploy import cli
from deploy.profile import load_deploy_profile

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "data" / "hover_policy.onnx"


def profile_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((ROOT / "launch" / "sim_quadrotor.yaml").read_text())
    data["robot"] = str(ROOT / "launch" / "robots" / "crazyflie2.yaml")
    data["recording"] = {"directory": str(tmp_path / "logs")}
    for key, value in changes.items():
        data[key] = value if not isinstance(value, dict) else {**(data.get(key) or {}), **value}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "extra", "message"),
    [
        ({}, ["--hover-s", "-100"], "plan.hover_s: expected seconds >= 0, got -100"),
        ({"plan": {"height_m": -1.0}}, [], "plan.height_m: expected a positive finite number"),
        ({"plan": {"climb_rate_m_s": 0.0}}, [], "plan.climb_rate_m_s: expected a positive finite number"),
        ({"plan": {"height_m": 5.0}}, [], "above the altitude ceiling 2.00 m"),
        ({"realtime_priority": 150}, [], "realtime_priority: expected an integer SCHED_FIFO priority 1..99"),
        ({"transport": {"domain_id": 999}}, [], "domain_id argument must be an integer in 0..232"),
        ({"vehicle_id": ""}, [], "vehicle_id: expected a non-empty name"),
        ({"control_hz": 0}, [], "control_hz must be a number of Hz in (0, 10000]"),
        ({}, ["--operator", "scripted"], "--operator scripted is for --sil only"),
        ({}, ["--arm-timeout-s", "0"], "--arm-timeout-s: expected seconds > 0"),
    ],
)
def test_bad_profile_values_exit_2_before_anything_starts(tmp_path, caplog, monkeypatch, changes, extra, message):
    started = []
    monkeypatch.setattr(cli.subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("started"))
    log = tmp_path / "run.mcap"
    argv = ["deploy", "--profile", str(profile_file(tmp_path, **changes)), "--policy", str(POLICY), "--log", str(log)]
    with caplog.at_level(logging.ERROR):
        code = sim2real.main([*argv, *extra])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0], errors
    assert not log.exists() and not (tmp_path / "logs").exists() and not started


def test_children_get_the_profiles_domain_namespace_and_vehicle_id(tmp_path, monkeypatch):
    path = profile_file(tmp_path, transport={"domain_id": 42, "namespace": "/cf7"}, vehicle_id="cf7-lab")
    profile = load_deploy_profile(path)
    seen = {}

    class Popen:
        def __init__(self, cmd, env, cwd, preexec_fn):
            seen.update(cmd=cmd, env=env, preexec=preexec_fn)

    monkeypatch.setattr(cli.subprocess, "Popen", Popen)
    cli.spawn(cli.sil_command(profile), profile)
    cmd = seen["cmd"]
    assert seen["env"]["ROS_DOMAIN_ID"] == "42" and seen["preexec"] is cli._die_with_parent
    assert cmd[cmd.index("--namespace") + 1] == "/cf7" and cmd[cmd.index("--vehicle-id") + 1] == "cf7-lab"
    assert profile.vehicle_id == "cf7-lab"
    assert load_deploy_profile(profile_file(tmp_path, transport={"namespace": "/cf9"})).vehicle_id == "cf9"
