"""Replay throughput: messages/s read and replayed for a long high-rate log (default 10 minutes at 500 Hz).

The log is flown in simulation (PID baseline, random setpoints, the deploy topics and messages, written by the
flight recorder) for ``--flown-minutes`` (default 1) and repeated end to end, stamps shifted, up to ``--minutes``
(flying 10 minutes at 500 Hz takes ~8 minutes on CPU-2, longer when it is shared); kept at ``--log`` for later
runs. Generation is not part of the measured numbers.
Measured: reading the log into arrays (messages/s), open-loop replay of the exported hover policy on every
logged observation (cycles/s), re-simulation at 0.1/0.5/1 s horizons from a start state every 0.1 s.

    .venv/bin/python benchmarks/replay.py [--minutes 10] [--rate 500] [--log /tmp/sim2real_replay_bench.mcap]

Prints one JSON object; wall seconds and CPU seconds of this process (on a shared machine the latter is the
cost of the work).
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
    ap.add_argument("--flown-minutes", type=float, default=1.0, help="minutes actually flown, then repeated")
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
        t, c = time.perf_counter(), time.process_time()
        flown = path.with_name(path.stem + "_flown.mcap")
        flown.unlink(missing_ok=True)
        seconds = min(args.flown_minutes, args.minutes) * 60
        fly(flown, SyntheticFlight(seconds=seconds, control_hz=args.rate, excitation=0.05, seed=1))
        _repeat(flown, path, round(args.minutes * 60 / seconds), seconds)
        flown.unlink()
        generated_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    f = load_flight(path, needed=("pose", "twist", "command", "observation", "action"))
    read_s = time.perf_counter() - t
    read_cpu_s = time.process_time() - c
    policy = load_policy(ROOT / "tests" / "data" / "hover_policy.onnx")
    t, c = time.perf_counter(), time.process_time()
    r = replay_policy(f, policy)
    replay_s = time.perf_counter() - t
    replay_cpu_s = time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    gap = measure_gap(f)
    resim_s = time.perf_counter() - t
    resim_cpu_s = time.process_time() - c
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
                "read_cpu_s": read_cpu_s,
                "read_messages_per_cpu_s": f.message_count / read_cpu_s,
                "policy_replay_cycles": len(r.t),
                "policy_replay_s": replay_s,
                "policy_replay_cycles_per_s": len(r.t) / replay_s,
                "policy_replay_cycles_per_cpu_s": len(r.t) / replay_cpu_s,
                "resim_windows": gap["horizons"][-1]["windows"],
                "resim_s": resim_s,
                "resim_cpu_s": resim_cpu_s,
                "resim_window_steps_per_s": gap["horizons"][-1]["windows"] * args.rate * 1.0 / resim_s,
                "resim_windows_total": windows,
                "load_average_1min": os.getloadavg()[0],
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    return 0


def _repeat(src: Path, dst: Path, times: int, period_s: float) -> None:
    """Write ``src`` ``times`` times end to end into ``dst``, log times and header stamps shifted by the period."""
    import struct

    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer

    shift = round(period_s * 1e9)
    with open(src, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        records = [(channel, message) for _, channel, message in reader.iter_messages(log_time_order=True)]
    with open(dst, "wb") as out:
        writer = Writer(out, compression=CompressionType.ZSTD)
        writer.start(profile="ros2", library="sim2real-replay-benchmark")
        schema_ids = {sid: writer.register_schema(s.name, s.encoding, s.data) for sid, s in summary.schemas.items()}
        channel_ids = {
            cid: writer.register_channel(c.topic, c.message_encoding, schema_ids[c.schema_id], c.metadata)
            for cid, c in summary.channels.items()
        }
        stamped = {
            cid
            for cid, c in summary.channels.items()
            if summary.schemas[c.schema_id].name != "std_msgs/msg/Float32MultiArray"
        }
        for k in range(times):
            for channel, message in records:
                data = message.data
                if channel.id in stamped and k:
                    sec, nsec = struct.unpack_from("<iI", data, 4)
                    ns = sec * 1_000_000_000 + nsec + k * shift
                    data = data[:4] + struct.pack("<iI", ns // 1_000_000_000, ns % 1_000_000_000) + data[12:]
                t = message.log_time + k * shift
                writer.add_message(channel_ids[channel.id], t, data, t)
        writer.finish()


if __name__ == "__main__":
    raise SystemExit(main())
