"""Observations to check an on-board build with: the exported policy flying the simulator (needs torch).

No flight log of this repository holds quadrotor observations yet, so the checks use what the simulator records
while the exported policy (onnxruntime, the file the robot gets) flies fresh episodes: noise, latency, history and
the integral as the policy sees them. A logged array (``np.save``) can replace them in ``python -m firmware.mcu_check``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def record_observations(onnx_path: Path, envs: int = 4, steps: int = 8, seed: int = 7) -> np.ndarray:
    """(envs * steps, D) float32 policy observations of ``envs`` simulated vehicles flown for ``steps`` steps."""
    import torch

    from policies.onnx_policy import load_policy
    from sim.tasks import make_env

    policy = load_policy(onnx_path)
    env = make_env(policy.task, envs, seed=seed)
    obs, _ = env.reset()
    rows = []
    for _ in range(steps):
        x = obs["policy"].numpy().astype(np.float32)
        rows.append(x)
        _, action = policy.run(x)
        obs, *_ = env.step(torch.from_numpy(np.asarray(action, dtype=np.float32)))
    return np.concatenate(rows)
