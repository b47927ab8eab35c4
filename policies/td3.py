"""TD3 with an asymmetric actor-critic, sized for tiny networks on a CPU.

The actor sees the actor's observation groups (what the robot measures); the two critics see the critic's groups
(the same plus true state and randomized parameters) and the action. Transitions of all parallel envs go into one
preallocated replay buffer on the env's device; an update samples a batch, regresses both critics on the clipped
double-Q target and, every ``policy_delay`` updates, steps the actor and moves the target networks.

The update is written for few operators: the twin critics are one batched network (``baddbmm`` over a leading
dimension of 2), a transition is one row of the buffer (one gather per batch), the target networks move with one
``_foreach_lerp_`` and Adam runs fused. At 64-64 networks and a batch of 128, about two thirds of an update
is still fixed per-operator cost on a CPU (measured in docs/training.md, with what did not help).
Every random draw (initialisation, exploration noise, target noise, batch indices) comes from the learner's own
generator.

The actor's state dict has the keys of an rsl_rl ``MLPModel`` (``mlp.<i>.weight`` / ``bias``,
``obs_normalizer._mean`` / ``_std``), so export and evaluation read it unchanged; its output ends in tanh
(``output_activation`` in the checkpoint's actor infos).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from policies.actor import NORMALIZER_EPS, batch_moments


@dataclass
class TD3Cfg:
    """TD3 settings (Fujimoto et al. 2018; sizes chosen by measurement on 2 CPU cores, docs/training.md)."""

    num_envs: int = 64  # parallel envs, set as TrainCfg.num_envs by TrainCfg.select_algo("td3")
    gamma: float = 0.98  # per control step (100 Hz: horizon ~0.5 s)
    tau: float = 0.005  # target networks: target += tau * (online - target) per actor update
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    batch_size: int = 128  # transitions per update
    steps_per_iteration: int = 16  # control steps of all envs per iteration (a chunk of transitions)
    updates_per_step: int = 1  # gradient updates per control step, run after each chunk
    n_step: int = 10  # rewards summed per transition before bootstrapping (policies.nstep)
    buffer_size: int = 500_000  # transitions (rounded up to a multiple of num_envs * steps_per_iteration)
    learning_starts: int = 2_000  # transitions in the buffer before the first update
    policy_delay: int = 2  # critic updates per actor (and target) update
    exploration_noise: float = 0.05  # std of the Gaussian added to the actor's action, normalized units
    target_noise: float = 0.2  # target policy smoothing: std of the noise on the target action
    target_noise_clip: float = 0.5
    critic_hidden_dims: tuple[int, ...] = (64, 64)  # ReLU; not exported
    actor_last_gain: float = 0.01  # scale of the actor's last layer at initialisation: start near a = 0 (hover)
    fused_adam: bool = True
    deploy_target_actor: bool = True  # evaluate and export the target (Polyak-averaged) actor, not the online one

    def validate(self) -> None:
        if not 0.0 < self.gamma < 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError(f"td3.gamma must be in (0, 1) and td3.tau in (0, 1], got {self.gamma}, {self.tau}")
        for name in ("batch_size", "steps_per_iteration", "buffer_size", "policy_delay", "n_step"):
            if getattr(self, name) <= 0:
                raise ValueError(f"td3.{name} must be positive, got {getattr(self, name)}")
        if self.updates_per_step < 0 or self.learning_starts < 0:
            raise ValueError("td3.updates_per_step and td3.learning_starts must be >= 0")


class Normalizer(nn.Module):
    """Running mean and std of observations (D,); ``(x - mean) / (std + eps)`` as rsl_rl's EmpiricalNormalization,
    whose state dict keys (``_mean``, ``_std`` of shape (1, D), ``count``) it keeps."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("_mean", torch.zeros(1, dim))
        self.register_buffer("_var", torch.ones(1, dim))
        self.register_buffer("_std", torch.ones(1, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Merge a batch x (B, D) into the running moments (Chan et al.'s parallel update)."""
        n = x.shape[0]
        total = self.count + n
        ratio = n / total
        batch_mean, batch_var = batch_moments(x)
        delta = batch_mean - self._mean
        self._mean.add_(delta * ratio)
        self._var.add_((batch_var - self._var + delta.square() * (1 - ratio)) * ratio)
        torch.sqrt(self._var, out=self._std)
        self.count.copy_(total)

    def denom(self) -> Tensor:
        return self._std + NORMALIZER_EPS


def uniform_init(shape: tuple[int, ...], fan_in: int, generator: torch.Generator, device, gain: float = 1.0) -> Tensor:
    """U(-gain / sqrt(fan_in), gain / sqrt(fan_in)), torch.nn.Linear's default bound, from ``generator``."""
    bound = gain / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator, device=device) * 2 - 1) * bound


class Actor(nn.Module):
    """obs (B, D) raw -> normalized action (B, A) in (-1, 1): normalizer, MLP with ``activation``, tanh."""

    def __init__(self, dims: list[int], activation: str, generator: torch.Generator, device, last_gain: float):
        super().__init__()
        self.obs_normalizer = Normalizer(dims[0])
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
            lin = nn.Linear(d_in, d_out, device=device)
            gain = last_gain if i == len(dims) - 2 else 1.0
            with torch.no_grad():
                lin.weight.copy_(uniform_init((d_out, d_in), d_in, generator, device, gain))
                lin.bias.copy_(uniform_init((d_out,), d_in, generator, device, gain))
            layers += [lin, nn.Tanh() if activation == "tanh" else nn.ELU()]
        self.mlp = nn.Sequential(*layers[:-1])

    def forward_normalized(self, obs_n: Tensor) -> Tensor:
        return torch.tanh(self.mlp(obs_n))

    def forward(self, obs: Tensor) -> Tensor:
        return self.forward_normalized((obs - self.obs_normalizer._mean) / self.obs_normalizer.denom())


class TwinCritic(nn.Module):
    """Two Q networks as one: weights (2, in, out), ``(x (B, in), a (B, A)) -> q (2, B)``; ReLU hidden layers."""

    def __init__(self, dims: list[int], generator: torch.Generator, device):
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in itertools.pairwise(dims):
            self.weights.append(nn.Parameter(uniform_init((2, d_in, d_out), d_in, generator, device)))
            self.biases.append(nn.Parameter(uniform_init((2, 1, d_out), d_in, generator, device)))

    def forward(self, x: Tensor, action: Tensor) -> Tensor:
        h = torch.cat([x, action], -1).expand(2, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)


def td_target(returns: Tensor, discount: Tensor, next_q: Tensor) -> Tensor:
    """Clipped double-Q target ``returns + discount * min(q1', q2')``: returns, discount (B,) from
    :func:`policies.nstep.nstep_returns` (discount 0 after a failure, gamma^m otherwise, time-outs included: an
    episode cut by the time limit still has a future, which the target networks estimate); next_q (2, B)."""
    return torch.addcmul(returns, discount, next_q.amin(0))


class ReplayBuffer:
    """Preallocated ring buffer of transitions, one row each: ``[obs (D) | next_obs (D) | action (A) | return |
    discount]``, written ``rows_per_add`` rows at a time (the capacity is a multiple of it, so a write never wraps)."""

    def __init__(self, capacity: int, rows_per_add: int, obs_dim: int, action_dim: int, device):
        self.rows_per_add, self.obs_dim, self.action_dim = rows_per_add, obs_dim, action_dim
        self.capacity = math.ceil(capacity / rows_per_add) * rows_per_add
        self.data = torch.zeros(self.capacity, 2 * obs_dim + action_dim + 2, device=device)
        self.ptr = 0
        self.size = 0

    def add(self, obs: Tensor, next_obs: Tensor, action: Tensor, returns: Tensor, discount: Tensor) -> None:
        """obs, next_obs (R, D); action (R, A); returns, discount (R,); copied in."""
        rows = self.data[self.ptr : self.ptr + self.rows_per_add]
        torch.cat([obs, next_obs, action, returns[:, None], discount[:, None]], 1, out=rows)
        self.ptr = (self.ptr + self.rows_per_add) % self.capacity
        self.size = min(self.size + self.rows_per_add, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """(B, row) rows drawn uniformly with replacement."""
        idx = torch.randint(self.size, (batch_size,), generator=generator, device=self.data.device)
        return self.data.index_select(0, idx)


class TD3:
    """The learner: networks, targets, optimizers, replay buffer. ``obs`` below is the concatenation of the critic's
    observation groups (D,); the actor reads its first ``actor_dim`` columns."""

    def __init__(
        self,
        cfg: TD3Cfg,
        actor_dims: list[int],
        activation: str,
        obs_dim: int,
        num_envs: int,
        device: torch.device,
        seed: int,
    ):
        cfg.validate()
        self.cfg, self.device = cfg, device
        self.actor_dim, self.obs_dim, self.action_dim = actor_dims[0], obs_dim, actor_dims[-1]
        self.generator = torch.Generator(device).manual_seed(seed)
        g = self.generator
        self.actor = Actor(actor_dims, activation, g, device, last_gain=cfg.actor_last_gain)
        self.critic = TwinCritic([obs_dim + self.action_dim, *cfg.critic_hidden_dims, 1], g, device)
        self.actor_target = Actor(actor_dims, activation, g, device, last_gain=cfg.actor_last_gain)
        self.critic_target = TwinCritic([obs_dim + self.action_dim, *cfg.critic_hidden_dims, 1], g, device)
        self.actor_target.mlp.load_state_dict(self.actor.mlp.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        for p in (*self.actor_target.parameters(), *self.critic_target.parameters()):
            p.requires_grad_(False)
        self.obs_normalizer = Normalizer(obs_dim)  # of every critic column; the actor's is a slice of it
        fused = cfg.fused_adam
        self.actor_params = list(self.actor.mlp.parameters())
        self.critic_params = list(self.critic.parameters())
        self.actor_opt = torch.optim.Adam(self.actor_params, lr=cfg.actor_lr, fused=fused)
        self.critic_opt = torch.optim.Adam(self.critic_params, lr=cfg.critic_lr, fused=fused)
        self._online = self.actor_params + self.critic_params
        self._targets = list(self.actor_target.mlp.parameters()) + list(self.critic_target.parameters())
        self.buffer = ReplayBuffer(
            cfg.buffer_size, num_envs * cfg.steps_per_iteration, obs_dim, self.action_dim, device
        )
        self.updates = 0
        self.losses = {"critic": torch.zeros((), device=device), "actor": torch.zeros((), device=device)}

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def observe(self, obs: Tensor) -> None:
        """Update the running observation statistics with obs (N, D) and share them with the actors."""
        self.obs_normalizer.update(obs)
        for actor in (self.actor, self.actor_target):
            norm = actor.obs_normalizer
            norm._mean.copy_(self.obs_normalizer._mean[:, : self.actor_dim])
            norm._std.copy_(self.obs_normalizer._std[:, : self.actor_dim])
            norm.count.copy_(self.obs_normalizer.count)

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        """obs (N, D) -> action (N, A) in [-1, 1], with Gaussian exploration noise when ``explore``."""
        action = self.actor(obs[:, : self.actor_dim])
        if explore and self.cfg.exploration_noise > 0:
            noise = torch.randn(action.shape, generator=self.generator, device=self.device)
            action = action.add_(noise, alpha=self.cfg.exploration_noise).clamp_(-1.0, 1.0)
        return action

    @property
    def deployed_actor(self) -> Actor:
        """The actor that evaluation and export use (``deploy_target_actor``: the slowly moving target actor)."""
        return self.actor_target if self.cfg.deploy_target_actor else self.actor

    def get_inference_policy(self):
        """The deterministic actor as a callable on a TensorDict with the actor's group (rsl_rl's interface)."""
        actor = self.deployed_actor

        def policy(obs: Any) -> Tensor:
            with torch.no_grad():
                return actor(obs["policy"])

        return policy

    # ------------------------------------------------------------------ learning
    def ready(self) -> bool:
        return self.buffer.size >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def update(self) -> None:
        """One critic update (and every ``policy_delay``-th an actor and target update) on a sampled batch."""
        cfg, d, a = self.cfg, self.obs_dim, self.action_dim
        batch = self.buffer.sample(cfg.batch_size, self.generator)
        obs_pair = (batch[:, : 2 * d].view(-1, 2, d) - self.obs_normalizer._mean) / self.obs_normalizer.denom()
        obs, next_obs = obs_pair.unbind(1)
        action = batch[:, 2 * d : 2 * d + a]
        returns, discount = batch[:, 2 * d + a], batch[:, 2 * d + a + 1]
        with torch.no_grad():
            next_action = self.actor_target.forward_normalized(next_obs[:, : self.actor_dim])
            noise = torch.randn(next_action.shape, generator=self.generator, device=self.device)
            noise = noise.mul_(cfg.target_noise).clamp_(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_action = next_action.add_(noise).clamp_(-1.0, 1.0)
            target = td_target(returns, discount, self.critic_target(next_obs, next_action))
        q = self.critic(obs, action)
        critic_loss = (q - target).square().mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.losses["critic"] = critic_loss.detach()
        self.updates += 1
        if self.updates % cfg.policy_delay:
            return
        actor_loss = -self.critic(obs, self.actor.forward_normalized(obs[:, : self.actor_dim]))[0].mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=self.actor_params)
        self.actor_opt.step()
        self.losses["actor"] = actor_loss.detach()
        with torch.no_grad():
            torch._foreach_lerp_(self._targets, self._online, cfg.tau)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "actor_state_dict": self.deployed_actor.state_dict(),
            "online_actor_state_dict": self.actor.state_dict(),
            "critic_state_dict": self.critic.state_dict(),
            "actor_target_state_dict": self.actor_target.state_dict(),
            "critic_target_state_dict": self.critic_target.state_dict(),
            "obs_normalizer_state_dict": self.obs_normalizer.state_dict(),
            "actor_optimizer_state_dict": self.actor_opt.state_dict(),
            "critic_optimizer_state_dict": self.critic_opt.state_dict(),
            "updates": self.updates,
        }
