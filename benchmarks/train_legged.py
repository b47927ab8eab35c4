"""Time to walk (and to reach): training wall clock until the articulated tasks meet their targets.

- ``legged-walk``: mean planar velocity error < 0.1 m/s while commanded 0.5 m/s forward (no sideways, no turning),
  over ``--episodes`` episodes of ``--episode-s`` under the task's default randomization.
- ``arm-reach``: >= 95 % success (2 cm and 0.1 rad reached within the episode, one target per episode).

Every ``--eval-every`` iterations the deterministic actor is evaluated; the evaluation pauses the training clock
(``seconds`` is training only, ``eval_s`` is reported apart). Targets (issue): legged-walk < 30 min on this CPU,
< 5 min on one CUDA GPU; arm-reach < 5 min on this CPU.

    python benchmarks/train_legged.py --task legged-walk [--device cuda:0] [--max-seconds 1800] [--engine mujoco_warp]
    python benchmarks/train_legged.py --task legged-walk --robot go2    # launch/tasks/legged-walk/go2.yaml
    python benchmarks/train_legged.py --task arm-reach --max-seconds 300

The trained policy flown in software in the loop (``sim2real deploy --sil``, the runtime and the simulated robot
as separate processes over DDS), ``--sil-runs`` times with the simulated robot's seeds 0, 1, ...:

    python benchmarks/train_legged.py --sil launch/sim_go2.yaml --policy tests/data/go2_walk_policy.onnx --sil-runs 10
    python benchmarks/train_legged.py --sil launch/sim_go2.yaml --sil-robot unitree --policy ... --sil-runs 10

(``--sil-robot unitree``: the simulated Go2 behind Unitree's rt/lowcmd / rt/lowstate and the Unitree bridge, the
chain a real Go2 runs; ``pybullet``: another simulator) prints one JSON line: {"profile", "sil_robot", "policy",
"runs", "walk_velocity_error_mean_m_s", "velocity_estimate_error_mean_m_s" (a policy with a state estimator: its
estimate against the simulator's twist), "falls", "other_fallbacks", "no_walk_measured", "per_run": [...]}, a fall
being a run whose safety layer saw the base tilt past its limit; other fallbacks and runs without a walk measured (a
fallback before the walk, another process on the random ROS 2 domain) are counted apart.

Training prints one JSON line: {"task", "robot", "device", "engine", "reached": bool, "seconds", "iterations",
"metric", "value", "target", "eval_s", "history": [...]}.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tensordict import TensorDict

from policies.overrides import apply_overrides
from policies.train import IterationStats, train
from policies.train_cfg import TrainCfg, train_cfg
from sim.articulated.rollout import rollout
from sim.tasks import make_env

log = logging.getLogger("train_legged")
ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = ROOT / "launch" / "tasks"
# task -> (metric, target, lower is better)
TARGETS = {"legged-walk": ("velocity_error_mean_m_s", 0.1, True), "arm-reach": ("success_rate", 0.95, False)}


def eval_cfg(cfg: TrainCfg, seconds: float):
    """The task's env config for evaluation: legged -> a fixed 0.5 m/s forward command; arm -> one target."""
    env_cfg = copy.deepcopy(cfg.env)
    env_cfg.episode_s = seconds
    if cfg.task == "legged-walk":
        c = env_cfg.command
        c.lin_vel_x_m_s, c.lin_vel_y_m_s, c.yaw_rate_rad_s = (0.5, 0.5), (0.0, 0.0), (0.0, 0.0)
        c.standing_fraction, c.resample_s = 0.0, seconds
    if hasattr(env_cfg, "target"):
        env_cfg.target.resample_s = seconds
    return env_cfg


def robot_train_cfg(task: str, robot: str | None) -> TrainCfg:
    """The training config of ``task`` on ``robot`` (None: the task's default robot): ``train_cfg(task, robot)``
    where it takes a robot, else the variant file ``launch/tasks/<task>/<robot>.yaml`` applied here (``robot:``
    a profile name, ``env:`` / ``train:`` dotted overrides of the env and training configs)."""
    if robot is None:
        return train_cfg(task)
    if "robot" in inspect.signature(train_cfg).parameters:
        return train_cfg(task, robot)
    import yaml

    from sim.articulated.profile import load_profile

    path = TASKS_DIR / task / f"{robot}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SystemExit(f"--robot {robot}: no variant file {path}; variants of {task}: {known}")
    variant = yaml.safe_load(path.read_text()) or {}
    cfg = train_cfg(task)
    cfg.env.params = load_profile(variant.get("robot", robot))
    sets = [f"env.{k}={json.dumps(v)}" for k, v in (variant.get("env") or {}).items()]
    sets += [f"{k}={json.dumps(v)}" for k, v in (variant.get("train") or {}).items()]
    apply_overrides(cfg, sets)
    return cfg


