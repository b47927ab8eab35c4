"""The task registry: name -> config factory and env class. Tests parametrize over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TaskEntry:
    make_cfg: Callable[[], Any]  # returns the task's typed config
    make_env: Callable[..., Any]  # (cfg, num_envs, device, generator, seed) -> env
    description: str


def _quadrotor(task: str) -> TaskEntry:
    from sim.quadrotor.config import QuadrotorTaskCfg
    from sim.quadrotor.env import QuadrotorEnv

    descriptions = {
        "hover": "stabilize and hold a point from random, possibly tumbling, initial states",
        "track": "follow a moving reference: figure-eight and random smooth trajectories",
    }
    return TaskEntry(lambda: QuadrotorTaskCfg(task=task), QuadrotorEnv, descriptions[task])


def _arm_reach() -> TaskEntry:
    from sim.articulated.tasks.arm_reach import ArmReachCfg, ArmReachEnv

    return TaskEntry(ArmReachCfg, ArmReachEnv, "arm (Franka Panda): reach random end-effector poses with joint targets")


def _legged_walk() -> TaskEntry:
    from sim.articulated.tasks.legged_walk import LeggedWalkCfg, LeggedWalkEnv

    return TaskEntry(
        LeggedWalkCfg, LeggedWalkEnv, "quadruped (Unitree A1): track commanded base velocity on flat ground"
    )


TASKS: dict[str, Callable[[], TaskEntry]] = {
    "quadrotor-hover": lambda: _quadrotor("hover"),
    "quadrotor-track": lambda: _quadrotor("track"),
    "arm-reach": _arm_reach,
    "legged-walk": _legged_walk,
}


def task_entry(name: str) -> TaskEntry:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; registered tasks: {sorted(TASKS)}")
    return TASKS[name]()


def make_env(
    name: str,
    num_envs: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    cfg: Any = None,
    **env_kwargs: Any,
):
    """Build the env of task ``name`` (with its default config unless ``cfg`` is given)."""
    entry = task_entry(name)
    return entry.make_env(
        cfg if cfg is not None else entry.make_cfg(), num_envs, device=device, seed=seed, **env_kwargs
    )
