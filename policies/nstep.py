"""n-step returns of a chunk of parallel-env transitions, for the replay buffer of the off-policy learner.

A chunk is T control steps of N envs: observations ``obs[k]`` before step k (k = 0..T, ``obs[T]`` after the last),
rewards and episode ends of each step. The transition that starts at step t sums up to n rewards, stopping early at
the end of its episode or of the chunk, and bootstraps from the observation where it stopped:

    return = r_t + gamma r_{t+1} + ... + gamma^(m-1) r_{t+m-1},   target = return + discount * Q(obs[next_index])

with ``discount = gamma^m``, or 0 when the episode failed at step t+m-1. An episode cut by the time limit at step
t+m-1 keeps its bootstrap: the env has already reset it, so ``obs[t+m]`` is the next episode's first observation,
and the transition bootstraps from its last own observation ``obs[t+m-1]`` instead (steady at the time limit;
rsl_rl's PPO makes the same approximation).
"""

from __future__ import annotations

import torch
from torch import Tensor


def nstep_returns(
    rewards: Tensor, failed: Tensor, time_outs: Tensor, gamma: float, n: int
) -> tuple[Tensor, Tensor, Tensor]:
    """rewards (T, N); failed, time_outs (T, N) bool, the episode ended at that step ->
    (returns (T, N), discount (T, N), next_index (T, N) long index into the chunk's T + 1 observations)."""
    if n < 1:
        raise ValueError(f"n-step returns need n >= 1, got {n}")
    steps, envs = rewards.shape
    dev = rewards.device
    ended = failed | time_outs
    pad = torch.ones(n, envs, dtype=torch.bool, device=dev)  # beyond the chunk: stop there
    beyond = torch.cat([torch.zeros_like(ended), pad])
    ended_pad = torch.cat([ended, pad])
    rewards_pad = torch.cat([rewards, torch.zeros(n, envs, device=dev)])
    returns = torch.zeros_like(rewards)
    length = torch.zeros(steps, envs, dtype=torch.long, device=dev)
    going = torch.ones(steps, envs, dtype=torch.bool, device=dev)
    for j in range(n):
        take = going & ~beyond[j : j + steps]
        returns += (gamma**j) * rewards_pad[j : j + steps] * take
        length += take
        going = take & ~ended_pad[j : j + steps]
    start = torch.arange(steps, device=dev)[:, None]
    last = start + length - 1  # the step where the transition stops
    cols = torch.arange(envs, device=dev)[None, :].expand(steps, envs)
    next_index = torch.where(time_outs[last, cols], last, last + 1)
    discount = torch.where(failed[last, cols], 0.0, torch.pow(gamma, length.to(rewards.dtype)))
    return returns, discount, next_index
