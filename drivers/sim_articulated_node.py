"""The simulated arm or legged robot on the wire, for software-in-the-loop.

A separate process runs :class:`drivers.sim_articulated.SimulatedArticulatedRobot` (one env of the task, with
its own randomized parameters and actuator model) in real time at the profile's control rate, and speaks the
topics of :mod:`deploy.articulated_wire`: it publishes ``state/joints`` (JointState, with the motor torques as
effort), for a legged robot ``state/imu`` (base orientation, gyro) and, as motion capture would,
``state/pose`` / ``state/twist`` (base), for an arm ``state/pose`` (the end effector in the base frame), all
stamped in ROS time (the system clock), as a ROS 2 driver stamps. It applies the
``command/joints`` JointCommands it receives, joints by name:

    gains not all zero      arm the motors, PD to the targets with the command's kp, kd (kp 0, kd > 0: damping)
    all gains zero          a legged robot's motors go limp (zero torque); an arm's brakes hold it where it is
    no command for          the robot's own fallback, as motor drivers do when their stream stops: damping
      command_timeout_s     (legged), hold the position (arm)

Before its first command a legged robot lies on the ground (``--start-pose`` / ``--start-height``, or it is
dropped from the task's standing start) and an arm is held by its brakes.

For tests of the safety layer, the String topic ``sim/inject`` (not part of any hardware interface) takes
``tip_over`` (roll the base onto its side), ``displace <joint> <rad>`` (move one joint, even beyond its limits)
and ``reset`` (start again, as at launch).

    python -m drivers.sim_articulated_node --task legged-walk --seconds 60 [--seed 0] [--namespace /sim2real]

Like :mod:`drivers.sim_robot` this module imports the simulator (and torch).
"""

from __future__ import annotations

import argparse
import logging
import math
import queue
import time

import numpy as np
import torch

from deploy.articulated_wire import (
    JointOrder,
    JointStateError,
    imu_msg,
    joint_state_msg,
    pose_msg,
    twist_msg,
)
from deploy.loop import FixedRateLoop
from deploy.msgs import JointCommand, String
from deploy.transport import Ros2Node, TransportConfig, resolve_topic_name
from drivers.sim_articulated import SimulatedArticulatedRobot
from drivers.vehicle import LatestCommand, VehicleFilter, default_vehicle_id
from sim.articulated.profile import load_profile
from sim.robot_variants import RobotVariantError
from sim.tasks import task_cfg, task_entry

log = logging.getLogger("sim2real.sim_articulated")
INJECT_TOPIC = "sim/inject"


