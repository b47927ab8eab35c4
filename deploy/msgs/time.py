"""Conversions between integer nanoseconds and ``builtin_interfaces/Time``, and header construction."""

from __future__ import annotations

from deploy.msgs.types import Header, Time

_NS_PER_S = 1_000_000_000


def time_from_ns(stamp_ns: int) -> Time:
    """Nanoseconds since the epoch -> Time (sec may be negative; 0 <= nanosec < 1e9)."""
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    if not -(2**31) <= sec < 2**31:
        raise ValueError(f"stamp {stamp_ns} ns does not fit builtin_interfaces/Time (int32 seconds)")
    return Time(sec=sec, nanosec=nanosec)


def time_to_ns(stamp: Time) -> int:
    """Time -> integer nanoseconds since the epoch."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def make_header(stamp_ns: int, frame_id: str = "") -> Header:
    """A std_msgs/Header stamped at ``stamp_ns`` (nanoseconds) in frame ``frame_id``."""
    return Header(stamp=time_from_ns(stamp_ns), frame_id=frame_id)
