"""The envs implement rsl_rl's VecEnv interface without subclassing it (sim/env.py says why): every registered
task's env class has VecEnv's abstract methods and attributes and returns TensorDict observations; the SIL robot's
envs (quadrotor and articulated) return plain dicts, and their processes never import tensordict (or torch._dynamo, which tensordict imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from sim.tasks import TASKS, make_env, registration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_env_has_the_vec_env_interface_and_returns_tensordicts(task):
    cls = registration(task).env_class()
    for name in VecEnv.__abstractmethods__:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks VecEnv.{name}"
    env = make_env(task, 2)
    for name in VecEnv.__annotations__:
        assert hasattr(env, name), f"{cls.__name__} lacks the VecEnv attribute {name}"
    assert isinstance(env.get_observations(), TensorDict)
    obs, reward, done, extras = env.step(torch.zeros(2, env.num_actions))
    assert isinstance(obs, TensorDict) and reward.shape == done.shape == (2,) and "time_outs" in extras


def test_the_sil_robots_envs_step_without_tensordict_in_their_process():
    code = """
import sys, torch
import drivers.sim_robot
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv
env = QuadrotorEnv(QuadrotorTaskCfg(), 1, seed=0, tensordict_observations=False)
obs, *_ = env.step(torch.zeros(1, 4))
assert type(obs) is dict and sorted(obs) == ["critic", "policy", "privileged"], obs
import drivers.sim_articulated
from sim.tasks import make_env
legged = make_env("legged-walk", 1, tensordict_observations=False)
obs, *_ = legged.step(torch.zeros(1, legged.num_actions))
assert type(obs) is dict and "policy" in obs, obs
loaded = [m for m in sys.modules if m == "tensordict" or m.startswith(("tensordict.", "torch._dynamo"))]
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
