"""Are the reported uncertainties honest? Coverage of the truth on logs from simulators the project did not write.

``python -m calibration.sysid.coverage rotorpy:LOG.mcap drone_models:LOG.mcap ...`` identifies each log (the kf
anchor at the vehicle's true thrust coefficient, as a thrust stand would give it) and counts, over the
parameters reported "determined", how often the truth lies within ``--sigmas`` reported standard deviations.
Prints JSON. The logs come from ``sim2real deploy --sil --sil-robot <sim> --profile P --policy
tests/data/hover_policy.onnx --log <sim>-<seed>.mcap`` with P = launch/sim_quadrotor.yaml with ``plan.hover_s: 12``,
``sil.seed: <seed>`` and a namespace of its own (what ``benchmarks/sim2sim.py``'s ``fly`` writes; docs/sim2sim.md).

The truths, read from the packages and put in the project's model (:mod:`calibration.sysid.quadrotor`):

- kf: RotorPy's ``k_eta`` (N/(rad/s)^2) x (2 pi / 60)^2; drone-models' thrust polynomial divided by RPM^2 at
  its hover speed (its linear term makes the equivalent kf 2.4 % lower at hover than its slope there);
- inertia x, y: the project's model takes torque = kf a (sum of signed F) with a = the profile's arm / sqrt 2
  (0.0281 m); a vehicle with a longer moment arm a' is the same vehicle with J' a / a'. The foreign body is
  turned 90 deg about z onto the policy's (docs/sim2sim.md), so the policy's x axis is the vehicle's y axis;
- km: yaw torque over thrust at hover; J_z unchanged (no arm in the yaw equation);
- motor time constants: RotorPy's ``tau_m`` (rise and fall); drone-models' rotor laws are not first order
  (no single truth: not compared);
- latency: one control period of measurement delay (the SIL's ``--delay-steps 1``) plus the runtime's
  transport; the truth is 1-2 steps (a range, compared with the reported latency range).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from pathlib import Path

from sim.quadrotor.params import QuadrotorParams

RPM_TO_RAD_S = 2.0 * math.pi / 60.0
ARM = QuadrotorParams().arm_length / math.sqrt(2.0)  # the project model's moment arm, m
TRUE_LATENCY = (1, 2)  # control steps: measurement delay 1 + transport 0-1


def foreign_truth(sim: str) -> dict[str, float]:
    """The vehicle's parameters in the project's model (see the module docstring)."""
    if sim == "rotorpy":
        from rotorpy.vehicles.crazyflie_params import quad_params as q

        kf = q["k_eta"] * RPM_TO_RAD_S**2
        arm = abs(q["rotor_pos"]["r1"][0])
        jx, jy, jz = q["Iyy"], q["Ixx"], q["Izz"]
        return {
            "mass": float(q["mass"]), "kf": kf, "km": q["k_m"] / q["k_eta"], "inertia_x": jx * ARM / arm,
            "inertia_y": jy * ARM / arm, "inertia_z": jz, "motor_tau_up": q["tau_m"], "motor_tau_down": q["tau_m"],
        }  # fmt: skip
    if sim == "drone_models":
        os.environ.setdefault("SCIPY_ARRAY_API", "1")
        from drone_models.core import load_params

        p = load_params("first_principles", "cf21B_500")
        c0, c1, c2 = (float(v) for v in p["rpm2thrust"])
        t0, t1, t2 = (float(v) for v in p["rpm2torque"])
        mass, arm = float(p["mass"]), float(p["L"])
        f = mass * 9.81 / 4.0
        hover = (-c1 + math.sqrt(c1 * c1 + 4.0 * c2 * (f - c0))) / (2.0 * c2)
        J = p["J"]
        return {
            "mass": mass, "kf": f / hover**2, "km": (t0 + t1 * hover + t2 * hover**2) / f,
            "inertia_x": float(J[1][1]) * ARM / arm, "inertia_y": float(J[0][0]) * ARM / arm,
            "inertia_z": float(J[2][2]),
        }  # fmt: skip
    raise ValueError(f"unknown foreign simulator {sim!r}; expected rotorpy or drone_models")


def check_log(sim: str, path: Path, sigmas: float = 2.0, seed: int = 0) -> dict[str, object]:
    """Identify one log with the true kf as the anchor; -> per determined parameter: value, std, truth, covered."""
    from calibration.sysid.assess import assess
    from calibration.sysid.core import fit
    from calibration.sysid.data import from_flight
    from calibration.sysid.quadrotor import QuadrotorModel
    from deploy.replay.flight import load_flight
    from deploy.replay.topic_map import TopicMap

    truth = foreign_truth(sim)
    nominal = QuadrotorParams()
    flight = load_flight(path, TopicMap(), ("pose", "twist", "command"))
    data = from_flight(flight, nominal.hover_rpm, max_rpm=nominal.max_rpm)
    model = QuadrotorModel(data, nominal, max_latency=4, anchor=("kf", truth["kf"]), seed=seed)
    a = assess(model, fit(model, seed=seed))
    rows, others = {}, {}
    for name in truth:
        if name == "kf" or name not in a.estimates:
            continue
        e = a.estimates[name]
        if name not in a.determined():
            others[name] = {"value": e.value, "std": e.std, "truth": truth[name], "status": a.status[name].status,
                            "covered": bool(abs(e.value - truth[name]) <= sigmas * e.std)}  # fmt: skip
            continue
        rows[name] = {
            "value": e.value, "std": e.std, "truth": truth[name], "error_sigmas": (e.value - truth[name]) / e.std,
            "covered": bool(abs(e.value - truth[name]) <= sigmas * e.std),
        }  # fmt: skip
    lat = (min(a.latency), max(a.latency))
    return {
        "sim": sim, "log": str(path), "determined": rows, "not_determined": others,
        "status": {k: s.status for k, s in a.status.items()},
        "latency_range": list(lat), "latency_covered": lat[0] <= TRUE_LATENCY[0] and TRUE_LATENCY[1] <= lat[1],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.sysid.coverage", description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+", help="SIM:PATH, SIM one of rotorpy, drone_models")
    ap.add_argument("--sigmas", type=float, default=2.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = []
    for item in args.logs:
        sim, _, path = item.partition(":")
        if not path:
            ap.error(f"expected SIM:PATH (e.g. rotorpy:flight.mcap), got {item!r}")
        results.append(check_log(sim, Path(path), args.sigmas))
    checks = [r["covered"] for res in results for r in res["determined"].values()]
    rest = [r["covered"] for res in results for r in res["not_determined"].values()]
    out = {
        "sigmas": args.sigmas,
        "coverage": sum(checks) / len(checks) if checks else None,
        "determined_checked": len(checks),
        "not_determined_coverage": sum(rest) / len(rest) if rest else None,
        "not_determined_checked": len(rest),
        "latency_coverage": sum(r["latency_covered"] for r in results) / len(results),
        "logs": results,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
