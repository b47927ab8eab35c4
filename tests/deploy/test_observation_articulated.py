"""Observation parity: for the same robot state, the deploy runtime's observation (built from the messages the
robot publishes, through CDR) equals the simulator's policy observation, noise- and latency-free, to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy.articulated_wire import JointOrder, imu_msg, joint_state_msg, pose_msg, twist_msg
from deploy.msgs import Imu, JointState, PoseStamped
from deploy.observation import (
    JOINT_TERMS,
    JointContext,
    JointObservationBuilder,
    projected_gravity,
    rotation_error_vector,
)
from deploy.runtime.articulated import joint_reading
from drivers.robot import RobotState
from drivers.sim_articulated import SimulatedArticulatedRobot
from sim.articulated import terms
from sim.obs_spec import ObsSpec, ObsSpecError, ObsTerm
from sim.randomization import RandomizationSpec
from sim.tasks import task_entry


def _wire(msg):
    return type(msg).deserialize(msg.serialize())


@pytest.mark.parametrize(
    ("task", "velocity"), [("legged-walk", False), ("legged-walk", True), ("arm-reach", False)], ids=str
)
def test_deploy_observation_equals_the_simulator_policy_observation(task, velocity):
    """``velocity``: the legged actor also observes the base velocity estimate (from the robot's state/twist)."""
    cfg = task_entry(task).make_cfg()
    if task == "legged-walk":
        cfg.observe_base_velocity = velocity
    robot = SimulatedArticulatedRobot(task, seed=2, randomization=RandomizationSpec({}), cfg=cfg)  # no noise/latency
    env = robot.env
    env.params["obs_noise_scale"][:] = 0.0
    gen = torch.Generator().manual_seed(5)
    names, default = robot.profile.joints.names, np.array(robot.profile.joints.default_position_rad)
    builder = JointObservationBuilder(env.obs_spec, len(names))
    order = JointOrder(names)
    for _ in range(6):
        obs_sim = env.step(torch.rand(1, len(names), generator=gen) * 2.0 - 1.0)[0]["policy"][0].numpy()
        s = robot.read_state()
        stamp = 123_456_789
        # the robot's messages, joints in reverse order (the runtime reorders by name)
        joints = _wire(
            joint_state_msg(names[::-1], s.joint_position[::-1], s.joint_velocity[::-1], robot.joint_torque(), stamp)
        )
        if task == "legged-walk":
            other = _wire(imu_msg(s.quaternion, s.angular_velocity, stamp))
            context = JointContext(default, env.action[0].numpy(), velocity_command=env.command[0].numpy())
        else:
            other = _wire(pose_msg(s.position, s.quaternion, stamp, "panda_link0"))
            context = JointContext(
                default,
                env.action[0].numpy(),
                target_position=env.target_pos[0].numpy(),
                target_quat=env.target_quat[0].numpy(),
            )
        twist = _wire(twist_msg(s.quaternion, s.linear_velocity, s.angular_velocity, stamp)) if velocity else None
        reading = joint_reading(order, joints, other, twist)
        obs_deploy = builder.build(reading.state, context)
        assert obs_deploy.shape == obs_sim.shape == (env.obs_spec.dim,)
        np.testing.assert_allclose(obs_deploy, obs_sim, rtol=0, atol=1e-6)
    assert isinstance(joints, JointState) and isinstance(other, Imu | PoseStamped)
    assert np.abs(obs_sim).max() > 0.1  # a real state, not zeros
    if velocity:
        assert env.obs_spec.names[0] == "base_lin_vel_estimate"
        assert np.abs(obs_sim[:3]).max() > 0.01  # the robot moves: the term is compared on real values


def test_articulated_terms_match_the_simulator_terms_by_hand():
    level, rolled = np.array([1.0, 0.0, 0.0, 0.0]), np.array([np.cos(0.25), np.sin(0.25), 0.0, 0.0])  # roll 0.5 rad
    np.testing.assert_allclose(projected_gravity(level), [0.0, 0.0, -1.0])
    np.testing.assert_allclose(projected_gravity(rolled), [0.0, -np.sin(0.5), -np.cos(0.5)], atol=1e-12)
    np.testing.assert_allclose(rotation_error_vector(level, rolled), [0.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rotation_error_vector(rolled, -rolled), [0.0, 0.0, 0.0], atol=1e-12)  # same rotation
    q = torch.tensor([[0.3, -0.5, 0.7, 0.4]]) / torch.tensor([[0.3, -0.5, 0.7, 0.4]]).norm()
    t = torch.tensor([[0.9, 0.1, -0.2, 0.3]]) / torch.tensor([[0.9, 0.1, -0.2, 0.3]]).norm()
    np.testing.assert_allclose(projected_gravity(q[0].numpy()), terms.projected_gravity(q)[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(
        rotation_error_vector(q[0].numpy(), t[0].numpy()), terms.rotation_error_vector(q, t)[0].numpy(), atol=1e-6
    )
    state = RobotState(0.0, position=np.array([0.4, 0.0, 0.5]), joint_position=np.array([1.0, 2.0]))
    context = JointContext(np.array([0.5, 0.5]), np.zeros(2), target_position=np.array([0.5, 0.1, 0.5]))
    np.testing.assert_allclose(JOINT_TERMS["joint_pos"](state, context), [0.5, 1.5])
    np.testing.assert_allclose(JOINT_TERMS["position_error"](state, context), [0.1, 0.1, 0.0], atol=1e-12)


def test_the_builder_refuses_terms_it_cannot_build_and_other_joint_counts():
    with pytest.raises(ObsSpecError, match=r"needs terms \['base_height'\].*it can build"):
        JointObservationBuilder(ObsSpec((ObsTerm("joint_pos", 12), ObsTerm("base_height", 1))), 12)
    with pytest.raises(ObsSpecError, match="'joint_vel' has 7 values, the robot has 12 joints"):
        JointObservationBuilder(ObsSpec((ObsTerm("joint_vel", 7),)), 12)


def test_the_base_velocity_estimate_is_rotated_into_the_base_frame_and_required():
    builder = JointObservationBuilder(ObsSpec((ObsTerm("base_lin_vel_estimate", 3, 2.0),)), 12)
    yawed = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # yaw +90 deg: base x = world y
    context = JointContext(np.zeros(12), np.zeros(12), velocity_command=np.zeros(3))
    state = RobotState(0.0, quaternion=yawed, linear_velocity=np.array([0.0, 0.5, 0.1]))
    np.testing.assert_allclose(builder.build(state, context), [1.0, 0.0, 0.2], atol=1e-6)  # scaled by 2
    with pytest.raises(ValueError, match=r"publish the state estimator's base twist .*state/twist"):
        builder.build(RobotState(0.0, quaternion=yawed), context)
