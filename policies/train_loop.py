"""What every learner's training loop shares: per-iteration statistics, the result, the iteration loop (progress
bar, curriculum, history, checkpoints, callback, wall-clock limit) and the TensorBoard scalars every learner writes.
Used by :mod:`policies.train` (PPO) and :mod:`policies.offpolicy` (TD3); :mod:`policies.train` re-exports them."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from policies.train_cfg import TrainCfg

log = logging.getLogger("sim2real.train")


@dataclass
class IterationStats:
    iteration: int
    wall_s: float  # since the start of training (env built)
    steps_per_s: float  # env steps (num_envs * steps per env) per second of this iteration
    mean_reward: float  # per control step, over the iteration's rollout
    episode_return: float  # mean over episodes that ended in this iteration (nan when none)
    episode_length_s: float
    crash_rate: float  # fraction of the episodes that ended in this iteration that were failures
    curriculum_level: float = 1.0  # fraction of the task's initial-state ranges during this iteration


@dataclass
class TrainResult:
    run_dir: Path | None
    iterations: int
    wall_s: float
    checkpoints: list[Path] = field(default_factory=list)
    history: list[IterationStats] = field(default_factory=list)
    runner: Any = None  # the rsl_rl OnPolicyRunner (actor: runner.alg.get_policy())
    paused_s: float = 0.0  # wall clock spent in the on_iteration callback, excluded from wall_s


IterationCallback = Callable[[IterationStats, Any], bool]  # (stats, runner) -> stop?


def _mean(episodes: list[dict[str, torch.Tensor]], key: str) -> float:
    values = [e[key] for e in episodes if key in e]
    return torch.stack(values).mean().item() if values else math.nan


class IterationLoop:
    """What every learner's training loop does around its iterations: the progress bar, the initial-state
    curriculum, the history, periodic checkpoints (``save(it)``, None: no run directory), the ``on_iteration``
    callback (paused out of the training clock) and the wall-clock limit. Use as a context manager (the bar)."""

    def __init__(
        self,
        cfg: TrainCfg,
        env: Any,
        result: TrainResult,
        save: Callable[[int], None] | None,
        on_iteration: IterationCallback | None,
        t_start: float,
        progress: bool = True,
    ):
        from policies.curriculum import InitStateCurriculum

        self.cfg, self.env, self.result, self.save, self.on_iteration = cfg, env, result, save, on_iteration
        self.t_start = t_start  # moves forward by the callback's time, so that elapsed() counts training only
        self.curriculum = InitStateCurriculum(cfg.curriculum)
        self.curriculum.apply(env)
        self.bar = _progress_bar(progress)
        self.task: Any = None

    def __enter__(self) -> IterationLoop:
        self.bar.__enter__()
        self.task = self.bar.add_task(
            self.cfg.task,
            total=self.cfg.max_iterations,
            sps=0.0,
            rew=math.nan,
            ep=math.nan,
            crash=math.nan,
            level=self.curriculum.level,
        )
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def elapsed(self) -> float:
        """Training seconds so far (callback time excluded)."""
        return time.perf_counter() - self.t_start

    def stats(
        self, it: int, t0: float, t1: float, steps: int, mean_reward: float, episodes: list[dict[str, torch.Tensor]]
    ) -> IterationStats:
        """The iteration's statistics: ``steps`` env steps between ``t0`` and ``t1`` (perf_counter seconds)."""
        return IterationStats(
            iteration=it,
            wall_s=t1 - self.t_start,
            steps_per_s=steps / (t1 - t0),
            mean_reward=mean_reward,
            episode_return=_mean(episodes, "/episode/return"),
            episode_length_s=_mean(episodes, "/episode/length_s"),
            crash_rate=_mean(episodes, "/episode/crash_rate"),
            curriculum_level=self.curriculum.level,
        )

    def end(self, stats: IterationStats, learner: Any, resume: Callable[[], Any] | None = None) -> bool:
        """Close iteration ``stats.iteration``: curriculum, history, bar, checkpoint, callback (then ``resume()``,
        e.g. back to train mode). True when training should stop."""
        it = stats.iteration
        self.curriculum.update(stats.crash_rate)
        self.curriculum.apply(self.env)
        self.result.history.append(stats)
        self.bar.update(
            self.task,
            advance=1,
            sps=stats.steps_per_s,
            rew=stats.mean_reward,
            ep=stats.episode_length_s,
            crash=stats.crash_rate,
            level=self.curriculum.level,
        )
        if self.save is not None and it % self.cfg.save_interval == 0 and it > 0:
            self.save(it)
        if self.on_iteration is not None:
            t_pause = time.perf_counter()
            stop = self.on_iteration(stats, learner)
            if resume is not None:
                resume()
            paused = time.perf_counter() - t_pause
            self.result.paused_s += paused
            self.t_start += paused  # the training clock stands still during the callback
            if stop:
                log.info("stopping after iteration %d: requested by the iteration callback", it)
                return True
        if self.cfg.max_seconds is not None and self.elapsed() >= self.cfg.max_seconds:
            log.info("stopping after iteration %d: wall-clock limit %.0f s reached", it, self.cfg.max_seconds)
            return True
        return False

    def finish(self, it: int) -> TrainResult:
        """Save the last iteration (unless just saved) and fill in the result."""
        checkpoints = self.result.checkpoints
        if self.save is not None and (not checkpoints or checkpoints[-1].name != f"model_{it}.pt"):
            self.save(it)
        self.result.iterations = it + 1
        self.result.wall_s = self.elapsed()
        return self.result


def write_iteration_scalars(writer: Any, s: IterationStats, t_collect: float, t_learn: float) -> None:
    """The TensorBoard scalars every learner writes per iteration: speed, reward, curriculum, episodes."""
    it = s.iteration
    writer.add_scalar("Perf/steps_per_s", s.steps_per_s, it)
    writer.add_scalar("Perf/collection_time", t_collect, it)
    writer.add_scalar("Perf/learning_time", t_learn, it)
    writer.add_scalar("Train/mean_reward", s.mean_reward, it)
    writer.add_scalar("Train/curriculum_level", s.curriculum_level, it)
    for name, value in (
        ("episode_return", s.episode_return),
        ("episode_length_s", s.episode_length_s),
        ("crash_rate", s.crash_rate),
    ):
        if not math.isnan(value):
            writer.add_scalar(f"Episode/{name}", value, it)
            writer.add_scalar(f"Episode/{name}_vs_wall_s", value, int(s.wall_s))


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("it"),
        TextColumn("{task.fields[sps]:,.0f} steps/s"),
        TextColumn("reward/step {task.fields[rew]:.3f}"),
        TextColumn("episode {task.fields[ep]:.2f} s"),
        TextColumn("crash {task.fields[crash]:.1%}"),
        TextColumn("curriculum {task.fields[level]:.1f}"),
        TimeElapsedColumn(),
        disable=not enabled,
    )
