"""``sim2real replay LOG``: open-loop policy replay and re-simulation of a logged run, with a report.

    sim2real replay runs/deploy/20260101-120000.mcap --policy policy.onnx [--map topics.yaml] [--out DIR] [--json]

Reading and policy replay are torch-free (they run on the robot computer); re-simulation needs the simulator
(``calibration.resim``, torch) and is skipped with ``--no-resim``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("sim2real.replay")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "log", type=Path, help="sim2real .mcap, rosbag2 directory, .db3/.mcap storage file, PX4 .ulg or ArduPilot .bin"
    )
    p.add_argument("--policy", type=Path, default=None, help="policy.onnx to replay (default: the one the log names)")
    p.add_argument("--map", type=Path, default=None, help="topic map YAML for logs from other stacks (docs/replay.md)")
    p.add_argument("--typestore", choices=("humble", "jazzy"), default=None, help="overrides the map's typestore")
    p.add_argument("--profile", type=Path, default=None, help="robot profile YAML to re-simulate with")
    p.add_argument("--latency", type=int, default=0, help="actuation latency to re-simulate with, control steps")
    p.add_argument("--no-resim", action="store_true", help="skip the re-simulation (no simulator needed)")
    p.add_argument("--no-policy", action="store_true", help="skip the open-loop policy replay")
    p.add_argument("--out", type=Path, default=None, help="report directory (default: <log>_replay)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    from deploy.replay.throttle import add_throttle_arguments

    add_throttle_arguments(p)  # PX4 .ulg / ArduPilot .bin logs


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deploy.replay.errors import ReplayError
    from deploy.replay.flight import load_flight
    from deploy.replay.throttle import throttle_from_args
    from deploy.replay.topic_map import TopicMap

    try:
        if args.latency < 0:
            raise ReplayError(f"--latency: expected control steps >= 0, got {args.latency}")
        tmap = TopicMap.from_yaml(args.map) if args.map else TopicMap()
        if args.typestore:
            tmap = replace(tmap, typestore=args.typestore)
        with _progress() as progress:
            task = progress.add_task("reading log", total=None)
            flight = load_flight(
                args.log,
                tmap,
                progress=lambda n: progress.advance(task, n),
                throttle=throttle_from_args(args, args.profile),
            )
        summary = _summary(flight)
        policy = None if args.no_policy else _policy(args, flight)
        replay = None
        if policy is not None and _has_policy_io(flight):
            from deploy.replay.policy_replay import replay_policy

            replay = replay_policy(flight, policy)
            summary["policy_replay"] = replay.summary()
            log.info("policy replay: %s: %s", replay.verdict, replay.explanation)
        if not args.no_resim:
            summary["resimulation"] = _resim(args, flight, policy)
    except (ReplayError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    out = args.out or args.log.with_name(args.log.stem + "_replay")
    out.mkdir(parents=True, exist_ok=True)
    summary["report"] = str(_report(out, flight, replay, policy, summary))
    (out / "replay.json").write_text(json.dumps(summary, indent=2, default=float))
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
    log.info("report: %s", summary["report"])
    return 0


def _progress():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True))  # stdout is for --json


def _summary(flight: Any) -> dict[str, Any]:
    from deploy.replay.report import loop_periods

    periods = loop_periods(flight)
    timing = None
    if len(periods):
        ms = periods * 1e3
        timing = {
            "cycles": len(ms),
            "median_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()),
        }
    return {
        "log": str(flight.path),
        "duration_s": flight.duration_s,
        "messages": flight.message_count,
        "topics": flight.topics,
        "problems": flight.problems,
        "transitions": [f"{t.t:.3f} s {t.from_state} -> {t.to_state}: {t.reason}" for t in flight.transitions],
        "timing": timing,
    }


def _has_policy_io(flight: Any) -> bool:
    if len(flight.obs_t) and len(flight.action_t):
        return True
    log.warning(
        "%s has no policy observations or actions (an autopilot log, or a recording without them): skipping the "
        "open-loop policy replay; doing the re-simulation and the state, safety and timing plots",
        flight.path,
    )
    return False


def _policy(args: argparse.Namespace, flight: Any) -> Any:
    from policies.onnx_policy import load_policy

    path = args.policy
    if path is None:
        named = flight.metadata.get("sim2real", {}).get("policy")
        if named and Path(named).is_file():
            path = Path(named)
        elif named:
            log.warning(
                "no --policy given; the log names the policy %r, which is not a file from here (the path is as the "
                "deploy command was given it): pass --policy PATH. Skipping the open-loop replay",
                named,
            )
            return None
    if path is None:
        log.warning("no --policy given and the log names no policy: skipping the open-loop replay")
        return None
    return load_policy(path)


def _resim(args: argparse.Namespace, flight: Any, policy: Any) -> dict[str, Any] | None:
    if len(flight.state_t) < 10 or len(flight.command_t) < 10:
        log.warning(
            "the log has no robot state or no motor commands (RPM): skipping the re-simulation. A ctbr run's rate "
            "commands (command/rates) are not re-simulated: the autopilot's rate loop is not modelled in replay"
        )
        return None
    try:
        from calibration.resim import measure_gap
    except ImportError as exc:
        raise ValueError(
            f"re-simulation needs the simulator ({exc}); install sim2real with its training extras or pass --no-resim"
        ) from exc
    profile = args.profile or (policy.profile if policy is not None and policy.profile else None)
    with _progress() as progress:
        task = progress.add_task("re-simulating", total=None)
        return measure_gap(
            flight, profile, args.latency, progress=lambda i, n: progress.update(task, completed=i, total=n)
        )


def _logged_obs_spec(flight: Any) -> Any:
    from sim.obs_spec import ObsSpec

    text = flight.metadata.get("sim2real", {}).get("observation_spec")
    try:
        return ObsSpec.from_json(text) if text else None
    except ValueError:
        return None


def _report(out: Path, flight: Any, replay: Any, policy: Any, summary: dict[str, Any]) -> Path:
    from deploy.replay import report

    images = []
    if len(flight.state_t):
        ref = report.reference_from_obs(flight, getattr(policy, "obs_spec", None) or _logged_obs_spec(flight))
        images.append(report.plot_states(flight, out / "states.png", ref))
    if replay is not None:
        images.append(report.plot_actions(replay, out / "actions.png"))
    images.append(report.plot_safety(flight, out / "safety.png"))
    images.append(report.plot_timing(flight, out / "timing.png"))
    return report.write_report(out, summary, images)
