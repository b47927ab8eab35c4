"""Reward and termination terms of the quadrotor tasks, with hand-computed values (no simulator)."""

from __future__ import annotations

import math

import pytest
import torch

from sim.obs_terms import POSITION_ERROR_INTEGRAL_LIMIT, integrate_position_error
from sim.quadrotor import terms
from sim.quadrotor.config import QuadrotorTaskCfg, base_randomization
from sim.quadrotor.env import QuadrotorEnv


def cols(*rows: list[float]) -> torch.Tensor:
    """(3, N) from N column vectors given as rows."""
    return torch.tensor(rows, dtype=torch.float32).T


def test_position_error_norm_is_the_distance_and_keeps_its_slope_near_zero():
    pos = cols([3.0, 4.0, 1.0], [0.0, 0.0, 1.01], [0.0, 0.0, 1.0])
    target = cols([0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    torch.testing.assert_close(terms.position_error_norm(pos, target), torch.tensor([5.0, 0.01, 0.0]))
    # 1 cm of error costs 1 cm x weight, where the square would cost 1e-4: centimetres count
    assert terms.position_error_norm(pos, target)[1] == pytest.approx(100 * terms.position_error_l2(pos, target)[1])
    nan = terms.position_error_norm(cols([math.nan, 0.0, 0.0]), cols([0.0, 0.0, 0.0]))
    assert torch.isnan(nan).all()  # propagates: the env's failure check catches non-finite states


def test_alive_exp_is_bounded_in_zero_to_alive():
    penalty = torch.tensor([0.0, 1.0, 50.0, 1e6, math.inf])
    reward = terms.alive_exp(penalty, 2.0)
    torch.testing.assert_close(reward, torch.tensor([2.0, 2.0 * math.exp(-1.0), 2.0 * math.exp(-50.0), 0.0, 0.0]))
    assert (reward >= 0).all() and (reward <= 2.0).all()  # living never scores below a crash (-termination)


def test_integral_accumulates_and_clamps():
    i = torch.zeros(3, 2)
    e = cols([0.1, -0.2, 0.0], [10.0, -10.0, 0.05])
    i = integrate_position_error(i, e, 0.01)
    torch.testing.assert_close(i, cols([0.001, -0.002, 0.0], [0.1, -0.1, 0.0005]))
    for _ in range(100):
        i = integrate_position_error(i, e, 0.01)
    assert i[0, 1] == pytest.approx(POSITION_ERROR_INTEGRAL_LIMIT) and i[1, 1] == -POSITION_ERROR_INTEGRAL_LIMIT


@pytest.mark.parametrize("native", [False, True])
def test_env_reward_is_the_bounded_exp_of_the_weighted_penalties(native):
    """At the reference, at rest, upright, hover command: penalty 0, reward = alive * dt; displaced by 0.1 m:
    alive * exp(-w_pos * 0.1) * dt, the same in the torch step and the C++ kernel. The ideal vehicle (base spec):
    an offset centre of mass would turn it within the step."""
    cfg = QuadrotorTaskCfg(randomization=base_randomization())
    env = QuadrotorEnv(cfg, 2, seed=0, compile=None if native else False, native=None if native else False)
    assert env.backend == ("native" if native else "eager")
    env.reset()
    hover = torch.tensor([0.0, 0.0, cfg.termination.reference_height_m])
    env.set_state_rows("position", torch.stack([hover, hover + torch.tensor([0.1, 0.0, 0.0])]))
    env.set_state_rows("velocity", torch.zeros(2, 3))
    env.set_state_rows("quaternion", torch.tensor([[1.0, 0, 0, 0]] * 2))
    env.set_state_rows("angular_velocity", torch.zeros(2, 3))
    _, reward, done, _ = env.step(torch.zeros(2, 4))
    assert not done.any()
    w, dt = cfg.reward, cfg.control_dt
    # one control step from rest drifts by well under a millimetre: the penalty is ~0 and ~w_pos * 0.1
    assert reward[0].item() == pytest.approx(w.alive * dt, rel=2e-3)
    assert reward[1].item() == pytest.approx(w.alive * math.exp(-w.position * 0.1) * dt, rel=2e-2)
