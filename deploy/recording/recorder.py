"""The flight recorder: every deploy run writes one MCAP file (ROS 2 profile, CDR, ``ros2msg`` schemas).

Open it before arming: the constructor runs :func:`preflight`, starts the writer process and waits until it has
written the file header, so an unwritable path or a full disk is a :class:`RecorderError` on the ground, not in
the air. Messages are serialized in the caller (the same CDR bytes the transport sends) and handed to the writer
process through a pipe (one non-blocking ``write`` per message; while the pipe is full, messages wait in
order in this process, up to ``max_queue``, then are dropped and counted: :mod:`deploy.recording.writer_client`).
Compression and the MCAP
bookkeeping run in that process (``deploy/recording/writer_process.py``) and never hold the control
process's GIL. Chunks are closed
every ``flush_interval_s`` seconds or ``chunk_size`` bytes, whichever comes first. SIGKILL of the control
process: the writer drains the pipe and closes the file properly. SIGKILL of both: at most the chunk in progress
(about ``flush_interval_s`` of data) is lost; ``fsync=True`` extends that to power loss.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from deploy.msgs import (
    Float32MultiArray,
    LoopTiming,
    MultiArrayDimension,
    MultiArrayLayout,
    Odometry,
    PoseStamped,
    SafetyTransition,
    make_header,
    message_info,
)
from deploy.recording import frames
from deploy.recording import writer_process as wp
from deploy.recording.errors import RecorderError
from deploy.recording.preflight import DEFAULT_MIN_FREE_BYTES, preflight
from deploy.recording.qos_yaml import offered_qos_yaml
from deploy.recording.writer_client import WriterPipe
from deploy.transport import DEFAULT, QosProfile, TransportConfig, resolve_qos

log = logging.getLogger(__name__)
LIBRARY = wp.LIBRARY
_COMPRESSIONS = ("zstd", "lz4", "none")


class FlightRecorder:
    """Writes one deploy run to an MCAP file, through a writer process of its own.

    path: ``*.mcap``, must not exist unless ``overwrite``; topics: the transport's topic table (names used
    by the convenience writers); chunk_size: bytes of uncompressed messages per chunk at most;
    flush_interval_s: longest time a message waits in an open chunk, seconds; compression: ``zstd``,
    ``lz4`` or ``none``; min_free_bytes: free space required at start, bytes; metadata: MCAP metadata
    records written first, ``{name: {key: value}}`` (e.g. robot profile hash, policy hash, git commit,
    observation layout); max_queue: messages that may wait in this process while the pipe is full before
    further ones are dropped (a burst from an offline writer, a slow disk); start_timeout_s: how long the
    writer process may take to start and write the header; viewer_files: after a clean close, write a
    Foxglove layout beside the log and a rosbag2 ``metadata.yaml`` into its directory when that holds
    several logs (:mod:`deploy.recording.viewer_files`).

    Every pose recorded through :meth:`write_state` is also written as ``/tf`` (``world -> base_link``; frame
    names in :mod:`deploy.recording.frames`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        topics: TransportConfig | None = None,
        chunk_size: int = 64 * 1024,
        flush_interval_s: float = 0.1,
        compression: str = "zstd",
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        overwrite: bool = False,
        fsync: bool = False,
        metadata: Mapping[str, Mapping[str, str]] | None = None,
        max_queue: int = 100_000,
        start_timeout_s: float = 20.0,
        viewer_files: bool = True,
    ) -> None:
        if compression not in _COMPRESSIONS:
            raise RecorderError(f"compression must be one of {sorted(_COMPRESSIONS)}, got {compression!r}")
        if flush_interval_s <= 0 or chunk_size <= 0:
            raise RecorderError(f"flush_interval_s and chunk_size must be > 0, got {flush_interval_s}, {chunk_size}")
        self.path = preflight(path, min_free_bytes=min_free_bytes, overwrite=overwrite)
        self.topics = topics or TransportConfig()
        self._channels: dict[str, tuple[type, str, int]] = {}  # topic -> (message class, ROS type, channel id)
        self._closed = False
        self._keys: dict[str, Any] = {}  # transport table key -> its TopicSpec
        self._vectors: dict[tuple[str, int], tuple[bytes, struct.Struct, int]] = {}  # see _write_vector
        self._frames = frames.FrameWriter(self._put, self._channel_id, self.topics.namespace)  # /tf, reference
        self._viewer_files = viewer_files
        self._joint_names: list[str] | None = None  # of the first JointCommand, to label the layout's plots
        self.written = 0  # messages in the file, as the writer process last reported (flush, close)
        config = {
            "path": str(self.path),
            "overwrite": overwrite,
            "chunk_size": chunk_size,
            "compression": compression,
            "fsync": fsync,
            "flush_interval_s": flush_interval_s,
            "metadata": {
                name: {str(k): str(v) for k, v in values.items()} for name, values in (metadata or {}).items()
            },
        }
        self._pipe = WriterPipe(self.path, config, max_queue, start_timeout_s)
        log.info("recording to %s (writer process %d)", self.path, self._pipe.proc.pid)

    @property
    def dropped(self) -> int:
        """Messages not recorded because the pipe was full (writer too slow)."""
        return self._pipe.dropped

    @property
    def _error(self) -> str | None:
        return self._pipe.error

    # ------------------------------------------------------------------ public API

    def write(self, topic: str, msg: Any, stamp_ns: int, *, qos: QosProfile | str | None = None) -> None:
        """Record ``msg`` (a deploy.msgs instance) on ROS 2 ``topic`` at log time ``stamp_ns`` (ns, same clock
        as the headers). Never blocks; raises RecorderError if the writer process has failed."""
        if self._error is not None or self._closed:
            self._check()
        self._put(self._channel_id(topic, type(msg), qos), msg.serialize(), stamp_ns)

    def _channel_id(self, topic: str, cls: type, qos: QosProfile | str | None) -> int:
        channel = self._channels.get(topic)
        if channel is None or channel[0] is not cls:
            channel = self._channel(topic, cls, qos)
        return channel[2]

    def _put(self, channel_id: int, data: bytes, stamp_ns: int) -> None:
        self._pipe.put(
            wp.MESSAGE_HEAD.pack(wp.MESSAGE, len(data) + wp.MESSAGE_FIELDS.size, channel_id, stamp_ns) + data
        )

    def write_key(self, key: str, msg: Any, stamp_ns: int) -> None:
        """Record ``msg`` on the topic of the transport table entry ``key`` (e.g. ``"imu"``)."""
        topic = self._keys.get(key)
        if topic is None:
            topic = self._keys[key] = self.topics.topic(key)
        if type(msg) is not topic.msg_type:
            raise TypeError(f"topic {key!r} carries {topic.msg_type.__name__}, got {type(msg).__name__}")
        self.write(topic.name, msg, stamp_ns, qos=topic.qos)

    def write_state(self, msg: Any, stamp_ns: int) -> None:
        """Record a robot state message as it came; its type picks the topic (PoseStamped -> pose, TwistStamped ->
        twist, Odometry -> odom, Imu -> imu, JointState -> joint_states, BatteryState -> battery). A pose (an
        Odometry's too) is also written to ``/tf``: ``world -> base_link`` at the pose's header stamp (an arm's
        end-effector pose in its base frame: ``base_link -> end_effector``, and once ``/tf_static`` ``world ->
        base_link``, the identity)."""
        if type(msg) is PoseStamped:
            self._write_pose(msg, stamp_ns)
            return
        for key in ("twist", "odom", "imu", "joint_states", "battery"):
            if type(msg) is self.topics.topics[key].msg_type:
                self.write_key(key, msg, stamp_ns)
                if type(msg) is Odometry:
                    pose = PoseStamped(msg.header, msg.pose.pose)
                    self._frames.pose(pose, pose.serialize(), stamp_ns)
                return
        raise TypeError(
            f"{type(msg).__name__} is not a robot state message; expected PoseStamped, TwistStamped, Odometry, "
            "Imu, JointState or BatteryState"
        )

    def _write_pose(self, msg: PoseStamped, stamp_ns: int) -> None:
        if self._error is not None or self._closed:
            self._check()
        topic = self._keys.get("pose")
        if topic is None:
            topic = self._keys["pose"] = self.topics.topic("pose")
        data = msg.serialize()
        self._put(self._channel_id(topic.name, PoseStamped, topic.qos), data, stamp_ns)
        self._frames.pose(msg, data, stamp_ns)

    def write_reference(
        self,
        position_m: Sequence[float],
        stamp_ns: int,
        quaternion_xyzw: Sequence[float] | None = None,
        frame_id: str = frames.WORLD,
    ) -> None:
        """Record the reference the policy tracks this cycle (after the runtime's clipping and rate limits, not
        the setpoint a planner asked for): ``policy/reference`` (PoseStamped), ``/tf`` ``world -> reference``
        and, when a pose in the same frame was recorded before, ``policy/tracking_error`` (Vector3Stamped: that
        position - reference, m). position_m: (3,) metres in ``frame_id`` (the world frame; an arm's base frame
        for an end-effector target, then ``base_link -> reference``); quaternion_xyzw: orientation, default
        the identity. Call it after :meth:`write_state` of the cycle's pose."""
        if self._error is not None or self._closed:
            self._check()
        self._frames.reference(position_m, stamp_ns, quaternion_xyzw, frame_id)

    def write_observation(self, values: Sequence[float], stamp_ns: int) -> None:
        """Record the observation vector (policy input, in the order of the observation spec)."""
        self._write_vector("observation", values, stamp_ns)

    def write_action(self, values: Sequence[float], stamp_ns: int) -> None:
        """Record the raw policy action vector (before scaling and the safety layer)."""
        self._write_vector("action", values, stamp_ns)

    def write_excitation(self, values: Sequence[float], stamp_ns: int) -> None:
        """Record the normalized excitation added to this cycle's command (deploy.runtime.excitation)."""
        self._write_vector("excitation", values, stamp_ns)

    def _write_vector(self, key: str, values: Sequence[float], stamp_ns: int) -> None:
        # Every cycle writes an observation and an action: after the first of each length, the CDR bytes are a
        # cached prefix (encapsulation, layout, element count) and the packed floats, checked equal to what
        # the generic serializer wrote for that first message.
        if self._error is not None or self._closed:
            self._check()
        fast = self._vectors.get((key, len(values)))
        if fast is not None:
            prefix, packer, channel_id = fast
            self._put(channel_id, prefix + packer.pack(*values), stamp_ns)
            return
        msg = _vector(values, key)
        self.write_key(key, msg, stamp_ns)
        data, n = msg.serialize(), len(values)
        prefix, packer = data[: len(data) - 4 * n], struct.Struct(f"<{n}f")
        if data[:2] == b"\x00\x01" and prefix + packer.pack(*msg.data) == data:  # little-endian CDR
            self._vectors[(key, n)] = (prefix, packer, self._channels[self._keys[key].name][2])

    def write_command(self, msg: Any, stamp_ns: int) -> None:
        """Record the command sent to the robot: MotorCommand or RateThrustCommand (quadrotor), JointCommand (arm,
        legs)."""
        for key in ("motor_command", "rate_command", "joint_command"):
            if type(msg) is self.topics.topics[key].msg_type:
                self.write_key(key, msg, stamp_ns)
                if key == "joint_command" and self._joint_names is None:
                    self._joint_names = list(msg.name)
                return
        raise TypeError(
            f"{type(msg).__name__} is not a command message; expected MotorCommand, RateThrustCommand or JointCommand"
        )

    def write_safety_transition(self, from_state: str, to_state: str, reason: str, check: str, stamp_ns: int) -> None:
        """Record a safety state machine transition (e.g. ACTIVE -> FALLBACK, reason, name of the check)."""
        msg = SafetyTransition(make_header(stamp_ns), from_state, to_state, reason, check)
        self.write_key("safety_transition", msg, stamp_ns)

    def write_safety_transitions(self, transitions: Sequence, first: int, offset_ns: int = 0) -> int:
        """Record ``transitions[first:]`` (a safety layer's :class:`Transition` list, which only grows) and return
        the index to pass next time, so each transition is written once. ``offset_ns``: added to the transitions'
        times (the layer's monotonic clock) to give the log's clock (ROS time: ROS time - monotonic)."""
        for tr in transitions[first:]:
            self.write_safety_transition(
                tr.from_state.name, tr.to_state.name, tr.reason, tr.check or "", round(tr.time_s * 1e9) + offset_ns
            )
        return len(transitions)

    def write_timing(
        self, inference_s: float, cycle_s: float, jitter_s: float, deadline_misses: int, stamp_ns: int
    ) -> None:
        """Record one control cycle's timing: inference time, cycle period, jitter (s), missed deadlines."""
        msg = LoopTiming(make_header(stamp_ns), inference_s, cycle_s, jitter_s, deadline_misses)
        self.write_key("timing", msg, stamp_ns)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Block until everything written so far is in closed chunks in the file (and fsynced if enabled)."""
        self._check()
        self.written = self._pipe.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write the summary (indexes, statistics) and close the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        written = self._pipe.close(timeout_s)
        if written is not None:
            self.written = written
        if self.dropped:
            log.warning("recorder dropped %d messages (pipe full)", self.dropped)
        log.info("closed %s: %d messages", self.path, self.written)
        if self._error is not None:
            raise RecorderError(f"recording to {str(self.path)!r} failed: {self._error}")
        if self._viewer_files:
            from deploy.recording.viewer_files import write_viewer_files

            topics = {topic: channel[1] for topic, channel in self._channels.items()}
            write_viewer_files(self.path, topics, self._joint_names)

    @property
    def healthy(self) -> bool:
        """False once a write to disk has failed (the runtime should treat this as a safety event)."""
        if not self._closed:
            self._pipe.poll_failed()
        return self._error is None and not self._closed

    @property
    def writer_pid(self) -> int:
        """Process id of the writer process (it outlives a killed control process to finish the file)."""
        return self._pipe.proc.pid

    def __enter__(self) -> FlightRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ checks and channels

    def _check(self) -> None:
        if self._error is not None:
            self._pipe.raise_error()
        if self._closed:
            raise RecorderError(f"recorder for {str(self.path)!r} is closed; open a new FlightRecorder")

    def _channel(self, topic: str, cls: type, qos: QosProfile | str | None) -> tuple[type, str, int]:
        info = message_info(cls)
        known = self._channels.get(topic)
        if known is not None:
            if known[1] != info.ros_type:
                raise RecorderError(
                    f"topic {topic} is recorded as {known[1]}; got {info.ros_type}. One topic, one type."
                )
            channel = (cls, known[1], known[2])
        else:
            channel = (cls, info.ros_type, len(self._channels) + 1)
            spec = {
                "id": channel[2],
                "topic": topic,
                "ros_type": info.ros_type,
                "schema": info.full_definition,
                "qos_yaml": offered_qos_yaml(DEFAULT if qos is None else resolve_qos(qos)),
            }
            self._pipe.put_control(wp.frame(wp.CHANNEL, json.dumps(spec).encode()))  # never dropped, never waits
        self._channels[topic] = channel
        return channel


def _vector(values: Sequence[float], label: str) -> Float32MultiArray:
    data = [float(v) for v in values]
    layout = MultiArrayLayout(dim=[MultiArrayDimension(label, len(data), len(data))], data_offset=0)
    return Float32MultiArray(layout=layout, data=data)
