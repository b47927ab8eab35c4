"""MAVLink as this project speaks it: pymavlink in MAVLink 2, the two autopilots' mode encodings, the command
constants, and the options the MAVLink bridge and the fake autopilot share (from YAML and the command line).

Autopilots (``--autopilot``):
- ``px4``: HEARTBEAT.autopilot MAV_AUTOPILOT_PX4 (12). ``custom_mode`` packs PX4's main mode in bits 16-23 and its
  sub mode in bits 24-31 (PX4 ``px4_custom_mode.h``): OFFBOARD = main 6 (0x00060000), AUTO_LAND = main 4, sub 6
  (0x06040000). DO_SET_MODE takes param1 = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED (1), param2 = main, param3 = sub.
  SET_ATTITUDE_TARGET is used in OFFBOARD only, and PX4 switches to OFFBOARD (or arms in it) only after the
  setpoint stream has run > 1 s at >= 2 Hz (PX4 docs ``flight_modes/offboard.md``).
- ``ardupilot`` (Copter): HEARTBEAT.autopilot MAV_AUTOPILOT_ARDUPILOTMEGA (3). ``custom_mode`` is the mode number
  (ArduCopter ``mode.h``): GUIDED 4, LAND 9, GUIDED_NOGPS 20. DO_SET_MODE param1 1, param2 = the number.
  SET_ATTITUDE_TARGET is used in GUIDED and GUIDED_NOGPS (ArduPilot dev docs "Copter Commands in Guided Mode");
  its ``thrust`` is a thrust only with GUID_OPTIONS bit 3 (+8, SetAttitudeTarget_ThrustAsThrust), else a climb
  rate (0.5 = hold height), so the bridge reads GUID_OPTIONS before it arms.

Both: HEARTBEAT.base_mode bit 7 (128, MAV_MODE_FLAG_SAFETY_ARMED) = armed; COMPONENT_ARM_DISARM param1 1 arms,
0 disarms, param2 21196 forces a disarm in flight. Neither takes motor commands from a companion computer: PX4
removed direct actuator control over MAVLink (SET_ACTUATOR_CONTROL_TARGET, ~v1.14), ArduPilot never had it, so
the lowest level is SET_ATTITUDE_TARGET (body rates + collective thrust): rpm policies are refused
(:func:`rpm_refusal`).
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

os.environ.setdefault("MAVLINK20", "1")  # before pymavlink picks its dialect: ODOMETRY (#331) is MAVLink 2 only
from pymavlink import mavutil

from drivers.px4_convert import ThrottleCurve

if mavutil.mavlink.WIRE_PROTOCOL_VERSION != "2.0":  # imported before us without MAVLINK20
    os.environ["MAVLINK20"] = "1"
    mavutil.set_dialect(mavutil.current_dialect)

mavlink = mavutil.mavlink

ARMED_FLAG = mavlink.MAV_MODE_FLAG_SAFETY_ARMED  # 128
CUSTOM_MODE_FLAG = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED  # 1
FORCE_DISARM_MAGIC = 21196.0
#: SET_ATTITUDE_TARGET.type_mask for body rates + thrust: ignore the attitude quaternion (bit 7), nothing else.
RATES_THRUST_TYPE_MASK = mavlink.ATTITUDE_TARGET_TYPEMASK_ATTITUDE_IGNORE
RATE_IGNORE_BITS = (
    mavlink.ATTITUDE_TARGET_TYPEMASK_BODY_ROLL_RATE_IGNORE
    | mavlink.ATTITUDE_TARGET_TYPEMASK_BODY_PITCH_RATE_IGNORE
    | mavlink.ATTITUDE_TARGET_TYPEMASK_BODY_YAW_RATE_IGNORE
)
#: ArduPilot GUID_OPTIONS bit 3: SET_ATTITUDE_TARGET's thrust is a thrust, not a climb rate.
GUID_OPTIONS_THRUST_AS_THRUST = 8
RESULT_NAMES = {0: "ACCEPTED", 1: "TEMPORARILY_REJECTED", 2: "DENIED", 3: "UNSUPPORTED", 4: "FAILED", 5: "IN_PROGRESS"}
COMMAND_NAMES = {
    mavlink.MAV_CMD_DO_SET_MODE: "DO_SET_MODE",
    mavlink.MAV_CMD_COMPONENT_ARM_DISARM: "COMPONENT_ARM_DISARM",
    mavlink.MAV_CMD_NAV_LAND: "NAV_LAND",
    mavlink.MAV_CMD_SET_MESSAGE_INTERVAL: "SET_MESSAGE_INTERVAL",
}


def px4_custom_mode(main: int, sub: int = 0) -> int:
    """PX4 main / sub mode -> HEARTBEAT.custom_mode (main in bits 16-23, sub in bits 24-31)."""
    return (int(main) & 0xFF) << 16 | (int(sub) & 0xFF) << 24


def px4_main_sub(custom_mode: int) -> tuple[int, int]:
    """HEARTBEAT.custom_mode -> PX4 (main, sub)."""
    return (int(custom_mode) >> 16) & 0xFF, (int(custom_mode) >> 24) & 0xFF


PX4_MAIN_NAMES = {1: "MANUAL", 2: "ALTCTL", 3: "POSCTL", 5: "ACRO", 6: "OFFBOARD", 7: "STABILIZED"}
PX4_AUTO_NAMES = {1: "READY", 2: "TAKEOFF", 3: "LOITER", 4: "MISSION", 5: "RTL", 6: "LAND", 9: "PRECLAND"}
PX4_MODES = {px4_custom_mode(m): n for m, n in PX4_MAIN_NAMES.items()} | {
    px4_custom_mode(4, s): f"AUTO_{n}" for s, n in PX4_AUTO_NAMES.items()
}
ARDUCOPTER_MODES = {
    0: "STABILIZE",
    1: "ACRO",
    2: "ALT_HOLD",
    3: "AUTO",
    4: "GUIDED",
    5: "LOITER",
    6: "RTL",
    9: "LAND",
    16: "POSHOLD",
    17: "BRAKE",
    20: "GUIDED_NOGPS",
    21: "SMART_RTL",
}


@dataclass(frozen=True)
class Autopilot:
    """What differs between autopilots on the wire. Modes are HEARTBEAT.custom_mode values.

    offboard_mode: the mode the bridge asks for (it takes SET_ATTITUDE_TARGET); offboard_modes: every mode that
    takes it; land_mode: its own landing; boot_mode: the mode a fake autopilot starts in; stream_before_switch:
    the setpoint stream must run > 1 s before the switch or arming (PX4); loss_lands: losing the stream lands
    (PX4 COM_OF_LOSS_T -> COM_OBL_RC_ACT Land) rather than levelling at zero climb rate (ArduPilot GUID_TIMEOUT);
    state_messages: the message ids the bridge asks for (SET_MESSAGE_INTERVAL) while no state arrives;
    thrust_param: a parameter whose bit must be set before SET_ATTITUDE_TARGET's thrust is a thrust;
    land_speed_m_s: the descent rate of its landing mode (PX4 MPC_LAND_SPEED, ArduPilot LAND_SPEED defaults)."""

    name: str
    mav_autopilot: int
    offboard_mode: int
    offboard_modes: tuple[int, ...]
    land_mode: int
    boot_mode: int
    names: dict[int, str]
    stream_before_switch: bool
    loss_lands: bool
    loss_param: str
    loss_timeout_s: float
    state_messages: tuple[int, ...] = ()
    thrust_param: str | None = None
    land_speed_m_s: float = 0.5

    def mode_name(self, custom_mode: int) -> str:
        return self.names.get(int(custom_mode), f"custom_mode {int(custom_mode)}")

    def set_mode_params(self, custom_mode: int) -> tuple[float, float, float]:
        """DO_SET_MODE param1..3 for ``custom_mode``."""
        if self.name == "px4":
            main, sub = px4_main_sub(custom_mode)
            return float(CUSTOM_MODE_FLAG), float(main), float(sub)
        return float(CUSTOM_MODE_FLAG), float(custom_mode), 0.0

    def mode_of_params(self, param2: float, param3: float) -> int:
        """The inverse of :meth:`set_mode_params` (param1 = custom mode enabled)."""
        if self.name == "px4":
            return px4_custom_mode(round(param2), round(param3))
        return round(param2)


PX4 = Autopilot(
    "px4",
    mavlink.MAV_AUTOPILOT_PX4,
    offboard_mode=px4_custom_mode(6),
    offboard_modes=(px4_custom_mode(6),),
    land_mode=px4_custom_mode(4, 6),
    boot_mode=px4_custom_mode(3),
    names=PX4_MODES,
    stream_before_switch=True,
    loss_lands=True,
    loss_param="COM_OF_LOSS_T",
    loss_timeout_s=1.0,
    state_messages=(mavlink.MAVLINK_MSG_ID_ODOMETRY, mavlink.MAVLINK_MSG_ID_BATTERY_STATUS),
    land_speed_m_s=0.7,
)
ARDUPILOT = Autopilot(
    "ardupilot",
    mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA,
    offboard_mode=20,
    offboard_modes=(4, 20),
    land_mode=9,
    boot_mode=0,
    names=ARDUCOPTER_MODES,
    stream_before_switch=False,
    loss_lands=False,
    loss_param="GUID_TIMEOUT",
    loss_timeout_s=3.0,
    state_messages=(mavlink.MAVLINK_MSG_ID_ATTITUDE_QUATERNION, mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED),
    thrust_param="GUID_OPTIONS",
    land_speed_m_s=0.5,
)
AUTOPILOTS = {"px4": PX4, "ardupilot": ARDUPILOT}
BY_MAV_AUTOPILOT = {a.mav_autopilot: a for a in AUTOPILOTS.values()}


def rpm_refusal(source: str) -> str:
    """Why an rpm policy cannot fly through MAVLink, and what to do instead. ``source``: what asked for it."""
    return (
        f"{source}: an rpm policy (per-motor speeds) cannot fly over MAVLink. PX4 removed direct actuator control "
        "over MAVLink (SET_ACTUATOR_CONTROL_TARGET, ~v1.14) and ArduPilot has none for a companion computer; the "
        "lowest level both accept is SET_ATTITUDE_TARGET (body rates + collective thrust). Export a ctbr policy "
        "(action interface ctbr: collective_thrust, roll_rate, pitch_rate, yaw_rate) and fly it with this bridge, "
        "or fly the rpm policy on PX4 through uXRCE-DDS (drivers.px4_bridge, docs/real_drones.md)"
    )


# ---------------------------------------------------------------------------------------------------- options
OPTION_KEYS = (
    "autopilot",
    "connection",
    "baud",
    "source_system",
    "source_component",
    "target_system",
    "target_component",
    "setpoint_hz",
    "state_hz",
    "rpm_max",
    "throttle_exponent",
    "throttle_table",
    "kf",
)


@dataclass(frozen=True)
class MavlinkOptions:
    """The link and the thrust mapping. autopilot: "px4", "ardupilot" or "auto" (from the HEARTBEAT);
    connection: a pymavlink connection string (``udpin:0.0.0.0:14540``, ``/dev/ttyAMA0``); baud: serial only;
    source_*: this computer's MAVLink ids; target_*: the autopilot's; setpoint_hz: the least rate the setpoint
    stream is kept at; state_hz: the rate asked for the state messages; curve: RPM <-> normalized thrust command; kf: rotor thrust = kf rpm^2, N/RPM^2."""

    autopilot: str
    connection: str
    curve: ThrottleCurve
    kf: float | None = None
    baud: int = 921600
    source_system: int = 1
    source_component: int = mavlink.MAV_COMP_ID_ONBOARD_COMPUTER
    target_system: int = 1
    target_component: int = 1
    setpoint_hz: float = 20.0
    state_hz: float = 100.0


def add_mavlink_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", type=Path, default=None, help=f"YAML (key 'mavlink') with {', '.join(OPTION_KEYS)}")
    ap.add_argument("--autopilot", choices=("px4", "ardupilot", "auto"), default=None, help="default: the config's")
    ap.add_argument("--connection", default=None, help="pymavlink connection, e.g. udpin:0.0.0.0:14540, /dev/ttyAMA0")
    ap.add_argument("--baud", type=int, default=None, help="serial baud rate")
    ap.add_argument("--rpm-max", type=float, default=None, help="RPM at normalized thrust 1.0")
    ap.add_argument("--throttle-exponent", type=float, default=None, help="normalized = (rpm / rpm_max) ** this")
    ap.add_argument("--kf", type=float, default=None, help="rotor thrust = kf rpm^2, N/RPM^2 (thrust N -> normalized)")


#: Where a companion listens by default: PX4 SITL sends its offboard link to UDP 14540, MAVProxy / ArduPilot SITL
#: forward to 14550.
DEFAULT_CONNECTIONS = {"px4": "udpin:0.0.0.0:14540", "ardupilot": "udpin:0.0.0.0:14550", "auto": "udpin:0.0.0.0:14540"}


def load_options(args: argparse.Namespace) -> MavlinkOptions:
    """The YAML file (``--config``, its ``mavlink`` section) first, command-line values over it. Raises ValueError
    naming the field and what it expects."""
    data: dict = {}
    if args.config is not None:
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        data = loaded.get("mavlink", loaded)
        unknown = sorted(set(data) - set(OPTION_KEYS))
        if unknown:
            raise ValueError(f"{args.config}: unknown keys {unknown}; expected {', '.join(OPTION_KEYS)}")

    def pick(name: str, default=None):
        value = getattr(args, name, None)
        return value if value is not None else data.get(name, default)

    autopilot = pick("autopilot", "auto")
    if autopilot not in ("px4", "ardupilot", "auto"):
        raise ValueError(f"autopilot: expected px4, ardupilot or auto, got {autopilot!r}")
    rpm_max = pick("rpm_max")
    if rpm_max is None:
        raise ValueError("rpm_max is required (--rpm-max or rpm_max in --config): the RPM at normalized thrust 1.0")
    table = tuple(tuple(float(v) for v in pair) for pair in data.get("throttle_table", ()))
    curve = ThrottleCurve(float(rpm_max), float(pick("throttle_exponent", 2.0)), table)
    kf = pick("kf")
    if kf is not None and not (math.isfinite(float(kf)) and float(kf) > 0):
        raise ValueError(f"kf: expected N/RPM^2 > 0 (the robot profile's kf), got {kf}")
    setpoint_hz = float(data.get("setpoint_hz", 20.0))
    if not setpoint_hz >= 10.0:
        raise ValueError(f"setpoint_hz: expected >= 10 Hz (PX4 needs > 2 Hz, with margin), got {setpoint_hz}")
    return MavlinkOptions(
        autopilot=autopilot,
        connection=str(pick("connection", DEFAULT_CONNECTIONS[autopilot])),
        curve=curve,
        kf=None if kf is None else float(kf),
        baud=int(pick("baud", 921600)),
        source_system=int(data.get("source_system", 1)),
        source_component=int(data.get("source_component", mavlink.MAV_COMP_ID_ONBOARD_COMPUTER)),
        target_system=int(data.get("target_system", 1)),
        target_component=int(data.get("target_component", 1)),
        setpoint_hz=setpoint_hz,
        state_hz=float(data.get("state_hz", 100.0)),
    )


def connect(connection: str, baud: int, source_system: int, source_component: int):
    """A pymavlink connection (MAVLink 2). ``udpin:`` waits for the peer's first packet before it can send."""
    return mavutil.mavlink_connection(
        connection, baud=baud, source_system=source_system, source_component=source_component, autoreconnect=True
    )
