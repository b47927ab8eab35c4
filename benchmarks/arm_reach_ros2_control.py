"""Arm reach through the ros2_control bridge in software-in-the-loop: success rate over N end-effector targets.

Four processes on one DDS domain (loopback): drivers.sim_ros2_control (the simulated Franka behind a
forward_command or joint_trajectory controller's topics), drivers.ros2_control_bridge, a scripted operator, and
``sim2real deploy --profile launch/ros2_control_franka.yaml`` with the plan's targets replaced by N targets drawn
(seeded) from arm-reach's training box (x 0.3-0.55, y -0.2-0.2, z 0.3-0.6 m, gripper down turned by a yaw in
+-0.5 rad). A target counts as reached when the end effector is within ``--tolerance-m`` (2 cm, the task's
success radius) at the end of its hold (the runtime's ``final_ee_error_m``). The safety layer slews the joint
targets (``target_max_rate_rad_s``) as arm-reach trains (sim/articulated/tasks/arm_reach.py
``ArmReachEnv.target_rate``, from the robot profile's limits and gains), so the deployed policy meets the slew it
learned with; ``--layer-default-slew`` leaves the layer's default (the velocity limits).

    python benchmarks/arm_reach_ros2_control.py --policy arm_policy.onnx [--targets 20] [--hold-s 3]
        [--kind forward_command|joint_trajectory] [--seed 0]

prints one JSON line: {"kind", "targets", "reached", "success_rate", "errors_m", "median_error_m", "end",
"max_joint_speed_rad_s" (per joint, from the run's recorded joint states), "max_joint_speed_ratio" (of the robot
profile's velocity limits, which the safety layer's check trips above 1.0), ...}.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROBOT = ROOT / "launch" / "robots" / "franka.yaml"
BRIDGE_CONFIGS = {
    "forward_command": ROOT / "launch" / "ros2_control_franka_bridge.yaml",
    "joint_trajectory": ROOT / "launch" / "ros2_control_franka_trajectory_bridge.yaml",
}


def targets(n: int, seed: int, hold_s: float) -> list[dict]:
    """N targets in arm-reach's box, gripper down (w, x, y, z = 0, 1, 0, 0) turned about z by a yaw."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = [rng.uniform(0.3, 0.55), rng.uniform(-0.2, 0.2), rng.uniform(0.3, 0.6)]
        yaw = rng.uniform(-0.5, 0.5)
        q = [0.0, math.cos(yaw / 2), -math.sin(yaw / 2), 0.0]  # Rz(yaw) * (0, 1, 0, 0)
        out.append({"position_m": [round(v, 4) for v in p], "orientation_wxyz": q, "hold_s": hold_s})
    return out


def training_slew() -> list[float]:
    """(J,) rad/s: the joint-target slew arm-reach trains with, for the robot profile."""
    from sim.articulated.profile import load_profile
    from sim.articulated.tasks.arm_reach import ArmReachEnv, JointSpeedCfg

    return [round(float(v), 6) for v in ArmReachEnv.target_rate(JointSpeedCfg(), load_profile(ROBOT))]


