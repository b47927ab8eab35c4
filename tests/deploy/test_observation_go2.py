"""The Go2 policy on the deploy side: its observation (IMU + joint states, with history) is rebuilt from the robot's
messages exactly as the simulator assembled it, a policy that needs the base twist is refused for a robot that
publishes none, and an exported Go2 policy passes the deploy profile's fit check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deploy.articulated_wire import JointOrder, imu_msg, joint_state_msg
from deploy.observation import JointContext, JointObservationBuilder
from deploy.runtime.articulated import joint_reading
from drivers.sim_articulated import SimulatedArticulatedRobot
from sim.obs_spec import ObsSpecError
from sim.randomization import RandomizationSpec
from sim.tasks import task_entry

ROOT = Path(__file__).resolve().parents[2]


def _go2_train_cfg():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_legged import robot_train_cfg

    return robot_train_cfg("legged-walk", "go2")


def _wire(msg):
    return type(msg).deserialize(msg.serialize())


def test_deploy_rebuilds_the_go2_observation_with_history_from_imu_and_joints() -> None:
    cfg = _go2_train_cfg().env
    cfg.observation_history = 5  # the variant estimates its velocity instead; a history is still an option
    robot = SimulatedArticulatedRobot("legged-walk", seed=2, randomization=RandomizationSpec({}), cfg=cfg)
    env = robot.env
    env.params["obs_noise_scale"][:] = 0.0
    env.reset()  # the first observation again, noise-free
    names, default = robot.profile.joints.names, np.array(robot.profile.joints.default_position_rad)
    builder = JointObservationBuilder(env.obs_spec, len(names), twist=False)  # no state/twist on a Go2
    order, gen = JointOrder(names), torch.Generator().manual_seed(5)
    obs_sim = env._obs["policy"][0].numpy()
    for step in range(8):
        if step:
            obs_sim = env.step(torch.rand(1, len(names), generator=gen) * 2.0 - 1.0)[0]["policy"][0].numpy()
        s, stamp = robot.read_state(), 123_456_789
        joints = _wire(
            joint_state_msg(names[::-1], s.joint_position[::-1], s.joint_velocity[::-1], robot.joint_torque(), stamp)
        )
        reading = joint_reading(order, joints, _wire(imu_msg(s.quaternion, s.angular_velocity, stamp)))
        context = JointContext(default, env.action[0].numpy(), velocity_command=env.command[0].numpy())
        obs_deploy = builder.build(reading.state, context)
        assert obs_deploy.shape == obs_sim.shape == (270,)
        np.testing.assert_allclose(obs_deploy, obs_sim, rtol=0, atol=1e-6)
    d = env.base_obs_spec.dim
    assert np.abs(obs_sim[:d] - obs_sim[d : 2 * d]).max() > 1e-3  # the history holds different, real frames
    builder.reset()  # the policy starts again: the history is the first observation, repeated
    again = builder.build(reading.state, context)
    np.testing.assert_array_equal(again[d:], np.tile(again[:d], 5))


def test_a_policy_that_observes_the_base_velocity_is_refused_without_state_twist() -> None:
    env_cfg = task_entry("legged-walk").make_cfg()  # the A1 default: observes base_lin_vel_estimate
    from sim.articulated.tasks.legged_walk import LeggedWalkEnv

    spec = LeggedWalkEnv(env_cfg, 1, seed=0).obs_spec
    JointObservationBuilder(spec, 12)  # a robot that publishes state/twist: fine
    with pytest.raises(ObsSpecError, match=r"base_lin_vel_estimate.*does not publish.*observe_base_velocity: false"):
        JointObservationBuilder(spec, 12, twist=False)


def test_an_exported_go2_policy_fits_the_sil_go2_profile(tmp_path) -> None:
    from deploy.profile import check_policy, load_deploy_profile
    from policies.export import export
    from policies.onnx_policy import load_policy
    from policies.train import train

    cfg = _go2_train_cfg()
    cfg.seed, cfg.num_envs, cfg.max_iterations, cfg.save_interval = 0, 4, 1, 1
    cfg.ppo.num_steps_per_env = 8
    train(cfg, tmp_path / "run", progress=False)
    policy = load_policy(export(tmp_path / "run", header=False)["onnx"])
    # the newest IMU + joint observation and the two before it (the variant's history), no velocity term
    assert policy.obs_spec.dim == 3 * 45 and "base_lin_vel_estimate" not in policy.obs_spec.names
    assert policy.estimator["target"] == "base_lin_vel"  # estimated inside the file, from IMU and joints
    profile = load_deploy_profile(ROOT / "launch" / "sim_go2.yaml")
    check_policy(profile, policy, policy.profile_hash)
    builder = JointObservationBuilder(policy.obs_spec, 12, twist=False)
    assert builder.history_steps == 2  # the runtime rebuilds the history from rt/lowstate
    targets = np.asarray(policy(np.zeros(3 * 45, dtype=np.float32)))
    low, high = profile.robot.joints.position_min_rad, profile.robot.joints.position_max_rad
    assert targets.shape == (12,) and np.all(targets >= low) and np.all(targets <= high)


def test_the_bundled_go2_policy_fits_and_needs_no_twist() -> None:
    from deploy.profile import check_policy, load_deploy_profile
    from policies.onnx_policy import load_policy

    policy = load_policy(ROOT / "tests" / "data" / "go2_walk_policy.onnx")
    profile = load_deploy_profile(ROOT / "launch" / "sim_go2.yaml")
    check_policy(profile, policy, policy.profile_hash)  # same joints, rate and robot profile hash
    JointObservationBuilder(policy.obs_spec, 12, twist=False)
    assert policy.obs_spec.dim == 45 and policy.estimator["target"] == "base_lin_vel"
    policy.run(np.zeros(45, dtype=np.float32))
    assert policy.last_estimate.shape == (3,) and np.all(np.isfinite(policy.last_estimate))


def test_the_real_go2_profiles_say_no_twist_and_refuse_a_base_velocity_policy() -> None:
    from types import SimpleNamespace

    from deploy.profile import DeployProfileError, check_policy, load_deploy_profile
    from policies.onnx_policy import load_policy
    from sim.articulated.tasks.legged_walk import LeggedWalkEnv

    go2 = load_policy(ROOT / "tests" / "data" / "go2_walk_policy.onnx")  # IMU + joints: fits
    real = load_deploy_profile(ROOT / "launch" / "unitree_go2.yaml")
    assert not real.base_twist and not load_deploy_profile(ROOT / "launch" / "unitree_go2_sil.yaml").base_twist
    assert load_deploy_profile(ROOT / "launch" / "sim_go2.yaml").base_twist  # the SIL robot publishes one
    check_policy(real, go2, go2.profile_hash)
    twist_spec = LeggedWalkEnv(task_entry("legged-walk").make_cfg(), 1, seed=0).obs_spec  # observes the velocity
    twist_policy = SimpleNamespace(**{k: getattr(go2, k) for k in ("action_spec", "metadata")}, obs_spec=twist_spec)
    with pytest.raises(DeployProfileError, match=r"unitree_go2.*base_lin_vel_estimate"):
        check_policy(real, twist_policy)


@pytest.mark.parametrize(
    ("source", "state", "error"),
    [
        ("unitree_go2.yaml", "{twist: maybe}", r"state.twist: expected true or false"),
        ("sim_franka.yaml", "{twist: true}", r"state.twist: expected true or false for a legged robot.*arm robot"),
        ("sim_quadrotor.yaml", "{twist: false}", r"state.twist is for a legged robot"),
        ("unitree_go2.yaml", "{input: odometry}", r"state.input odometry is for a quadrotor"),
    ],
)
def test_a_wrong_state_section_is_refused_with_what_it_expects(tmp_path, source, state, error) -> None:
    import re

    from deploy.profile import DeployProfileError, load_deploy_profile

    text = (ROOT / "launch" / source).read_text()
    text = re.sub(r"(?m)^state:.*$", "", text) + f"\nstate: {state}\n"
    (tmp_path / "robots").symlink_to(ROOT / "launch" / "robots")
    path = tmp_path / source
    path.write_text(text)
    with pytest.raises(DeployProfileError, match=error):
        load_deploy_profile(path)
