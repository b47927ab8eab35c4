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
from typing import TYPE_CHECKING, Any

import numpy as np

from deploy.replay.cdr_fast import FAST, decode_many, header_frame_id
from deploy.replay.errors import LogReadError, ReplayError, TopicMapError
from deploy.replay.sources import RawLog, RawMessage, read_messages
from deploy.replay.topic_map import DEFAULT_FIELD, TopicMap, TopicRole, require
from deploy.state_wire import WORLD_FRAMES

if TYPE_CHECKING:
    from deploy.replay.throttle import ThrottleCurve

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
    state_log_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) s, when the pose was recorded
    # the twist messages as logged (before interpolation onto the pose times)
    twist_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    twist_log_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    twist_linear: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # m/s, world
    twist_angular: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # rad/s, body
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
    # autopilot logs: series with no role (rates setpoint, battery), name -> {"t": (N,) s, field: (N, ...)}
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

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
        out["quaternion"] = self.attitude_at(t)
        return out

    def attitude_at(self, t: np.ndarray) -> np.ndarray:
        """(len(t), 4) w, x, y, z: the pose's attitude at times ``t`` (s), normalized lerp (held at the ends)."""
        return _nlerp(t, self.state_t, self.quaternion)


def _nlerp(t: np.ndarray, ts: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
    """(len(t), 4) quaternions at ``t`` from (K, 4) w-first ``quaternion`` at sorted times ``ts``."""
    q = quaternion.copy()
    flip = np.sum(q[1:] * q[:-1], axis=1) < 0  # keep one hemisphere so that lerp is short
    q[1:][np.cumsum(flip) % 2 == 1] *= -1
    qi = np.stack([np.interp(t, ts, col) for col in q.T], -1)
    return qi / np.linalg.norm(qi, axis=1, keepdims=True)


def load_flight(
    path: str | Path,
    topic_map: TopicMap | None = None,
    needed: tuple[str, ...] = (),
    progress: Callable[[int], None] | None = None,
    throttle: ThrottleCurve | None = None,
) -> Flight:
    """Read the log at ``path`` into a :class:`Flight`; raise naming the file and topics when a ``needed`` role
    (e.g. ``("pose", "twist", "command")``) has no topic or no message. PX4 ``.ulg`` and ArduPilot ``.bin``
    logs go to :mod:`deploy.replay.autopilot` (``throttle``: their motor output -> RPM curve)."""
    from deploy.replay.autopilot import is_autopilot_log, load_autopilot_flight

    if is_autopilot_log(path):
        return load_autopilot_flight(path, throttle, needed)
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

    def msgs_of(role: str) -> list[RawMessage]:
        return by_topic.get(roles[role].topic, []) if role in roles else []

    def series(role: str, generic: Callable[[Any], list[float]]) -> tuple[np.ndarray, np.ndarray]:
        return _series(raw, msgs_of(role), t0, use_header, generic, role)

    def stamp(m: RawMessage) -> float:
        return float(_series(raw, [m], t0, use_header, lambda _: [], "")[0][0])

    flight = Flight(Path(raw.path), t0, problems=list(raw.problems), metadata=raw.metadata)
    flight.topics = {role: r.topic for role, r in roles.items()}
    flight.message_count = len(raw.messages)
    ned = tmap.frame == "ned"
    if msgs_of("pose"):
        flight.state_t, values = series("pose", _pose_values)
        flight.state_log_t = (np.array([m.log_time_ns for m in msgs_of("pose")], dtype=np.int64) - t0) * 1e-9
        flight.position = values[:, 0:3]
        flight.quaternion = values[:, [6, 3, 4, 5]]  # x, y, z, w -> w, x, y, z
        if ned:
            flight.position = flight.position @ _NED_TO_ENU.T
            flight.quaternion = _quat_ned_to_enu(flight.quaternion)
        _sort_state(flight)
    if msgs_of("twist"):
        tt, values = series("twist", _twist_values)
        log_tt = (np.array([m.log_time_ns for m in msgs_of("twist")], dtype=np.int64) - t0) * 1e-9
        odometry = msgs_of("twist")[0].ros_type == "nav_msgs/msg/Odometry"
        own_q = values[:, [6, 3, 4, 5]] if odometry else None  # Odometry: the message's own attitude
        if odometry:
            values = values[:, 7:13]
        body = np.full(len(values), True) if odometry else _body_frame(raw, msgs_of("twist"))
        lin, ang = values[:, 0:3], values[:, 3:6]
        if ned:
            ang = ang @ _FRD_TO_FLU.T
            lin = np.where(body[:, None], lin @ _FRD_TO_FLU.T, lin @ _NED_TO_ENU.T)
            own_q = None if own_q is None else _quat_ned_to_enu(own_q)
        if body.any():  # twists in the child (body) frame: rotated with the message's, the pose's or the IMU's attitude
            if own_q is not None:
                q = own_q[body]
            elif len(flight.state_t):
                q = flight.attitude_at(tt[body])
            elif msgs_of("imu"):  # a legged robot's log: the runtime read the IMU, not a pose
                imu_t, imu_q = series("imu", _imu_quat)
                imu_q = _quat_ned_to_enu(imu_q) if ned else imu_q
                order = np.argsort(imu_t, kind="stable")
                q = _nlerp(tt[body], imu_t[order], imu_q[order])
            else:
                raise ReplayError(
                    f"{raw.path}: the twists on {roles['twist'].topic} are in the body frame (ROS convention): "
                    "reading them needs the pose or the imu topic, and the log has neither"
                )
            lin[body] = np.einsum("kij,kj->ki", rotations(q), lin[body])
        order = np.argsort(tt, kind="stable")
        flight.twist_t, flight.twist_log_t = tt[order], log_tt[order]
        flight.twist_linear, flight.twist_angular = lin[order], ang[order]
        if len(flight.state_t):
            lin = np.stack([np.interp(flight.state_t, tt[order], c) for c in lin[order].T], -1)
            ang = np.stack([np.interp(flight.state_t, tt[order], c) for c in ang[order].T], -1)
        flight.velocity, flight.angular_velocity = lin, ang
    for role, attr in (("observation", "obs"), ("action", "action")):
        if msgs_of(role):
            t, values = series(role, lambda msg: list(np.asarray(msg.data, dtype=np.float64)))
            setattr(flight, attr + "_t", t)
            setattr(flight, attr, values)
    if msgs_of("command"):
        spec = roles["command"]
        flight.command_t, values = _series(
            raw, msgs_of("command"), t0, use_header, lambda msg: list(_field(msg, spec, msgs_of("command")[0])), "command",
            fast=spec.field in (None, DEFAULT_FIELD.get(msgs_of("command")[0].ros_type)),
        )  # fmt: skip
        if spec.order is not None:
            values = values[:, list(spec.order)]
        flight.command = spec.offset + spec.scale * values
    for m in msgs_of("safety_transition"):
        msg = raw.decoded(m)
        flight.transitions.append(Transition(stamp(m), msg.from_state, msg.to_state, msg.reason, msg.check))
    if msgs_of("timing"):
        t, values = series("timing", lambda msg: [msg.inference_s, msg.cycle_s, msg.jitter_s, msg.deadline_misses])
        flight.timing = {"t": t, "inference_s": values[:, 0], "cycle_s": values[:, 1], "jitter_s": values[:, 2]}
        flight.timing["misses"] = values[:, 3].astype(int)
    return flight


def _series(
    raw: RawLog,
    msgs: list[RawMessage],
    t0: int,
    use_header: bool,
    generic: Callable[[Any], list[float]],
    role: str,
    fast: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Times (s since t0) and (M, n) values of one topic's messages: straight from the CDR bytes for the types
    :mod:`deploy.replay.cdr_fast` knows, else through the decoded message objects."""
    log_ns = np.fromiter((m.log_time_ns for m in msgs), dtype=np.int64, count=len(msgs))
    ros_type = msgs[0].ros_type
    if fast and ros_type in FAST and all(m.data is not None for m in msgs):
        stamps, values = decode_many(ros_type, [m.data for m in msgs])  # type: ignore[misc]
    else:
        decoded = [raw.decoded(m) for m in msgs]
        stamps = np.array([_header_ns(msg) for msg in decoded], dtype=np.int64)
        values = _rows([np.asarray(generic(msg), dtype=np.float64) for msg in decoded], raw.path, role)
    ns = np.where(use_header & (stamps > 0), stamps, log_ns)
    return (ns - t0) * 1e-9, values


def _body_frame(raw: RawLog, msgs: list[RawMessage]) -> np.ndarray:
    """(M,) bool: TwistStamped messages whose linear velocity is in the body frame. By ROS convention a
    TwistStamped is expressed in its header's frame: a world frame (``world``, ``map``, ``odom`` or empty) means a
    world-frame linear velocity (sim2real logs before the ROS-convention twist stamped every twist ``world``, with
    the rates in the body frame all along), any other frame (``base_link``) the body frame."""
    frames = [header_frame_id(m.data) if m.data is not None else raw.decoded(m).header.frame_id for m in msgs]
    return np.array([f.lstrip("/") not in WORLD_FRAMES for f in frames], dtype=bool)


def _header_ns(msg: Any) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        return 0
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _pose_values(msg: Any) -> list[float]:
    """PoseStamped, PoseWithCovarianceStamped -> px, py, pz, qx, qy, qz, qw; Odometry -> those + its twist (6),
    the layout of cdr_fast.odometry."""
    if hasattr(msg, "twist"):
        return _twist_values(msg)
    pose = msg.pose.pose if hasattr(msg.pose, "pose") else msg.pose
    p, q = pose.position, pose.orientation
    return [p.x, p.y, p.z, q.x, q.y, q.z, q.w]


def _imu_quat(msg: Any) -> list[float]:
    """Imu -> its orientation w, x, y, z."""
    q = msg.orientation
    return [q.w, q.x, q.y, q.z]


def _twist_values(msg: Any) -> list[float]:
    """TwistStamped -> vx, vy, vz, wx, wy, wz; Odometry -> pose (7) then twist (6), as cdr_fast.odometry."""
    head: list[float] = []
    twist = msg.twist
    if hasattr(msg, "pose"):  # Odometry
        pose, twist = msg.pose.pose, msg.twist.twist
        p, q = pose.position, pose.orientation
        head = [p.x, p.y, p.z, q.x, q.y, q.z, q.w]
    lin, ang = twist.linear, twist.angular
    return [*head, lin.x, lin.y, lin.z, ang.x, ang.y, ang.z]


def _sort_state(f: Flight) -> None:
    order = np.argsort(f.state_t, kind="stable")
    f.state_t, f.position, f.quaternion = f.state_t[order], f.position[order], f.quaternion[order]
    f.state_log_t = f.state_log_t[order]


def _field(msg: Any, spec: TopicRole, first: RawMessage) -> np.ndarray:
    name = spec.field or DEFAULT_FIELD.get(first.ros_type)
    if name is None:
        raise TopicMapError(
            f"topic {first.topic} ({first.ros_type}) is mapped to 'command' but no field is named; add "
            "`field: <name of the array field>` to its entry in the topic map"
        )
    value: Any = msg
    for part in name.split("."):
        if not hasattr(value, part):
            raise TopicMapError(f"topic {first.topic} ({first.ros_type}) has no field {name!r} (mapped to 'command')")
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
