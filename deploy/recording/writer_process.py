"""The flight recorder's writer process: owns the MCAP file, fed by the control process through a pipe.

Run by :class:`deploy.recording.FlightRecorder` as ``python writer_process.py`` (a script, so the child imports
nothing but the standard library and ``mcap``; no DDS, no onnxruntime). Zstd compression, chunking and
mcap's Python code then run in a process of their own and never hold the control process's GIL.

Wire format, control process -> writer (stdin), little endian: a frame is ``kind u8, length u32`` and
``length`` bytes of payload.

- ``OPEN``: JSON ``{path, overwrite, chunk_size, compression, fsync, flush_interval_s, metadata}``; first
  frame, once. The writer answers ``ready`` or ``error <reason>``.
- ``CHANNEL``: JSON ``{id, topic, ros_type, schema, qos_yaml}``; before the first message of the channel.
- ``MESSAGE``: ``channel u16, log_time_ns u64`` then the CDR bytes.
- ``FLUSH``: ``token u32``: close the open chunk, answer ``flushed <token> <written>``.
- ``CLOSE``: write the summary, answer ``closed <written>``, exit.

Writer -> control process (stdout): one line per answer; ``failed <reason>`` when a write to disk fails
(the writer then exits). End of input without ``CLOSE`` (the control process died, even by SIGKILL) still
writes the summary, with a metadata record ``sim2real_recorder: {ended: ...}`` saying so. SIGTERM does the
same; SIGINT is ignored (the control process decides when the recording ends).
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import sys
import time
from typing import Any

OPEN, CHANNEL, MESSAGE, FLUSH, CLOSE = 1, 2, 3, 4, 5
FRAME = struct.Struct("<BI")  # kind, payload length
MESSAGE_HEAD = struct.Struct("<BIHQ")  # kind, payload length, channel id, log time ns (frame header included)
MESSAGE_FIELDS = struct.Struct("<HQ")
TOKEN = struct.Struct("<I")
LIBRARY = "sim2real-flight-recorder/1"
ENDED_KEY = "sim2real_recorder"
_READ_SIZE = 1 << 20
_POLL_S = 0.1  # longest wait without looking at the SIGTERM flag


def frame(kind: int, payload: bytes = b"") -> bytes:
    """One control frame (everything but MESSAGE, which the recorder packs itself)."""
    return FRAME.pack(kind, len(payload)) + payload


class _Writer:
    def __init__(self, config: dict[str, Any], answer) -> None:
        from mcap.writer import CompressionType, Writer

        compression = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}
        self.answer = answer
        self.fsync = bool(config["fsync"])
        self.flush_interval_s = float(config["flush_interval_s"])
        self.file = open(config["path"], "wb" if config["overwrite"] else "xb")
        self.mcap = Writer(
            self.file, chunk_size=int(config["chunk_size"]), compression=compression[config["compression"]]
        )
        self.mcap.start(profile="ros2", library=LIBRARY)
        for name, values in config["metadata"].items():
            self.mcap.add_metadata(name, values)
        self.flush()
        self.schemas: dict[str, int] = {}
        self.channels: dict[int, int] = {}  # recorder's channel id -> mcap channel id
        self.sequence: dict[int, int] = {}
        self.written = 0
        self.pending = False
        self.last_flush = time.monotonic()

    def channel(self, spec: dict[str, Any]) -> None:
        schema_id = self.schemas.get(spec["ros_type"])
        if schema_id is None:
            schema_id = self.mcap.register_schema(spec["ros_type"], "ros2msg", spec["schema"].encode())
            self.schemas[spec["ros_type"]] = schema_id
        self.channels[spec["id"]] = self.mcap.register_channel(
            spec["topic"], "cdr", schema_id, {"offered_qos_profiles": spec["qos_yaml"]}
        )
        self.sequence[spec["id"]] = 0

    def message(self, payload: memoryview) -> None:
        channel, log_time_ns = MESSAGE_FIELDS.unpack_from(payload)
        seq = self.sequence[channel]
        self.sequence[channel] = seq + 1
        data = bytes(payload[MESSAGE_FIELDS.size :])
        self.mcap.add_message(self.channels[channel], log_time_ns, data, log_time_ns, seq)
        self.written += 1
        self.pending = True

    def flush(self) -> None:
        self.mcap.flush()
        if self.fsync:
            os.fsync(self.file.fileno())
        self.pending, self.last_flush = False, time.monotonic()

    def timeout(self) -> float:
        if not self.pending:
            return _POLL_S
        return min(_POLL_S, max(0.0, self.flush_interval_s - (time.monotonic() - self.last_flush)))

    def finish(self, ended: str | None = None) -> None:
        if ended is not None:
            self.mcap.add_metadata(ENDED_KEY, {"ended": ended, "messages": str(self.written)})
        self.mcap.finish()
        self.file.flush()
        if self.fsync:
            os.fsync(self.file.fileno())
        self.file.close()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
        # started from a SCHED_FIFO thread: the writer must not compete with the control loop
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    fd_in = sys.stdin.buffer.fileno()
    out = sys.stdout

    def answer(line: str) -> None:
        try:
            out.write(line.replace("\n", " ") + "\n")
            out.flush()
        except OSError:  # the control process is gone: keep writing the file
            pass

    buf = bytearray()  # an incomplete frame left from the previous read
    writer: _Writer | None = None
    ended: str | None = None
    try:
        while True:
            timeout = writer.timeout() if writer is not None else _POLL_S
            ready, _, _ = select.select([fd_in], [], [], timeout)
            chunk = os.read(fd_in, _READ_SIZE) if ready else b""
            if ready and not chunk:
                ended = "input closed without close(): the control process ended or was killed"
                break
            if stop:
                ended = "stopped by SIGTERM"
                break
            data = bytes(buf) + chunk if buf else chunk
            view, pos, close = memoryview(data), 0, False
            while len(data) - pos >= FRAME.size:
                kind, length = FRAME.unpack_from(view, pos)
                if len(data) - pos - FRAME.size < length:
                    break
                payload = view[pos + FRAME.size : pos + FRAME.size + length]
                pos += FRAME.size + length
                if kind == MESSAGE:
                    writer.message(payload)  # type: ignore[union-attr]
                elif kind == CHANNEL:
                    writer.channel(json.loads(bytes(payload)))  # type: ignore[union-attr]
                elif kind == FLUSH:
                    writer.flush()  # type: ignore[union-attr]
                    answer(f"flushed {TOKEN.unpack(payload)[0]} {writer.written}")  # type: ignore[union-attr]
                elif kind == OPEN:
                    try:
                        writer = _Writer(json.loads(bytes(payload)), answer)
                    except OSError as err:
                        answer(f"error {err.strerror or err}")
                        return 1
                    answer("ready")
                elif kind == CLOSE:
                    close = True
                    break
                else:
                    raise ValueError(f"unknown frame kind {kind}")
            buf = bytearray(data[pos:])
            if close:
                break
            if writer is not None and writer.pending and writer.timeout() <= 0.0:
                writer.flush()
        if writer is not None:
            writer.finish(ended)
            answer(f"closed {writer.written}")
        return 0
    except Exception as err:  # a failed disk write, or a broken stream
        answer(f"failed {type(err).__name__}: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
