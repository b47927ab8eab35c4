"""The Crazyflie's radio protocol (CRTP) as this project uses it: ports, channels, command numbers and packet
layouts, pure (bytes in, values out).

Sources: bitcraze/crazyflie-firmware 2026.08 (commit 2a18fc29, CRTP protocol version 12): ``crtp.h``,
``crtp_commander.c``, ``crtp_commander_rpyt.c``, ``crtp_commander_generic.c``, ``crtp_commander_high_level.c``,
``crtp_supervisor.c``, ``platformservice.c``, ``crtpservice.c``, ``log.c``, ``param_logic.c``, ``quatcompress.h``;
bitcraze/crazyflie-lib-python (cflib) 0.1.34: ``crtp/crtpstack.py``, ``crazyflie/commander.py``,
``crazyflie/supervisor.py``, ``crazyflie/platformservice.py``, ``crazyflie/high_level_commander.py``,
``crazyflie/log.py``, ``crazyflie/param.py``, ``crazyflie/toc.py``. The bridge sends through cflib; the fake
Crazyflie (drivers/fake_crazyflie*.py) decodes with this module; tests/drivers/test_crazyflie_wire.py checks the
two against each other byte for byte.

A CRTP packet is one header byte, ``port << 4 | 0b1100 | channel`` (bits 2-3 set for the bootloader's legacy),
then at most 30 data bytes. Everything is little-endian.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

MAX_DATA = 30  # crtp.h CRTP_MAX_DATA_SIZE

# ports (crtp.h / cflib CRTPPort)
PORT_PARAM, PORT_SETPOINT, PORT_MEM, PORT_LOG = 2, 3, 4, 5
PORT_SETPOINT_GENERIC, PORT_SETPOINT_HL, PORT_SUPERVISOR, PORT_PLATFORM, PORT_LINK = 7, 8, 9, 13, 15
PORT_NAMES = {0: "console", 2: "param", 3: "setpoint", 4: "mem", 5: "log", 6: "localization", 7: "setpoint_generic"}
PORT_NAMES.update({8: "setpoint_hl", 9: "supervisor", 13: "platform", 15: "link"})


def header(port: int, channel: int) -> int:
    """The header byte of a packet on ``port`` (0..15), ``channel`` (0..3)."""
    return (port & 0x0F) << 4 | 0x0C | (channel & 0x03)


def split_header(head: int) -> tuple[int, int]:
    """Header byte -> (port, channel)."""
    return (head >> 4) & 0x0F, head & 0x03


# ---------------------------------------------------------------- the legacy RPYT setpoint (port 3, channel 0)
#: ``struct CommanderCrtpLegacyValues {float roll; float pitch; float yaw; uint16_t thrust;}`` packed, 14 bytes.
#: cflib's ``Commander.send_setpoint(roll, pitch, yawrate, thrust)`` packs ``(roll, -pitch, yawrate, thrust)``.
RPYT = struct.Struct("<fffH")
#: crtp_commander_rpyt.c: a thrust below MIN_THRUST is 0; above MAX_THRUST it is capped.
RPYT_MIN_THRUST, RPYT_MAX_THRUST = 1000, 60000
#: flightmode.stabModeRoll / stabModePitch / stabModeYaw: RATE 0, ANGLE 1 (defaults: roll, pitch ANGLE; yaw RATE).
STAB_MODE_RATE, STAB_MODE_ANGLE = 0, 1


@dataclass(frozen=True)
class Rpyt:
    """An RPYT setpoint as on the wire: roll, pitch (deg, or deg/s in rate mode), yaw (deg/s), thrust 0..65535."""

    roll: float
    pitch: float
    yaw: float
    thrust: int


def decode_rpyt(data: bytes) -> Rpyt:
    """Port 3 channel 0 data (14 bytes) -> :class:`Rpyt`. Raises ValueError for another length."""
    if len(data) != RPYT.size:
        raise ValueError(f"RPYT setpoint: expected {RPYT.size} bytes, found {len(data)}")
    return Rpyt(*RPYT.unpack(data))


# ---------------------------------------------------------------- generic commander (port 7)
GENERIC_SETPOINT_CHANNEL, GENERIC_META_CHANNEL = 0, 1
TYPE_STOP = 0  # channel 0, one byte: a null setpoint (motors off)
META_NOTIFY_SETPOINT_STOP = 0  # channel 1, '<BI': relax the commander's priority to the lowest (high-level may fly)

# ---------------------------------------------------------------- high-level commander (port 8, channel 0)
HL_STOP, HL_TAKEOFF_2, HL_LAND_2 = 3, 7, 8
#: land_2 / takeoff_2: command, group mask, absolute height m, yaw rad, use current yaw, duration s.
HL_LAND = struct.Struct("<BBff?f")


@dataclass(frozen=True)
class HlLand:
    group_mask: int
    height_m: float
    yaw_rad: float
    use_current_yaw: bool
    duration_s: float


def decode_hl_land(data: bytes) -> HlLand:
    if len(data) != HL_LAND.size or data[0] != HL_LAND_2:
        raise ValueError(f"high-level land_2: expected {HL_LAND.size} bytes starting {HL_LAND_2}, found {data.hex()}")
    return HlLand(*HL_LAND.unpack(data)[1:])


# ---------------------------------------------------------------- supervisor (port 9), platform (13), link (15)
SUPERVISOR_CH_INFO, SUPERVISOR_CH_COMMAND = 0, 1
CMD_ARM_SYSTEM, CMD_RECOVER_SYSTEM, CMD_EMERGENCY_STOP, CMD_GET_STATE_BITFIELD = 0x01, 0x02, 0x03, 0x0C
RESPONSE = 0x80  # a supervisor answer is the command with the high bit set
#: supervisor.info bits (supervisor.c updateLogData)
INFO_CAN_BE_ARMED, INFO_ARMED, INFO_AUTO_ARM, INFO_CAN_FLY, INFO_FLYING, INFO_TUMBLED = 0, 1, 2, 3, 4, 5
INFO_LOCKED, INFO_CRASHED, INFO_HL_ACTIVE, INFO_HL_FINISHED, INFO_HL_DISABLED = 6, 7, 8, 9, 10
INFO_NAMES = ("can be armed", "armed", "auto arm", "can fly", "flying", "tumbled", "locked", "crashed")
INFO_NAMES += ("high-level active", "high-level finished", "high-level disabled", "deck fault")
#: The supervisor port exists from this CRTP protocol version on; before it, arming goes through the platform port.
SUPERVISOR_PROTOCOL_VERSION = 12

PLATFORM_CH_COMMAND, PLATFORM_CH_VERSION = 0, 1
PLATFORM_REQUEST_ARMING = 1  # legacy arming (protocol < 12): [1, do_arm] -> [1, success, is_armed]
VERSION_GET_PROTOCOL = 0  # [0] -> [0, int32 version]

LINK_CH_ECHO, LINK_CH_SOURCE = 0, 1
LINK_SOURCE_ANSWER = b"Bitcraze Crazyflie"  # crtpservice.c linkSource: cflib looks for it before asking the version


def info_names(bitfield: int) -> list[str]:
    """supervisor.info -> the names of the bits that are set."""
    return [name for bit, name in enumerate(INFO_NAMES) if bitfield >> bit & 1]


# ---------------------------------------------------------------- TOC, log, param, mem
TOC_CHANNEL = 0
CMD_TOC_ITEM_V2, CMD_TOC_INFO_V2 = 2, 3  # protocol >= 4: 16-bit ids
LOG_CH_SETTINGS, LOG_CH_DATA = 1, 2
LOG_DELETE, LOG_START, LOG_STOP, LOG_RESET, LOG_CREATE_V2, LOG_APPEND_V2 = 2, 3, 4, 5, 6, 7
LOG_MAX_LEN, LOG_MAX_BLOCKS, LOG_MAX_OPS = 26, 16, 128  # log.c: data bytes of one block, blocks, variables
#: log.c / cflib LogTocElement.types: type id -> (C name, struct format)
LOG_TYPES = {1: ("uint8_t", "<B"), 2: ("uint16_t", "<H"), 3: ("uint32_t", "<L"), 4: ("int8_t", "<b")}
LOG_TYPES.update({5: ("int16_t", "<h"), 6: ("int32_t", "<i"), 7: ("float", "<f"), 8: ("FP16", "<e")})
PARAM_CH_READ, PARAM_CH_WRITE, PARAM_CH_MISC = 1, 2, 3
PARAM_RONLY, PARAM_CORE, PARAM_EXTENDED = 0x40, 0x20, 0x10
#: param_logic.c / cflib ParamTocElement.types: type id (low nibble) -> (C name, struct format)
PARAM_TYPES = {0x08: ("uint8_t", "<B"), 0x09: ("uint16_t", "<H"), 0x0A: ("uint32_t", "<L"), 0x0B: ("uint64_t", "<Q")}
PARAM_TYPES.update({0x00: ("int8_t", "<b"), 0x01: ("int16_t", "<h"), 0x02: ("int32_t", "<i")})
PARAM_TYPES.update({0x03: ("int64_t", "<q"), 0x05: ("FP16", "<e"), 0x06: ("float", "<f"), 0x07: ("double", "<d")})
MEM_CH_INFO, MEM_INFO_NBR = 0, 1


def encode_log_data(block_id: int, timestamp_ms: int, payload: bytes) -> bytes:
    """Log data (port 5, channel 2): block id, 24-bit timestamp (ms since boot, wraps), the block's values."""
    ts = int(timestamp_ms) & 0xFFFFFF
    return bytes([block_id & 0xFF, ts & 0xFF, ts >> 8 & 0xFF, ts >> 16 & 0xFF]) + payload


