"""Fixtures for the train/export/eval tests: one small training run shared by the session.

Small models on a 2-core machine shared with other work run several times faster on one intra-op thread (no
thread-pool contention), so these fixtures pin torch to one thread while they run and restore it after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

SMALL_ENVS = 64
SMALL_ITERATIONS = 3


def small_cfg(task: str = "quadrotor-hover", seed: int = 0, iterations: int = SMALL_ITERATIONS, envs: int = SMALL_ENVS):
    from policies.train_cfg import train_cfg

    cfg = train_cfg(task)
    cfg.seed, cfg.num_envs, cfg.max_iterations, cfg.save_interval = seed, envs, iterations, 1
    return cfg


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class TrainedRun:
    run_dir: Path
    runner: Any  # rsl_rl OnPolicyRunner after training (its actor is the reference for parity)
    paths: dict[str, Path]  # exported files: onnx, header


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Iterator[TrainedRun]:
    from policies.export import export
    from policies.train import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("train") / "run"
    result = train(small_cfg(), run_dir, progress=False)
    paths = export(run_dir)
    torch.set_num_threads(before)
    yield TrainedRun(run_dir, result.runner, paths)
