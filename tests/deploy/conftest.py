"""Fixtures of the articulated deploy tests: policies exported from tiny training runs, made once per session.

For each articulated task: ``trained`` (one PPO iteration of 4 envs x 8 steps, exported with `sim2real export`'s
code) and ``zero`` (the same file with the last layer zeroed: action 0, i.e. joint targets = default pose).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.transport import LOOPBACK_CONFIG
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]


def _export_pair(task: str, root: Path) -> dict[str, Path]:
    import numpy as np
    import onnx

    from policies.actor import load_checkpoint
    from policies.export import build_onnx, export, metadata_of
    from policies.train import train
    from policies.train_cfg import train_cfg

    cfg = train_cfg(task)
    cfg.seed, cfg.num_envs, cfg.max_iterations, cfg.save_interval = 0, 4, 1, 1
    cfg.ppo.num_steps_per_env = 8
    run_dir = root / task
    train(cfg, run_dir, progress=False)
    trained = export(run_dir, header=False)["onnx"]
    ck = load_checkpoint(run_dir)
    w, b = ck.weights.layers[-1]
    ck.weights.layers[-1] = (np.zeros_like(w), np.zeros_like(b))
    zero = root / f"{task}-zero.onnx"
    onnx.save(build_onnx(ck.weights, ck.action_spec, metadata_of(ck)), str(zero))
    return {"trained": trained, "zero": zero}


@pytest.fixture(scope="session")
def articulated_policies(tmp_path_factory) -> dict[str, dict[str, Path]]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("articulated_policies")
    try:
        return {task: _export_pair(task, root) for task in ("legged-walk", "arm-reach")}
    finally:
        torch.set_num_threads(before)


def start_sil(task: str, seconds: float, *extra: str) -> tuple[int, subprocess.Popen]:
    """drivers.sim_articulated_node as a separate process on a random ROS 2 domain (loopback only)."""
    domain = random_domain()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    cmd = [sys.executable, "-m", "drivers.sim_articulated_node", "--task", task, "--seconds", str(seconds), *extra]
    return domain, subprocess.Popen(cmd, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def legged_sil() -> Iterator[int]:
    """The simulated A1, lying as in launch/sim_a1.yaml, for the tests of one module (reset between them)."""
    import yaml

    sil = yaml.safe_load((ROOT / "launch" / "sim_a1.yaml").read_text())["sil"]
    pose = ",".join(str(v) for v in sil["start_joint_position_rad"])
    domain, proc = start_sil(
        "legged-walk", 120, "--seed", "3", "--start-pose", pose, "--start-height", str(sil["start_height_m"])
    )
    yield domain
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def arm_sil() -> Iterator[int]:
    domain, proc = start_sil("arm-reach", 90, "--seed", "3")
    yield domain
    proc.kill()
    proc.wait(timeout=10)
