"""A log as arrays: robot state, policy observations and actions, commands, safety transitions, loop timing.

:func:`load_flight` reads any log :mod:`deploy.replay.sources` reads, picks the topics through the topic map,
converts frames (PX4's NED/FRD to sim2real's ENU/FLU) and returns a :class:`Flight`. Times are seconds since
``t0_ns`` (the first message), on the clock of the header stamps (or of the recorder, ``time: log``).
Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deploy.replay.errors import LogReadError, ReplayError, TopicMapError
from deploy.replay.sources import RawLog, RawMessage, read_messages
from deploy.replay.topic_map import DEFAULT_FIELD, TopicMap, TopicRole, require

log = logging.getLogger(__name__)
# world NED -> ENU and body FRD -> FLU
_NED_TO_ENU = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
_FRD_TO_FLU = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Transition:
    t: float  # s
    from_state: str
    to_state: str
    reason: str
    check: str


@dataclass
class Flight:
    """Arrays of one logged run. State rows are at ``state_t``; velocities world frame, rates body frame."""

    path: Path
    t0_ns: int
    state_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) s
    position: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (K, 3) m, world
    quaternion: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (K, 4) w, x, y, z body -> world
    velocity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (K, 3) m/s, world
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (K, 3) rad/s, body
    obs_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    obs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (M, D) policy input
    action_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    action: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (M, A) normalized action
    command_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    command: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (C, 4) rotor speed commands, RPM
    transitions: list[Transition] = field(default_factory=list)
    timing: dict[str, np.ndarray] = field(default_factory=dict)  # t, inference_s, cycle_s, jitter_s, misses
    topics: dict[str, str] = field(default_factory=dict)  # role -> topic
    problems: list[str] = field(default_factory=list)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    message_count: int = 0

    @property
    def duration_s(self) -> float:
        ends = [a[-1] for a in (self.state_t, self.obs_t, self.command_t) if len(a)]
        return float(max(ends)) if ends else 0.0

    def state_at(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """State interpolated at times ``t`` (s): linear for vectors, normalized lerp for the quaternion."""
        if len(self.state_t) < 2:
            raise ReplayError(f"{self.path}: fewer than 2 state messages; nothing to interpolate")
        out = {
            name: np.stack([np.interp(t, self.state_t, col) for col in getattr(self, name).T], -1)
            for name in ("position", "velocity", "angular_velocity")
        }
        q = self.quaternion.copy()
        flip = np.sum(q[1:] * q[:-1], axis=1) < 0  # keep one hemisphere so that lerp is short
        q[1:][np.cumsum(flip) % 2 == 1] *= -1
        qi = np.stack([np.interp(t, self.state_t, col) for col in q.T], -1)
        out["quaternion"] = qi / np.linalg.norm(qi, axis=1, keepdims=True)
        return out


def load_flight(
    path: str | Path,
    topic_map: TopicMap | None = None,
    needed: tuple[str, ...] = (),
    progress: Callable[[int], None] | None = None,
) -> Flight:
    """Read the log at ``path`` into a :class:`Flight`; raise naming the file and topics when a ``needed`` role
    (e.g. ``("pose", "twist", "command")``) has no topic or no message."""
    tmap = topic_map or TopicMap()
    roles: dict[str, TopicRole] = {}

    def select(log_topics: dict[str, str]) -> set[str]:
        roles.update(tmap.resolve(log_topics, str(path)))
        require(roles, needed, log_topics, str(path))
        return {r.topic for r in roles.values() if r.topic in log_topics}

    raw = read_messages(path, select, typestore=tmap.typestore, extra_msgs=tmap.types, progress=progress)
    if not raw.messages:
        found = ", ".join(sorted(raw.topics)) or "none"
        raise LogReadError(
            f"{path}: no readable message on the topics replay uses (the log has topics: {found})"
            + (f". {'; '.join(raw.problems)}" if raw.problems else "")
        )
    return _to_flight(raw, roles, tmap, needed)


def _to_flight(raw: RawLog, roles: Mapping[str, TopicRole], tmap: TopicMap, needed: tuple[str, ...]) -> Flight:
    by_topic: dict[str, list[RawMessage]] = {}
    for m in raw.messages:
        by_topic.setdefault(m.topic, []).append(m)
    for role in needed:
        if not by_topic.get(roles[role].topic):
            raise TopicMapError(
                f"{raw.path}: topic {roles[role].topic} (role {role!r}) has no readable message"
                + (f" ({'; '.join(raw.problems)})" if raw.problems else "")
            )
    t0 = min((m.log_time_ns for m in raw.messages), default=0)
    use_header = tmap.time == "header"

    def stamp(m: RawMessage) -> float:
        header = getattr(m.msg, "header", None)
        if use_header and header is not None:
            ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
            if ns > 0:
                return (ns - t0) * 1e-9
        return (m.log_time_ns - t0) * 1e-9

    flight = Flight(Path(raw.path), t0, problems=list(raw.problems), metadata=raw.metadata)
    flight.topics = {role: r.topic for role, r in roles.items()}
    flight.message_count = len(raw.messages)
    ned = tmap.frame == "ned"
    if "pose" in roles and by_topic.get(roles["pose"].topic):
        msgs = by_topic[roles["pose"].topic]
        flight.state_t = np.array([stamp(m) for m in msgs])
        poses = [_pose(m.msg) for m in msgs]
        flight.position = np.array([p for p, _ in poses], dtype=np.float64).reshape(-1, 3)
        flight.quaternion = np.array([q for _, q in poses], dtype=np.float64).reshape(-1, 4)
        if ned:
            flight.position = flight.position @ _NED_TO_ENU.T
            flight.quaternion = _quat_ned_to_enu(flight.quaternion)
        _sort_state(flight)
    if "twist" in roles and by_topic.get(roles["twist"].topic):
        msgs = by_topic[roles["twist"].topic]
        tt = np.array([stamp(m) for m in msgs])
        lin = np.array([_vec(_twist(m.msg).linear) for m in msgs]).reshape(-1, 3)
        ang = np.array([_vec(_twist(m.msg).angular) for m in msgs]).reshape(-1, 3)
        body_linear = [m.ros_type == "nav_msgs/msg/Odometry" for m in msgs]
        if ned:
            ang = ang @ _FRD_TO_FLU.T
            lin = lin @ (_FRD_TO_FLU if any(body_linear) else _NED_TO_ENU).T
        order = np.argsort(tt, kind="stable")
        tt, lin, ang = tt[order], lin[order], ang[order]
        if len(flight.state_t):
            lin = np.stack([np.interp(flight.state_t, tt, c) for c in lin.T], -1)
            ang = np.stack([np.interp(flight.state_t, tt, c) for c in ang.T], -1)
            if any(body_linear):  # Odometry twist is in the child (body) frame
                lin = np.einsum("kij,kj->ki", rotations(flight.quaternion), lin)
        flight.velocity, flight.angular_velocity = lin, ang
    for role, attr in (("observation", "obs"), ("action", "action")):
        msgs = by_topic.get(roles[role].topic, []) if role in roles else []
        if msgs:
            setattr(flight, attr + "_t", np.array([stamp(m) for m in msgs]))
            setattr(flight, attr, _rows([np.asarray(m.msg.data, dtype=np.float64) for m in msgs], raw.path, role))
    if "command" in roles and by_topic.get(roles["command"].topic):
        spec = roles["command"]
        msgs = by_topic[spec.topic]
        flight.command_t = np.array([stamp(m) for m in msgs])
        values = _rows([_field(m, spec) for m in msgs], raw.path, "command")
        if spec.order is not None:
            values = values[:, list(spec.order)]
        flight.command = spec.offset + spec.scale * values
    if "safety_transition" in roles:
        for m in by_topic.get(roles["safety_transition"].topic, []):
            msg = m.msg
            flight.transitions.append(Transition(stamp(m), msg.from_state, msg.to_state, msg.reason, msg.check))
    if "timing" in roles and by_topic.get(roles["timing"].topic):
        msgs = by_topic[roles["timing"].topic]
        flight.timing = {
            "t": np.array([stamp(m) for m in msgs]),
            **{k: np.array([float(getattr(m.msg, k)) for m in msgs]) for k in ("inference_s", "cycle_s", "jitter_s")},
            "misses": np.array([int(m.msg.deadline_misses) for m in msgs]),
        }
    return flight


def _sort_state(f: Flight) -> None:
    order = np.argsort(f.state_t, kind="stable")
    f.state_t, f.position, f.quaternion = f.state_t[order], f.position[order], f.quaternion[order]


def _vec(v: Any) -> list[float]:
    return [float(v.x), float(v.y), float(v.z)]


def _pose(msg: Any) -> tuple[list[float], list[float]]:
    pose = msg.pose
    if hasattr(pose, "pose"):  # PoseWithCovariance (Odometry, PoseWithCovarianceStamped)
        pose = pose.pose
    q = pose.orientation
    return _vec(pose.position), [float(q.w), float(q.x), float(q.y), float(q.z)]


def _twist(msg: Any) -> Any:
    twist = msg.twist
    return twist.twist if hasattr(twist, "twist") else twist


def _field(m: RawMessage, spec: TopicRole) -> np.ndarray:
    name = spec.field or DEFAULT_FIELD.get(m.ros_type)
    if name is None:
        raise TopicMapError(
            f"topic {m.topic} ({m.ros_type}) is mapped to 'command' but no field is named; add "
            "`field: <name of the array field>` to its entry in the topic map"
        )
    value: Any = m.msg
    for part in name.split("."):
        if not hasattr(value, part):
            raise TopicMapError(f"topic {m.topic} ({m.ros_type}) has no field {name!r} (mapped to 'command')")
        value = getattr(value, part)
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _rows(rows: list[np.ndarray], path: Any, role: str) -> np.ndarray:
    sizes = {len(r) for r in rows}
    if len(sizes) > 1:
        raise ReplayError(f"{path}: the {role!r} messages have different lengths {sorted(sizes)}; expected one size")
    return np.stack(rows) if rows else np.zeros((0, 0))


def rotations(q: np.ndarray) -> np.ndarray:
    """(K, 4) w, x, y, z -> (K, 3, 3) body -> world."""
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """(K, 3, 3) -> (K, 4) w, x, y, z with w >= 0 (Shepperd's method, branch on the largest diagonal term)."""
    out = np.zeros((len(R), 4))
    for i, m in enumerate(R):
        tr = np.trace(m)
        if tr > 0:
            s = 2.0 * np.sqrt(1.0 + tr)
            out[i] = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
        else:
            k = int(np.argmax(np.diag(m)))
            j, n = (k + 1) % 3, (k + 2) % 3
            s = 2.0 * np.sqrt(1.0 + m[k, k] - m[j, j] - m[n, n])
            v = np.zeros(4)
            v[0] = (m[n, j] - m[j, n]) / s
            v[1 + k] = 0.25 * s
            v[1 + j] = (m[j, k] + m[k, j]) / s
            v[1 + n] = (m[n, k] + m[k, n]) / s
            out[i] = v if v[0] >= 0 else -v
    return out


def _quat_ned_to_enu(q: np.ndarray) -> np.ndarray:
    """Attitude body FRD -> world NED as (K, 4) -> body FLU -> world ENU."""
    return _matrix_to_quat(_NED_TO_ENU @ rotations(q) @ _FRD_TO_FLU)
