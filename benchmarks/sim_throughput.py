"""Simulator throughput: one JSON line per (task, what, device, num_envs).

"env_step" is the full env step (dynamics + observations + rewards + resets + randomization) driven by random
actions (so failures and resets happen at an early-training rate), on the env's default backend ("native": the
C++ CPU kernel where the config is supported; "compiled": torch.compile) or on the torch path (--backend torch);
"dynamics" is the compiled torch physics of one control step alone. Compilation and warm-up are excluded and
reported as compile_s. Every line carries the CPU (``cpu``: /proc/cpuinfo's model name, vendor, family, model and
whether it has AVX-512F); quadrotor lines also carry ``dynamics_to_step`` (and ``_median``): dynamics env-steps/s
over full env-steps/s, best (median) of runs alternated in the same process: what the full step costs beyond the
physics, comparable across hosts. On the native backend the env_step line also says where the full step's time
goes, from the kernel's own timers (``ns_per_env_step``, means over the timed runs): its physics pass (delayed
action, substeps, rewards, terminations), its observation pass (noise, delay, observation groups, in-pass
resets), the rest of the step outside the kernel (Python, reset-pool and interval draws), beside the bare
dynamics and the step's memory floor: ``step_bytes_per_env`` (every buffer the kernel touches, once:
``NativeStep.bytes_per_env``) over ``memory_copy_gb_s`` (a 256 MiB tensor copy on the same threads).

    python benchmarks/sim_throughput.py [--num-envs 1024 16384 65536] [--steps 200] [--repeats 5] [--device cpu]
        [--backend auto|torch|native]

``--compare-resets``: on the native backend, the in-pass resets of the kernel against the earlier eager reset path
(``env._native.inline_resets = False``), stepped alternately on the same env in one process (``--repeats`` rounds
of ``--steps`` steps each), so that the load of a shared machine falls on both alike; one JSON line per num_envs
with both paths' best and median and their ratio.

``--compare-widths``: on the native backend, the kernel built for 16 envs per block (AVX-512) against the one for 8
(AVX2), swapped round by round on the same env in the same way (needs a CPU with AVX-512F); one JSON line per
num_envs.

Articulated tasks (``--tasks legged-walk arm-reach``, ``--engines mujoco mujoco_warp``, ``--articulated-envs``):
full env steps (policy steps) on each engine, with ``"engine"`` and ``"ratio_vs_ant"``: ours over a Gymnasium
MuJoCo ``Ant-v5`` stepping loop (random actions, one process) measured first in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.quadrotor.dynamics import physics_step, step_coeffs
from sim.quadrotor.native import load_kernel, widest
from sim.tasks import make_env


def cpu_info() -> dict:
    """The CPU as /proc/cpuinfo names it (its first processor): model name, vendor, family, model, AVX-512F or not."""
    info: dict = {"model_name": platform.processor() or platform.machine()}
    keys = {"model name": "model_name", "vendor_id": "vendor", "cpu family": "family", "model": "model"}
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return info
    for line in first.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in keys:
            info[keys[key]] = int(value) if key in ("cpu family", "model") and value.isdigit() else value
        elif key == "flags":
            info["avx512f"] = "avx512f" in value.split()
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(repeats: int = 5) -> float:
    """Bytes per second read plus written by a 256 MiB tensor copy on the current threads (best of ``repeats``):
    the host's memory bandwidth as the step sees it."""
    src = torch.ones(64 << 20)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * src.element_size() / best


def _timed_steps(env, pool: list[torch.Tensor], steps: int, repeats: int, device: torch.device) -> tuple[list, int]:
    """Wall seconds of each of ``repeats`` runs of ``steps`` env steps (actions cycled from ``pool``), and the
    number of env resets they caused."""
    resets, times = 0, []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for k in range(steps):
            _, _, done, _ = env.step(pool[k % len(pool)])
            resets += int(done.sum())
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, resets


