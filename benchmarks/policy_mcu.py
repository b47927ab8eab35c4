"""The hover policy on the Crazyflie's microcontroller family: size, instructions per inference, parity. JSON out.

Builds policy.h with the on-board controller's step for a Cortex-M4F (arm-none-eabi-gcc -O2, hard float; and again
with the firmware's own -Os -std=gnu11, under "firmware_flags") and runs
it under QEMU's netduinoplus2 (STM32F405) on observations the simulator records while the same ONNX file flies it
(firmware/sim_observations.py), then compares with onnxruntime (firmware/mcu_check.py). The microseconds are an
estimate: QEMU counts instructions, and the Cortex-M4 at 168 MHz spends more than one cycle on loads, divisions
and taken branches (flash wait states too), so real time is longer.

    .venv/bin/python benchmarks/policy_mcu.py [--policy tests/data/hover_policy_history.onnx] [--envs 8 --steps 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware.mcu_check import FIRMWARE_FLAGS, FLASH_BUDGET, RAM_BUDGET, check, require_toolchain  # noqa: E402
from firmware.sim_observations import record_observations  # noqa: E402


def cpu_model() -> str:
    try:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bridge_latency import cpu_model as bridge_cpu_model

        return bridge_cpu_model()
    except Exception:  # its imports (DDS, PX4 messages) are not needed here; fall back to the platform
        return platform.processor() or platform.machine()


def tool_versions() -> dict[str, str]:
    tools = require_toolchain()
    first = {}
    for name, path in (("gcc", tools.gcc), ("qemu", tools.qemu)):
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        first[name] = out.splitlines()[0] if out else "?"
    return first


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", type=Path, default=ROOT / "tests" / "data" / "hover_policy_history.onnx")
    p.add_argument("--envs", type=int, default=8, help="simulated vehicles recording observations")
    p.add_argument("--steps", type=int, default=16, help="control steps recorded per vehicle")
    p.add_argument("--mhz", type=float, default=168.0, help="clock of the estimate (Crazyflie 2.x: 168 MHz)")
    args = p.parse_args(argv)
    obs = record_observations(args.policy, args.envs, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        report = check(args.policy, obs, Path(tmp) / "o2", args.mhz)
        firmware = check(args.policy, obs, Path(tmp) / "firmware", args.mhz, FIRMWARE_FLAGS)
    keys = ("cflags", "text_bytes", "bss_bytes", "insn_per_inference", "step_insn", "est_us_at_mhz", "max_action_diff")
    report["firmware_flags"] = {k: firmware[k] for k in keys}
    report.update(
        policy=str(args.policy.relative_to(ROOT) if args.policy.is_relative_to(ROOT) else args.policy),
        flash_budget_bytes=FLASH_BUDGET,
        ram_budget_bytes=RAM_BUDGET,
        estimate="instructions / MHz: one instruction per cycle, a lower bound on the real time",
        host_cpu=cpu_model(),
        tools=tool_versions(),
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
