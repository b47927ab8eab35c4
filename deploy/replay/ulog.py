"""PX4 ULog (``.ulg``) -> :class:`~deploy.replay.flight.Flight`, through ``pyulog``.

Read (first instance of each topic; ``timestamp`` fields, microseconds since boot):

- ``vehicle_odometry``: ``position`` (m), ``q`` (w-first, body FRD -> world per ``pose_frame``), ``velocity``
  (frame per ``velocity_frame``: 1 NED / 2 world FRD: world; 3 body FRD: rotated by ``q``), ``angular_velocity``
  (rad/s, body FRD). Logs of PX4 <= 1.13 (``x``, ``vx``, ``rollspeed`` ..., ``local_frame``, ``velocity_frame``
  0 NED / 1 FRD / 3 body) are read too. A world FRD frame differs from NED by a yaw only and is taken as NED.
  Without ``vehicle_odometry``: ``vehicle_local_position`` (x, y, z, vx, vy, vz; NED) + ``vehicle_attitude``
  (q) + ``vehicle_angular_velocity`` (xyz), interpolated onto the attitude's times.
- ``actuator_motors``: ``control[0..3]`` (normalized 0..1; NaN = disarmed, read as 0) -> RPM (throttle curve).
- ``vehicle_rates_setpoint`` (roll, pitch, yaw rad/s; thrust_body) and ``battery_status`` (voltage_v,
  current_a, remaining) -> :attr:`Flight.extra` (body FLU).

A file cut mid-message keeps every complete message; the byte offset of the cut is in :attr:`Flight.problems`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from deploy.replay.autopilot import check_magic, fill_flight, frd_to_flu, interp_rows, ned_state, series_times
from deploy.replay.errors import LogReadError
from deploy.replay.flight import Flight
from deploy.replay.throttle import ThrottleCurve

MAGIC = b"ULog\x01\x12\x35"
TOPICS = (
    "vehicle_odometry",
    "vehicle_local_position",
    "vehicle_attitude",
    "vehicle_angular_velocity",
    "actuator_motors",
    "vehicle_rates_setpoint",
    "battery_status",
)


def complete_bytes(blob: bytes) -> int:
    """Byte offset where the last complete message of a ULog ends (the file size when nothing is cut)."""
    pos = 16
    while pos + 3 <= len(blob):
        size = int.from_bytes(blob[pos : pos + 2], "little")
        if pos + 3 + size > len(blob):
            return pos
        pos += 3 + size
    return pos


def read_ulog(path: Path, throttle: ThrottleCurve) -> Flight:
    from pyulog import ULog
    from pyulog.core import ULogException

    blob = path.read_bytes()
    check_magic(path, blob, MAGIC, "PX4 ULog")
    flight = Flight(path, 0)
    end = complete_bytes(blob)
    if end < len(blob):
        flight.problems.append(
            f"{path}: the file ends mid-message (truncated copy or a log not closed): the last complete message "
            f"ends at byte {end} of {len(blob)}; {len(blob) - end} bytes after it are dropped"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()) as said:  # pyulog prints its warnings
            ulog = ULog(str(path), list(TOPICS))
    except (ULogException, ValueError, IndexError, KeyError) as exc:
        raise LogReadError(f"{path}: a ULog header, but its definitions cannot be read ({exc})") from exc
    if ulog.file_corruption:
        text = " ".join(said.getvalue().split())
        flight.problems.append(f"{path}: pyulog detected corrupt data and skipped it ({text or 'no detail'})")
    if ulog.dropouts:
        lost = sum(d.duration for d in ulog.dropouts)
        flight.problems.append(f"{path}: the logger dropped messages {len(ulog.dropouts)} times ({lost} ms in all)")
    data = {d.name: d.data for d in ulog.data_list if d.multi_id == 0 and len(d.data.get("timestamp", ()))}
    state_ns, state = _state(data, flight)
    command_ns, rpm = np.zeros(0, np.int64), np.zeros((0, 4))
    if "actuator_motors" in data:
        m = data["actuator_motors"]
        command_ns = m["timestamp"].astype(np.int64) * 1000
        u = np.nan_to_num(_cols(m, "control", 4), nan=0.0)
        rpm = throttle.rpm(u)
        flight.topics["command"] = "actuator_motors"
    fill_flight(flight, state_ns, state, command_ns, rpm)
    if "vehicle_rates_setpoint" in data:
        r = data["vehicle_rates_setpoint"]
        flight.extra["rates_setpoint"] = {
            "t": series_times(flight, r["timestamp"].astype(np.int64) * 1000),
            "rates": frd_to_flu(np.stack([r["roll"], r["pitch"], r["yaw"]], -1)),  # rad/s, body FLU
            "thrust_body": frd_to_flu(_cols(r, "thrust_body", 3)) if "thrust_body[0]" in r else np.zeros((0, 3)),
        }
    if "battery_status" in data:
        b = data["battery_status"]
        flight.extra["battery"] = {"t": series_times(flight, b["timestamp"].astype(np.int64) * 1000)}
        for name in ("voltage_v", "current_a", "remaining"):
            if name in b:
                flight.extra["battery"][name] = b[name].astype(np.float64)
    return flight


def _cols(d: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return np.stack([d[f"{name}[{i}]"].astype(np.float64) for i in range(n)], -1)


def _state(data: dict[str, dict[str, np.ndarray]], flight: Flight):
    if "vehicle_odometry" in data:
        o = data["vehicle_odometry"]
        ns = o["timestamp"].astype(np.int64) * 1000
        q = _cols(o, "q", 4)
        if "position[0]" in o:  # PX4 >= 1.14
            pos, vel, rates = _cols(o, "position", 3), _cols(o, "velocity", 3), _cols(o, "angular_velocity", 3)
            body = o["velocity_frame"] == 3  # VELOCITY_FRAME_BODY_FRD
        else:  # PX4 <= 1.13
            pos = np.stack([o["x"], o["y"], o["z"]], -1).astype(np.float64)
            vel = np.stack([o["vx"], o["vy"], o["vz"]], -1).astype(np.float64)
            rates = np.stack([o["rollspeed"], o["pitchspeed"], o["yawspeed"]], -1).astype(np.float64)
            body = o["velocity_frame"] == 3  # BODY_FRAME_FRD
        flight.topics.update(pose="vehicle_odometry", twist="vehicle_odometry")
        world = ned_state(pos, q, vel, rates, body_velocity=False)
        if body.any():
            in_body = ned_state(pos, q, vel, rates, body_velocity=True)
            world = (world[0], world[1], np.where(body[:, None], in_body[2], world[2]), world[3])
        return ns, world
    if {"vehicle_local_position", "vehicle_attitude"} <= set(data):
        att, lp = data["vehicle_attitude"], data["vehicle_local_position"]
        ns = att["timestamp"].astype(np.int64) * 1000
        lp_ns = lp["timestamp"].astype(np.int64) * 1000
        pos = interp_rows(ns, lp_ns, np.stack([lp["x"], lp["y"], lp["z"]], -1))
        vel = interp_rows(ns, lp_ns, np.stack([lp["vx"], lp["vy"], lp["vz"]], -1))
        rates = np.full((len(ns), 3), np.nan)
        if "vehicle_angular_velocity" in data:
            av = data["vehicle_angular_velocity"]
            rates = interp_rows(ns, av["timestamp"].astype(np.int64) * 1000, _cols(av, "xyz", 3))
        flight.topics.update(pose="vehicle_local_position + vehicle_attitude", twist="vehicle_local_position")
        return ns, ned_state(pos, _cols(att, "q", 4), vel, rates, body_velocity=False)
    empty = np.zeros((0, 3))
    return np.zeros(0, np.int64), (empty, np.zeros((0, 4)), empty, empty)
