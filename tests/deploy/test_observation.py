"""The runtime builds exactly the observation the simulator built for the same state (no second layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy.observation import Context, ObservationBuilder
from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsSpecError, ObsTerm
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv
from sim.randomization import ParamDistribution, RandomizationSpec

QUIET = RandomizationSpec({"obs_noise_scale": ParamDistribution("constant", mean=0.0)})


@pytest.mark.parametrize("task", ["hover", "track"])
def test_runtime_observation_equals_simulator_observation(task):
    env = QuadrotorEnv(QuadrotorTaskCfg(task=task, randomization=QUIET), 64, seed=2, compile=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(7):  # somewhere mid-flight, with a non-trivial last action and reference
        obs, *_ = env.step(0.3 * (2 * torch.rand(64, 4, generator=g) - 1))
    builder = ObservationBuilder(env.obs_spec)
    ref_pos, ref_vel = env.reference_now()
    pos, quat = env.state_rows("position"), env.state_rows("quaternion")
    vel, ang = env.state_rows("velocity"), env.state_rows("angular_velocity")
    last = obs["policy"][:, env.obs_spec.slice("last_action")]
    for i in range(64):
        state = RobotState(0.0, pos[i].numpy(), quat[i].numpy(), vel[i].numpy(), ang[i].numpy())
        built = builder.build(state, Context(ref_pos[i].numpy(), ref_vel[i].numpy(), last[i].numpy()))
        np.testing.assert_allclose(built, obs["policy"][i].numpy(), atol=1e-6, rtol=0)


def test_terms_the_robot_cannot_measure_are_refused_before_arming():
    spec = ObsSpec((ObsTerm("position_error", 3), ObsTerm("rotor_speed", 4)))
    with pytest.raises(ObsSpecError, match=r"needs terms \['rotor_speed'\]"):
        ObservationBuilder(spec)
