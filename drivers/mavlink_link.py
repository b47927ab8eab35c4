"""The flight controller as the MAVLink bridge sees it over one connection: who it is and what it reports
(HEARTBEAT, COMMAND_ACK, PARAM_VALUE, STATUSTEXT), and what this computer sends it (its own HEARTBEAT, COMMAND_LONG,
SET_ATTITUDE_TARGET, SET_MESSAGE_INTERVAL, PARAM_REQUEST_READ). Sending is thread-safe (one lock around pymavlink);
:meth:`AutopilotLink.handle` and :meth:`AutopilotLink.receive` belong to one receiver thread."""

from __future__ import annotations

import logging
import math
import threading
import time

from drivers.mavlink_wire import (
    ARMED_FLAG,
    AUTOPILOTS,
    BY_MAV_AUTOPILOT,
    COMMAND_NAMES,
    RATES_THRUST_TYPE_MASK,
    RESULT_NAMES,
    Autopilot,
    MavlinkOptions,
    mavlink,
)

log = logging.getLogger("sim2real.mavlink_bridge")
ACCEPTED = 0
HINTS = {
    mavlink.MAV_CMD_DO_SET_MODE: "PX4 takes OFFBOARD only after > 1 s of setpoint stream and with a position estimate",
    mavlink.MAV_CMD_COMPONENT_ARM_DISARM: "the autopilot's pre-arm checks: read its STATUSTEXT above, or QGroundControl",
}


