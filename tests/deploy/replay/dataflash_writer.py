"""Write ArduPilot DataFlash ``.bin`` files for the tests: the FMT message describing itself, an FMT message per
type, PARM messages, then the data messages in time order. Each message is 0xA3 0x95, the type id, then the
fields little-endian, packed per the FMT format string (scaled types: c/C x100, e/E x100, L x1e7).

:func:`write_flight_bin` writes a :class:`Flight` (ENU/FLU, RPM) as ArduCopter logs it: ATT (deg), XKF1
(NED m, m/s; Euler angles in centidegrees), IMU (rad/s, FRD), RATE (deg/s), RCOU (PWM us), BAT.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from deploy.replay.flight import Flight
from deploy.replay.throttle import ThrottleCurve

from .ulog_writer import ned_rows, normalized_output

HEAD = b"\xa3\x95"
_CODES = {"b": ("b", 1), "B": ("B", 1), "h": ("h", 1), "H": ("H", 1), "i": ("i", 1), "I": ("I", 1),
          "f": ("f", 1), "d": ("d", 1), "q": ("q", 1), "Q": ("Q", 1), "n": ("4s", 1), "N": ("16s", 1),
          "Z": ("64s", 1), "c": ("h", 100), "C": ("H", 100), "e": ("i", 100), "E": ("I", 100),
          "L": ("i", 10_000_000), "M": ("B", 1)}  # fmt: skip
FORMATS = {  # name: (type id, format, columns), as ArduCopter 4.x
    "PARM": (64, "QNf", "TimeUS,Name,Value"),
    "ATT": (65, "QffffffB", "TimeUS,DesRoll,Roll,DesPitch,Pitch,DesYaw,Yaw,AEKF"),
    "XKF1": (66, "QBccCfffffffccce", "TimeUS,C,Roll,Pitch,Yaw,VN,VE,VD,dPD,PN,PE,PD,GX,GY,GZ,OH"),
    "IMU": (67, "QBffffffIIfBBHH", "TimeUS,I,GyrX,GyrY,GyrZ,AccX,AccY,AccZ,EG,EA,T,GH,AH,GHz,AHz"),
    "RATE": (68, "Qffffffffffff", "TimeUS,RDes,R,ROut,PDes,P,POut,YDes,Y,YOut,ADes,A,AOut"),
    "RCOU": (69, "Q" + "H" * 14, "TimeUS," + ",".join(f"C{i}" for i in range(1, 15))),
    "BAT": (70, "QBff", "TimeUS,Inst,Volt,Curr"),
    "POS": (71, "QLLff", "TimeUS,Lat,Lng,Alt,RelHomeAlt"),
}


def _struct(fmt: str) -> struct.Struct:
    return struct.Struct("<" + "".join(_CODES[c][0] for c in fmt))


def _fmt_message(type_id: int, name: str, fmt: str, columns: str) -> bytes:
    length = 3 + _struct(fmt).size
    return (
        HEAD
        + bytes([0x80])
        + struct.pack("<BB4s16s64s", type_id, length, name.encode(), fmt.encode(), columns.encode())
    )


def _pack(name: str, values: list) -> bytes:
    type_id, fmt, _ = FORMATS[name]
    out = []
    for c, v in zip(fmt, values):
        code, scale = _CODES[c]
        out.append(
            v.encode() if isinstance(v, str) else round(v * scale) if scale != 1 or code not in "fd" else float(v)
        )
    return HEAD + bytes([type_id]) + _struct(fmt).pack(*out)


def write_bin(path: str | Path, messages: list[tuple[int, str, list]], params: dict[str, float] | None = None) -> Path:
    """messages: (TimeUS, name, field values in the order of FORMATS[name]'s columns, TimeUS first)."""
    out = bytearray(_fmt_message(0x80, "FMT", "BBnNZ", "Type,Length,Name,Format,Columns"))
    for name, (type_id, fmt, columns) in FORMATS.items():
        out += _fmt_message(type_id, name, fmt, columns)
    for key, value in (params or {}).items():
        out += _pack("PARM", [0, key, value])
    for _, name, values in sorted(messages, key=lambda m: m[0]):
        out += _pack(name, values)
    Path(path).write_bytes(bytes(out))
    return Path(path)


def euler_zyx(q: np.ndarray) -> np.ndarray:
    """(K, 4) w-first (FRD -> NED) -> (K, 3) roll, pitch, yaw in degrees."""
    w, x, y, z = q.T
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1, 1))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.degrees(np.stack([roll, pitch, yaw], -1))


def write_flight_bin(path: str | Path, flight: Flight, curve: ThrottleCurve, *, boot_us: int = 5_000_000) -> Path:
    """``flight`` as an ArduCopter log; times become ``boot_us + t * 1e6`` microseconds since boot."""
    ned = ned_rows(flight)
    rpy = euler_zyx(ned["q"])
    rates_deg = np.degrees(ned["angular_velocity"])
    state_us = boot_us + np.round(flight.state_t * 1e6).astype(np.int64)
    msgs: list[tuple[int, str, list]] = []
    for k, us in enumerate(state_us.tolist()):
        r, p, y = rpy[k].tolist()
        msgs.append((us, "ATT", [us, r, r, p, p, y % 360.0, y % 360.0, 3]))
        v, pos = ned["velocity"][k].tolist(), ned["position"][k].tolist()
        msgs.append((us, "XKF1", [us, 0, r, p, y % 360.0, *v, v[2], *pos, 0.0, 0.0, 0.0, 0.0]))
        msgs.append((us, "XKF1", [us, 1, 0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 0.0, 99.0, 99.0, 99.0, 0, 0, 0, 0]))  # core 1
        msgs.append(
            (us, "IMU", [us, 0, *ned["angular_velocity"][k].tolist(), 0.0, 0.0, -9.81, 0, 0, 25.0, 1, 1, 400, 400])
        )
        msgs.append((us, "RATE", [us, *[x for a in rates_deg[k].tolist() for x in (a, a, 0.0)], 0.0, 0.0, 0.0]))
        if k % 10 == 0:
            msgs.append((us, "BAT", [us, 0, 16.4, 5.0]))
    pwm = curve.pwm_min + (curve.pwm_max - curve.pwm_min) * normalized_output(flight.command, curve)
    for us, row in zip((boot_us + np.round(flight.command_t * 1e6).astype(np.int64)).tolist(), pwm.tolist()):
        msgs.append((us, "RCOU", [us, *row, *([0] * 10)]))
    return write_bin(path, msgs, {"MOT_PWM_MIN": curve.pwm_min, "MOT_PWM_MAX": curve.pwm_max})
