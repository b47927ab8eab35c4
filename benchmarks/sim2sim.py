"""Sim-to-sim: a policy flown by ``sim2real deploy`` over DDS in simulators the project did not write.

For each simulator (the project's own SIL robot as the reference, then the foreign ones of drivers/foreign_sil), N
flights of the deploy profile's plan, each a separate ``sim2real deploy --sil --sil-robot <sim>`` on its own
ROS_DOMAIN_ID over loopback; per simulator: hover RMS (median, max over the flights), crashes (a flight that did
not end "plan complete" with a clean exit, or went through FALLBACK / ESTOP) and the deploy summaries' numbers.

    python benchmarks/sim2sim.py [--policy tests/data/hover_policy.onnx | --train SECONDS] [--flights 10]
        [--sims sim rotorpy drone_models] [--hover-s 10] [--train-randomization launch/randomization/X.yaml]
        [--train-iterations N] [--sil-randomization launch/randomization/X.yaml]
    python benchmarks/sim2sim.py --loop --policy P.onnx --sims rotorpy [--flights 5] [--retrain-seconds 300] [--excite]

``--loop`` (issue #18): fly, identify the vehicle from the first flight's log and retrain on it (``sim2real sysid
LOG --retrain P``, which also judges the new policy never worse in simulation), then fly the retrained policy on the
same vehicles: hover RMS before and after, what the log determined. The policy must have the task's current
observation layout (the retraining has it), e.g. ``tests/data/hover_policy_history.onnx`` or ``--train``.

``--legged``: a walking policy on a legged profile (stand up, hold, walk, stop), the project's MuJoCo SIL robot
beside pybullet (drivers/foreign_sil/pybullet_legged.py); per simulator: the mean velocity error while walking
(the runtime's ``walk_velocity_error_m_s``, from 1 s after the walk starts) and falls: a run that went through
FALLBACK / ESTOP (the base tilt check trips at the profile's limit), did not end "plan complete", never stood up,
or whose base, once up, sank below ``--fall-height`` x the profile's standing height or tilted beyond
``--fall-tilt-deg`` (the SIL robot's ``state/pose``, read by the benchmark).

    python benchmarks/sim2sim.py --legged --policy P.onnx --profile launch/sim_a1.yaml [--flights 5]
        [--sims sim pybullet] [--walk-s 4]

Prints one JSON object. docs/sim2sim.md describes the simulators; BENCHMARKS.md tables the results.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
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


def train_and_export(
    seconds: float, out: Path, randomization: Path | None = None, iterations: int | None = None
) -> Path:
    """`sim2real train quadrotor-hover --max-seconds [--randomization] [--iterations]` then `sim2real export`;
    -> policy.onnx."""
    run_dir = out / "train"
    cmd = [sys.executable, "sim2real.py", "train", "quadrotor-hover", "--max-seconds", str(seconds)]
    cmd += ["--randomization", str(randomization.resolve())] if randomization else []
    cmd += ["--iterations", str(iterations)] if iterations else []
    # their output to stderr: stdout is the benchmark's one JSON object
    subprocess.run([*cmd, "--run-dir", str(run_dir), "--no-progress"], cwd=ROOT, check=True, stdout=sys.stderr)
    export = [sys.executable, "sim2real.py", "export", str(run_dir), "--out", str(out)]
    subprocess.run(export, cwd=ROOT, check=True, stdout=sys.stderr)
    return out / "policy.onnx"


def fly(
    sim: str,
    policy: Path,
    profile_path: Path,
    seed: int,
    hover_s: float,
    work: Path,
    vehicle: Path | None = None,
    tag: str = "",
    excitation: dict | None = None,
) -> dict:
    """One deploy flight (its log ``work/<tag><sim>-<seed>.mcap``); -> the deploy summary plus exit code and crash
    flag. ``excitation``: the plan's doublets (deploy/runtime/excitation.py)."""
    domain = random.randint(1, 230)
    profile = yaml.safe_load(profile_path.read_text())
    profile["robot"] = str((profile_path.parent / profile["robot"]).resolve())
    profile["transport"] = {"namespace": f"/s2s{domain}"}
    profile["plan"] = {**profile["plan"], "hover_s": hover_s}
    if excitation is not None:
        profile["plan"]["excitation"] = excitation
    profile["sil"] = {**profile.get("sil", {}), "seed": seed}
    if vehicle is not None:  # the project's SIL vehicle drawn from this spec (foreign vehicles are their own)
        profile["sil"]["randomization"] = str(vehicle.resolve())
    profile.pop("realtime_priority", None)  # several processes on a shared machine
    summary, code, stderr = deploy(sim, policy, profile, f"{tag}{sim}-{seed}", work, domain)
    unsafe = any("-> FALLBACK" in t or "-> ESTOP" in t for t in summary.get("transitions", []))
    crashed = code != 0 or summary.get("end") != "plan complete" or unsafe
    if crashed:
        log.warning("%s seed %d: exit %d, %s\n%s", sim, seed, code, summary.get("end"), stderr[-1500:])
    return {"returncode": code, "crashed": crashed, **summary}


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
        "fallbacks": sorted(
            {t for f in flights for t in f.get("transitions", []) if "-> FALLBACK" in t or "-> ESTOP" in t}
        ),
    }


