"""``sim2real deploy``: run an exported policy on a robot described by a deploy profile, behind the safety
layer, recording everything. One path for every robot class (deploy/runtime/: one runtime, one adapter per
class). The operator is a separate process (``sim2real operator``); without one nothing arms.

``--sil`` starts the simulated robot as a separate process on the profile's ROS 2 domain and namespace first
(drivers/sim_robot.py for a quadrotor, drivers/sim_articulated_node.py for an arm or a legged robot) and a
scripted operator (``python -m deploy.operator --script arm@0``) unless ``--operator external``. ``--sil-robot``
(or the profile's ``sil: {robot: ...}``) puts a quadrotor of another simulator in its place (drivers/foreign_sil,
docs/sim2sim.md). Every child is ended with the deploy process, also when it is killed (PR_SET_PDEATHSIG).
Torch-free except for the simulated robot's process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("sim2real.deploy")
ROOT = Path(__file__).resolve().parents[1]
SIL_MODULES = {
    "quadrotor": "drivers.sim_robot",
    "legged": "drivers.sim_articulated_node",
    "arm": "drivers.sim_articulated_node",
}


def _sil_tasks() -> dict[str, str]:
    """Robot class -> the task whose simulated robot stands in: the first task registered for the class
    (``sim.tasks``, torch-free)."""
    from sim.tasks import tasks_for

    return {cls: tasks_for(cls)[0] for cls in ("legged", "arm") if tasks_for(cls)}


SIL_TASKS = _sil_tasks()

#: robot class -> {SIL robot: module} for --sil-robot: other simulators (docs/sim2sim.md), and the project's simulated
#: Go2 behind Unitree's own wire protocol with the bridge (drivers/sim_unitree.py, docs/unitree.md)
FOREIGN_SIL = {
    "quadrotor": {"rotorpy": "drivers.foreign_sil", "drone_models": "drivers.foreign_sil"},
    "legged": {"pybullet": "drivers.foreign_sil.pybullet_legged", "unitree": "drivers.sim_unitree"},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=Path, required=True, help="deploy profile YAML (e.g. launch/sim_quadrotor.yaml)")
    p.add_argument("--policy", type=Path, required=True, help="policy.onnx from `sim2real export`")
    p.add_argument("--sil", action="store_true", help="start the simulated robot (software-in-the-loop) first")
    p.add_argument(
        "--sil-robot",
        default=None,
        help="--sil: 'sim' (the project's simulator, default) or a foreign one (quadrotor: rotorpy, drone_models; "
        "legged: pybullet; docs/sim2sim.md) or the simulated Go2 behind the Unitree bridge (legged: unitree; "
        "docs/unitree.md); overrides the profile's sil: {robot: ...}",
    )
    p.add_argument(
        "--operator",
        choices=("scripted", "external"),
        default=None,
        help="scripted: start a scripted operator that arms at once (the --sil default); external: wait for "
        "`sim2real operator` (the only choice without --sil)",
    )
    p.add_argument(
        "--log", type=Path, default=None, help="MCAP file to write (default: <profile recording dir>/<time>.mcap)"
    )
    p.add_argument("--hover-s", type=float, default=None, help="override the plan's hover time, s (quadrotor)")
    p.add_argument("--arm-timeout-s", type=float, default=30.0, help="how long arming may take once asked for, s")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the deploy process dies, however it dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(cmd: list[str], profile) -> subprocess.Popen:
    """A child process on the profile's ROS 2 domain that ends with this one."""
    env = dict(os.environ)
    if profile.transport.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(profile.transport.domain_id)
    return subprocess.Popen(cmd, env=env, cwd=ROOT, preexec_fn=_die_with_parent)


def sil_command(profile, robot: str | None = None) -> list[str]:
    """The simulated robot of the profile's class, on the profile's namespace, for the profile's vehicle; for a
    quadrotor or legged robot ``robot`` (else the profile's ``sil: {robot: ...}``) may name a foreign simulator."""
    sil, cls = profile.sil, profile.robot_class
    robot = robot or sil.get("robot", "sim")
    foreign = FOREIGN_SIL.get(cls, {})
    if robot != "sim" and robot not in foreign:
        raise ValueError(
            f"no foreign SIL robot {robot!r} for robot class {cls!r}; expected 'sim' or one of {sorted(foreign)}"
        )
    module = SIL_MODULES[cls] if robot == "sim" else foreign[robot]
    cmd = [sys.executable, "-m", module, "--seconds", str(profile.plan.duration_s + 120.0)]
    if robot != "sim" and cls == "quadrotor":
        cmd += ["--sim", robot, *(["--robot", str(profile.robot_file)] if profile.robot_file else [])]
    cmd += ["--seed", str(sil.get("seed", 0)), "--namespace", profile.transport.namespace]
    cmd += ["--vehicle-id", profile.vehicle_id]
    if cls == "quadrotor":
        cmd += ["--rate", str(profile.control_hz), "--start-height", str(sil.get("start_height_m", 0.0))]
        if robot == "sim" and "randomization" in sil:  # the simulated vehicle's spec (imperfections, ...)
            cmd += ["--randomization", str(sil["randomization"])]
        return [*cmd, "--interface", profile.action_interface]
    if robot == "sim":
        cmd += ["--task", SIL_TASKS[cls]]
    if profile.robot_file is not None:
        cmd += ["--robot", str(profile.robot_file)]
    if "start_joint_position_rad" in sil:
        cmd += ["--start-pose", ",".join(str(float(v)) for v in sil["start_joint_position_rad"])]
    if "start_height_m" in sil:
        cmd += ["--start-height", str(float(sil["start_height_m"]))]
    if robot == "unitree":  # the simulator's base velocity for the runtime's walk score, as the other SIL robots
        cmd += ["--truth-twist"]
    return cmd