def write_profile(
    directory: Path, plan_targets: list[dict], max_state_age_s: float, slew: list[float] | None = None
) -> Path:
    data = yaml.safe_load((ROOT / "launch" / "ros2_control_franka.yaml").read_text())
    data["robot"] = str(ROBOT)
    data["plan"] = {"move_s": 2.0, "targets": plan_targets}
    data["recording"] = {"directory": str(directory)}
    data["safety"] = {"common": {"max_state_age_s": max_state_age_s}}
    if slew is not None:
        data["safety"]["joints"] = {"target_max_rate_rad_s": slew}
    data.pop("realtime_priority", None)
    path = directory / "ros2_control_franka.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_reach(
    policy: Path,
    plan_targets: list[dict],
    kind: str = "forward_command",
    seed: int = 3,
    max_state_age_s: float = 1.0,
    workdir: Path | None = None,
    slew: list[float] | None = None,
) -> dict:
    """The deploy run's JSON summary (plus ``returncode`` and the bridge's log tail) for the targets."""
    from deploy.transport import LOOPBACK_CONFIG

    workdir = Path(workdir or tempfile.mkdtemp(prefix="arm_reach_"))
    domain = random.randint(1, 230)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    profile = write_profile(workdir, plan_targets, max_state_age_s, slew)
    seconds = 2.0 + sum(t["hold_s"] for t in plan_targets) + 60.0
    config = str(BRIDGE_CONFIGS[kind])
    py = sys.executable
    procs = [
        subprocess.Popen([py, "-m", "drivers.sim_ros2_control", "--config", config, "--seconds", str(seconds),
                          "--seed", str(seed)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([py, "-m", "drivers.ros2_control_bridge", "--config", config, "--seconds", str(seconds)],
                         cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([py, "-m", "deploy.operator", "--namespace", "/sim2real", "--script", "arm@0"], cwd=ROOT,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    cmd = [py, "sim2real.py", "deploy", "--profile", str(profile), "--policy", str(policy)]
    cmd += ["--operator", "external", "--log", str(workdir / "run.mcap")]
    try:
        run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        for p in procs:
            p.terminate()
        tails = [p.communicate(timeout=10)[1] or "" for p in procs]
    out = run.stdout
    summary = json.loads(out[out.index("{") :]) if "{" in out else {}
    summary["returncode"] = run.returncode
    summary["stderr_tail"] = run.stderr[-1500:]
    summary["sim_tail"], summary["bridge_tail"] = tails[0][-1500:], tails[1][-1500:]
    return summary


def joint_speeds(log_path: Path, names: list[str]) -> np.ndarray | None:
    """(J,) the largest |velocity| (rad/s) per joint (``names`` order) over the run's recorded joint states."""
    from deploy.articulated_wire import JointOrder
    from deploy.recording.reader import read_log

    if not log_path.exists():
        return None
    order, peak = JointOrder(names), np.zeros(len(names))
    for m in read_log(log_path).messages:
        if m.topic.endswith("state/joints") and m.msg is not None:
            _, qd, _ = order.state(m.msg)
            peak = np.maximum(peak, np.abs(qd))
    return peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, required=True, help="an exported arm-reach policy.onnx")
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--hold-s", type=float, default=3.0)
    ap.add_argument("--kind", choices=sorted(BRIDGE_CONFIGS), default="forward_command")
    ap.add_argument("--seed", type=int, default=0, help="draws the targets")
    ap.add_argument("--robot-seed", type=int, default=3, help="draws the simulated arm's randomized parameters")
    ap.add_argument("--tolerance-m", type=float, default=0.02)
    ap.add_argument("--max-state-age-s", type=float, default=1.0, help="the watchdog (2 busy vCPUs: 1 s)")
    ap.add_argument(
        "--layer-default-slew",
        action="store_true",
        help="leave the safety layer's joint-target slew at its default (the velocity limits), not arm-reach's",
    )
    args = ap.parse_args(argv)
    slew = None if args.layer_default_slew else training_slew()
    plan_targets = targets(args.targets, args.seed, args.hold_s)
    workdir = Path(tempfile.mkdtemp(prefix="arm_reach_"))
    s = run_reach(args.policy, plan_targets, args.kind, args.robot_seed, args.max_state_age_s, workdir, slew)
    from sim.articulated.profile import load_profile

    joints = load_profile(ROBOT).joints
    speeds = joint_speeds(workdir / "run.mcap", list(joints.names))
    errors = list((s.get("tracking") or {}).get("final_ee_error_m", {}).values())
    reached = sum(e < args.tolerance_m for e in errors)
    result = {
        "kind": args.kind,
        "target_max_rate_rad_s": slew,
        "targets": args.targets,
        "targets_run": len(errors),
        "reached": reached,
        "success_rate": reached / args.targets,
        "tolerance_m": args.tolerance_m,
        "errors_m": [round(e, 4) for e in errors],
        "median_error_m": float(np.median(errors)) if errors else None,
        "end": s.get("end"),
        "transitions": s.get("transitions"),
        "deadline_misses": (s.get("loop") or {}).get("deadline_misses"),
        "returncode": s["returncode"],
        "max_joint_speed_rad_s": None if speeds is None else [round(float(v), 3) for v in speeds],
        "max_joint_speed_ratio": None
        if speeds is None
        else round(float(np.max(speeds / joints.velocity_limit_rad_s)), 3),
    }
    if s["returncode"] != 0 or s.get("end") != "plan complete":
        logging.warning("deploy: %s\n%s", s.get("end"), s["stderr_tail"])
    print(json.dumps(result))
    return 0 if errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
