"""Task registrations: one per task, written beside the task (``sim/articulated/tasks/__init__.py`` for the arm and
legged tasks, ``sim/tasks.py`` for the quadrotor ones), in the manner of Isaac Lab's ``gym.register`` with entry
points.

A registration names everything the layers need about a task: its typed env config and env class, the class of
robot it drives (quadrotor | legged | arm), its default robot, a description, the metrics that evaluate it and its
training config. Classes and the training config are entry-point strings (``"module:attribute"``), imported only
when used: this module and the registrations import without torch (the deploy runtime reads them on the robot
computer), and sim never imports policies. ``sim.tasks.TASKS``, ``policies.train_cfg.TRAIN_CFGS``, the articulated
tasks of ``policies.evaluate`` and ``deploy.cli.SIL_TASKS`` are all derived from the registrations.

Robots are data: a robot of an existing task class is a profile (``launch/robots/<name>.yaml``) and a variant
(``launch/tasks/<task>/<name>.yaml``), no registration (``sim.robot_variants``, docs/adding_a_robot.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ROBOT_CLASSES = ("quadrotor", "legged", "arm")
#: which rollout metrics evaluate a task: quadrotor (policies.rollout: position error, success and crash rates,
#: beside the PID), velocity_tracking (sim.articulated.rollout: legged velocity and yaw-rate errors, falls),
#: reaching (sim.articulated.rollout: end-effector position and orientation errors, success rate)
METRICS = ("quadrotor", "velocity_tracking", "reaching")


class RegistrationError(ValueError):
    """A task registration is malformed or names a task twice; the message names the task and the field."""


def load_entry_point(entry_point: str) -> Any:
    """The attribute named by ``"package.module:attribute"``."""
    module, sep, attr = entry_point.partition(":")
    if not sep or not module or not attr:
        raise RegistrationError(f"entry point {entry_point!r}: expected 'package.module:attribute'")
    try:
        return getattr(importlib.import_module(module), attr)
    except AttributeError:
        raise RegistrationError(f"entry point {entry_point!r}: module {module!r} has no attribute {attr!r}") from None


@dataclass(frozen=True)
class TaskRegistration:
    """One task. ``cfg``, ``env`` and ``train_cfg`` are entry points (``"module:attribute"``): the config class
    (called with ``cfg_kwargs``), the env class (``(cfg, num_envs, device=, seed=, **kwargs)``) and the function
    ``(env_cfg) -> TrainCfg`` of the training config. ``default_robot``: a robot name (``launch/robots/<name>.yaml``
    with its variant ``launch/tasks/<task>/<name>.yaml``); None: the config's own built-in vehicle."""

    name: str
    cfg: str
    env: str
    robot_class: str
    default_robot: str | None
    description: str
    metrics: str
    train_cfg: str
    cfg_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        where = f"task registration {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise RegistrationError(f"{where}: expected a task name like 'legged-walk'")
        if self.robot_class not in ROBOT_CLASSES:
            raise RegistrationError(f"{where}: robot_class expected one of {ROBOT_CLASSES}, found {self.robot_class!r}")
        if self.metrics not in METRICS:
            raise RegistrationError(f"{where}: metrics expected one of {METRICS}, found {self.metrics!r}")
        for field_name in ("cfg", "env", "train_cfg"):
            module, sep, attr = getattr(self, field_name).partition(":")
            if not sep or not module or not attr:
                raise RegistrationError(
                    f"{where}: {field_name} expected an entry point 'package.module:attribute', "
                    f"found {getattr(self, field_name)!r}"
                )

    def cfg_class(self) -> type:
        return load_entry_point(self.cfg)

    def env_class(self) -> Callable[..., Any]:
        return load_entry_point(self.env)

    def train_cfg_factory(self) -> Callable[..., Any]:
        return load_entry_point(self.train_cfg)

    def new_cfg(self) -> Any:
        """The task's config class with its built-in defaults (before a robot and its variant are applied)."""
        return self.cfg_class()(**dict(self.cfg_kwargs))


REGISTRY: dict[str, TaskRegistration] = {}


def register(registration: TaskRegistration) -> TaskRegistration:
    """Add a task; a name registered twice is an error (two modules claiming one task)."""
    if registration.name in REGISTRY and REGISTRY[registration.name] != registration:
        raise RegistrationError(f"task {registration.name!r} is registered twice: {REGISTRY[registration.name]}")
    REGISTRY[registration.name] = registration
    return registration
