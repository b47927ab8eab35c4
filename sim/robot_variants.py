"""Robots as data: where a robot's profile and its variant of a task are found, and what a variant holds.

A robot of an existing task class is two YAML files, no Python:

- its profile, ``<dir>/<name>.yaml`` (``launch/robots/a1.yaml``: ``articulated:`` for arms and legged robots,
  ``quadrotor:`` for quadrotors);
- its variant of each task it runs, ``<dir>/../tasks/<task>/<name>.yaml`` (``launch/tasks/legged-walk/a1.yaml``)::

      robot: a1                       # the profile: its name, or a path relative to this file
      env:                            # dotted-path overrides of the task's env config
        reward.diagonal_pairs: [[0, 3], [1, 2]]
        command.lin_vel_x_m_s: [-0.5, 1.0]
      train:                          # dotted-path overrides of the training config (TrainCfg)
        num_envs: 2048
        ppo.entropy_coef: 0.01

Lookup (one rule for the robots of this repository and any other): a bare name (``go2``) is searched as
``<dir>/<name>.yaml`` in the directories of ``$SIM2REAL_ROBOT_PATH`` (``os.pathsep``-separated), then in
``launch/robots``; a path to a YAML file is that file. The variant is always ``<robot dir>/../tasks/<task>/<robot
file stem>.yaml``. Torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROBOTS_DIR = Path(__file__).resolve().parents[1] / "launch" / "robots"
ROBOT_PATH_ENV = "SIM2REAL_ROBOT_PATH"
VARIANT_KEYS = ("robot", "env", "train")


class RobotVariantError(ValueError):
    """A robot or its variant of a task cannot be found or read; the message says where it looked and what to do."""


@dataclass(frozen=True)
class RobotVariant:
    """A robot's variant of a task: its profile file, the variant file and the variant's overrides."""

    task: str
    robot: str  # the robot's name: the profile file's stem
    robot_class: str  # quadrotor | legged | arm, from the profile
    profile_path: Path
    variant_path: Path
    env: dict[str, Any] = field(default_factory=dict)  # dotted path -> value, applied to the env config
    train: dict[str, Any] = field(default_factory=dict)  # dotted path -> value, applied to the TrainCfg


def robot_dirs() -> list[Path]:
    """Where bare robot names are looked up: ``$SIM2REAL_ROBOT_PATH`` entries first, then ``launch/robots``."""
    extra = [Path(p).expanduser() for p in os.environ.get(ROBOT_PATH_ENV, "").split(os.pathsep) if p.strip()]
    return [*extra, ROBOTS_DIR]


def _is_path(robot: str) -> bool:
    return "/" in robot or os.sep in robot or robot.endswith((".yaml", ".yml"))


def find_robot(robot: str | Path) -> Path:
    """The profile file of ``robot`` (a bare name or a path to a YAML file), resolved; raises
    :class:`RobotVariantError` naming the directories searched and the robots found there."""
    text = str(robot).strip()
    if not text:
        raise RobotVariantError("--robot: expected a robot name (e.g. a1) or a path to a robot YAML, found ''")
    if _is_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise RobotVariantError(
                f"robot file {str(path)!r} does not exist; pass the path of a robot profile YAML or a robot name "
                f"({', '.join(known_robots())})"
            )
        return path.resolve()
    for directory in robot_dirs():
        path = directory / f"{text}.yaml"
        if path.is_file():
            return path.resolve()
    raise RobotVariantError(
        f"unknown robot {text!r}: no {text}.yaml in {[str(d) for d in robot_dirs()]}; known robots: "
        f"{', '.join(known_robots())}. Pass a path to its profile YAML, or add its directory to ${ROBOT_PATH_ENV}"
    )


def known_robots() -> list[str]:
    names = {p.stem for d in robot_dirs() if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def _read_yaml(path: Path, what: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RobotVariantError(f"{what} {str(path)!r} is not valid YAML: {exc}") from None


def robot_class_of(profile_path: Path) -> str:
    """quadrotor | legged | arm, read from the profile (``quadrotor:`` or ``articulated: {robot_class: ...}``)."""
    document = _read_yaml(profile_path, "robot profile")
    if isinstance(document, Mapping) and isinstance(document.get("articulated"), Mapping):
        return str(document["articulated"].get("robot_class"))
    if isinstance(document, Mapping) and isinstance(document.get("quadrotor"), Mapping):
        return "quadrotor"
    raise RobotVariantError(
        f"robot profile {str(profile_path)!r}: expected a top-level 'articulated:' (arm, legged) or 'quadrotor:' "
        "section; see launch/robots/a1.yaml or crazyflie2.yaml"
    )


def variant_path(profile_path: Path, task: str) -> Path:
    """``<robot dir>/../tasks/<task>/<robot file stem>.yaml``."""
    return profile_path.parent.parent / "tasks" / task / f"{profile_path.stem}.yaml"


def load_variant(task: str, robot: str | Path) -> RobotVariant:
    """Find ``robot``'s profile and its variant of ``task`` and read the variant; raises :class:`RobotVariantError`
    when either is missing or the variant is malformed. The overrides are checked against the configs later, when
    applied (``sim.tasks.task_cfg``, ``policies.train_cfg.train_cfg``)."""
    profile = find_robot(robot)
    path = variant_path(profile, task)
    if not path.is_file():
        raise RobotVariantError(
            f"robot {profile.stem!r} has no variant of task {task!r}: expected {str(path)!r} (the rule: "
            f"<robot dir>/../tasks/<task>/<robot>.yaml beside {str(profile)!r}). Write it with 'robot: "
            f"{profile.stem}' and 'env:' / 'train:' overrides (may be empty); see docs/adding_a_robot.md"
        )
    document = _read_yaml(path, "robot variant")
    if not isinstance(document, Mapping):
        raise RobotVariantError(
            f"robot variant {str(path)!r}: expected a mapping with {VARIANT_KEYS}, found {document!r}"
        )
    unknown = sorted(set(map(str, document)) - set(VARIANT_KEYS))
    if unknown:
        raise RobotVariantError(f"robot variant {str(path)!r}: unknown section(s) {unknown}; allowed: {VARIANT_KEYS}")
    _check_robot_field(path, document.get("robot"), profile)
    sections = {}
    for key in ("env", "train"):
        value = document.get(key) or {}
        if not isinstance(value, Mapping):
            raise RobotVariantError(
                f"robot variant {str(path)!r}: '{key}:' expected a mapping of dotted field names to values "
                f"(e.g. reward.diagonal_pairs: [[0, 3], [1, 2]]), found {value!r}"
            )
        sections[key] = dict(value)
    return RobotVariant(task, profile.stem, robot_class_of(profile), profile, path, sections["env"], sections["train"])


def _check_robot_field(path: Path, value: Any, profile: Path) -> None:
    """The variant's ``robot:`` names the profile it was found for: its name, or a path relative to the variant."""
    if not isinstance(value, str) or not value.strip():
        raise RobotVariantError(
            f"robot variant {str(path)!r}: expected 'robot: {profile.stem}' (the profile's name or a path relative to "
            f"the variant), found {value!r}"
        )
    named = (path.parent / value).expanduser().resolve() if _is_path(value) else None
    if (named is None and value != profile.stem) or (named is not None and named != profile):
        raise RobotVariantError(
            f"robot variant {str(path)!r} says 'robot: {value}', but it was found for the profile {str(profile)!r}; "
            f"write 'robot: {profile.stem}' (a variant belongs to the profile of the same name)"
        )
