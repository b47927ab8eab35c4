"""The PX4 bridge: the runtime's topic table on one side, PX4's uXRCE-DDS topics (px4_msgs) on the other.

    python -m drivers.px4_bridge --namespace /px4_1 --vehicle-id px4_1 --config launch/px4_bridge.yaml
        [--px4-namespace ""] [--topic-suffix _v1] [--seconds 0]

State: ``/fmu/out/vehicle_odometry`` (NED / FRD, PX4 boot clock) -> ``state/pose``, ``state/twist``, ``state/odom``
(world ENU, body FLU, the twist in the body frame by ROS convention: drivers/state_out.py; stamps in ROS time (this computer's system clock) through drivers.px4_convert.ClockOffset);
``/fmu/out/battery_status`` -> ``state/battery``; ``/fmu/out/vehicle_status`` is kept for the rules below.

Commands, only this vehicle's (drivers.vehicle.VehicleFilter), of one of two kinds; the first command picks the
kind and PX4's offboard control mode:
- ``command/motors`` (MotorCommand, rpm policies) -> ActuatorMotors, OffboardControlMode direct_actuator: RPM ->
  0..1 through the vehicle's throttle curve, placed by the motor map, NaN in unused slots.
- ``command/rates`` (RateThrustCommand, ctbr policies) -> VehicleRatesSetpoint, OffboardControlMode body_rate:
  body rates FLU -> FRD (roll, -pitch, -yaw); collective thrust N -> thrust_body (0, 0, -normalized), where each
  of the 4 rotors gives thrust / 4 = kf rpm^2 (kf from the options) and that rpm's command comes from the same
  throttle curve (drivers.px4_convert.thrust_to_normalized: with exponent 2, thrust / (4 kf rpm_max^2)). PX4's rate
  controller and mixer then drive the motors.
- A command of the other kind while one kind is in use is refused (an error logged, the command ignored); the kind
  is free again once the commands have stopped (below) and PX4 reports disarmed.
The rules, the same for both kinds:
- OffboardControlMode streams at 20 Hz from the start (direct_actuator until the first rate command), so PX4
  accepts the switch; it stops with the setpoints when the runtime's commands stop (below), which is what lets
  PX4's offboard-loss failsafe act.
- mode ``arming``: VehicleCommand DO_SET_MODE offboard (param1 1, param2 6), then, once PX4 reports OFFBOARD,
  COMPONENT_ARM_DISARM (param1 1); target_system 1, from_external true; retried every 0.3 s until armed.
- mode ``arming`` / ``policy``: setpoints ONLY while PX4 reports nav_state OFFBOARD and armed.
- mode ``fallback``: control goes back to PX4: VehicleCommand NAV_LAND (repeated until PX4 is in AUTO_LAND or
  disarmed); no more setpoints.
- mode ``stop``: motors off (ActuatorMotors all NaN; rates: zero thrust, zero rates) and a forced disarm (param2
  21196), repeated while armed.
- no command for more than 0.5 s (``--command-timeout``): no more setpoints and no keep-alive, and, if PX4 is
  still in OFFBOARD and armed, NAV_LAND: PX4 would otherwise hold the last setpoint until COM_OF_LOSS_T. If the
  bridge dies too, PX4's own offboard-loss failsafe (COM_OF_LOSS_T, COM_OBL_RC_ACT) takes over.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import numpy as np

from deploy.loop import FixedRateLoop
from deploy.msgs import (
    BatteryState,
    MotorCommand,
    RateThrustCommand,
    make_header,
)
from deploy.msgs.px4 import (
    ActuatorMotors,
    BatteryStatus,
    OffboardControlMode,
    VehicleCommand,
    VehicleOdometry,
    VehicleRatesSetpoint,
    VehicleStatus,
)
from deploy.transport import Ros2Node, TransportConfig
from drivers.px4_convert import (
    ClockOffset,
    FrameError,
    frd_to_flu,
    position_to_enu,
    quat_ned_frd_to_enu_flu,
    to_px4_controls,
    to_px4_rates,
    velocity_to_enu,
)
from drivers.px4_wire import (
    CMD_ARM_DISARM,
    CMD_DO_SET_MODE,
    CMD_NAV_LAND,
    FORCE_DISARM_MAGIC,
    NAV_STATE_NAMES,
    PX4_MAIN_MODE_OFFBOARD,
    PX4_QOS,
    MotorOptions,
    Px4Topics,
    add_shared_arguments,
    motor_options_from_args,
    topics_from_args,
)
from drivers.state_out import StateOut
from drivers.vehicle import VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.px4_bridge")
OFFBOARD, AUTO_LAND = VehicleStatus.NAVIGATION_STATE_OFFBOARD, VehicleStatus.NAVIGATION_STATE_AUTO_LAND
ARMED = VehicleStatus.ARMING_STATE_ARMED
#: The OffboardControlMode flag of each command type.
SETPOINT_KIND = {MotorCommand: "direct_actuator", RateThrustCommand: "body_rate"}


class Px4Bridge:
    """Translates in both directions; call :meth:`tick` at the loop rate (100 Hz)."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        topics: Px4Topics,
        motors: MotorOptions,
        vehicle_id: str | None = None,
        command_timeout_s: float = 0.5,
        keepalive_hz: float = 20.0,
        retry_s: float = 0.3,
    ):
        self.motors, self.command_timeout_s = motors, command_timeout_s
        self.keepalive_period_s, self.retry_s = 1.0 / keepalive_hz, retry_s
        self._vehicle_id = vehicle_id or default_vehicle_id(transport.namespace)
        self.reset()
        self.state_out = StateOut(node, transport)
        for key, cls in (("motor_command", MotorCommand), ("rate_command", RateThrustCommand)):
            t = transport.topic(key)
            node.subscription(t.name, cls, t.qos, callback=self._on_command)
        node.subscription(topics.name("out", "vehicle_odometry"), VehicleOdometry, PX4_QOS, callback=self._on_odometry)
        node.subscription(topics.name("out", "vehicle_status"), VehicleStatus, PX4_QOS, callback=self._on_status)
        node.subscription(topics.name("out", "battery_status"), BatteryStatus, PX4_QOS, callback=self._on_battery)
        self.keepalive_pub = node.publisher(topics.name("in", "offboard_control_mode"), OffboardControlMode, PX4_QOS)
        self.actuator_pub = node.publisher(topics.name("in", "actuator_motors"), ActuatorMotors, PX4_QOS)
        self.rates_pub = node.publisher(topics.name("in", "vehicle_rates_setpoint"), VehicleRatesSetpoint, PX4_QOS)
        self.command_pub = node.publisher(topics.name("in", "vehicle_command"), VehicleCommand, PX4_QOS)

    def reset(self) -> None:
        """Forget the runtime's last command, PX4's status and the clock offset: a new session."""
        self.vehicle = VehicleFilter(self._vehicle_id)
        self.clock = ClockOffset()
        self.status: VehicleStatus | None = None
        self._command: MotorCommand | RateThrustCommand | None = None
        self._command_time = -math.inf
        self.setpoint_kind: str | None = None  # "direct_actuator" | "body_rate" once a command has come
        self._last_keepalive = self._last_request = -math.inf
        self._stale_logged = self._not_engaged_logged = self._refused_logged = False
        self._frame_errors = 0

    # ------------------------------------------------------------------ PX4 -> runtime
    def _on_odometry(self, msg: VehicleOdometry) -> None:
        self.clock.observe(msg.timestamp, time.time_ns())  # stamps out in ROS time
        try:
            position = position_to_enu(msg.position, msg.pose_frame)
            velocity = velocity_to_enu(msg.velocity, msg.velocity_frame, msg.q)
        except FrameError as err:
            self._frame_errors += 1
            if self._frame_errors == 1:
                log.error("odometry dropped: %s (check EKF2 / the external vision setup)", err)
            return
        q = quat_ned_frd_to_enu_flu(msg.q) if np.isfinite(msg.q).all() else np.full(4, np.nan)
        rates = frd_to_flu(msg.angular_velocity)
        if not (np.isfinite(position).all() and np.isfinite(q).all()):
            return  # PX4 has no pose estimate yet; the runtime sees a stale state and will not arm
        self.state_out.publish(
            self.clock.to_host_ns(msg.timestamp_sample or msg.timestamp), position, q, velocity, rates
        )

    def _on_status(self, msg: VehicleStatus) -> None:
        old = self.status
        self.status = msg
        if old is None or (old.nav_state, old.arming_state) != (msg.nav_state, msg.arming_state):
            log.info(
                "PX4: %s, %s",
                NAV_STATE_NAMES.get(msg.nav_state, msg.nav_state),
                "armed" if msg.arming_state == ARMED else "disarmed",
            )

    def _on_battery(self, msg: BatteryStatus) -> None:
        if not self.clock.ready:
            return
        cells = [float(v) for v in msg.voltage_cell_v[: msg.cell_count]]
        self.state_out.publish_battery(
            BatteryState(
                make_header(self.clock.to_host_ns(msg.timestamp)),
                voltage=float(msg.voltage_v),
                current=-float(msg.current_a),
                percentage=float(msg.remaining),
                present=bool(msg.connected),
                cell_voltage=cells,
            )
        )

    # ------------------------------------------------------------------ runtime -> PX4
    def _on_command(self, msg: MotorCommand | RateThrustCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        kind = SETPOINT_KIND[type(msg)]
        refusal = ""
        if self.setpoint_kind not in (None, kind):
            refusal = f"{type(msg).__name__} while the run flies with {self.setpoint_kind} setpoints: a mix of kinds"
        elif kind == "body_rate" and self.motors.kf is None:
            refusal = "RateThrustCommand needs kf (N/RPM^2, --kf or kf in --config) to normalize the thrust"
        if refusal:
            if not self._refused_logged:
                self._refused_logged = True
                log.error("command refused: %s; check which runtime commands this vehicle", refusal)
            return
        if self.setpoint_kind is None:
            self.setpoint_kind, self._last_keepalive = kind, -math.inf  # the keep-alive's flag changes at once
            log.info("setpoints: %s (%s)", kind, type(msg).__name__)
        self._command, self._command_time = msg, time.monotonic()
        if msg.mode in ("arming", "policy") and self.offboard_armed:
            self._forward(msg)  # at once, not at the next tick: a tick period less of latency

    def _forward(self, msg: MotorCommand | RateThrustCommand) -> None:
        if isinstance(msg, RateThrustCommand):
            rate = (msg.body_rate.x, msg.body_rate.y, msg.body_rate.z)
            if math.isfinite(msg.thrust) and all(map(math.isfinite, rate)):
                self._send_rates(*to_px4_rates(msg.thrust, rate, self.motors.kf, self.motors.curve))
            return
        rpm = np.asarray(msg.rpm, dtype=float)
        if rpm.shape == (len(self.motors.motor_map),) and np.isfinite(rpm).all():
            self._send_motors(to_px4_controls(self.motors.curve.normalized(rpm), self.motors.motor_map))

    @property
    def offboard_armed(self) -> bool:
        return self.status is not None and self.status.nav_state == OFFBOARD and self.status.arming_state == ARMED

    def _px4_us(self) -> int:
        now_ns = time.time_ns()
        return self.clock.to_px4_us(now_ns) if self.clock.ready else time.monotonic_ns() // 1000

    def send_command(self, command: int, param1: float = 0.0, param2: float = 0.0, param3: float = 0.0) -> None:
        self.command_pub.publish(
            VehicleCommand(
                timestamp=self._px4_us(),
                param1=param1,
                param2=param2,
                param3=param3,
                command=command,
                target_system=1,
                target_component=1,
                source_system=1,
                source_component=1,
                from_external=True,
            )
        )

    def _send_motors(self, controls: list[float]) -> None:
        stamp = self._px4_us()
        self.actuator_pub.publish(ActuatorMotors(timestamp=stamp, timestamp_sample=stamp, control=controls))

    def _send_rates(self, rates_frd: list[float], thrust_body: list[float]) -> None:
        roll, pitch, yaw = rates_frd
        msg = VehicleRatesSetpoint(timestamp=self._px4_us(), roll=roll, pitch=pitch, yaw=yaw, thrust_body=thrust_body)
        self.rates_pub.publish(msg)

    def _request(self, now: float, command: int, param1: float, param2: float = 0.0, why: str = "") -> None:
        if now - self._last_request >= self.retry_s:
            self._last_request = now
            log.info("-> PX4: %s", why)
            self.send_command(command, param1, param2)

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        cmd = self._command
        fresh = cmd is not None and now - self._command_time <= self.command_timeout_s
        if cmd is not None and not fresh:
            if not self._stale_logged:
                self._stale_logged = True
                log.warning("runtime commands stopped: no setpoints, no keep-alive; NAV_LAND, PX4's failsafe behind it")
            if self.offboard_armed:  # PX4 would hold the last setpoint until COM_OF_LOSS_T: hand over now
                self._request(now, CMD_NAV_LAND, 0.0, 0.0, "NAV_LAND (runtime commands stopped)")
            elif self.status is not None and self.status.arming_state != ARMED:
                self.setpoint_kind, self._refused_logged = None, False  # the run is over: the next may use either
            return
        self._stale_logged = False
        if now - self._last_keepalive >= self.keepalive_period_s:
            self._last_keepalive = now
            flag = self.setpoint_kind or "direct_actuator"
            self.keepalive_pub.publish(OffboardControlMode(timestamp=self._px4_us(), **{flag: True}))
        if cmd is None:
            return
        status, mode = self.status, cmd.mode
        if mode == "arming" and not self.offboard_armed:
            if status is None or status.nav_state != OFFBOARD:
                self._request(now, CMD_DO_SET_MODE, 1.0, float(PX4_MAIN_MODE_OFFBOARD), "DO_SET_MODE offboard")
            else:
                self._request(now, CMD_ARM_DISARM, 1.0, 0.0, "arm")
        if mode == "policy" and not self.offboard_armed and not self._not_engaged_logged:
            self._not_engaged_logged = True
            log.error(
                "the runtime flies but PX4 is not in OFFBOARD and armed: no setpoints go out. PX4 needs the "
                "keep-alive for > 1 s and a moment to arm: raise the profile's safety.common.arming_duration_s"
            )
        if mode in ("arming", "policy") and self.offboard_armed:
            self._not_engaged_logged = False  # setpoints go out from the command callback
        elif mode == "fallback" and status is not None and status.arming_state == ARMED:
            if status.nav_state != AUTO_LAND:
                self._request(now, CMD_NAV_LAND, 0.0, 0.0, "NAV_LAND (fallback: PX4 lands)")
        elif mode == "stop":
            if self.offboard_armed and self.setpoint_kind == "body_rate":
                self._send_rates([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
            elif self.offboard_armed:
                self._send_motors([math.nan] * ActuatorMotors.NUM_CONTROLS)
            if status is not None and status.arming_state == ARMED:
                self._request(now, CMD_ARM_DISARM, 0.0, FORCE_DISARM_MAGIC, "disarm (stop)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.px4_bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--namespace", default=None, help="the robot's ROS 2 namespace (the deploy profile's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this vehicle (default: the namespace)")
    ap.add_argument("--rate", type=float, default=100.0, help="loop rate, Hz")
    ap.add_argument("--seconds", type=float, default=0.0, help="run this long; 0 = until killed")
    ap.add_argument("--command-timeout", type=float, default=0.5, help="s without commands -> stop sending")
    add_shared_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    transport = TransportConfig.from_mapping({"namespace": args.namespace} if args.namespace else None)
    try:
        motors = motor_options_from_args(args)
    except (ValueError, OSError) as err:
        ap.error(str(err))
    with Ros2Node("px4_bridge", namespace=transport.namespace) as node:
        bridge = Px4Bridge(
            node, transport, topics_from_args(args), motors, args.vehicle_id, command_timeout_s=args.command_timeout
        )
        log.info("PX4 bridge for %s on domain %d", bridge.vehicle.vehicle_id, node.domain_id)
        seconds = args.seconds if args.seconds > 0 else 10.0 * 365 * 86400
        FixedRateLoop(args.rate).run(bridge.tick, duration_s=seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