def _load(args: argparse.Namespace):
    """Profile and policy, every field checked before anything starts; raises DeployProfileError et al."""
    from dataclasses import replace

    from deploy.profile import DeployProfileError, check_plan, check_policy, load_deploy_profile
    from policies.onnx_policy import load_policy

    profile = load_deploy_profile(args.profile)
    if args.hover_s is not None:
        if profile.articulated:
            raise DeployProfileError("--hover-s sets a quadrotor plan; set an articulated plan in the profile")
        profile.plan = replace(profile.plan, hover_s=args.hover_s)
    if args.arm_timeout_s <= 0:
        raise DeployProfileError(f"--arm-timeout-s: expected seconds > 0, got {args.arm_timeout_s}")
    operator = args.operator or ("scripted" if args.sil else "external")
    if operator == "scripted" and not args.sil:
        raise DeployProfileError("--operator scripted is for --sil only: a real robot needs a person at the controls")
    if args.sil_robot is not None and not args.sil:
        raise DeployProfileError("--sil-robot picks the simulated robot of --sil; without --sil there is none")
    sil_robot = args.sil_robot or profile.sil.get("robot", "sim")
    foreign = FOREIGN_SIL.get(profile.robot_class, {})
    if args.sil and sil_robot != "sim" and sil_robot not in foreign:
        raise DeployProfileError(
            f"sil robot {sil_robot!r}: expected 'sim' or a foreign SIL robot of a {profile.robot_class} profile "
            f"({sorted(foreign) or 'none'})"
        )
    check_plan(profile, start_height_m=float(profile.sil.get("start_height_m", 0.0)) if args.sil else 0.0)
    policy = load_policy(args.policy)
    check_policy(profile, policy, policy.profile_hash)
    return profile, policy, operator


def run(args: argparse.Namespace) -> int:
    from deploy.operator import OperatorLink
    from deploy.profile import DeployProfileError
    from deploy.recording import FlightRecorder, RecorderError
    from deploy.runtime import Runtime, adapter_for
    from deploy.safety import SafetyLayer, SafetyState
    from deploy.transport import Ros2Node, TransportError
    from policies.onnx_policy import PolicyFileError

    try:
        profile, policy, operator = _load(args)
    except (DeployProfileError, PolicyFileError, TransportError, ValueError) as exc:
        log.error("refusing to deploy: %s", exc)
        return 2
    log_path = args.log or profile.recording_dir / time.strftime("%Y%m%d-%H%M%S.mcap")
    meta = {
        "sim2real": {
            "policy": str(args.policy),
            "profile": profile.name,
            "robot_class": profile.robot_class,
            "robot_hash": profile.robot_hash,
            "vehicle_id": profile.vehicle_id,
            "policy_git_commit": policy.git_commit,
            "policy_digest": policy.digest,
            "observation_spec": policy.obs_spec.to_json(),
            "action_spec": policy.action_spec.to_json(),
        }
    }
    try:
        recorder = FlightRecorder(log_path, topics=profile.transport, metadata=meta)
    except RecorderError as exc:
        log.error("refusing to arm: the run cannot be recorded: %s", exc)
        return 2
    children: list[subprocess.Popen] = []
    runtime = stats = None
    try:
        if args.sil:
            children.append(spawn(sil_command(profile, args.sil_robot), profile))
        if operator == "scripted":
            script = [sys.executable, "-m", "deploy.operator", "--profile", str(args.profile), "--script", "arm@0"]
            children.append(spawn(script, profile))
        with Ros2Node("deploy", namespace=profile.transport.namespace, domain_id=profile.transport.domain_id) as node:
            adapter = adapter_for(profile, policy, node)
            runtime = Runtime(
                adapter,
                policy,
                node,
                profile.transport,
                SafetyLayer(profile.safety),
                recorder,
                operator=OperatorLink(node, profile.transport),
                vehicle_id=profile.vehicle_id,
                realtime_priority=profile.realtime_priority,
            )
            primary = next(iter(adapter.inputs.values()))
            if not primary.wait_for_publishers(1, timeout_s=60.0):
                log.error("no robot publishes %s on ROS_DOMAIN_ID %d", primary.topic, node.domain_id)
                return 1
            if operator == "external":
                log.info("waiting for the operator: run `sim2real operator --profile %s` and press 'a'", args.profile)
            stats = runtime.run(timeout_s=args.arm_timeout_s)
    except RuntimeError as exc:
        log.error("refusing to arm: %s", exc)
        return 2
    finally:
        try:
            recorder.close()
        except RecorderError as exc:
            log.error("the log could not be closed cleanly: %s", exc)
        for child in children:
            _end(child)
    summary = {
        "log": str(log_path),
        "transitions": [str(t) for t in runtime.safety.transitions],
        **runtime.summary(),
        "loop": stats.summary(),
    }
    print(json.dumps(summary, indent=2))
    failed = any(t.to_state in (SafetyState.FALLBACK, SafetyState.ESTOP) for t in runtime.safety.transitions)
    return 1 if failed or runtime.recorder_error else 0


def _end(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)
