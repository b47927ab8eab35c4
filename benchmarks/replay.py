"""Replay throughput: messages/s read and replayed for a long high-rate log (default 10 minutes at 500 Hz).

The log is flown once in simulation (PID baseline, random setpoints, the deploy topics and messages, written by
the flight recorder) and kept at ``--log`` for later runs; generation is not part of the measured numbers.
Measured: reading the log into arrays (messages/s), open-loop replay of the exported hover policy on every
logged observation (cycles/s), re-simulation at 0.1/0.5/1 s horizons from a start state every 0.1 s.

    .venv/bin/python benchmarks/replay.py [--minutes 10] [--rate 500] [--log /tmp/sim2real_replay_bench.mcap]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=500.0, help="control rate of the log, Hz")
    ap.add_argument("--log", type=Path, default=None, help="log to (re)use; generated when missing")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from calibration.resim import measure_gap
    from calibration.sysid.synthetic import SyntheticFlight, fly
    from deploy.replay import load_flight
    from deploy.replay.policy_replay import replay_policy
    from policies.onnx_policy import load_policy

    path = args.log or Path(f"/tmp/sim2real_replay_bench_{args.minutes:g}min_{args.rate:g}hz.mcap")
    generated_s = None
    if not path.exists():
        t = time.perf_counter()
        flight = SyntheticFlight(seconds=args.minutes * 60, control_hz=args.rate, excitation=0.05, seed=1)
        fly(path, flight)
        generated_s = time.perf_counter() - t
    t = time.perf_counter()
    f = load_flight(path, needed=("pose", "twist", "command", "observation", "action"))
    read_s = time.perf_counter() - t
    policy = load_policy(ROOT / "tests" / "data" / "hover_policy.onnx")
    t = time.perf_counter()
    r = replay_policy(f, policy)
    replay_s = time.perf_counter() - t
    t = time.perf_counter()
    gap = measure_gap(f)
    resim_s = time.perf_counter() - t
    windows = sum(h["windows"] for h in gap["horizons"])
    print(
        json.dumps(
            {
                "benchmark": "replay",
                "log": str(path),
                "log_bytes": os.path.getsize(path),
                "log_seconds": f.duration_s,
                "rate_hz": args.rate,
                "messages": f.message_count,
                "generate_s": generated_s,
                "read_s": read_s,
                "read_messages_per_s": f.message_count / read_s,
                "policy_replay_cycles": len(r.t),
                "policy_replay_s": replay_s,
                "policy_replay_cycles_per_s": len(r.t) / replay_s,
                "resim_windows": gap["horizons"][-1]["windows"],
                "resim_s": resim_s,
                "resim_window_steps_per_s": gap["horizons"][-1]["windows"] * args.rate * 1.0 / resim_s,
                "resim_windows_total": windows,
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
