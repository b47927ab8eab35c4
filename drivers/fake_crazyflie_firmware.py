"""The rules of the Crazyflie's firmware that a host must live with, as a model: commander, supervisor,
high-level commander. No simulator here: :meth:`Firmware.update` takes the vehicle's state and returns what the
firmware would ask of its motors (:class:`Control`); drivers/fake_crazyflie.py flies it.

Modelled on bitcraze/crazyflie-firmware 2026.08 (commit 2a18fc29), brushed Crazyflie 2.x defaults:

- Commander (commander.c, crtp_commander.c): one setpoint with a priority (0 disable at boot, 1 high-level,
  2 CRTP); a setpoint of lower priority than the current one is ignored; a CRTP setpoint disables the
  high-level planner; ``notify_setpoint_stop`` (port 7, channel 1) relaxes the priority to 1 so the high-level
  commander's setpoints are taken again.
- RPYT setpoint (crtp_commander_rpyt.c): thrust is locked from boot (and whenever the priority is 0) until one
  setpoint with thrust 0 arrives; a locked thrust or one below 1000 is 0; above 60000 it is capped. Roll and
  pitch are angles (deg) unless ``flightmode.stabModeRoll`` / ``stabModePitch`` is 0 (rate, deg/s); yaw is a
  rate unless ``stabModeYaw`` is 1. Pitch is the legacy one (positive nose up) and the yaw rate is negated.
- Supervisor (supervisor.c, supervisor_state_machine.c): not initialized -> pre-flight checks not passed ->
  passed -> (armed) arming -> ready to fly -> (thrust) flying <-> landed. With ``require_arming`` (a Crazyflie
  2.1 Brushless, CONFIG_MOTORS_REQUIRE_ARMING) the arming request (supervisor port 9 channel 1 ``[1, 1]``, or
  the platform port before CRTP protocol 12) is needed; otherwise it arms itself. Motors run only in arming,
  ready, flying, warning-level-out and landed. The setpoint watchdog: in flight, no new setpoint for more than
  0.5 s -> "warning, level out" (roll, pitch angle 0, yaw rate 0, thrust as it was); more than 2 s -> "exception,
  free fall" -> "locked": motors off until a reboot. Not armed in flight -> reset (motors off). Ready to fly for
  30 s without flying -> disarmed; landed for 3 s -> reset. Tumbled (up axis below 60 deg tilt for 1 s, or
  upside down for 0.1 s) -> crashed. ``stabilizer.stop`` or the emergency-stop command -> free fall -> locked.
- High-level commander (crtp_commander_high_level.c, planner.c): ``land_2`` plans a descent from the current
  position to an absolute height over a duration (a polynomial in the firmware; a minimum-jerk profile here); its
  setpoints (priority 1) fly the position controller; when the descent ends the planner stops and gives a null
  setpoint (motors off). ``stop`` gives null setpoints at once. Refused while the system cannot fly.
- ``motorPowerSet.enable`` = 1 (motors.c): ``m1..m4`` go to the motors as PWM, below every rule above: the
  supervisor's stop, the watchdog and the e-stop do not act on it.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass, field

from drivers import crazyflie_wire as wire

log = logging.getLogger("sim2real.fake_crazyflie")

PRIORITY_DISABLE, PRIORITY_HIGHLEVEL, PRIORITY_CRTP = 0, 1, 2
WDT_LEVEL_S, WDT_SHUTDOWN_S = 0.5, 2.0  # supervisor.c COMMANDER_WDT_TIMEOUT_STABILIZE / _SHUTDOWN
IS_FLYING_HYSTERESIS_S, PREFLIGHT_TIMEOUT_S, LANDING_TIMEOUT_S = 2.0, 30.0, 3.0
TILT_UP_Z, TILT_S, UPSIDE_DOWN_UP_Z, UPSIDE_DOWN_S = 0.5, 1.0, -0.2, 0.1  # platform_defaults.h tumble check
MOTORS_ALLOWED = {"arming", "ready to fly", "flying", "warning, level out", "landed"}
CAN_FLY = {"ready to fly", "flying", "warning, level out", "landed"}


@dataclass
class Setpoint:
    """setpoint_t, the parts used here. Modes: "disable", "abs" (angle deg / position m), "velocity" (deg/s).
    roll about +x; pitch legacy (positive nose up); yaw_rate about +z (deg/s); thrust in PWM counts."""

    timestamp: float = 0.0
    thrust: float = 0.0
    roll_mode: str = "disable"
    pitch_mode: str = "disable"
    yaw_mode: str = "disable"
    roll: float = 0.0
    pitch: float = 0.0
    yaw_rate: float = 0.0
    position: tuple[float, float, float] | None = None  # world m (mode.x/y/z abs: the position controller)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def null(self) -> bool:
        return self.position is None and self.thrust == 0


@dataclass(frozen=True)
class Control:
    """What the firmware asks of the motors this tick. kind: "off"; "attitude" (thrust PWM counts with roll,
    pitch, yaw as in :class:`Setpoint`); "position" (the position controller on ``setpoint.position``);
    "motors" (``pwm`` per motor M1..M4, the motorPowerSet override)."""

    kind: str
    setpoint: Setpoint = field(default_factory=Setpoint)
    pwm: tuple[int, ...] = ()

    @property
    def motors_on(self) -> bool:
        return self.kind != "off"


@dataclass
class _Landing:
    start_s: float
    start: tuple[float, float, float]
    height_m: float
    duration_s: float


class Firmware:
    """The rules above. ``params``: the values behind the fake's parameter TOC (name -> number)."""

    def __init__(self, require_arming: bool = False, now: float = 0.0) -> None:
        self.params: dict[str, float] = {
            "flightmode.althold": 0,
            "flightmode.poshold": 0,
            "flightmode.posSet": 0,
            "flightmode.yawMode": 2,  # x-mode
            "flightmode.stabModeRoll": wire.STAB_MODE_ANGLE,
            "flightmode.stabModePitch": wire.STAB_MODE_ANGLE,
            "flightmode.stabModeYaw": wire.STAB_MODE_RATE,
            "stabilizer.controller": 0,  # auto: the PID controller
            "stabilizer.stop": 0,
            "supervisor.tmblChckEn": 1,
            "motorPowerSet.enable": 0,
            "motorPowerSet.m1": 0,
            "motorPowerSet.m2": 0,
            "motorPowerSet.m3": 0,
            "motorPowerSet.m4": 0,
        }
        self.auto_arm = not require_arming
        self.thrust_locked, self.priority = True, PRIORITY_DISABLE
        self.setpoint = Setpoint(timestamp=now)  # the null setpoint of commanderInit
        self.state, self.armed, self.crashed, self.emergency_stop = "not initialized", False, False, False
        self.hl_state, self.landing = "disabled", None  # "disabled" | "landing" | "stopped"
        self._hl_position = (0.0, 0.0, 0.0)
        self._latest_thrust_s = self._latest_arming_s = self._latest_landing_s = None
        self._tumble_start_s: float | None = None
        self._tumbled = self._motors_on = False
        self.locked_thrust_packets = 0  # RPYT setpoints with thrust that the lock turned into 0

    # ------------------------------------------------------------------ packets
    def set_setpoint(self, sp: Setpoint, priority: int, now: float) -> None:
        """commanderSetSetpoint."""
        if priority >= self.priority:
            sp.timestamp = now
            self.setpoint, self.priority = sp, priority
            if priority > PRIORITY_HIGHLEVEL and self.hl_state != "disabled":
                self.hl_state, self.landing = "disabled", None  # crtpCommanderHighLevelStop: plan_disable

    def rpyt(self, data: bytes, now: float) -> None:
        v = wire.decode_rpyt(data)
        if self.priority == PRIORITY_DISABLE:
            self.thrust_locked = True
        if v.thrust == 0:
            self.thrust_locked = False
        if self.thrust_locked and v.thrust >= wire.RPYT_MIN_THRUST:
            self.locked_thrust_packets += 1
        thrust = 0 if self.thrust_locked or v.thrust < wire.RPYT_MIN_THRUST else min(v.thrust, wire.RPYT_MAX_THRUST)
        p = self.params
        sp = Setpoint(thrust=float(thrust), roll=v.roll, pitch=v.pitch)
        sp.roll_mode = "velocity" if p["flightmode.stabModeRoll"] == wire.STAB_MODE_RATE else "abs"
        sp.pitch_mode = "velocity" if p["flightmode.stabModePitch"] == wire.STAB_MODE_RATE else "abs"
        if p["flightmode.stabModeYaw"] == wire.STAB_MODE_RATE:
            sp.yaw_mode, sp.yaw_rate = "velocity", -v.yaw  # "legacy rate input is inverted"
        else:
            sp.yaw_mode = "abs"  # yaw angle: not modelled (held)
        self.set_setpoint(sp, PRIORITY_CRTP, now)

    def generic(self, channel: int, data: bytes, now: float) -> None:
        if channel == wire.GENERIC_SETPOINT_CHANNEL and data and data[0] == wire.TYPE_STOP:
            self.set_setpoint(Setpoint(), PRIORITY_CRTP, now)  # memset 0: motors off
        elif channel == wire.GENERIC_META_CHANNEL and data and data[0] == wire.META_NOTIFY_SETPOINT_STOP:
            self.priority = PRIORITY_HIGHLEVEL  # commanderRelaxPriority
        elif channel == wire.GENERIC_SETPOINT_CHANNEL and data:
            log.warning("generic setpoint type %d is not modelled: ignored", data[0])

    def high_level(self, data: bytes, now: float) -> None:
        if not data:
            return
        if self.state not in CAN_FLY:
            log.warning("high-level command %d refused: the supervisor does not let the Crazyflie fly", data[0])
        elif data[0] == wire.HL_LAND_2:
            land = wire.decode_hl_land(data)
            start = self._hl_position if self.hl_state != "landing" else self._hl_goal(now)[0]
            self.hl_state = "landing"
            self.landing = _Landing(now, start, land.height_m, max(land.duration_s, 1e-3))
        elif data[0] == wire.HL_STOP:
            self.hl_state, self.landing = "stopped", None
        else:
            log.warning("high-level command %d is not modelled: ignored", data[0])

    def arming_request(self, do_arm: bool) -> tuple[bool, bool]:
        """supervisorRequestArming -> (success, is armed)."""
        if do_arm != self.armed:
            if do_arm and self.state != "pre-flight checks passed":
                return False, self.armed
            self.armed = do_arm
        return True, self.armed

    def supervisor(self, channel: int, data: bytes) -> bytes | None:
        """Port 9: the answer to send, or None."""
        if not data:
            return None
        cmd = data[0]
        if channel == wire.SUPERVISOR_CH_COMMAND and cmd == wire.CMD_ARM_SYSTEM and len(data) >= 2:
            success, armed = self.arming_request(bool(data[1]))
            return bytes([wire.RESPONSE | cmd, success, armed])
        if channel == wire.SUPERVISOR_CH_COMMAND and cmd == wire.CMD_EMERGENCY_STOP:
            self.emergency_stop = True
        elif channel == wire.SUPERVISOR_CH_INFO and cmd == wire.CMD_GET_STATE_BITFIELD:
            return bytes([wire.RESPONSE | cmd]) + struct.pack("<H", self.info())
        return None

    def platform_arming(self, data: bytes) -> bytes | None:
        """Port 13 channel 0 ``[1, do_arm]`` (before CRTP protocol 12) -> ``[1, success, is armed]``."""
        if len(data) >= 2 and data[0] == wire.PLATFORM_REQUEST_ARMING:
            return bytes([data[0], *self.arming_request(bool(data[1]))])
        return None

    # ------------------------------------------------------------------ the stabilizer loop
    def info(self) -> int:
        """supervisor.info bits."""
        bits = {
            wire.INFO_CAN_BE_ARMED: self.state == "pre-flight checks passed",
            wire.INFO_ARMED: self.armed,
            wire.INFO_AUTO_ARM: self.auto_arm,
            wire.INFO_CAN_FLY: self.state in CAN_FLY,
            wire.INFO_FLYING: self.state in ("flying", "warning, level out"),
            wire.INFO_TUMBLED: self._tumbled,
            wire.INFO_LOCKED: self.state == "locked",
            wire.INFO_CRASHED: self.crashed,
            wire.INFO_HL_ACTIVE: self.hl_state == "landing",
            wire.INFO_HL_FINISHED: self.hl_state == "stopped",
            wire.INFO_HL_DISABLED: self.hl_state == "disabled",
        }
        return sum(1 << bit for bit, on in bits.items() if on)

    def update(self, now: float, position, up_z: float) -> Control:
        """One stabilizer tick. position (3,) m world; up_z: the body z axis's world z component (the
        accelerometer's z in g when not accelerating: the tumble check)."""
        can_fly = self.state in CAN_FLY
        if self.hl_state != "landing":
            self._hl_position = tuple(float(v) for v in position)
        if can_fly and self.hl_state != "disabled":
            goal, velocity = self._hl_goal(now)
            sp = Setpoint(position=goal, velocity=velocity) if self.hl_state == "landing" else Setpoint()
            self.set_setpoint(sp, PRIORITY_HIGHLEVEL, now)
        self._tumbled = self._tumble_check(now, up_z)
        self._supervise(now)
        if self.params["motorPowerSet.enable"] == 1:  # motorsSetRatio's override, below every rule
            return Control("motors", pwm=tuple(int(self.params[f"motorPowerSet.m{i}"]) for i in range(1, 5)))
        sp = self.setpoint if self.state in CAN_FLY else Setpoint()
        if self.state == "warning, level out":  # supervisorOverrideSetpoint
            sp = Setpoint(self.setpoint.timestamp, sp.thrust, "abs", "abs", "velocity", position=sp.position)
        elif self.state not in MOTORS_ALLOWED:
            sp = Setpoint()
        control = Control("off") if sp.null else Control("position" if sp.position else "attitude", sp)
        self._motors_on = control.motors_on
        if control.motors_on:
            self._latest_thrust_s = now
        return control

    def _hl_goal(self, now: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        land = self.landing
        if land is None:
            return self._hl_position, (0.0, 0.0, 0.0)
        s = min(max((now - land.start_s) / land.duration_s, 0.0), 1.0)
        blend = s**3 * (10 - 15 * s + 6 * s * s)  # minimum jerk
        rate = 30 * s * s * (1 - s) ** 2 / land.duration_s
        x, y, z0 = land.start
        z = z0 + (land.height_m - z0) * blend
        if s >= 1.0:
            self.hl_state, self.landing = "stopped", None  # plan_current_goal: landing finished -> idle
        return (x, y, z), (0.0, 0.0, (land.height_m - z0) * rate)

    def _tumble_check(self, now: float, up_z: float) -> bool:
        if not self.params["supervisor.tmblChckEn"]:
            return False
        if up_z >= TILT_UP_Z:
            self._tumble_start_s = None
            return False
        if self._tumble_start_s is None:
            self._tumble_start_s = now
        held = now - self._tumble_start_s
        return held > TILT_S or (up_z < UPSIDE_DOWN_UP_Z and held > UPSIDE_DOWN_S)

    def _supervise(self, now: float) -> None:
        """supervisorUpdate: one transition per tick, in the firmware's order."""
        age = now - self.setpoint.timestamp
        armed, tumbled = self.armed, self._tumbled
        estop = self.emergency_stop or bool(self.params["stabilizer.stop"])
        flying = self._latest_thrust_s is not None and now - self._latest_thrust_s < IS_FLYING_HYSTERESIS_S
        s, new = self.state, self.state
        if s == "not initialized":
            new = "pre-flight checks not passed"
        elif s == "pre-flight checks not passed":
            new = "exception, free fall" if estop else s if tumbled else "pre-flight checks passed"
        elif s == "pre-flight checks passed":
            new = (
                "exception, free fall"
                if estop
                else "pre-flight checks not passed"
                if tumbled
                else "arming"
                if armed
                else s
            )
        elif s == "arming":
            new = (
                "exception, free fall"
                if estop
                else "pre-flight checks not passed"
                if tumbled or not armed
                else "ready to fly"
            )
        elif s == "ready to fly":
            timeout = self._latest_arming_s is not None and now - self._latest_arming_s > PREFLIGHT_TIMEOUT_S
            bad = tumbled or timeout or not armed
            new = (
                "exception, free fall"
                if estop
                else "pre-flight checks not passed"
                if bad
                else "flying"
                if flying
                else s
            )
        elif s == "flying":
            if age > WDT_SHUTDOWN_S or estop:
                new = "exception, free fall"
            elif tumbled:
                new = "crashed"
            elif not armed:
                new = "reset"
            elif age > WDT_LEVEL_S:
                new = "warning, level out"
            elif not flying:
                new = "landed"
        elif s == "landed":
            timeout = self._latest_landing_s is not None and now - self._latest_landing_s > LANDING_TIMEOUT_S
            new = "reset" if timeout or not armed else "flying" if flying else s
        elif s == "reset":
            new = "pre-flight checks not passed"
        elif s == "warning, level out":
            if age > WDT_SHUTDOWN_S or tumbled or estop:
                new = "exception, free fall"
            elif age <= WDT_LEVEL_S:
                new = "flying"
        elif s == "exception, free fall":
            new = "locked"
        elif s == "crashed":
            new = "locked" if estop else "pre-flight checks not passed" if not (self.crashed or tumbled) else s
        if new != s:
            self._transition(s, new, now)

    def _transition(self, old: str, new: str, now: float) -> None:
        self.state = new
        log.info("supervisor: %s -> %s", old, new)
        if new == "ready to fly":
            self._latest_arming_s = now
        if new == "landed":
            self._latest_landing_s = now
        if new == "crashed":
            self.crashed = True
        if new == "locked":
            log.warning("supervisor: locked, reboot required")
        if new not in MOTORS_ALLOWED:
            self.armed = False
        if self.auto_arm and new == "pre-flight checks passed":
            self.armed = True

    def reboot(self, now: float) -> None:
        """Power cycle: everything back to boot, parameters to their defaults."""
        self.__init__(require_arming=not self.auto_arm, now=now)


def level_attitude_rates(roll_deg: float, pitch_legacy_deg: float, sp: Setpoint, gain: float = 6.0) -> tuple:
    """The firmware's roll/pitch/yaw rate setpoints (deg/s; legacy pitch) for ``sp``: an angle mode closes the
    attitude P loop (PID_ROLL_KP = PID_PITCH_KP = 6 1/s in the firmware's defaults), a rate mode passes through."""
    roll = sp.roll if sp.roll_mode == "velocity" else gain * (sp.roll - roll_deg)
    pitch = sp.pitch if sp.pitch_mode == "velocity" else gain * (sp.pitch - pitch_legacy_deg)
    yaw = sp.yaw_rate if sp.yaw_mode == "velocity" else 0.0
    return (0.0 if math.isnan(roll) else roll), (0.0 if math.isnan(pitch) else pitch), yaw
