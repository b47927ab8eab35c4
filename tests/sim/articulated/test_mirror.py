"""The Go2's mirror image (sim.articulated.mirror): the maps are involutions, the default pose is its own mirror,
and the simulator agrees: a robot started in the mirrored state and given the mirrored actions moves as the mirror
image of the first, observation for observation."""

from __future__ import annotations

import pytest
import torch

from policies.train_cfg import train_cfg
from sim.articulated.mirror import Mirror, MirrorError, env_mirror, simulated_mirror_error
from sim.articulated.profile import load_profile
from sim.articulated.tasks.legged_walk import LeggedWalkCfg, LeggedWalkEnv

_GO2 = train_cfg("legged-walk", "go2").symmetry  # the mirror the Go2 variant declares
SWAP, NEGATE = _GO2.swap, _GO2.negate


def _env(history: int = 2, n: int = 2) -> LeggedWalkEnv:
    cfg = LeggedWalkCfg(params=load_profile("go2"), observe_base_velocity=False, observation_history=history)
    return LeggedWalkEnv(cfg, n, seed=0)


def test_every_group_map_is_an_involution_and_the_default_pose_is_its_own_mirror() -> None:
    env = _env()
    groups, actions = env_mirror(env, SWAP, NEGATE)
    obs = env._obs
    for name, m in groups.items():
        x = torch.randn(5, obs[name].shape[1])
        torch.testing.assert_close(m(m(x)), x, rtol=0, atol=0)
        assert not torch.equal(m(x), x), name  # every group has something that changes sign or place
    a = torch.randn(5, 12)
    torch.testing.assert_close(actions(actions(a)), a, rtol=0, atol=0)
    default = env.default_pose[None]
    torch.testing.assert_close(actions(default), default, rtol=0, atol=0)  # hips -0.1 / +0.1, thighs, calves equal
    # FR hip takes FL hip's value negated; FR thigh takes FL thigh's
    names = list(env.profile.joints.names)
    e = torch.zeros(1, 12)
    e[0, names.index("FL_hip_joint")], e[0, names.index("FL_thigh_joint")] = 1.0, 2.0
    m = actions(e)[0]
    assert m[names.index("FR_hip_joint")] == -1.0 and m[names.index("FR_thigh_joint")] == 2.0
    # the command (vx, vy, yaw rate) -> (vx, -vy, -yaw rate); the gyro (x, y, z) -> (-x, y, -z)
    spec = env.base_obs_spec
    x = torch.zeros(1, spec.dim)
    x[0, spec.slice("velocity_command")] = torch.tensor([0.5, 0.2, 0.3])
    x[0, spec.slice("base_ang_vel")] = torch.tensor([0.1, 0.2, 0.3])
    y = groups["policy_now"](x)[0]
    assert y[spec.slice("velocity_command")].tolist() == pytest.approx([0.5, -0.2, -0.3])
    assert y[spec.slice("base_ang_vel")].tolist() == pytest.approx([-0.1, 0.2, -0.3])


def test_names_without_a_mirror_are_refused_with_the_robot_s_names() -> None:
    joints, feet = ("FR_hip_joint", "FL_hip_joint"), ("FR_foot", "FL_foot")
    with pytest.raises(MirrorError, match="would be 'RR_hip_joint'"):
        Mirror(("FR_hip_joint", "FL_hip_joint", "RL_hip_joint"), feet, SWAP, NEGATE)
    with pytest.raises(MirrorError, match="pairs of name fragments"):
        Mirror(joints, feet, ("FR_",), NEGATE)
    with pytest.raises(MirrorError, match="is negated but its mirror"):
        Mirror(joints, feet, SWAP, ("FR_hip",))


def test_the_simulator_moves_the_mirrored_robot_as_the_mirror_image() -> None:
    env = _env()
    assert simulated_mirror_error(env, SWAP, NEGATE) < 2e-3  # 5e-4: the contact solver's tolerance
    # hips not negated: the twins' feet land differently at once
    assert simulated_mirror_error(env, SWAP, ()) > 0.1
    # pairs crossed front to back: the mirror of a front leg is a rear leg, which the simulator does not agree with
    assert simulated_mirror_error(env, (("FR_", "RL_"), ("FL_", "RR_")), ()) > 0.1
