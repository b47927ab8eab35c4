"""Frame names the recorder writes, and the CDR bytes of ``/tf`` and reference messages built without the
generic serializer.

Frames (REP 103 / REP 105 names; one spelling in every log):

- ``world``: the fixed world frame, ENU (z up), metres. Drivers that stamp their pose ``map``, ``odom`` or
  leave the frame empty mean the same frame here (deploy/runtime/reference.py accepts the same set); their
  messages are recorded as they came, and ``/tf`` names the frame ``world``.
- ``base_link``: the robot's body (quadrotor) or base (legged: the trunk; arm: the mounting flange), FLU.
- ``end_effector``: an arm's tool frame. An arm's driver publishes the end-effector pose in its base frame
  (``state/pose``, frame_id the base link's name, e.g. ``panda_link0``): ``/tf`` carries
  ``base_link -> end_effector``, and ``/tf_static`` ``world -> base_link`` as the identity (the arm stands at the
  world origin, as in the simulator).
- ``reference``: the target the policy tracks (:meth:`FlightRecorder.write_reference`).

Every control cycle writes a pose, so ``/tf`` must cost little: :class:`StampedTemplate` builds the bytes of a
stamped message whose strings are fixed (frame names) from the 8 stamp bytes and the packed float64 tail,
after checking once that this equals what the generic serializer writes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from deploy.msgs import Header, Point, Pose, PoseStamped, Quaternion, Time, Vector3, Vector3Stamped
from deploy.msgs.types import TFMessage, Transform, TransformStamped
from deploy.transport.names import resolve_topic_name
from deploy.transport.qos import SENSOR_DATA, QosProfile

WORLD = "world"
BASE = "base_link"
END_EFFECTOR = "end_effector"
REFERENCE = "reference"
#: frame ids that name the world frame (deploy/runtime/reference.py takes the same)
WORLD_FRAMES = ("world", "map", "odom", "")

TF_TOPIC = "/tf"
#: the reference the policy tracks (after the runtime's limits; not the planner's reference/setpoint or
#: reference/target it came from) and the position error to it, relative to the transport's namespace
REFERENCE_TOPIC = "policy/reference"
REFERENCE_ERROR_TOPIC = "policy/tracking_error"
TF_STATIC_TOPIC = "/tf_static"
#: tf2_ros's DynamicBroadcasterQoS and StaticBroadcasterQoS
TF_QOS = QosProfile(depth=100, reliability="reliable", durability="volatile")
TF_STATIC_QOS = QosProfile(depth=1, reliability="reliable", durability="transient_local")

_STAMP = struct.Struct("<iI")
_NS_PER_S = 1_000_000_000


def stamp_bytes(stamp_ns: int) -> bytes:
    """builtin_interfaces/Time of ``stamp_ns`` as little-endian CDR (int32 sec, uint32 nanosec)."""
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    return _STAMP.pack(sec, nanosec)


def parent_frame(frame_id: str) -> str:
    """The recorder's name for the frame a message is expressed in: ``world`` for the world frames, else
    ``base_link`` (an arm's base, whatever its link is called)."""
    return WORLD if frame_id.lstrip("/") in WORLD_FRAMES else BASE


class StampedTemplate:
    """CDR of one stamped message type whose strings are fixed, from (stamp bytes, float64 tail bytes).

    ``make(stamp_ns, values)`` builds the message with the generic classes; ``offset`` is where the 8 stamp bytes
    start in the serialized message; ``n_doubles`` float64 values end it. The constructor checks the split
    against two messages built by ``make``; :meth:`pack` then only concatenates.
    """

    def __init__(self, make: Callable[[int, Sequence[float]], Any], offset: int, n_doubles: int) -> None:
        self.make, self.offset, self.n_doubles = make, offset, n_doubles
        self.doubles = struct.Struct(f"<{n_doubles}d")
        data = make(0, [0.0] * n_doubles).serialize()
        if data[:2] != b"\x00\x01":
            raise ValueError("expected little-endian CDR from the generic serializer")
        self.head, self.middle = data[:offset], data[offset + 8 : len(data) - self.doubles.size]
        check_values = [0.5 + i for i in range(n_doubles)]
        check_ns = 1_700_000_000_123_456_789
        if (
            self.pack(stamp_bytes(check_ns), self.doubles.pack(*check_values))
            != make(check_ns, check_values).serialize()
        ):
            raise ValueError("the cached CDR layout differs from the generic serializer's")

    def pack(self, stamp: bytes, tail: bytes) -> bytes:
        """The message's bytes: ``stamp`` (8 bytes, see :func:`stamp_bytes`), ``tail`` (the packed float64s)."""
        return self.head + stamp + self.middle + tail

    def pack_values(self, stamp_ns: int, values: Sequence[float]) -> bytes:
        return self.pack(stamp_bytes(stamp_ns), self.doubles.pack(*values))


def _time(stamp_ns: int) -> Time:
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    return Time(sec, nanosec)


def transform_message(parent: str, child: str, stamp_ns: int, values: Sequence[float]) -> TFMessage:
    """One transform ``parent -> child``; values: x, y, z (m), qx, qy, qz, qw."""
    x, y, z, qx, qy, qz, qw = values
    header = Header(_time(stamp_ns), parent)
    return TFMessage([TransformStamped(header, child, Transform(Vector3(x, y, z), Quaternion(qx, qy, qz, qw)))])


def tf_template(parent: str, child: str) -> StampedTemplate:
    """``/tf`` with one transform: TFMessage's stamp follows the encapsulation and the sequence length."""
    return StampedTemplate(lambda ns, v: transform_message(parent, child, ns, v), 8, 7)


def pose_template(frame: str) -> StampedTemplate:
    """PoseStamped in ``frame``; values: x, y, z (m), qx, qy, qz, qw."""

    def make(ns: int, v: Sequence[float]) -> PoseStamped:
        return PoseStamped(Header(_time(ns), frame), Pose(Point(*v[:3]), Quaternion(*v[3:])))

    return StampedTemplate(make, 4, 7)


def vector_template(frame: str) -> StampedTemplate:
    """Vector3Stamped in ``frame``; values: x, y, z."""
    return StampedTemplate(lambda ns, v: Vector3Stamped(Header(_time(ns), frame), Vector3(*v)), 4, 3)


#: a PoseStamped's CDR ends with position (3 float64) and orientation (4 float64)
POSE_TAIL_BYTES = 7 * 8


class FrameWriter:
    """The recorder's ``/tf``, ``/tf_static`` and reference messages, through cached layouts.

    put: ``(channel id, CDR bytes, log time ns)`` hands a message to the writer; channel_id: ``(topic, message
    class, QoS)`` -> the channel id (registering the channel once); namespace: the transport's.
    """

    def __init__(
        self,
        put: Callable[[int, bytes, int], None],
        channel_id: Callable[[str, type, QosProfile], int],
        namespace: str,
    ) -> None:
        self._put, self._channel_id = put, channel_id
        self.reference_topic = resolve_topic_name(REFERENCE_TOPIC, namespace)
        self.error_topic = resolve_topic_name(REFERENCE_ERROR_TOPIC, namespace)
        self._templates: dict[tuple[str, ...], tuple[StampedTemplate, int]] = {}
        self._last_position: tuple[str, bytes] | None = None  # (frame, packed x y z) of the last pose
        self._static = False  # /tf_static written (an arm's world -> base_link)

    def pose(self, msg: PoseStamped, data: bytes, stamp_ns: int) -> None:
        """``/tf`` of a recorded pose (``data``: its CDR bytes) at the pose's header stamp."""
        parent = parent_frame(msg.header.frame_id)
        child = BASE if parent == WORLD else END_EFFECTOR
        if data[:2] == b"\x00\x01":  # little-endian CDR: the stamp and the 7 float64 move over as bytes
            stamp, tail = data[4:12], data[-POSE_TAIL_BYTES:]
        else:
            p, q = msg.pose.position, msg.pose.orientation
            stamp = stamp_bytes(msg.header.stamp.sec * _NS_PER_S + msg.header.stamp.nanosec)
            tail = struct.pack("<7d", p.x, p.y, p.z, q.x, q.y, q.z, q.w)
        self._stamped(TF_TOPIC, TFMessage, (parent, child), stamp, tail, stamp_ns)
        self._last_position = (parent, tail[:24])
        if parent == BASE and not self._static:
            identity = transform_message(WORLD, BASE, stamp_ns, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0))
            self._put(self._channel_id(TF_STATIC_TOPIC, TFMessage, TF_STATIC_QOS), identity.serialize(), stamp_ns)
            self._static = True

    def reference(
        self, position_m: Sequence[float], stamp_ns: int, quaternion_xyzw: Sequence[float] | None, frame_id: str
    ) -> None:
        """See :meth:`deploy.recording.FlightRecorder.write_reference`."""
        parent = parent_frame(frame_id)
        q = (0.0, 0.0, 0.0, 1.0) if quaternion_xyzw is None else quaternion_xyzw
        x, y, z = (float(v) for v in position_m)
        stamp, tail = stamp_bytes(stamp_ns), struct.pack("<7d", x, y, z, *(float(v) for v in q))
        self._stamped(self.reference_topic, PoseStamped, (parent,), stamp, tail, stamp_ns)
        self._stamped(TF_TOPIC, TFMessage, (parent, REFERENCE), stamp, tail, stamp_ns)
        if self._last_position is not None and self._last_position[0] == parent:
            px, py, pz = struct.unpack("<3d", self._last_position[1])
            error = struct.pack("<3d", px - x, py - y, pz - z)
            self._stamped(self.error_topic, Vector3Stamped, (parent,), stamp, error, stamp_ns)

    def _stamped(self, topic: str, cls: type, names: tuple[str, ...], stamp: bytes, tail: bytes, log_ns: int) -> None:
        """A TFMessage (one transform, names = (parent, child)) or a PoseStamped / Vector3Stamped (names =
        (frame,)) from its stamp bytes and packed float64 tail."""
        key = (topic, *names)
        cached = self._templates.get(key)
        if cached is None:
            if cls is TFMessage:
                template, qos = tf_template(*names), TF_QOS
            elif cls is PoseStamped:
                template, qos = pose_template(names[0]), SENSOR_DATA
            else:
                template, qos = vector_template(names[0]), SENSOR_DATA
            cached = self._templates[key] = (template, self._channel_id(topic, cls, qos))
        self._put(cached[1], cached[0].pack(stamp, tail), log_ns)
