"""The ros2_control bridge's conversions and refusals (drivers/ros2_control_convert.py), without DDS: JointCommand ->
Float64MultiArray / JointTrajectory in the controller's joint order, /joint_states -> the controller's joints,
and the bad inputs that must never become a command or a state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploy.articulated_wire import joint_command_msg
from deploy.msgs import JointState, make_header, message_info
from deploy.msgs.control import Float64MultiArray, JointTrajectory
from drivers.ros2_control_convert import (
    BridgeConfigError,
    CommandConverter,
    CommandRefused,
    ControllerConfig,
    StateFilter,
    StateRefused,
    controller_config,
    holds,
    load_bridge_config,
)

JOINTS = ("j1", "j2", "j3")


def cmd(names, q, kp=None):
    n = len(names)
    kp = np.ones(n) if kp is None else np.asarray(kp)
    return joint_command_msg(list(names), np.asarray(q, float), kp, np.ones(n), "policy", 0)


def test_forward_command_in_the_controllers_joint_order():
    config = ControllerConfig("arm_controller", "forward_command", JOINTS)
    conv = CommandConverter(config)
    q = conv.positions(cmd(["j3", "j1", "j2"], [3.0, 1.0, 2.0]))
    msg = conv.message(q)
    assert isinstance(msg, Float64MultiArray) and msg.data == [1.0, 2.0, 3.0]
    assert [(d.label, d.size, d.stride) for d in msg.layout.dim] == [("joints", 3, 3)] and msg.layout.data_offset == 0
    assert config.command_topic == "/arm_controller/commands"
    assert message_info(msg).ros_type == "std_msgs/msg/Float64MultiArray"


def test_joint_trajectory_with_one_point_at_the_horizon():
    config = ControllerConfig("jtc", "joint_trajectory", JOINTS, horizon_s=1.25, namespace="/arm")
    conv = CommandConverter(config)
    msg = conv.message(conv.positions(cmd(["j2", "j3", "j1"], [2.0, 3.0, 1.0])))
    assert isinstance(msg, JointTrajectory) and list(msg.joint_names) == list(JOINTS)
    assert msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0  # start at once
    (point,) = msg.points
    assert point.positions == [1.0, 2.0, 3.0] and not point.velocities and not point.effort
    assert (point.time_from_start.sec, point.time_from_start.nanosec) == (1, 250_000_000)
    assert config.command_topic == "/arm/jtc/joint_trajectory" and config.state_topic == "/arm/joint_states"
    assert message_info(msg).ros_type == "trajectory_msgs/msg/JointTrajectory"


@pytest.mark.parametrize(
    ("names", "q", "words"),
    [
        (["j1", "j2", "j3", "gripper"], [0.0] * 4, "unknown: ['gripper']"),
        (["j1", "j2"], [0.0] * 2, "missing: ['j3']"),
        (["j1", "j2", "j3"], [0.0, math.nan, 0.0], "['j2'] are not finite"),
        (["j1", "j2", "j3"], [0.0, 0.0, math.inf], "['j3'] are not finite"),
        (["j1", "j1", "j3"], [0.0] * 3, "missing: ['j2']"),
    ],
)
def test_bad_commands_are_refused_with_what_was_wrong(names, q, words):
    conv = CommandConverter(ControllerConfig("c", "forward_command", JOINTS))
    with pytest.raises(CommandRefused) as err:
        conv.positions(cmd(names, q))
    assert words in str(err.value)


def test_stop_and_damping_commands_hold():
    assert holds(cmd(JOINTS, [0.0] * 3, kp=np.zeros(3)))
    assert not holds(cmd(JOINTS, [0.0] * 3, kp=[0.0, 1.0, 0.0]))


def state(names, q, qd=None, effort=()):
    qd = [0.0] * len(names) if qd is None else qd
    return JointState(make_header(123, "base"), list(names), list(q), list(qd), list(effort))


def test_joint_states_select_the_controller_joints_in_order():
    f = StateFilter(JOINTS)
    q, qd, tau = f.select(state(["finger", "j3", "j2", "j1"], [9.0, 3.0, 2.0, 1.0], [0.9, 0.3, 0.2, 0.1]))
    np.testing.assert_array_equal(q, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(qd, [0.1, 0.2, 0.3])
    assert tau is None


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        (state(["j1", "j2"], [0.0, 0.0]), "lacks the controller joints ['j3']"),
        (state(JOINTS, [0.0, math.nan, 0.0]), "not finite"),
        (state(JOINTS, [0.0] * 3, [0.0, 0.0, math.inf]), "not finite"),
        (state(JOINTS, [0.0] * 3, []), "expected a position and a velocity per name"),
        (state(JOINTS, [0.0] * 2), "2 positions"),
    ],
)
def test_bad_joint_states_are_refused(msg, words):
    with pytest.raises(StateRefused) as err:
        StateFilter(JOINTS).select(msg)
    assert words in str(err.value)


def test_config_errors_and_the_launch_files():
    with pytest.raises(BridgeConfigError, match="kind"):
        controller_config({"controller": "c", "kind": "velocity", "joints": ["a"]})
    with pytest.raises(BridgeConfigError, match="unknown keys"):
        controller_config({"controller": "c", "kind": "forward_command", "joints": ["a"], "gains": 1})
    with pytest.raises(BridgeConfigError, match="horizon_s"):
        controller_config({"controller": "c", "kind": "joint_trajectory", "joints": ["a"], "horizon_s": 0})
    with pytest.raises(BridgeConfigError, match="distinct"):
        controller_config({"controller": "c", "kind": "forward_command", "joints": ["a", "a"]})
    forward, rest = load_bridge_config("launch/ros2_control_franka_bridge.yaml")
    trajectory, _ = load_bridge_config("launch/ros2_control_franka_trajectory_bridge.yaml")
    assert forward.kind == "forward_command" and trajectory.kind == "joint_trajectory"
    assert forward.joints == trajectory.joints == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert rest["robot"] == "franka"
