"""A stand-in for a ros2_control robot, for software-in-the-loop: the project's simulated arm behind a controller's
topics (no ROS 2 installation needed; the same DDS names, types and QoS).

    python -m drivers.sim_ros2_control --config launch/ros2_control_franka_bridge.yaml [--seconds 60] [--seed 0]

One env of ``arm-reach`` (:class:`drivers.sim_articulated.SimulatedArticulatedRobot`: the task's robot, its
randomized parameters and actuator model) runs in real time at the profile's control rate. Like ros2_control with
a position command interface on a joint-impedance robot, the motors are on from the start, holding the launch
pose with the profile's gains, and:

- ``forward_command``: subscribes ``/<controller>/commands`` (Float64MultiArray); ``data`` (one position per
  controller joint, rad) becomes the target at once and holds until the next one. A message of another length,
  or with a non-finite value, is ignored with an error, as forward_command_controller does.
- ``joint_trajectory``: subscribes ``/<controller>/joint_trajectory`` (JointTrajectory); the target moves
  linearly from where it was to the last point's positions over its ``time_from_start`` (joints by name; a
  trajectory lacking a controller joint is ignored with an error), then holds.
- publishes ``/joint_states`` (JointState, reliable, every controller joint, stamped in ROS time), as the
  joint_state_broadcaster does.

Imports the simulator (and torch), like drivers/sim_articulated_node.py.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

import numpy as np
import torch

from deploy.articulated_wire import joint_state_msg
from deploy.loop import FixedRateLoop
from deploy.msgs import JointState
from deploy.msgs.control import Float64MultiArray, JointTrajectory
from deploy.transport import Ros2Node
from drivers.ros2_control_convert import ControllerConfig, load_bridge_config
from drivers.sim_articulated import SimulatedArticulatedRobot
from sim.articulated.profile import load_profile

log = logging.getLogger("sim2real.sim_ros2_control")


class SimRos2Control:
    """The simulated arm behind one controller. Call :meth:`step` once per control period."""

    def __init__(self, node: Ros2Node, config: ControllerConfig, robot: SimulatedArticulatedRobot):
        names = robot.profile.joints.names
        missing = [j for j in config.joints if j not in names]
        if missing:
            raise ValueError(f"controller joints {missing} are not joints of robot {robot.profile.name}: {names}")
        self.config, self.robot = config, robot
        self.index = np.array([names.index(j) for j in config.joints])  # controller order -> profile order
        self._lock = threading.Lock()
        self._ramp: tuple[np.ndarray, np.ndarray, float, float] | None = None  # from, to, t0, duration
        self.received = self.ignored = 0
        robot.reset()
        robot.arm()  # motors on, holding where the arm is (a controller's start)
        self.target = robot.read_state().joint_position.copy()
        self.pub = node.publisher(config.state_topic, JointState, "default")
        if config.kind == "forward_command":
            node.subscription(config.command_topic, Float64MultiArray, "default", callback=self._on_forward)
        else:
            node.subscription(config.command_topic, JointTrajectory, "default", callback=self._on_trajectory)

    def _set(self, positions: np.ndarray, names, duration_s: float) -> None:
        with self._lock:
            start = self._current_target(time.monotonic())
            goal = start.copy()
            goal[self.index] = (
                positions if names is None else positions[[list(names).index(j) for j in self.config.joints]]
            )
            self._ramp = (start, goal, time.monotonic(), duration_s)
        self.received += 1

    def _ignore(self, why: str) -> None:
        self.ignored += 1
        log.error("command ignored: %s", why)

    def _on_forward(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=float)
        if data.shape != (len(self.config.joints),) or not np.all(np.isfinite(data)):
            return self._ignore(f"expected {len(self.config.joints)} finite positions, got {data.tolist()}")
        self._set(data, None, 0.0)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        names = list(msg.joint_names)
        if not msg.points or any(j not in names for j in self.config.joints):
            return self._ignore(f"a trajectory without points or without the joints {list(self.config.joints)}")
        point = msg.points[-1]
        q = np.asarray(point.positions, dtype=float)
        if q.shape != (len(names),) or not np.all(np.isfinite(q)):
            return self._ignore(f"trajectory point positions {q.tolist()} for joints {names}")
        t = point.time_from_start
        self._set(q, names, t.sec + t.nanosec * 1e-9)

    def _current_target(self, now: float) -> np.ndarray:
        if self._ramp is None:
            return self.target.copy()
        start, goal, t0, dur = self._ramp
        a = 1.0 if dur <= 0 else min(max((now - t0) / dur, 0.0), 1.0)
        return start + a * (goal - start)

    def step(self, now: float | None = None) -> None:
        """Move the target along, advance one control period, publish the joint states."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.target = self._current_target(now)
        self.robot.send_command(self.target)  # the profile's gains: the hardware's joint impedance
        self.robot.step()
        s = self.robot.read_state()
        names = self.config.joints
        stamp = time.time_ns()  # ROS time, as the joint_state_broadcaster stamps
        tau = self.robot.joint_torque()[self.index]
        self.pub.publish(joint_state_msg(names, s.joint_position[self.index], s.joint_velocity[self.index], tau, stamp))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.sim_ros2_control", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the bridge's options YAML (controller, kind, joints, robot)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0, help="draws this robot's randomized parameters")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    config, rest = load_bridge_config(args.config)
    profile = load_profile(rest["robot"]) if rest.get("robot") else None
    robot = SimulatedArticulatedRobot("arm-reach", seed=args.seed, profile=profile)
    with Ros2Node("sim_ros2_control", namespace=config.namespace or "") as node:
        sim = SimRos2Control(node, config, robot)
        log.info("simulated %s behind %s (%s) on domain %d", robot.profile.name, config.name, config.kind,
                 node.domain_id)  # fmt: skip
        stats = FixedRateLoop(robot.profile.control_hz).run(sim.step, duration_s=args.seconds)
        log.info("done: %d commands, %d ignored; %s", sim.received, sim.ignored, stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
