"""A bounded residual actor: a frozen prior policy plus a residual that PPO trains, whose reach is bounded.

    mean action = prior(x) + scale * tanh(residual(x)),   x = the actor's normalized observation

Residual policy learning (Silver et al. 2018, Johannink et al., ICRA 2019) around a prior that already flies
carefully: the hover task's prior is a DAgger student of the safety layer's motor-aware fallback controller
(``benchmarks/hover_residual.py``, docs/training.md "A bounded residual on the student"), which crashes a quarter as
often as PPO from scratch but hovers loosely; PPO then tightens the hover within ``scale`` of the prior's command
(normalized action units) and, in that measurement, kept most of the prior's caution.

Both parts are plain MLPs on the same normalized observation, so the pair is one stateless network: the checkpoint
holds it as ``mlp.prior.<i>.*``, ``mlp.residual.<i>.*`` and ``mlp.scale`` beside the normalizer
(:func:`policies.actor.weights_from_state_dict` reads them), and export writes it into the ONNX and the C header as
one graph. Nothing of the prior's teacher runs at deploy time.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

INITIAL_LAST_LAYER_GAIN = 0.01  # the residual's last layer starts this small: training starts at the prior


class BoundedResidual(nn.Module):
    """``prior(x) + scale * tanh(residual(x))`` with the prior frozen. ``scale`` > 0, normalized action units; the
    residual's last linear layer is scaled by :data:`INITIAL_LAST_LAYER_GAIN` and its bias zeroed, so the module
    starts within ``0.01 * scale`` of the prior."""

    def __init__(self, prior: nn.Module, residual: nn.Module, scale: float) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"residual scale: expected a positive reach in normalized action units, got {scale}")
        linears = [m for m in residual.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("the residual must contain at least one nn.Linear layer")
        self.prior, self.residual = prior.requires_grad_(False), residual
        self.register_buffer("scale", torch.tensor(float(scale)))
        with torch.no_grad():
            linears[-1].weight.mul_(INITIAL_LAST_LAYER_GAIN)
            linears[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prior(x) + self.scale * torch.tanh(self.residual(x))


def wrap_in_residual(runner: Any, scale: float) -> BoundedResidual:
    """Turn the PPO runner's actor (an rsl_rl ``MLPModel``: ``actor.mlp`` on the normalized observation) into prior +
    bounded residual in place: its current MLP becomes the frozen prior, a copy of it the residual (same shape, last
    layer shrunk), and the optimizer is rebuilt over what is still trainable (the residual and the critic). For
    :func:`policies.train.train`'s ``on_start``, after the prior has been fitted. Returns the new ``actor.mlp``."""
    actor = runner.alg.actor
    actor.mlp = BoundedResidual(copy.deepcopy(actor.mlp), copy.deepcopy(actor.mlp), scale)
    trainable = [q for q in [*actor.parameters(), *runner.alg.critic.parameters()] if q.requires_grad]
    runner.alg.optimizer = type(runner.alg.optimizer)(trainable, lr=runner.alg.learning_rate)
    actor.train()
    return actor.mlp