def deploy(sim: str, policy: Path, profile: dict, name: str, work: Path, domain: int) -> tuple[dict, int, str]:
    """One ``sim2real deploy --sil --sil-robot sim`` of ``profile`` (a dict); -> (summary, exit code, stderr)."""
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(profile))
    cmd = [sys.executable, "sim2real.py", "deploy", "--sil", "--sil-robot", sim, "--profile", str(path)]
    cmd += ["--policy", str(policy), "--log", str(work / f"{name}.mcap")]
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "CYCLONEDDS_URI": LOOPBACK_CONFIG}
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    return (json.loads(out[out.index("{") :]) if "{" in out else {}), run.returncode, run.stderr


class PoseWatch:
    """Collects (base height m, tilt rad) from the SIL robot's ``state/pose`` (world frame; the legged runtime does
    not subscribe to it, so the run's log lacks it) on the run's domain, from a DDS reader of its own, while the
    runtime's newest joint command has a gain (``command/joints``): a robot the plan has disarmed at its end (motors
    off) lies down, which is not a fall."""

    def __init__(self, domain: int, namespace: str):
        from deploy.msgs import JointCommand, PoseStamped
        from deploy.transport import Ros2Node, TransportConfig

        self.poses: list[tuple[float, float]] = []
        self.powered = False
        table = TransportConfig.from_mapping({"namespace": namespace})
        topic, command = table.topic("pose"), table.topic("joint_command")
        self.node = Ros2Node("sim2sim_pose_watch", namespace=namespace, domain_id=domain, config=LOOPBACK_CONFIG)
        self.sub = self.node.subscription(topic.name, PoseStamped, topic.qos, callback=self._on_pose)
        self.command_sub = self.node.subscription(command.name, JointCommand, command.qos, callback=self._on_command)

    def _on_command(self, msg) -> None:
        self.powered = any(k > 0 for k in msg.kp)

    def _on_pose(self, msg) -> None:
        if not self.powered:
            return
        q, z = msg.pose.orientation, msg.pose.position.z
        up_z = 1.0 - 2.0 * (q.x * q.x + q.y * q.y)  # body z axis . world z
        self.poses.append((float(z), math.acos(max(-1.0, min(1.0, up_z)))))

    def close(self) -> None:
        self.node.close()


#: the base counts as up once above this x the profile's standing height (reset height; Kp 20 stands ~35 % lower)
UP_FRACTION = 0.55


def fell(poses: list[tuple[float, float]], stand_height_m: float, height_fraction: float, tilt_rad: float) -> str:
    """Why the base counts as fallen ('' if it did not): never stood (never above UP_FRACTION x the standing height,
    level within tilt_rad), or once up, it sank below height_fraction x the standing height or tilted beyond
    tilt_rad."""
    up = next((i for i, (z, tilt) in enumerate(poses) if z > UP_FRACTION * stand_height_m and tilt < tilt_rad), None)
    if up is None:
        return "never stood up"
    for z, tilt in poses[up:]:
        if z < height_fraction * stand_height_m:
            return f"base at {z:.3f} m"
        if tilt > tilt_rad:
            return f"base tilted {math.degrees(tilt):.0f} deg"
    return ""


def walk(sim: str, policy: Path, profile_path: Path, seed: int, args: argparse.Namespace, work: Path) -> dict:
    """One legged deploy run; -> the deploy summary plus exit code, fall flag and reason."""
    from sim.articulated.profile import load_profile

    domain = random.randint(1, 230)
    profile = yaml.safe_load(profile_path.read_text())
    robot = (profile_path.parent / profile["robot"]).resolve()
    profile["robot"] = str(robot)
    profile["transport"] = {"namespace": f"/s2s{domain}"}
    profile["plan"] = {**profile["plan"], "walk_s": args.walk_s}
    profile["sil"] = {**profile.get("sil", {}), "seed": seed}
    profile.pop("realtime_priority", None)
    profile.pop("recording", None)
    watch = PoseWatch(domain, profile["transport"]["namespace"])
    try:
        summary, code, stderr = deploy(sim, policy, profile, f"{sim}-{seed}", work, domain)
    finally:
        watch.close()
    stand_height = load_profile(robot).initial_base_height_m
    poses = list(watch.poses)
    why = fell(poses, stand_height, args.fall_height, math.radians(args.fall_tilt_deg))
    unsafe = [t for t in summary.get("transitions", []) if "-> FALLBACK" in t or "-> ESTOP" in t]
    if code != 0 or summary.get("end") != "plan complete" or unsafe:
        why = why or (unsafe[0] if unsafe else f"exit {code}, end {summary.get('end')}")
    if why:
        log.warning("%s seed %d fell: %s\n%s", sim, seed, why, stderr[-1500:])
    heights = [z for z, _ in poses]
    return {"returncode": code, "fell": bool(why), "fall": why, "base_height_m": heights[-1] if heights else None,
            "max_base_height_m": max(heights, default=None), **summary}  # fmt: skip


