"""What the ros2_control bridge says to a controller and hears from ``/joint_states``: its options and the pure
conversions (no DDS, no simulator; torch-free).

Controllers (ros2_controllers, Humble/Jazzy):

    forward_command_controller   subscribes ``/<controller>/commands``, std_msgs/Float64MultiArray: ``data`` holds
      (kind: forward_command)      one value per joint of the controller's ``joints`` parameter, in that order
                                   (position interface here: rad); the last command holds until the next one.
    joint_trajectory_controller  subscribes ``/<controller>/joint_trajectory``, trajectory_msgs/JointTrajectory:
      (kind: joint_trajectory)     ``joint_names`` and one point (positions, rad) reached ``horizon_s`` after the
                                   trajectory starts; header stamp 0 = start at once; a new trajectory replaces
                                   the one in progress; the last point holds.
    joint_state_broadcaster      publishes ``/joint_states``, sensor_msgs/JointState (every joint of the
                                   hardware, any order; reliable QoS).

A command leaves the bridge only when it names every joint of the controller, no other joint, and finite
positions: anything else is refused with an error that says what was expected and what came (never a partial
or reordered command). A JointState that lacks a controller joint or has a non-finite position or velocity is
refused the same way (the runtime sees a stale state and its watchdog acts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from deploy.msgs import JointCommand, JointState, MultiArrayDimension, MultiArrayLayout, make_header
from deploy.msgs.control import Float64MultiArray, JointTrajectory, JointTrajectoryPoint, duration
from deploy.transport import resolve_topic_name

KINDS = ("forward_command", "joint_trajectory")


class BridgeConfigError(ValueError):
    """The bridge's options are wrong; the message says which key, what was expected and what was found."""


class CommandRefused(ValueError):
    """A runtime command that cannot become a controller command as it is."""


class StateRefused(ValueError):
    """A JointState the runtime must not see as the robot's state."""