def decode_log_data(data: bytes) -> tuple[int, int, bytes]:
    """Log data -> (block id, 24-bit timestamp ms, payload)."""
    if len(data) < 4:
        raise ValueError(f"log data: expected >= 4 bytes, found {len(data)}")
    return data[0], data[1] | data[2] << 8 | data[3] << 16, bytes(data[4:])


def pack_value(type_id: int, value: float | int, types: dict[int, tuple[str, str]] = LOG_TYPES) -> bytes:
    """One log (or, with ``types=PARAM_TYPES``, param) value in its wire type; integers rounded and clipped."""
    fmt = types[type_id][1]
    if fmt in ("<f", "<e", "<d"):
        return struct.pack(fmt, float(value))
    bits = struct.calcsize(fmt) * 8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt[1].islower() else (0, (1 << bits) - 1)
    number = 0 if not math.isfinite(value) else round(value)
    return struct.pack(fmt, min(max(number, lo), hi))


def unpack_value(type_id: int, data: bytes, types: dict[int, tuple[str, str]] = LOG_TYPES) -> float | int:
    return struct.unpack(types[type_id][1], data)[0]


# ---------------------------------------------------------------- compressed quaternion (quatcompress.h)
_MASK9 = (1 << 9) - 1
_SQRT1_2 = math.sqrt(0.5)


