"""The Dynamixel bridge: the runtime's topic table on one side, X-series servos (Protocol 2.0, ``dynamixel_sdk``)
on the other.

    python -m drivers.dynamixel_bridge --config launch/dynamixel_arm.yaml [--port /dev/ttyUSB0] [--seconds 0]

Each tick (``rate_hz``, 100 by default) the bridge owns the bus: one GroupSyncRead of present velocity and
position -> ``state/joints`` (JointState, joint names of the options, rad, rad/s, stamped in ROS time), then, if
the runtime sent a command since, one GroupSyncWrite of Goal Position (drivers.dynamixel_bus: radians -> ticks
with each joint's sign and offset, clipped to its tick limits).

- ``command/joints`` (JointCommand, only this robot's): position targets by joint name; the servos' own position
  loop tracks them (kp / kd do not travel). The first command with some kp > 0 turns the torque on (arming);
  a command with every kp zero (the runtime's stop, a damping fallback) turns it off (disarm).
- Refused with an error, nothing written: a command with a joint that is not on the bus, missing one, or a
  non-finite position.
- No command for ``command_timeout_s`` while the torque is on: goal = the measured position (hold), once.
- A failed read or write (a servo gone, a corrupted packet): counted; after ``max_bus_errors`` in a row the bridge
  turns the torque off (best effort) and stops commanding until a stop command resets it (fault).
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from deploy.articulated_wire import joint_state_msg
from deploy.loop import FixedRateLoop
from deploy.msgs import JointCommand, JointState
from deploy.transport import Ros2Node, TransportConfig
from drivers.dynamixel_bus import DynamixelBus, DynamixelError, servo_joints
from drivers.ros2_control_convert import CommandConverter, CommandRefused, ControllerConfig, holds
from drivers.vehicle import VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.dynamixel_bridge")


class DynamixelBridge:
    """Call :meth:`tick` at the bus rate; commands arrive on the DDS callback thread and wait for the tick."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        bus: DynamixelBus,
        vehicle_id: str | None = None,
        command_timeout_s: float = 0.5,
        max_bus_errors: int = 5,
    ):
        self.bus, self.names = bus, tuple(j.name for j in bus.joints)
        self.command_timeout_s, self.max_bus_errors = command_timeout_s, max_bus_errors
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        # the name checks of the ros2_control bridge: every bus joint, no other, finite
        self.converter = CommandConverter(ControllerConfig("dynamixel", "forward_command", self.names))
        self._lock = threading.Lock()
        self._pending: tuple[str, np.ndarray | None] | None = None  # ("goal", q) | ("off", None)
        self._last_command = -math.inf
        self.torque_on = self.fault = self.holding = False
        self.bus_errors = self.refused = 0
        self.measured: np.ndarray | None = None
        t = transport.topic("joint_states")
        self.joints_pub = node.publisher(t.name, JointState, t.qos)
        cmd = transport.topic("joint_command")
        node.subscription(cmd.name, JointCommand, cmd.qos, callback=self._on_command)

    def _on_command(self, msg: JointCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        if holds(msg):
            pending = ("off", None)
        else:
            try:
                pending = ("goal", self.converter.positions(msg))
            except CommandRefused as err:
                self.refused += 1
                log.error("command refused, nothing written: %s", err)
                return
        with self._lock:
            self._pending, self._last_command = pending, time.monotonic()

    def _bus(self, what: str, fn, *args):
        try:
            out = fn(*args)
        except DynamixelError as err:
            self.bus_errors += 1
            log.warning("%s failed (%d in a row): %s", what, self.bus_errors, err)
            if self.bus_errors >= self.max_bus_errors and not self.fault:
                self.fault = True
                log.error("bus fault after %d errors: torque off, commands ignored until a stop", self.bus_errors)
                try:
                    self.bus.torque(False)
                    self.torque_on = False
                except DynamixelError as off_err:
                    log.error("torque off failed too: %s", off_err)
            return None
        self.bus_errors = 0
        return out if out is not None else True

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        state = self._bus("sync read", self.bus.read)
        if state is not None:
            self.measured = state[0]
            self.joints_pub.publish(joint_state_msg(self.names, state[0], state[1], None, time.time_ns()))
        with self._lock:
            pending, self._pending, last = self._pending, None, self._last_command
        if pending is not None and pending[0] == "off":
            if self._bus("torque off", self.bus.torque, False):
                self.torque_on, self.fault, self.holding = False, False, False
                log.info("torque off (stop)")
            return
        if self.fault:
            return
        if pending is not None:
            if not self.torque_on:
                if self.measured is not None:  # start from where the arm is, not an old goal
                    self._bus("hold", self.bus.write, self.measured)
                if not self._bus("torque on", self.bus.torque, True):
                    return
                self.torque_on = True
                log.info("torque on (arming)")
            self.holding = False
            self._bus("sync write", self.bus.write, pending[1])
        elif self.torque_on and not self.holding and now - last > self.command_timeout_s:
            self.holding = True
            if self.measured is not None:
                log.warning("no command for %.2f s: holding the measured position", now - last)
                self._bus("hold", self.bus.write, self.measured)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.dynamixel_bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="YAML with a dynamixel: section (port, baudrate, joints)")
    ap.add_argument("--port", default=None, help="serial port (default: the config's)")
    ap.add_argument("--namespace", default=None, help="the runtime's ROS 2 namespace (default: the config's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this robot (default: the namespace)")
    ap.add_argument("--seconds", type=float, default=0.0, help="run this long; 0 = until killed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        section = (yaml.safe_load(Path(args.config).read_text()) or {})["dynamixel"]
        joints = servo_joints(section["joints"])
    except (OSError, KeyError, TypeError, ValueError) as err:
        ap.error(f"{args.config}: {err!r}; expected a dynamixel: section with port, baudrate and joints")
    namespace = args.namespace or section.get("namespace")
    transport = TransportConfig.from_mapping({"namespace": namespace} if namespace else None)
    bus = DynamixelBus(args.port or section["port"], joints, int(section.get("baudrate", 57600)))
    try:
        log.info("servos found: %s", bus.ping())
        bus.torque(False)  # disarmed until the runtime arms
        with Ros2Node("dynamixel_bridge", namespace=transport.namespace) as node:
            bridge = DynamixelBridge(
                node, transport, bus, args.vehicle_id, float(section.get("command_timeout_s", 0.5))
            )
            seconds = args.seconds if args.seconds > 0 else 10.0 * 365 * 86400
            FixedRateLoop(float(section.get("rate_hz", 100.0))).run(bridge.tick, duration_s=seconds)
    finally:
        try:
            bus.torque(False)
        except DynamixelError as err:
            log.error("torque off at exit failed: %s", err)
        bus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
