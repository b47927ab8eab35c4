"""The rules a flight controller applies to a companion computer over MAVLink, for drivers/fake_mavlink.py: pure
state (mode, armed, setpoint stream), no I/O and no simulator, so each rule is testable on its own.

PX4 (docs ``flight_modes/offboard.md``, "Offboard Mode"; commander):
- The switch to OFFBOARD, and arming in it, need the setpoint stream (any MAVLink setpoint message: here
  SET_ATTITUDE_TARGET) at >= 2 Hz for more than 1 s; otherwise COMMAND_ACK TEMPORARILY_REJECTED / DENIED.
- In OFFBOARD, a gap in the stream longer than COM_OF_LOSS_T is the offboard-loss failsafe: AUTO_LAND when armed
  (COM_OBL_RC_ACT = Land), POSCTL when not.
Ardupilot Copter (dev docs "Copter Commands in Guided Mode"; ArduCopter ``mode_guided.cpp``,
``GCS_MAVLink_Copter.cpp``):
- GUIDED / GUIDED_NOGPS are entered at any time (no stream needed); SET_ATTITUDE_TARGET is used only in them.
  Attitude ignored and all three rates given = body-rate control; a mix of ignored and given rates, or the
  thrust ignored, drops the target. ``thrust`` is a thrust with GUID_OPTIONS bit 3 (+8), else a climb rate
  (0.5 = none, 1 = WPNAV_SPEED_UP 2.5 m/s, 0 = WPNAV_SPEED_DN 1.5 m/s down).
- No new target for GUID_TIMEOUT (3 s): level attitude, zero climb rate (not a landing: the companion, or the RC
  pilot, must land it). LAND lands and disarms.
Both: setpoints are ignored outside those modes and while disarmed, and dropped at every mode change; arming is
accepted only in the mode that takes the setpoints (the real autopilots also arm in manual modes with an RC
transmitter: this stand-in refuses, so a companion that arms before it switches is caught); a disarm in flight
needs param2 21196 (forced); on the ground after a landing the vehicle disarms itself.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from drivers.mavlink_wire import (
    FORCE_DISARM_MAGIC,
    GUID_OPTIONS_THRUST_AS_THRUST,
    RATES_THRUST_TYPE_MASK,
    Autopilot,
    mavlink,
)

log = logging.getLogger("sim2real.fake_mavlink")
STREAM_MIN_HZ, STREAM_WARMUP_S = 2.0, 1.0
ACCEPTED, TEMPORARILY_REJECTED, DENIED, UNSUPPORTED = 0, 1, 2, 3
WPNAV_SPEED_UP_M_S, WPNAV_SPEED_DN_M_S = 2.5, 1.5


class AutopilotRules:
    """Mode, arming and the setpoint stream of one autopilot. Times ``t`` in seconds of one monotonic clock.

    :meth:`control` says what flies the vehicle now: ("off",) disarmed; ("idle",) armed, nothing to fly;
    ("rates", thrust 0..1, rates FRD (3,)); ("climb", climb rate m/s up, rates FRD (3,)) (ArduPilot without
    GUID_OPTIONS bit 3); ("level",) level attitude at zero climb rate; ("land",) the autopilot's landing."""

    def __init__(self, autopilot: Autopilot, loss_timeout_s: float | None = None, guid_options: int = 8) -> None:
        self.autopilot = autopilot
        self.loss_timeout_s = autopilot.loss_timeout_s if loss_timeout_s is None else float(loss_timeout_s)
        self.params = {autopilot.loss_param: self.loss_timeout_s}
        if autopilot.thrust_param:
            self.params[autopilot.thrust_param] = float(guid_options)
        self.armed, self.mode, self.level_hold = False, autopilot.boot_mode, False
        self._stream_start = self._last_setpoint = -math.inf
        self.setpoint: tuple[float, np.ndarray] | None = None  # (thrust 0..1, rates FRD) while engaged
        self._setpoint_time = -math.inf
        self._bad_mask_logged = False

    # ------------------------------------------------------------------ state
    @property
    def engaged(self) -> bool:
        return self.armed and self.mode in self.autopilot.offboard_modes

    def stream_ok(self, t: float) -> bool:
        """The setpoint stream runs at >= 2 Hz and has for more than 1 s."""
        return t - self._last_setpoint <= 1.0 / STREAM_MIN_HZ and t - self._stream_start > STREAM_WARMUP_S

    def set_mode(self, mode: int, why: str) -> None:
        if mode != self.mode:
            self.mode, self.setpoint, self.level_hold = mode, None, False  # setpoints do not carry over
            log.info("mode %s (%s)", self.autopilot.mode_name(mode), why)

    def set_armed(self, armed: bool, why: str) -> None:
        if armed != self.armed:
            self.armed, self.setpoint, self.level_hold = armed, None, False
            log.info("%s (%s)", "armed" if armed else "disarmed", why)

    # ------------------------------------------------------------------ input
    def on_setpoint(self, type_mask: int, thrust: float, rates_frd, t: float) -> bool:
        """A SET_ATTITUDE_TARGET arrived at ``t``; True if it is now the setpoint."""
        if t - self._last_setpoint > 1.0 / STREAM_MIN_HZ:
            self._stream_start = t  # a new stream
        self._last_setpoint = t
        if not self.engaged:
            return False  # outside offboard / guided, or disarmed: ignored
        rates = np.asarray(rates_frd, dtype=float)
        if not (type_mask == RATES_THRUST_TYPE_MASK and math.isfinite(thrust) and np.isfinite(rates).all()):
            if not self._bad_mask_logged:
                self._bad_mask_logged = True
                log.warning(
                    "SET_ATTITUDE_TARGET dropped: type_mask %d (this stand-in flies body rates + thrust)", type_mask
                )
            self.setpoint = None
            return False
        self.setpoint, self._setpoint_time, self.level_hold = (float(thrust), rates), t, False
        return True

    def on_command(self, command: int, p1: float, p2: float, p3: float, t: float, in_air: bool) -> tuple[int, str]:
        """A COMMAND_LONG -> (MAV_RESULT, reason for a refusal or "")."""
        ap = self.autopilot
        if command == mavlink.MAV_CMD_DO_SET_MODE:
            if not round(p1) & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
                return UNSUPPORTED, "DO_SET_MODE without MAV_MODE_FLAG_CUSTOM_MODE_ENABLED in param1"
            mode = ap.mode_of_params(p2, p3)
            if mode not in ap.names:
                return UNSUPPORTED, f"unknown mode {p2:g}/{p3:g}"
            if mode in ap.offboard_modes and ap.stream_before_switch and not self.stream_ok(t):
                return TEMPORARILY_REJECTED, "offboard refused: no setpoint stream (>= 2 Hz for > 1 s)"
            self.set_mode(mode, "DO_SET_MODE")
            return ACCEPTED, ""
        if command == mavlink.MAV_CMD_NAV_LAND:
            self.set_mode(ap.land_mode, "NAV_LAND")
            return ACCEPTED, ""
        if command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM and round(p1) == 1:
            if self.armed:
                return ACCEPTED, ""
            if self.mode not in ap.offboard_modes:
                return DENIED, f"arming refused: in {ap.mode_name(self.mode)}, not {ap.mode_name(ap.offboard_mode)}"
            if ap.stream_before_switch and not self.stream_ok(t):
                return DENIED, "arming refused: no setpoint stream (>= 2 Hz for > 1 s)"
            self.set_armed(True, "arm command")
            return ACCEPTED, ""
        if command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            if self.armed and in_air and p2 != FORCE_DISARM_MAGIC:
                return DENIED, "disarm refused: in flight (param2 21196 forces it)"
            self.set_armed(False, "disarm command" + (" (forced)" if in_air else ""))
            return ACCEPTED, ""
        if command == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
            return ACCEPTED, ""  # this stand-in streams its state at its loop rate anyway
        return UNSUPPORTED, f"command {command} not supported here"

    # ------------------------------------------------------------------ time
    def update(self, t: float) -> None:
        """The stream-loss rules, once per control period."""
        ap = self.autopilot
        if ap.loss_lands and self.mode in ap.offboard_modes and t - self._last_setpoint > self.loss_timeout_s:
            why = f"{ap.loss_param}: setpoint stream lost"
            self.set_mode(ap.land_mode if self.armed else ap.boot_mode, why)
        elif not ap.loss_lands and self.setpoint is not None and t - self._setpoint_time > self.loss_timeout_s:
            self.setpoint, self.level_hold = None, True
            log.warning("%s: no target for %.1f s: level attitude, zero climb rate", ap.loss_param, self.loss_timeout_s)

    def control(self, in_air: bool) -> tuple:
        if not self.armed:
            return ("off",)
        if self.mode == self.autopilot.land_mode:
            return ("land",)
        if self.engaged and self.setpoint is not None:
            thrust, rates = self.setpoint
            param = self.autopilot.thrust_param
            if param and not int(self.params[param]) & GUID_OPTIONS_THRUST_AS_THRUST:
                u = min(max(thrust, 0.0), 1.0)
                up = (u - 0.5) * 2.0 * (WPNAV_SPEED_UP_M_S if u > 0.5 else WPNAV_SPEED_DN_M_S)
                return ("climb", up, rates)
            return ("rates", thrust, rates)
        if self.engaged and in_air:
            return ("level",)  # ArduPilot after GUID_TIMEOUT; PX4 never gets here in the air (it lands)
        return ("idle",)