def bench_env(
    task: str,
    num_envs: int,
    device: torch.device,
    steps: int,
    substeps: int | None,
    backend: str = "auto",
    repeats: int = 1,
    actions: str = "random",
) -> list[dict]:
    """Env-steps/s of the best and the median of ``repeats`` timed runs of ``steps`` steps (on a shared machine the
    best run is the one least disturbed by other processes; the median shows the spread)."""
    t0 = time.perf_counter()
    from sim.tasks import task_entry

    cfg = task_entry(task).make_cfg()
    if substeps:
        cfg.physics_substeps = substeps
    native = {"auto": None, "torch": False, "native": True}[backend]
    env = make_env(task, num_envs, device=device, seed=0, cfg=cfg, compile=True, native=native)
    g = torch.Generator(device).manual_seed(0)
    if actions == "random":  # worst case: failures and resets at an early-training rate
        pool = [2 * torch.rand(num_envs, 4, generator=g, device=device) - 1 for _ in range(8)]
    else:  # the hover command: failures only from the random initial states
        pool = [torch.zeros(num_envs, 4, device=device)] * 8
    for k in range(5):
        env.step(pool[k % 8])
    _sync(device)
    compile_s = time.perf_counter() - t0

    p = env.phys_params()
    zero = torch.zeros(num_envs, device=device)
    dt = cfg.physics_dt

    def physics(body, params):
        coeffs = step_coeffs(params, dt)
        cmd = (body.r1, body.r2, body.r3, body.r4)
        for _ in range(cfg.physics_substeps):
            body = physics_step(body, cmd, params, coeffs, (zero, zero, zero), (zero, zero, zero), dt)
        return tuple(body)

    compiled = torch.compile(physics, dynamic=False)
    body = env.body
    for _ in range(3):
        compiled(body, p)
    # Full steps and dynamics alternate run by run, so that a shared machine's load falls on both alike.
    env_times, dyn_times, resets = [], [], 0
    kernel = env._native if env.backend == "native" else None
    passes = kernel.pass_times() if kernel else None
    for _ in range(repeats):
        times, r = _timed_steps(env, pool, steps, 1, device)
        env_times += times
        resets += r
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            out = compiled(body, p)
        _sync(device)
        dyn_times.append(time.perf_counter() - t0)
    del out
    per_step = 1e9 / (num_envs * steps * repeats)  # seconds summed over the timed runs -> ns per env-step
    split, memory = None, {}
    if kernel:  # where the full step's time goes (means over the timed runs), from the kernel's own timers
        physics, observe = (t1 - t0 for t0, t1 in zip(passes, kernel.pass_times()))
        step_bytes, bandwidth = kernel.bytes_per_env(), copy_bandwidth()
        memory = {"step_bytes_per_env": step_bytes, "memory_copy_gb_s": round(bandwidth / 1e9, 1)}
        split = {
            "memory_floor": round(step_bytes / bandwidth * 1e9, 1),
            "kernel_physics_pass": round(physics * per_step, 1),
            "kernel_observation_pass": round(observe * per_step, 1),
            "outside_kernel": round((sum(env_times) - physics - observe) * per_step, 1),
            "full_step": round(sum(env_times) * per_step, 1),
            "bare_dynamics": round(sum(dyn_times) * per_step, 1),
        }
    common = {
        "task": task,
        "device": str(device),
        "num_envs": num_envs,
        "control_hz": cfg.control_hz,
        "physics_hz": cfg.control_hz * cfg.physics_substeps,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "cpu": cpu_info(),
        "dynamics_to_step": round(min(env_times) / min(dyn_times), 2),  # dynamics M/s over full step M/s, best
        "dynamics_to_step_median": round(statistics.median(env_times) / statistics.median(dyn_times), 2),
    }
    return [
        {
            **common,
            "what": "env_step",
            "backend": env.backend,
            "kernel_width": env._native.lib.quad_width() if env.backend == "native" else None,  # envs per block
            "actions": "uniform random" if actions == "random" else "hover command",
            "env_steps_per_s": num_envs * steps / min(env_times),
            "median_env_steps_per_s": num_envs * steps / statistics.median(env_times),
            "repeats": repeats,
            "resets_per_step": resets / (steps * repeats),
            "compile_s": round(compile_s, 1),
            "ns_per_env_step": split,
            **memory,
        },
        {
            **common,
            "what": "dynamics",
            "env_steps_per_s": num_envs * steps / min(dyn_times),
            "median_env_steps_per_s": num_envs * steps / statistics.median(dyn_times),
            "repeats": repeats,
        },
    ]


