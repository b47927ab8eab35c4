"""The topic map: which topic of a log carries each piece of robot state the replay needs, and how to read it.

sim2real's own deploy logs need no map (topics are found by their transport-table names under any namespace).
A log recorded from another stack (PX4 via a ROS 2 bridge, a Unitree or Crazyflie driver) is mapped with YAML::

    typestore: humble            # humble | jazzy: message definitions for bags that embed none
    frame: ned                   # enu (ROS REP 103: world ENU, body FLU) or ned (PX4: world NED, body FRD)
    time: header                 # header: message header stamps where present; log: recording times
    topics:
      pose: /fmu/out/odometry            # PoseStamped, PoseWithCovarianceStamped or Odometry
      twist: /fmu/out/odometry           # TwistStamped (frame by its header, see flight.py) or Odometry (body)
      command: {topic: /fmu/out/motors, field: data, scale: 21702.0, offset: 0.0, order: [0, 1, 2, 3]}
      observation: /policy/obs           # Float32MultiArray, the policy's input
      action: /policy/action             # Float32MultiArray, the normalized action
      safety_transition: /safety/transition
      timing: /diagnostics/timing
      imu: /imu                          # Imu: its orientation rotates a body-frame twist when there is no pose
    types:                               # .msg texts of custom types a bag does not embed
      my_msgs/msg/Motors: "float32[4] rpm"

``command`` values become rotor speeds in RPM as ``offset + scale * value[order]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.replay.errors import TopicMapError

ROLES = ("pose", "twist", "command", "observation", "action", "safety_transition", "timing", "imu")
# role -> relative name in sim2real's transport table (deploy/transport/topics.py)
DEFAULT_NAMES = {
    "pose": "state/pose",
    "twist": "state/twist",
    "command": "command/motors",
    "observation": "policy/observation",
    "action": "policy/action",
    "safety_transition": "safety/transition",
    "timing": "diagnostics/timing",
    "imu": "state/imu",  # a legged robot's attitude: rotates its body-frame twist where the log has no pose
}
# a run whose runtime read nav_msgs/Odometry (deploy profile ``state: {input: odometry}``) logged no state/pose or
# state/twist: its pose and twist come from state/odom
ODOMETRY_NAME = "state/odom"
ROLE_TYPES = {
    "pose": ("geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PoseWithCovarianceStamped", "nav_msgs/msg/Odometry"),
    "twist": ("geometry_msgs/msg/TwistStamped", "nav_msgs/msg/Odometry"),
    "command": (
        "sim2real_msgs/msg/MotorCommand",
        "std_msgs/msg/Float32MultiArray",
        "std_msgs/msg/Float64MultiArray",
        "sensor_msgs/msg/JointState",
        "*",
    ),
    "observation": ("std_msgs/msg/Float32MultiArray",),
    "action": ("std_msgs/msg/Float32MultiArray",),
    "safety_transition": ("sim2real_msgs/msg/SafetyTransition",),
    "timing": ("sim2real_msgs/msg/LoopTiming",),
    "imu": ("sensor_msgs/msg/Imu",),
}
DEFAULT_FIELD = {
    "sim2real_msgs/msg/MotorCommand": "rpm",
    "std_msgs/msg/Float32MultiArray": "data",
    "std_msgs/msg/Float64MultiArray": "data",
    "sensor_msgs/msg/JointState": "velocity",
}


@dataclass(frozen=True)
class TopicRole:
    """One mapped topic. field/scale/offset/order apply to ``command`` (value -> RPM)."""

    topic: str
    field: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    order: tuple[int, ...] | None = None


@dataclass(frozen=True)
class TopicMap:
    topics: Mapping[str, TopicRole] = field(default_factory=dict)
    frame: str = "enu"
    time: str = "header"
    typestore: str = "humble"
    types: Mapping[str, str] = field(default_factory=dict)
    source: str = "default sim2real topics"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "topic map") -> TopicMap:
        if not isinstance(data, Mapping):
            raise TopicMapError(f"{source}: expected a mapping with a 'topics' section, got {type(data).__name__}")
        allowed = {"topics", "frame", "time", "typestore", "types"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise TopicMapError(f"{source}: unknown keys {unknown}; allowed: {sorted(allowed)}")
        frame = str(data.get("frame", "enu")).lower()
        if frame not in ("enu", "ned"):
            raise TopicMapError(f"{source}: frame must be 'enu' (ROS) or 'ned' (PX4), got {frame!r}")
        time = str(data.get("time", "header"))
        if time not in ("header", "log"):
            raise TopicMapError(f"{source}: time must be 'header' or 'log', got {time!r}")
        roles: dict[str, TopicRole] = {}
        for role, raw in (data.get("topics") or {}).items():
            if role not in ROLES:
                raise TopicMapError(f"{source}: unknown role {role!r}; roles are {list(ROLES)}")
            roles[role] = _role(raw, f"{source}: topics.{role}")
        types = data.get("types") or {}
        if not isinstance(types, Mapping):
            raise TopicMapError(f"{source}: 'types' must map type names to .msg texts")
        return cls(roles, frame, time, str(data.get("typestore", "humble")), dict(types), source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TopicMap:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise TopicMapError(f"topic map {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TopicMapError(f"topic map {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(data, str(path))

    def resolve(self, log_topics: Mapping[str, str], log_name: str) -> dict[str, TopicRole]:
        """Role -> topic for this log: the mapped ones, else sim2real's names under any namespace (roles not
        found are left out; :meth:`require` says which are needed)."""
        out = dict(self.topics)
        for role, rel in DEFAULT_NAMES.items():
            if role in out:
                continue
            hits = sorted(t for t in log_topics if t == "/" + rel or t.endswith("/" + rel))
            if not hits and role in ("pose", "twist"):
                hits = sorted(t for t in log_topics if t == "/" + ODOMETRY_NAME or t.endswith("/" + ODOMETRY_NAME))
            if len(hits) > 1:
                raise TopicMapError(
                    f"{log_name}: several topics could be the {role!r} ({hits}); name one in a topic map (--map)"
                )
            if hits:
                out[role] = TopicRole(hits[0])
        for role, spec in out.items():
            if spec.topic not in log_topics:
                continue
            found, accepted = log_topics[spec.topic], ROLE_TYPES[role]
            if "*" not in accepted and found not in accepted:
                raise TopicMapError(
                    f"{log_name}: topic {spec.topic} (role {role!r}) has type {found}; the {role!r} role reads "
                    f"{list(accepted)}. Map another topic to {role!r} in the topic map"
                )
        return out


def require(roles: Mapping[str, TopicRole], needed: tuple[str, ...], log_topics: Mapping[str, str], log_name: str):
    """Raise naming the missing roles/topics and the topics the log does have."""
    problems = []
    for role in needed:
        if role not in roles:
            problems.append(f"no topic for {role!r} (sim2real's name ends in /{DEFAULT_NAMES[role]})")
        elif roles[role].topic not in log_topics:
            problems.append(f"topic {roles[role].topic} (role {role!r}) is not in the log")
    if problems:
        have = ", ".join(f"{t} ({ty})" for t, ty in sorted(log_topics.items())) or "none"
        raise TopicMapError(
            f"{log_name}: {'; '.join(problems)}. The log has topics: {have}. "
            "Map your topics onto these roles with a topic map (--map FILE.yaml, see docs/replay.md)"
        )


def _role(raw: Any, where: str) -> TopicRole:
    if isinstance(raw, str):
        return TopicRole(raw)
    if not isinstance(raw, Mapping) or "topic" not in raw:
        raise TopicMapError(f"{where}: expected a topic name or a mapping with 'topic', got {raw!r}")
    unknown = sorted(set(raw) - {"topic", "field", "scale", "offset", "order"})
    if unknown:
        raise TopicMapError(f"{where}: unknown keys {unknown}; allowed: topic, field, scale, offset, order")
    order = raw.get("order")
    try:
        return TopicRole(
            str(raw["topic"]),
            raw.get("field"),
            float(raw.get("scale", 1.0)),
            float(raw.get("offset", 0.0)),
            None if order is None else tuple(int(i) for i in order),
        )
    except (TypeError, ValueError) as exc:
        raise TopicMapError(f"{where}: {exc}") from exc