class ArticulatedNode:
    """One simulated articulated robot behind its wire protocol. Call :meth:`step` once per control period."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        robot: SimulatedArticulatedRobot,
        command_timeout_s: float = 0.5,
        start_pose: np.ndarray | None = None,
        start_height_m: float | None = None,
        vehicle_id: str | None = None,
    ):
        self.robot, self.profile = robot, robot.profile
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.legged = self.profile.robot_class == "legged"
        self.names = self.profile.joints.names
        self.order = JointOrder(self.names)
        self.command_timeout_s = command_timeout_s
        self.start_pose, self.start_height_m = start_pose, start_height_m
        pub = {key: transport.topic(key) for key in ("joint_states", "imu", "pose", "twist", "status")}
        self.pubs = {key: node.publisher(t.name, t.msg_type, t.qos) for key, t in pub.items()}
        cmd = transport.topic("joint_command")
        self.commands = LatestCommand(self.vehicle)
        self._injected: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.command_sub = node.subscription(cmd.name, JointCommand, cmd.qos, callback=self.commands.on_message)
        inject = resolve_topic_name(INJECT_TOPIC, transport.namespace)
        self.inject_sub = node.subscription(inject, String, "default", callback=self._on_inject)
        self.mode = "off"  # off (limp / braked) | command | fallback
        self.steps = 0
        self._start()

    # ------------------------------------------------------------------ wire callbacks (DDS threads)
    def _on_inject(self, msg: String) -> None:
        self._injected.put(msg.data)

    # ------------------------------------------------------------------ the loop
    def _start(self) -> None:
        """Launch state: a legged robot placed in its start pose (motors limp); an arm held by its brakes."""
        robot = self.robot
        robot.reset()
        if self.legged and self.start_pose is not None:
            engine = robot.env.engine
            qpos, qvel = engine.qpos[:1].clone(), torch.zeros_like(engine.qvel[:1])
            qpos[0, robot.env.qadr] = torch.as_tensor(self.start_pose, dtype=qpos.dtype)
            if self.start_height_m is not None:
                qpos[0, 2] = self.start_height_m
            engine.set_state(torch.tensor([0]), qpos, qvel)
        self._off()
        self.commands.clear()

    def _off(self) -> None:
        if self.legged:
            self.robot.disarm()  # zero torque
        else:
            self.robot.arm()
            self.robot.fallback()  # the brakes: hold where it is
        self.mode = "off"

    def _inject(self, text: str) -> None:
        words = text.split()
        try:
            if words == ["tip_over"]:
                self.robot.tip_over()
            elif len(words) == 3 and words[0] == "displace":
                self.robot.displace_joint(words[1], float(words[2]))
            elif words == ["reset"]:
                self._start()
            else:
                raise ValueError("expected 'tip_over', 'displace <joint> <rad>' or 'reset'")
        except ValueError as exc:
            log.warning("ignoring injection %r: %s", text, exc)
            return
        log.info("injected %r", text)

    def _apply_command(self, now: float) -> None:
        msg, age = self.commands.take(now)
        if msg is None:
            return
        if age > self.command_timeout_s:
            if self.mode == "command":
                log.warning("no joint command for %.2f s: the robot's own fallback", age)
                self.robot.fallback()
                self.mode = "fallback"
            return
        try:
            q, kp, kd = self.order.command(msg)
        except JointStateError as exc:
            log.warning("ignoring a joint command: %s", exc)
            return
        if not (np.all(np.isfinite(kp)) and np.all(np.isfinite(kd)) and np.all(kp >= 0) and np.all(kd >= 0)):
            log.warning("ignoring a joint command with gains that are not finite and >= 0")
            return
        if not np.any(kp) and not np.any(kd):
            if self.mode != "off":
                self._off()
            return
        if self.mode != "command":
            self.robot.arm()
            self.mode = "command"
        self.robot.send_command(q, kp, kd)

    def step(self, now: float | None = None) -> None:
        """Apply the newest command, advance one control period, publish the state."""
        now = time.monotonic() if now is None else now
        while not self._injected.empty():
            self._inject(self._injected.get())
        self._apply_command(now)
        self.robot.step()
        self.steps += 1
        self._publish(time.time_ns())  # ROS time (the system clock), as a ROS 2 driver stamps

    def _publish(self, stamp_ns: int) -> None:
        s = self.robot.read_state()
        pubs = self.pubs
        pubs["joint_states"].publish(
            joint_state_msg(self.names, s.joint_position, s.joint_velocity, self.robot.joint_torque(), stamp_ns)
        )
        if self.legged:
            pubs["imu"].publish(imu_msg(s.quaternion, s.angular_velocity, stamp_ns))
            pubs["pose"].publish(pose_msg(s.position, s.quaternion, stamp_ns, "world"))
            pubs["twist"].publish(twist_msg(s.quaternion, s.linear_velocity, s.angular_velocity, stamp_ns))
        else:
            pubs["pose"].publish(pose_msg(s.position, s.quaternion, stamp_ns, self.profile.bodies.base))


def _floats(text: str | None) -> np.ndarray | None:
    return None if text is None else np.array([float(v) for v in text.split(",")])


def _robot_cfg(task: str, robot: str | None):
    """The task's config for ``robot`` with its variant's ``env:`` overrides (launch/tasks/<task>/<robot>.yaml: the
    simulated robot is the one the policy was trained on); a robot without a variant of the task gets its profile
    alone, with a log line. None: the task's defaults."""
    if robot is None:
        return None
    try:
        return task_cfg(task, robot)
    except RobotVariantError as exc:
        log.info("no %s variant of robot %s (%s): its profile with the task's defaults", task, robot, exc)
        cfg = task_entry(task).make_cfg()
        cfg.params = load_profile(robot)
        return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.sim_articulated_node", description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="legged-walk", help="legged-walk | arm-reach (the robot is the task's)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0, help="draws this robot's randomized parameters")
    ap.add_argument("--robot", default=None, help="robot profile YAML (default: the task's robot)")
    ap.add_argument("--namespace", default=None, help="ROS 2 namespace of the topics (default: the transport table's)")
    ap.add_argument("--command-timeout", type=float, default=0.5, help="s without commands before the fallback")
    ap.add_argument("--start-pose", default=None, help="legged: joint positions at launch, rad, comma-separated")
    ap.add_argument("--start-height", type=float, default=None, help="legged: base height at launch, m")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this robot (default: the namespace)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    transport = TransportConfig.from_mapping({"namespace": args.namespace} if args.namespace else None)
    robot = SimulatedArticulatedRobot(args.task, seed=args.seed, cfg=_robot_cfg(args.task, args.robot))
    start_pose = _floats(args.start_pose)
    if start_pose is not None and start_pose.shape != (robot.profile.joints.dim,):
        ap.error(f"--start-pose: expected {robot.profile.joints.dim} values, got {start_pose.size}")
    rate = robot.profile.control_hz
    with Ros2Node("sim_articulated", namespace=transport.namespace) as node:
        sim = ArticulatedNode(
            node, transport, robot, args.command_timeout, start_pose, args.start_height, args.vehicle_id
        )
        sim.pubs["status"].publish(String(f"sim_articulated {robot.profile.name} ready"))
        log.info(
            "simulated %s (%s) on domain %d, %g Hz, for %g s",
            robot.profile.name,
            args.task,
            node.domain_id,
            rate,
            args.seconds,
        )
        stats = FixedRateLoop(rate).run(sim.step, duration_s=args.seconds if math.isfinite(args.seconds) else 1e9)
        log.info("done: %s", stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
