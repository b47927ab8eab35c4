"""The CRC of Unitree's low-level messages: CRC-32/MPEG-2 over the packed little-endian C struct.

The Go2's firmware ignores a LowCmd whose ``crc`` is wrong (FACTS.md "Unitree Go2 / B2 / G1"; unitree_sdk2_python
``utils/crc.py``). What the CRC covers is the message as Unitree's C++ SDK holds it in memory, NOT its CDR bytes:

- the struct packed little-endian with C's natural alignment: a nested struct (MotorCmd_, IMUState_, ...) starts
  on a 4-byte boundary and is padded to a multiple of 4 (CDR aligns only the primitives, so the two layouts differ:
  LowCmd_ is 812 bytes packed, 808 in CDR);
- read as little-endian uint32 words, all but the last (the ``crc`` field itself): ``len / 4 - 1`` words;
- CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor), each word fed MSB first.

The packed struct is a numpy structured array (``align=True`` is C's layout; :data:`LOW_CMD` 812 bytes,
:data:`LOW_STATE` 1180, tested against Unitree's ``struct`` formats). The CRC itself runs in zlib's C code: the
reflected CRC-32 of the bit-reversed bytes is the bit-reversed MPEG-2 CRC, so a 203-word LowCmd costs a table
lookup and one ``zlib.crc32`` call (a few microseconds), not a Python loop over bits, which matters at 500 Hz on a
Jetson.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

_MOTOR_CMD = np.dtype(
    [("mode", "u1"), ("q", "<f4"), ("dq", "<f4"), ("tau", "<f4"), ("kp", "<f4"), ("kd", "<f4"),
     ("reserve", "<u4", (3,))],
    align=True,
)  # fmt: skip
_BMS_CMD = np.dtype([("off", "u1"), ("reserve", "u1", (3,))], align=True)
_HEADER = [("head", "u1", (2,)), ("level_flag", "u1"), ("frame_reserve", "u1"), ("sn", "<u4", (2,)),
           ("version", "<u4", (2,)), ("bandwidth", "<u2")]  # fmt: skip
LOW_CMD = np.dtype(
    [*_HEADER, ("motor_cmd", _MOTOR_CMD, (20,)), ("bms_cmd", _BMS_CMD), ("wireless_remote", "u1", (40,)),
     ("led", "u1", (12,)), ("fan", "u1", (2,)), ("gpio", "u1"), ("reserve", "<u4"), ("crc", "<u4")],
    align=True,
)  # fmt: skip
"""unitree_go LowCmd_ as Unitree's C++ SDK lays it out in memory (812 bytes)."""

_IMU_STATE = np.dtype(
    [("quaternion", "<f4", (4,)), ("gyroscope", "<f4", (3,)), ("accelerometer", "<f4", (3,)), ("rpy", "<f4", (3,)),
     ("temperature", "u1")],
    align=True,
)  # fmt: skip
_MOTOR_STATE = np.dtype(
    [("mode", "u1"), ("q", "<f4"), ("dq", "<f4"), ("ddq", "<f4"), ("tau_est", "<f4"), ("q_raw", "<f4"),
     ("dq_raw", "<f4"), ("ddq_raw", "<f4"), ("temperature", "u1"), ("lost", "<u4"), ("reserve", "<u4", (2,))],
    align=True,
)  # fmt: skip
_BMS_STATE = np.dtype(
    [("version_high", "u1"), ("version_low", "u1"), ("status", "u1"), ("soc", "u1"), ("current", "<i4"),
     ("cycle", "<u2"), ("bq_ntc", "u1", (2,)), ("mcu_ntc", "u1", (2,)), ("cell_vol", "<u2", (15,))],
    align=True,
)  # fmt: skip
LOW_STATE = np.dtype(
    [*_HEADER, ("imu_state", _IMU_STATE), ("motor_state", _MOTOR_STATE, (20,)), ("bms_state", _BMS_STATE),
     ("foot_force", "<i2", (4,)), ("foot_force_est", "<i2", (4,)), ("tick", "<u4"), ("wireless_remote", "u1", (40,)),
     ("bit_flag", "u1"), ("adc_reel", "<f4"), ("temperature_ntc1", "u1"), ("temperature_ntc2", "u1"),
     ("power_v", "<f4"), ("power_a", "<f4"), ("fan_frequency", "<u2", (4,)), ("reserve", "<u4"), ("crc", "<u4")],
    align=True,
)  # fmt: skip
"""unitree_go LowState_ as Unitree's C++ SDK lays it out in memory (1180 bytes)."""

LAYOUTS = {"unitree_go.msg.dds_.LowCmd_": LOW_CMD, "unitree_go.msg.dds_.LowState_": LOW_STATE}

_REV8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=np.uint8)


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 of ``data`` (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no final xor); ``b"123456789"``
    gives 0x0376E6E7 (the catalogue's check value)."""
    reflected = zlib.crc32(_REV8[np.frombuffer(data, dtype=np.uint8)].tobytes()) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def crc_of_packed(packed: np.ndarray) -> int:
    """The CRC of a packed struct (a 0-d or (1,) structured array of :data:`LOW_CMD` / :data:`LOW_STATE`): its
    little-endian words but the last, each fed MSB first."""
    words = np.frombuffer(packed.tobytes(), dtype="<u4")[:-1]
    return crc32_mpeg2(words.astype(">u4").tobytes())


def _fill(view: np.ndarray, msgs: list[Any]) -> None:
    """Copy the fields of ``msgs`` (IDL structs, one per row of the structured ``view`` (n,)) into ``view``."""
    for name in view.dtype.names:
        column, sub = view[name], view.dtype[name]
        values = [getattr(m, name) for m in msgs]
        if sub.base.names is None:
            if isinstance(values[0], bytes | bytearray):  # a deserialized uint8 array
                values = [list(v) for v in values]
            column[...] = values
        elif sub.shape:  # an array of structs: one row per element
            _fill(column.reshape(-1), [v for row in values for v in row])
        else:
            _fill(column, values)


def pack(msg: Any) -> np.ndarray:
    """The packed C struct (a (1,) structured array) of a unitree_go LowCmd_ or LowState_ (ours or Unitree's)."""
    typename = type(msg).__idl_typename__ if hasattr(type(msg), "__idl_typename__") else type(msg).__name__
    try:
        layout = LAYOUTS[typename]
    except KeyError:
        raise TypeError(f"expected a unitree_go LowCmd_ or LowState_, got {typename!r}") from None
    packed = np.zeros(1, dtype=layout)
    _fill(packed, [msg])
    return packed


def crc(msg: Any) -> int:
    """The CRC a unitree_go LowCmd_ / LowState_ must carry in ``crc`` (the field's own value does not enter)."""
    return crc_of_packed(pack(msg))


def with_crc(msg: Any) -> Any:
    """``msg`` with its ``crc`` field set (in place; returned for chaining)."""
    msg.crc = crc(msg)
    return msg


def crc_ok(msg: Any) -> bool:
    """Whether ``msg.crc`` is the CRC of the rest of ``msg``."""
    return int(msg.crc) == crc(msg)