def aggregate_legged(runs: list[dict]) -> dict:
    errors = [r["tracking"]["walk_velocity_error_m_s"] for r in runs
              if (r.get("tracking") or {}).get("walk_velocity_error_m_s") is not None]  # fmt: skip
    return {
        "runs": len(runs),
        "falls": sum(r["fell"] for r in runs),
        "walk_velocity_error_m_s": {"mean": statistics.mean(errors), "max": max(errors)} if errors else None,
        "walk_velocity_error_m_s_each": [round(e, 4) for e in errors],
        "fall_reasons": [r["fall"] for r in runs if r["fell"]],
        "base_height_m_end_each": [None if r["base_height_m"] is None else round(r["base_height_m"], 3) for r in runs],
        "base_height_m_max_each": [
            None if r["max_base_height_m"] is None else round(r["max_base_height_m"], 3) for r in runs
        ],
        "deadline_misses_max": max((r["loop"]["deadline_misses"] for r in runs if "loop" in r), default=None),
        "ends": sorted({str(r.get("end")) for r in runs}),
    }


def main_legged(args: argparse.Namespace) -> int:
    profile = (args.profile or ROOT / "launch" / "sim_a1.yaml").resolve()
    sims = args.sims or ["sim", "pybullet"]
    result = {"policy": str(args.policy), "profile": str(profile), "walk_s": args.walk_s}
    with tempfile.TemporaryDirectory(prefix="sim2sim-legged-") as tmp:
        for sim in sims:
            runs = [walk(sim, args.policy, profile, seed, args, Path(tmp)) for seed in range(args.flights)]
            for seed, r in enumerate(runs):
                log.info("%s run %d: %s, fall %r", sim, seed, r.get("tracking"), r["fall"])
            result[sim] = aggregate_legged(runs)
    print(json.dumps(result, indent=2))
    return 0


