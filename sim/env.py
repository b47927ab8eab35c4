"""The batched env contract shared by every task (rsl_rl ``VecEnv``).

``step(actions[N, A]) -> (obs: TensorDict{"policy", "critic"}, reward[N], done[N], extras)`` where
``extras["time_outs"]`` marks episodes cut by the time limit (bootstrapped by PPO) as opposed to failures.

The envs implement rsl_rl's ``VecEnv`` interface without subclassing it (rsl_rl checks no type; tests/sim/
test_vec_env_contract.py checks the interface): ``rsl_rl.env`` imports tensordict, which imports torch._dynamo
(~2 s of CPU), and a process that steps the simulator without reading observations through rsl_rl, the SIL robot
before every flight, should not pay for that. tensordict is imported where observations are packed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sim.obs_spec import ObsSpec

if TYPE_CHECKING:
    from tensordict import TensorDict

OBS_GROUPS = {"actor": ["policy"], "critic": ["policy", "critic", "privileged"]}  # asymmetric actor-critic for rsl_rl


class BatchedEnv:
    """Bookkeeping common to all tasks; subclasses implement :meth:`step` and :meth:`reset`."""

    obs_spec: ObsSpec  # the actor's ("policy") layout, carried by the exported model
    critic_spec: ObsSpec  # privileged terms appended for the critic

    def __init__(
        self,
        num_envs: int,
        num_actions: int,
        max_episode_length: int,
        device: str | torch.device,
        cfg: object,
        tensordict_observations: bool = True,
    ):
        if num_envs <= 0:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.num_envs = int(num_envs)
        self.num_actions = int(num_actions)
        self.max_episode_length = int(max_episode_length)
        self.device = torch.device(device)
        self.cfg = cfg
        # False: observation groups come as a plain dict of tensors and tensordict is never imported (the SIL robots)
        self.tensordict_observations = tensordict_observations
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._obs: TensorDict | None = None

    def get_observations(self) -> TensorDict:
        if self._obs is None:
            raise RuntimeError("call reset() before get_observations()")
        return self._obs

    def _pack_obs(self, policy: torch.Tensor, critic: torch.Tensor) -> TensorDict:
        self._obs = self._groups({"policy": policy, "critic": critic})
        return self._obs

    def _groups(self, groups: dict[str, torch.Tensor]) -> TensorDict:
        """The observation groups as rsl_rl reads them (a TensorDict of (num_envs, ...) tensors); a plain dict when
        ``tensordict_observations`` is off."""
        if not self.tensordict_observations:
            return groups
        from tensordict import TensorDict

        return TensorDict(groups, batch_size=[self.num_envs], device=self.device)

    def check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(
                f"actions must have shape (num_envs, num_actions) = {(self.num_envs, self.num_actions)}, "
                f"got {tuple(actions.shape)}"
            )
        return actions.to(device=self.device, dtype=torch.float32)
