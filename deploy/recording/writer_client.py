"""The control process's end of the flight recorder's writer process: start it, feed it, hear its answers.

:class:`WriterPipe` starts ``writer_process.py``, sends its ``OPEN`` frame and waits for ``ready``, then takes
frames (the wire format is in :mod:`deploy.recording.writer_process`) without ever blocking the caller: one
non-blocking ``write`` per message; while the pipe is full, frames wait in order here (``backlog``), up to
``max_queue`` messages, then messages are dropped and counted. Control frames (channels, flush, close) never drop.
Any failure of the writer (an answer ``failed <reason>``, a broken pipe, no progress within a timeout) is kept in
:attr:`WriterPipe.error` and raised as :class:`RecorderError`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import select
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

from deploy.recording import writer_process as wp
from deploy.recording.errors import RecorderError

log = logging.getLogger(__name__)
_PIPE_BYTES = 1 << 20  # asked for; Linux grants up to /proc/sys/fs/pipe-max-size (1 MiB by default)


class WriterPipe:
    """A running writer process for the log ``path``. config: the ``OPEN`` frame's fields (see writer_process);
    max_queue: messages that may wait here while the pipe is full; start_timeout_s: how long the writer may take to
    start and write the file header. Raises RecorderError when it does not answer ``ready``."""

    def __init__(self, path: Path, config: dict[str, Any], max_queue: int, start_timeout_s: float) -> None:
        self.path = path
        self.error: str | None = None  # why the writer failed; no frame is sent after it is set
        self.dropped = 0  # messages not recorded because the pipe was full (writer too slow)
        self.backlog: deque[bytes | memoryview] = deque()  # frames waiting for room in the pipe, in order
        self._max_queue = max_queue
        self._status = b""  # unread answers of the writer process
        self._token = 0
        self.proc = subprocess.Popen(
            [sys.executable, wp.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C meant for the control process does not cut the log short
        )
        self._out = self.proc.stdin.fileno()  # type: ignore[union-attr]
        self._in = self.proc.stdout.fileno()  # type: ignore[union-attr]
        _grow_pipe(self._out)
        self.send(wp.frame(wp.OPEN, json.dumps(config).encode()), start_timeout_s)
        answer = self.answer(lambda line: True, start_timeout_s)
        if answer != "ready":
            self.proc.wait(5.0)
            reason = answer.removeprefix("error ") if answer else "the writer process did not start"
            raise RecorderError(
                f"cannot write the log file {str(path)!r}: {reason}. "
                "Check free space and permissions, or choose another path."
            )
        os.set_blocking(self._out, False)

    def raise_error(self) -> None:
        """Raise RecorderError for :attr:`error` (set)."""
        raise RecorderError(
            f"recording to {str(self.path)!r} failed: {self.error}. Later messages are not recorded; "
            "check free space on the log disk."
        )

    def put(self, frame: bytes) -> None:
        """Send one message frame now, or queue it behind those waiting, or drop it when ``max_queue`` wait."""
        if self.backlog:
            if len(self.backlog) >= self._max_queue:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("recorder queue full: %d messages dropped so far (disk too slow?)", self.dropped)
            else:
                self.backlog.append(frame)
            self.drain()
            return
        try:
            sent = os.write(self._out, frame)
        except BlockingIOError:
            sent = 0
        except BrokenPipeError:
            self.writer_gone()
        if sent < len(frame):  # the pipe is full: the rest waits here, in order, for the next write or flush
            self.backlog.append(memoryview(frame)[sent:])

    def put_control(self, frame: bytes) -> None:
        """Queue a frame that is never dropped and never waited for (a channel), and send what the pipe takes."""
        self.backlog.append(frame)
        self.drain()

    def send(self, data: bytes, timeout_s: float) -> None:
        """Write ``data`` after everything waiting; raises when the writer takes nothing for ``timeout_s``."""
        if data:
            self.backlog.append(data)
        deadline = time.monotonic() + timeout_s
        while self.backlog:
            waiting = len(self.backlog), len(self.backlog[0])
            self.drain()
            if (len(self.backlog), len(self.backlog[0]) if self.backlog else 0) != waiting:
                deadline = time.monotonic() + timeout_s  # the writer is taking data: a long backlog is fine
            elif self.backlog:
                if time.monotonic() > deadline:
                    self.error = f"the writer process took no data for {timeout_s} s (disk stalled?)"
                    self.raise_error()
                select.select([], [self._out], [], 0.01)

    def drain(self) -> None:
        """Write as much of the backlog as the pipe takes now, without waiting."""
        while self.backlog:
            batch = list(islice(self.backlog, 64))
            try:
                sent = os.writev(self._out, batch)
            except BlockingIOError:
                return
            except BrokenPipeError:
                self.writer_gone()
            for frame in batch:
                if sent < len(frame):
                    if sent:
                        self.backlog[0] = memoryview(frame)[sent:]
                    return
                sent -= len(frame)
                self.backlog.popleft()

    def answer(self, wanted: Callable[[str], bool], timeout_s: float) -> str:
        """Read the writer's answers until one is ``wanted``, one is ``failed ...``, the writer is gone ('') or
        ``timeout_s`` passes (''). Returns that line."""
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\n" in self._status:
                line, self._status = self._status.split(b"\n", 1)
                text = line.decode(errors="replace")
                if wanted(text) or text.startswith(("failed ", "error ")):
                    return text
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._in], [], [], max(remaining, 0.0))
            if not ready:
                return ""
            chunk = os.read(self._in, 65536)
            if not chunk:
                return ""
            self._status += chunk

    def writer_gone(self, answer: str | None = None) -> None:
        """The writer process failed or exited: remember why and raise RecorderError."""
        if answer is None:
            answer = self.answer(lambda line: line.startswith("failed "), 1.0)
        code = self.proc.poll()
        self.error = _reason(answer) if answer else f"the writer process exited (status {code})"
        self.raise_error()

    def flush(self, timeout_s: float) -> int:
        """Block until everything sent so far is in closed chunks in the file; returns the messages written."""
        self._token += 1
        token = self._token
        deadline = time.monotonic() + timeout_s
        self.send(wp.frame(wp.FLUSH, wp.TOKEN.pack(token)), timeout_s)  # after the backlog
        prefix = f"flushed {token} "
        answer = self.answer(lambda line: line.startswith(prefix), max(deadline - time.monotonic(), 0.0))
        if answer.startswith(prefix):
            return int(answer.split()[2])
        if not answer and self.proc.poll() is None:
            raise RecorderError(f"recorder did not flush within {timeout_s} s (disk stalled?)")
        self.writer_gone(answer)
        raise AssertionError("unreachable: writer_gone raises")

    def close(self, timeout_s: float) -> int | None:
        """Ask the writer to write the summary and exit, wait for it and close the pipes. Returns the messages
        written as the writer confirmed, or None (then :attr:`error` says why) or when it had failed before."""
        written = None
        if self.error is None:
            try:
                self.send(wp.frame(wp.CLOSE), timeout_s)
            except RecorderError:
                pass
            answer = self.answer(lambda line: line.startswith("closed "), timeout_s)
            if answer.startswith("closed "):
                written = int(answer.split()[1])
            elif self.error is None:
                self.error = _reason(answer) if answer else "the writer process did not confirm the close"
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("writer process %d still finishing %s; left to complete on its own", self.proc.pid, self.path)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        return written

    def poll_failed(self) -> bool:
        """Look (without waiting) for a ``failed`` answer or an exited writer; True once it has failed."""
        if self.error is None:
            answer = self.answer(lambda line: line.startswith("failed "), 0.0)
            if answer or self.proc.poll() is not None:
                self.error = _reason(answer) if answer else f"the writer process exited ({self.proc.returncode})"
        return self.error is not None


def _reason(answer: str) -> str:
    return answer.split(" ", 1)[1] if " " in answer else answer


def _grow_pipe(fd: int) -> None:
    """Make the pipe to the writer hold ~1 MiB (seconds of a 1 kHz loop) instead of Linux's default 64 KiB."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError) as err:
        if getattr(err, "errno", None) not in (errno.EPERM, errno.EBUSY, None):
            log.debug("could not grow the recorder pipe: %s", err)
