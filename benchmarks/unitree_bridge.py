"""The Unitree Go2 bridge's per-write cost: what one LowCmd at the robot's 500 Hz costs the robot computer.

Times, per call (median of ``--repeats`` runs of ``--number`` calls each): the CRC of a packed LowCmd
(drivers.unitree_crc), building the bridge's LowCmd message from targets (drivers.unitree_convert.LowCmdFrame:
set the targets, the message, its CRC), cyclonedds' CDR serialization of that message, the CRC check of a LowState
(drivers.unitree_crc.crc_ok), and, where Unitree's Python SDK is installed (the Makefile installs it), Unitree's own
CRC of the same LowCmd for comparison. The sum of the bridge's steps against the 2 ms period of 500 Hz is the budget.

    .venv/bin/python benchmarks/unitree_bridge.py [--number 2000] [--repeats 5]

prints one JSON line: {"cpu", "per_call_us": {...}, "write_us", "period_us", "budget_fraction"}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from deploy.msgs.unitree import LowState_
from drivers.unitree_convert import LowCmdFrame, MotorTargets
from drivers.unitree_crc import crc_of_packed, crc_ok, with_crc


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=2000, help="calls per timed run")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    ap.add_argument("--rate", type=float, default=500.0, help="the robot's LowCmd rate, Hz")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    frame = LowCmdFrame(12)
    targets = MotorTargets(*(rng.uniform(-1.0, 1.0, 12) for _ in range(3)), np.full(12, 20.0), np.full(12, 0.5))
    frame.set(targets)
    message = frame.message()
    state = with_crc(LowState_())
    cases = {
        "crc_of_packed_lowcmd": lambda: crc_of_packed(frame.packed),
        "build_lowcmd_message": lambda: (frame.set(targets), frame.message()),
        "serialize_lowcmd_cdr": message.serialize,
        "check_lowstate_crc": lambda: crc_ok(state),
    }
    try:
        from unitree_sdk2py.utils.crc import CRC

        reference = CRC()
        cases["unitree_sdk_crc_lowcmd"] = lambda: reference.Crc(message)
    except ImportError:
        pass
    per_call = {}
    for name, fn in cases.items():
        runs = timeit.repeat(fn, number=args.number, repeat=args.repeats)
        per_call[name] = round(1e6 * statistics.median(runs) / args.number, 2)
    write = per_call["build_lowcmd_message"] + per_call["serialize_lowcmd_cdr"]
    period = 1e6 / args.rate
    print(
        json.dumps(
            {
                "benchmark": "unitree_bridge",
                "cpu": cpu_model(),
                "per_call_us": per_call,
                "write_us": round(write, 2),
                "period_us": period,
                "budget_fraction": round(write / period, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
