"""Per-step observation noise that compiles into fused kernels.

``torch.Generator`` cannot be used inside ``torch.compile``, and eager draws cost milliseconds per step at
65536 envs, so per-step noise is read from a table of standard-normal draws made once from the env's
generator: env ``n`` at step ``t`` reads row ``(n * A + t * B + n // K) mod K`` of a (K, D) table (K prime,
A and B coprime to K; one contiguous row per env keeps the gather cache-friendly). Consecutive steps of one
env read unrelated rows, the sequence of an env repeats only
after K steps (655 s at 100 Hz for K = 65537), and every value is an exact N(0, 1) draw from the seed.
"""

from __future__ import annotations

import torch

TABLE_ROWS = 65537  # prime
_ENV_STRIDE = 40503  # coprime to TABLE_ROWS
_STEP_STRIDE = 9973  # prime, coprime to TABLE_ROWS


def make_noise_table(dim: int, generator: torch.Generator, rows: int = TABLE_ROWS) -> torch.Tensor:
    """(rows, dim) standard-normal draws from ``generator``."""
    return torch.randn(rows, dim, generator=generator, device=generator.device)


def table_normal(table: torch.Tensor, counter: torch.Tensor, num_envs: int) -> torch.Tensor:
    """(num_envs, dim) standard-normal noise for step ``counter`` (int64 scalar tensor). Pure and compilable."""
    rows = table.shape[0]
    env = torch.arange(num_envs, device=table.device)
    row = (env * _ENV_STRIDE + counter * _STEP_STRIDE + env // rows) % rows
    return table[row]
