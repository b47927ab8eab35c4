"""``sim2real train TASK --algo td3``: the off-policy learner (:mod:`policies.td3`) in the training loop.

Same contract as the PPO loop in :mod:`policies.train`: the run directory (``run.json``, ``randomization.yaml``,
``model_<it>.pt`` with :func:`~policies.train.checkpoint_infos`, TensorBoard scalars), the progress bar,
``max_seconds``, the initial-state curriculum and the ``on_iteration(stats, learner)`` callback, whose time is
paused out of the clock. An iteration is a chunk of ``td3.steps_per_iteration`` control steps of every env, whose
transitions (with n-step returns, :mod:`policies.nstep`, which also says how time-outs and failures bootstrap) go
into the replay buffer, then ``steps_per_iteration * td3.updates_per_step`` gradient updates once the buffer holds
``td3.learning_starts`` transitions.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from policies.nstep import nstep_returns
from policies.train import IterationLoop, IterationStats, TrainResult, checkpoint_infos, write_iteration_scalars
from policies.train_cfg import TrainCfg

log = logging.getLogger("sim2real.train")


def observation_groups(cfg: TrainCfg) -> list[str]:
    """The critic's groups, which must start with the actor's (the actor reads the leading columns)."""
    actor, critic = list(cfg.obs_groups["actor"]), list(cfg.obs_groups["critic"])
    if critic[: len(actor)] != actor:
        raise ValueError(
            f"the off-policy learner needs the critic's observation groups to start with the actor's; found actor "
            f"{actor}, critic {critic}: set obs_groups.critic to {actor + [g for g in critic if g not in actor]}"
        )
    return critic


class Chunk:
    """``steps`` control steps of ``envs`` envs, preallocated: obs (steps + 1, envs, D), the observations before
    each step and after the last; actions, rewards, failures and time-outs of each step."""

    def __init__(self, steps: int, envs: int, obs_dim: int, action_dim: int, device: torch.device):
        self.obs = torch.zeros(steps + 1, envs, obs_dim, device=device)
        self.actions = torch.zeros(steps, envs, action_dim, device=device)
        self.rewards = torch.zeros(steps, envs, device=device)
        self.failed = torch.zeros(steps, envs, dtype=torch.bool, device=device)
        self.time_outs = torch.zeros(steps, envs, dtype=torch.bool, device=device)

    def record(self, k: int, action: torch.Tensor, reward: torch.Tensor, done: torch.Tensor, time_out: torch.Tensor):
        self.actions[k].copy_(action)
        self.rewards[k].copy_(reward)
        torch.logical_and(done, ~time_out, out=self.failed[k])
        self.time_outs[k].copy_(time_out)

    def transitions(self, gamma: float, n: int) -> tuple[torch.Tensor, ...]:
        """(obs, next_obs, action, return, discount) of every step, flattened to (steps * envs, ...) rows."""
        returns, discount, next_index = nstep_returns(self.rewards, self.failed, self.time_outs, gamma, n)
        envs = torch.arange(self.obs.shape[1], device=self.obs.device)
        next_obs = self.obs[next_index, envs[None, :]]
        return (
            self.obs[:-1].flatten(0, 1),
            next_obs.flatten(0, 1),
            self.actions.flatten(0, 1),
            returns.flatten(),
            discount.flatten(),
        )


def train_offpolicy(
    cfg: TrainCfg, run_dir: Path | None = None, progress: bool = True, on_iteration: Any = None
) -> TrainResult:
    """Train ``cfg`` with TD3 (see :func:`policies.train.train` for the arguments and the result).

    Deterministic for a given (seed, device, config): the env and the learner draw from their own generators.
    """
    from policies.runinfo import git_commit, write_run_info
    from policies.td3 import TD3
    from sim.tasks import make_env

    if cfg.num_envs <= 0 or cfg.max_iterations <= 0:
        raise ValueError(f"num_envs and max_iterations must be positive, got {cfg.num_envs}, {cfg.max_iterations}")
    if cfg.max_seconds is not None and cfg.max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive (or None), got {cfg.max_seconds}")
    groups = observation_groups(cfg)
    t_start = time.perf_counter()
    env = make_env(cfg.task, cfg.num_envs, device=cfg.device, seed=cfg.seed, cfg=cfg.env, compile=cfg.compile_env)
    device = torch.device(cfg.device)
    obs = env.get_observations()
    dims = [obs[g].shape[1] for g in groups]
    actor_dim = sum(dims[: len(cfg.obs_groups["actor"])])
    td3 = TD3(
        cfg.td3,
        [actor_dim, *cfg.actor.hidden_dims, env.num_actions],
        cfg.actor.activation,
        sum(dims),
        cfg.num_envs,
        device,
        cfg.seed,
    )
    commit = git_commit()
    writer = None
    if run_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        write_run_info(
            run_dir, cfg, {"task": cfg.task, "algo": cfg.algo, "randomization_digest": cfg.env.randomization.digest()}
        )
        cfg.env.randomization.to_yaml(run_dir / "randomization.yaml")
        writer = SummaryWriter(log_dir=str(run_dir), flush_secs=10)

    result = TrainResult(run_dir, 0, 0.0, runner=td3)
    n, steps = cfg.num_envs, cfg.td3.steps_per_iteration
    chunk = Chunk(steps, n, sum(dims), env.num_actions, device)
    torch.cat([obs[g] for g in groups], 1, out=chunk.obs[steps])
    td3.observe(chunk.obs[steps])

    def save(it: int) -> None:
        path = run_dir / f"model_{it}.pt"
        infos = checkpoint_infos(cfg, env, it, loop.elapsed(), commit)
        torch.save({**td3.state_dict(), "iter": it, "infos": infos}, path)
        result.checkpoints.append(path)

    loop = IterationLoop(cfg, env, result, save if run_dir is not None else None, on_iteration, t_start, progress)
    with loop:
        it = 0
        for it in range(cfg.max_iterations):
            t0 = time.perf_counter()
            reward_sum = torch.zeros((), device=device)
            episodes: list[dict[str, torch.Tensor]] = []
            with torch.no_grad():
                chunk.obs[0].copy_(chunk.obs[steps])
                for k in range(steps):
                    action = td3.act(chunk.obs[k])
                    obs, reward, done, extras = env.step(action)
                    if cfg.check_nan and not torch.isfinite(reward).all():
                        raise FloatingPointError(f"the env returned a non-finite reward at iteration {it}")
                    torch.cat([obs[g] for g in groups], 1, out=chunk.obs[k + 1])  # copied: the env rewrites its own
                    chunk.record(k, action, reward, done, extras["time_outs"])
                    reward_sum += reward.mean()
                    if "log" in extras:
                        episodes.append({k: v.float() for k, v in extras["log"].items()})
                td3.buffer.add(*chunk.transitions(cfg.td3.gamma, cfg.td3.n_step))
                td3.observe(chunk.obs[1:].flatten(0, 1))
            t1 = time.perf_counter()
            if td3.ready():
                for _ in range(steps * cfg.td3.updates_per_step):
                    td3.update()
            if not all(torch.isfinite(p).all() for p in td3.actor_params):
                raise FloatingPointError(
                    f"the actor's parameters became non-finite at iteration {it}; lower td3.actor_lr or check the "
                    "rewards' scale"
                )
            t2 = time.perf_counter()
            stats = loop.stats(it, t0, t2, n * steps, reward_sum.item() / steps, episodes)
            if writer is not None:
                _write_scalars(writer, stats, td3, t1 - t0, t2 - t1)
            if loop.end(stats, td3):
                break
    if writer is not None:
        writer.close()
    return loop.finish(it)


def _write_scalars(writer: Any, s: IterationStats, td3: Any, t_collect: float, t_learn: float) -> None:
    it = s.iteration
    for key, value in td3.losses.items():
        writer.add_scalar(f"Loss/{key}", float(value), it)
    writer.add_scalar("Loss/updates", td3.updates, it)
    writer.add_scalar("Train/buffer_size", td3.buffer.size, it)
    write_iteration_scalars(writer, s, t_collect, t_learn)
