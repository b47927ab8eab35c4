"""The policy and the on-board step, built for a Cortex-M4F and run under QEMU's netduinoplus2 (STM32F405).

Budgets (firmware/mcu_check.py): flash 128 KB of the STM32F405's 1 MB, static RAM 8 KB of its 128 KB; no double
helper, no allocator, nothing unresolved; commands equal onnxruntime's within 1e-5 normalized action units (the
export's parity tolerance; 0.07 RPM here); instructions per inference counted by QEMU, exactly (1000 NOPs count
1000).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from firmware.mcu_check import (
    CFLAGS,
    FLASH_BUDGET,
    RAM_BUDGET,
    McuError,
    forbidden_symbols,
    run_qemu,
    symbols,
)
from policies.onnx_policy import load_policy

ACTION_ATOL = 1e-5  # normalized action units: (command - offset) / scale


def test_size_fits_the_budget_and_holds_the_weights(mcu, exported):
    policy = load_policy(exported / "policy.onnx")
    text = (exported / "policy.h").read_text()
    params = int(text.split("#define SIM2REAL_POLICY_NUM_PARAMS ")[1].split()[0])
    assert policy.obs_spec.dim == 100 and params == 100 * 2 + 100 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4 + 16
    assert mcu.size.flash <= FLASH_BUDGET, f"{mcu.size} over the flash budget {FLASH_BUDGET}"
    assert mcu.size.ram <= RAM_BUDGET, f"{mcu.size} over the RAM budget {RAM_BUDGET}"
    # the weights are in flash (const), not copied to RAM, and the code around them is small
    assert 4 * params <= mcu.size.text <= 4 * params + 16 * 1024
    assert mcu.size.data == 0
    # RAM: the two static layer buffers (2 x 100 floats), the observation state, the harness's buffers
    assert 800 <= mcu.size.bss <= 4096
    print(f"\ncortex-m4 build: text {mcu.size.text} B, data {mcu.size.data} B, bss {mcu.size.bss} B")


def test_no_double_no_allocation_nothing_undefined(mcu):
    bad = forbidden_symbols(mcu.symbols)
    assert bad == {"double": [], "allocation": [], "undefined": []}
    assert "sim2real_cf_policy" in mcu.symbols and "Reset_Handler" in mcu.symbols


def test_the_symbol_check_catches_double_arithmetic(toolchain, tmp_path):
    """The check above can fail: a double slipped into float code links __aeabi_d* helpers and is caught."""
    src = tmp_path / "leak.c"
    src.write_text("float leak(float x) { return (float)(x * 0.1); }\nvoid *malloc(unsigned int n);\n"
                   "void *grab(void) { return malloc(4); }\n")  # fmt: skip
    obj = tmp_path / "leak.o"
    flags = [f for f in CFLAGS if f not in ("-Werror", "-Werror=double-promotion")]
    subprocess.run([toolchain.gcc, *flags, "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
    bad = forbidden_symbols(symbols(obj, toolchain))
    assert bad["double"] and all(n.startswith("__aeabi_") for n in bad["double"])
    assert bad["allocation"] == ["malloc"] and "malloc" in bad["undefined"]


def test_qemu_commands_equal_onnxruntime(mcu, exported, sim_obs):
    policy = load_policy(exported / "policy.onnx")
    expected = policy(mcu.obs)
    assert mcu.run.commands.shape == expected.shape == (mcu.obs.shape[0], 4)
    assert sim_obs.shape[0] >= 20 and np.isfinite(sim_obs).all() and np.abs(sim_obs).max() > 0.1
    diff = np.abs(mcu.run.commands.astype(np.float64) - expected) / np.asarray(policy.action_spec.scale)
    assert diff.max() <= ACTION_ATOL, f"max {diff.max():.2e} normalized, observation {diff.max(1).argmax()}"
    # the observations move the policy: commands differ between rows (a constant output would pass a loose check)
    assert np.ptp(mcu.run.commands[: sim_obs.shape[0]], axis=0).max() > 1.0  # RPM
    assert mcu.run.layout_ok
    print(f"\nQEMU vs onnxruntime: max {diff.max():.2e} normalized, {np.abs(mcu.run.commands - expected).max()} RPM")


def test_instructions_per_inference_are_counted_exactly_and_sane(mcu):
    run = mcu.run
    assert run.nop_check == 1000  # the counting method is exact on this QEMU
    macs = 100 * 64 + 64 * 64 + 64 * 4
    # at least one instruction per multiply-accumulate, at most 12 (the -O2 loop takes about 6)
    assert macs <= run.insn_per_inference <= 12 * macs
    # almost data independent: a saturated tanh (|x| > 8.75) skips its polynomial, nothing else branches on data
    assert run.insn_max - run.insn_min <= 0.05 * run.insn_per_inference
    assert run.insn_per_inference < run.step_insn < run.insn_per_inference + 5000  # observation + motor map
    print(
        f"\n{run.insn_per_inference:.0f} instructions per inference ({run.insn_min}-{run.insn_max}), "
        f"{run.step_insn} per controller step; at 168 MHz, one instruction per cycle: "
        f"{run.insn_per_inference / 168:.0f} us (an estimate: instructions, not cycles)"
    )


def test_a_bad_observation_file_is_reported(mcu, toolchain):
    with pytest.raises(McuError, match="status 1"):
        run_qemu(mcu.elf, np.zeros((2, 7), dtype=np.float32), mcu.work, tools=toolchain)
