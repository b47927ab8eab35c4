"""``sim2real sysid LOG``: identify the quadrotor simulator's parameters from a logged flight.

An arm's log (``--robot franka``, or a log whose metadata names its articulated robot) goes to
:mod:`calibration.sysid.arm_cli` instead: motor strength, joint damping, friction, armature and latency.

Writes into ``--out``: ``randomization.yaml`` (for ``sim2real train --randomization``), ``profile.yaml`` (the
fitted robot profile), ``sysid.json`` (estimates with uncertainty, re-simulation gap before/after) and
``report.md``. Prints the JSON summary with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("sim2real.sysid")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "log", type=Path, help="sim2real .mcap, rosbag2 directory, .db3/.mcap storage file, PX4 .ulg or ArduPilot .bin"
    )
    p.add_argument("--map", type=Path, default=None, help="topic map YAML for logs from other stacks (docs/replay.md)")
    p.add_argument("--profile", type=Path, default=None, help="nominal robot profile YAML (default: Crazyflie 2.x)")
    p.add_argument(
        "--robot",
        default=None,
        help="articulated robot profile (e.g. franka, launch/robots/): identify an arm from its joint states and "
        "joint commands (default: the log metadata's sim2real.robot; none: a quadrotor)",
    )
    p.add_argument("--segments", type=int, default=16, help="arm: log segments re-simulated")
    p.add_argument("--horizon", type=int, default=25, help="arm: control steps per re-simulated segment")
    p.add_argument(
        "--anchor",
        choices=("kf", "mass"),
        default="kf",
        help="the one absolute value flight data cannot give: kf from a thrust stand (default: the profile's) "
        "or the mass from a scale",
    )
    p.add_argument("--anchor-value", type=float, default=None, help="N/RPM^2 or kg (default: the profile's)")
    p.add_argument("--anchor-std", type=float, default=0.02, help="relative uncertainty of the anchor")
    p.add_argument("--max-latency", type=int, default=3, help="largest actuation latency tried, control steps")
    p.add_argument("--substeps", type=int, default=5, help="physics substeps per control step (as in training)")
    p.add_argument("--sigmas", type=float, default=2.0, help="randomization half-width in standard deviations")
    p.add_argument("--min-spread", type=float, default=0.02, help="smallest relative half-width of a range")
    p.add_argument(
        "--cover",
        nargs="?",
        const="default",
        default=None,
        metavar="SPEC",
        help="join every identified range with SPEC's (a randomization YAML; without SPEC the task's default) and keep "
        "SPEC's other terms, so that training covers the identified vehicle and SPEC's vehicles (a retraining on the "
        "identified ranges alone can forget the latter)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("calibration_out/sysid"))
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument(
        "--retrain",
        type=Path,
        default=None,
        metavar="POLICY",
        help="then train POLICY's task on the identified randomization into OUT/retrain and recommend the new "
        "policy only if it is no worse than POLICY (policies/compare.py): OUT/compare/report.md",
    )
    p.add_argument("--retrain-seconds", type=float, default=300.0, help="--retrain: training time limit, s")
    p.add_argument("--retrain-iterations", type=int, default=None, help="--retrain: training iterations")
    p.add_argument("--compare-episodes", type=int, default=1024, help="--retrain: episodes per policy and condition")
    from deploy.replay.throttle import add_throttle_arguments

    add_throttle_arguments(p)  # PX4 .ulg / ArduPilot .bin logs


def run(args: argparse.Namespace) -> int:
    from calibration.errors import CalibrationError
    from deploy.replay.errors import ReplayError

    try:
        check_settings(args)
        summary = identify(args)
        if args.retrain is not None:
            summary["retrain"] = retrain_and_compare(args)
    except (CalibrationError, ReplayError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def retrain_and_compare(args: argparse.Namespace) -> dict[str, Any]:
    """--retrain: train on OUT/randomization.yaml, then the never-worse comparison (policies/compare.py)."""
    from policies.compare import compare, retrain, write_report

    new = retrain(args.retrain, args.out, args.retrain_seconds, args.retrain_iterations, args.seed)
    result = compare(args.retrain, new, args.out, episodes=args.compare_episodes, seed=args.seed)
    report = write_report(args.out / "compare", result)
    log.info("%s (%s)", result["summary"], report)
    return {"policy": str(new), "report": str(report), "recommend": result["recommend"], "summary": result["summary"]}


def check_settings(args: argparse.Namespace) -> None:
    """Refuse numeric options no identification can use, before the log is read (CalibrationError)."""
    from calibration.errors import CalibrationError

    expected = (
        ("--segments", args.segments, lambda v: v >= 1, "a number of segments >= 1"),
        ("--horizon", args.horizon, lambda v: v >= 1, "control steps >= 1"),
        ("--max-latency", args.max_latency, lambda v: v >= 0, "control steps >= 0"),
        ("--substeps", args.substeps, lambda v: v >= 1, "physics substeps >= 1"),
        ("--sigmas", args.sigmas, lambda v: 0 < v < float("inf"), "standard deviations > 0"),
        ("--min-spread", args.min_spread, lambda v: 0 <= v < float("inf"), "a relative half-width >= 0"),
        ("--anchor-std", args.anchor_std, lambda v: 0 < v < float("inf"), "a relative uncertainty > 0"),
        ("--retrain-seconds", args.retrain_seconds, lambda v: 0 < v < float("inf"), "seconds > 0"),
        ("--compare-episodes", args.compare_episodes, lambda v: v >= 1, "episodes >= 1"),
    )
    if args.anchor_value is not None:
        unit = "N/RPM^2" if args.anchor == "kf" else "kg"
        expected += (
            ("--anchor-value", args.anchor_value, lambda v: 0 < v < float("inf"), f"{args.anchor} > 0 {unit}"),
        )
    for flag, value, ok, what in expected:
        if not ok(value):
            raise CalibrationError(f"{flag}: expected {what}, got {value:g}")
    cover = getattr(args, "cover", None)
    if cover not in (None, "default"):
        from sim.randomization import RandomizationSpec, RandomizationSpecError

        try:
            RandomizationSpec.from_yaml(cover)
        except (OSError, RandomizationSpecError, ValueError) as exc:
            raise CalibrationError(
                f"--cover {cover!r}: expected a randomization spec YAML (e.g. "
                f"launch/randomization/crazyflie2_base.yaml), {type(exc).__name__}: {exc}"
            ) from None
    if getattr(args, "retrain", None) is not None:  # refused before the log is read, not after the fit
        if not args.retrain.exists():
            raise CalibrationError(
                f"--retrain {str(args.retrain)!r}: no such policy (.onnx, checkpoint or run directory)"
            )
        if (args.out / "retrain").exists():
            raise CalibrationError(
                f"--retrain: {args.out / 'retrain'} exists and a retraining never overwrites one; choose another --out"
            )


def identify(args: argparse.Namespace) -> dict[str, Any]:
    robot = getattr(args, "robot", None) or _logged_robot(args.log)
    if robot:
        from calibration.errors import CalibrationError
        from calibration.sysid.arm_cli import identify_arm

        if getattr(args, "retrain", None) is not None:
            raise CalibrationError(
                "--retrain compares quadrotor hover policies; for an arm, train and evaluate by hand"
            )

        return identify_arm(args, robot)
    from rich.console import Console
    from rich.progress import Progress

    from calibration.resim import resimulate
    from calibration.sysid.assess import assess
    from calibration.sysid.core import fit
    from calibration.sysid.data import from_flight
    from calibration.sysid.quadrotor import QuadrotorModel
    from calibration.sysid.spec import fitted_profile, randomization_from_fit, unidentified
    from deploy.replay.flight import load_flight
    from deploy.replay.throttle import throttle_from_args
    from deploy.replay.topic_map import TopicMap
    from sim.quadrotor.params import QuadrotorParams
    from sim.randomization import RandomizationSpec

    nominal = QuadrotorParams.from_yaml(args.profile) if args.profile else QuadrotorParams()
    cover_spec = None if args.cover in (None, "default") else RandomizationSpec.from_yaml(args.cover)
    tmap = TopicMap.from_yaml(args.map) if args.map else TopicMap()
    with Progress(console=Console(stderr=True)) as progress:  # stdout is for --json
        reading = progress.add_task("reading log", total=None)
        throttle = throttle_from_args(args, args.profile)
        flight = load_flight(
            args.log, tmap, ("pose", "twist", "command"), lambda n: progress.advance(reading, n), throttle=throttle
        )
        progress.update(reading, total=1, completed=1)
        data = from_flight(flight, nominal.hover_rpm, max_rpm=nominal.max_rpm)
        anchor_value = args.anchor_value or (nominal.kf if args.anchor == "kf" else nominal.mass)
        model = QuadrotorModel(
            data, nominal, args.substeps, args.max_latency, (args.anchor, anchor_value), args.anchor_std, seed=args.seed
        )
        fitting = progress.add_task("fitting (CMA-ES generations)", total=60)
        result = fit(model, seed=args.seed, progress=lambda i, n: progress.update(fitting, completed=i, total=n))
        progress.update(fitting, completed=progress.tasks[fitting].total)
        a = assess(model, result)
        profile = fitted_profile(a.estimates, nominal, a.status)
        weak = unidentified(a.estimates, a.status)
        if weak:
            log.warning(
                "not identified by this log (kept nominal and the default randomization): %s. Fly more varied "
                "manoeuvres (setpoint steps, turns, yaw) to pin them down",
                ", ".join(f"{k} ({a.status[k].status})" for k in weak),
            )
        gap = {}
        for name, params, latency in (("nominal", nominal, 0), ("fitted", profile, result.discrete)):
            gap[name] = resimulate(data, params, latency, substeps=args.substeps)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = randomization_from_fit(
        a.estimates, f"sysid-{args.log.stem}", status=a.status, latency=a.latency, bias=a.bias, sigmas=args.sigmas,
        min_spread=args.min_spread, cover=args.cover is not None, base=cover_spec,
    )  # fmt: skip
    spec.to_yaml(args.out / "randomization.yaml")
    import yaml

    (args.out / "profile.yaml").write_text(yaml.safe_dump({"quadrotor": profile.to_dict()}, sort_keys=False))
    summary = {
        "log": str(args.log),
        "usable_s": data.usable_s,
        "problems": flight.problems,
        "anchor": {"name": args.anchor, "value": anchor_value, "rel_std": args.anchor_std,
                   "measured": args.anchor_value is not None,
                   "statement": anchor_statement(args.anchor, anchor_value, args.anchor_value is not None)},
        "estimates": {
            k: {"value": e.value, "std": e.std, "unit": e.unit, "nominal": e.nominal} for k, e in a.estimates.items()
        },
        "identifiability": {k: s.to_dict() for k, s in a.status.items()},
        "not_identified": weak,
        "latency": {"range": a.latency, "best": result.discrete, "reason": a.latency_reason},
        "latency_cost": {str(k): v for k, v in result.cost_by_discrete.items()},
        "biases": {k: {"value": v, "std": sd, "unit": "N m" if k.startswith("torque") else "N"}
                   for k, (v, sd) in a.bias.items()},
        "motor_spread": a.motor_scale,
        "excitation": {k: a.diagnostics[k] for k in ("gyro_snr", "velocity_snr", "rate_noise_rad_s",
                                                     "velocity_noise_m_s", "groups")},
        "residual_rms": getattr(model, "residual_rms", {}),
        "fit_seconds": result.seconds,
        "evaluations": result.evaluations,
        "resimulation": {
            name: {f"{d.horizon_s:g}s": {"position_m": d.position_m["median"], "attitude_deg": d.attitude_deg["median"]}
                   for d in divs}
            for name, divs in gap.items()
        },
        "outputs": {k: str(args.out / f) for k, f in (("randomization", "randomization.yaml"), ("profile", "profile.yaml"))},
    }  # fmt: skip
    (args.out / "sysid.json").write_text(json.dumps(summary, indent=2))
    from calibration.sysid.report import report

    report(args.out / "report.md", summary)
    log.info("anchor: %s", summary["anchor"]["statement"])
    for k, st in a.status.items():
        e = a.estimates[k]
        log.info("%-15s %-14s %.4g +- %.2g %s: %s", k, st.status, e.value, e.std, e.unit, st.reason)
    log.info("latency: %s control steps (%s)", a.latency, a.latency_reason)
    log.info("wrote %s", ", ".join(summary["outputs"].values()))
    return summary


def anchor_statement(name: str, value: float, measured: bool) -> str:
    """What the one absolute value is, where it came from, and what "scale" means for the rest."""
    unit = "N/RPM^2" if name == "kf" else "kg"
    source = ("measured (--anchor-value)" if measured else "the profile's, not measured: give --anchor-value from a "
              + ("thrust stand" if name == "kf" else "scale"))  # fmt: skip
    others = "mass, inertia and drag" if name == "kf" else "kf, inertia and drag"
    return (
        f"{name} = {value:.4g} {unit}, {source}. Flight data fix thrust per weight and torque per inertia only: "
        f"{others} are relative to it (a {name} 10 % higher gives {others} 10 % higher and the same flight)"
    )


def _logged_robot(path: Path) -> str | None:
    """The articulated robot a sim2real MCAP log names in its metadata (``sim2real.robot``), else None."""
    if path.suffix != ".mcap" or not path.is_file():
        return None
    from deploy.recording import LogFormatError, read_log

    try:
        return read_log(path, decode=False).metadata.get("sim2real", {}).get("robot") or None
    except (LogFormatError, OSError):
        return None
