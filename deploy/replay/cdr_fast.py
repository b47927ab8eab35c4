"""Fast decoding of the few message types replay reads in bulk, straight from their CDR bytes.

A generic deserializer builds one Python object per message and field (~30 us per pose); replay needs a handful
of numbers per message. These readers walk the CDR layout (little or big endian, XCDR1 alignment relative to
the end of the 4-byte encapsulation header) with ``struct`` and return rows of floats. Types not listed here
go through the generic path. Checked against rosbags' deserializer in the tests.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

_HEAD = 4  # encapsulation header


def _endian(data: bytes) -> str:
    return "<" if data[1] & 1 else ">"


def _align(off: int, n: int) -> int:
    return off + (-(off - _HEAD)) % n


def _string_end(data: bytes, off: int, e: str) -> int:
    off = _align(off, 4)
    (n,) = struct.unpack_from(e + "I", data, off)
    return off + 4 + n


def _header(data: bytes, e: str) -> tuple[int, int]:
    """Stamp in ns and the offset after the header."""
    sec, nsec = struct.unpack_from(e + "iI", data, _HEAD)
    return sec * 1_000_000_000 + nsec, _string_end(data, _HEAD + 8, e)


def _float64s(data: bytes, off: int, count: int, e: str) -> tuple[float, ...]:
    return struct.unpack_from(f"{e}{count}d", data, _align(off, 8))


def _float32_seq(data: bytes, off: int, e: str) -> tuple[tuple[float, ...], int]:
    off = _align(off, 4)
    (n,) = struct.unpack_from(e + "I", data, off)
    return struct.unpack_from(f"{e}{n}f", data, off + 4), off + 4 + 4 * n


def header_frame_id(data: bytes) -> str:
    """The ``header.frame_id`` of a message that starts with a std_msgs/Header."""
    e = _endian(data)
    off = _align(_HEAD + 8, 4)
    (n,) = struct.unpack_from(e + "I", data, off)
    return data[off + 4 : off + 4 + n].rstrip(b"\0").decode("utf-8", "replace")


def pose_stamped(data: bytes) -> tuple[int, tuple[float, ...]]:
    """-> stamp ns, (px, py, pz, qx, qy, qz, qw)."""
    e = _endian(data)
    stamp, off = _header(data, e)
    return stamp, _float64s(data, off, 7, e)


def twist_stamped(data: bytes) -> tuple[int, tuple[float, ...]]:
    """-> stamp ns, (vx, vy, vz, wx, wy, wz)."""
    e = _endian(data)
    stamp, off = _header(data, e)
    return stamp, _float64s(data, off, 6, e)


def odometry(data: bytes) -> tuple[int, tuple[float, ...]]:
    """-> stamp ns, (px, py, pz, qx, qy, qz, qw, vx, vy, vz, wx, wy, wz) (twist in the child frame)."""
    e = _endian(data)
    stamp, off = _header(data, e)
    off = _string_end(data, off, e)  # child_frame_id
    pose = _float64s(data, off, 7, e)
    twist = _float64s(data, _align(off, 8) + 8 * (7 + 36), 6, e)
    return stamp, pose + twist


def float32_multi_array(data: bytes) -> tuple[int, tuple[float, ...]]:
    """-> 0 (no header), data."""
    e = _endian(data)
    off = _align(_HEAD, 4)
    (dims,) = struct.unpack_from(e + "I", data, off)
    off += 4
    for _ in range(dims):
        off = _string_end(data, off, e)  # label
        off = _align(off, 4) + 8  # size, stride
    off = _align(off, 4) + 4  # data_offset
    values, _ = _float32_seq(data, off, e)
    return 0, values


def motor_command(data: bytes) -> tuple[int, tuple[float, ...]]:
    """-> stamp ns, rpm."""
    e = _endian(data)
    stamp, off = _header(data, e)
    values, _ = _float32_seq(data, off, e)
    return stamp, values


FAST: dict[str, Callable[[bytes], tuple[int, tuple[float, ...]]]] = {
    "geometry_msgs/msg/PoseStamped": pose_stamped,
    "geometry_msgs/msg/TwistStamped": twist_stamped,
    "nav_msgs/msg/Odometry": odometry,
    "std_msgs/msg/Float32MultiArray": float32_multi_array,
    "sim2real_msgs/msg/MotorCommand": motor_command,
}


def decode_many(ros_type: str, blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(M,) header stamps in ns (0 without a header) and (M, n) values of M messages of one type."""
    fn = FAST[ros_type]
    rows = [fn(b) for b in blobs]
    stamps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    sizes = {len(r[1]) for r in rows}
    if len(sizes) > 1:
        raise ValueError(f"{ros_type} messages have different lengths {sorted(sizes)}")
    values = np.array([r[1] for r in rows], dtype=np.float64).reshape(len(rows), -1)
    return stamps, values
