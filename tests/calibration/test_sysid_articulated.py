"""Arm system identification: hidden parameters of a simulated Franka recovered from its MCAP log.

The log is written by the real FlightRecorder (joint states with sensor noise, joint targets, 1 control step of
latency, random target steps plus sines under the profile's PD actuators) and read back through the log reader.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from calibration.sysid.articulated import ArmParams, ArmSimulator, read_joint_log
from calibration.sysid.cli import add_arguments, identify
from calibration.sysid.synthetic_arm import SyntheticArmRun, record_arm_run
from deploy.replay.errors import ReplayError
from sim.articulated.profile import load_profile
from sim.randomization import RandomizationSpec

HIDDEN = ArmParams(torque_scale=0.85, joint_damping=3.0, joint_friction=0.8, joint_armature=0.15)
TOLERANCE = {"torque_scale": 0.05, "joint_damping": 0.15, "joint_friction": 0.25, "joint_armature": 0.15}


@pytest.fixture(scope="module")
def sim() -> ArmSimulator:
    return ArmSimulator(load_profile("franka"), nthread=2)


@pytest.fixture(scope="module")
def arm_log(tmp_path_factory, sim):
    path = tmp_path_factory.mktemp("arm") / "franka.mcap"
    truth = record_arm_run(path, sim, SyntheticArmRun(seconds=8.0, params=HIDDEN, latency=1, step_rad=0.25, seed=3))
    return path, truth


@pytest.fixture(scope="module")
def summary(arm_log, tmp_path_factory):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path_factory.mktemp("sysid")
    # no --robot: the log's metadata names it
    args = parser.parse_args([str(arm_log[0]), "--max-latency", "2", "--segments", "12", "--horizon", "20",
                              "--out", str(out)])  # fmt: skip
    return identify(args), out


def test_log_reads_back_joint_states_and_targets(arm_log, sim):
    data = read_joint_log(arm_log[0], sim.profile.joints.names)
    assert data.q.shape == data.qd.shape == data.target.shape == (400, 7)
    assert data.control_dt == pytest.approx(0.02, rel=1e-6)
    assert np.all(np.abs(data.target - np.asarray(sim.profile.joints.default_position_rad)) < 0.25 + 0.08 + 1e-9)


def test_recovers_hidden_parameters(summary, arm_log):
    s, _ = summary
    est, truth = s["estimates"], arm_log[1]
    assert est["action_latency"]["value"] == 1.0
    for name, tol in TOLERANCE.items():
        value, std = est[name]["value"], est[name]["std"]
        assert value == pytest.approx(truth[name], rel=tol), name
        assert 0 < std < 0.1 * value, name
    assert s["not_identified"] == []
    costs = {int(k): v for k, v in s["latency_cost"].items()}
    assert costs[1] < min(costs[0], costs[2]) - 100  # the latency is decided, not a coin toss


def test_fitted_parameters_resimulate_better(summary):
    gap = summary[0]["resimulation_rms"]
    assert gap["fitted"]["position_rad"] < 0.1 * gap["nominal"]["position_rad"]
    assert gap["fitted"]["velocity_rad_s"] < 0.1 * gap["nominal"]["velocity_rad_s"]
    assert gap["fitted"]["velocity_rad_s"] < 2 * 5e-3  # near the logged velocity noise (5 mrad/s)


def test_randomization_spec_is_centred_on_the_fit(summary, arm_log):
    s, out = summary
    spec = RandomizationSpec.from_yaml(out / "randomization.yaml")
    truth = arm_log[1]
    for spec_name, name in (("motor_strength", "torque_scale"), ("kp_factor", "torque_scale"),
                            ("joint_damping", "joint_damping"), ("joint_armature", "joint_armature")):  # fmt: skip
        d = spec.get(spec_name)
        assert d.operation == "absolute"
        assert d.low < s["estimates"][name]["value"] < d.high
        assert d.low < truth[name] * 1.02 and truth[name] * 0.98 < d.high, spec_name
    lat = spec.get("action_latency")
    assert (lat.low, lat.high) == (10, 10)  # 1 control step = 10 physics steps at 500 / 50 Hz
    assert spec.get("link_mass") is not None  # the arm defaults the log cannot identify stay


def test_spec_trains_arm_reach(summary):
    from sim.articulated.tasks.arm_reach import ArmReachCfg, ArmReachEnv

    spec = RandomizationSpec.from_yaml(summary[1] / "randomization.yaml")
    env = ArmReachEnv(ArmReachCfg(randomization=spec), 2, "cpu")
    env.reset()
    damping = env.engine.get_params("dof_damping")[:, :7]
    d = spec.get("joint_damping")
    assert bool(((damping >= d.low) & (damping <= d.high)).all())
    assert env.actuators.targets.delay.tolist() == [10, 10]


def test_log_without_commands_is_refused(tmp_path, sim):
    from deploy.msgs import JointState, make_header
    from deploy.recording import FlightRecorder

    path = tmp_path / "states_only.mcap"
    rec = FlightRecorder(path)
    for k in range(20):
        stamp = 10**12 + k * 20_000_000
        rec.write_state(JointState(make_header(stamp), list(sim.profile.joints.names), [0.0] * 7, [0.0] * 7, []), stamp)
    rec.close()
    with pytest.raises(ReplayError, match="joint commands"):
        read_joint_log(path, sim.profile.joints.names)
