"""The Crazyflie bridge: the runtime's topic table on one side, a Crazyflie 2.x through cflib on the other.

    python -m drivers.crazyflie_bridge --uri radio://0/80/2M/E7E7E7E7E7 --namespace /cf1 --vehicle-id cf1
        [--config launch/crazyflie_bridge.yaml] [--stale-action land|watchdog] [--seconds 0]

Written against cflib 0.1.34 and crazyflie-firmware 2026.08 (CRTP protocol 12); the packet formats and firmware
rules are cited in drivers/crazyflie_wire.py and drivers/fake_crazyflie_firmware.py.

State: the state log block at 100 Hz (drivers.crazyflie_link) -> ``state/pose`` (PoseStamped, world) and
``state/twist`` (TwistStamped: linear and angular in the body FLU) and ``state/odom`` (drivers/state_out.py), the status block
at 10 Hz -> ``state/battery`` (``voltage`` = pm.vbat, ``percentage`` from the firmware's 1S LiPo table,
drivers.crazyflie_convert.battery_fraction). Stamps: the log's milliseconds since the Crazyflie booted, mapped
onto this computer's ROS time (system clock) with drivers.px4_convert.ClockOffset (the smallest arrival - stamp
of the last 5 s).

Commands, this vehicle's only (drivers.vehicle.VehicleFilter):
- ``command/rates`` (RateThrustCommand, ctbr policies) -> the RPYT setpoint with roll and pitch in rate mode:
  ``send_setpoint(deg(p), deg(q), -deg(r), thrust)`` (drivers.crazyflie_convert.rates_to_rpyt), thrust newtons
  -> each motor's PWM through the thrust curve (``--config``: ``thrust_curve``; default Foerster's), capped at the
  firmware's 60000.
- ``command/motors`` (MotorCommand, rpm policies) is refused, logged once: the firmware takes per-motor commands
  from a host only as the parameters ``motorPowerSet.enable`` / ``m1..m4``, acknowledged writes sent one at a time
  (four per command), and the override sits below the supervisor, the setpoint watchdog and the emergency stop
  (motors.c: they keep running at the last values when the link drops or the supervisor stops them). rpm policies
  fly on board: docs/crazyflie_onboard.md.
Modes:
- ``arming``: one setpoint with thrust 0 first (crtp_commander_rpyt.c: thrust is locked from boot until one
  arrives); then, while the supervisor reports not armed, the arming request (supervisor port; the platform port
  before CRTP protocol 12), every 0.3 s; the runtime's arming setpoints (minimum thrust, zero rates) go out.
- ``arming`` / ``policy``: each command is sent at once, and the last one again every 0.1 s while it is fresh,
  so the firmware's 0.5 s setpoint watchdog never trips while the runtime commands.
- ``fallback``: the Crazyflie lands itself: ``notify_setpoint_stop`` (gives the commander back to the
  high-level commander) and ``land`` to the height of arming at ``--land-speed`` (0.3 m/s; at least 1 s); no more
  RPYT setpoints (one would cancel the landing). The firmware stops the motors when the descent ends. It needs
  an absolute position estimate (Lighthouse, Loco, motion capture, Flow deck), as the runtime does.
- ``stop``: ``send_stop_setpoint`` (motors off, in the air too) and a disarm request; the stop setpoint again
  every 0.1 s while the runtime sends stop, and for 3 s at least: a Crazyflie that arms itself re-arms after the
  disarm, and its supervisor counts it as flying for 2 s after the motors last ran; a setpoint stream that ended
  inside those 2 s would let the watchdog lock it (supervisor.c isFlyingCheck, the state machine's flying state).
- no command for 0.5 s (``--command-timeout``) while flying: no more setpoints. ``--stale-action land`` (default):
  the Crazyflie lands as on ``fallback``. ``--stale-action watchdog``: nothing; the firmware's watchdog levels the
  vehicle 0.5 s after the last setpoint (roll, pitch 0, thrust unchanged) and stops the motors at 2 s, then
  locks until rebooted (supervisor.c). If the bridge or the radio dies, that watchdog is what acts.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading
import time
from pathlib import Path

from deploy.loop import FixedRateLoop
from deploy.msgs import (
    BatteryState,
    MotorCommand,
    RateThrustCommand,
    make_header,
)
from deploy.transport import Ros2Node, TransportConfig
from drivers import crazyflie_wire as wire
from drivers.crazyflie_convert import (
    ThrustCurve,
    TickUnwrapper,
    battery_fraction,
    load_thrust_curve,
    rates_to_rpyt,
    state_from_log,
    thrust_to_command,
)
from drivers.crazyflie_link import CrazyflieLinkError, CrazyflieSession
from drivers.px4_convert import ClockOffset
from drivers.state_out import StateOut
from drivers.vehicle import VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.crazyflie_bridge")
RPM_REFUSAL = (
    "command refused: MotorCommand (an rpm policy). A Crazyflie takes per-motor commands from a host only as the "
    "parameters motorPowerSet.enable and m1..m4: acknowledged writes sent one at a time, four per command, and an "
    "override below the firmware's supervisor, setpoint watchdog and emergency stop (the motors keep the last "
    "values when the radio link drops). Fly rpm policies on board (docs/crazyflie_onboard.md), or a ctbr policy "
    "from the host (launch/crazyflie_ctbr.yaml)"
)
POWER_STATUS = {0: 2, 1: 1, 2: 4}  # pm.state (battery, charging, charged) -> BatteryState power_supply_status
WATCHED_BITS = (wire.INFO_ARMED, wire.INFO_FLYING, wire.INFO_TUMBLED, wire.INFO_LOCKED, wire.INFO_CRASHED)


class CrazyflieBridge:
    """Translates in both directions; call :meth:`tick` at the loop rate (100 Hz). ``session``: a connected
    :class:`~drivers.crazyflie_link.CrazyflieSession` (or anything with its command methods)."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        session,
        curve: ThrustCurve,
        vehicle_id: str | None = None,
        command_timeout_s: float = 0.5,
        keepalive_s: float = 0.1,
        retry_s: float = 0.3,
        land_speed_m_s: float = 0.3,
        stale_action: str = "land",
    ) -> None:
        if stale_action not in ("land", "watchdog"):
            raise ValueError(f"stale_action: expected 'land' or 'watchdog', got {stale_action!r}")
        self.session, self.curve, self.stale_action = session, curve, stale_action
        self.command_timeout_s, self.keepalive_s, self.retry_s = command_timeout_s, keepalive_s, retry_s
        self.land_speed_m_s = land_speed_m_s
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.clock, self._ticks = ClockOffset(), TickUnwrapper()
        self.lock = threading.Lock()
        self.info: int | None = None  # supervisor.info, None until the status block arrives
        self.position: tuple[float, float, float] | None = None
        self.lost: str | None = None
        self._command: RateThrustCommand | None = None
        self._command_time = self._last_sent = self._last_request = -math.inf
        self.phase: str | None = None  # None | "arming" | "policy" | "landing" | "stop"
        self.unlocked, self.ground_z, self._stop_start, self.stop_hold_s = False, 0.0, -math.inf, 3.0
        self._logged: set[str] = set()
        self.state_out = StateOut(node, transport)
        t_rates, t_motors = transport.topic("rate_command"), transport.topic("motor_command")
        node.subscription(t_rates.name, RateThrustCommand, t_rates.qos, callback=self._on_command)
        node.subscription(t_motors.name, MotorCommand, t_motors.qos, callback=self._on_rpm_command)

    def _once(self, key: str, level: int, message: str, *args) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.log(level, message, *args)

    # ------------------------------------------------------------------ Crazyflie -> runtime (cflib's thread)
    def _stamp_ns(self, ticks24: int) -> int:
        us = self._ticks(ticks24) * 1000
        self.clock.observe(us, time.time_ns())
        return self.clock.to_host_ns(us)

    def on_state(self, ticks24: int, values: dict) -> None:
        stamp_ns = self._stamp_ns(ticks24)
        s = state_from_log(values)
        self.position = tuple(float(v) for v in s.position)
        self.state_out.publish(stamp_ns, self.position, s.quaternion, s.velocity, s.rates)

    def on_status(self, ticks24: int, values: dict) -> None:
        stamp = self._stamp_ns(ticks24)
        info = values.get("supervisor.info")
        if info is not None:
            self._on_info(int(info))
        volts = float(values.get("pm.vbat", math.nan))
        status = POWER_STATUS.get(int(values.get("pm.state", 0)), 0)
        self.state_out.publish_battery(
            BatteryState(
                make_header(stamp),
                voltage=volts,
                percentage=battery_fraction(volts),
                power_supply_status=status,
                power_supply_technology=3,  # LIPO
                present=True,
                cell_voltage=[volts],
            )
        )

    def _on_info(self, info: int) -> None:
        old, self.info = self.info, info
        changed = [b for b in WATCHED_BITS if old is None or (old ^ info) >> b & 1]
        if changed:
            log.info("Crazyflie: %s", ", ".join(wire.info_names(info)) or "idle")
        if info >> wire.INFO_LOCKED & 1 and (old is None or not old >> wire.INFO_LOCKED & 1):
            log.error("the Crazyflie is locked (setpoint watchdog 2 s, emergency stop or free fall): reboot it")

    def on_lost(self, message: str) -> None:
        self.lost = message
        log.error(
            "radio link lost (%s): the Crazyflie levels 0.5 s after its last setpoint and stops its motors at 2 s",
            message.splitlines()[0] if message else "?",
        )

    # ------------------------------------------------------------------ runtime -> Crazyflie (DDS threads)
    def _on_rpm_command(self, msg: MotorCommand) -> None:
        if self.vehicle.accepts(msg):
            self._once("rpm", logging.ERROR, RPM_REFUSAL)

    def _on_command(self, msg: RateThrustCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        rates = (msg.body_rate.x, msg.body_rate.y, msg.body_rate.z)
        if not (math.isfinite(msg.thrust) and all(map(math.isfinite, rates))):
            self._once("nan", logging.ERROR, "command refused: RateThrustCommand with NaN or inf; nothing sent")
            return
        with self.lock:
            self._command, self._command_time = msg, time.monotonic()
            if msg.mode in ("arming", "policy") and self.unlocked and self.phase in ("arming", "policy"):
                self._send(msg)  # at once, not at the next tick

    def _send(self, msg: RateThrustCommand) -> None:
        thrust = thrust_to_command(msg.thrust, self.curve)
        if thrust == wire.RPYT_MAX_THRUST:
            self._once("cap", logging.WARNING, "thrust %.3f N is at the firmware's cap (60000)", msg.thrust)
        roll, pitch, yawrate = rates_to_rpyt((msg.body_rate.x, msg.body_rate.y, msg.body_rate.z))
        self.session.setpoint(roll, pitch, yawrate, thrust)
        self._last_sent = time.monotonic()

    def _armed(self) -> bool | None:
        return None if self.info is None else bool(self.info >> wire.INFO_ARMED & 1)

    def _land(self, why: str) -> None:
        z = self.position[2] if self.position else self.ground_z
        duration = max(1.0, (z - self.ground_z) / self.land_speed_m_s)
        log.info("-> Crazyflie: land to %.2f m in %.1f s (%s)", self.ground_z, duration, why)
        self.session.notify_setpoint_stop()
        self.session.land(self.ground_z, duration)
        self.phase = "landing"

    def tick(self, now: float | None = None) -> bool | None:
        """One loop period; False once the radio link is lost (the loop ends)."""
        if self.lost is not None:
            return False
        now = time.monotonic() if now is None else now
        with self.lock:
            cmd = self._command
            if cmd is None:
                return None
            if now - self._command_time <= self.command_timeout_s:
                self._mode(cmd, now)
            elif self.phase == "stop" and now - self._stop_start < self.stop_hold_s:
                self._mode(cmd, now)  # stop setpoints until the supervisor's is-flying memory (2 s) has run out
            elif self.phase in ("arming", "policy"):
                log.warning("runtime commands stopped: no more setpoints (--stale-action %s)", self.stale_action)
                if self.stale_action == "land":
                    self._land("runtime commands stopped")
                else:
                    self.phase = None  # the firmware's watchdog: level at 0.5 s, motors off and locked at 2 s
        return None

    def _mode(self, cmd: RateThrustCommand, now: float) -> None:
        mode = cmd.mode
        if mode in ("arming", "policy"):
            if self.phase not in ("arming", "policy"):
                self.phase, self.ground_z = "arming", self.position[2] if self.position else 0.0
                log.info("-> Crazyflie: thrust unlock (one setpoint with thrust 0)")
                self.session.setpoint(0.0, 0.0, 0.0, 0)
                self.unlocked, self._last_sent = True, now
            armed = self._armed()  # None: no supervisor.info yet (or none in this firmware): one request
            if mode == "arming" and now - self._last_request >= self.retry_s:
                if armed is False or (armed is None and self._last_request == -math.inf):
                    self._last_request = now
                    log.info("-> Crazyflie: arming request")
                    self.session.arm(True)
            if mode == "policy":
                self.phase = "policy"
            if now - self._last_sent >= self.keepalive_s:
                self._send(cmd)
        elif mode == "fallback" and self.phase != "landing":
            self._land("fallback")
        elif mode == "stop":
            if self.phase != "stop":
                log.info("-> Crazyflie: stop setpoint and disarm request")
                self.session.stop_setpoint()
                self.session.arm(False)
                self.phase, self._last_sent, self._stop_start = "stop", now, now
            elif now - self._last_sent >= self.keepalive_s:
                self.session.stop_setpoint()
                self._last_sent = now


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.crazyflie_bridge", description=__doc__.splitlines()[0])
    ap.add_argument("--uri", required=True, help="radio://0/80/2M/E7E7E7E7E7, udp://127.0.0.1:19850 (the fake), ...")
    ap.add_argument("--namespace", default=None, help="the robot's ROS 2 namespace (the deploy profile's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this vehicle (default: the namespace)")
    ap.add_argument("--config", type=Path, default=None, help="YAML with crazyflie: {thrust_curve: {a, b, c}}")
    ap.add_argument("--rate", type=float, default=100.0, help="loop rate, Hz")
    ap.add_argument("--seconds", type=float, default=0.0, help="run this long; 0 = until killed")
    ap.add_argument("--command-timeout", type=float, default=0.5, help="s without commands -> no more setpoints")
    ap.add_argument("--stale-action", choices=("land", "watchdog"), default="land", help="when commands stop")
    ap.add_argument("--land-speed", type=float, default=0.3, help="high-level land descent speed, m/s")
    ap.add_argument("--toc-cache", type=Path, default=None, help="directory for cflib's TOC cache (faster connect)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("cflib").setLevel(logging.WARNING)
    try:
        curve = load_thrust_curve(args.config)
    except (OSError, TypeError, ValueError) as err:
        ap.error(f"--config {args.config}: {err}")
    transport = TransportConfig.from_mapping({"namespace": args.namespace} if args.namespace else None)
    with Ros2Node("crazyflie_bridge", namespace=transport.namespace) as node:
        holder: dict[str, CrazyflieBridge] = {}
        session = CrazyflieSession(
            args.uri,
            on_state=lambda ts, v: holder["b"].on_state(ts, v),
            on_status=lambda ts, v: holder["b"].on_status(ts, v),
            on_lost=lambda msg: holder["b"].on_lost(msg),
            toc_cache=args.toc_cache,
        )
        bridge = holder["b"] = CrazyflieBridge(
            node,
            transport,
            session,
            curve,
            args.vehicle_id,
            command_timeout_s=args.command_timeout,
            land_speed_m_s=args.land_speed,
            stale_action=args.stale_action,
        )
        try:
            session.open()
        except CrazyflieLinkError as err:
            log.error("%s", err)
            return 1
        log.info("Crazyflie bridge for %s on domain %d", bridge.vehicle.vehicle_id, node.domain_id)
        signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM as Ctrl-C: restore the parameters, close the link
        seconds = args.seconds if args.seconds > 0 else 10.0 * 365 * 86400
        try:
            FixedRateLoop(args.rate).run(bridge.tick, duration_s=seconds)
        except KeyboardInterrupt:
            pass
        finally:
            session.close(restore=bridge.lost is None)
    return 1 if bridge.lost is not None else 0


if __name__ == "__main__":
    raise SystemExit(main())