def quat_compress(q_xyzw) -> int:
    """Unit quaternion (x, y, z, w) -> uint32: index of the largest component (2 bits), then the other three as
    sign + 9-bit magnitude scaled by 1/sqrt(2) (quatcompress.h; the largest made positive: q and -q are one
    rotation). Resolution (1/sqrt(2))/511 = 1.4e-3 per component, about 0.1 deg."""
    q = [float(v) for v in q_xyzw]
    largest = max(range(4), key=lambda i: abs(q[i]))
    negate = q[largest] < 0
    comp = largest
    for i in range(4):
        if i != largest:
            negbit = (q[i] < 0) ^ negate
            mag = int(_MASK9 * (abs(q[i]) / _SQRT1_2) + 0.5)
            comp = comp << 10 | int(negbit) << 9 | mag
    return comp


def quat_decompress(comp: int) -> tuple[float, float, float, float]:
    """uint32 -> unit quaternion (x, y, z, w), the inverse of :func:`quat_compress`."""
    q = [0.0] * 4
    largest = comp >> 30
    sum_squares = 0.0
    for i in range(3, -1, -1):
        if i != largest:
            mag, negbit = comp & _MASK9, comp >> 9 & 1
            comp >>= 10
            q[i] = _SQRT1_2 * mag / _MASK9 * (-1.0 if negbit else 1.0)
            sum_squares += q[i] * q[i]
    q[largest] = math.sqrt(max(0.0, 1.0 - sum_squares))
    return q[0], q[1], q[2], q[3]