class AutopilotLink:
    """State: ``autopilot`` (None until a HEARTBEAT names it, with ``--autopilot auto``), ``armed``, ``mode``
    (custom_mode), ``params`` (read so far), ``mismatch`` (the HEARTBEAT names another autopilot than configured).
    ``heartbeat_timeout_s``: without a HEARTBEAT for this long the autopilot counts as gone (nothing is sent)."""

    def __init__(self, conn, options: MavlinkOptions, heartbeat_timeout_s: float = 3.0) -> None:
        self.conn, self.options, self.heartbeat_timeout_s = conn, options, heartbeat_timeout_s
        self.configured: Autopilot | None = AUTOPILOTS.get(options.autopilot)
        self.autopilot = self.configured
        self.mismatch, self.armed, self.mode = False, False, None
        self.params: dict[str, float] = {}
        self.heartbeat_time = -math.inf
        self._reported: tuple[bool, int] | None = None  # (armed, mode) of the last HEARTBEAT
        self._lock = threading.Lock()
        self._boot = time.monotonic()
        self._pending: dict[int, float] = {}  # command -> the mode or armed state it asks for
        self._last_heartbeat_out = self._last_interval_request = self._last_param_request = -math.inf
        self._logged: set = set()

    def _once(self, key, level: int, text: str, *args) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.log(level, text, *args)

    @property
    def usable(self) -> bool:
        """An autopilot of the configured kind reports, and recently."""
        fresh = time.monotonic() - self.heartbeat_time <= self.heartbeat_timeout_s
        return self.autopilot is not None and not self.mismatch and fresh

    @property
    def engaged(self) -> bool:
        """It flies for us: armed, in a mode that takes SET_ATTITUDE_TARGET."""
        return self.usable and self.armed and self.mode in self.autopilot.offboard_modes

    # ------------------------------------------------------------------ in
    def receive(self, timeout_s: float):
        try:
            return self.conn.recv_match(blocking=True, timeout=timeout_s)
        except OSError as err:  # a serial port unplugged; pymavlink reconnects
            self._once(("rx", str(err)), logging.ERROR, "MAVLink receive failed: %s", err)
            time.sleep(timeout_s)
            return None

    def handle(self, msg) -> None:
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            self._on_heartbeat(msg)
        elif kind == "COMMAND_ACK":
            self._on_ack(msg)
        elif kind == "PARAM_VALUE":
            name = msg.param_id if isinstance(msg.param_id, str) else msg.param_id.decode(errors="replace")
            self.params[name.rstrip("\x00")] = float(msg.param_value)
        elif kind == "STATUSTEXT":
            level = logging.WARNING if msg.severity <= mavlink.MAV_SEVERITY_WARNING else logging.INFO
            log.log(level, "autopilot says: %s", str(msg.text).rstrip("\x00"))

    def _on_heartbeat(self, msg) -> None:
        if msg.autopilot == mavlink.MAV_AUTOPILOT_INVALID:
            return  # a camera, a gimbal, a ground station: not the flight controller
        seen = BY_MAV_AUTOPILOT.get(msg.autopilot)
        if self.configured is None and seen is None:
            self._once(
                "kind", logging.ERROR, "HEARTBEAT autopilot %d: neither PX4 (12) nor ArduPilot (3)", msg.autopilot
            )
            return
        if self.configured is not None and seen is not self.configured:
            self.mismatch = True
            self._once(
                "mismatch",
                logging.ERROR,
                "the autopilot's HEARTBEAT says MAV_AUTOPILOT %d (%s), but the bridge is set for %s: its modes would be "
                "encoded wrong, so nothing is sent. Fix --autopilot (or autopilot: in --config), or use auto",
                msg.autopilot,
                seen.name if seen else "unknown",
                self.configured.name,
            )
            return
        if self.autopilot is None:
            self.autopilot = seen
            log.info("autopilot: %s (from its HEARTBEAT)", seen.name)
        armed, mode = bool(msg.base_mode & ARMED_FLAG), int(msg.custom_mode)
        if (armed, mode) != self._reported or not self.usable:
            log.info("autopilot: %s, %s", self.autopilot.mode_name(mode), "armed" if armed else "disarmed")
        self.armed, self.mode, self.heartbeat_time, self._reported = armed, mode, time.monotonic(), (armed, mode)
        self._logged.discard("lost")

    def _on_ack(self, msg) -> None:
        asked = self._pending.pop(msg.command, None)
        name = COMMAND_NAMES.get(msg.command, str(msg.command))
        if msg.result != ACCEPTED:
            self._once(
                ("ack", msg.command, msg.result),
                logging.WARNING,
                "COMMAND_ACK %s %s (%s)",
                name,
                RESULT_NAMES.get(msg.result, msg.result),
                HINTS.get(msg.command, "see the autopilot's STATUSTEXT"),
            )
            return
        self._logged = {k for k in self._logged if not (isinstance(k, tuple) and k[:2] == ("ack", msg.command))}
        if asked is None:
            return
        if msg.command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            self.armed = asked == 1.0  # the next HEARTBEAT confirms; it comes at 1 Hz
        elif msg.command in (mavlink.MAV_CMD_DO_SET_MODE, mavlink.MAV_CMD_NAV_LAND):
            self.mode = int(asked)

    # ------------------------------------------------------------------ out
    def _boot_ms(self) -> int:
        return int((time.monotonic() - self._boot) * 1000) & 0xFFFFFFFF

    def _write(self, send, *args) -> None:
        try:
            with self._lock:
                send(*args)
        except OSError as err:
            self._once(("tx", str(err)), logging.ERROR, "MAVLink send failed: %s", err)

    def command(self, command: int, *params: float, expect_mode: int | None = None) -> None:
        """COMMAND_LONG to the autopilot; params: param1.. (up to 7)."""
        p = [*params, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0][:7]
        o = self.options
        if command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            self._pending[command] = p[0]
        elif expect_mode is not None:
            self._pending[command] = float(expect_mode)
        self._write(self.conn.mav.command_long_send, o.target_system, o.target_component, command, 0, *p)

    def send_setpoint(self, rates_frd, thrust: float) -> None:
        """SET_ATTITUDE_TARGET: body rates FRD rad/s (3,), normalized thrust 0..1, attitude ignored."""
        o = self.options
        args = (self._boot_ms(), o.target_system, o.target_component, RATES_THRUST_TYPE_MASK, [1.0, 0.0, 0.0, 0.0])
        self._write(self.conn.mav.set_attitude_target_send, *args, *map(float, rates_frd), float(thrust))

    def tick(self, now: float, state_flowing: bool) -> None:
        """Our HEARTBEAT at 1 Hz; ask for the state messages (every 2 s while none flows) and for the thrust
        parameter (every 1 s until read); note a lost autopilot."""
        if now - self._last_heartbeat_out >= 1.0:
            self._last_heartbeat_out = now
            args = (mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, mavlink.MAV_STATE_ACTIVE)
            self._write(self.conn.mav.heartbeat_send, *args)
        if self.heartbeat_time > -math.inf and not self.usable and not self.mismatch:
            self._once("lost", logging.WARNING, "no HEARTBEAT from the autopilot for %g s: nothing is sent", 3.0)
        if not self.usable:
            return
        ap, o = self.autopilot, self.options
        if not state_flowing and now - self._last_interval_request >= 2.0:
            self._last_interval_request = now
            for message_id in ap.state_messages:
                self.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, float(message_id), 1e6 / o.state_hz)
        if ap.thrust_param and ap.thrust_param not in self.params and now - self._last_param_request >= 1.0:
            self._last_param_request = now
            args = (o.target_system, o.target_component, ap.thrust_param.encode(), -1)
            self._write(self.conn.mav.param_request_read_send, *args)
