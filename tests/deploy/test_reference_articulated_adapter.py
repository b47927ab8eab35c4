"""The articulated adapter with a streamed reference: the legged robot stands up then follows cmd_vel, the arm starts
at its measured pose then follows targets; the stream advances on the cycle's time (``act``'s ``now``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.articulated_plan import ArmPlan, StreamedArticulatedPlan
from deploy.articulated_wire import JointOrder, imu_msg, joint_state_msg, pose_msg
from deploy.profile import load_deploy_profile
from deploy.runtime import adapter_for
from deploy.runtime.articulated import ArticulatedAdapter, joint_reading
from deploy.runtime.reference_articulated import (
    DOWN_WXYZ,
    ArmReference,
)
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec, ObsTerm
from tests.deploy.test_reference_articulated import FakeSub, profile_file, target, twist
from tests.deploy.test_runtime_articulated import FakePolicy

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


class FakeNode:
    """Subscriptions by topic name, for the adapter without DDS."""

    def __init__(self):
        self.subs: dict[str, FakeSub] = {}

    def subscription(self, name, msg_type, qos=None):
        return self.subs.setdefault(name, FakeSub(name))


class ArmPolicy:
    """arm-reach's observation layout for 7 joints; holds the default pose."""

    control_hz = 50.0

    def __init__(self, names):
        n = len(names)
        terms = (ObsTerm("joint_pos", n), ObsTerm("position_error", 3), ObsTerm("orientation_error", 3))
        self.obs_spec = ObsSpec((*terms, ObsTerm("last_action", n)))
        self.action_spec = ActionSpec(
            "joint_position", tuple(names), ("rad",) * n, (0.0,) * n, (1.25,) * n, (-3.0,) * n, (3.0,) * n
        )

    def __call__(self, obs):
        return np.array(self.action_spec.offset)


def test_the_legged_adapter_stands_up_then_streams_cmd_vel_into_the_observation(tmp_path):
    now = [100.0]  # the cycle's monotonic clock: the stream advances on it
    section = {"source": "topic", "timeout_s": 0.3, "lost_s": 1.0, "max_lin_acc_m_s2": 100.0}
    profile = load_deploy_profile(profile_file(tmp_path, "sim_a1.yaml", reference=section))
    node, policy = FakeNode(), FakePolicy(profile.action_names)
    adapter = adapter_for(profile, policy, node)
    assert isinstance(adapter, ArticulatedAdapter) and isinstance(adapter.plan, StreamedArticulatedPlan)
    cmd_vel = node.subs["/sim2real/cmd_vel"]
    q = np.array(profile.robot.joints.default_position_rad)
    state = joint_state_msg(profile.action_names, q, np.zeros(12), None, 1)
    reading = joint_reading(JointOrder(profile.action_names), state, imu_msg(np.array([1.0, 0, 0, 0]), np.zeros(3), 1))
    assert adapter.act(reading, now[0], 1.0, True).phase == "stand"  # plan.stand_s 2 s: the scripted stand-up
    cmd_vel.put(twist(3.0, 0.1, -0.2), now[0])
    act = adapter.act(reading, now[0], 2.0, True)
    assert act.phase == "cmd_vel" and act.fault == ""
    velocity = act.obs[policy.obs_spec.slice("velocity_command")]
    np.testing.assert_allclose(velocity, [0.0, 0.0, 0.0])  # the first streamed cycle: no time to accelerate yet
    now[0] += 0.1
    cmd_vel.put(twist(3.0, 0.1, -0.2), now[0])
    act = adapter.act(reading, now[0], 2.1, True)
    np.testing.assert_allclose(act.obs[policy.obs_spec.slice("velocity_command")], [1.0, 0.1, -0.2], atol=1e-6)
    now[0] += 1.2  # silence
    act = adapter.act(reading, now[0], 3.3, True)
    assert "lost" in act.fault and act.action is not None
    adapter.idle()
    assert adapter.stream is None


def test_the_arm_adapter_starts_at_the_measured_pose_and_follows_targets():
    now = [100.0]
    franka = load_deploy_profile(LAUNCH / "sim_franka.yaml")
    names = franka.action_names
    node, policy = FakeNode(), ArmPolicy(names)
    adapter = ArticulatedAdapter(
        policy,
        node,
        franka.transport,
        names,
        np.array(franka.robot.joints.default_position_rad),
        "arm",
        ArmPlan(move_s=1.0),
        reference=ArmReference(max_speed_m_s=0.2),
        base_frame="panda_link0",
    )
    state = joint_state_msg(names, np.array(franka.robot.joints.default_position_rad), np.zeros(7), None, 1)
    ee = pose_msg(np.array([0.31, 0.0, 0.49]), DOWN_WXYZ, 1, "panda_link0")
    reading = joint_reading(JointOrder(names), state, ee)
    act = adapter.act(reading, now[0], 1.0, True)
    assert act.phase == "target"
    np.testing.assert_allclose(act.obs[policy.obs_spec.slice("position_error")], 0.0, atol=1e-12)  # holds
    node.subs["/sim2real/reference/target"].put(target((0.5, 0.0, 0.49), frame="panda_link0"), now[0])
    now[0] += 0.1
    act = adapter.act(reading, now[0], 1.1, True)
    error = act.obs[policy.obs_spec.slice("position_error")] / policy.obs_spec.term("position_error").scale
    np.testing.assert_allclose(error, [0.02, 0.0, 0.0], atol=1e-6)  # 0.2 m/s for 0.1 s
    assert adapter.act(reading, now[0], 700.0, True).phase == "hold"  # past duration_s: the target holds


# ---------------------------------------------------------------------------------------------- over DDS
