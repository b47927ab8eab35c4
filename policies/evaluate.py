"""``sim2real eval RUN_OR_ONNX``: fly a trained policy across the randomization, beside the PID baseline.

A run directory (or checkpoint) is evaluated from its checkpoint and, when ``policy.onnx`` sits beside it, also
through the exported file: the two columns of the report should agree (the ONNX model outputs physical commands,
mapped back with ``ActionSpec.to_normalized`` because the env takes normalized actions). Every controller
flies the same envs: same seed, so the same parameters, initial states, noise and disturbances.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec, split_history
from sim.tasks import TASKS

log = logging.getLogger("sim2real.eval")


class EvalSettingsError(ValueError):
    """An evaluation setting no run can use (no episodes, an episode of no time, the wrong task)."""


@dataclass
class Controller:
    name: str
    act: Callable[[torch.Tensor], torch.Tensor]  # policy observation (N, D) -> normalized actions (N, A)
    reset: Callable[[torch.Tensor], None] | None = None


@dataclass
class PolicySource:
    """What a trained policy needs from the env, read from a checkpoint or an exported file."""

    task: str
    obs_spec: ObsSpec
    action_spec: ActionSpec
    profile: dict[str, Any]
    controllers: list[Controller]
    robot: str | None = None  # the robot trained (name or profile path); None: the task's default robot


def source_cfg(source: PolicySource, robot: str | None = None) -> Any:
    """The env config of the policy's task for its robot: ``robot`` (``--robot``: that robot's profile and variant),
    else the robot the policy was trained on (its variant, with the profile stored in the policy: exactly what was
    trained, even if the profile file changed since). The observation history is the one in the policy's layout
    (a variant's setting may have changed since the policy was trained)."""
    from sim.robot_variants import RobotVariantError
    from sim.tasks import task_cfg

    if robot is not None:
        cfg = task_cfg(source.task, robot)
    else:
        try:
            cfg = task_cfg(source.task, source.robot)
        except RobotVariantError as exc:
            raise RobotVariantError(
                f"the policy was trained on robot {source.robot!r}, which cannot be loaded now ({exc}); pass "
                "--robot with the path of its profile YAML (its variant beside it)"
            ) from None
        if source.profile:
            cfg.params = type(cfg.params).from_dict(source.profile, **_source_dir(cfg.params))
    if hasattr(cfg, "observation_history"):  # the policy's layout says how many steps it was trained with
        cfg.observation_history = split_history(source.obs_spec)[1]
    return cfg


def _source_dir(params: Any) -> dict[str, str]:
    """A relative robot description resolves against the robot's directory (articulated profiles)."""
    return {"source_dir": params.source_dir} if hasattr(params, "source_dir") else {}


def checkpoint_controller(path: Path) -> tuple[Controller, dict[str, Any]]:
    from policies.actor import TorchActor, load_checkpoint

    ck = load_checkpoint(path)
    actor = TorchActor(ck.weights, ck.action_spec)
    return Controller(f"policy ({ck.path.name})", actor.normalized), ck.infos


def onnx_controller(path: Path) -> tuple[Controller, Any]:
    from policies.onnx_policy import load_policy

    policy = load_policy(path)
    spec = policy.action_spec

    def act(obs: torch.Tensor) -> torch.Tensor:
        command = policy(obs.detach().cpu().numpy())
        return torch.from_numpy(np.asarray(spec.to_normalized(command), dtype=np.float32)).to(obs.device)

    return Controller(f"policy ({path.name})", act), policy


def load_source(path: str | Path, with_onnx: bool = True) -> PolicySource:
    """A run directory, checkpoint (.pt) or exported policy (.onnx)."""
    import json

    path = Path(path)
    if path.suffix == ".onnx":
        ctrl, policy = onnx_controller(path)
        robot = policy.metadata.get("robot") or None
        return PolicySource(policy.task, policy.obs_spec, policy.action_spec, policy.profile, [ctrl], robot)
    ctrl, infos = checkpoint_controller(path)
    source = PolicySource(
        infos["task"],
        ObsSpec.from_json(infos["obs_spec"]),
        ActionSpec.from_json(infos["action_spec"]),
        json.loads(json.dumps(infos["profile"])),
        [ctrl],
        infos.get("robot"),
    )
    onnx_path = (path if path.is_dir() else path.parent) / "policy.onnx"
    if with_onnx and onnx_path.is_file():
        source.controllers.append(onnx_controller(onnx_path)[0])
    return source


def evaluate(
    source: PolicySource,
    episodes: int = 256,
    seconds: float = 10.0,
    seed: int = 0,
    randomization: Any = None,
    pid: bool = True,
    progress: bool = False,
    robot: str | None = None,
    params: Any = None,
) -> tuple[dict[str, dict[str, float]], dict[str, Any], Any]:
    """Metrics per controller (``policies.rollout``), the rollouts, and the env config used (:func:`source_cfg`:
    the policy's robot, or ``robot``; ``params``: fly these robot parameters instead, e.g. a fitted profile)."""
    from policies.baselines.pid import QuadrotorPID
    from policies.rollout import rollout
    from sim.tasks import make_env

    if episodes <= 0 or seconds <= 0:
        raise ValueError(f"episodes and seconds must be positive, got {episodes} and {seconds}")
    if source.task in ARTICULATED_TASKS:
        return evaluate_articulated(source, episodes, seconds, seed, randomization, robot)
    cfg = source_cfg(source, robot)
    if params is not None:
        cfg.params = params
    cfg.action_interface = source.action_spec.interface
    cfg.episode_s = seconds
    if randomization is not None:
        cfg.randomization = randomization
    controllers = list(source.controllers)
    if pid:
        controllers.append(Controller("PID", lambda obs: obs))  # replaced below, once the env exists
    metrics, rollouts = {}, {}
    for ctrl in controllers:
        env = make_env(source.task, episodes, seed=seed, cfg=cfg)
        env.obs_spec.check_same_layout(source.obs_spec)
        if env.action_spec != source.action_spec:
            raise ValueError(
                f"the policy's action spec {source.action_spec} differs from the env's {env.action_spec}: "
                "evaluate it with the profile and interface it was trained for"
            )
        if ctrl.name == "PID":
            baseline = QuadrotorPID(env.obs_spec, env.action_spec, cfg.params, cfg.control_dt, episodes)
            ctrl = Controller("PID", baseline.act, baseline.reset)
        t0 = time.perf_counter()
        r = rollout(env, ctrl.act, cfg.max_episode_length, on_reset=ctrl.reset, progress=progress)
        metrics[ctrl.name] = r.metrics()
        rollouts[ctrl.name] = r
        log.info(
            "%s: success %.1f %%, crash %.1f %%, RMSE %.1f cm (%.1f s)",
            ctrl.name,
            100 * metrics[ctrl.name]["success_rate"],
            100 * metrics[ctrl.name]["crash_rate"],
            100 * metrics[ctrl.name]["position_rmse_m"],
            time.perf_counter() - t0,
        )
    return metrics, rollouts, cfg


#: the tasks evaluated by ``sim.articulated.rollout`` (derived from the registrations: their metrics)
ARTICULATED_TASKS = tuple(name for name, reg in TASKS.items() if reg.metrics in ("velocity_tracking", "reaching"))


def evaluate_articulated(
    source: PolicySource,
    episodes: int,
    seconds: float,
    seed: int,
    randomization: Any = None,
    robot: str | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, Any], Any]:
    """Arm / legged tasks: the policy beside the "hold the default pose" baseline (zero action), same envs.

    Metrics (``sim.articulated.rollout``): arm-reach success rate (2 cm and 0.1 rad reached within the episode,
    one target per episode), final errors, time to reach; legged-walk planar velocity and yaw-rate RMS
    tracking errors and fall rate."""
    from sim.articulated.rollout import rollout as articulated_rollout
    from sim.tasks import make_env

    cfg = source_cfg(source, robot)
    cfg.episode_s = seconds
    if hasattr(cfg, "target"):
        cfg.target.resample_s = seconds  # one target per episode: success means reaching it
    if randomization is not None:
        cfg.randomization = randomization
    dim = source.action_spec.dim
    hold = Controller("default pose (zero action)", lambda obs: torch.zeros(obs.shape[0], dim, device=obs.device))
    metrics, rollouts = {}, {}
    for ctrl in [*source.controllers, hold]:
        env = make_env(source.task, episodes, seed=seed, cfg=cfg)
        env.obs_spec.check_same_layout(source.obs_spec)
        if env.action_spec != source.action_spec:
            raise ValueError(
                f"the policy's action spec {source.action_spec} differs from the env's {env.action_spec}: "
                "evaluate it with the robot profile it was trained for"
            )
        t0 = time.perf_counter()
        r = articulated_rollout(env, ctrl.act, cfg.max_episode_length)
        metrics[ctrl.name], rollouts[ctrl.name] = r.metrics(), r
        if hasattr(cfg, "command"):  # legged: does it stand still when told to (the runtime ends plans at rest)?
            rest = rest_at_zero_command(cfg, ctrl.act, seed=seed, task=source.task)
            metrics[ctrl.name]["rest_at_zero_command_rate"] = rest
        log.info("%s: %s (%.1f s)", ctrl.name, metrics[ctrl.name], time.perf_counter() - t0)
    rate = metrics[source.controllers[0].name].get("rest_at_zero_command_rate", 1.0)
    if rate < REST_RATE_WARNING:
        log.warning(
            "the policy came to rest at a zero command in only %.0f %% of %d robots: the deploy runtime's plans end "
            "at rest, so on this robot they would end in FALLBACK 'not at rest' (docs/articulated.md, 'Go2')",
            100 * rate,
            REST_ENVS,
        )
    return metrics, rollouts, cfg


