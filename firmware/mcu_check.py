"""The exported policy on the Crazyflie's microcontroller family, checked under QEMU. Torch-free.

Builds ``policy.h`` with the on-board controller's step (firmware/crazyflie/src/sim2real_cf.c) and a bare-metal
harness (firmware/qemu) for a Cortex-M4F with ``arm-none-eabi-gcc``, then checks what the Crazyflie would get:

- size: flash (text + data) and RAM (data + bss) against a budget (:data:`FLASH_BUDGET`, :data:`RAM_BUDGET`);
- no double-precision arithmetic (``__aeabi_d*``, ``__*df*`` helpers), no allocation (``malloc``, ``free``...) and
  nothing unresolved in the linked program (``arm-none-eabi-nm``);
- outputs: QEMU's ``netduinoplus2`` (STM32F405, as in a Crazyflie 2.x) runs the policy on observations and its
  commands are compared with onnxruntime's on the same observations;
- instructions per inference, counted by QEMU (``-icount shift=0`` and a timer, see firmware/qemu/harness.c).

Usage: ``python -m firmware.mcu_check runs/.../policy.onnx --obs observations.npy`` prints JSON.
Tools: ``gcc-arm-none-eabi`` and ``qemu-system-arm`` (Debian/Ubuntu packages; ``make firmware-tools``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware.layout import write_layout

HERE = Path(__file__).resolve().parent
QEMU_DIR, CF_SRC = HERE / "qemu", HERE / "crazyflie" / "src"
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
CFLAGS = [
    *CPU_FLAGS,
    "-std=c99",
    "-O2",
    "-fno-math-errno",
    "-ffreestanding",
    "-Wall",
    "-Wextra",
    "-Wconversion",
    "-Werror=double-promotion",  # a float promoted to double is an error, not a slow surprise
    "-Werror",
]
LDFLAGS = ["-nostdlib", "-Wl,--gc-sections", "-T", str(QEMU_DIR / "netduinoplus2.ld")]
SOURCES = [QEMU_DIR / "startup.c", QEMU_DIR / "harness.c", CF_SRC / "sim2real_cf.c"]
FLASH_BUDGET = 128 * 1024  # bytes: an eighth of the STM32F405's 1 MB, beside a ~300 KB Crazyflie firmware
RAM_BUDGET = 8 * 1024  # bytes of static RAM, of the 128 KB (+ 64 KB CCM) the firmware shares out
# Double-precision helpers of the ARM EABI and libgcc, and the allocator: none may be linked.
DOUBLE_SYMBOL = re.compile(r"^(__aeabi_(d\w+|cd\w+|f2d|u?i2d|u?l2d)|__\w*df\w*)$")
ALLOC_SYMBOL = re.compile(r"^(malloc|free|calloc|realloc|_malloc_r|_free_r|_sbrk|sbrk|__wrap_malloc)$")
APT_HINT = (
    "install them with `make firmware-tools` or `sudo apt-get install --no-install-recommends gcc-arm-none-eabi "
    "qemu-system-arm` (Debian/Ubuntu)"
)


class McuError(RuntimeError):
    """A tool is missing, the build failed, or QEMU did not run the program to its end."""


@dataclass(frozen=True)
class Toolchain:
    gcc: str
    size: str
    nm: str
    qemu: str


def find_toolchain() -> Toolchain | None:
    """The cross compiler, binutils and QEMU on PATH, or None when any is missing."""
    found = [
        shutil.which(n) for n in ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm")
    ]
    return Toolchain(*found) if all(found) else None  # type: ignore[arg-type]


def require_toolchain() -> Toolchain:
    tools = find_toolchain()
    if tools is None:
        raise McuError(
            f"arm-none-eabi-gcc, arm-none-eabi-size, arm-none-eabi-nm and qemu-system-arm are needed: {APT_HINT}"
        )
    return tools


@dataclass(frozen=True)
class SizeReport:
    """Bytes of the linked program (``arm-none-eabi-size``): flash = text + data, RAM = data + bss."""

    text: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


@dataclass
class McuRun:
    """What the harness reported. commands: (N, A) physical commands from the Cortex-M4 code."""

    commands: np.ndarray
    insn_per_inference: float  # mean over the N observations
    insn_min: int
    insn_max: int
    step_insn: int  # one controller step: observation, policy, last action, motor map
    nop_check: int  # a block of 1000 NOPs counted by the same method: 1000 when the count is exact
    layout_ok: bool  # policy.h and policy_layout.h declare the same observation spec


#: what the Crazyflie firmware compiles with instead (crazyflie-firmware Makefile: -Os; Kbuild: gnu11, which lets GCC
#: fuse multiply-adds): ``build(..., extra_flags=FIRMWARE_FLAGS)``
FIRMWARE_FLAGS = ("-Os", "-std=gnu11")


def build(onnx_path: Path, work: Path, tools: Toolchain | None = None, extra_flags: tuple[str, ...] = ()) -> Path:
    """Generate the headers for ``onnx_path`` in ``work`` (firmware.layout) and link the QEMU harness there;
    ``extra_flags`` come after :data:`CFLAGS` and override them."""
    tools = tools or require_toolchain()
    work.mkdir(parents=True, exist_ok=True)
    write_layout(Path(onnx_path), work)
    elf = work / "policy_mcu.elf"
    cmd = [tools.gcc, *CFLAGS, *extra_flags, f"-I{work}", f"-I{QEMU_DIR}", f"-I{CF_SRC}", *map(str, SOURCES), *LDFLAGS]
    res = subprocess.run([*cmd, "-o", str(elf), "-lgcc"], capture_output=True, text=True)
    if res.returncode != 0:
        raise McuError(f"building the Cortex-M4 harness failed:\n{' '.join(cmd)}\n{res.stderr[-4000:]}")
    return elf


def size_of(elf: Path, tools: Toolchain | None = None) -> SizeReport:
    tools = tools or require_toolchain()
    out = subprocess.run([tools.size, "-B", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return SizeReport(text, data, bss)


def symbols(elf: Path, tools: Toolchain | None = None) -> dict[str, str]:
    """name -> nm type letter ('U' for undefined) of every symbol in the linked program."""
    tools = tools or require_toolchain()
    out = subprocess.run([tools.nm, str(elf)], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            table[parts[-1]] = parts[-2]
    return table


def forbidden_symbols(table: dict[str, str]) -> dict[str, list[str]]:
    """The linked symbols that must not be there: double helpers, the allocator, anything undefined."""
    return {
        "double": sorted(n for n in table if DOUBLE_SYMBOL.match(n)),
        "allocation": sorted(n for n in table if ALLOC_SYMBOL.match(n)),
        "undefined": sorted(n for n, kind in table.items() if kind in ("U", "w", "v")),
    }


def run_qemu(
    elf: Path, obs: np.ndarray, work: Path, action_dim: int = 4, timeout_s: float = 60.0, tools=None
) -> McuRun:
    """Run the harness on ``obs`` (N, D) float32 under qemu-system-arm's netduinoplus2."""
    tools = tools or require_toolchain()
    obs = np.ascontiguousarray(obs, dtype=np.float32)
    obs.tofile(work / "obs.bin")
    (work / "out.bin").unlink(missing_ok=True)
    cmd = [tools.qemu, "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "null"]
    cmd += ["-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
    try:
        res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise McuError(f"QEMU did not finish in {timeout_s} s: {' '.join(cmd)}") from None
    console = res.stdout + res.stderr  # QEMU 7.2 writes the semihosting console to stderr
    found = re.search(r"sim2real-mcu (n=.*)", console)
    if res.returncode != 0 or not found:
        raise McuError(
            f"QEMU exited with status {res.returncode} (1 bad obs.bin, 2 cannot write, 3 CPU fault) and printed:\n"
            f"{console[-3000:]}"
        )
    values = {k: int(v) for k, v in (item.split("=") for item in found.group(1).split())}
    if values["n"] != obs.shape[0]:
        raise McuError(f"the harness ran {values['n']} observations, {obs.shape[0]} were given")
    commands = np.fromfile(work / "out.bin", dtype=np.float32).reshape(obs.shape[0], action_dim)
    return McuRun(
        commands=commands,
        insn_per_inference=values["insn_total"] / values["n"],
        insn_min=values["insn_min"],
        insn_max=values["insn_max"],
        step_insn=values["step_insn"],
        nop_check=values["nop_check"],
        layout_ok=bool(values["layout_ok"]),
    )


def check(onnx_path: Path, obs: np.ndarray, work: Path, mhz: float = 168.0, extra_flags: tuple[str, ...] = ()) -> dict:
    """Build, size, symbol check, QEMU run and comparison with onnxruntime; the figures as a JSON-able dict.

    ``max_abs_diff`` is in command units (RPM for a quadrotor), ``max_action_diff`` in normalized action units
    ((command - offset) / scale), the unit of the export's parity tolerance (1e-5)."""
    from policies.onnx_policy import load_policy

    tools = require_toolchain()
    policy = load_policy(onnx_path)
    elf = build(onnx_path, work, tools, extra_flags)
    size = size_of(elf, tools)
    bad = forbidden_symbols(symbols(elf, tools))
    run = run_qemu(elf, obs, work, policy.action_spec.dim, tools=tools)
    expected = policy(np.asarray(obs, dtype=np.float32))
    diff = np.abs(run.commands.astype(np.float64) - expected)
    return {
        "cflags": " ".join([*CFLAGS, *extra_flags]),
        "text_bytes": size.text,
        "data_bytes": size.data,
        "bss_bytes": size.bss,
        "flash_bytes": size.flash,
        "ram_bytes": size.ram,
        "forbidden_symbols": bad,
        "observations": int(obs.shape[0]),
        "insn_per_inference": run.insn_per_inference,
        "insn_min": run.insn_min,
        "insn_max": run.insn_max,
        "step_insn": run.step_insn,
        "nop_check": run.nop_check,
        "est_us_at_mhz": run.insn_per_inference / mhz,
        "est_step_us_at_mhz": run.step_insn / mhz,
        "mhz": mhz,
        "max_abs_diff": float(diff.max()),
        "max_action_diff": float((diff / np.asarray(policy.action_spec.scale)).max()),
        "layout_ok": run.layout_ok,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware.mcu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("policy", type=Path, help="policy.onnx from `sim2real export` (policy.h beside it)")
    p.add_argument("--obs", type=Path, required=True, help=".npy of (N, D) float32 observations (e.g. logged)")
    p.add_argument("--work", type=Path, default=Path("out/mcu"), help="build directory")
    args = p.parse_args(argv)
    report = check(args.policy, np.load(args.obs), args.work)
    print(json.dumps(report, indent=2))
    bad = any(report["forbidden_symbols"].values())
    return 1 if bad or report["flash_bytes"] > FLASH_BUDGET or report["ram_bytes"] > RAM_BUDGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
