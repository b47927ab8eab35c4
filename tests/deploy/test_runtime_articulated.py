"""The articulated deploy runtime refuses what does not fit before arming: joint messages without the profile's
joints, policies for another robot; its plans and profiles read as documented. No simulator process here."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from deploy.articulated_wire import (
    JointOrder,
    JointStateError,
    imu_msg,
    joint_command_msg,
    joint_state_msg,
    twist_msg,
)
from deploy.msgs import Imu, JointCommand, JointState, TwistStamped
from deploy.profile import DeployProfileError, check_policy, load_deploy_profile
from deploy.runtime.articulated import ArmPlan, ArmTarget, LeggedPlan
from deploy.safety import SafetyLayer
from deploy.transport import LOOPBACK_CONFIG, Ros2Node
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec, ObsTerm
from tests.deploy.runtimes import articulated_runtime
from tests.domains import random_domain

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
A1 = load_deploy_profile(LAUNCH / "sim_a1.yaml")


class FakePolicy:
    """A policy for ``names`` with the legged-walk observation layout for ``obs_joints`` joints."""

    control_hz = 50.0

    def __init__(self, names, obs_joints=None, extra_term=None):
        j = len(names) if obs_joints is None else obs_joints
        terms = [ObsTerm("base_ang_vel", 3), ObsTerm("projected_gravity", 3), ObsTerm("velocity_command", 3)]
        terms += [ObsTerm("joint_pos", j), ObsTerm("joint_vel", j), ObsTerm("last_action", j)]
        if extra_term:
            terms.append(ObsTerm(extra_term, 1))
        self.obs_spec = ObsSpec(tuple(terms))
        n = len(names)
        self.action_spec = ActionSpec(
            "joint_position", tuple(names), ("rad",) * n, (0.0,) * n, (0.25,) * n, (-3.0,) * n, (3.0,) * n
        )

    def __call__(self, obs):
        return np.array(self.action_spec.offset)


def test_joint_messages_are_reordered_by_name_and_missing_joints_refused():
    order = JointOrder(("a", "b", "c"))
    msg = joint_state_msg(("c", "a", "b", "x"), [3.0, 1.0, 2.0, 9.0], [30.0, 10.0, 20.0, 90.0], None, 5)
    q, qd, tau = order.state(msg)
    assert q.tolist() == [1.0, 2.0, 3.0] and qd.tolist() == [10.0, 20.0, 30.0] and tau is None
    cmd = joint_command_msg(("b", "c", "a"), [2.0, 3.0, 1.0], [20.0, 30.0, 10.0], [0.2, 0.3, 0.1], "policy", 5)
    assert [v.tolist() for v in order.command(cmd)] == [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [0.1, 0.2, 0.3]]
    with pytest.raises(JointStateError, match=r"lacks the joints \['b'\] of the robot profile"):
        order.state(joint_state_msg(("a", "c"), [1.0, 3.0], [0.0, 0.0], None, 5))
    with pytest.raises(JointStateError, match="velocity has 1 values for 3 names"):
        order.state(JointState(name=["a", "b", "c"], position=[1.0, 2.0, 3.0], velocity=[0.0]))


def test_the_joint_command_is_a_registered_ros2_message_on_the_command_topic():
    transport = A1.transport
    topic = transport.topic("joint_command")
    assert topic.name == "/sim2real/command/joints" and topic.msg_type is JointCommand
    assert transport.topic("joint_states").msg_type is JointState and transport.topic("imu").msg_type is Imu
    msg = joint_command_msg(A1.action_names, np.zeros(12), np.zeros(12), np.full(12, 8.0), "fallback", 1_500_000_000)
    back = JointCommand.deserialize(msg.serialize())
    assert back == msg and back.header.stamp.sec == 1 and list(back.kd) == [8.0] * 12


def test_a_joint_state_without_the_profile_joints_is_refused_before_arming():
    domain = random_domain()
    names = A1.action_names
    with Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node:  # the robot's publishers too
        transport = A1.transport
        runtime = articulated_runtime(
            FakePolicy(names), node, transport, SafetyLayer(A1.safety), np.zeros(12), "legged"
        )
        t = transport.topic
        joints = node.publisher(t("joint_states").name, JointState, t("joint_states").qos)
        imu = node.publisher(t("imu").name, Imu, t("imu").qos)
        assert runtime.adapter.joints_sub.wait_for_publishers(1, 10.0) and runtime.adapter.imu_sub.wait_for_publishers(
            1, 10.0
        )
        eleven = [n for n in names if n != "RL_lower_joint"]
        deadline = time.monotonic() + 10.0
        while (
            runtime.adapter.joints_sub.latest() is None or runtime.adapter.imu_sub.latest() is None
        ) and time.monotonic() < deadline:
            stamp = time.monotonic_ns()
            joints.publish(joint_state_msg(eleven, np.zeros(11), np.zeros(11), np.zeros(11), stamp))
            imu.publish(imu_msg(np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3), stamp))
            time.sleep(0.02)
        with pytest.raises(RuntimeError, match=r"lacks the joints \['RL_lower_joint'\] of the robot profile"):
            runtime.wait_and_arm(timeout_s=2.0)
        assert not runtime.safety.transitions  # never armed


def test_a_policy_that_observes_the_base_velocity_waits_for_the_twist():
    """Joint states and IMU alone are not a state for it: the runtime reads none until state/twist arrives, and
    then the twist's velocity (world frame) is in the state and the recorded messages."""
    domain = random_domain()
    names = A1.action_names
    policy = FakePolicy(names)
    policy.obs_spec = ObsSpec((ObsTerm("base_lin_vel_estimate", 3), *policy.obs_spec.terms))
    with Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node:
        transport = A1.transport
        runtime = articulated_runtime(policy, node, transport, SafetyLayer(A1.safety), np.zeros(12), "legged")
        assert runtime.adapter.needs_twist
        t = transport.topic
        joints = node.publisher(t("joint_states").name, JointState, t("joint_states").qos)
        imu = node.publisher(t("imu").name, Imu, t("imu").qos)
        twist = node.publisher(t("twist").name, TwistStamped, t("twist").qos)
        assert runtime.adapter.joints_sub.wait_for_publishers(
            1, 10.0
        ) and runtime.adapter.twist_sub.wait_for_publishers(1, 10.0)

        yawed = np.array([np.cos(0.4), 0.0, 0.0, np.sin(0.4)])  # 0.8 rad yaw

        def publish(with_twist: bool) -> None:
            stamp = time.monotonic_ns()
            joints.publish(joint_state_msg(names, np.zeros(12), np.zeros(12), np.zeros(12), stamp))
            imu.publish(imu_msg(yawed, np.zeros(3), stamp))
            if with_twist:  # in the base frame on the wire, back in the world frame in the state
                twist.publish(twist_msg(yawed, np.array([0.4, -0.1, 0.0]), np.zeros(3), stamp))

        deadline = time.monotonic() + 10.0
        while (
            runtime.adapter.joints_sub.latest() is None or runtime.adapter.imu_sub.latest() is None
        ) and time.monotonic() < deadline:
            publish(False)
            time.sleep(0.02)
        assert runtime.adapter.read() is None  # no twist yet: not a state this policy can use
        reading = None
        while reading is None and time.monotonic() < deadline:
            publish(True)
            time.sleep(0.02)
            reading = runtime.adapter.read()
        assert reading is not None
        np.testing.assert_allclose(reading.state.linear_velocity, [0.4, -0.1, 0.0])
        assert any(isinstance(m, TwistStamped) for m in reading.messages)


