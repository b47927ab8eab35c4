"""The runtime builds exactly the observation the simulator built for the same state (no second layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy.observation import Context, ObservationBuilder
from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsSpecError, ObsTerm, with_history
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv
from sim.randomization import ParamDistribution, RandomizationSpec

QUIET = RandomizationSpec({"obs_noise_scale": ParamDistribution("constant", mean=0.0)})


@pytest.mark.parametrize("task", ["hover", "track"])
def test_runtime_observation_equals_simulator_observation(task):
    """Fed the same states step after step, the runtime builds the simulator's vectors, including the
    stateful position_error_integral and observation_history (which both sides advance once per control step)."""
    env = QuadrotorEnv(QuadrotorTaskCfg(task=task, randomization=QUIET), 64, seed=2, compile=False)
    assert "position_error_integral" in env.obs_spec.names and env.obs_spec.names[-1] == "observation_history"
    g = torch.Generator().manual_seed(0)
    builders = [ObservationBuilder(env.obs_spec, env.cfg.control_dt) for _ in range(64)]
    obs, _ = env.reset()
    for step in range(8):  # somewhere mid-flight, with a non-trivial last action, reference and integral
        if step:
            obs, _, done, _ = env.step(0.3 * (2 * torch.rand(64, 4, generator=g) - 1))
            assert not done.any()
        ref_pos, ref_vel = env.reference_now()
        pos, quat = env.state_rows("position"), env.state_rows("quaternion")
        vel, ang = env.state_rows("velocity"), env.state_rows("angular_velocity")
        last = obs["policy"][:, env.obs_spec.slice("last_action")]
        for i, builder in enumerate(builders):
            state = RobotState(0.0, pos[i].numpy(), quat[i].numpy(), vel[i].numpy(), ang[i].numpy())
            built = builder.build(state, Context(ref_pos[i].numpy(), ref_vel[i].numpy(), last[i].numpy()))
            np.testing.assert_allclose(built, obs["policy"][i].numpy(), atol=1e-6, rtol=0)
    integral = obs["policy"][:, env.obs_spec.slice("position_error_integral")]
    assert integral.abs().max() > 1e-3  # the integral did move: the comparison above covers it
    d = env.base_obs_spec.dim
    assert (obs["policy"][:, :d] - obs["policy"][:, d : 2 * d]).abs().max() > 1e-3  # and so did the history


def test_history_term_starts_each_flight_with_copies_of_its_first_observation():
    base = ObsSpec((ObsTerm("position_error", 3), ObsTerm("last_action", 4)))
    builder = ObservationBuilder(with_history(base, 2))
    ctx = Context(np.array([0.0, 0.0, 1.0]), np.zeros(3), np.zeros(4))

    def state(x: float) -> RobotState:
        return RobotState(0.0, np.array([x, 0.0, 1.0]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))

    xs = [builder.build(state(x), ctx)[::7] for x in (0.1, 0.2, 0.3, 0.4)]  # the x error of each 7-column block
    np.testing.assert_allclose(xs, [[0.1, 0.1, 0.1], [0.2, 0.1, 0.1], [0.3, 0.2, 0.1], [0.4, 0.3, 0.2]], atol=1e-7)
    builder.reset()
    np.testing.assert_allclose(builder.build(state(0.5), ctx)[::7], [0.5, 0.5, 0.5], atol=1e-7)


def test_integral_term_needs_the_control_period_and_restarts_on_reset():
    spec = ObsSpec((ObsTerm("position_error", 3), ObsTerm("position_error_integral", 3)))
    with pytest.raises(ValueError, match="control_dt"):
        ObservationBuilder(spec)
    builder = ObservationBuilder(spec, 0.01)
    state = RobotState(0.0, np.array([0.2, 0.0, 1.0]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))
    ctx = Context(np.array([0.0, 0.0, 1.0]), np.zeros(3), np.zeros(4))
    for _ in range(3):
        out = builder.build(state, ctx)
    np.testing.assert_allclose(out[3:], [0.006, 0.0, 0.0], atol=1e-7)  # 3 x 0.2 m x 0.01 s
    for _ in range(1000):  # anti-windup: clamped at the limit
        out = builder.build(state, ctx)
    assert out[3] == pytest.approx(0.5)
    builder.reset()
    np.testing.assert_allclose(builder.build(state, ctx)[3:], [0.002, 0.0, 0.0], atol=1e-7)


def test_terms_the_robot_cannot_measure_are_refused_before_arming():
    spec = ObsSpec((ObsTerm("position_error", 3), ObsTerm("rotor_speed", 4)))
    with pytest.raises(ObsSpecError, match=r"needs terms \['rotor_speed'\]"):
        ObservationBuilder(spec)
