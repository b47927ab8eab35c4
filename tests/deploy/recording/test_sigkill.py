"""SIGKILL during a run: of the control process (the writer process finishes the file), and of both processes
(the file is readable up to its last complete chunk)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcap.reader import make_reader
from rosbags.highlevel import AnyReader

from deploy.recording import read_log

ROOT = Path(__file__).resolve().parents[3]


def run_and_kill(path: Path, kill_writer: bool) -> tuple[int, int]:
    """Start the control process, let it flush >= 3000 messages, SIGKILL it (and its writer first if
    ``kill_writer``). Returns (messages flushed before the kill, writer pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.deploy.recording._kill_writer", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flushed, writer = 0, 0
    deadline = time.monotonic() + 60.0
    try:
        while flushed < 3000 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            word, number = line.split()
            if word == "writer":
                writer = int(number)
            else:
                flushed = int(number)
    finally:
        if kill_writer and writer:
            os.kill(writer, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert flushed >= 3000 and writer, proc.stderr.read()  # type: ignore[union-attr]
    return flushed, writer


def wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    """Wait until ``pid`` has exited (gone, or a zombie nobody reaps)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"writer process {pid} still running {timeout_s} s after the control process died")


def assert_prefix(contents, flushed: int) -> int:
    n = len(contents.messages)
    assert n >= flushed, f"only {n} messages recovered, {flushed} were flushed before the kill"
    # exactly a prefix of what was written: observation i = [i, 0.5 i], sequence i, stamp 1e9 + 1000 i
    assert [m.msg.data for m in contents.messages] == [[float(i), 0.5 * i] for i in range(n)]
    assert [m.sequence for m in contents.messages] == list(range(n))
    assert [m.log_time_ns for m in contents.messages] == [1_000_000_000 + i * 1_000 for i in range(n)]
    return n


def test_sigkill_of_the_control_process_leaves_a_complete_log(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    flushed, writer = run_and_kill(path, kill_writer=False)
    wait_gone(writer)  # it drains the pipe, writes the summary and exits by itself

    contents = read_log(path)
    assert contents.complete and contents.truncated_at is None, contents.problem
    assert "without close()" in contents.metadata["sim2real_recorder"]["ended"]
    n = assert_prefix(contents, flushed)
    assert contents.metadata["sim2real_recorder"]["messages"] == str(n)
    with AnyReader([path]) as reader:  # the other readers need no repair (`mcap recover`) either
        assert sum(1 for _ in reader.messages()) == n
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
        assert summary is not None and summary.statistics.message_count == n


def test_sigkill_of_both_processes_leaves_a_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    flushed, _ = run_and_kill(path, kill_writer=True)

    contents = read_log(path)
    assert not contents.complete
    assert contents.truncated_at is not None and contents.truncated_at <= contents.file_size
    assert "did not close the log" in contents.problem
    assert_prefix(contents, flushed)
