"""``sim2real demo``: the main job on the default CPU: train -> export -> evaluate -> fly in software-in-the-loop.

1. Trains the quadrotor hover policy (rsl_rl PPO, asymmetric actor-critic) into ``OUT/train`` until the first
   confirmed policy (:mod:`policies.stopping`: 95 % success on 256 screening episodes, then on 1024 others with a
   crash rate no higher than the PID baseline's on the ideal vehicle there), at most ``--train-seconds`` of training
   and evaluations, and exports it (``policy.onnx`` + ``policy.h``). ``--full-time`` trains the whole
   ``--train-seconds``.
2. Evaluates it across the default randomization (the vehicle's imperfections included) beside the classical PID
   baseline on the same envs and on the ideal vehicle (the PID cannot hold the imperfect one at 100 Hz), records one
   vehicle's baseline flight as an MCAP log (ROS 2 profile, CDR) exactly as the deploy runtime records hardware
   runs, and writes plots.
3. Flies the exported policy through the deploy runtime against the simulated robot in a separate process over
   real DDS (software-in-the-loop: take-off, hover, landing behind the safety layer) and logs that flight.
4. Writes ``report.md`` with all of it.

``--train-seconds 0`` skips training and flies ``--sil-policy`` (default: the reference hover policy in tests/data).
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path

import torch

log = logging.getLogger("sim2real.demo")
REFERENCE_POLICY = Path(__file__).resolve().parents[1] / "tests" / "data" / "hover_policy.onnx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default: runs/demo)")
    p.add_argument("--task", default="quadrotor-hover", choices=["quadrotor-hover", "quadrotor-track"])
    p.add_argument("--interface", default="rpm", choices=["rpm", "ctbr"], help="action interface")
    p.add_argument(
        "--train-seconds",
        type=float,
        default=120.0,
        help="cap on the training wall clock, s (default 120; training stops earlier at a confirmed policy, see "
        "BENCHMARKS.md, time to hover); 0 skips training and flies --sil-policy",
    )
    p.add_argument(
        "--full-time",
        action="store_true",
        help="train for the whole --train-seconds instead of stopping at the first confirmed policy",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: with 2 on a 2-core host that other work shares, an iteration took "
        "10x longer; docs/training.md, CPU note)",
    )
    p.add_argument("--num-envs", type=int, default=256, help="envs flown in parallel by the evaluation (default 256)")
    p.add_argument("--seconds", type=float, default=10.0, help="evaluation episode length, s (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sil-policy",
        type=Path,
        default=None,
        help="policy.onnx flown in software-in-the-loop (default: the policy trained here; with --train-seconds 0 "
        "the reference hover policy in tests/data); 'none' skips the flight",
    )


def _train_and_export(args: argparse.Namespace, out: Path) -> tuple[Path, str]:
    """Train (until a confirmed policy or the cap), export; returns the ONNX path and a line for the report."""
    from policies.export import export
    from policies.stopping import ConfirmedStop, StopCfg
    from policies.train import train
    from policies.train_cfg import train_cfg

    cfg = train_cfg(args.task)
    cfg.select_interface(args.interface)
    cfg.seed, cfg.max_seconds, cfg.max_iterations = args.seed, args.train_seconds, 100_000
    cfg.save_interval = 100_000  # the last iteration only
    run_dir = out / "train"
    # screening and confirmation episodes are other seeds than the evaluation below (no selection on its envs)
    # the cap counts the screenings and confirmations too: it bounds what the user waits for
    # a failed confirmation is followed by as much training as it took, a screening by three times as much, before
    # the next screening: most of the cap goes to training
    stop_cfg = StopCfg(
        seed=10_000 + args.seed, budget_s=args.train_seconds, every_when_far=20, confirm_backoff=1.0, screen_backoff=3.0
    )
    stop = None if args.full_time else ConfirmedStop(cfg.task, cfg.env, stop_cfg)
    log.info(
        "training %s (%s actions) %s -> %s",
        args.task,
        args.interface,
        f"for {args.train_seconds:g} s"
        if stop is None
        else f"until a confirmed policy, at most {args.train_seconds:g} s",
        run_dir,
    )
    result = train(cfg, run_dir, progress=True, on_iteration=stop)
    last = result.history[-1]
    log.info(
        "trained %d iterations in %.1f s (+%.1f s of evaluations): episode %.2f s, crash %.1f %%",
        result.iterations,
        result.wall_s,
        result.paused_s,
        last.episode_length_s,
        100 * last.crash_rate,
    )
    how = f"{result.iterations} iterations, {result.wall_s:.1f} s of training"
    if stop is not None:
        how += f" + {result.paused_s:.1f} s of evaluations"
        if stop.confirmed_at is not None:
            c, pid = stop.confirmed_at.confirm, stop.baseline_metrics()
            how += (
                f"; stopped at the first confirmed policy: {100 * c['success_rate']:.1f} % success, "
                f"{100 * c['crash_rate']:.2f} % crashes on {stop.cfg.confirm_episodes} confirmation episodes "
                f"(PID {100 * pid['crash_rate']:.2f} %)"
            )
        else:
            how += f"; no policy was confirmed: stopped at the {args.train_seconds:g} s cap (training + evaluations)"
    log.info("training: %s", how)
    return export(run_dir)["onnx"], how


def run(args: argparse.Namespace) -> int:
    if args.num_envs <= 0 or args.seconds <= 0 or args.train_seconds < 0 or args.threads <= 0:
        raise SystemExit(
            "--num-envs, --seconds and --threads must be positive and --train-seconds >= 0, got "
            f"{args.num_envs}, {args.seconds}, {args.threads} and {args.train_seconds}"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)  # the demo may run inside a larger process (the tests)


def _run(args: argparse.Namespace) -> int:
    from policies.baselines.pid import QuadrotorPID
    from policies.report import plot_errors, plot_trajectories, write_report
    from policies.runinfo import write_run_info
    from sim.quadrotor.config import ideal_vehicle
    from sim.tasks import make_env, task_entry

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    trained, training = _train_and_export(args, out) if args.train_seconds > 0 else (None, "")
    sil_policy = args.sil_policy if args.sil_policy is not None else (trained or REFERENCE_POLICY)

    cfg = task_entry(args.task).make_cfg()
    cfg.action_interface = args.interface
    cfg.episode_s = args.seconds
    env = make_env(args.task, args.num_envs, seed=args.seed, cfg=cfg)
    pid = QuadrotorPID(env.obs_spec, env.action_spec, cfg.params, cfg.control_dt, args.num_envs)
    write_run_info(
        out, cfg, {"task": args.task, "controller": "pid", "randomization_digest": cfg.randomization.digest()}
    )
    cfg.randomization.to_yaml(out / "randomization.yaml")

    steps = cfg.max_episode_length
    metrics: dict[str, dict[str, float]] = {}
    plots = []
    if trained is not None:
        metrics.update(_evaluate_trained(trained, args, out, plots))
    # the PID on the same envs, and on the ideal vehicle (same seed, without the imperfections it cannot hold at
    # 100 Hz, docs/quadrotor_model.md): the yardstick the stopping rule's crash rate is held to
    t0 = time.perf_counter()
    result = _fly_pid(env, pid, steps, "PID", metrics)
    wall = time.perf_counter() - t0
    ideal_cfg = copy.deepcopy(cfg)
    ideal_cfg.randomization = ideal_vehicle(cfg.randomization)
    ideal_env = make_env(args.task, args.num_envs, seed=args.seed, cfg=ideal_cfg)
    _fly_pid(ideal_env, pid, steps, "PID (ideal vehicle)", metrics)

    log_path = out / "flight.mcap"
    _record_flight(log_path, ideal_env, pid, min(steps, 1000))
    title = f"{args.task} / PID ({args.interface})"
    plots += [
        plot_trajectories(result, out / "trajectories.png", title),
        plot_errors(result, out / "errors.png", title),
    ]
    details = {
        "task": args.task,
        "action interface": args.interface,
        "trained policy": f"`{trained.relative_to(out)}` ({training})" if trained else "none (--train-seconds 0)",
        "envs": str(args.num_envs),
        "episode": f"{args.seconds:g} s at {cfg.control_hz:g} Hz control, {cfg.control_hz * cfg.physics_substeps:g} Hz physics",
        "randomization": f"{cfg.randomization.name} (digest {cfg.randomization.digest()}, `randomization.yaml`)",
        "flight log": f"`{log_path.name}` (MCAP, ROS 2 profile: pose, twist, observation, action, motor command of the "
        "PID on the ideal vehicle, env 0)",
        "baseline rollout wall time": f"{wall:.2f} s",
    }
    if str(sil_policy) != "none":
        details["software-in-the-loop flight"] = _fly_sil(Path(sil_policy), out / "sil_flight.mcap")
    details["demo wall time"] = f"{time.perf_counter() - t_start:.1f} s"
    report = write_report(out, "sim2real demo: train, export, evaluate, fly", metrics, details, plots)
    log.info("wrote %s", report)
    print(report)
    return 0


def _fly_pid(env, pid, steps: int, name: str, metrics: dict[str, dict[str, float]]):
    """Fly the PID baseline on every env of ``env`` into ``metrics[name]``; returns the rollout."""
    from policies.rollout import rollout

    log.info("flying the %s: %d envs x %d steps (%s)", name, env.num_envs, steps, env.cfg.randomization.name)
    t0 = time.perf_counter()
    result = rollout(env, pid.act, steps, on_reset=pid.reset, progress=True)
    m = metrics[name] = result.metrics()
    log.info(
        "%s: success %.1f %%, crash %.1f %%, RMSE %.1f cm (%.2f s wall)",
        name,
        100 * m["success_rate"],
        100 * m["crash_rate"],
        100 * m["position_rmse_m"],
        time.perf_counter() - t0,
    )
    return result


def _evaluate_trained(policy: Path, args: argparse.Namespace, out: Path, plots: list) -> dict[str, dict[str, float]]:
    """The exported policy across the randomization (same envs as the baseline: same seed)."""
    from policies.evaluate import evaluate, load_source
    from policies.report import plot_errors

    source = load_source(policy)
    metrics, rollouts, _ = evaluate(source, args.num_envs, args.seconds, seed=args.seed, pid=False, progress=True)
    ((name, m),) = metrics.items()
    log.info(
        "policy: success %.1f %%, crash %.1f %%, RMSE %.1f cm",
        100 * m["success_rate"],
        100 * m["crash_rate"],
        100 * m["position_rmse_m"],
    )
    plots.append(plot_errors(rollouts[name], out / "policy_errors.png", f"{args.task} / trained policy (ONNX)"))
    return {"policy (ONNX)": m}


def _clear_previous_sil_log(log_path: Path) -> None:
    """Remove the SIL flight log (and its Foxglove layout) that an earlier demo left in its output directory: the
    deploy runtime refuses to overwrite a log, and the demo rewrites every other output of that directory too."""
    from deploy.recording.foxglove_layout import layout_path

    for path in (log_path, layout_path(log_path)):
        if path.is_file():
            log.info("replacing %s, an earlier demo's", path)
            path.unlink()


def _fly_sil(policy: Path, log_path: Path) -> str:
    """Fly ``policy`` through the deploy runtime against the simulated robot (a separate process, real DDS on
    loopback, a random domain); returns a one-line summary for the report."""
    import json
    import os
    import random
    import subprocess
    import sys

    from deploy.transport import LOOPBACK_CONFIG

    _clear_previous_sil_log(log_path)
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(1, 230)), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", "launch/sim_quadrotor.yaml", "--policy", str(policy)]
    cmd += ["--sil", "--log", str(log_path), "--hover-s", "5"]
    log.info("flying %s in software-in-the-loop (take-off, 5 s hover, landing)", policy.name)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=180)
    try:
        summary = json.loads(done.stdout[done.stdout.index("{") :])
    except ValueError:
        log.warning("the SIL flight did not complete (exit %d): %s", done.returncode, done.stderr[-500:])
        return f"did not complete (exit {done.returncode}); see the log above"
    rms = summary.get("tracking", {}).get("hover_rms_m")
    text = f"`{log_path.name}`: {' / '.join(t.split(' [')[0].split(' ', 1)[1] for t in summary['transitions'])}"
    text += f"; hover RMS {100 * rms:.1f} cm" if rms is not None else ""
    text += f"; {summary['loop']['deadline_misses']} deadline misses in {summary['loop']['cycles']} cycles"
    if done.returncode != 0:
        log.warning("the SIL flight ended in a safety fallback: %s", summary["transitions"])
    return text


@torch.no_grad()
def _record_flight(path: Path, env, pid, steps: int) -> None:
    """Fly env 0 again with the baseline and record it the way the deploy runtime records a robot."""
    from deploy.msgs import MotorCommand
    from deploy.recording import FlightRecorder
    from deploy.state_wire import state_messages

    meta = {
        "sim2real": {
            "source": "simulation",
            "task": env.cfg.task,
            "observation_spec": env.obs_spec.to_json(),
            "action_spec": env.action_spec.to_json(),
        }
    }
    obs, _ = env.reset()
    pid.reset()
    with FlightRecorder(path, overwrite=True, metadata=meta) as rec:
        for k in range(steps):
            stamp = round(k * env.cfg.control_dt * 1e9)
            p, q = env.state_rows("position")[0].tolist(), env.state_rows("quaternion")[0].tolist()
            v, w = env.state_rows("velocity")[0].tolist(), env.state_rows("angular_velocity")[0].tolist()
            pose, twist, _ = state_messages(stamp, p, q, v, w)  # by ROS convention: the twist in base_link
            rec.write_state(pose, stamp)
            rec.write_state(twist, stamp)
            action = pid.act(obs["policy"])
            rec.write_observation(obs["policy"][0].tolist(), stamp)
            rec.write_action(action[0].tolist(), stamp)
            rec.write_command(MotorCommand(pose.header, env.action_spec.to_physical(action[0]).tolist()), stamp)
            obs, *_ = env.step(action)
