"""A state estimator trained with the policy: a small MLP regresses a privileged quantity (the base velocity) from
the actor's own observation, and its estimate is the actor's extra input.

Concurrent estimation (Ji et al., "Concurrent Training of a Control Policy and a State Estimator for Dynamic and
Robust Legged Locomotion", IEEE RA-L 7(2), 2022): the estimator is supervised with the simulator's true value (a
term of the critic's observation), on the same rollouts PPO learns from, after each PPO update; PPO's gradient does
not reach it (the estimate enters the actor detached). Exported with the actor in one ONNX
(:func:`policies.export.build_onnx`), its input is the robot's observation only: on the robot nothing else changes.

    obs -> (obs - mean) / denom = x -> estimator MLP -> e;  [x, e] -> actor MLP -> action

``TrainCfg.actor.estimator`` (:class:`policies.train_cfg.EstimatorCfg`) turns it on; the Go2 variant uses it
(launch/tasks/legged-walk/go2.yaml, docs/articulated.md "Go2").
"""

from __future__ import annotations

from typing import Any

import torch
from rsl_rl.modules import MLP
from tensordict import TensorDict
from torch import Tensor

from policies.models import MLPModel


class EstimatorMLPModel(MLPModel):
    """:class:`policies.models.MLPModel` whose MLP reads the normalized observation followed by an estimator's
    output. State dict: the MLPModel's keys plus ``estimator.<i>.weight`` / ``.bias``."""

    def __init__(
        self,
        *args: Any,
        estimator_dim: int = 3,
        estimator_hidden_dims: tuple[int, ...] | list[int] = (128, 64),
        **kwargs: Any,
    ) -> None:
        if estimator_dim <= 0:
            raise ValueError(f"estimator_dim: expected a positive size, got {estimator_dim}")
        self.estimator_dim = int(estimator_dim)  # read by _get_latent_dim during the parent's __init__
        super().__init__(*args, **kwargs)
        activation = kwargs.get("activation", "elu")  # the actor's
        self.estimator = MLP(self.obs_dim, self.estimator_dim, list(estimator_hidden_dims), activation)

    def _get_latent_dim(self) -> int:
        return self.obs_dim + self.estimator_dim

    def normalized(self, obs: TensorDict) -> Tensor:
        """The actor's observation, normalized (what the estimator reads)."""
        return self.obs_normalizer(torch.cat([obs[group] for group in self.obs_groups], dim=-1))

    def get_latent(self, obs: TensorDict, masks: Tensor | None = None, hidden_state: Any = None) -> Tensor:
        x = self.normalized(obs)
        with torch.no_grad():  # PPO's gradient does not reach the estimator: no graph, and float32 in every pass
            estimate = self.estimator(x)
        return torch.cat([x, estimate], dim=-1)


class EstimatorTrainer:
    """Supervises ``model.estimator`` with the critic group's ``target`` slice, over a rollout's transitions."""

    def __init__(
        self,
        model: EstimatorMLPModel,
        target: slice,
        learning_rate: float = 1e-3,
        num_learning_epochs: int = 1,
        num_mini_batches: int = 4,
        critic_group: str = "critic",
    ):
        self.model, self.target, self.critic_group = model, target, critic_group
        self.epochs, self.mini_batches = num_learning_epochs, num_mini_batches
        self.optimizer = torch.optim.Adam(model.estimator.parameters(), lr=learning_rate)

    def update(self, observations: TensorDict) -> float:
        """One pass of ``num_learning_epochs`` x ``num_mini_batches`` Adam steps on the rollout's observations
        (T, N) groups; returns the mean squared error of the last epoch (in the actor's observation units)."""
        with torch.no_grad():
            x = self.model.normalized(observations.flatten(0, 1))
            y = observations[self.critic_group].flatten(0, 1)[:, self.target]
        n = x.shape[0]
        size = max(1, n // self.mini_batches)
        losses: list[Tensor] = []
        for _ in range(self.epochs):
            losses = []
            order = torch.randperm(n, device=x.device)
            for start in range(0, size * self.mini_batches, size):
                idx = order[start : start + size]
                loss = torch.nn.functional.mse_loss(self.model.estimator(x[idx]), y[idx])
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
        return float(torch.stack(losses).mean()) if losses else float("nan")