REST_ENVS, REST_SECONDS, REST_SETTLE_S = 32, 6.0, 2.0
REST_RATE_WARNING = 0.5  # below this fraction of robots at rest, eval warns


def rest_at_zero_command(
    cfg: Any, act: Callable[[torch.Tensor], torch.Tensor], envs: int = REST_ENVS, seed: int = 0, task: str = "legged-walk"
) -> float:
    """Legged: the fraction of ``envs`` robots (``cfg``'s randomization, random starts) that are at rest by the
    deploy runtime's own test (every joint < ``REST_JOINT_SPEED_RAD_S``, base < ``REST_GYRO_RAD_S``) at some
    control step after ``REST_SETTLE_S`` of a ``REST_SECONDS`` episode commanded to stand (zero velocity and yaw
    rate); a robot that falls counts as not at rest. A policy that steps in place scores ~0; the
    hold-the-default-pose baseline ~1."""
    import copy

    from deploy.runtime.articulated import REST_GYRO_RAD_S, REST_JOINT_SPEED_RAD_S
    from sim.tasks import make_env

    cfg = copy.deepcopy(cfg)
    cfg.episode_s = REST_SECONDS
    c = cfg.command
    c.lin_vel_x_m_s, c.lin_vel_y_m_s, c.yaw_rate_rad_s, c.resample_s = (0.0, 0.0), (0.0, 0.0), (0.0, 0.0), REST_SECONDS
    env = make_env(task, envs, seed=seed, cfg=cfg)
    obs, still = env.get_observations(), torch.zeros(envs, dtype=torch.bool)
    fell = torch.zeros(envs, dtype=torch.bool)  # ended by a failure (then reset: a fresh start is not a rest)
    settle = round(REST_SETTLE_S * cfg.control_hz)
    with torch.inference_mode():
        for k in range(cfg.max_episode_length - 1):  # the last step would end the episode by time
            obs, _, dones, _ = env.step(act(obs["policy"]).clamp(-1.0, 1.0))
            fell |= dones.bool()
            if k >= settle:
                joints = env.joint_vel.abs().amax(-1) < REST_JOINT_SPEED_RAD_S
                still |= joints & (env.base_ang_vel.norm(dim=-1) < REST_GYRO_RAD_S)
    return (still & ~fell).float().mean().item()