def test_a_policy_for_another_robot_is_refused_with_the_joints_named(articulated_policies):
    from policies.onnx_policy import load_policy

    franka_policy = load_policy(articulated_policies["arm-reach"]["trained"])
    with pytest.raises(DeployProfileError, match=r"commands 7 joints \['panda_joint1'.*robot 'a1' has 12 joints"):
        check_policy(A1, franka_policy, franka_policy.profile_hash)
    a1_policy = load_policy(articulated_policies["legged-walk"]["trained"])
    check_policy(A1, a1_policy, a1_policy.profile_hash)  # the right one fits
    with pytest.raises(DeployProfileError, match="robot profile hash"):
        check_policy(A1, a1_policy, "0123456789abcdef")
    names = A1.action_names
    with pytest.raises(DeployProfileError, match="'joint_pos' has 7 values, the robot has 12 joints"):
        check_policy(A1, FakePolicy(names, obs_joints=7))
    with pytest.raises(DeployProfileError, match=r"needs terms \['foot_contact'\].*it can build \['base_ang_vel'"):
        check_policy(A1, FakePolicy(names, extra_term="foot_contact"))
    with Ros2Node("deploy", domain_id=random_domain(), config=LOOPBACK_CONFIG) as node:
        with pytest.raises(ValueError, match="trained for another robot"):
            articulated_runtime(franka_policy, node, A1.transport, SafetyLayer(A1.safety), np.zeros(12), "legged")


def test_plans_step_through_their_phases():
    plan = LeggedPlan(stand_s=2.0, hold_s=1.0, walk_s=3.0, velocity_command=(0.5, 0.1, 0.2), stop_s=1.0)
    assert plan.duration_s == 7.0
    assert plan.at(0.0).blend == 0.0 and plan.at(1.0).blend == 0.5 and plan.at(2.0).blend is None
    assert plan.at(2.5).phase == "hold" and plan.at(2.5).velocity_command.tolist() == [0, 0, 0]
    assert plan.at(3.5).phase == "walk" and plan.at(3.5).velocity_command.tolist() == [0.5, 0.1, 0.2]
    assert plan.at(6.5).phase == "stop" and plan.at(99.0).velocity_command.tolist() == [0, 0, 0]
    arm = ArmPlan(move_s=1.0, targets=({"position_m": [0.4, 0.0, 0.4], "hold_s": 2.0}, ArmTarget((0.5, 0.1, 0.3))))
    assert arm.duration_s == 6.0 and arm.at(0.5).phase == "move" and arm.at(0.5).blend == 0.5
    step = arm.at(2.0)
    assert step.phase == "target0" and step.target_position.tolist() == [0.4, 0.0, 0.4]
    assert step.target_quat.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert arm.at(3.5).phase == "target1" and arm.at(60.0).phase == "target1"
    with pytest.raises(ValueError, match="unit orientation_wxyz"):
        ArmTarget((0.4, 0.0, 0.4), (1.0, 1.0, 0.0, 0.0))


