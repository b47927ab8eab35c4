"""Never worse: is a policy retrained on an identified randomization at least as good as the one it would replace?

``sim2real compare OLD.onnx NEW.onnx --sysid DIR`` (``DIR``: what ``sim2real sysid LOG --out DIR`` wrote) flies both
quadrotor policies on the same episodes (same seed, same vehicles) under three conditions and recommends NEW only
when it is no worse than OLD on all three:

- ``identified``: the identified randomization (``DIR/randomization.yaml``), what NEW was trained for;
- ``default``: the task's default randomization, the vehicles OLD was trained for (a retrain must not forget them:
  the identified spec covers what one log showed, and a log does not show everything);
- ``fitted vehicle``: the logged vehicle re-simulated, i.e. the fitted profile (``DIR/profile.yaml``: the
  determined values, nominal elsewhere) held fixed, with the identified latency, noise and disturbance terms.

"No worse" on a condition: success rate at most :data:`TOLERANCES` ``success_rate`` lower, crash rate at most
``crash_rate`` higher, position RMSE at most ``position_rmse_rel`` higher (relative) than OLD's. The report
(``compare.json``, ``report.md``) says for each condition which held and which did not, and why NEW is or is not
recommended. One command does it all (docs/calibration.md, "Never worse")::

    sim2real sysid flight.mcap --out sysid/ --retrain policy.onnx     # + sysid/retrain/, sysid/compare/report.md

which is, step by step::

    sim2real sysid flight.mcap --out sysid/
    sim2real train quadrotor-hover --randomization sysid/randomization.yaml --run-dir sysid/retrain
    sim2real export sysid/retrain
    sim2real compare policy.onnx sysid/retrain/policy.onnx --sysid sysid/
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("sim2real.compare")

#: how much worse than OLD a condition may be and still count as "no worse" (evaluation noise on the same episodes)
TOLERANCES = {"success_rate": 0.01, "crash_rate": 0.005, "position_rmse_rel": 0.05}
#: the terms of a randomization that describe the vehicle (pinned to the fitted profile under "fitted vehicle")
VEHICLE_TERMS = ("mass", "inertia", "kf", "km", "motor_tau_up", "motor_tau_down", "drag")


class CompareError(ValueError):
    """The inputs cannot be compared; the message says what was expected."""


def conditions(sysid_dir: Path, task_cfg: Any) -> dict[str, tuple[Any, Any]]:
    """name -> (randomization spec, robot params) of the three conditions."""
    from sim.quadrotor.params import QuadrotorParams
    from sim.randomization import RandomizationSpec

    spec_path, profile_path = sysid_dir / "randomization.yaml", sysid_dir / "profile.yaml"
    missing = [str(p) for p in (spec_path, profile_path) if not p.is_file()]
    if missing:
        raise CompareError(
            f"--sysid {str(sysid_dir)!r}: expected what `sim2real sysid LOG --out DIR` writes, missing {missing}"
        )
    identified = RandomizationSpec.from_yaml(spec_path)
    fitted = QuadrotorParams.from_yaml(profile_path)
    pinned = identified.replace(**pinned_vehicle(fitted, task_cfg.params))
    return {
        "identified": (identified, task_cfg.params),
        "default": (task_cfg.randomization, task_cfg.params),
        "fitted vehicle": (pinned, task_cfg.params),
    }


def pinned_vehicle(fitted: Any, nominal: Any) -> dict[str, Any]:
    """The vehicle terms fixed at the fitted profile, as scales of the nominal one: the policy's action spec (hover
    speed, range) stays the one it was trained with, as a randomized mass leaves it in training."""
    from sim.randomization import ParamDistribution

    terms = {}
    for name in VEHICLE_TERMS:
        value, base = getattr(fitted, name), getattr(nominal, name)
        if isinstance(value, tuple | list):
            ratio = [float(v) / float(b) for v, b in zip(value, base)]
            terms[name] = ParamDistribution("uniform", low=ratio, high=ratio, per_component=True)
        else:
            terms[name] = ParamDistribution("constant", mean=float(value) / float(base))
    return terms


def no_worse(old: dict[str, float], new: dict[str, float]) -> tuple[bool, list[str]]:
    """(NEW no worse than OLD, one line per metric saying so or not)."""
    tol = TOLERANCES
    checks = [
        ("success rate", new["success_rate"] >= old["success_rate"] - tol["success_rate"],
         f"{100 * new['success_rate']:.1f} % vs {100 * old['success_rate']:.1f} %"),
        ("crash rate", new["crash_rate"] <= old["crash_rate"] + tol["crash_rate"],
         f"{100 * new['crash_rate']:.2f} % vs {100 * old['crash_rate']:.2f} %"),
        ("position RMSE", new["position_rmse_m"] <= old["position_rmse_m"] * (1.0 + tol["position_rmse_rel"]),
         f"{100 * new['position_rmse_m']:.2f} cm vs {100 * old['position_rmse_m']:.2f} cm"),
    ]  # fmt: skip
    lines = [f"{name}: {values} ({'no worse' if ok else 'WORSE'})" for name, ok, values in checks]
    return all(ok for _, ok, _ in checks), lines


def compare(
    old: Path, new: Path, sysid_dir: Path, episodes: int = 1024, seconds: float = 10.0, seed: int = 0
) -> dict[str, Any]:
    """Fly OLD and NEW under the three conditions; the recommendation and its reasons."""
    from policies.evaluate import evaluate, load_source, source_cfg

    sources = {"old": load_source(old), "new": load_source(new)}
    if sources["old"].task != sources["new"].task or sources["old"].obs_spec != sources["new"].obs_spec:
        raise CompareError(
            f"{old} and {new} are not the same task with the same observation ({sources['old'].task}, "
            f"{sources['new'].task}): a retrained policy replaces one for the same robot and runtime"
        )
    if sources["old"].action_spec != sources["new"].action_spec:
        raise CompareError(f"{old} and {new} act through different action specs; compare like with like")
    cfg = source_cfg(sources["old"])
    result: dict[str, Any] = {"old": str(old), "new": str(new), "sysid": str(sysid_dir), "episodes": episodes,
                              "seconds": seconds, "seed": seed, "tolerances": TOLERANCES, "conditions": {}}  # fmt: skip
    for name, (spec, params) in conditions(sysid_dir, cfg).items():
        row: dict[str, Any] = {}
        for which, source in sources.items():
            metrics, _, _ = evaluate(source, episodes, seconds, seed, spec, pid=False, params=params)
            row[which] = next(iter(metrics.values()))
        row["no_worse"], row["reasons"] = no_worse(row["old"], row["new"])
        result["conditions"][name] = row
        log.info("%s: %s", name, "; ".join(row["reasons"]))
    worse = [name for name, row in result["conditions"].items() if not row["no_worse"]]
    result["recommend"] = not worse
    result["summary"] = (
        "recommended: the new policy is no worse than the old one on the identified randomization, the default one "
        "and the fitted vehicle"
        if not worse
        else f"not recommended: the new policy is worse on {', '.join(worse)} (keep the old one)"
    )
    return result


def retrain(
    old: Path, sysid_dir: Path, max_seconds: float | None = 300.0, iterations: int | None = None, seed: int = 0
) -> Path:
    """Train OLD's task and interface on ``sysid_dir``'s randomization into ``sysid_dir/retrain`` (a fresh run: the
    directory must not exist) and export it; the new policy.onnx."""
    from policies import train as train_cli
    from policies.evaluate import load_source
    from policies.export import export

    source = load_source(old)
    run_dir = sysid_dir / "retrain"
    if run_dir.exists():
        raise CompareError(f"{run_dir} exists: a retraining never overwrites one; move it away or use another --out")
    argv = [source.task, "--randomization", str(sysid_dir / "randomization.yaml"), "--run-dir", str(run_dir),
            "--seed", str(seed), "--interface", source.action_spec.interface, "--no-progress"]  # fmt: skip
    if source.robot:
        argv += ["--robot", source.robot]
    if max_seconds is not None:
        argv += ["--max-seconds", str(max_seconds)]
    if iterations is not None:
        argv += ["--iterations", str(iterations)]
    parser = argparse.ArgumentParser(prog="sim2real train")
    train_cli.add_arguments(parser)
    log.info("retraining on %s: sim2real train %s", sysid_dir / "randomization.yaml", " ".join(argv))
    with contextlib.redirect_stdout(sys.stderr):  # train prints its run directory; stdout is for --json
        code = train_cli.run(parser.parse_args(argv))
    if code != 0:
        raise CompareError(f"retraining into {run_dir} failed (see the log above)")
    return export(run_dir)["onnx"]


def write_report(out: Path, result: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Never worse: old vs new policy",
        "",
        f"- old: `{result['old']}`",
        f"- new: `{result['new']}`",
        f"- identification: `{result['sysid']}`; {result['episodes']} episodes of {result['seconds']:g} s, seed "
        f"{result['seed']}, the same for both",
        "",
        f"**{result['summary']}.**",
        "",
        "| condition | success old / new | crash old / new | RMSE old / new | verdict |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["conditions"].items():
        o, n = row["old"], row["new"]
        lines.append(
            f"| {name} | {100 * o['success_rate']:.1f} / {100 * n['success_rate']:.1f} % | "
            f"{100 * o['crash_rate']:.2f} / {100 * n['crash_rate']:.2f} % | {100 * o['position_rmse_m']:.2f} / "
            f"{100 * n['position_rmse_m']:.2f} cm | {'no worse' if row['no_worse'] else 'worse'} |"
        )
    tol = result["tolerances"]
    lines += [
        "",
        f"No worse = success at most {100 * tol['success_rate']:g} points lower, crashes at most "
        f"{100 * tol['crash_rate']:g} points higher, RMSE at most {100 * tol['position_rmse_rel']:g} % higher.",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", type=Path, help="the policy flown now (.onnx, checkpoint or run directory)")
    p.add_argument("new", type=Path, help="the candidate, retrained on the identified randomization")
    p.add_argument("--sysid", type=Path, required=True, help="the output directory of `sim2real sysid LOG --out`")
    p.add_argument("--episodes", type=int, default=1024, help="episodes per policy and condition (default 1024)")
    p.add_argument("--seconds", type=float, default=10.0, help="episode length, s (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="report directory (default: NEW's directory / compare)")


def run(args: argparse.Namespace) -> int:
    if args.episodes <= 0 or not args.seconds > 0:
        raise CompareError(f"--episodes and --seconds must be positive, got {args.episodes} and {args.seconds}")
    result = compare(args.old, args.new, args.sysid, args.episodes, args.seconds, args.seed)
    base = args.new if args.new.is_dir() else args.new.parent
    report = write_report(args.out or base / "compare", result)
    log.info("%s; report %s", result["summary"], report)
    print(json.dumps({k: result[k] for k in ("recommend", "summary")} | {"report": str(report)}))
    return 0
