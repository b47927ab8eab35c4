"""A quadrotor profile's SIL vehicle can be drawn from another randomization spec (e.g. the ideal vehicle's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy import cli
from deploy.profile import DeployProfileError, load_deploy_profile
from deploy.transport import LOOPBACK_CONFIG
from sim.quadrotor.config import base_randomization
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "launch" / "randomization" / "crazyflie2_base.yaml"


def profile_with_sil(tmp_path: Path, randomization: str) -> Path:
    data = yaml.safe_load((ROOT / "launch" / "sim_quadrotor.yaml").read_text())
    data["robot"] = str((ROOT / "launch" / data["robot"]).resolve())
    data["sil"] = {**(data.get("sil") or {}), "randomization": randomization}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_sil_randomization_is_resolved_against_the_profile_and_passed_to_the_simulated_robot(tmp_path):
    base_randomization().to_yaml(tmp_path / "vehicle.yaml")
    profile = load_deploy_profile(profile_with_sil(tmp_path, "vehicle.yaml"))
    assert profile.sil["randomization"] == str((tmp_path / "vehicle.yaml").resolve())
    cmd = cli.sil_command(profile)
    assert cmd[cmd.index("-m") + 1] == "drivers.sim_robot"
    assert cmd[cmd.index("--randomization") + 1] == str((tmp_path / "vehicle.yaml").resolve())
    assert "--randomization" not in cli.sil_command(profile, "rotorpy")  # a foreign vehicle is its own


def test_a_missing_sil_randomization_is_refused_with_where_it_looked(tmp_path):
    with pytest.raises(DeployProfileError, match=r"sil.randomization 'nope.yaml' is not a file \(looked for .*nope"):
        load_deploy_profile(profile_with_sil(tmp_path, "nope.yaml"))


def test_the_simulated_robot_draws_its_vehicle_from_the_given_spec():
    env = dict(os.environ, ROS_DOMAIN_ID=str(random_domain()), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    cmd = [sys.executable, "-m", "drivers.sim_robot", "--seconds", "0.5", "--randomization", str(SPEC)]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "vehicle drawn from 'crazyflie2-base'" in run.stderr
    default = subprocess.run(cmd[:-2], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "vehicle drawn from 'crazyflie2-default'" in default.stderr
