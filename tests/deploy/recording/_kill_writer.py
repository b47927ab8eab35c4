"""Control process for the SIGKILL tests: ``python -m tests.deploy.recording._kill_writer PATH``.

Prints ``writer PID`` (the recorder's writer process), then writes observation i = [i, 0.5 i] at a high rate
forever; after every flush() it prints ``flushed N`` (N messages are then in closed chunks in the file). The
tests kill it, and maybe its writer process, with SIGKILL.
"""

from __future__ import annotations

import sys

from deploy.recording import FlightRecorder


def main(path: str) -> None:
    rec = FlightRecorder(path, flush_interval_s=0.02, chunk_size=8 * 1024, min_free_bytes=0)
    sys.stdout.write(f"writer {rec.writer_pid}\n")
    sys.stdout.flush()
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
