"""Read a flight log back, including one cut short (SIGKILL, power loss) that has no summary section.

:func:`read_log` walks the file record by record, keeps every complete record (chunks are CRC-checked), and
reports where the file stops making sense instead of raising: a crashed run still gives all messages of
its closed chunks. For complete files, any MCAP reader works as well (rosbags, mcap-ros2-support,
Foxglove, ``ros2 bag``).
"""

from __future__ import annotations

import io
import logging
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from mcap.exceptions import EndOfFile, McapError
from mcap.records import Channel, Footer, Message, Metadata, Schema
from mcap.stream_reader import StreamReader

from deploy.msgs import UnknownMessageTypeError, message_info

log = logging.getLogger(__name__)
MAGIC = b"\x89MCAP0\r\n"
_RECORD_HEADER = struct.Struct("<BQ")


class LogFormatError(ValueError):
    """The file is not an MCAP flight log at all (bad magic, unreadable)."""


@dataclass(frozen=True)
class LoggedMessage:
    """One recorded message: ROS 2 topic and type, log time (ns), CDR bytes, and the decoded message
    (a deploy.msgs instance for known types, else an mcap-ros2-support dynamic object)."""

    topic: str
    ros_type: str
    log_time_ns: int
    publish_time_ns: int
    sequence: int
    data: bytes
    msg: Any


@dataclass
class LogContents:
    """What :func:`read_log` found. ``complete`` is True when the file ends with a footer and magic; otherwise
    ``truncated_at`` is the byte offset where the last complete record ends (data after it is lost)."""

    path: str
    file_size: int
    messages: list[LoggedMessage] = field(default_factory=list)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    complete: bool = False
    truncated_at: int | None = None
    problem: str = ""

    def topic(self, name: str) -> list[LoggedMessage]:
        """The messages of one topic, in file order."""
        return [m for m in self.messages if m.topic == name]


def read_log(path: str | os.PathLike[str], *, decode: bool = True) -> LogContents:
    """All complete messages of the MCAP file at ``path``, in file order; truncation is reported, not raised."""
    with open(path, "rb") as f:
        blob = f.read()
    result = LogContents(path=str(path), file_size=len(blob))
    if not blob.startswith(MAGIC):
        raise LogFormatError(f"{str(path)!r} is not an MCAP file (first bytes {blob[:8]!r}, expected {MAGIC!r})")
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    decoders: dict[int, Any] = {}
    pos = len(MAGIC)
    while True:
        if pos + _RECORD_HEADER.size > len(blob):
            return _truncated(result, pos, "file ends inside a record header")
        _, length = _RECORD_HEADER.unpack_from(blob, pos)
        end = pos + _RECORD_HEADER.size + length
        if end > len(blob):
            return _truncated(result, pos, f"file ends inside a record of {length} bytes")
        try:
            records = _parse(blob[pos:end])
        except (McapError, ValueError, struct.error, OSError) as err:  # CRC mismatch, bad compression
            return _truncated(result, pos, f"corrupt record: {err}")
        for record in records:
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Metadata):
                result.metadata[record.name] = dict(record.metadata)
            elif isinstance(record, Message):
                channel = channels[record.channel_id]
                schema = schemas[channel.schema_id]
                msg = _decode(schema, record.data, decoders) if decode else None
                result.messages.append(
                    LoggedMessage(
                        channel.topic,
                        schema.name,
                        record.log_time,
                        record.publish_time,
                        record.sequence,
                        record.data,
                        msg,
                    )
                )
            elif isinstance(record, Footer):
                result.complete = blob[end:] == MAGIC
                if not result.complete:
                    return _truncated(result, end, "footer not followed by the closing magic")
                return result
        pos = end


def _parse(record_bytes: bytes) -> list[Any]:
    reader = StreamReader(io.BytesIO(record_bytes), skip_magic=True, validate_crcs=True)
    out: list[Any] = []
    try:
        for record in reader.records:
            out.append(record)
    except EndOfFile:
        pass
    return out


def _decode(schema: Schema, data: bytes, decoders: dict[int, Any]) -> Any:
    """With the project's class when the file's definition is today's; otherwise (a log written before a message
    changed, e.g. MotorCommand before it carried the vehicle id, or a type of another package) from the schema
    the file carries, so old logs stay readable."""
    try:
        info = message_info(schema.name)
        if schema.data.decode(errors="replace") == info.full_definition:
            return info.cls.deserialize(data)
    except UnknownMessageTypeError:
        pass
    if schema.id not in decoders:
        from mcap_ros2.decoder import DecoderFactory

        decoders[schema.id] = DecoderFactory().decoder_for("cdr", schema)
    return decoders[schema.id](data)


def _truncated(result: LogContents, pos: int, why: str) -> LogContents:
    result.truncated_at = pos
    result.problem = (
        f"{why} at byte {pos} of {result.file_size}: the run did not close the log (crash or kill?). "
        f"{len(result.messages)} messages up to that point were recovered."
    )
    log.warning("%s: %s", result.path, result.problem)
    return result
