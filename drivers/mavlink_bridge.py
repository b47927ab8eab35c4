"""The MAVLink bridge: the runtime's topic table on one side, a PX4 or ArduPilot flight controller over MAVLink 2
(pymavlink: serial, UDP or TCP) on the other. ctbr policies only: MAVLink has no motor-level control (below).

    python -m drivers.mavlink_bridge --namespace /px4_1 --vehicle-id px4_1 --config launch/mavlink_px4_bridge.yaml
        [--profile launch/mavlink_px4.yaml] [--autopilot px4|ardupilot|auto] [--connection udpin:0.0.0.0:14540]
        [--kf 3.16e-10] [--seconds 0]

State (drivers/mavlink_convert.py): ODOMETRY, or ATTITUDE_QUATERNION + LOCAL_POSITION_NED (published on each
LOCAL_POSITION_NED with the attitude of the same 50 ms), NED / FRD -> ``state/pose``, ``state/twist`` and ``state/odom``
(world ENU; the twist's linear and angular velocity in the body FLU, drivers/state_out.py), stamped in ROS time (this computer's system clock)
through drivers.px4_convert.ClockOffset from the autopilot's boot clock (time_usec, time_boot_ms; a clock that goes
back more than 1 s is a reboot: the offset is measured again); BATTERY_STATUS (or SYS_STATUS when the autopilot
sends no BATTERY_STATUS) -> ``state/battery`` (voltage V, percentage 0..1, NaN unknown), stamped on arrival.
HEARTBEAT of the autopilot (system/component ``target_*``): armed = base_mode bit 7, mode = custom_mode
(drivers/mavlink_wire.py: PX4 main/sub mode, ArduPilot mode number); its autopilot field picks the autopilot with
``--autopilot auto`` and must agree with ``--autopilot px4|ardupilot`` (else nothing is sent). A COMMAND_ACK
ACCEPTED of a mode change or an arming counts at once (HEARTBEAT comes at 1 Hz); the next HEARTBEAT is the truth.
STATUSTEXT is logged. The bridge asks for its state messages with SET_MESSAGE_INTERVAL until they arrive.

Out: this computer's HEARTBEAT at 1 Hz (MAV_TYPE_ONBOARD_CONTROLLER, system ``source_system``, component 191).
``command/rates`` (RateThrustCommand, this vehicle's only: drivers.vehicle.VehicleFilter) -> SET_ATTITUDE_TARGET,
type_mask ATTITUDE_IGNORE (body rates + thrust): rates FLU -> FRD (p, -q, -r); thrust N -> 0..1: each of 4 rotors
gives thrust / 4 = kf rpm^2 (kf N/RPM^2, the robot profile's), and that rpm's command comes from the vehicle's
throttle curve (``rpm_max``, ``throttle_exponent`` or ``throttle_table``; drivers.px4_convert.thrust_to_normalized:
with exponent 2, thrust / (4 kf rpm_max^2), the fraction of full thrust, what PX4 and ArduPilot (GUID_OPTIONS bit
3) expect). Each command is sent on arrival, and the newest again by the loop so the stream never drops below
``setpoint_hz`` (20 Hz). The rules, by the runtime's command mode:
- ``arming``: its setpoint (minimum thrust, zero rates) streams from the first command: PX4 accepts OFFBOARD only
  after > 1 s of stream. Then COMMAND_LONG DO_SET_MODE to the autopilot's offboard mode (PX4 OFFBOARD: param1 1,
  param2 6; ArduPilot GUIDED_NOGPS: param2 20; PX4 only once the stream has run 1.2 s) and, once in it,
  COMPONENT_ARM_DISARM param1 1; retried every 0.3 s. ArduPilot: not before GUID_OPTIONS has been read with bit 3
  set (else its thrust is a climb rate).
- ``policy``: setpoints ONLY while the autopilot reports that mode and armed.
- ``fallback``: no more setpoints; DO_SET_MODE to the autopilot's landing (PX4 AUTO_LAND: main 4, sub 6;
  ArduPilot LAND 9), repeated until it reports it or disarmed.
- ``stop``: a zero-thrust setpoint while engaged, and COMPONENT_ARM_DISARM param1 0, param2 21196 (forced: the
  motors stop in the air), repeated while armed.
- no command for 0.5 s (``--command-timeout``): no more setpoints, and the landing mode if the autopilot is still
  flying for us. If the bridge dies too: PX4's COM_OF_LOSS_T failsafe lands; ArduPilot levels at zero climb rate
  after GUID_TIMEOUT and waits for a pilot (docs/mavlink.md).
An rpm policy is refused: a ``--profile`` whose action interface is rpm stops the bridge at start (exit 2), and
MotorCommands on ``command/motors`` are logged as an error and dropped (drivers.mavlink_wire.rpm_refusal).
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time

from deploy.loop import FixedRateLoop
from deploy.msgs import (
    BatteryState,
    MotorCommand,
    RateThrustCommand,
    make_header,
)
from deploy.transport import Ros2Node, TransportConfig
from drivers.mavlink_convert import (
    BootClock,
    State,
    attitude_target,
    battery_from_status,
    battery_from_sys_status,
    state_from_attitude_position,
    state_from_odometry,
)
from drivers.mavlink_link import AutopilotLink
from drivers.mavlink_wire import (
    FORCE_DISARM_MAGIC,
    GUID_OPTIONS_THRUST_AS_THRUST,
    MavlinkOptions,
    add_mavlink_arguments,
    connect,
    load_options,
    mavlink,
    rpm_refusal,
)
from drivers.px4_convert import ClockOffset, FrameError
from drivers.state_out import StateOut
from drivers.vehicle import VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.mavlink_bridge")
PAIR_WINDOW_US = 50_000  # ATTITUDE_QUATERNION and LOCAL_POSITION_NED this close are one sample
STREAM_BEFORE_SWITCH_S = 1.2  # PX4 wants > 1 s of setpoint stream before OFFBOARD; 0.2 s for the link's jitter


class MavlinkBridge:
    """Translates in both directions. Feed every received MAVLink message to :meth:`handle` (a receiver thread:
    :meth:`receive_forever`) and call :meth:`tick` at the loop rate (100 Hz)."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        conn,
        options: MavlinkOptions,
        vehicle_id: str | None = None,
        command_timeout_s: float = 0.5,
        retry_s: float = 0.3,
    ):
        if options.kf is None:
            raise ValueError("kf is required (N/RPM^2: --kf, kf in --config, or --profile's robot) to send thrust")
        self.options, self.command_timeout_s, self.retry_s = options, command_timeout_s, retry_s
        self.link = AutopilotLink(conn, options)
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.clock, self.boot = ClockOffset(), BootClock()
        self._attitude: tuple[int, object] | None = None  # (stamp us, ATTITUDE_QUATERNION)
        self._battery_status_seen = False
        self._autopilot_id = (options.target_system, options.target_component)
        self._last_state = -math.inf  # monotonic s of the last state published
        self._command: RateThrustCommand | None = None
        self._command_time = self._last_sent = self._stream_since = self._last_request = -math.inf
        self._stale_logged = self._not_engaged_logged = self._rpm_logged = self._param_logged = False
        self._logged_once: set[str] = set()
        self.state_out = StateOut(node, transport)
        rates, motors = transport.topic("rate_command"), transport.topic("motor_command")
        node.subscription(rates.name, RateThrustCommand, rates.qos, callback=self._on_command)
        node.subscription(motors.name, MotorCommand, motors.qos, callback=self._on_motor_command)

    def _once(self, key: str, level: int, text: str, *args) -> None:
        if key not in self._logged_once:
            self._logged_once.add(key)
            log.log(level, text, *args)

    # ------------------------------------------------------------------ autopilot -> runtime
    def handle(self, msg) -> None:
        """One received MAVLink message (the receiver thread)."""
        if (msg.get_srcSystem(), msg.get_srcComponent()) != self._autopilot_id:
            return  # another system, or another component of it (a camera's ODOMETRY is not the vehicle's)
        kind = msg.get_type()
        if kind == "ODOMETRY":
            self._on_odometry(msg)
        elif kind == "ATTITUDE_QUATERNION":
            self._attitude = (self._observe(msg.time_boot_ms * 1000), msg)
        elif kind == "LOCAL_POSITION_NED":
            self._on_local_position(msg)
        elif kind in ("BATTERY_STATUS", "SYS_STATUS"):
            self._on_battery(msg)
        else:
            self.link.handle(msg)

    def _observe(self, stamp_us: int) -> int:
        if self.boot.rebooted(stamp_us):
            log.warning("the autopilot's clock went back: rebooted? Measuring the clock offset again")
            self.clock = ClockOffset()
        self.clock.observe(stamp_us, time.time_ns())  # stamps out in ROS time
        return stamp_us

    def _on_odometry(self, msg) -> None:
        stamp_us = self._observe(msg.time_usec)
        try:
            state = state_from_odometry(msg)
        except FrameError as err:
            self._once("frame", logging.ERROR, "odometry dropped: %s (check the estimator / the vision setup)", err)
            return
        self._publish_state(state, stamp_us)

    def _on_local_position(self, msg) -> None:
        stamp_us = self._observe(msg.time_boot_ms * 1000)
        if self._attitude is None or abs(self._attitude[0] - stamp_us) > PAIR_WINDOW_US:
            return  # no attitude of the same moment yet
        self._publish_state(state_from_attitude_position(self._attitude[1], msg), stamp_us)

    def _publish_state(self, state: State, stamp_us: int) -> None:
        if not state.pose_finite:
            return  # no estimate yet: the runtime sees a stale state and will not arm
        self._last_state = time.monotonic()
        twist = (state.velocity, state.rates) if state.twist_finite else (None, None)
        self.state_out.publish(self.clock.to_host_ns(stamp_us), state.position, state.quat, *twist)

    def _on_battery(self, msg) -> None:
        if msg.get_type() == "BATTERY_STATUS":
            self._battery_status_seen = True
            voltage, current, remaining, cells = battery_from_status(msg)
        elif self._battery_status_seen:
            return  # BATTERY_STATUS says more
        else:
            voltage, current, remaining, cells = battery_from_sys_status(msg)
        self.state_out.publish_battery(
            BatteryState(
                make_header(time.time_ns()),
                voltage=voltage,
                current=-current,
                percentage=remaining,
                present=True,
                cell_voltage=cells,
            )
        )

    def receive_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            msg = self.link.receive(timeout_s=0.1)
            if msg is not None:
                self.handle(msg)

    # ------------------------------------------------------------------ runtime -> autopilot
    def _on_motor_command(self, msg: MotorCommand) -> None:
        if self.vehicle.accepts(msg) and not self._rpm_logged:
            self._rpm_logged = True
            log.error("command refused: %s", rpm_refusal("MotorCommand on command/motors"))

    def _on_command(self, msg: RateThrustCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        self._command, self._command_time = msg, time.monotonic()
        if (msg.mode == "arming" and self.link.usable) or (msg.mode == "policy" and self.link.engaged):
            self._send(msg)  # at once, not at the next tick: a tick period less of latency

    def _send(self, msg: RateThrustCommand, now: float | None = None) -> None:
        rate = (msg.body_rate.x, msg.body_rate.y, msg.body_rate.z)
        if not (math.isfinite(msg.thrust) and all(map(math.isfinite, rate))):
            return
        rates_frd, thrust = attitude_target(msg.thrust, rate, self.options.kf, self.options.curve)
        now = time.monotonic() if now is None else now
        if now - self._last_sent > 0.5:
            self._stream_since = now  # a new stream (PX4 counts > 1 s of it before offboard)
        self._last_sent = now
        self.link.send_setpoint(rates_frd, thrust)

    def _request(self, now: float, why: str, command: int, *params: float, custom_mode: int | None = None) -> None:
        if now - self._last_request >= self.retry_s:
            self._last_request = now
            log.info("-> autopilot: %s", why)
            self.link.command(command, *params, expect_mode=custom_mode)

    def _request_mode(self, now: float, custom_mode: int, why: str) -> None:
        params = self.link.autopilot.set_mode_params(custom_mode)
        self._request(now, why, mavlink.MAV_CMD_DO_SET_MODE, *params, custom_mode=custom_mode)

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.link.tick(now, state_flowing=now - self._last_state < 1.0)
        cmd, ap = self._command, self.link.autopilot
        if cmd is None or ap is None or not self.link.usable:
            return
        if now - self._command_time > self.command_timeout_s:
            self._on_stale(now)
            return
        self._stale_logged, mode, engaged = False, cmd.mode, self.link.engaged
        if mode == "arming" or (mode == "policy" and engaged):
            if now - self._last_sent >= 1.0 / self.options.setpoint_hz:
                self._send(cmd, now)  # the runtime's commands are late: keep the stream up
        if mode == "arming" and not engaged:
            self._arm(now)
        elif mode == "policy" and not engaged and not self._not_engaged_logged:
            self._not_engaged_logged = True
            log.error(
                "the runtime flies but the autopilot is not in %s and armed: no setpoints go out. Raise the profile's "
                "safety.common.arming_duration_s; check the autopilot's messages (STATUSTEXT) above",
                ap.mode_name(ap.offboard_mode),
            )
        elif mode == "fallback" and self.link.armed and self.link.mode != ap.land_mode:
            self._request_mode(now, ap.land_mode, f"{ap.mode_name(ap.land_mode)} (fallback: the autopilot lands)")
        elif mode == "stop":
            if engaged:
                self.link.send_setpoint((0.0, 0.0, 0.0), 0.0)
            if self.link.armed:
                self._request(now, "disarm (stop)", mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0.0, FORCE_DISARM_MAGIC)
        if mode in ("arming", "policy") and engaged:
            self._not_engaged_logged = False

    def _arm(self, now: float) -> None:
        ap, link = self.link.autopilot, self.link
        if ap.thrust_param:
            value = link.params.get(ap.thrust_param)
            if value is None or not int(value) & GUID_OPTIONS_THRUST_AS_THRUST:
                if value is not None and not self._param_logged:
                    self._param_logged = True
                    log.error(
                        "not arming: %s = %d, bit 3 (+8) clear: ArduPilot would read SET_ATTITUDE_TARGET's thrust as "
                        "a climb rate. Set %s bit 3 (e.g. 8) on the autopilot",
                        ap.thrust_param,
                        int(value),
                        ap.thrust_param,
                    )
                return
        if link.mode not in ap.offboard_modes:
            if not ap.stream_before_switch or now - self._stream_since > STREAM_BEFORE_SWITCH_S:
                self._request_mode(now, ap.offboard_mode, f"DO_SET_MODE {ap.mode_name(ap.offboard_mode)}")
        elif not link.armed:
            self._request(now, "arm", mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0, 0.0)

    def _on_stale(self, now: float) -> None:
        ap = self.link.autopilot
        if not self._stale_logged:
            self._stale_logged = True
            log.warning(
                "runtime commands stopped: no setpoints; %s, the autopilot's failsafe behind it",
                ap.mode_name(ap.land_mode),
            )
        if self.link.engaged:  # the autopilot would hold the last setpoint until its timeout: hand over now
            self._request_mode(now, ap.land_mode, f"{ap.mode_name(ap.land_mode)} (runtime commands stopped)")
        elif not self.link.armed:
            self._not_engaged_logged = self._param_logged = False  # the run is over


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.mavlink_bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--namespace", default=None, help="the robot's ROS 2 namespace (default: the profile's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this vehicle (default: the profile's)")
    ap.add_argument("--profile", default=None, help="deploy profile: namespace, vehicle id, kf; rpm policies refused")
    ap.add_argument("--rate", type=float, default=100.0, help="loop rate, Hz")
    ap.add_argument("--seconds", type=float, default=0.0, help="run this long; 0 = until killed")
    ap.add_argument("--command-timeout", type=float, default=0.5, help="s without commands -> stop, land")
    add_mavlink_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    namespace, vehicle_id = args.namespace, args.vehicle_id
    if args.profile:
        from deploy.profile import load_deploy_profile

        try:
            profile = load_deploy_profile(args.profile)
        except (ValueError, OSError) as err:
            ap.error(str(err))
        if profile.action_interface != "ctbr":
            ap.error(rpm_refusal(f"profile {args.profile} (action interface {profile.action_interface})"))
        namespace = namespace or profile.transport.namespace
        vehicle_id = vehicle_id or profile.vehicle_id
        args.kf = args.kf if args.kf is not None else profile.robot.kf
    try:
        options = load_options(args)
        if options.kf is None:
            raise ValueError("kf is required (N/RPM^2: --kf, kf in --config, or --profile's robot) to send thrust")
    except (ValueError, OSError) as err:
        ap.error(str(err))
    transport = TransportConfig.from_mapping({"namespace": namespace} if namespace else None)
    conn = connect(options.connection, options.baud, options.source_system, options.source_component)
    stop = threading.Event()
    with Ros2Node("mavlink_bridge", namespace=transport.namespace) as node:
        bridge = MavlinkBridge(node, transport, conn, options, vehicle_id, command_timeout_s=args.command_timeout)
        which = options.autopilot if options.autopilot != "auto" else "the autopilot its HEARTBEAT names"
        log.info(
            "MAVLink bridge for %s on domain %d: %s on %s",
            bridge.vehicle.vehicle_id,
            node.domain_id,
            which,
            conn.address,
        )
        receiver = threading.Thread(target=bridge.receive_forever, args=(stop,), name="mavlink-rx", daemon=True)
        receiver.start()
        seconds = args.seconds if args.seconds > 0 else 10.0 * 365 * 86400
        try:
            FixedRateLoop(args.rate).run(bridge.tick, duration_s=seconds)
        finally:
            stop.set()
            receiver.join(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
