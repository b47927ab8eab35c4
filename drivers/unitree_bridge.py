"""The Unitree Go2 low-level bridge: the runtime's topic table on one side, ``rt/lowcmd`` / ``rt/lowstate`` on the
other.

    python -m drivers.unitree_bridge --config launch/unitree_go2_bridge.yaml \\
        [--namespace /sim2real] [--vehicle-id sim2real] [--domain-id 0] [--rate 500] [--seconds 0]

Runtime -> robot: ``command/joints`` (sim2real_msgs/JointCommand, joints by name, only this robot's:
drivers.vehicle.VehicleFilter) -> per-motor targets in Unitree's motor order (drivers.unitree_convert). The bridge
writes a LowCmd_ at the robot's rate (``rate_hz``, 500 Hz as Unitree's examples), repeating the newest accepted
command (the runtime commands at 50 Hz), its CRC recomputed for every write. Before the first command it writes
nothing (the robot stays as it is); a refused command (unknown or missing joints, non-finite values, negative
gains) changes nothing (the last accepted command repeats), and is counted and logged; no accepted command for
``command_timeout_s`` -> the bridge writes damping (kp 0, kd 8) on its own, logged, until commands come back.

Robot -> runtime: ``rt/lowstate`` (LowState_) -> ``state/joints`` (sensor_msgs/JointState: the motors' joint
names, q, dq, tau_est) and ``state/imu`` (sensor_msgs/Imu: quaternion, gyroscope, accelerometer), stamped with the
arrival time in ROS time (the LowState's ``tick`` is the robot's own millisecond clock). A LowState with a wrong
CRC (``check_state_crc``) or non-finite values is dropped and counted: the runtime sees a stale state.

The robot side is plain DDS on the robot's domain (``domain_id``, 0 on a Go2), as Unitree's SDK speaks it: no
ROS 2 node, no type hash. Pin the robot's network interface with CYCLONEDDS_URI (docs/unitree.md). At exit the
bridge prints one JSON line of counters on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from collections.abc import Callable

from cyclonedds.core import Listener, Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from deploy.loop import FixedRateLoop
from deploy.msgs import Imu, JointCommand, JointState, Quaternion, Vector3, make_header
from deploy.msgs.unitree import LowCmd_, LowState_
from deploy.transport import Ros2Node, TransportConfig
from drivers.unitree_convert import (
    BridgeOptions,
    CommandConverter,
    CommandRefused,
    CommandWatch,
    CrcMismatch,
    LowCmdFrame,
    LowStateSample,
    StateRefused,
    UnitreeConfigError,
    decode_state,
    load_bridge_options,
)
from drivers.vehicle import VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.unitree_bridge")

#: Unitree's SDK creates its endpoints with Cyclone's default QoS: a reliable writer keeping the last sample. A
#: best-effort reader of depth 1 matches it (and a best-effort writer) and always reads the newest state.
WRITER_QOS = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(1))
READER_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))


def robot_endpoints(
    participant: DomainParticipant, options: BridgeOptions, on_state: Callable[[DataReader], None]
) -> tuple[DataWriter, DataReader]:
    """The LowCmd_ writer and the LowState_ reader (``on_state(reader)`` on each arrival) on the robot's domain."""
    writer = DataWriter(participant, Topic(participant, options.lowcmd_topic, LowCmd_), WRITER_QOS)
    topic = Topic(participant, options.lowstate_topic, LowState_)
    reader = DataReader(participant, topic, READER_QOS, listener=Listener(on_data_available=on_state))
    return writer, reader


