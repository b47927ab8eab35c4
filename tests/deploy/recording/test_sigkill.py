"""A recorder killed with SIGKILL leaves a log readable up to its last complete chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy.recording import read_log

ROOT = Path(__file__).resolve().parents[3]


def test_sigkill_leaves_a_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.deploy.recording._kill_writer", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flushed = 0
    deadline = time.monotonic() + 30.0
    try:
        while flushed < 3000 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            flushed = int(line.split()[1])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert flushed >= 3000, proc.stderr.read()  # type: ignore[union-attr]

    contents = read_log(path)
    assert not contents.complete
    assert contents.truncated_at is not None and contents.truncated_at <= contents.file_size
    assert "did not close the log" in contents.problem
    n = len(contents.messages)
    assert n >= flushed, f"only {n} messages recovered, {flushed} were flushed before the kill"
    # exactly a prefix of what was written: observation i = [i, 0.5 i], sequence i, stamp 1e9 + 1000 i
    assert [m.msg.data for m in contents.messages] == [[float(i), 0.5 * i] for i in range(n)]
    assert [m.sequence for m in contents.messages] == list(range(n))
    assert [m.log_time_ns for m in contents.messages] == [1_000_000_000 + i * 1_000 for i in range(n)]
