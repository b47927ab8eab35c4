"""Collective thrust + body rate (ctbr) policies through the runtime: the safety layer limits thrust and rates,
its fallback commands thrust and rates (the autopilot's rate loop does the rest). Flights over DDS with a trained
ctbr policy, through `sim2real deploy`: tests/drivers/test_ctbr_deploy_e2e.py."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from deploy.safety import CommandMode, SafetyLayer, SafetyState, StateSample, crazyflie_profile
from deploy.safety.fallback import QuadrotorBehaviour
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv


def ctbr_profile():
    p = crazyflie_profile()
    return replace(p, quadrotor=replace(p.quadrotor, interface="ctbr"))


def test_ctbr_limits_thrust_range_rates_and_slew():
    profile = ctbr_profile()
    body = profile.quadrotor.body
    low, high = profile.command_low(), profile.command_high()
    assert low[0] == pytest.approx(4 * body.kf_n_per_rpm2 * body.min_rpm**2)
    assert high[0] == pytest.approx(4 * body.kf_n_per_rpm2 * body.max_rpm**2)
    np.testing.assert_allclose(high[1:], [12.0, 12.0, 12.0])
    np.testing.assert_allclose(low[1:], [-12.0, -12.0, -12.0])
    layer = SafetyLayer(profile)
    assert layer.behaviour.arming_command(None, low).values.tolist() == [low[0], 0.0, 0.0, 0.0]
    # in ACTIVE, after a policy command: rates beyond 12 rad/s are clamped, jumps are slewed at the set rates
    layer.machine.state = SafetyState.ACTIVE  # the command limiter alone, without a state machine run
    layer.last_command = replace(layer.last_command, values=np.array([0.3, 0.0, 0.0, 0.0]), mode=CommandMode.POLICY)
    out = layer._command(np.array([0.3, 50.0, -50.0, 0.0]), 1.0, 1.0)
    assert out.values[1:].tolist() == [12.0, -12.0, 0.0]
    layer.last_command = replace(layer.last_command, values=np.array([0.3, 0.0, 0.0, 0.0]), mode=CommandMode.POLICY)
    out = layer._command(np.array([0.59, 10.0, -10.0, 0.0]), 1.0, 0.005)
    max_rate = profile.command_max_rate_per_s()
    np.testing.assert_allclose(out.values, [0.3 + max_rate[0] * 0.005, 6.0, -6.0, 0.0])


def _ctbr_env(start_height_m: float) -> QuadrotorEnv:
    cfg = QuadrotorTaskCfg(action_interface="ctbr")
    cfg.episode_s, cfg.init = 1e6, InitCfg(0.0, 0.0, 0.0, 0.0)
    cfg.termination.floor_m, cfg.termination.position_m = -math.inf, 1e3
    env = QuadrotorEnv(cfg, 1, seed=3, compile=False)
    env.set_state_rows("position", torch.tensor([[0.3, -0.2, start_height_m]]))
    env.set_state_rows("velocity", torch.tensor([[0.4, 0.3, 0.0]]))
    return env


def test_ctbr_fallback_lands_the_simulated_vehicle():
    """The layer's fallback in ctbr, applied through the simulator's own rate loop: it brakes a drifting vehicle,
    holds, descends and turns the motors off on the floor, never tilting past 25 degrees."""
    profile = ctbr_profile()
    behaviour = QuadrotorBehaviour(profile)
    env = _ctbr_env(1.0)
    spec = env.action_spec
    dt = env.cfg.control_dt
    state = lambda t: StateSample(  # noqa: E731
        t,
        env.state_rows("position")[0].numpy(),
        env.state_rows("velocity")[0].numpy(),
        env.state_rows("quaternion")[0].numpy(),
        env.state_rows("angular_velocity")[0].numpy(),
        0.9,
    )
    behaviour.start_fallback(0.0, state(0.0), True, np.zeros(4))
    max_tilt, done_at, t = 0.0, None, 0.0
    for k in range(1, 2000):
        t = k * dt
        out = behaviour.fallback_command(t, state(t), True, np.zeros(4))
        if out.done:
            done_at = t
            break
        assert out.values.shape == (4,) and abs(out.values[3]) == 0.0  # yaw rate setpoint 0
        env.step(spec.to_normalized(torch.as_tensor(out.values, dtype=torch.float32))[None])
        q = env.state_rows("quaternion")[0].numpy()
        max_tilt = max(max_tilt, math.degrees(math.acos(min(1.0, 1 - 2 * (q[1] ** 2 + q[2] ** 2)))))
    p = env.state_rows("position")[0].numpy()
    assert done_at is not None, f"no landing after {t:.1f} s; at {p}"
    assert p[2] <= profile.quadrotor.fallback.ground_z_m + profile.quadrotor.fallback.landed_height_m + 0.01
    assert np.hypot(p[0] - 0.3, p[1] + 0.2) < 0.4, f"drifted to {p[:2]}"
    assert max_tilt < 25.0