class UnitreeBridge:
    """Translates commands and states from DDS callbacks; call :meth:`tick` at ``options.rate_hz`` to write."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        options: BridgeOptions,
        robot: DomainParticipant,
        vehicle_id: str | None = None,
    ):
        self.options, self.motors = options, options.motors
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.converter = CommandConverter(self.motors)
        self.watch = CommandWatch(len(self.motors), options.command_timeout_s, options.damping_kd_nm_s_per_rad)
        self.frame = LowCmdFrame(len(self.motors))
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        self.source = "none"
        self.closed = False  # set before the node closes: later LowStates are not forwarded
        self.counts = dict.fromkeys(
            ("commands", "refused", "lowcmd_written", "damping_written", "lowstate", "lowstate_dropped_crc",
             "lowstate_refused", "lowstate_superseded"), 0)  # fmt: skip
        joints, imu = transport.topic("joint_states"), transport.topic("imu")
        self.joints_pub = node.publisher(joints.name, JointState, joints.qos)
        self.imu_pub = node.publisher(imu.name, Imu, imu.qos)
        cmd = transport.topic("joint_command")
        node.subscription(cmd.name, JointCommand, cmd.qos, callback=self._on_command)
        self.lowcmd_writer, self.lowstate_reader = robot_endpoints(robot, options, self._on_lowstate)

    def _error_once(self, key: str, text: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.error("%s", text)

    # ------------------------------------------------------------------ runtime -> robot
    def _on_command(self, msg: JointCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        try:
            targets = self.converter.targets(msg)
        except CommandRefused as err:
            with self._lock:
                self.counts["refused"] += 1
            self._error_once(f"cmd:{err}", f"command refused, nothing new sent: {err}")
            return
        with self._lock:
            self.watch.accept(targets, time.monotonic())
            self.counts["commands"] += 1

    def tick(self, now: float | None = None) -> None:
        """Write one LowCmd_: the newest accepted command, damping after the timeout, nothing before a command."""
        now = time.monotonic() if now is None else now
        with self._lock:
            targets, source = self.watch.select(now)
        if source != self.source:
            if source == "damping":
                log.warning("no runtime command for %g s: damping (kp 0, kd %g)", self.options.command_timeout_s,
                            self.options.damping_kd_nm_s_per_rad)  # fmt: skip
            elif self.source == "damping":
                log.info("runtime commands again: forwarding them")
            self.source = source
        if targets is None:
            return
        self.frame.set(targets)
        self.lowcmd_writer.write(self.frame.message())
        self.counts["lowcmd_written"] += 1
        self.counts["damping_written"] += source == "damping"

    # ------------------------------------------------------------------ robot -> runtime
    def _on_lowstate(self, reader: DataReader) -> None:
        """Forward the newest good LowState of what arrived. LowStates that queued up while this process was
        descheduled are superseded (counted), not forwarded: stamped on arrival they would all carry the same time
        for 2 ms apart states, and the runtime's consistency gate would see joints move faster than their
        velocities say (it tripped walking a Go2 on a loaded machine)."""
        newest = None
        for msg in reader.take(8):
            if self.closed or not isinstance(msg, LowState_):
                continue  # an invalid sample (a writer gone)
            self.counts["lowstate"] += 1
            try:
                s = decode_state(msg, len(self.motors), self.options.check_state_crc)
            except StateRefused as err:
                key = "lowstate_dropped_crc" if isinstance(err, CrcMismatch) else "lowstate_refused"
                self.counts[key] += 1
                if self.counts[key] in (1, 10, 100, 1000) or self.counts[key] % 10000 == 0:
                    log.error("%s (%d so far)", err, self.counts[key])
                continue
            self.counts["lowstate_superseded"] += newest is not None
            newest = s
        if newest is not None:
            self._forward(newest)

    def _forward(self, s: LowStateSample) -> None:
        """state/joints and state/imu of one LowState, stamped with its arrival (ROS time)."""
        stamp = make_header(time.time_ns(), "base")
        self.joints_pub.publish(JointState(stamp, list(self.motors), s.q.tolist(), s.dq.tolist(), s.tau.tolist()))
        w, x, y, z = (float(v) for v in s.quat)
        self.imu_pub.publish(
            Imu(
                stamp,
                orientation=Quaternion(x, y, z, w),
                angular_velocity=Vector3(*(float(v) for v in s.gyro)),
                linear_acceleration=Vector3(*(float(v) for v in s.accel)),
            )
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.unitree_bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="bridge options YAML with a unitree: section")
    ap.add_argument("--namespace", default=None, help="the runtime's ROS 2 namespace (the deploy profile's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this robot (default: the namespace)")
    ap.add_argument("--domain-id", type=int, default=None, help="the robot's DDS domain (default: the options')")
    ap.add_argument("--rate", type=float, default=None, help="LowCmd writes per second (default: the options')")
    ap.add_argument("--seconds", type=float, default=0.0, help="run this long; 0 = until killed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        options, rest = load_bridge_options(args.config)
        overrides = {"domain_id": args.domain_id, "rate_hz": args.rate}
        options = BridgeOptions(**{**options.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    except (UnitreeConfigError, OSError, ValueError) as err:
        ap.error(str(err))
    namespace = args.namespace or rest.get("namespace")
    transport = TransportConfig.from_mapping({"namespace": namespace} if namespace else None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    robot = DomainParticipant(options.domain_id)
    with Ros2Node("unitree_bridge", namespace=transport.namespace) as node:
        bridge = UnitreeBridge(node, transport, options, robot, args.vehicle_id)
        log.info(
            "Unitree bridge for %s: %s -> %s at %g Hz (robot domain %d), %s -> %s, %s (runtime domain %d)",
            bridge.vehicle.vehicle_id, transport.topic("joint_command").name, options.lowcmd_topic, options.rate_hz,
            options.domain_id, options.lowstate_topic, transport.topic("joint_states").name,
            transport.topic("imu").name, node.domain_id,
        )  # fmt: skip
        seconds = args.seconds if args.seconds > 0 else 10.0 * 365 * 86400
        wall0, cpu0, stats = time.monotonic(), time.process_time(), None
        try:
            stats = FixedRateLoop(options.rate_hz).run(
                lambda now: False if stop.is_set() else bridge.tick(), duration_s=seconds
            )
        except KeyboardInterrupt:
            pass
        bridge.closed = True
        counts = dict(bridge.counts, vehicle_rejected=bridge.vehicle.rejected)
        log.info("done: %s", counts)
        # the process's CPU time (all threads: the loop and DDS's) per wall second, and the loop's timing
        counts["cpu_fraction"] = round((time.process_time() - cpu0) / max(time.monotonic() - wall0, 1e-9), 3)
        counts["loop"] = stats.summary() if stats is not None else None
        print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