@dataclass(frozen=True)
class ControllerConfig:
    """One ros2_control controller. ``name``: the controller's name (its topics live under it); ``kind``:
    ``forward_command`` | ``joint_trajectory``; ``joints``: the controller's ``joints`` parameter, in its order
    (the robot profile's joint names); ``horizon_s``: a trajectory point's time_from_start, s;
    ``namespace``: the controller manager's ROS 2 namespace (``""``: the root); ``joint_states_topic``: where
    the joint_state_broadcaster publishes (relative names resolve against ``namespace``);
    ``command_timeout_s``: the runtime's commands older than this -> the bridge commands a hold at the measured
    position once."""

    name: str
    kind: str
    joints: tuple[str, ...]
    horizon_s: float = 0.05
    namespace: str = ""
    joint_states_topic: str = "joint_states"
    command_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name.strip("/"):
            raise BridgeConfigError(f"ros2_control.controller: expected a controller name, got {self.name!r}")
        if self.kind not in KINDS:
            raise BridgeConfigError(f"ros2_control.kind: expected one of {KINDS}, got {self.kind!r}")
        joints = tuple(self.joints)
        if not joints or not all(isinstance(j, str) and j for j in joints) or len(set(joints)) != len(joints):
            raise BridgeConfigError(f"ros2_control.joints: expected distinct joint names, got {list(joints)}")
        object.__setattr__(self, "joints", joints)
        for key in ("horizon_s", "command_timeout_s"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise BridgeConfigError(f"ros2_control.{key}: expected seconds > 0, got {value!r}")

    @property
    def command_topic(self) -> str:
        leaf = "commands" if self.kind == "forward_command" else "joint_trajectory"
        return resolve_topic_name(f"{self.name.strip('/')}/{leaf}", self.namespace or "/")

    @property
    def state_topic(self) -> str:
        return resolve_topic_name(self.joint_states_topic, self.namespace or "/")


FIELDS = {"controller": "name", "kind": "kind", "joints": "joints", "horizon_s": "horizon_s"}
FIELDS |= {"namespace": "namespace", "joint_states_topic": "joint_states_topic"}
FIELDS |= {"command_timeout_s": "command_timeout_s"}


def controller_config(section: Mapping[str, Any]) -> ControllerConfig:
    """From the ``ros2_control:`` section of the bridge's options (keys: FIELDS); unknown keys are errors."""
    if not isinstance(section, Mapping):
        raise BridgeConfigError(f"ros2_control: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(FIELDS))
    if unknown:
        raise BridgeConfigError(f"ros2_control: unknown keys {unknown}; expected some of {sorted(FIELDS)}")
    missing = [k for k in ("controller", "kind", "joints") if k not in section]
    if missing:
        raise BridgeConfigError(f"ros2_control: missing {missing} (the controller's name, kind and joints)")
    return ControllerConfig(**{FIELDS[k]: v for k, v in section.items()})


def load_bridge_config(path: str | Path) -> tuple[ControllerConfig, dict[str, Any]]:
    """(controller, the rest of the file) from a YAML file with a ``ros2_control:`` section."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if "ros2_control" not in data:
        raise BridgeConfigError(f"{path}: expected a 'ros2_control:' section (controller, kind, joints)")
    return controller_config(data["ros2_control"]), {k: v for k, v in data.items() if k != "ros2_control"}


class CommandConverter:
    """sim2real_msgs/JointCommand (joints by name) -> the controller's message (its joint order)."""

    def __init__(self, config: ControllerConfig):
        self.config = config
        self._index: dict[tuple[str, ...], np.ndarray] = {}

    def positions(self, msg: JointCommand) -> np.ndarray:
        """(J,) rad in the controller's joint order; raises :class:`CommandRefused`."""
        joints, names = self.config.joints, tuple(msg.name)
        index = self._index.get(names)
        if index is None:
            unknown = [n for n in names if n not in joints]
            missing = [n for n in joints if n not in names]
            if unknown or missing or len(set(names)) != len(names):
                raise CommandRefused(
                    f"JointCommand names {list(names)} do not match controller {self.config.name!r}'s joints "
                    f"{list(joints)} (unknown: {unknown}, missing: {missing}): check the robot profile's joint names "
                    f"against the controller's 'joints' parameter"
                )
            index = self._index[names] = np.array([names.index(j) for j in joints])
        if len(msg.position) != len(names):
            raise CommandRefused(f"JointCommand has {len(msg.position)} positions for {len(names)} names")
        q = np.asarray(msg.position, dtype=float)[index]
        if not np.all(np.isfinite(q)):
            bad = [j for j, v in zip(joints, q, strict=True) if not math.isfinite(v)]
            raise CommandRefused(f"JointCommand positions of {bad} are not finite: {q.tolist()}")
        return q

    def message(self, positions: np.ndarray) -> Float64MultiArray | JointTrajectory:
        """The controller's command for (J,) positions, rad, in its joint order."""
        data = [float(v) for v in positions]
        if self.config.kind == "forward_command":
            dim = MultiArrayDimension("joints", len(data), len(data))
            return Float64MultiArray(MultiArrayLayout([dim], 0), data)
        point = JointTrajectoryPoint(positions=data, time_from_start=duration(self.config.horizon_s))
        return JointTrajectory(make_header(0, ""), list(self.config.joints), [point])


def holds(msg: JointCommand) -> bool:
    """A command whose gains say "no position control" (all zero: the motors off, an arm's brakes; kp all zero
    with damping): a position controller cannot follow it, so the bridge holds the measured position."""
    kp = np.asarray(msg.kp, dtype=float)
    return kp.size > 0 and not np.any(kp)


class StateFilter:
    """``/joint_states`` -> the controller's joints, checked: positions and velocities finite, all joints there.
    Extra joints (a gripper's fingers) are dropped."""

    def __init__(self, joints: Sequence[str]):
        self.joints = tuple(joints)
        self._index: dict[tuple[str, ...], np.ndarray] = {}

    def select(self, msg: JointState) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(J,) position rad, (J,) velocity rad/s, (J,) effort N m or None; raises :class:`StateRefused`."""
        names = tuple(msg.name)
        index = self._index.get(names)
        if index is None:
            missing = [j for j in self.joints if j not in names]
            if missing:
                raise StateRefused(
                    f"/joint_states lacks the controller joints {missing}: expected all of {list(self.joints)}, "
                    f"found {list(names)}"
                )
            index = self._index[names] = np.array([names.index(j) for j in self.joints])
        n = len(names)
        if len(msg.position) != n or len(msg.velocity) != n or len(msg.effort) not in (0, n):
            raise StateRefused(
                f"/joint_states has {len(msg.position)} positions, {len(msg.velocity)} velocities, "
                f"{len(msg.effort)} efforts for {n} names: expected a position and a velocity per name (the "
                f"policy observes both; enable the velocity state interface), efforts optional"
            )
        q = np.asarray(msg.position, dtype=float)[index]
        qd = np.asarray(msg.velocity, dtype=float)[index]
        tau = np.asarray(msg.effort, dtype=float)[index] if len(msg.effort) else None
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
            raise StateRefused(f"/joint_states not finite: position {q.tolist()}, velocity {qd.tolist()}")
        return q, qd, tau
