"""rsl_rl's ``OnPolicyRunner`` whose deployed actor may be a moving average of the one PPO updates.

``TrainCfg.deploy_average`` = d > 0: after every iteration the deployed actor's parameters move towards the online
actor's, ``deployed = d * deployed + (1 - d) * online`` (its observation normalizer is the online one's, copied).
The deployed actor is what evaluation sees (``get_inference_policy``, e.g. ``benchmarks/train_legged.py``'s periodic
evaluation) and what checkpoints carry as ``actor_state_dict`` (so ``export`` and ``eval`` use it); the online actor
is kept beside it as ``online_actor_state_dict``. The TD3 learner deploys its Polyak-averaged target actor the same
way (``policies.td3``). Why: a PPO update with the adaptive learning rate moves a legged policy's walk by a few
hundredths of a m/s from one evaluation to the next; the average of the last ~1 / (1 - d) iterations does not
jump with the last update (docs/training.md, "Deployed average").
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from rsl_rl.runners import OnPolicyRunner
from torch import nn


class ActorAverage:
    """An exponential moving average (decay per :meth:`update`) of ``actor``'s parameters; buffers copied."""

    def __init__(self, actor: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"deploy_average: expected a decay in (0, 1), got {decay!r}")
        self.online, self.decay = actor, float(decay)
        self.module = copy.deepcopy(actor).requires_grad_(False)

    @torch.no_grad()
    def update(self) -> None:
        deployed, online = list(self.module.parameters()), list(self.online.parameters())
        torch._foreach_lerp_(deployed, online, 1.0 - self.decay)
        for mine, theirs in zip(self.module.buffers(), self.online.buffers(), strict=True):
            mine.copy_(theirs)


class Runner(OnPolicyRunner):
    """``OnPolicyRunner`` with :attr:`average` (None: deploy the online actor, as rsl_rl does)."""

    average: ActorAverage | None = None

    def get_inference_policy(self, device: str | None = None) -> Any:
        if self.average is None:
            return super().get_inference_policy(device)
        self.alg.eval_mode()
        return self.average.module.eval().to(device)

    def save(self, path: str, infos: dict | None = None) -> None:
        if self.average is None:
            return super().save(path, infos)
        saved = self.alg.save()
        saved["online_actor_state_dict"] = saved["actor_state_dict"]
        saved["actor_state_dict"] = self.average.module.state_dict()
        saved["iter"] = self.current_learning_iteration
        saved["infos"] = infos
        torch.save(saved, path)
