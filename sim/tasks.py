"""The task registry: name -> registration (``sim.registry``), and the typed env config of a task for a robot.

The quadrotor tasks are registered here, beside ``sim/quadrotor``; the arm and legged tasks in
``sim/articulated/tasks/__init__.py``. :data:`TASKS` is derived from the registrations; tests parametrize over it.
:func:`task_cfg` builds a task's config for a robot: the robot's profile and its variant's ``env:`` overrides
(``sim.robot_variants``). Imports without torch (the deploy runtime derives its SIL tasks from here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sim.articulated.tasks  # noqa: F401  (registers arm-reach, legged-walk)
from sim.overrides import OverrideError, apply_values
from sim.quadrotor.config import TASKS as QUADROTOR_TASKS
from sim.registry import REGISTRY, TaskRegistration, register
from sim.robot_variants import RobotVariant, RobotVariantError, find_robot, load_variant, robot_class_of

if TYPE_CHECKING:
    import torch

for _task, _quadrotor_task in QUADROTOR_TASKS.items():  # declared in sim/quadrotor/hover.py, track.py
    register(
        TaskRegistration(
            name=f"quadrotor-{_task}",
            cfg="sim.quadrotor.config:QuadrotorTaskCfg",
            env="sim.quadrotor.env:QuadrotorEnv",
            robot_class="quadrotor",
            default_robot=None,  # the config's built-in Crazyflie 2 (QuadrotorParams' defaults)
            description=_quadrotor_task.description,
            metrics="quadrotor",
            train_cfg=f"policies.train_cfg:quadrotor_{_task}",
            cfg_kwargs=(("task", _task),),
        )
    )

TASKS: dict[str, TaskRegistration] = dict(REGISTRY)


@dataclass(frozen=True)
class TaskEntry:
    make_cfg: Callable[[], Any]  # returns the task's typed config (default robot)
    make_env: Callable[..., Any]  # (cfg, num_envs, device, generator, seed) -> env
    description: str


def registration(name: str) -> TaskRegistration:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; registered tasks: {sorted(TASKS)}")
    return TASKS[name]


def task_entry(name: str) -> TaskEntry:
    reg = registration(name)
    return TaskEntry(lambda: task_cfg(name), reg.env_class(), reg.description)


def tasks_for(robot_class: str) -> list[str]:
    """The registered tasks that drive robots of ``robot_class`` (quadrotor | legged | arm), in registration order."""
    return [name for name, reg in TASKS.items() if reg.robot_class == robot_class]


def robot_variant(task: str, robot: str | Path | None = None) -> RobotVariant | None:
    """``robot``'s variant of ``task`` (None: the task's default robot); None for a task whose default robot is its
    config's built-in one. Raises :class:`RobotVariantError` for a robot of another class than the task drives."""
    reg = registration(task)
    robot = robot if robot is not None else reg.default_robot
    if robot is None:
        return None
    profile = find_robot(robot)
    robot_class = robot_class_of(profile)
    if robot_class != reg.robot_class:  # before looking for a variant: a franka has no legged-walk variant to find
        raise RobotVariantError(
            f"robot {profile.stem!r} ({profile}) has robot_class {robot_class!r}; task {task!r} needs robot_class "
            f"{reg.robot_class!r}. Tasks for {robot_class} robots: {tasks_for(robot_class) or 'none'}"
        )
    return load_variant(task, profile)


def load_robot_profile(variant: RobotVariant) -> Any:
    """The variant's profile as the task configs hold it (``cfg.params``)."""
    if variant.robot_class == "quadrotor":
        from sim.quadrotor.params import QuadrotorParams

        return QuadrotorParams.from_yaml(variant.profile_path)
    from sim.articulated.profile import load_profile

    return load_profile(variant.profile_path)


def task_cfg(task: str, robot: str | Path | None = None) -> Any:
    """The typed env config of ``task`` for ``robot`` (a name, a path to a profile YAML, or None for the task's
    default robot): the robot's profile as ``params`` and its variant's ``env:`` overrides applied.

    Raises ``KeyError`` for an unknown task, :class:`~sim.robot_variants.RobotVariantError` for a robot or variant
    that cannot be found or does not fit the task, :class:`~sim.overrides.OverrideError` for an override naming no
    field of the config, and the profile's own error for a malformed profile."""
    return cfg_for_variant(task, robot_variant(task, robot))


def cfg_for_variant(task: str, variant: RobotVariant | None) -> Any:
    """The config of ``task`` for a variant from :func:`robot_variant` (None: the config's built-in defaults)."""
    cfg = registration(task).new_cfg()
    if variant is None:
        return cfg
    cfg.params = load_robot_profile(variant)
    try:
        apply_values(cfg, variant.env)
    except OverrideError as exc:
        raise OverrideError(f"robot variant {str(variant.variant_path)!r}, env: {exc}") from None
    return cfg


def make_env(
    name: str,
    num_envs: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    cfg: Any = None,
    **env_kwargs: Any,
):
    """Build the env of task ``name`` (with its default robot's config unless ``cfg`` is given)."""
    reg = registration(name)
    return reg.env_class()(cfg if cfg is not None else task_cfg(name), num_envs, device=device, seed=seed, **env_kwargs)
