"""legged-walk on the Go2 variant: the actor observes IMU and joint states (no base velocity) and estimates its
velocity with a network trained with it (actor.estimator), the critic keeps the true base velocity. The observation
history the variant used before (still an option): it holds the previous observations newest first and restarts
with copies of the first observation when an env is reset."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from sim.articulated.profile import load_profile
from sim.articulated.tasks.legged_walk import LeggedWalkCfg, LeggedWalkEnv
from sim.obs_spec import HISTORY_TERM, ObsSpecError

ROOT = Path(__file__).resolve().parents[3]
PROPRIOCEPTION = ("base_ang_vel", "projected_gravity", "velocity_command", "joint_pos", "joint_vel", "last_action")


def _go2_env(history: int = 3, num_envs: int = 4) -> LeggedWalkEnv:
    cfg = LeggedWalkCfg(params=load_profile("go2"), observe_base_velocity=False, observation_history=history)
    return LeggedWalkEnv(cfg, num_envs, seed=0)


def test_the_go2_variant_observes_imu_and_joints_and_estimates_its_velocity() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_legged import robot_train_cfg

    cfg = robot_train_cfg("legged-walk", "go2")
    assert cfg.env.params.name == "go2" and not cfg.env.observe_base_velocity and cfg.env.observation_history == 2
    assert cfg.actor.estimator.enabled and cfg.actor.estimator.target == "base_lin_vel"
    assert cfg.obs_groups["critic"] == ["policy_now", "critic", "privileged"] and cfg.num_envs == 1024
    env = LeggedWalkEnv(cfg.env, 2, seed=0)
    assert env.base_obs_spec.names == PROPRIOCEPTION and env.base_obs_spec.dim == 3 + 3 + 3 + 12 + 12 + 12
    assert env.obs_spec.dim == 3 * 45 and env._obs["policy"].shape == (2, 135)  # the newest and two before it
    assert env._obs["policy_now"].shape == (2, 45)  # what the critic reads of it
    assert env.critic_spec.names[0] == "base_lin_vel"  # the critic keeps the true base velocity: the target


def test_history_shifts_newest_first_and_restarts_at_a_reset() -> None:
    env, k = _go2_env(history=3), 3
    d = env.base_obs_spec.dim
    first = env._obs["policy"].clone()
    for i in range(k):  # at the start every slot holds the first observation
        torch.testing.assert_close(first[:, (i + 1) * d : (i + 2) * d], first[:, :d], rtol=0, atol=0)
    frames = [first[:, :d]]
    for _ in range(4):
        obs = env.step(torch.zeros(4, 12))[0]["policy"]
        frames.insert(0, obs[:, :d])
        expected = torch.cat([*frames[: k + 1], *[frames[-1]] * (k + 1 - len(frames))], dim=-1)
        torch.testing.assert_close(obs, expected, rtol=0, atol=0)
    # tip env 1 upside down: it fails, is reset in the step, and its history restarts from its new observation
    qpos, qvel = env.engine.qpos[1:2].clone(), env.engine.qvel[1:2].clone()
    qpos[:, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=qpos.dtype)
    env.engine.set_state(torch.tensor([1]), qpos, qvel)
    obs, _, done, _ = env.step(torch.zeros(4, 12))
    obs = obs["policy"]
    assert done.tolist() == [False, True, False, False]
    torch.testing.assert_close(obs[1, d:], obs[1, :d].repeat(k), rtol=0, atol=0)
    torch.testing.assert_close(obs[0, d : 2 * d], frames[0][0], rtol=0, atol=0)


def test_history_of_zero_steps_is_the_plain_observation_and_negative_is_refused() -> None:
    env = _go2_env(history=0, num_envs=1)
    assert HISTORY_TERM not in env.obs_spec.names and env.obs_spec.dim == 45
    with pytest.raises(ObsSpecError, match="whole number of control steps"):
        _go2_env(history=-1, num_envs=1)
