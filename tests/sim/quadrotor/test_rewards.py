"""Declared reward lists: each task's terms as data, their weighted sum, and which backend runs them.

The native kernel computes one fixed list (``KERNEL_REWARD_TERMS``, any weights); a config with another list runs
on the torch step, says why in one INFO line, and its reward is the sum of the terms it declares.
"""

from __future__ import annotations

import math

import pytest
import torch

from sim.quadrotor import rewards
from sim.quadrotor.config import TASKS, InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv
from sim.quadrotor.native import KERNEL_REWARD_TERMS, load_kernel
from sim.randomization import ParamDistribution as D
from sim.randomization import RandomizationSpec

QUIET = RandomizationSpec({"obs_noise_scale": D("constant", mean=0.0)})  # nominal parameters, no sensor noise
needs_kernel = pytest.mark.skipif(load_kernel() is None, reason="the native kernel could not be built (no g++?)")
GATE_LOGGER = "sim.quadrotor.native_env"


def test_each_task_file_declares_its_terms_and_the_config_takes_them():
    for name, task in TASKS.items():
        cfg = QuadrotorTaskCfg(task=name)
        assert list(cfg.reward.terms.items()) == list(task.reward)
        assert set(cfg.reward.terms) <= set(rewards.PENALTY_TERMS)
    assert tuple(QuadrotorTaskCfg(task="hover").reward.terms) == KERNEL_REWARD_TERMS
    a, b = QuadrotorTaskCfg(), QuadrotorTaskCfg()
    a.reward.terms["position_l2"] = 1.0
    assert "position_l2" not in b.reward.terms and "position_l2" not in dict(TASKS["hover"].reward)  # not shared
    with pytest.raises(ValueError, match=r"unknown quadrotor task 'backflip'; expected one of \['hover', 'track'\]"):
        QuadrotorTaskCfg(task="backflip")


def test_weights_of_declared_terms_are_attributes_and_nothing_else_is():
    cfg = QuadrotorTaskCfg()
    cfg.reward.position = 4.5  # as --set env.reward.position=4.5
    assert cfg.reward.terms["position"] == 4.5 and cfg.reward.position == 4.5
    del cfg.reward.terms["tilt"]
    with pytest.raises(AttributeError, match="the reward has no 'tilt' term"):
        cfg.reward.tilt = 1.0  # adding a term is a change of reward.terms, not of a weight
    assert "tilt" not in cfg.reward.terms


def test_penalty_sum_is_the_weighted_sum_of_the_named_terms_in_order():
    q = {
        "position": torch.tensor([[3.0], [4.0], [1.0]]),
        "reference_position": torch.tensor([[0.0], [0.0], [1.0]]),
        "velocity_error": torch.tensor([[1.0], [2.0], [0.0]]),
        "angular_velocity": torch.tensor([[0.0], [0.0], [2.0]]),
        "rot_zz": torch.tensor([0.5]),
        "action": torch.tensor([[0.5], [0.0], [0.0], [0.0]]),
        "last_action": torch.tensor([[0.0], [0.0], [0.0], [1.0]]),
    }
    weights = {"position": 2.0, "position_l2": 0.1, "velocity": 1.0, "angular_velocity": 0.5, "tilt": 4.0}
    weights |= {"action": 2.0, "action_rate": 1.0}
    # 2*5 + 0.1*25 + 1*5 + 0.5*4 + 4*0.5 + 2*0.25 + 1*(0.25 + 1)
    expected = 10.0 + 2.5 + 5.0 + 2.0 + 2.0 + 0.5 + 1.25
    torch.testing.assert_close(rewards.penalty_sum(weights, q), torch.tensor([expected]))
    q["angular_velocity"] = torch.tensor([[math.nan], [0.0], [0.0]])
    assert torch.isnan(rewards.penalty_sum(weights, q)).all()  # propagates: the env turns it into a failure


def test_unknown_terms_and_bad_weights_are_refused_with_the_known_terms():
    cfg = QuadrotorTaskCfg(randomization=QUIET)
    cfg.reward.terms["heading"] = 1.0
    with pytest.raises(ValueError, match=r"unknown penalty terms \['heading'\]; known terms: \['action'"):
        QuadrotorEnv(cfg, 2, compile=False)
    cfg = QuadrotorTaskCfg(randomization=QUIET)
    cfg.reward.terms["tilt"] = "high"
    with pytest.raises(ValueError, match=r"reward.terms\['tilt'\]: expected a number .* found 'high'"):
        QuadrotorEnv(cfg, 2, compile=False)


