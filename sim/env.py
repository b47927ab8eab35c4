"""The batched env contract shared by every task (rsl_rl ``VecEnv``).

``step(actions[N, A]) -> (obs: TensorDict{"policy", "critic"}, reward[N], done[N], extras)`` where
``extras["time_outs"]`` marks episodes cut by the time limit (bootstrapped by PPO) as opposed to failures.
"""

from __future__ import annotations

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from sim.obs_spec import ObsSpec

OBS_GROUPS = {"actor": ["policy"], "critic": ["policy", "critic", "privileged"]}  # asymmetric actor-critic for rsl_rl


class BatchedEnv(VecEnv):
    """Bookkeeping common to all tasks; subclasses implement :meth:`step` and :meth:`reset`."""

    obs_spec: ObsSpec  # the actor's ("policy") layout, carried by the exported model
    critic_spec: ObsSpec  # privileged terms appended for the critic

    def __init__(
        self, num_envs: int, num_actions: int, max_episode_length: int, device: str | torch.device, cfg: object
    ):
        if num_envs <= 0:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.num_envs = int(num_envs)
        self.num_actions = int(num_actions)
        self.max_episode_length = int(max_episode_length)
        self.device = torch.device(device)
        self.cfg = cfg
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._obs: TensorDict | None = None

    def get_observations(self) -> TensorDict:
        if self._obs is None:
            raise RuntimeError("call reset() before get_observations()")
        return self._obs

    def _pack_obs(self, policy: torch.Tensor, critic: torch.Tensor) -> TensorDict:
        self._obs = TensorDict({"policy": policy, "critic": critic}, batch_size=[self.num_envs], device=self.device)
        return self._obs

    def check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(
                f"actions must have shape (num_envs, num_actions) = {(self.num_envs, self.num_actions)}, "
                f"got {tuple(actions.shape)}"
            )
        return actions.to(device=self.device, dtype=torch.float32)