def plot_articulated(r: Any, path: Path, title: str, envs: int = 4) -> Path:
    """Commanded vs measured (legged: vx, vy, yaw rate; arm: target vs end-effector x, y, z) for a few envs,
    and the error distribution over time (median and 10-90 % band)."""
    from policies.report import plt

    t = torch.arange(r.command.shape[0]) * r.dt
    labels = ("vx [m/s]", "vy [m/s]", "yaw rate [rad/s]") if r.task == "legged-walk" else ("x [m]", "y [m]", "z [m]")
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    for axis, ax in enumerate(axes[:3]):
        for k in range(min(envs, r.command.shape[1])):
            line = ax.plot(t, r.measured[:, k, axis], lw=1.2)[0]
            ax.plot(t, r.command[:, k, axis], lw=0.8, ls="--", color=line.get_color())
        ax.set_ylabel(labels[axis])
        ax.grid(alpha=0.3)
    err = r.error.masked_fill(~r.alive, float("nan"))
    q = torch.nanquantile(err, torch.tensor([0.1, 0.5, 0.9]), dim=1)
    axes[3].fill_between(t, q[0], q[2], alpha=0.3)
    axes[3].plot(t, q[1], lw=1.5)
    axes[3].set_ylabel("velocity error [m/s]" if r.task == "legged-walk" else "position error [m]")
    axes[3].set_xlabel("time [s]")
    axes[3].grid(alpha=0.3)
    axes[0].set_title(f"{title} (dashed: command / target)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_eval_report(out: Path, source_path: Path, task: str, metrics, rollouts, cfg, seed: int) -> Path:
    from policies.report import plot_errors, plot_trajectories, write_report
    from policies.runinfo import write_run_info

    out.mkdir(parents=True, exist_ok=True)
    plots = []
    for k, (name, r) in enumerate(rollouts.items()):
        title = f"{task} / {name}"
        if task in ARTICULATED_TASKS:
            plots.append(plot_articulated(r, out / f"tracking_{k}.png", title))
            continue
        plots.append(plot_trajectories(r, out / f"trajectories_{k}.png", title))
        plots.append(plot_errors(r, out / f"errors_{k}.png", title))
    details = {
        "policy": str(source_path),
        "task": task,
        "action interface": cfg.action_interface,
        "episodes": str(next(iter(metrics.values()))["envs"]),
        "episode": f"{cfg.episode_s:g} s at {cfg.control_hz:g} Hz control",
        "randomization": f"{cfg.randomization.name} (digest {cfg.randomization.digest()})",
        "seed": str(seed),
        "deterministic": "policy mean action; same envs (seed) for every controller",
    }
    write_run_info(out, cfg, {"evaluated": str(source_path), "metrics": metrics})
    return write_report(out, f"sim2real eval: {task}", metrics, details, plots)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", type=Path, help="run directory, checkpoint (.pt) or exported policy (.onnx)")
    p.add_argument("--task", default=None, help="task (default: the one the policy was trained on)")
    p.add_argument(
        "--robot",
        default=None,
        help="evaluate on this robot (a name or a profile YAML path, with its variant of the task); default: the "
        "robot the policy was trained on, with the profile stored in the policy",
    )
    p.add_argument("--episodes", type=int, default=256, help="episodes flown in parallel (default 256)")
    p.add_argument("--seconds", type=float, default=10.0, help="episode length, s (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--randomization", type=Path, default=None, help="RandomizationSpec YAML (default: the task's)")
    p.add_argument("--no-pid", action="store_true", help="skip the PID baseline column")
    p.add_argument("--out", type=Path, default=None, help="report directory (default: POLICY_DIR/eval)")


def run(args: argparse.Namespace) -> int:
    from sim.randomization import RandomizationSpec

    if args.episodes <= 0:
        raise EvalSettingsError(f"--episodes: expected a positive whole number of episodes, got {args.episodes}")
    if not (args.seconds > 0 and np.isfinite(args.seconds)):
        raise EvalSettingsError(f"--seconds: expected an episode length > 0 s, got {args.seconds:g}")
    source = load_source(args.policy)
    if args.task is not None and args.task != source.task:
        raise EvalSettingsError(
            f"--task {args.task}: the policy was trained on {source.task!r}; pass --task {source.task} or leave it out"
        )
    spec = RandomizationSpec.from_yaml(args.randomization) if args.randomization else None
    metrics, rollouts, cfg = evaluate(
        source, args.episodes, args.seconds, args.seed, spec, pid=not args.no_pid, progress=True, robot=args.robot
    )
    base = args.policy if args.policy.is_dir() else args.policy.parent
    report = write_eval_report(args.out or base / "eval", args.policy, source.task, metrics, rollouts, cfg, args.seed)
    log.info("wrote %s", report)
    print(report)
    return 0
