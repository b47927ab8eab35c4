"""Articulated-physics throughput: one JSON line per (robot, engine, device, num_envs), plus Gymnasium's Ant-v5.

Each env step is one control step of the raw engine (``substeps`` physics steps, default physics_hz/control_hz
of the robot profile): PD torques towards random joint targets around the default pose (kp 20, kd 0.5, computed
once per control step in torch), envs whose base falls below 60 % of its initial height are reset with
``set_state`` (so resets cost what they cost in training). No observations, rewards or randomization draws:
this is the engine's share of an env step. The reference is Gymnasium's ``Ant-v5`` (MuJoCo, one env in one
process, random actions, 5 physics steps of 10 ms per env step); ``ratio_vs_ant`` = env_steps_per_s / Ant's.

    python benchmarks/articulated_throughput.py [--robot a1] [--num-envs 64 1024 4096]
        [--engines mujoco mujoco_warp] [--device cpu] [--steps 100] [--repeats 3] [--no-ant]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.articulated.actuators import ideal_pd_torque
from sim.articulated.engine import make_engine


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_robot(name: str):
    """(model, default joint positions (J,), base height m or None, substeps) of a robot profile."""
    from sim.articulated.profile import load_profile
    from sim.articulated.robots import load_model

    profile = load_profile(name)
    model = load_model(profile)
    substeps = max(1, round(profile.physics_hz / profile.control_hz))
    height = getattr(profile, "initial_base_height_m", None) if model.nq - model.nu == 7 else None
    return model, torch.tensor(profile.joints.default_position_rad, dtype=torch.float64), height, substeps


def bench_engine(
    model,
    default_q,
    base_height,
    substeps: int,
    engine: str,
    num_envs: int,
    device: torch.device,
    steps: int,
    repeats: int,
) -> dict:
    """Best and median env-steps/s of ``repeats`` runs of ``steps`` control steps; setup (and warp's kernel
    compilation or load from its cache) is timed separately as setup_s."""
    t0 = time.perf_counter()
    eng = make_engine(model, num_envs, engine, device)
    floating = base_height is not None
    qpos0 = torch.from_numpy(model.qpos0.copy()).to(device)
    joints = slice(model.nq - model.nu, model.nq)
    qpos0[joints] = default_q.to(device)
    if floating:
        qpos0[2] = base_height
    all_ids = torch.arange(num_envs, device=device)
    zeros_v = torch.zeros(num_envs, model.nv, device=device, dtype=torch.float64)
    eng.set_state(all_ids, qpos0.expand(num_envs, -1), zeros_v)
    g = torch.Generator(device).manual_seed(0)
    pool = [
        default_q.to(device).float() + 0.5 * (2 * torch.rand(num_envs, model.nu, generator=g, device=device) - 1)
        for _ in range(8)
    ]
    limit = torch.from_numpy(model.actuator_ctrlrange[:, 1].copy()).float().to(device)
    vjoints = slice(model.nv - model.nu, model.nv)
    resets = 0

    def control_step(k: int) -> int:
        q, qd = eng.qpos[:, joints].float(), eng.qvel[:, vjoints].float()
        eng.step(ideal_pd_torque(pool[k % 8], q, qd, 20.0, 0.5, limit), substeps)
        if not floating:
            return 0
        fallen = (eng.qpos[:, 2] < 0.6 * base_height).nonzero().squeeze(-1)
        if fallen.numel():
            eng.set_state(fallen, qpos0.expand(fallen.numel(), -1), zeros_v[: fallen.numel()])
        return int(fallen.numel())

    for k in range(3):
        control_step(k)
    _sync(device)
    setup_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for k in range(steps):
            resets += control_step(k)
        _sync(device)
        times.append(time.perf_counter() - t0)
    best, median = min(times), float(np.median(times))
    return {
        "num_envs": num_envs,
        "engine": engine,
        "device": str(device),
        "env_steps_per_s": round(num_envs * steps / best, 1),
        "env_steps_per_s_median": round(num_envs * steps / median, 1),
        "physics_steps_per_s": round(num_envs * steps * substeps / best, 1),
        "substeps": substeps,
        "timestep_s": float(model.opt.timestep),
        "resets_per_step": round(resets / (steps * repeats), 2),
        "nthread": getattr(eng, "nthread", None),
        "setup_s": round(setup_s, 2),
        "finite": bool(torch.isfinite(eng.qpos).all()),
    }


def bench_ant(steps: int, repeats: int) -> dict:
    """Gymnasium Ant-v5, random actions, one env in this process."""
    import gymnasium as gym

    env = gym.make("Ant-v5")
    env.reset(seed=0)
    env.action_space.seed(0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        times.append(time.perf_counter() - t0)
    inner = env.unwrapped
    return {
        "task": "gymnasium-Ant-v5",
        "num_envs": 1,
        "engine": "mujoco (gymnasium)",
        "device": "cpu",
        "env_steps_per_s": round(steps / min(times), 1),
        "env_steps_per_s_median": round(steps / float(np.median(times)), 1),
        "physics_steps_per_s": round(steps * inner.frame_skip / min(times), 1),
        "substeps": int(inner.frame_skip),
        "timestep_s": float(inner.model.opt.timestep),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="a1", help="robot profile (launch/robots/<name>.yaml)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 1024, 4096])
    parser.add_argument("--engines", nargs="+", default=["mujoco"], choices=["mujoco", "mujoco_warp"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=100, help="control steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--substeps", type=int, default=None, help="physics steps per env step (default: profile)")
    parser.add_argument("--no-ant", action="store_true", help="skip the Gymnasium Ant-v5 reference")
    args = parser.parse_args(argv)

    torch.set_num_threads(min(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    device = torch.device(args.device)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    ant = None if args.no_ant else bench_ant(steps=2000, repeats=args.repeats)
    if ant is not None:
        print(json.dumps({**ant, **machine}), flush=True)
    model, default_q, height, substeps = load_robot(args.robot)
    substeps = args.substeps or substeps
    for engine in args.engines:
        for n in args.num_envs:
            row = bench_engine(model, default_q, height, substeps, engine, n, device, args.steps, args.repeats)
            row = {"task": f"{args.robot}-engine", **row, **machine}
            if ant is not None:
                row["ratio_vs_ant"] = round(row["env_steps_per_s"] / ant["env_steps_per_s"], 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
