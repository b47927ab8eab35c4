"""Deploy profiles load, and a policy that does not fit the robot is refused before arming."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deploy.profile import DeployProfileError, check_policy, load_deploy_profile
from sim.obs_spec import ObsSpec, ObsTerm
from sim.quadrotor.actions import action_spec
from sim.quadrotor.config import QuadrotorTaskCfg

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


class FakePolicy:
    def __init__(self, interface="rpm", control_hz=100.0, obs_spec=None):
        cfg = QuadrotorTaskCfg()
        self.obs_spec = obs_spec or cfg.policy_obs_spec()
        self.action_spec = action_spec(interface, cfg.params)
        self.control_hz = control_hz


def test_the_sil_profile_loads():
    p = load_deploy_profile(LAUNCH / "sim_quadrotor.yaml")
    assert p.control_hz == 100 and p.action_names == ("m1", "m2", "m3", "m4")
    assert p.safety.common.control_period_s == pytest.approx(0.01)
    assert p.plan.hover_s == 10.0
    check_policy(p, FakePolicy(), policy_robot_hash=p.robot_hash)


@pytest.mark.parametrize(
    "policy, message",
    [
        (FakePolicy(interface="ctbr"), "action interface: expected 'rpm', found 'ctbr'"),
        (FakePolicy(control_hz=50.0), r"control rate \(Hz\): expected 100.0, found 50.0"),
        (
            FakePolicy(obs_spec=ObsSpec((ObsTerm("position_error", 3), ObsTerm("rotor_speed", 4)))),
            r"needs terms \['rotor_speed'\]",
        ),
    ],
)
def test_mismatched_policies_are_refused_with_the_field_named(policy, message):
    with pytest.raises(ValueError, match=message):
        check_policy(load_deploy_profile(LAUNCH / "sim_quadrotor.yaml"), policy)


def test_other_robot_and_motor_order_are_refused():
    p = load_deploy_profile(LAUNCH / "sim_quadrotor.yaml")
    with pytest.raises(DeployProfileError, match="robot profile hash"):
        check_policy(p, FakePolicy(), policy_robot_hash="0123456789abcdef")
    with pytest.raises(DeployProfileError, match="action order"):
        check_policy(replace(p, action_names=("m4", "m3", "m2", "m1")), FakePolicy())


def test_bad_profiles_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "control_hz: 100\nrobot: robots/none.yaml\naction: {interface: rpm, names: [m1, m2, m3, m4]}\nwheels: 4\n"
    )
    with pytest.raises(DeployProfileError, match=r"unknown keys \['wheels'\]"):
        load_deploy_profile(bad)
    bad.write_text("control_hz: -5\nrobot: {}\naction: {interface: rpm, names: [m1]}\n")
    with pytest.raises(DeployProfileError, match=r"control_hz must be a number of Hz in \(0, 10000\], found -5"):
        load_deploy_profile(bad)
    with pytest.raises(DeployProfileError, match="does not exist"):
        load_deploy_profile(tmp_path / "nope.yaml")