class PeriodicEval:
    def __init__(self, cfg: TrainCfg, episodes: int, seconds: float, every: int, engine: str | None):
        self.cfg, self.env_cfg, self.episodes, self.every, self.engine = (
            cfg,
            eval_cfg(cfg, seconds),
            episodes,
            every,
            engine,
        )
        self.metric, self.target, self.lower = TARGETS[cfg.task]
        self.history: list[dict] = []
        self.reached: IterationStats | None = None

    def __call__(self, stats: IterationStats, runner) -> bool:
        if (stats.iteration + 1) % self.every:
            return False
        policy = runner.get_inference_policy()
        env = make_env(
            self.cfg.task, self.episodes, device=self.cfg.device, seed=12345, cfg=self.env_cfg, engine=self.engine
        )
        n = env.num_envs

        def act(obs: torch.Tensor) -> torch.Tensor:
            return policy(TensorDict({"policy": obs}, batch_size=[n])).clamp(-1.0, 1.0)

        with torch.inference_mode():
            m = rollout(env, act, self.env_cfg.max_episode_length).metrics()
        value = m[self.metric]
        shown = (
            "velocity_error_rms_m_s",
            "crash_rate",
            *(f"velocity_error_{k}_part_m_s" for k in ("start", "falls", "walk")),
        )
        extra = {k: round(m[k], 4) for k in shown if k in m and k != self.metric}
        self.history.append(
            {"iteration": stats.iteration, "train_s": round(stats.wall_s, 1), self.metric: value, **extra}
        )
        log.info("it %d at %.0f s: %s = %.3f %s", stats.iteration, stats.wall_s, self.metric, value, extra or "")
        ok = value < self.target if self.lower else value >= self.target
        if ok:
            self.reached = stats
        return ok


def deploy_summary(stdout: str) -> dict:
    """The runtime's JSON summary in a deploy's stdout, which the simulated robot's own JSON line may share (the
    simulated Go2 prints its counters there): the object that has ``transitions``, else {}."""
    decoder, found, i = json.JSONDecoder(), {}, stdout.find("{")
    while i >= 0:
        try:
            obj, end = decoder.raw_decode(stdout, i)
        except json.JSONDecodeError:
            end = i + 1
        else:
            found = obj if isinstance(obj, dict) and "transitions" in obj else found
        i = stdout.find("{", end)
    return found


