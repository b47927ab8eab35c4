"""``sim2real deploy``: run an exported policy on a robot described by a deploy profile, behind the safety
layer, recording everything. ``--sil`` starts the simulated robot as a separate process on the same ROS 2 domain
first: drivers/sim_robot.py for a quadrotor, drivers/sim_articulated_node.py for an arm or a legged robot (the
profile's ``robot_class`` picks the runtime: deploy/runtime.py or deploy/runtime_articulated.py). Torch-free
except for that separate process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("sim2real.deploy")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=Path, required=True, help="deploy profile YAML (e.g. launch/sim_quadrotor.yaml)")
    p.add_argument("--policy", type=Path, required=True, help="policy.onnx from `sim2real export`")
    p.add_argument("--sil", action="store_true", help="start the simulated robot (software-in-the-loop) first")
    p.add_argument(
        "--log", type=Path, default=None, help="MCAP file to write (default: <profile recording dir>/<time>.mcap)"
    )
    p.add_argument("--hover-s", type=float, default=None, help="override the plan's hover time, s")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deploy.profile import DeployProfileError, check_policy, load_deploy_profile
    from deploy.recording import FlightRecorder, RecorderError
    from deploy.runtime import QuadrotorRuntime
    from deploy.safety import SafetyLayer, SafetyState
    from deploy.transport import Ros2Node
    from policies.onnx_policy import PolicyFileError, load_policy

    try:
        profile = load_deploy_profile(args.profile)
        if args.hover_s is not None:
            if profile.articulated:
                raise DeployProfileError("--hover-s sets a quadrotor plan; set an articulated plan in the profile")
            profile.plan = replace(profile.plan, hover_s=args.hover_s)
        policy = load_policy(args.policy)
        check_policy(profile, policy, policy.profile_hash)
    except (DeployProfileError, PolicyFileError, ValueError) as exc:
        log.error("refusing to deploy: %s", exc)
        return 2
    if profile.articulated:
        return run_articulated(args, profile, policy)
    log_path = args.log or profile.recording_dir / time.strftime("%Y%m%d-%H%M%S.mcap")
    meta = {
        "sim2real": {
            "policy": str(args.policy),
            "profile": profile.name,
            "robot_hash": profile.robot_hash,
            "policy_git_commit": policy.git_commit,
            "observation_spec": policy.obs_spec.to_json(),
            "action_spec": policy.action_spec.to_json(),
        }
    }
    try:
        recorder = FlightRecorder(log_path, metadata=meta)
    except RecorderError as exc:
        log.error("refusing to arm: the flight cannot be recorded: %s", exc)
        return 2
    robot = None
    try:
        if args.sil:
            seconds = profile.plan.duration_s + 30.0
            cmd = [
                sys.executable,
                "-m",
                "drivers.sim_robot",
                "--seconds",
                str(seconds),
                "--rate",
                str(profile.control_hz),
            ]
            cmd += [
                "--seed",
                str(profile.sil.get("seed", 0)),
                "--start-height",
                str(profile.sil.get("start_height_m", 0.0)),
            ]
            robot = subprocess.Popen(cmd, env=dict(os.environ), cwd=Path(__file__).resolve().parents[1])
        with Ros2Node("deploy", namespace=profile.transport.namespace) as node:
            runtime = QuadrotorRuntime(
                policy,
                node,
                profile.transport,
                SafetyLayer(profile.safety),
                recorder,
                profile.plan,
                profile.realtime_priority,
            )
            if not runtime.pose_sub.wait_for_publishers(1, timeout_s=30.0):
                log.error("no robot publishes %s on ROS_DOMAIN_ID %d", runtime.pose_sub.topic, node.domain_id)
                return 1
            stats = runtime.fly(timeout_s=20.0)
    finally:
        recorder.close()
        if robot is not None:
            robot.kill()
            robot.wait(timeout=10)
    transitions = [str(t) for t in runtime.safety.transitions]
    errors = [
        e for t, e in runtime.errors if profile.plan.climb_s + 1.0 < t < profile.plan.climb_s + profile.plan.hover_s
    ]
    summary = {
        "log": str(log_path),
        "transitions": transitions,
        "hover_rms_m": (sum(e * e for e in errors) / len(errors)) ** 0.5 if errors else None,
        "loop": stats.summary(),
    }
    print(json.dumps(summary, indent=2))
    failed = any(t.to_state in (SafetyState.FALLBACK, SafetyState.ESTOP) for t in runtime.safety.transitions)
    return 1 if failed else 0


SIL_TASKS = {"legged": "legged-walk", "arm": "arm-reach"}  # the task whose simulated robot stands in


def run_articulated(args: argparse.Namespace, profile, policy) -> int:
    """``sim2real deploy`` for an arm or a legged robot (profile and policy already checked)."""
    from deploy.articulated_wire import JointStateError
    from deploy.recording import FlightRecorder, RecorderError
    from deploy.runtime_articulated import ArticulatedRuntime
    from deploy.safety import SafetyLayer, SafetyState
    from deploy.transport import Ros2Node

    log_path = args.log or profile.recording_dir / time.strftime("%Y%m%d-%H%M%S.mcap")
    meta = {
        "sim2real": {
            "policy": str(args.policy),
            "profile": profile.name,
            "robot_class": profile.robot_class,
            "robot_hash": profile.robot_hash,
            "policy_git_commit": policy.git_commit,
            "observation_spec": policy.obs_spec.to_json(),
            "action_spec": policy.action_spec.to_json(),
        }
    }
    try:
        recorder = FlightRecorder(log_path, topics=profile.transport, metadata=meta)
    except RecorderError as exc:
        log.error("refusing to arm: the run cannot be recorded: %s", exc)
        return 2
    robot = None
    runtime = None
    try:
        if args.sil:
            sil = profile.sil
            cmd = [sys.executable, "-m", "drivers.sim_articulated_node", "--task", SIL_TASKS[profile.robot_class]]
            cmd += ["--seconds", str(profile.plan.duration_s + 40.0), "--seed", str(sil.get("seed", 0))]
            cmd += ["--namespace", profile.transport.namespace]
            if profile.robot_file is not None:
                cmd += ["--robot", str(profile.robot_file)]
            if "start_joint_position_rad" in sil:
                cmd += ["--start-pose", ",".join(str(float(v)) for v in sil["start_joint_position_rad"])]
            if "start_height_m" in sil:
                cmd += ["--start-height", str(float(sil["start_height_m"]))]
            robot = subprocess.Popen(cmd, env=dict(os.environ), cwd=Path(__file__).resolve().parents[1])
        with Ros2Node("deploy", namespace=profile.transport.namespace) as node:
            runtime = ArticulatedRuntime(
                policy,
                node,
                profile.transport,
                SafetyLayer(profile.safety),
                profile.robot.joints.default_position_rad,
                profile.robot_class,
                recorder,
                profile.plan,
                profile.realtime_priority,
            )
            if not runtime.joints_sub.wait_for_publishers(1, timeout_s=60.0):
                log.error("no robot publishes %s on ROS_DOMAIN_ID %d", runtime.joints_sub.topic, node.domain_id)
                return 1
            stats = runtime.run(timeout_s=30.0)
    except (JointStateError, RuntimeError) as exc:
        log.error("refusing to arm: %s", exc)
        return 2
    finally:
        recorder.close()
        if robot is not None:
            robot.kill()
            robot.wait(timeout=10)
    summary = {
        "log": str(log_path),
        "transitions": [str(t) for t in runtime.safety.transitions],
        "tracking": runtime.summary(),
        "loop": stats.summary(),
    }
    print(json.dumps(summary, indent=2))
    failed = any(t.to_state in (SafetyState.FALLBACK, SafetyState.ESTOP) for t in runtime.safety.transitions)
    return 1 if failed else 0
