"""Recorder process for the SIGKILL test: ``python -m tests.deploy.recording._kill_writer PATH``.

Writes observation i = [i, 0.5 i] at a high rate forever; after every flush() it prints ``flushed N`` (N
messages are then in closed chunks in the file). The test kills it with SIGKILL.
"""

from __future__ import annotations

import sys

from deploy.recording import FlightRecorder


def main(path: str) -> None:
    rec = FlightRecorder(path, flush_interval_s=0.02, chunk_size=8 * 1024, min_free_bytes=0)
    i = 0
    while True:
        rec.write_observation([float(i), 0.5 * i], 1_000_000_000 + i * 1_000)
        i += 1
        if i % 500 == 0:
            rec.flush()
            sys.stdout.write(f"flushed {i}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
