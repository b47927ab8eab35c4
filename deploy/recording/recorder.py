"""The flight recorder: every deploy run writes one MCAP file (ROS 2 profile, CDR, ``ros2msg`` schemas).

Open it before arming: the constructor runs :func:`preflight` and writes the file header, so an
unwritable path or a full disk is a :class:`RecorderError` on the ground, not in the air. Messages are
serialized in the caller (the same CDR bytes the transport sends) and written by a background thread, so
the control loop never waits for the disk. Chunks are closed every ``flush_interval_s`` seconds or
``chunk_size`` bytes, whichever comes first: a process killed with SIGKILL loses at most the chunk in
progress (about ``flush_interval_s`` of data); ``fsync=True`` extends that to power loss.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcap.writer import CompressionType, Writer

from deploy.msgs import (
    Float32MultiArray,
    LoopTiming,
    MultiArrayDimension,
    MultiArrayLayout,
    SafetyTransition,
    make_header,
    message_info,
)
from deploy.recording.errors import RecorderError
from deploy.recording.preflight import DEFAULT_MIN_FREE_BYTES, preflight
from deploy.recording.qos_yaml import offered_qos_yaml
from deploy.transport import DEFAULT, QosProfile, TransportConfig, resolve_qos

log = logging.getLogger(__name__)
LIBRARY = "sim2real-flight-recorder/1"
_COMPRESSION = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}


@dataclass(frozen=True)
class _Item:
    topic: str
    ros_type: str
    qos: QosProfile
    data: bytes
    log_time_ns: int
    publish_time_ns: int


class FlightRecorder:
    """Writes one deploy run to an MCAP file.

    path: ``*.mcap``, must not exist unless ``overwrite``; topics: the transport's topic table (names used
    by the convenience writers); chunk_size: bytes of uncompressed messages per chunk at most;
    flush_interval_s: longest time a message waits in an open chunk, seconds; compression: ``zstd``,
    ``lz4`` or ``none``; min_free_bytes: free space required at start, bytes; metadata: MCAP metadata
    records written first, ``{name: {key: value}}`` (e.g. robot profile hash, policy hash, git commit,
    observation layout).
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
    ) -> None:
        if compression not in _COMPRESSION:
            raise RecorderError(f"compression must be one of {sorted(_COMPRESSION)}, got {compression!r}")
        if flush_interval_s <= 0 or chunk_size <= 0:
            raise RecorderError(f"flush_interval_s and chunk_size must be > 0, got {flush_interval_s}, {chunk_size}")
        self.path = preflight(path, min_free_bytes=min_free_bytes, overwrite=overwrite)
        self.topics = topics or TransportConfig()
        self._flush_interval_s = flush_interval_s
        self._fsync = fsync
        try:
            self._file = open(self.path, "wb" if overwrite else "xb")
            self._writer = Writer(self._file, chunk_size=chunk_size, compression=_COMPRESSION[compression])
            self._writer.start(profile="ros2", library=LIBRARY)
            for name, values in (metadata or {}).items():
                self._writer.add_metadata(name, {str(k): str(v) for k, v in values.items()})
            self._writer.flush()
            self._sync()
        except OSError as err:
            raise RecorderError(
                f"cannot write the log file {str(self.path)!r}: {err.strerror or err}. "
                "Check free space and permissions, or choose another path."
            ) from err
        self._topic_types: dict[str, str] = {}
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence: dict[str, int] = {}
        self._queue: queue.Queue[_Item | threading.Event | None] = queue.Queue(maxsize=max_queue)
        self._error: BaseException | None = None
        self._closed = False
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="flight-recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.path)

    # ------------------------------------------------------------------ public API

    def write(self, topic: str, msg: Any, stamp_ns: int, *, qos: QosProfile | str | None = None) -> None:
        """Record ``msg`` (a deploy.msgs instance) on ROS 2 ``topic`` at log time ``stamp_ns`` (ns, same clock
        as the headers). Never blocks; raises RecorderError if the writer thread has failed."""
        self._check()
        info = message_info(msg)
        known = self._topic_types.setdefault(topic, info.ros_type)
        if known != info.ros_type:
            raise RecorderError(f"topic {topic} is recorded as {known}; got {info.ros_type}. One topic, one type.")
        profile = DEFAULT if qos is None else resolve_qos(qos)
        item = _Item(topic, info.ros_type, profile, msg.serialize(), int(stamp_ns), int(stamp_ns))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("recorder queue full: %d messages dropped so far (disk too slow?)", self.dropped)

    def write_key(self, key: str, msg: Any, stamp_ns: int) -> None:
        """Record ``msg`` on the topic of the transport table entry ``key`` (e.g. ``"imu"``)."""
        topic = self.topics.topic(key)
        if type(msg) is not topic.msg_type:
            raise TypeError(f"topic {key!r} carries {topic.msg_type.__name__}, got {type(msg).__name__}")
        self.write(topic.name, msg, stamp_ns, qos=topic.qos)

    def write_state(self, msg: Any, stamp_ns: int) -> None:
        """Record a robot state message; its type picks the topic (PoseStamped -> pose, TwistStamped -> twist,
        Imu -> imu, JointState -> joint_states, BatteryState -> battery)."""
        for key in ("pose", "twist", "imu", "joint_states", "battery"):
            if type(msg) is self.topics.topics[key].msg_type:
                self.write_key(key, msg, stamp_ns)
                return
        raise TypeError(
            f"{type(msg).__name__} is not a robot state message; expected PoseStamped, TwistStamped, "
            "Imu, JointState or BatteryState"
        )

    def write_observation(self, values: Sequence[float], stamp_ns: int) -> None:
        """Record the observation vector (policy input, in the order of the observation spec)."""
        self.write_key("observation", _vector(values, "observation"), stamp_ns)

    def write_action(self, values: Sequence[float], stamp_ns: int) -> None:
        """Record the raw policy action vector (before scaling and the safety layer)."""
        self.write_key("action", _vector(values, "action"), stamp_ns)

    def write_command(self, msg: Any, stamp_ns: int) -> None:
        """Record the command sent to the robot: MotorCommand (quadrotor) or JointState (arm, legs)."""
        for key in ("motor_command", "joint_command"):
            if type(msg) is self.topics.topics[key].msg_type:
                self.write_key(key, msg, stamp_ns)
                return
        raise TypeError(f"{type(msg).__name__} is not a command message; expected MotorCommand or JointState")

    def write_safety_transition(self, from_state: str, to_state: str, reason: str, check: str, stamp_ns: int) -> None:
        """Record a safety state machine transition (e.g. ACTIVE -> FALLBACK, reason, name of the check)."""
        msg = SafetyTransition(make_header(stamp_ns), from_state, to_state, reason, check)
        self.write_key("safety_transition", msg, stamp_ns)

    def write_timing(
        self, inference_s: float, cycle_s: float, jitter_s: float, deadline_misses: int, stamp_ns: int
    ) -> None:
        """Record one control cycle's timing: inference time, cycle period, jitter (s), missed deadlines."""
        msg = LoopTiming(make_header(stamp_ns), inference_s, cycle_s, jitter_s, deadline_misses)
        self.write_key("timing", msg, stamp_ns)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Block until everything written so far is in closed chunks in the file (and fsynced if enabled)."""
        self._check()
        done = threading.Event()
        self._queue.put(done)
        deadline = time.monotonic() + timeout_s
        while not done.wait(0.01):
            if not self._thread.is_alive():
                break
            if time.monotonic() > deadline:
                raise RecorderError(f"recorder did not flush within {timeout_s} s (disk stalled?)")
        self._check()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write the summary (indexes, statistics) and close the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self.dropped:
            log.warning("recorder dropped %d messages (queue full)", self.dropped)
        log.info("closed %s: %d messages", self.path, self.written)
        if self._error is not None:
            raise RecorderError(f"recording to {str(self.path)!r} failed: {self._error}") from self._error

    @property
    def healthy(self) -> bool:
        """False once a write to disk has failed (the runtime should treat this as a safety event)."""
        return self._error is None and not self._closed

    def __enter__(self) -> FlightRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writer thread

    def _check(self) -> None:
        if self._error is not None:
            raise RecorderError(
                f"recording to {str(self.path)!r} failed: {self._error}. Later messages are not recorded; "
                "check free space on the log disk."
            ) from self._error
        if self._closed:
            raise RecorderError(f"recorder for {str(self.path)!r} is closed; open a new FlightRecorder")

    def _run(self) -> None:
        last_flush = time.monotonic()
        pending = False
        try:
            while True:
                timeout = max(self._flush_interval_s - (time.monotonic() - last_flush), 0.0) if pending else None
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = threading.Event()  # flush on idle
                    item.set()
                if item is None:
                    break
                if isinstance(item, threading.Event):
                    self._flush_file()
                    last_flush, pending = time.monotonic(), False
                    item.set()
                    continue
                self._add(item)
                pending = True
                if time.monotonic() - last_flush >= self._flush_interval_s:
                    self._flush_file()
                    last_flush, pending = time.monotonic(), False
            self._writer.finish()
            self._sync()
        except BaseException as err:
            self._error = err
            log.error("flight recorder failed: %s", err)
            while True:  # release flush() waiters
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, threading.Event):
                    item.set()
        finally:
            try:
                self._file.close()
            except OSError as err:
                self._error = self._error or err

    def _add(self, item: _Item) -> None:
        schema_id = self._schemas.get(item.ros_type)
        if schema_id is None:
            info = message_info(item.ros_type)
            schema_id = self._writer.register_schema(item.ros_type, "ros2msg", info.full_definition.encode())
            self._schemas[item.ros_type] = schema_id
        channel_id = self._channels.get(item.topic)
        if channel_id is None:
            channel_id = self._writer.register_channel(
                item.topic, "cdr", schema_id, {"offered_qos_profiles": offered_qos_yaml(item.qos)}
            )
            self._channels[item.topic] = channel_id
        seq = self._sequence.get(item.topic, 0)
        self._sequence[item.topic] = seq + 1
        self._writer.add_message(channel_id, item.log_time_ns, item.data, item.publish_time_ns, seq)
        self.written += 1

    def _flush_file(self) -> None:
        self._writer.flush()
        self._sync()

    def _sync(self) -> None:
        if self._fsync:
            self._file.flush()
            os.fsync(self._file.fileno())


def _vector(values: Sequence[float], label: str) -> Float32MultiArray:
    data = [float(v) for v in values]
    layout = MultiArrayLayout(dim=[MultiArrayDimension(label, len(data), len(data))], data_offset=0)
    return Float32MultiArray(layout=layout, data=data)
