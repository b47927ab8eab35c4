"""Where a hover policy fails: failure rate per quintile of each randomized parameter, and in the corner of slow
motors and loop delay.

Trains ``quadrotor-hover`` for ``--seconds`` (the default config, ``--set`` overrides), then flies ``--episodes``
episodes of 10 s from the default randomization and records every env's parameters at the first step. Success is
the issue's hover criterion (``policies.rollout.HoverCriterion``). Prints one JSON object:

    python benchmarks/hover_failures.py --seconds 120 [--set env.observation_history=0]
    python benchmarks/hover_failures.py --iterations 807 --threads 1   # the same policy on any host

{"iterations", "metrics": {...}, "by_quintile": {"motor_tau_down[0]": [5 failure rates], ...},
 "tau_down_by_delay": {"0": [5 rates], "1": [...], "2": [...]}}: rates in [0, 1], quintile 1 = smallest values;
"tau_down_by_delay" splits the motor spin-down quintiles by total delay (action + observation latency, steps).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tensordict import TensorDict

from policies.overrides import apply_overrides
from policies.rollout import HoverCriterion, rollout
from policies.train import train
from policies.train_cfg import train_cfg
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.tasks import make_env


def quintile_rates(values: torch.Tensor, failed: torch.Tensor, mask: torch.Tensor | None = None) -> list[float | None]:
    """Failure rate in each quintile of ``values`` (None for an empty bin, e.g. a two-valued parameter)."""
    edges = torch.quantile(values, torch.tensor([0.2, 0.4, 0.6, 0.8]))
    bins = torch.bucketize(values, edges)
    keep = torch.ones_like(failed) if mask is None else mask
    rates = []
    for q in range(5):
        sel = (bins == q) & keep
        rates.append(round(failed[sel].float().mean().item(), 4) if sel.any() else None)
    return rates


def fly(
    policy: Callable[[TensorDict], torch.Tensor], env_cfg: QuadrotorTaskCfg, episodes: int, progress: bool = True
) -> dict:
    """Fly ``policy`` (a TensorDict of the "policy" group -> normalized actions) for ``episodes`` episodes of 10 s
    from ``env_cfg``'s randomization (env seed 4242): the rollout's metrics, the failure rate, failure rates per
    quintile of every randomized parameter and per motor spin-down quintile and total delay."""
    env_cfg = copy.deepcopy(env_cfg)
    env_cfg.episode_s = 10.0
    env = make_env("quadrotor-hover", episodes, seed=4242, cfg=env_cfg)
    params: dict[str, torch.Tensor] = {}

    def act(obs: torch.Tensor) -> torch.Tensor:
        if not params:  # the rollout's own reset has drawn them: record at the first step
            params.update({name: env.param(name).clone() for name in env.param_rows})
        return policy(TensorDict({"policy": obs}, batch_size=[env.num_envs])).clamp(-1.0, 1.0)

    with torch.inference_mode():
        run = rollout(env, act, env_cfg.max_episode_length, progress=progress)
    failed = ~run.success(HoverCriterion())
    by_quintile = {
        f"{name}[{c}]": quintile_rates(values[:, c], failed)
        for name, values in params.items()
        for c in range(values.shape[1])
        if values[:, c].std() > 0
    }
    delay = (params["action_latency"][:, 0] + params["obs_latency"][:, 0]).round().long()
    tau_down = params["motor_tau_down"][:, 0]
    by_delay = {str(d): quintile_rates(tau_down, failed, delay == d) for d in delay.unique().tolist()}
    return {
        "metrics": run.metrics(),
        "failure_rate": round(failed.float().mean().item(), 4),
        "by_quintile": by_quintile,
        "tau_down_by_delay": by_delay,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0, help="training wall clock, s")
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="stop after this many iterations instead of --seconds (runs compare across hosts and loads; with "
        "--threads 1 the same iterations give the same policy)",
    )
    p.add_argument("--episodes", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0, help="training seed (the evaluation uses 4242)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = train_cfg("quadrotor-hover")
    apply_overrides(cfg, args.set)
    if args.iterations is not None and args.iterations <= 0:
        p.error(f"--iterations: expected a positive count, got {args.iterations}")
    cfg.seed, cfg.max_seconds, cfg.max_iterations = args.seed, args.seconds, 10**6
    if args.iterations is not None:
        cfg.max_seconds, cfg.max_iterations = None, args.iterations
    result = train(cfg, None, progress=False)
    policy = result.runner.get_inference_policy()

    report = fly(policy, cfg.env, args.episodes)
    print(
        json.dumps(
            {
                "iterations": result.iterations,
                "overrides": args.set,
                **report,
            }
        )
    )


if __name__ == "__main__":
    main()
