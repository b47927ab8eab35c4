"""Time to hover: training wall clock until a hover policy is confirmed, per seed.

For each seed, ``sim2real train``'s loop runs with :class:`policies.stopping.ConfirmedStop` as its callback: every
``--eval-every`` iterations the current deterministic actor flies ``--episodes`` episodes of 10 s drawn from the
task's default randomization (not a narrowed one). Success for hover (issue): error < 0.1 m from 3 s on, RMS < 0.05 m
over the last 5 s, no crash (``policies.rollout``). When a screening meets ``--target`` (the *first crossing*),
the policy flies ``--confirm-episodes`` other episodes, and so does the PID baseline (the same episodes: same env
seed). The policy is *confirmed* when there its success meets the target and its crash rate is at most the PID
baseline's. Training goes on until a confirmed policy (``--first-crossing-only``: stop at the first crossing).
Evaluations pause the training clock: the seconds are training only, ``eval_s`` is reported apart.

    python benchmarks/time_to_hover.py --seeds 5 --interface rpm ctbr

prints one JSON line per interface: {"task", "action", "seeds", "confirmed", "confirmed_median_s",
"confirmed_max_s", "first_median_s", "confirmed_median_iterations", "ms_per_iteration_median", "eval_s",
"per_seed": [{"seed", "first": {"iterations", "train_s", "success", "crash", "confirm_success", "confirm_crash"},
"confirmed": {...}, "pid_confirm_crash", "pid_confirm_success", "ms_per_iteration", "reached_s", ...}, ...]}.
Medians are null unless every seed reached them within ``--max-seconds``. ``ms_per_iteration`` (median over the
run's iterations, callback excluded) lets runs on hosts of different speed be compared: the iterations per seed are
deterministic for a given config and thread count, the seconds are not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from policies.overrides import apply_overrides
from policies.stopping import ConfirmedStop, StopCfg
from policies.train import ALGOS, train
from policies.train_cfg import train_cfg

log = logging.getLogger("time_to_hover")
MILESTONES = (0.5, 0.8, 0.9, 0.95)


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
    stop = StopCfg(
        target=args.target,
        every=args.eval_every,
        screen_episodes=args.episodes,
        confirm_episodes=args.confirm_episodes,
        episode_s=args.episode_s,
        seed=10_000 + seed,
        crash_vs_baseline=not args.no_crash_criterion,
        until_confirmed=not args.first_crossing_only,
    )
    cb = ConfirmedStop(cfg.task, cfg.env, stop)
    t0 = time.perf_counter()
    result = train(cfg, run_dir=None, progress=False, on_iteration=cb)
    total = time.perf_counter() - t0
    steps = [b.wall_s - a.wall_s for a, b in itertools.pairwise(result.history[10:])]
    out = {
        "seed": seed,
        **cb.summary(),
        "iterations_run": result.iterations,
        "ms_per_iteration": round(1000 * statistics.median(steps), 1) if steps else None,
        "best_success": max((ev.metrics["success_rate"] for ev in cb.history), default=None),
        "train_s": round(result.wall_s, 2),
        "eval_s": round(result.paused_s, 2),
        "total_s": round(total, 2),
        # training seconds at the first screening reaching each success rate (null: not reached)
        "reached_s": {
            f"{level:g}": next((round(ev.train_s, 1) for ev in cb.history if ev.metrics["success_rate"] >= level), None)
            for level in MILESTONES
        },
    }
    if args.verbose_history:
        out["history"] = [
            {"iteration": ev.iteration, "train_s": ev.train_s, **ev.metrics, "confirm": ev.confirm} for ev in cb.history
        ]
    log.info("seed %d: %s", seed, json.dumps({k: out[k] for k in ("first_crossing", "confirmed", "ms_per_iteration")}))
    return out


def _median(values: list, key: str, field: str = "train_s"):
    picked = [v[key][field] if v[key] else None for v in values]
    if not picked or any(p is None for p in picked):
        return None
    return round(statistics.median(picked), 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="quadrotor-hover")
    p.add_argument("--interface", nargs="+", default=["rpm"], choices=["rpm", "ctbr"])
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=120.0, help="training budget per seed, s")
    p.add_argument("--eval-every", type=int, default=5, help="iterations between screening evaluations")
    p.add_argument("--episodes", type=int, default=256, help="episodes per screening evaluation")
    p.add_argument("--episode-s", type=float, default=10.0)
    p.add_argument("--target", type=float, default=0.95, help="success rate that counts as solved")
    p.add_argument(
        "--confirm-episodes",
        type=int,
        default=1024,
        help="fly a policy that met the target (and the PID baseline) on this many other episodes (0: skip)",
    )
    p.add_argument(
        "--first-crossing-only",
        action="store_true",
        help="stop at the first screening crossing (its confirmation is still flown) instead of a confirmed policy",
    )
    p.add_argument(
        "--no-crash-criterion",
        action="store_true",
        help="confirm on success alone (default: also a crash rate <= the PID baseline's on the same episodes)",
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
        confirmed = [r for r in per_seed if r["confirmed"]]
        ms = [r["ms_per_iteration"] for r in per_seed if r["ms_per_iteration"]]
        print(
            json.dumps(
                {
                    "task": args.task,
                    "action": interface,
                    "algo": args.algo or train_cfg(args.task).algo,
                    "seeds": len(per_seed),
                    "confirmed": len(confirmed),
                    "confirmed_median_s": _median(per_seed, "confirmed"),
                    "confirmed_max_s": max((r["confirmed"]["train_s"] for r in confirmed), default=None)
                    if len(confirmed) == len(per_seed)
                    else None,
                    "confirmed_median_iterations": _median(per_seed, "confirmed", "iterations"),
                    "first_median_s": _median(per_seed, "first_crossing"),
                    "first_median_iterations": _median(per_seed, "first_crossing", "iterations"),
                    "confirmed_crash_max": max((r["confirmed"]["confirm_crash"] for r in confirmed), default=None),
                    "pid_confirm_crash_min": min(
                        (r["pid_confirm_crash"] for r in per_seed if r["pid_confirm_crash"] is not None), default=None
                    ),
                    "ms_per_iteration_median": round(statistics.median(ms), 1) if ms else None,
                    "eval_s": round(sum(r["eval_s"] for r in per_seed), 2),
                    "threads": torch.get_num_threads(),
                    "overrides": args.set,
                    "per_seed": per_seed,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