def loop(args: argparse.Namespace, policy: Path, work: Path) -> dict:
    """--loop: per simulator, fly the policy, identify the vehicle from the first flight's log (``--excite``: from an
    extra flight of the same vehicle with the default doublets, whose hover RMS is not counted) and retrain on it
    (`sim2real sysid LOG --retrain`, which also says whether the new policy is never worse in simulation), fly the
    retrained policy on the same vehicles; hover RMS before and after."""
    out: dict = {}
    for sim in args.sims:
        before = [fly(sim, policy, args.profile.resolve(), seed, args.hover_s, work, args.sil_randomization, "before-")
                  for seed in range(args.flights)]  # fmt: skip
        identified_log = work / f"before-{sim}-0.mcap"
        if args.excite:  # one more flight of the first vehicle, with the doublets, for the identification only
            from deploy.runtime.excitation import Excitation

            hover_s = max(args.hover_s, Excitation().duration_s + 1.0)
            fly(sim, policy, args.profile.resolve(), 0, hover_s, work, args.sil_randomization, "excited-", {})
            identified_log = work / f"excited-{sim}-0.mcap"
        sysid_dir = work / f"sysid-{sim}"
        cmd = [sys.executable, "sim2real.py", "sysid", str(identified_log), "--out", str(sysid_dir),
               "--retrain", str(policy), "--retrain-seconds", str(args.retrain_seconds), "--json"]  # fmt: skip
        if args.cover is not None:
            cmd += ["--cover", str(args.cover)]
        if args.retrain_iterations is not None:
            cmd += ["--retrain-iterations", str(args.retrain_iterations)]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
        if run.returncode != 0:
            out[sim] = {"before": aggregate(before), "sysid_error": run.stderr[-2000:]}
            continue
        summary = json.loads(run.stdout)
        new = Path(summary["retrain"]["policy"])
        after = [fly(sim, new, args.profile.resolve(), seed, args.hover_s, work, args.sil_randomization, "after-")
                 for seed in range(args.flights)]  # fmt: skip
        b, a = aggregate(before), aggregate(after)
        gain = None
        if b["hover_rms_m"] and a["hover_rms_m"]:
            gain = 1.0 - a["hover_rms_m"]["median"] / b["hover_rms_m"]["median"]
        determined = [k for k, v in summary["identifiability"].items() if v["status"] == "determined"]
        out[sim] = {"before": b, "after": a, "hover_rms_improvement": gain, "determined": determined,
                    "latency_range": summary["latency"]["range"], "never_worse": summary["retrain"]}  # fmt: skip
        log.info("%s: hover RMS %s -> %s (%s)", sim, b["hover_rms_m"], a["hover_rms_m"], gain)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=None, help="default: tests/data/hover_policy.onnx (quadrotor)")
    ap.add_argument("--train", type=float, default=None, metavar="SECONDS", help="train + export a policy first")
    ap.add_argument(
        "--train-randomization",
        type=Path,
        default=None,
        help="--train with this spec (default: the task's; launch/randomization/crazyflie2_base.yaml is the ideal vehicle)",
    )
    ap.add_argument(
        "--train-iterations",
        type=int,
        default=None,
        help="--train: at most this many iterations (default: the training config's, 1500 for the hover task)",
    )
    ap.add_argument(
        "--sil-randomization",
        type=Path,
        default=None,
        help="the project's SIL vehicle ('sim') drawn "
        "from this spec, e.g. launch/randomization/crazyflie2_base.yaml (default: the task's)",
    )
    ap.add_argument("--flights", type=int, default=10)
    ap.add_argument("--sims", nargs="+", default=None, help="default: sim rotorpy drone_models; legged: sim pybullet")
    ap.add_argument("--profile", type=Path, default=None, help="default: launch/sim_quadrotor.yaml; legged: sim_a1")
    ap.add_argument("--hover-s", type=float, default=10.0)
    ap.add_argument("--legged", action="store_true", help="a walking policy on a legged profile")
    ap.add_argument("--walk-s", type=float, default=4.0, help="legged: the plan's walk time, s")
    ap.add_argument("--fall-height", type=float, default=0.4, help="legged: fall below this x standing height")
    ap.add_argument("--fall-tilt-deg", type=float, default=60.0, help="legged: fall beyond this base tilt")
    ap.add_argument(
        "--loop",
        action="store_true",
        help="fly, identify the vehicle from the first flight, retrain on it (sysid --retrain), fly again",
    )
    ap.add_argument("--retrain-seconds", type=float, default=300.0, help="--loop: training time of the retraining")
    ap.add_argument(
        "--retrain-iterations",
        type=int,
        default=None,
        help="--loop: at most this many iterations (default: the training config's, 1500 for hover, which ends a "
        "retraining after ~130 s here whatever --retrain-seconds says)",
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep logs, profiles and policies in this directory")
    ap.add_argument(
        "--cover",
        nargs="?",
        const="default",
        default=None,
        metavar="SPEC",
        help="--loop: retrain on the identified ranges joined with SPEC's (default: the task's; sysid --cover)",
    )
    ap.add_argument(
        "--excite", action="store_true", help="--loop: identify from an extra flight with the default doublets"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.legged:
        if args.policy is None or args.train:
            ap.error("--legged: give an exported walking policy with --policy (no --train)")
        return main_legged(args)
    args.policy = args.policy or ROOT / "tests" / "data" / "hover_policy.onnx"
    args.sims = args.sims or ["sim", "rotorpy", "drone_models"]
    args.profile = args.profile or ROOT / "launch" / "sim_quadrotor.yaml"
    with tempfile.TemporaryDirectory(prefix="sim2sim-") as tmp:
        work = Path(tmp) if args.keep is None else args.keep
        work.mkdir(parents=True, exist_ok=True)
        spec, its = args.train_randomization, args.train_iterations
        policy = train_and_export(args.train, work, spec, its) if args.train else args.policy
        trained = (
            f"trained {args.train:g} s" + (f" (<= {its} iterations)" if its else "") + (f" on {spec}" if spec else "")
            if args.train
            else str(policy)
        )
        result = {
            "policy": trained,
            "profile": str(args.profile),
            "sil_vehicle": str(args.sil_randomization or "the task's default randomization"),
        }
        result["hover_s"] = args.hover_s
        if args.loop:
            result["loop"] = loop(args, policy, work)
            print(json.dumps(result, indent=2))
            return 0
        for sim in args.sims:
            flights = []
            for seed in range(args.flights):
                flights.append(
                    fly(sim, policy, args.profile.resolve(), seed, args.hover_s, work, args.sil_randomization)
                )
                log.info("%s flight %d: %s", sim, seed, flights[-1].get("tracking"))
            result[sim] = aggregate(flights)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
