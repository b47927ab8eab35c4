"""The ros2_control bridge: the runtime's topic table on one side, a ros2_control controller's topics on the other.

    python -m drivers.ros2_control_bridge --config launch/ros2_control_franka_bridge.yaml \\
        [--namespace /sim2real] [--vehicle-id sim2real] [--seconds 0]

Runtime -> robot: ``command/joints`` (sim2real_msgs/JointCommand, joints by name, only this robot's:
drivers.vehicle.VehicleFilter) -> the controller named in the options (drivers.ros2_control_convert):
``/<controller>/commands`` (std_msgs/Float64MultiArray, data in the controller's joint order) for a
``forward_command_controller``, ``/<controller>/joint_trajectory`` (trajectory_msgs/JointTrajectory, one point
``horizon_s`` ahead) for a ``joint_trajectory_controller``. Reliable QoS (the controllers' subscriptions are
``SystemDefaultsQoS``).

- Position targets only: the controller's hardware interface closes the joint loop with its own gains, so the
  command's kp / kd do not travel. A command whose kp are all zero (the runtime's stop: motors off; damping) is
  one a position controller cannot follow: the bridge commands a hold at the measured position, once.
- Refused, with an error naming what was wrong (and nothing sent): a command naming a joint the controller does
  not have or lacking one of its joints, or a non-finite position.
- No runtime command for ``command_timeout_s`` (0.5 s): a hold at the measured position, once (ros2_control's
  controllers would hold the last target forever).

Robot -> runtime: ``/joint_states`` (sensor_msgs/JointState, from the joint_state_broadcaster; read best effort,
which matches its reliable writer) -> ``state/joints`` (the controller's joints only, stamps passed through), and
the end-effector pose by forward kinematics of the robot profile (drivers.ros2_control_fk) -> ``state/pose`` with
the same stamp. A JointState lacking a controller joint, or with non-finite values, is refused (logged; the
runtime sees a stale state and does not arm, or falls back).
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time

import numpy as np

from deploy.articulated_wire import joint_state_msg, pose_msg
from deploy.loop import FixedRateLoop
from deploy.msgs import JointCommand, JointState, time_to_ns
from deploy.transport import Ros2Node, TransportConfig
from drivers.ros2_control_convert import (
    BridgeConfigError,
    CommandConverter,
    CommandRefused,
    ControllerConfig,
    StateFilter,
    StateRefused,
    holds,
    load_bridge_config,
)
from drivers.vehicle import VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.ros2_control_bridge")


class Ros2ControlBridge:
    """Translates in both directions from DDS callbacks; call :meth:`tick` at a few tens of Hz for the timeout.
    ``fk``: anything with ``pose(q) -> (position (3,), quat wxyz (4,))``, or None (no ``state/pose``)."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        config: ControllerConfig,
        fk=None,
        vehicle_id: str | None = None,
        base_frame: str = "base",
    ):
        self.config, self.fk, self.base_frame = config, fk, base_frame
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.converter, self.states = CommandConverter(config), StateFilter(config.joints)
        self._lock = threading.Lock()
        self._measured: np.ndarray | None = None
        self._last_command = -math.inf
        self._holding = False
        self._logged: set[str] = set()
        self.forwarded = self.refused = self.refused_states = 0
        out = {key: transport.topic(key) for key in ("joint_states", "pose")}
        self.joints_pub = node.publisher(out["joint_states"].name, JointState, out["joint_states"].qos)
        self.pose_pub = node.publisher(out["pose"].name, out["pose"].msg_type, out["pose"].qos)
        cmd_type = type(self.converter.message(np.zeros(len(config.joints))))
        self.controller_pub = node.publisher(config.command_topic, cmd_type, "default")
        cmd = transport.topic("joint_command")
        node.subscription(cmd.name, JointCommand, cmd.qos, callback=self._on_command)
        node.subscription(config.state_topic, JointState, "sensor_data", callback=self._on_joint_states)

    def _error_once(self, key: str, text: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.error("%s", text)

    # ------------------------------------------------------------------ robot -> runtime
    def _on_joint_states(self, msg: JointState) -> None:
        try:
            q, qd, tau = self.states.select(msg)
        except StateRefused as err:
            self.refused_states += 1
            self._error_once(f"state:{err}", f"joint state refused: {err}")
            return
        with self._lock:
            self._measured = q
        stamp_ns = time_to_ns(msg.header.stamp)
        self.joints_pub.publish(joint_state_msg(self.config.joints, q, qd, tau, stamp_ns))
        if self.fk is not None:
            position, quat = self.fk.pose(q)
            self.pose_pub.publish(pose_msg(position, quat, stamp_ns, self.base_frame))

    # ------------------------------------------------------------------ runtime -> robot
    def _on_command(self, msg: JointCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        with self._lock:
            self._last_command = time.monotonic()
        if holds(msg):
            self._hold(f"a {msg.mode!r} command with all kp zero")
            return
        try:
            q = self.converter.positions(msg)
        except CommandRefused as err:
            self.refused += 1
            self._error_once(f"cmd:{err}", f"command refused, nothing sent: {err}")
            return
        with self._lock:
            self._holding = False
        self.controller_pub.publish(self.converter.message(q))
        self.forwarded += 1

    def _hold(self, why: str) -> None:
        """Command the measured position, once per hold."""
        with self._lock:
            if self._holding:
                return
            self._holding = True
            q = None if self._measured is None else self._measured.copy()
        if q is None:
            log.warning("%s: no joint state yet, nothing to hold; the controller keeps its last target", why)
            return
        log.warning("%s: holding the measured position", why)
        self.controller_pub.publish(self.converter.message(q))

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = math.isfinite(self._last_command) and now - self._last_command > self.config.command_timeout_s
        if stale:
            self._hold(f"no runtime command for {self.config.command_timeout_s:g} s")


def make_fk(robot: str | None):
    """The end-effector kinematics of a robot profile (name or YAML), or None."""
    if robot is None:
        return None
    from drivers.ros2_control_fk import EndEffectorFK
    from sim.articulated.profile import load_profile

    return EndEffectorFK(load_profile(robot))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.ros2_control_bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="bridge options YAML with a ros2_control: section")
    ap.add_argument("--namespace", default=None, help="the runtime's ROS 2 namespace (the deploy profile's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this robot (default: the namespace)")
    ap.add_argument("--rate", type=float, default=50.0, help="timeout check rate, Hz")
    ap.add_argument("--seconds", type=float, default=0.0, help="run this long; 0 = until killed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config, rest = load_bridge_config(args.config)
        fk = make_fk(rest.get("robot"))
    except (BridgeConfigError, OSError, ValueError) as err:
        ap.error(str(err))
    namespace = args.namespace or rest.get("namespace")
    transport = TransportConfig.from_mapping({"namespace": namespace} if namespace else None)
    base = fk.profile.bodies.base if fk is not None else "base"
    with Ros2Node("ros2_control_bridge", namespace=transport.namespace) as node:
        bridge = Ros2ControlBridge(node, transport, config, fk, args.vehicle_id, base)
        log.info(
            "ros2_control bridge for %s: %s %s -> %s, %s -> %s, domain %d",
            bridge.vehicle.vehicle_id,
            config.kind,
            transport.topic("joint_command").name,
            config.command_topic,
            config.state_topic,
            transport.topic("joint_states").name,
            node.domain_id,
        )
        seconds = args.seconds if args.seconds > 0 else 10.0 * 365 * 86400
        FixedRateLoop(args.rate).run(bridge.tick, duration_s=seconds)
        log.info("done: %d commands forwarded, %d refused, %d joint states refused", bridge.forwarded,
                 bridge.refused, bridge.refused_states)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
