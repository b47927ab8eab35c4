"""Where the native step's time goes: the kernel's own pass timers and the step's byte count (sim_throughput.py)."""

from __future__ import annotations

import time

import pytest
import torch

from sim.quadrotor.config import QuadrotorTaskCfg, default_randomization
from sim.quadrotor.env import QuadrotorEnv
from sim.quadrotor.native import load_kernel

pytestmark = pytest.mark.skipif(load_kernel() is None, reason="the native kernel could not be built (no g++?)")


def hover_env(n: int, history: int = 3) -> QuadrotorEnv:
    cfg = QuadrotorTaskCfg(task="hover", randomization=default_randomization(), observation_history=history)
    env = QuadrotorEnv(cfg, n, seed=3, native=True)
    assert env.backend == "native"
    return env


def test_pass_timers_add_up_to_part_of_the_steps_wall_time():
    """Both passes are timed in seconds, every step adds to them, and together they fit inside the wall time of the
    steps that contain them; observing alone (quad_observe) is not a step and adds nothing."""
    n = 4096
    env = hover_env(n)
    g = torch.Generator().manual_seed(0)
    actions = [2 * torch.rand(n, 4, generator=g) - 1 for _ in range(4)]
    env.step(actions[0])
    before = env._native.pass_times()
    t0 = time.perf_counter()
    for k in range(20):
        env.step(actions[k % 4])
    wall = time.perf_counter() - t0
    physics, observe = (b - a for a, b in zip(before, env._native.pass_times()))
    assert physics > 0 and observe > 0
    assert physics + observe <= wall  # seconds, not ms or ns: a wrong unit is 1000x off
    assert physics + observe > 0.2 * wall  # the kernel is most of a 4096-env step (~70 % measured)
    after_steps = env._native.pass_times()
    env._native.observe(int(env.counter))
    assert env._native.pass_times() == after_steps


@pytest.mark.parametrize("history, expected", [(3, 1008), (0, 908)])
def test_bytes_per_env_counts_each_buffer_once(history, expected):
    """Hand count for the default hover env (action delay line of 3 slots: latency up to 1 step plus the substep
    latency's previous command; observation delay line of 2: latency up to 1 step; 25 base rows, 22 critic rows, 1
    interval group), in floats: physics 2 x 17 state + 33 parameter rows + 4 action + 2 x 4 delay line + 4 clean
    action + 2 x 2 episode length (int64) + 2 return + 1 reward = 90; observation 17 state + 18 noise + 6
    noise-parameter rows + 4 newest action + 1 x 18 delay line + 18 sensed + 2 episode length + 2 x 3 integral = 89;
    outputs 25 base (+ 25 mirror with a history) + 22 critic; then 4 flag bytes: (90 + 89 + 72) x 4 + 4 = 1008,
    without the history's mirror 908."""
    env = hover_env(64, history)
    assert env._native.bytes_per_env() == expected
