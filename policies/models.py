"""The network the PPO learners build through rsl_rl: its ``MLPModel`` with a cheaper normalizer update.

The observation normalizer merges a batch with the same running-moment update as rsl_rl's
``EmpiricalNormalization``, but takes the batch's moments with :func:`policies.actor.batch_moments`: ``torch.var``
over the first dimension of a (16384, 138) batch took 6 ms where the two passes take 0.7 ms, and PPO updates both
normalizers once per iteration (~10 % of an iteration at 512 envs; docs/training.md, "Training", Model).

State dicts keep rsl_rl's keys (``obs_normalizer._mean`` / ``_var`` / ``_std`` / ``count``, ``mlp.<i>.*``), so
checkpoints, export and evaluation read them as before.
"""

from __future__ import annotations

from typing import Any

import torch
from rsl_rl.models import MLPModel as RslMLPModel
from rsl_rl.modules import EmpiricalNormalization
from torch import Tensor

from policies.actor import batch_moments


class RunningNormalization(EmpiricalNormalization):
    """rsl_rl's ``EmpiricalNormalization`` (same buffers, same forward, same merge) with :func:`batch_moments`;
    single process only."""

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        if not self.training or (self.until is not None and self.count >= self.until):
            return
        if torch.distributed.is_initialized():
            raise RuntimeError("RunningNormalization does not reduce across processes; use rsl_rl's MLPModel")
        mean_x, var_x = batch_moments(x)
        self.count += x.shape[0]
        rate = x.shape[0] / self.count
        delta = mean_x - self._mean
        self._mean += rate * delta
        self._var += rate * (var_x - self._var + delta * (mean_x - self._mean))
        torch.sqrt(self._var, out=self._std)


class MLPModel(RslMLPModel):
    """rsl_rl's ``MLPModel`` with :class:`RunningNormalization`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.obs_normalization:
            self.obs_normalizer = RunningNormalization(self.obs_dim)
