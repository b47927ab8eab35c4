"""Stop training at the first confirmed hover policy: the ``on_iteration`` callback of :func:`policies.train.train`.

Every ``every`` iterations (once the curriculum has reached ``min_curriculum_level``) the current deterministic actor (Gaussian mean, clipped to [-1, 1]) flies
``screen_episodes`` episodes of ``episode_s`` from the task's default randomization (not the curriculum's narrowed
one). When their success rate meets ``target``, the same policy flies ``confirm_episodes`` other episodes (another
seed), and the PID baseline flies those same episodes on the ideal vehicle (once per run: same seed, so the same
initial states, noise and disturbances; the spec without the vehicle's imperfections, which the PID cannot hold at
100 Hz: ``sim.quadrotor.config.ideal_vehicle``). The policy is *confirmed* when, on those episodes, its success rate
meets ``target`` and it crashes no more often on the imperfect vehicles than the PID baseline on the ideal ones. Hover success: ``policies.rollout.HoverCriterion``.

A first crossing on 256 episodes alone flatters: at 94 % true success the binomial spread of 256 episodes is
+-1.5 points, and most first crossings flew 92-94 % on 1024 others (BENCHMARKS.md, "Time to hover"). The callback's
time is paused out of the training clock by the loop; callers that care about wall clock (the demo) see it in
``TrainResult.paused_s``.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import TensorDict

from policies.rollout import rollout

log = logging.getLogger("sim2real.stopping")


@dataclass
class StopCfg:
    """When to evaluate, on what, and what counts as a confirmed policy."""

    target: float = 0.95  # success rate, fraction of episodes
    every: int = 5  # iterations between screening evaluations
    screen_episodes: int = 256
    confirm_episodes: int = 1024  # 0: stop at the first screening crossing, no confirmation
    episode_s: float = 10.0  # s per evaluation episode
    seed: int = 10_000  # env seed of the screening episodes; the confirmation flies seed + 500_000
    crash_vs_baseline: bool = True  # also require crash rate <= the PID baseline's on the confirmation episodes
    until_confirmed: bool = True  # False: stop at the first screening crossing (its confirmation is still flown)
    # screen only once the initial-state curriculum trains on the whole task (level >= this; 0: always): before, the
    # policy has not met the starts the evaluation flies, and the screenings cost wall clock in the demo
    min_curriculum_level: float = 1.0
    # after a screening below half the target, the next one comes this many iterations later (0: ``every``): a demo
    # spends less wall clock screening a policy that is far off; the benchmark keeps ``every`` throughout
    every_when_far: int = 0
    # after a failed confirmation that took t seconds, the next screening waits until training has run
    # ``confirm_backoff`` x t seconds more (0: no wait). A confirmation costs as much as ~100 iterations on 2 cores; the
    # demo's cap went 65 s to 55 s to repeated confirmations of policies just over the PID's crash rate (BENCHMARKS.md)
    confirm_backoff: float = 0.0
    # after a screening that took t seconds, the next one waits until training has run ``screen_backoff`` x t seconds
    # more (0: every ``every`` iterations). 3: screenings take at most about a quarter of the wall clock; at 0 they
    # took 54.8 s of the demo's 120 s cap (BENCHMARKS.md, the demo)
    screen_backoff: float = 0.0
    # stop, confirmed or not, once training plus evaluations have taken this long (s, from the first call; None: no
    # limit): the trainer's max_seconds counts training only, a demo's user waits for both
    budget_s: float | None = None

    @property
    def confirm_seed(self) -> int:
        return self.seed + 500_000


@dataclass
class Evaluation:
    iteration: int
    train_s: float  # training seconds when the policy was taken
    metrics: dict[str, float]  # screening (policies.rollout.Rollout.metrics)
    confirm: dict[str, float] | None = None  # the confirmation's metrics, when flown
    confirmed: bool = False


@dataclass
class ConfirmedStop:
    """``on_iteration(stats, runner) -> stop?`` that screens, confirms and stops (see the module docstring)."""

    task: str
    env_cfg: Any  # the training env's config; evaluations use a copy with ``episode_s`` episodes
    cfg: StopCfg = field(default_factory=StopCfg)
    history: list[Evaluation] = field(default_factory=list)
    first_crossing: Evaluation | None = None  # the first screening evaluation that met the target
    confirmed_at: Evaluation | None = None  # the first policy whose confirmation met the criterion
    baseline: dict[str, float] | None = None  # the PID baseline on the confirmation episodes
    out_of_budget: bool = False  # stopped by ``budget_s`` without a confirmed policy
    _next: int = 0  # the iteration count at which the next screening may run
    _resume_train_s: float = 0.0  # the training clock at which the next screening may run (the back-offs)
    _t0: float | None = None
    clock: Any = time.perf_counter  # wall clock of the evaluations (a parameter for tests)

    def __post_init__(self) -> None:
        self.env_cfg = copy.deepcopy(self.env_cfg)
        self.env_cfg.episode_s = self.cfg.episode_s

    def _env(self, episodes: int, seed: int, cfg: Any = None):
        from sim.tasks import make_env

        return make_env(self.task, episodes, seed=seed, cfg=cfg or self.env_cfg)

    def evaluate(self, runner: Any, episodes: int, seed: int) -> dict[str, float]:
        """The runner's deterministic actor on ``episodes`` episodes of env seed ``seed``."""
        policy = runner.get_inference_policy()
        env = self._env(episodes, seed)
        n = env.num_envs

        def act(obs: torch.Tensor) -> torch.Tensor:
            return policy(TensorDict({"policy": obs}, batch_size=[n])).clamp(-1.0, 1.0)

        with torch.inference_mode():
            return rollout(env, act, self.env_cfg.max_episode_length).metrics()

    def baseline_metrics(self) -> dict[str, float]:
        """The PID baseline on the confirmation episodes, on the ideal vehicle (flown once, then cached)."""
        if self.baseline is None:
            from policies.baselines.pid import QuadrotorPID
            from sim.quadrotor.config import ideal_vehicle

            ideal = copy.deepcopy(self.env_cfg)
            ideal.randomization = ideal_vehicle(ideal.randomization)
            env = self._env(self.cfg.confirm_episodes, self.cfg.confirm_seed, ideal)
            c = env.cfg
            pid = QuadrotorPID(env.obs_spec, env.action_spec, c.params, c.control_dt, env.num_envs, env.device)
            self.baseline = rollout(env, pid.act, c.max_episode_length, on_reset=pid.reset).metrics()
            log.info(
                "PID baseline on the %d confirmation episodes (ideal vehicle): success %.1f %%, crash %.2f %%",
                self.cfg.confirm_episodes,
                100 * self.baseline["success_rate"],
                100 * self.baseline["crash_rate"],
            )
        return self.baseline

    def passes(self, confirm: dict[str, float]) -> bool:
        """Whether a confirmation meets the target and, when required, the baseline's crash rate."""
        if confirm["success_rate"] < self.cfg.target:
            return False
        return not self.cfg.crash_vs_baseline or confirm["crash_rate"] <= self.baseline_metrics()["crash_rate"]

    def __call__(self, stats: Any, runner: Any) -> bool:
        c = self.cfg
        if self._t0 is None:
            self._t0 = self.clock()
        if self._screen(stats, runner):
            return True
        if c.budget_s is not None and self.clock() - self._t0 >= c.budget_s:
            self.out_of_budget = True
            log.info("stopping: %.0f s of training and evaluations without a confirmed policy", c.budget_s)
            return True
        return False

    def _screen(self, stats: Any, runner: Any) -> bool:
        c = self.cfg
        done = stats.iteration + 1
        if done % c.every or done < self._next or stats.curriculum_level < c.min_curriculum_level - 1e-6:
            return False
        if stats.wall_s < self._resume_train_s:
            return False
        started = self.clock()
        m = self.evaluate(runner, c.screen_episodes, c.seed)
        if c.screen_backoff:
            self._resume_train_s = stats.wall_s + c.screen_backoff * (self.clock() - started)
        far = c.every_when_far and m["success_rate"] < c.target / 2
        self._next = done + (c.every_when_far if far else c.every)
        ev = Evaluation(stats.iteration, stats.wall_s, m)
        self.history.append(ev)
        log.info(
            "it %d at %.1f s: success %.1f %%, crash %.1f %%, RMSE %.1f cm",
            stats.iteration,
            stats.wall_s,
            100 * m["success_rate"],
            100 * m["crash_rate"],
            100 * m["position_rmse_m"],
        )
        if m["success_rate"] < c.target:
            return False
        if c.confirm_episodes:
            if c.crash_vs_baseline:
                self.baseline_metrics()  # flown once; not part of the confirmation's time below
            started = self.clock()
            ev.confirm = self.evaluate(runner, c.confirm_episodes, c.confirm_seed)
            ev.confirmed = self.passes(ev.confirm)
            if not ev.confirmed and c.confirm_backoff:
                self._resume_train_s = stats.wall_s + c.confirm_backoff * (self.clock() - started)
            log.info(
                "  confirmation on %d other episodes: success %.1f %%, crash %.2f %% (PID %.2f %%): %s",
                c.confirm_episodes,
                100 * ev.confirm["success_rate"],
                100 * ev.confirm["crash_rate"],
                100 * self.baseline_metrics()["crash_rate"],
                "confirmed" if ev.confirmed else "not confirmed",
            )
        if self.first_crossing is None:
            self.first_crossing = ev
        if ev.confirmed and self.confirmed_at is None:
            self.confirmed_at = ev
        return ev.confirmed or not c.until_confirmed or not c.confirm_episodes

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the first crossing, the confirmed policy and the baseline on the confirmation episodes."""

        def brief(ev: Evaluation | None) -> dict[str, Any] | None:
            if ev is None:
                return None
            out: dict[str, Any] = {
                "iterations": ev.iteration + 1,
                "train_s": round(ev.train_s, 2),
                "success": round(ev.metrics["success_rate"], 4),
                "crash": round(ev.metrics["crash_rate"], 4),
            }
            if ev.confirm is not None:
                out["confirm_success"] = round(ev.confirm["success_rate"], 4)
                out["confirm_crash"] = round(ev.confirm["crash_rate"], 4)
            return out

        return {
            "first_crossing": brief(self.first_crossing),
            "confirmed": brief(self.confirmed_at),
            "confirmations": sum(ev.confirm is not None for ev in self.history),
            "pid_confirm_success": None if self.baseline is None else round(self.baseline["success_rate"], 4),
            "pid_confirm_crash": None if self.baseline is None else round(self.baseline["crash_rate"], 4),
        }