def _alternate(task: str, num_envs: int, steps: int, repeats: int, variants: dict) -> tuple[dict, float]:
    """Env-steps/s (best, median) of each of two native-step ``variants`` (name -> function that switches the env
    to it), alternated round by round (the order flips every round) on one env under the same random actions, so
    that the load of a shared machine falls on both alike; and the resets per step."""
    env = make_env(task, num_envs, device="cpu", seed=0, compile=True, native=True)
    g = torch.Generator().manual_seed(0)
    pool = [2 * torch.rand(num_envs, 4, generator=g) - 1 for _ in range(8)]
    for k in range(10):
        env.step(pool[k % 8])
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    resets = 0
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            variants[name](env)
            t0 = time.perf_counter()
            for k in range(steps):
                _, _, done, _ = env.step(pool[k % len(pool)])
                resets += int(done.sum())
            times[name].append(time.perf_counter() - t0)
    rate = {k: (num_envs * steps / min(v), num_envs * steps / statistics.median(v)) for k, v in times.items()}
    return rate, resets / (len(names) * steps * repeats)


def _comparison(task: str, num_envs: int, steps: int, repeats: int, what: str, variants: dict) -> dict:
    """One JSON line of :func:`_alternate`: each variant's best and median, and the first over the second."""
    rate, resets = _alternate(task, num_envs, steps, repeats, variants)
    first, second = list(variants)
    line = {"task": task, "device": "cpu", "cpu": cpu_info(), "num_envs": num_envs, "what": what, "steps": steps}
    line["repeats"] = repeats
    for name in (first, second):
        line[f"{name}_env_steps_per_s"], line[f"{name}_median_env_steps_per_s"] = rate[name]
    line["ratio_best"] = rate[first][0] / rate[second][0]
    line["ratio_median"] = rate[first][1] / rate[second][1]
    return {**line, "resets_per_step": resets, "threads": torch.get_num_threads()}


def compare_resets(task: str, num_envs: int, steps: int, repeats: int) -> dict:
    """The native step with in-pass resets against the eager reset path (:func:`_alternate`)."""

    def use(inline: bool):
        def switch(env) -> None:
            env._native.inline_resets = inline

        return switch

    variants = {"in_pass": use(True), "eager": use(False)}
    return _comparison(task, num_envs, steps, repeats, "env_step_resets_in_pass_vs_eager", variants)


def compare_widths(task: str, num_envs: int, steps: int, repeats: int) -> dict:
    """The native step with the 16-env (AVX-512) kernel against the 8-env (AVX2) one (:func:`_alternate`)."""
    if widest() < 16:
        raise SystemExit("--compare-widths needs a CPU with AVX-512F (the 16-env kernel cannot run here)")
    libs = {w: load_kernel(w) for w in (16, 8)}
    if None in libs.values():
        raise SystemExit("the native kernel could not be built (see the warning above)")

    def use(width: int):
        def switch(env) -> None:
            env._native.lib = libs[width]

        return switch

    return _comparison(task, num_envs, steps, repeats, "env_step_width16_vs_width8", {"w16": use(16), "w8": use(8)})


