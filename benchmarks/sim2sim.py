"""Sim-to-sim: a quadrotor policy flown by ``sim2real deploy`` over DDS in simulators the project did not write.

For each simulator (the project's own SIL robot as the reference, then the foreign ones of drivers/foreign_sil), N
flights of the deploy profile's plan, each a separate ``sim2real deploy --sil --sil-robot <sim>`` on its own
ROS_DOMAIN_ID over loopback; per simulator: hover RMS (median, max over the flights), crashes (a flight that did
not end "plan complete" with a clean exit, or went through FALLBACK / ESTOP) and the deploy summaries' numbers.

    python benchmarks/sim2sim.py [--policy tests/data/hover_policy.onnx | --train SECONDS] [--flights 10]
        [--sims sim rotorpy drone_models] [--hover-s 10]

Prints one JSON object. docs/sim2sim.md describes the simulators; BENCHMARKS.md tables the results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.transport import LOOPBACK_CONFIG  # noqa: E402

log = logging.getLogger("sim2real.bench.sim2sim")


def train_and_export(seconds: float, out: Path) -> Path:
    """`sim2real train quadrotor-hover --max-seconds` then `sim2real export`; -> policy.onnx."""
    run_dir = out / "train"
    cmd = [sys.executable, "sim2real.py", "train", "quadrotor-hover", "--max-seconds", str(seconds)]
    subprocess.run([*cmd, "--run-dir", str(run_dir), "--no-progress"], cwd=ROOT, check=True)
    subprocess.run([sys.executable, "sim2real.py", "export", str(run_dir), "--out", str(out)], cwd=ROOT, check=True)
    return out / "policy.onnx"


def fly(sim: str, policy: Path, profile_path: Path, seed: int, hover_s: float, work: Path) -> dict:
    """One deploy flight; -> the deploy summary plus exit code and crash flag."""
    domain = random.randint(1, 230)
    profile = yaml.safe_load(profile_path.read_text())
    profile["robot"] = str((profile_path.parent / profile["robot"]).resolve())
    profile["transport"] = {"namespace": f"/s2s{domain}"}
    profile["plan"] = {**profile["plan"], "hover_s": hover_s}
    profile["sil"] = {**profile.get("sil", {}), "seed": seed}
    profile.pop("realtime_priority", None)  # several processes on a shared machine
    path = work / f"{sim}-{seed}.yaml"
    path.write_text(yaml.safe_dump(profile))
    cmd = [sys.executable, "sim2real.py", "deploy", "--sil", "--sil-robot", sim, "--profile", str(path)]
    cmd += ["--policy", str(policy), "--log", str(work / f"{sim}-{seed}.mcap")]
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "CYCLONEDDS_URI": LOOPBACK_CONFIG}
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    summary = json.loads(out[out.index("{") :]) if "{" in out else {}
    unsafe = any("-> FALLBACK" in t or "-> ESTOP" in t for t in summary.get("transitions", []))
    crashed = run.returncode != 0 or summary.get("end") != "plan complete" or unsafe
    if crashed:
        log.warning("%s seed %d: exit %d, %s\n%s", sim, seed, run.returncode, summary.get("end"), run.stderr[-1500:])
    return {"returncode": run.returncode, "crashed": crashed, **summary}


def aggregate(flights: list[dict]) -> dict:
    hover = [f["tracking"]["hover_rms_m"] for f in flights if f.get("tracking", {}).get("hover_rms_m") is not None]
    track = [f["tracking"]["tracking_rms_m"] for f in flights if f.get("tracking", {}).get("tracking_rms_m")]
    misses = [f["loop"]["deadline_misses"] for f in flights if "loop" in f]
    return {
        "flights": len(flights),
        "crashes": sum(f["crashed"] for f in flights),
        "hover_rms_m": {"median": statistics.median(hover), "max": max(hover)} if hover else None,
        "tracking_rms_m_median": statistics.median(track) if track else None,
        "deadline_misses_max": max(misses) if misses else None,
        "hover_rms_m_each": [round(h, 4) for h in hover],
        "ends": sorted({str(f.get("end")) for f in flights}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=ROOT / "tests" / "data" / "hover_policy.onnx")
    ap.add_argument("--train", type=float, default=None, metavar="SECONDS", help="train + export a policy first")
    ap.add_argument("--flights", type=int, default=10)
    ap.add_argument("--sims", nargs="+", default=["sim", "rotorpy", "drone_models"])
    ap.add_argument("--profile", type=Path, default=ROOT / "launch" / "sim_quadrotor.yaml")
    ap.add_argument("--hover-s", type=float, default=10.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="sim2sim-") as tmp:
        work = Path(tmp)
        policy = train_and_export(args.train, work) if args.train else args.policy
        result = {
            "policy": str(policy if not args.train else f"trained {args.train:g} s"),
            "profile": str(args.profile),
        }
        result["hover_s"] = args.hover_s
        for sim in args.sims:
            flights = []
            for seed in range(args.flights):
                flights.append(fly(sim, policy, args.profile.resolve(), seed, args.hover_s, work))
                log.info("%s flight %d: %s", sim, seed, flights[-1].get("tracking"))
            result[sim] = aggregate(flights)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
