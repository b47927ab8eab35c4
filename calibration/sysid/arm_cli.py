"""``sim2real sysid LOG --robot franka``: identify an arm's joint dynamics, latency and motor strength.

Writes into ``--out``: ``randomization.yaml`` (for ``sim2real train arm-reach --randomization FILE``),
``sysid.json`` (estimates with uncertainty, latency costs, re-simulation error before/after) and ``report.md``.
The spec is the arm defaults (:func:`sim.articulated.randomization.arm_randomization`) with the identified terms
replaced by absolute ranges centred on the fitted values (half-width ``max(sigmas * std, min_spread * value)``):
``motor_strength``, ``kp_factor`` and ``kd_factor`` on the torque scale (the env's strength scales the torque
limit, its gain factors the PD torque: together they scale the motor's torque as fitted), ``joint_damping``,
``joint_friction``, ``joint_armature``, and ``action_latency`` fixed at the fitted control steps times the
physics substeps (the env delays targets in physics steps), ``obs_latency`` 0 (a log cannot tell them apart).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from typing import Any

from calibration.sysid.articulated import PARAMS
from calibration.sysid.core import Estimate
from calibration.sysid.spec import identified
from sim.randomization import ParamDistribution, RandomizationSpec

log = logging.getLogger("sim2real.sysid")


def arm_randomization_from_fit(
    estimates: Mapping[str, Estimate], substeps: int, name: str = "sysid", *, sigmas: float = 2.0,
    min_spread: float = 0.02,
) -> RandomizationSpec:  # fmt: skip
    """The arm defaults with the identified terms centred on the fit (see the module docstring)."""
    from sim.articulated.randomization import arm_randomization

    terms: dict[str, ParamDistribution | None] = {}
    for key, (_, _, unit, spec_name) in PARAMS.items():
        e = estimates.get(key)
        if e is None or not identified(e):
            continue
        w = max(sigmas * e.std, min_spread * e.value)
        lo, hi = round(max(e.value - w, 1e-3 * e.value), 6), round(e.value + w, 6)
        names = ("motor_strength", "kp_factor", "kd_factor") if key == "torque_scale" else (spec_name,)
        for n in names:
            terms[n] = ParamDistribution("uniform", low=lo, high=hi, operation="absolute", unit=unit)
    if "action_latency" in estimates:
        steps = round(estimates["action_latency"].value) * int(substeps)
        terms["action_latency"] = ParamDistribution(
            "int_uniform", low=steps, high=steps, operation="absolute", unit="physics steps"
        )
        terms["obs_latency"] = ParamDistribution(
            "int_uniform", low=0, high=0, operation="absolute", unit="control steps"
        )
    out = arm_randomization().replace(**terms)
    return RandomizationSpec(out.terms, name=name)


def identify_arm(args: argparse.Namespace, robot: str) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import Progress

    from calibration.sysid.articulated import ArmModel, ArmSimulator, fit_arm, read_joint_log
    from calibration.sysid.spec import unidentified
    from sim.articulated.profile import load_profile

    profile = load_profile(args.profile or robot)
    sim = ArmSimulator(profile)
    data = read_joint_log(args.log, profile.joints.names)
    if abs(data.control_dt - profile.control_dt) > 0.05 * profile.control_dt:
        raise ValueError(
            f"{args.log}: the log's control period is {data.control_dt * 1e3:.1f} ms, the profile "
            f"{profile.name!r} runs at {profile.control_dt * 1e3:.1f} ms; pass the profile the robot ran with (--profile)"
        )
    model = ArmModel(data, sim, max_latency=args.max_latency, segments=args.segments, horizon=args.horizon)
    with Progress(console=Console(stderr=True)) as progress:  # stdout is for --json
        task = progress.add_task("fitting (CMA-ES, then Levenberg-Marquardt)", total=None)
        result = fit_arm(model, seed=args.seed, progress=lambda i, n: progress.update(task, completed=i, total=n))
    weak = unidentified(result.estimates)
    if weak:
        log.warning("not identified by this log (default randomization kept): %s", ", ".join(weak))
    fitted = [result.estimates[k].value for k in PARAMS]
    gap = {"nominal": model.rms(sim.nominal().row(), 0), "fitted": model.rms(fitted, result.discrete)}
    args.out.mkdir(parents=True, exist_ok=True)
    spec = arm_randomization_from_fit(
        result.estimates, profile.substeps, f"sysid-{args.log.stem}", sigmas=args.sigmas, min_spread=args.min_spread
    )
    spec.to_yaml(args.out / "randomization.yaml")
    summary = {
        "log": str(args.log),
        "robot": profile.name,
        "control_cycles": len(data.t),
        "segments": {"count": len(model.starts), "horizon_steps": model.horizon},
        "estimates": {
            k: {"value": e.value, "std": e.std, "unit": e.unit, "nominal": e.nominal}
            for k, e in result.estimates.items()
        },
        "not_identified": weak,
        "latency_cost": {str(k): v for k, v in result.cost_by_discrete.items()},
        "fit_seconds": result.seconds,
        "evaluations": result.evaluations,
        "resimulation_rms": gap,
        "outputs": {"randomization": str(args.out / "randomization.yaml")},
    }
    (args.out / "sysid.json").write_text(json.dumps(summary, indent=2))
    _report(args.out / "report.md", summary)
    log.info("wrote %s", summary["outputs"]["randomization"])
    return summary


def _report(path, s: dict[str, Any]) -> None:
    lines = [f"# System identification of `{s['log']}` ({s['robot']})", ""]
    lines.append(f"{s['control_cycles']} control cycles; {s['segments']['count']} segments of "
                 f"{s['segments']['horizon_steps']} steps re-simulated.")  # fmt: skip
    lines += ["", "| parameter | fitted | std | nominal |", "|---|---|---|---|"]
    for k, e in s["estimates"].items():
        lines.append(f"| {k} [{e['unit']}] | {e['value']:.5g} | {e['std']:.2g} | {e['nominal']:.5g} |")
    if s["not_identified"]:
        lines += ["", f"**Not identified by this log** (default randomization): {', '.join(s['not_identified'])}."]
    lines += ["", "Cost (negative log-likelihood) per latency in control steps: " + str(s["latency_cost"])]
    nom, fit = s["resimulation_rms"]["nominal"], s["resimulation_rms"]["fitted"]
    lines += [
        "",
        "| re-simulation RMS | nominal | fitted |",
        "|---|---|---|",
        f"| position (rad) | {nom['position_rad']:.2e} | {fit['position_rad']:.2e} |",
        f"| velocity (rad/s) | {nom['velocity_rad_s']:.2e} | {fit['velocity_rad_s']:.2e} |",
        "",
        f"Train with: `sim2real train arm-reach --randomization {s['outputs']['randomization']}`",
    ]
    path.write_text("\n".join(lines) + "\n")