@needs_kernel
def test_the_default_hover_runs_on_the_kernel_with_any_weights(caplog):
    cfg = QuadrotorTaskCfg(task="hover", randomization=QUIET)
    cfg.reward.position, cfg.reward.action_rate = 2.0, 0.0
    with caplog.at_level("INFO", logger=GATE_LOGGER):
        assert QuadrotorEnv(QuadrotorTaskCfg(task="hover"), 8, seed=0).backend == "native"
        assert QuadrotorEnv(cfg, 8, seed=0).backend == "native"
    assert not [r for r in caplog.records if r.name == GATE_LOGGER]


def hand_reward(cfg: QuadrotorTaskCfg, env: QuadrotorEnv, critic: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """alive * exp(-sum(weight * term)) * dt in float64 from the true state the critic sees (first step of an
    episode: the last action is zero). critic: (N, C) -> (N,)."""
    c = critic.double()
    spec = env.critic_spec
    pos_err = c[:, spec.slice("true_position_error")]
    rot = c[:, spec.slice("true_rotation_matrix")]
    vel = c[:, spec.slice("true_linear_velocity")]
    ang = c[:, spec.slice("true_angular_velocity")] / spec.term("true_angular_velocity").scale
    a = action.double().clamp(-1, 1)
    values = {
        "position": pos_err.norm(dim=1),
        "position_l2": pos_err.square().sum(1),
        "velocity": vel.square().sum(1),  # hover: the reference is at rest
        "angular_velocity": ang.square().sum(1),
        "tilt": 1.0 - rot[:, 8],
        "action": a.square().sum(1),
        "action_rate": a.square().sum(1),
    }
    penalty = sum(w * values[name] for name, w in cfg.reward.terms.items())
    return cfg.reward.alive * torch.exp(-penalty) * cfg.control_dt


@pytest.mark.parametrize("change", ["extra", "different", "reordered"])
def test_another_reward_list_runs_on_the_torch_step_says_why_and_sums_its_terms(change, caplog):
    cfg = QuadrotorTaskCfg(task="hover", randomization=QUIET, init=InitCfg(0.0, 0.0, 0.0, 0.0))
    if change == "extra":
        cfg.reward.terms["position_l2"] = 20.0
    elif change == "different":
        cfg.reward.terms = {("position_l2" if k == "position" else k): w for k, w in cfg.reward.terms.items()}
    else:
        cfg.reward.terms = dict(reversed(cfg.reward.terms.items()))
    with caplog.at_level("INFO", logger=GATE_LOGGER):
        env = QuadrotorEnv(cfg, 6, seed=0)  # compile and native left to their defaults
    gate = [r for r in caplog.records if r.name == GATE_LOGGER]
    assert env.backend == "eager"
    if load_kernel() is not None:
        assert len(gate) == 1 and gate[0].levelname == "INFO"
        assert "reward terms" in gate[0].getMessage() and str(list(KERNEL_REWARD_TERMS)) in gate[0].getMessage()
    # displaced, moving, tilted and spinning envs, and non-zero commands: every term is non-zero
    offsets = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, -0.2, 0.1], [0.1, 0.1, -0.1]] + [[0.0] * 3] * 2)
    env.set_state_rows("position", offsets + torch.tensor([0.0, 0.0, cfg.termination.reference_height_m]))
    env.set_state_rows("velocity", torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, -1.0]] + [[0.2] * 3] * 3))
    half = 0.2  # a 0.4 rad tilt about x for env 4
    quat = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 6)
    quat[4] = torch.tensor([math.cos(half), math.sin(half), 0.0, 0.0])
    env.set_state_rows("quaternion", quat)
    env.set_state_rows("angular_velocity", torch.tensor([[0.0] * 3] * 5 + [[1.0, -2.0, 0.5]]))
    action = torch.tensor([[0.0] * 4, [0.1] * 4, [-0.2, 0.0, 0.2, 0.0], [0.0] * 4, [0.0] * 4, [3.0, 0.0, 0.0, 0.0]])
    obs, reward, done, _ = env.step(action)
    assert not done.any()
    expected = hand_reward(cfg, env, obs["critic"], action)
    torch.testing.assert_close(reward.double(), expected, rtol=1e-5, atol=1e-9)
    assert len(set(reward.tolist())) == 6  # the states differ in every term