def bench_articulated(
    task: str, num_envs: int, device: torch.device, engine: str, steps: int, repeats: int, ant: float | None
) -> dict:
    """Full env steps (policy steps: actuators, physics substeps, observations, rewards, resets, randomization) of
    an articulated task under uniform random actions, on ``engine``; ``ratio_vs_ant`` = ours / Gymnasium Ant-v5's
    env steps per second measured in the same run."""
    t0 = time.perf_counter()
    env = make_env(task, num_envs, device=device, seed=0, engine=engine)
    g = torch.Generator(device).manual_seed(0)
    pool = [2 * torch.rand(num_envs, env.num_actions, generator=g, device=device) - 1 for _ in range(8)]
    for k in range(3):
        env.step(pool[k % 8])
    _sync(device)
    setup_s = time.perf_counter() - t0
    times, resets = _timed_steps(env, pool, steps, repeats, device)
    best = num_envs * steps / min(times)
    return {
        "task": task,
        "cpu": cpu_info(),
        "engine": engine,
        "device": str(device),
        "num_envs": num_envs,
        "what": "env_step",
        "control_hz": env.cfg.control_hz,
        "steps": steps,
        "env_steps_per_s": best,
        "median_env_steps_per_s": num_envs * steps / statistics.median(times),
        "ratio_vs_ant": best / ant if ant else None,
        "resets_per_step": resets / (steps * repeats),
        "setup_s": round(setup_s, 1),
        "threads": torch.get_num_threads(),
    }


ARTICULATED = ("legged-walk", "arm-reach")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, nargs="+", default=[1024, 16384, 65536])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--tasks", nargs="+", default=["quadrotor-hover"])
    ap.add_argument("--device", nargs="+", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--substeps", type=int, default=None, help="override physics substeps per control step")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of --steps steps; best and median reported")
    ap.add_argument("--backend", choices=["auto", "torch", "native"], default="auto", help="env step implementation")
    ap.add_argument(
        "--actions", choices=["random", "hover"], default="random", help="random (worst case) or zero actions"
    )
    ap.add_argument(
        "--engines", nargs="+", default=["mujoco"], choices=["mujoco", "mujoco_warp"], help="articulated tasks' engines"
    )
    ap.add_argument("--articulated-envs", type=int, nargs="+", default=[64, 256, 1024], help="num_envs, articulated")
    ap.add_argument(
        "--compare-resets", action="store_true", help="native step: in-pass resets vs the eager reset path, alternated"
    )
    ap.add_argument(
        "--compare-widths", action="store_true", help="native step: 16-env (AVX-512) vs 8-env (AVX2) kernel, alternated"
    )
    args = ap.parse_args()
    if args.compare_resets or args.compare_widths:
        compare = compare_widths if args.compare_widths else compare_resets
        for task in args.tasks:
            for n in args.num_envs:
                line = compare(task, n, args.steps, args.repeats)
                line = {
                    k: round(v, 3 if k.startswith("ratio") else 1) if isinstance(v, float) else v
                    for k, v in line.items()
                }
                print(json.dumps(line), flush=True)
        return
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ant = None
    if any(t in ARTICULATED for t in args.tasks):
        from benchmarks.articulated_throughput import bench_ant

        ant_line = bench_ant(args.steps, args.repeats)
        ant = ant_line["env_steps_per_s"]
        print(json.dumps(ant_line), flush=True)
    for device in devices:
        for task in args.tasks:
            if task in ARTICULATED:
                for engine in args.engines:
                    for n in args.articulated_envs:
                        line = bench_articulated(task, n, torch.device(device), engine, args.steps, args.repeats, ant)
                        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in line.items()}))
                continue
            for n in args.num_envs:
                for line in bench_env(
                    task, n, torch.device(device), args.steps, args.substeps, args.backend, args.repeats, args.actions
                ):
                    print(
                        json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in line.items()}), flush=True
                    )


if __name__ == "__main__":
    main()
