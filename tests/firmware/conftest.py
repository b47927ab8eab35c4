"""Fixtures of the on-board tests: one exported policy, simulator observations, one Cortex-M4 build, made once.

The cross tools (``arm-none-eabi-gcc``, ``qemu-system-arm``) are Debian packages (``make firmware-tools``). Where
they are missing these tests skip and say so, except with ``SIM2REAL_REQUIRE_FIRMWARE_TOOLS=1`` (``make test`` sets
it): then a missing tool fails them, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from firmware.mcu_check import APT_HINT, CF_SRC, McuRun, SizeReport, Toolchain, find_toolchain

REQUIRE_ENV = "SIM2REAL_REQUIRE_FIRMWARE_TOOLS"
HERE = Path(__file__).resolve().parent


def missing(what: str) -> None:
    message = f"{what} not found: {APT_HINT}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: the firmware tests must run here)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    tools = find_toolchain()
    if tools is None:
        missing("arm-none-eabi-gcc, arm-none-eabi-size, arm-none-eabi-nm or qemu-system-arm")
    return tools


@pytest.fixture(scope="session")
def host_cc() -> str:
    from policies.c_export import c_compiler

    cc = c_compiler()
    if cc is None:
        missing("a host C compiler (cc, gcc or clang)")
    return cc


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """A directory with policy.onnx and policy.h of the quadrotor-hover actor (real architecture, one tiny PPO
    iteration: weights near their initialisation), written by `sim2real export`'s code."""
    import torch

    from policies.export import export
    from policies.train import train
    from policies.train_cfg import train_cfg

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = train_cfg("quadrotor-hover")
        cfg.seed, cfg.num_envs, cfg.max_iterations, cfg.save_interval = 0, 4, 1, 1
        cfg.ppo.num_steps_per_env = 8
        run_dir = tmp_path_factory.mktemp("firmware_policy") / "run"
        train(cfg, run_dir, progress=False)
        export(run_dir)
    finally:
        torch.set_num_threads(before)
    return run_dir


@pytest.fixture(scope="session")
def sim_obs(exported) -> np.ndarray:
    """32 observations the exported policy saw flying 4 simulated vehicles for 8 steps."""
    from firmware.sim_observations import record_observations

    return record_observations(exported / "policy.onnx", envs=4, steps=8)


@dataclass
class McuBuild:
    elf: Path
    work: Path
    size: SizeReport
    symbols: dict[str, str]
    obs: np.ndarray  # (N, D): the simulator's, then random ones that saturate the hidden layers
    run: McuRun


@pytest.fixture(scope="session")
def mcu(toolchain, exported, sim_obs, tmp_path_factory) -> McuBuild:
    from firmware.mcu_check import build, run_qemu, size_of, symbols

    work = tmp_path_factory.mktemp("mcu")
    elf = build(exported / "policy.onnx", work, toolchain)
    rng = np.random.default_rng(3)
    wild = (rng.standard_normal((16, sim_obs.shape[1])) * 5.0).astype(np.float32)
    obs = np.concatenate([sim_obs, wild])
    return McuBuild(elf, work, size_of(elf, toolchain), symbols(elf, toolchain), obs, run_qemu(elf, obs, work, 4))


def build_host_step(cc: str, exported: Path, out: Path, quarter_turns: int) -> Path:
    """tests/firmware/host_step.c with the on-board step, for the host, with the given body quarter turns."""
    from firmware.layout import write_layout

    inc = out / "include"
    write_layout(exported / "policy.onnx", inc)
    exe = out / f"host_step_{quarter_turns + 1}"
    cmd = [cc, "-std=c99", "-O2", "-fno-math-errno", "-Wall", "-Wextra", "-Wdouble-promotion", "-Werror"]
    cmd += [f"-DSIM2REAL_CF_BODY_QUARTER_TURNS={quarter_turns}", f"-I{inc}", f"-I{CF_SRC}"]
    cmd += [str(HERE / "host_step.c"), str(CF_SRC / "sim2real_cf.c"), "-o", str(exe), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return exe
