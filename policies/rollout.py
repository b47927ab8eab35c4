"""Batched closed-loop rollouts and the hover metrics used by evaluation, the demo and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from sim.quadrotor.env import QuadrotorEnv

Policy = Callable[[torch.Tensor], torch.Tensor]  # policy observation (N, D) -> normalized actions (N, A)


@dataclass
class HoverCriterion:
    """Hover success: error < settle_m from settle_s on, RMS < rms_m over the last rms_window_s, no crash."""

    settle_s: float = 3.0
    settle_m: float = 0.1
    rms_window_s: float = 5.0
    rms_m: float = 0.05


@dataclass
class Rollout:
    """Per-step records of one batched rollout of T control steps over N envs (first episode of each env)."""

    dt: float  # s per control step
    error: torch.Tensor  # (T, N) m, distance to the reference
    position: torch.Tensor  # (T, k, 3) m, world, for the first k envs
    reference: torch.Tensor  # (T, k, 3)
    action: torch.Tensor  # (T, N, A) normalized
    crashed: torch.Tensor  # (N,) bool: the first episode ended in a failure
    crash_step: torch.Tensor  # (N,) long: step of the failure (T when none)

    def _rms_last(self, c: HoverCriterion) -> torch.Tensor:
        window = min(self.error.shape[0], round(c.rms_window_s / self.dt))
        return self.error[-window:].square().mean(0).sqrt()  # (N,)

    def success(self, criterion: HoverCriterion | None = None) -> torch.Tensor:
        """(N,) bool: the envs that met the hover criterion in their first episode."""
        c = criterion or HoverCriterion()
        return self._success(c, self._rms_last(c))

    def _success(self, c: HoverCriterion, rms_last: torch.Tensor) -> torch.Tensor:
        settle = min(self.error.shape[0] - 1, round(c.settle_s / self.dt))
        settled = (self.error[settle:] < c.settle_m).all(0)
        return ~self.crashed & settled & (rms_last < c.rms_m)

    def metrics(self, criterion: HoverCriterion | None = None) -> dict[str, float]:
        c = criterion or HoverCriterion()
        T = self.error.shape[0]
        alive = ~self.crashed
        err = self.error
        rms_last = self._rms_last(c)
        success = self._success(c, rms_last)
        # time to settle: first step after which the error stays below settle_m
        below = err < c.settle_m
        stays = torch.flip(torch.cummin(torch.flip(below.int(), [0]), 0).values, [0]).bool()
        first = torch.where(stays.any(0), stays.int().argmax(0), torch.full_like(stays[0], T, dtype=torch.long))
        smooth = (self.action[1:] - self.action[:-1]).square().sum(-1).mean(0)  # (N,)
        ok = alive if alive.any() else torch.ones_like(alive)
        return {
            "envs": int(err.shape[1]),
            "success_rate": success.float().mean().item(),
            "crash_rate": self.crashed.float().mean().item(),
            "position_rmse_m": rms_last[ok].square().mean().sqrt().item(),
            "position_rmse_median_m": rms_last[ok].median().item(),
            "time_to_settle_s": (first[ok].float() * self.dt).median().item(),
            "action_rate_mean": smooth[ok].mean().item(),
        }


@torch.no_grad()
def rollout(
    env: QuadrotorEnv,
    policy: Policy,
    steps: int,
    on_reset: Callable[[torch.Tensor], None] | None = None,
    keep: int = 4,
    progress: bool = False,
) -> Rollout:
    """Run ``policy`` for ``steps`` control steps from a fresh reset of every env.

    Envs whose first episode fails keep running (they are reset by the env) but are marked crashed and their
    errors after the failure are not counted. on_reset(env_ids) lets a stateful controller clear its state.
    """
    n = env.num_envs
    obs, _ = env.reset()
    if on_reset is not None:
        on_reset(torch.arange(n, device=env.device))
    errors, positions, refs, actions = [], [], [], []
    crashed = torch.zeros(n, dtype=torch.bool, device=env.device)
    crash_step = torch.full((n,), steps, dtype=torch.long, device=env.device)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("rollout", total=steps)
        for t in range(steps):
            action = policy(obs["policy"])
            ref_pos, _ = env.reference_now()
            pos = env.state_rows("position")
            obs, _, done, extras = env.step(action)
            err = (pos - ref_pos).norm(dim=-1)
            errors.append(torch.where(crashed, torch.zeros_like(err), err))
            positions.append(pos[:keep].clone())
            refs.append(ref_pos[:keep].clone())
            actions.append(action.clone())
            failed = done & ~extras["time_outs"] & ~crashed
            crash_step[failed] = t
            crashed |= failed
            if on_reset is not None and done.any():
                on_reset(done.nonzero().squeeze(-1))
            bar.advance(task)
    return Rollout(
        env.cfg.control_dt,
        torch.stack(errors),
        torch.stack(positions),
        torch.stack(refs),
        torch.stack(actions),
        crashed,
        crash_step,
    )
