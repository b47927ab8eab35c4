"""System identification benchmark: time and accuracy on a 60 s quadrotor log with hidden parameters.

The log is flown in simulation (PID baseline, random setpoints, motor excitation, sensor noise as the
observation spec, 1 control step of actuation latency) and written with the flight recorder; generation is not
timed. Timed: reading the log, the fit (least squares inside CMA-ES over motor constants, one run per latency
0-3), and re-simulation with nominal and fitted parameters.

    .venv/bin/python benchmarks/sysid.py [--seconds 60] [--seed 0]

Prints one JSON object: seconds per stage (wall, and CPU time of this process: on a shared machine the CPU time
is the cost of the work), relative error, fitted std and identifiability status per parameter (calibration.sysid.assess), the latency range,
re-simulation gap.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from calibration.resim import resimulate
    from calibration.sysid.assess import assess
    from calibration.sysid.core import fit
    from calibration.sysid.data import from_flight
    from calibration.sysid.quadrotor import QuadrotorModel
    from calibration.sysid.spec import fitted_profile
    from calibration.sysid.synthetic import SyntheticFlight, fly
    from deploy.replay import load_flight
    from sim.quadrotor.params import QuadrotorParams

    nominal = QuadrotorParams()
    truth = nominal.replace(
        mass=nominal.mass * 1.12,
        inertia=(1.6e-5, 1.75e-5, 2.6e-5),
        km=nominal.km * 0.5,
        motor_tau_up=nominal.motor_tau_up * 0.7,
        motor_tau_down=nominal.motor_tau_down * 1.3,
        drag=tuple(d * 1.5 for d in nominal.drag),
    )
    latency = 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flight.mcap"
        t, c = time.perf_counter(), time.process_time()
        fly(path, SyntheticFlight(seconds=args.seconds, params=truth, action_latency=latency, seed=args.seed))
        generate_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        flight = load_flight(path, needed=("pose", "twist", "command"))
        data = from_flight(flight, nominal.hover_rpm)
        read_s = time.perf_counter() - t
        read_cpu_s = time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    model = QuadrotorModel(data, nominal, seed=args.seed)
    result = fit(model, seed=args.seed)
    fit_s = time.perf_counter() - t
    fit_cpu_s = time.process_time() - c
    verdict = assess(model, result)  # what the log determines (docs/calibration.md, section 5); not timed
    t, c = time.perf_counter(), time.process_time()
    gap = {
        "nominal": resimulate(data, nominal, 0),
        "fitted": resimulate(data, fitted_profile(verdict.estimates, nominal, verdict.status), result.discrete),
    }
    resim_s = time.perf_counter() - t
    resim_cpu_s = time.process_time() - c

    def true_value(name: str) -> float:
        if name == "action_latency":
            return latency
        if name[-2:] in ("_x", "_y", "_z"):
            return getattr(truth, name[:-2])["xyz".index(name[-1])]
        return getattr(truth, name)

    params = {
        name: {
            "truth": true_value(name),
            "fitted": e.value,
            "std": e.std,
            "error_pct": 100.0 * (e.value / true_value(name) - 1.0),
            "status": verdict.status[name].status if name in verdict.status else None,
            "within_2_std": abs(e.value - true_value(name)) <= 2.0 * e.std if e.std > 0 else None,
        }
        for name, e in verdict.estimates.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "sysid",
                "log_seconds": args.seconds,
                "usable_s": data.usable_s,
                "generate_s": generate_s,
                "read_s": read_s,
                "read_cpu_s": read_cpu_s,
                "fit_s": fit_s,
                "fit_cpu_s": fit_cpu_s,
                "fit_evaluations": result.evaluations,
                "fit_generations": result.generations,
                "resim_s": resim_s,
                "resim_cpu_s": resim_cpu_s,
                "load_average_1min": os.getloadavg()[0],
                "latency_cost": {str(k): v for k, v in result.cost_by_discrete.items()},
                "latency_range": verdict.latency,
                "parameters": params,
                "resim_position_median_m": {
                    name: {f"{d.horizon_s:g}s": d.position_m["median"] for d in divs} for name, divs in gap.items()
                },
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