def sil_runs(profile: Path, policy: Path, seeds: list[int], sil_robot: str | None = None) -> dict:
    """Fly ``policy`` once per simulated robot seed with ``sim2real deploy --profile PROFILE --sil`` (each run on a
    random ROS 2 domain, loopback only): the walk's velocity error, falls (the safety layer saw the base tilt past
    its limit), other fallbacks (e.g. a stale state on a busy machine) and runs that never armed."""
    import os
    import random
    import subprocess
    import tempfile

    import yaml

    from deploy.transport import LOOPBACK_CONFIG

    data = yaml.safe_load(profile.read_text())
    if isinstance(data.get("robot"), str):
        data["robot"] = str((profile.parent / data["robot"]).resolve())
    per_run = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            data["sil"] = {**(data.get("sil") or {}), "seed": seed}
            path = Path(tmp) / f"{profile.stem}_{seed}.yaml"
            path.write_text(yaml.safe_dump(data))
            env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(1, 230)), CYCLONEDDS_URI=LOOPBACK_CONFIG)
            cmd = [sys.executable, "-m", "sim2real", "deploy", "--profile", str(path), "--policy", str(policy)]
            cmd += ["--sil", "--log", str(Path(tmp) / f"run_{seed}.mcap")]
            cmd += ["--sil-robot", sil_robot] if sil_robot else []
            done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            summary = deploy_summary(done.stdout)
            transitions = summary.get("transitions", [])
            error = (summary.get("tracking") or {}).get("walk_velocity_error_m_s")
            estimate_error = (summary.get("tracking") or {}).get("velocity_estimate_error_m_s")  # the policy's own
            fell = any("tilt" in t for t in transitions)
            faults = [t for t in transitions if ("-> FALLBACK" in t or "-> ESTOP" in t) and "tilt" not in t]
            log.info("SIL run %d: rc %d, walk velocity error %s, transitions %s", seed, done.returncode, error,
                     transitions)  # fmt: skip
            if done.returncode != 0 and not summary:
                log.warning("SIL run %d failed: %s", seed, done.stderr[-2000:])
            per_run.append(
                {
                    "seed": seed,
                    "rc": done.returncode,
                    "walk_velocity_error_m_s": error,
                    "velocity_estimate_error_m_s": estimate_error,
                    "fell": fell,
                    "faults": faults,
                }
            )
    errors = [r["walk_velocity_error_m_s"] for r in per_run if r["walk_velocity_error_m_s"] is not None]
    estimates = [r["velocity_estimate_error_m_s"] for r in per_run if r["velocity_estimate_error_m_s"] is not None]
    return {
        "profile": str(profile),
        "sil_robot": sil_robot or "sim",
        "policy": str(policy),
        "runs": len(seeds),
        "walk_velocity_error_mean_m_s": round(sum(errors) / len(errors), 4) if errors else None,
        "velocity_estimate_error_mean_m_s": round(sum(estimates) / len(estimates), 4) if estimates else None,
        "falls": sum(r["fell"] for r in per_run),
        "other_fallbacks": sum(bool(r["faults"]) for r in per_run),
        "no_walk_measured": sum(r["walk_velocity_error_m_s"] is None for r in per_run),
        "per_run": per_run,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TARGETS), default="legged-walk")
    p.add_argument("--robot", default=None, help="a variant of the task (launch/tasks/<task>/<robot>.yaml)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--engine", choices=["mujoco", "mujoco_warp"], default=None, help="default: the task's")
    p.add_argument("--num-envs", type=int, default=None, help="default: the task's training config")
    p.add_argument("--max-seconds", type=float, default=1800.0, help="training budget, s")
    p.add_argument("--eval-every", type=int, default=25, help="iterations between evaluations")
    p.add_argument("--episodes", type=int, default=64)
    p.add_argument("--episode-s", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--run-dir", type=Path, default=None, help="write checkpoints here (for sim2real export)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--sil", type=Path, default=None, metavar="PROFILE", help="fly --policy in SIL, no training")
    p.add_argument("--policy", type=Path, default=None, help="exported policy (.onnx) for --sil")
    p.add_argument("--sil-robot", default=None, help="--sil: a foreign SIL robot (legged: pybullet, unitree)")
    p.add_argument("--sil-runs", type=int, default=10, help="simulated robot seeds 0 .. N-1")
    p.add_argument("--sil-seeds", type=int, nargs="+", default=None, help="these seeds instead of --sil-runs")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.sil is not None:
        if args.policy is None or not args.policy.is_file() or not args.sil.is_file():
            p.error(f"--sil PROFILE needs an existing profile and --policy FILE.onnx; got {args.sil}, {args.policy}")
        seeds = args.sil_seeds if args.sil_seeds else list(range(args.sil_runs))
        print(json.dumps(sil_runs(args.sil, args.policy, seeds, args.sil_robot)), flush=True)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = robot_train_cfg(args.task, args.robot)
    cfg.device, cfg.seed, cfg.max_seconds, cfg.max_iterations = args.device, args.seed, args.max_seconds, 1_000_000
    if args.num_envs:
        cfg.num_envs = args.num_envs
    if args.engine:
        cfg.env.engine = args.engine
    apply_overrides(cfg, args.set)
    cb = PeriodicEval(cfg, args.episodes, args.episode_s, args.eval_every, args.engine)
    t0 = time.perf_counter()
    result = train(cfg, args.run_dir, progress=args.verbose, on_iteration=cb)
    out = {
        "task": args.task,
        "robot": cfg.env.params.name,
        "device": args.device,
        "engine": args.engine or getattr(cfg.env, "engine", None),
        "num_envs": cfg.num_envs,
        "reached": cb.reached is not None,
        "seconds": round(cb.reached.wall_s, 1) if cb.reached else None,
        "iterations": result.iterations,
        "metric": cb.metric,
        "value": cb.history[-1][cb.metric] if cb.history else None,
        "target": cb.target,
        "train_s": round(result.wall_s, 1),
        "eval_s": round(result.paused_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "threads": torch.get_num_threads(),
        "history": cb.history,
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
