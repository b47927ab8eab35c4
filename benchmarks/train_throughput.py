"""Training throughput: PPO iterations on the quadrotor task at default settings; prints JSON.

    .venv/bin/python benchmarks/train_throughput.py [--num-envs N (default: the task's)] [--iterations 5] [--threads 2]

The first iteration includes torch.compile of the env (>= 4096 envs) and is reported separately.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="quadrotor-hover")
    p.add_argument("--num-envs", type=int, default=None, help="default: the task's training config")
    p.add_argument("--iterations", type=int, default=5, help="measured iterations (after the first)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--interface", default="rpm", choices=["rpm", "ctbr"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from policies.train import train
    from policies.train_cfg import train_cfg

    cfg = train_cfg(args.task)
    cfg.select_interface(args.interface)
    cfg.num_envs = args.num_envs or cfg.num_envs
    cfg.max_iterations = args.iterations + 1
    result = train(cfg, None, progress=False)
    h = result.history
    times = [b.wall_s - a.wall_s for a, b in itertools.pairwise(h)]
    steps = cfg.num_envs * cfg.ppo.num_steps_per_env
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "task": args.task,
                "interface": args.interface,
                "num_envs": cfg.num_envs,
                "steps_per_env": cfg.ppo.num_steps_per_env,
                "actor": list(cfg.actor.hidden_dims),
                "critic": list(cfg.critic.hidden_dims),
                "threads": args.threads,
                "first_iteration_s": h[0].wall_s,
                "iteration_s_median": statistics.median(times),
                "env_steps_per_s": steps / statistics.median(times),
                "measured_iterations": len(times),
                "torch": torch.__version__,
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
