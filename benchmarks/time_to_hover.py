"""Time to hover: training wall clock until a policy meets the hover success criterion, per seed.

For each seed, ``sim2real train``'s loop runs with a periodic evaluation: every ``--eval-every`` iterations the
current deterministic actor flies ``--episodes`` episodes of 10 s drawn from the task's default randomization
(not a narrowed one), and training stops at the first evaluation with success >= ``--target``. Success for
hover (issue): error < 0.1 m from 3 s on, RMS < 0.05 m over the last 5 s, no crash (``policies.rollout``).
The evaluation pauses the training clock: ``seconds`` per seed is training only, ``eval_s`` is reported apart.

    python benchmarks/time_to_hover.py --seeds 5 --interface rpm ctbr

prints one JSON line per interface: {"task", "action", "seeds", "succeeded", "median_s", "max_s", "eval_s",
"confirm_success_min", "per_seed": [{"seed", "seconds", "iterations", "success", "confirm_success", "eval_s",
"reached_s": {"0.5": s, ...}}, ...]}. ``median_s`` / ``max_s`` are null unless every seed succeeded within
``--max-seconds``. The policy that first meets the target is flown again on ``--confirm-episodes`` other episodes
(``confirm_success``; its time is in ``eval_s``): the first crossing of 95 % on 256 episodes could be a lucky draw.
With ``--until-confirmed`` training goes on until a policy's confirmation meets the target as well (``confirmed_s``
per seed, ``confirmed_median_s``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tensordict import TensorDict

from policies.overrides import apply_overrides
from policies.rollout import rollout
from policies.train import ALGOS, IterationStats, train
from policies.train_cfg import TrainCfg, train_cfg
from sim.tasks import make_env

log = logging.getLogger("time_to_hover")
MILESTONES = (0.5, 0.8, 0.9, 0.95)


class PeriodicEval:
    """The ``on_iteration`` callback: evaluate every ``every`` iterations, stop at ``target`` success."""

    def __init__(
        self,
        cfg: TrainCfg,
        episodes: int,
        seconds: float,
        every: int,
        target: float,
        seed: int,
        confirm: int = 0,
        until_confirmed: bool = False,
    ):
        self.env_cfg = copy.deepcopy(cfg.env)
        self.env_cfg.episode_s = seconds
        self.task, self.episodes, self.every, self.target, self.seed = cfg.task, episodes, every, target, seed
        self.confirm = confirm  # episodes of a second, independent evaluation of a policy that met the target
        self.until_confirmed = until_confirmed  # train on until the confirmation meets the target too
        self.history: list[dict[str, float]] = []
        self.solved_at: IterationStats | None = None  # the first evaluation that met the target (the measure)
        self.confirmed: dict[str, float] | None = None  # that policy's confirmation
        self.confirmed_at: IterationStats | None = None  # the first policy whose confirmation met the target

    def evaluate(self, runner, episodes: int | None = None, seed: int | None = None) -> dict[str, float]:
        policy = runner.get_inference_policy()
        env = make_env(self.task, episodes or self.episodes, seed=self.seed if seed is None else seed, cfg=self.env_cfg)
        n = env.num_envs

        def act(obs: torch.Tensor) -> torch.Tensor:
            return policy(TensorDict({"policy": obs}, batch_size=[n])).clamp(-1.0, 1.0)

        with torch.inference_mode():
            return rollout(env, act, self.env_cfg.max_episode_length).metrics()

    def __call__(self, stats: IterationStats, runner) -> bool:
        if (stats.iteration + 1) % self.every:
            return False
        m = self.evaluate(runner)
        self.history.append({"iteration": stats.iteration, "train_s": stats.wall_s, **m})
        log.info(
            "it %d at %.1f s: success %.1f %%, crash %.1f %%, RMSE %.1f cm",
            stats.iteration,
            stats.wall_s,
            100 * m["success_rate"],
            100 * m["crash_rate"],
            100 * m["position_rmse_m"],
        )
        if m["success_rate"] < self.target:
            return False
        confirmed = None
        if self.confirm:  # fresh episodes (another seed): is the crossing a lucky draw of 256?
            confirmed = self.evaluate(runner, self.confirm, self.seed + 500_000)
            log.info("  confirmation over %d other episodes: %.1f %%", self.confirm, 100 * confirmed["success_rate"])
        if self.solved_at is None:
            self.solved_at, self.confirmed = stats, confirmed
        if not self.until_confirmed:
            return True
        if confirmed is not None and confirmed["success_rate"] >= self.target:
            self.confirmed_at = stats
            return True
        return False


def run_seed(args: argparse.Namespace, interface: str, seed: int) -> dict:
    cfg = train_cfg(args.task)
    if args.algo:
        cfg.select_algo(args.algo)
    cfg.select_interface(interface)
    cfg.seed = seed
    cfg.max_seconds = args.max_seconds
    cfg.max_iterations = 100_000
    if args.num_envs:
        cfg.num_envs = args.num_envs
    apply_overrides(cfg, args.set)
    cb = PeriodicEval(
        cfg,
        args.episodes,
        args.episode_s,
        args.eval_every,
        args.target,
        seed=10_000 + seed,
        confirm=args.confirm_episodes,
        until_confirmed=args.until_confirmed,
    )
    t0 = time.perf_counter()
    result = train(cfg, run_dir=None, progress=False, on_iteration=cb)
    total = time.perf_counter() - t0
    solved = cb.solved_at
    out = {
        "seed": seed,
        "seconds": round(solved.wall_s, 2) if solved else None,
        "iterations": (solved.iteration + 1) if solved else result.iterations,
        "success": cb.history[-1]["success_rate"] if cb.history else None,
        "best_success": max((h["success_rate"] for h in cb.history), default=None),
        "confirm_success": cb.confirmed["success_rate"] if cb.confirmed else None,
        "confirmed_s": round(cb.confirmed_at.wall_s, 2) if cb.confirmed_at else None,
        "train_s": round(result.wall_s, 2),
        "eval_s": round(result.paused_s, 2),
        "total_s": round(total, 2),
        # training seconds at the first evaluation reaching each success rate (null: not reached)
        "reached_s": {
            f"{level:g}": next((round(h["train_s"], 1) for h in cb.history if h["success_rate"] >= level), None)
            for level in MILESTONES
        },
    }
    if args.verbose_history:
        out["history"] = cb.history
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="quadrotor-hover")
    p.add_argument("--interface", nargs="+", default=["rpm"], choices=["rpm", "ctbr"])
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=120.0, help="training budget per seed, s")
    p.add_argument("--eval-every", type=int, default=5, help="iterations between evaluations")
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--episode-s", type=float, default=10.0)
    p.add_argument("--target", type=float, default=0.95, help="success rate that counts as solved")
    p.add_argument(
        "--confirm-episodes",
        type=int,
        default=1024,
        help="re-fly the policy that met the target on this many other episodes (0: skip); counted in eval_s",
    )
    p.add_argument(
        "--until-confirmed",
        action="store_true",
        help="train on until a policy's confirmation also meets the target (confirmed_s); seconds stays the first",
    )
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("--algo", choices=ALGOS, default=None, help="learner (default: the task's config)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--verbose-history", action="store_true", help="include every evaluation in the JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    for interface in args.interface:
        per_seed = [run_seed(args, interface, s) for s in range(args.first_seed, args.first_seed + args.seeds)]
        times = [r["seconds"] for r in per_seed if r["seconds"] is not None]
        all_ok = len(times) == len(per_seed)
        print(
            json.dumps(
                {
                    "task": args.task,
                    "action": interface,
                    "algo": args.algo or train_cfg(args.task).algo,
                    "seeds": len(per_seed),
                    "succeeded": len(times),
                    "median_s": round(statistics.median(times), 2) if all_ok else None,
                    "max_s": round(max(times), 2) if all_ok else None,
                    "eval_s": round(sum(r["eval_s"] for r in per_seed), 2),
                    "confirmed_median_s": (
                        statistics.median(r["confirmed_s"] for r in per_seed)
                        if per_seed and all(r["confirmed_s"] is not None for r in per_seed)
                        else None
                    ),
                    "confirm_success_min": min(
                        (r["confirm_success"] for r in per_seed if r["confirm_success"] is not None), default=None
                    ),
                    "threads": torch.get_num_threads(),
                    "overrides": args.set,
                    "per_seed": per_seed,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