def test_a_legged_plan_walks_speed_steps_and_scores_each_after_its_speed_up():
    """Speed and turn steps (an excitation for identification): the walk is their sequence, walk_s their total, and
    the walk error leaves out the first second of every step, not only of the walk."""
    plan = LeggedPlan(stand_s=1.0, hold_s=1.0, speed_steps=([0.3, 0, 0, 2.0], (0.8, 0.0, 0.0, 1.5), [0.3, 0.1, 0.4, 2]))
    assert plan.walk_s == 5.5 and plan.duration_s == 1.0 + 1.0 + 5.5 + 2.0
    commands = [(t, plan.at(t).velocity_command.tolist()) for t in (2.0, 3.9, 4.0, 5.4, 5.5, 7.4)]
    assert commands == [(2.0, [0.3, 0, 0]), (3.9, [0.3, 0, 0]), (4.0, [0.8, 0, 0]), (5.4, [0.8, 0, 0]),
                        (5.5, [0.3, 0.1, 0.4]), (7.4, [0.3, 0.1, 0.4])]  # fmt: skip
    assert plan.at(7.5).phase == "stop" and plan.at(7.5).velocity_command.tolist() == [0, 0, 0]
    settled = [t for t in np.arange(0.0, 10.0, 0.25) if plan.settled(t)]
    assert settled == [3.0, 3.25, 3.5, 3.75, 5.0, 5.25, 6.5, 6.75, 7.0, 7.25]
    for bad in ([[0.5, 0.0, 0.0]], [[0.5, 0.0, 0.0, 0.0]], [[float("nan"), 0, 0, 1.0]], ["fast"]):
        with pytest.raises(ValueError, match=r"plan.speed_steps\[0\]: expected \[vx, vy, yaw_rate, seconds\]"):
            LeggedPlan(speed_steps=bad)
    constant = LeggedPlan(stand_s=1.0, hold_s=1.0, walk_s=3.0)  # without steps: from 1 s into the walk
    assert [t for t in np.arange(0.0, 8.0, 0.5) if constant.settled(t)] == [3.0, 3.5, 4.0, 4.5]


def test_articulated_deploy_profiles_load_from_their_robot_profiles(tmp_path):
    franka = load_deploy_profile(LAUNCH / "sim_franka.yaml")
    assert franka.robot_class == "arm" and franka.action_names[0] == "panda_joint1" and len(franka.plan.targets) == 3
    assert franka.safety.joints.kp_nm_per_rad[0] == 600.0 and franka.safety.common.max_state_age_s == 0.25
    assert A1.safety.legged.damping_kd_nm_s_per_rad == 8.0 and A1.safety.common.control_period_s == 0.02
    assert A1.plan.velocity_command == (0.5, 0.0, 0.0) and A1.robot_hash == A1.robot.digest()
    data = yaml.safe_load((LAUNCH / "sim_a1.yaml").read_text())
    data["robot"] = str(LAUNCH / "robots" / "a1.yaml")

    def refused(match: str, **changes) -> None:
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump({**data, **changes}))
        with pytest.raises(DeployProfileError, match=match):
            load_deploy_profile(path)

    refused("the robot profile 'a1' is a 'legged' robot", robot_class="arm")
    refused("control_hz 100 differs from the robot profile's control_hz 50", control_hz=100)
    refused("a legged plan has keys", plan={"hover_s": 3.0})
    refused("override only 'common', 'joints' or 'legged'", safety={"preset": "a1"})
    refused("expected quadrotor, legged or arm", robot_class="boat")


def test_the_articulated_runtime_imports_and_builds_observations_without_torch():
    import subprocess
    import sys

    code = """
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
import numpy as np
import deploy.runtime.articulated, deploy.articulated_wire, deploy.cli
from deploy.observation import JointContext, JointObservationBuilder
from deploy.profile import load_deploy_profile
from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsTerm
p = load_deploy_profile("launch/sim_a1.yaml")
spec = ObsSpec((ObsTerm("projected_gravity", 3), ObsTerm("joint_pos", 12, 2.0)))
s = RobotState(0.0, quaternion=np.array([1.0, 0, 0, 0]), joint_position=np.array(p.robot.joints.default_position_rad))
obs = JointObservationBuilder(spec, 12).build(s, JointContext(s.joint_position - 0.5, np.zeros(12)))
print(obs.tolist())
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [0.0, 0.0, -1.0] + [1.0] * 12
