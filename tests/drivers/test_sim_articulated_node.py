"""The simulated articulated robot on the wire (drivers/sim_articulated_node.py), driven step by step in this
process over real DDS (loopback): what it publishes, how it takes commands, gains, silence and stop commands."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from deploy.articulated_wire import joint_command_msg
from deploy.msgs import Imu, JointCommand, JointState, PoseStamped, String, time_to_ns
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig, resolve_topic_name
from drivers.sim_articulated import SimulatedArticulatedRobot
from drivers.sim_articulated_node import INJECT_TOPIC, ArticulatedNode
from sim.randomization import RandomizationSpec
from tests.domains import random_domain


class Bench:
    """The node under test and a client on the same DDS participant."""

    def __init__(self, node: Ros2Node, task: str, **kwargs):
        transport = TransportConfig.from_mapping(None)
        robot = SimulatedArticulatedRobot(task, seed=1, randomization=RandomizationSpec({}))
        self.sim = ArticulatedNode(node, transport, robot, command_timeout_s=0.2, **kwargs)
        self.names = robot.profile.joints.names
        t = transport.topic
        self.joints = node.subscription(t("joint_states").name, JointState, t("joint_states").qos)
        self.imu = node.subscription(t("imu").name, Imu, t("imu").qos)
        self.pose = node.subscription(t("pose").name, PoseStamped, t("pose").qos)
        self.cmd = node.publisher(t("joint_command").name, JointCommand, t("joint_command").qos)
        self.inject = node.publisher(resolve_topic_name(INJECT_TOPIC, transport.namespace), String)
        assert self.cmd.wait_for_subscribers(1, 10.0) and self.joints.wait_for_publishers(1, 10.0)
        assert self.inject.wait_for_subscribers(1, 10.0)

    def command(self, q, kp, kd) -> None:
        msg = joint_command_msg(self.names, q, kp, kd, "policy", time.monotonic_ns())
        msg.vehicle_id = "sim2real"  # the node's default id: its namespace's
        self.cmd.publish(msg)

    def steps(self, n: int, now_offset_s: float = 0.0, command=None) -> JointState:
        for _ in range(n):
            if command is not None:
                self.command(*command)
                time.sleep(0.002)  # the DDS callback stores it
            self.sim.step(time.monotonic() + now_offset_s)
        assert self.joints.wait(2.0)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # the newest state, the one of the last step
            msg = self.joints.latest()
            if np.allclose(msg.position, self.sim.robot.read_state().joint_position):
                return msg
            time.sleep(0.005)
        raise AssertionError("the last state was not received")


@pytest.fixture
def node():
    with Ros2Node("sim_test", domain_id=random_domain(), config=LOOPBACK_CONFIG) as n:
        yield n


def test_legged_node_publishes_takes_commands_falls_back_when_they_stop_and_goes_limp_on_stop(node):
    lying = np.tile([0.0, 1.2, -2.65], 4)  # launch/sim_a1.yaml's start pose
    b = Bench(node, "legged-walk", start_pose=lying, start_height_m=0.1)
    n = len(b.names)
    msg = b.steps(2)
    assert list(msg.name) == list(b.names) and len(msg.position) == len(msg.velocity) == len(msg.effort) == n
    assert 0 <= time.time_ns() - time_to_ns(msg.header.stamp) < 0.5e9  # stamped in ROS time (the system clock)
    assert b.sim.mode == "off" and not any(msg.effort)  # disarmed: zero torque
    assert b.imu.wait(2.0) and b.pose.wait(2.0)
    assert b.imu.latest().linear_acceleration_covariance[0] == -1.0  # REP 145: not provided

    default = np.array(b.sim.profile.joints.default_position_rad)
    error_before = np.abs(np.array(b.steps(1).position) - default).max()
    assert error_before > 1.0  # the calves, folded
    msg = b.steps(25, command=(default, np.full(n, 20.0), np.full(n, 0.5)))
    assert b.sim.mode == "command" and any(msg.effort)
    assert np.abs(np.array(msg.position) - default).max() < 0.7 * error_before  # standing up

    msg = b.steps(5, now_offset_s=1.0)  # no command for longer than the timeout: the robot's own damping
    assert b.sim.mode == "fallback"
    kd = b.sim.profile.safety.damping_kd_nm_s_per_rad
    np.testing.assert_allclose(msg.effort, -kd * np.array(msg.velocity), atol=1e-9)

    partial = joint_command_msg(b.names[:-1], default[:-1], np.full(n - 1, 20.0), np.zeros(n - 1), "policy", 0)
    partial.vehicle_id = "sim2real"
    b.cmd.publish(partial)
    time.sleep(0.05)
    b.steps(1)
    assert b.sim.mode == "fallback"  # a command without all joints is ignored

    msg = b.steps(3, command=(default, np.zeros(n), np.zeros(n)))  # all gains zero: limp
    assert b.sim.mode == "off" and not any(msg.effort)

    b.inject.publish(String("tip_over"))
    time.sleep(0.1)
    b.steps(1)

    def tilt_deg() -> float:
        q = b.imu.latest().orientation
        return math.degrees(math.acos(1.0 - 2.0 * (q.x * q.x + q.y * q.y)))

    deadline = time.monotonic() + 2.0
    while tilt_deg() < 75.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tilt_deg() > 75.0


def test_arm_node_holds_on_its_brakes_before_commands_and_reports_the_end_effector(node):
    b = Bench(node, "arm-reach")
    start = b.sim.robot.read_state().joint_position
    msg = b.steps(40)
    assert b.sim.mode == "off"
    assert np.abs(np.array(msg.position) - start).max() < 0.05  # braked (PD hold): sags a little, does not fall
    assert b.pose.wait(2.0)
    pose = b.pose.latest()
    ee = b.sim.robot.env.ee_pos[0].numpy()
    assert pose.header.frame_id == "panda_link0"
    np.testing.assert_allclose([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z], ee, atol=1e-6)
