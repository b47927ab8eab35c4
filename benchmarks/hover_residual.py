"""The hover actor taught by the safety layer's motor-aware fallback controller, then refined by PPO as a bounded
residual: crashes and hover success against PPO from scratch (issue #22; docs/training.md, "A bounded residual on
the student").

1. DAgger (Ross, Gordon and Bagnell, AISTATS 2011): ``--rounds`` rounds of ``--vehicles`` vehicles of the default
   randomization, started where the hover task starts its episodes and flown ``--seconds`` each
   (``benchmarks/fallback_vehicles.py``'s ``Vehicles``); every control step the fallback controller (the safety
   profile's defaults, told its vehicle's true thrust scale, reading the state its own observation latency old)
   labels the actor's own observation (noisy, delayed, with its history) with its command, until the vehicle meets a
   task termination. Round r flies the student's action with probability 1 - 0.5^r. The actor (the PPO actor's
   class and normalizer) is fitted by MSE to every round's labels.
2. PPO for ``--iterations`` with the student frozen inside the actor: mean action = student(x) + S tanh(r(x)), r a
   fresh MLP of the actor's shape whose last layer starts x0.01 (``--scale`` S; the initial action std S / 2).
3. Both flown as ``hover_failures.py`` flies a policy (2048 episodes of 10 s, env seed 4242).

Prints one JSON object per stage. One thread; deterministic for a given ``--seed``. With ``--run-dir`` the PPO stage
writes its checkpoints there; the actor is :class:`policies.residual.BoundedResidual`, and ``sim2real export`` turns
the last checkpoint into one ``policy.onnx`` / ``policy.h`` (prior and residual in one graph):

    python benchmarks/hover_residual.py --iterations 1200 --scale 0.35 --seed 0 --run-dir runs/residual
    python sim2real.py export runs/residual
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fallback_vehicles import commands, task_failed, task_start_fleet
from benchmarks.hover_failures import fly
from policies.residual import wrap_in_residual
from policies.train import train
from policies.train_cfg import train_cfg

PERIOD_S = 0.01
SKIP_STEPS = 6  # the first observations after placing a vehicle still hold its delay lines' and history's old values


def dagger_round(n: int, seed: int, student, share: float, seconds: float, gen: torch.Generator) -> tuple:
    """One round: (observations (M, D), teacher actions (M, 4) normalized, crash fraction). ``student``: obs ->
    normalized action, flown instead of the teacher's with probability ``share`` (None: the teacher alone)."""
    vehicles, controllers, reference = task_start_fleet(n, seed, start_seed=seed + 1000)
    env, spec = vehicles.env, vehicles.env.action_spec
    latency = env.param("obs_latency")[:, 0].round().long().numpy()
    history, xs, ys = [], [], []
    sent = np.repeat(vehicles.hover_rpm[:, None], 4, axis=1)
    crashed = np.zeros(n, bool)
    obs = env.get_observations()["policy"].clone()
    for k in range(round(seconds / PERIOD_S)):
        history.append(vehicles.state())
        crashed |= task_failed(history[-1], reference)
        teacher = commands(controllers, history, latency, sent, PERIOD_S)
        label = spec.to_normalized(torch.as_tensor(teacher, dtype=torch.float32)).clamp(-1.0, 1.0)
        if k >= SKIP_STEPS:
            keep = torch.as_tensor(~crashed)
            xs.append(obs[keep])
            ys.append(label[keep])
        action = label
        if student is not None:
            with torch.no_grad():
                own = student(obs).clamp(-1.0, 1.0)
            action = torch.where((torch.rand(n, generator=gen) < share)[:, None], own, label)
        sent = spec.to_physical(action).numpy().astype(float)
        env.step(action)
        obs = env.get_observations()["policy"].clone()
    return torch.cat(xs), torch.cat(ys), float(crashed.mean())


def fit(actor, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int = 4096) -> float:
    """Fit the actor's normalizer and MLP to (x, y) by MSE; returns the last minibatch's loss."""
    actor.train()
    actor.obs_normalizer.update(x)
    xn = actor.obs_normalizer(x).detach()
    optimizer = torch.optim.Adam(actor.mlp.parameters(), lr=1e-3)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,))
        loss = nn.functional.mse_loss(actor.mlp(xn[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    actor.eval()
    return float(loss.detach())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--vehicles", type=int, default=512, help="per DAgger round")
    p.add_argument("--seconds", type=float, default=3.0, help="per DAgger flight")
    p.add_argument("--fit-steps", type=int, default=3000, help="Adam steps of 4096 samples after each round")
    p.add_argument("--iterations", type=int, default=1200, help="PPO iterations of the residual")
    p.add_argument("--scale", type=float, default=0.35, help="the residual's reach S, normalized action units")
    p.add_argument("--seed", type=int, default=0, help="PPO seed (the DAgger vehicles: 100 + round)")
    p.add_argument("--episodes", type=int, default=2048)
    p.add_argument("--run-dir", type=Path, help="write the checkpoints here (`sim2real export` turns the last into a "
                   "policy.onnx and policy.h: prior and residual in one network)")  # fmt: skip
    args = p.parse_args()
    for name in ("rounds", "vehicles", "fit_steps", "iterations", "episodes"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')}: expected a positive count, got {getattr(args, name)}")
    if not args.scale > 0:
        p.error(f"--scale: expected a positive reach in normalized action units, got {args.scale}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cfg = train_cfg("quadrotor-hover")
    cfg.ppo.init_noise_std = args.scale / 2
    cfg.seed, cfg.max_seconds, cfg.max_iterations = args.seed, None, args.iterations
    student: dict[str, nn.Module] = {}

    def teach(runner) -> None:  # DAgger into the fresh actor, then the residual around it
        actor, gen = runner.alg.actor, torch.Generator().manual_seed(args.seed)
        xs, ys = [], []
        for r in range(args.rounds):
            own = None if r == 0 else (lambda obs: actor.mlp(actor.obs_normalizer(obs)))
            x, y, crashed = dagger_round(args.vehicles, 100 + r, own, 1.0 - 0.5**r, args.seconds, gen)
            xs.append(x)
            ys.append(y)
            loss = fit(actor, torch.cat(xs), torch.cat(ys), args.fit_steps)
            line = {"stage": "dagger", "round": r, "samples": sum(map(len, xs)), "rollout_crash_rate": crashed}
            print(json.dumps({**line, "loss": loss, "s": round(time.perf_counter() - t0, 1)}), flush=True)
        student["actor"] = copy.deepcopy(actor)
        wrap_in_residual(runner, args.scale)

    result = train(cfg, args.run_dir, progress=False, on_start=teach)
    taught = student["actor"]
    report = fly(lambda td: taught.mlp(taught.obs_normalizer(td["policy"])), cfg.env, args.episodes, progress=False)
    print(json.dumps({"stage": "student", "s": round(time.perf_counter() - t0, 1), **report}), flush=True)
    report = fly(result.runner.get_inference_policy(), cfg.env, args.episodes, progress=False)
    line = {"stage": "residual", "iterations": result.iterations, "scale": args.scale, "seed": args.seed}
    print(json.dumps({**line, "s": round(time.perf_counter() - t0, 1), **report}), flush=True)


if __name__ == "__main__":
    main()
