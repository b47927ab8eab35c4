"""Write PX4 ULog files for the tests (ULog spec, version 1): file header, flag bits, format definitions,
an info and a parameter message, subscriptions, then timestamp-ordered data messages with sync messages.

:func:`write_ulog` writes any topics; :func:`write_flight_ulog` writes a :class:`Flight` (ENU/FLU, RPM) as PX4
logs it: ``vehicle_odometry`` in NED/FRD, ``actuator_motors`` normalized through the inverse throttle curve.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from deploy.replay.flight import _FRD_TO_FLU, _NED_TO_ENU, Flight, _matrix_to_quat, rotations
from deploy.replay.throttle import ThrottleCurve

MAGIC = b"ULog\x01\x12\x35"
_NP = {"uint64_t": "<u8", "int64_t": "<i8", "uint32_t": "<u4", "int32_t": "<i4", "uint16_t": "<u2",
       "int16_t": "<i2", "uint8_t": "u1", "int8_t": "i1", "float": "<f4", "double": "<f8", "bool": "?"}  # fmt: skip
# (type, name) of the PX4 1.14 messages read by deploy.replay.ulog
ODOMETRY = [("uint64_t", "timestamp"), ("uint64_t", "timestamp_sample"), ("float[3]", "position"),
            ("float[4]", "q"), ("float[3]", "velocity"), ("float[3]", "angular_velocity"),
            ("float[3]", "position_variance"), ("float[3]", "orientation_variance"),
            ("float[3]", "velocity_variance"), ("uint8_t", "pose_frame"), ("uint8_t", "velocity_frame"),
            ("uint8_t", "reset_counter"), ("int8_t", "quality"), ("uint8_t[4]", "_padding0")]  # fmt: skip
MOTORS = [("uint64_t", "timestamp"), ("uint64_t", "timestamp_sample"), ("uint16_t", "reversible_flags"),
          ("float[12]", "control"), ("uint8_t[2]", "_padding0")]  # fmt: skip
RATES_SP = [("uint64_t", "timestamp"), ("float", "roll"), ("float", "pitch"), ("float", "yaw"),
            ("float[3]", "thrust_body"), ("bool", "reset_integral"), ("uint8_t[3]", "_padding0")]  # fmt: skip
BATTERY = [("uint64_t", "timestamp"), ("float", "voltage_v"), ("float", "current_a"), ("float", "remaining")]


def _msg(kind: bytes, payload: bytes) -> bytes:
    return struct.pack("<HB", len(payload), kind[0]) + payload


def _dtype(fields: list[tuple[str, str]]) -> np.dtype:
    out = []
    for type_, name in fields:
        base, _, n = type_.partition("[")
        out.append((name, _NP[base], (int(n[:-1]),)) if n else (name, _NP[base]))
    return np.dtype(out)


def write_ulog(path: str | Path, topics: dict[str, tuple[list[tuple[str, str]], dict[str, np.ndarray]]]) -> Path:
    """topics: name -> (fields, values); values: field name -> (N,) or (N, k) array, ``timestamp`` in us."""
    out = bytearray(MAGIC + b"\x01" + struct.pack("<Q", 0))
    out += _msg(b"B", bytes(16) + struct.pack("<3Q", 0, 0, 0))  # flag bits: no appended data
    for name, (fields, _) in topics.items():
        out += _msg(b"F", f"{name}:{''.join(f'{t} {n};' for t, n in fields)}".encode())
    key = b"char[9] sys_name"
    out += _msg(b"I", bytes([len(key)]) + key + b"sim2real\x00")
    key = b"int32_t SYS_AUTOSTART"
    out += _msg(b"P", bytes([len(key)]) + key + struct.pack("<i", 4001))
    events = []
    for msg_id, (name, (fields, values)) in enumerate(topics.items()):
        out += _msg(b"A", struct.pack("<BH", 0, msg_id) + name.encode())
        rows = np.zeros(len(values["timestamp"]), dtype=_dtype(fields))
        for field, v in values.items():
            rows[field] = v
        size = _dtype([f for f in fields if not f[1].startswith("_padding")] or fields).itemsize
        # the spec: padding at the end of a message is not written in its data messages
        events += [(int(r["timestamp"]), msg_id, r.tobytes()[:size]) for r in rows]
    for i, (_, msg_id, payload) in enumerate(sorted(events, key=lambda e: (e[0], e[1]))):
        out += _msg(b"D", struct.pack("<H", msg_id) + payload)
        if i % 500 == 0:
            out += _msg(b"S", bytes([0x2F, 0x73, 0x13, 0x20, 0x25, 0x0C, 0xBB, 0x12]))
    Path(path).write_bytes(bytes(out))
    return Path(path)


def normalized_output(rpm: np.ndarray, curve: ThrottleCurve) -> np.ndarray:
    """Inverse of :meth:`ThrottleCurve.rpm`: (N, 4) RPM in simulator order -> (N, 4) 0..1 in autopilot order."""
    thrust = np.clip((rpm - curve.idle_rpm) / (curve.max_rpm - curve.idle_rpm), 0.0, 1.0) ** 2
    e = curve.expo
    u = thrust if e == 0 else (-(1 - e) + np.sqrt((1 - e) ** 2 + 4 * e * thrust)) / (2 * e)
    out = np.zeros_like(u)
    out[:, list(curve.order)] = u
    return out


def ned_rows(flight: Flight, body_velocity: bool = False) -> dict[str, np.ndarray]:
    """A Flight's state in PX4 frames: position NED, q (FRD -> NED, w-first), velocity NED or body FRD, rates FRD."""
    R = rotations(flight.quaternion)
    q = _matrix_to_quat(_NED_TO_ENU @ R @ _FRD_TO_FLU)
    vel = (
        np.einsum("kji,kj->ki", R, flight.velocity) @ _FRD_TO_FLU.T
        if body_velocity
        else flight.velocity @ _NED_TO_ENU.T
    )
    return {"position": flight.position @ _NED_TO_ENU.T, "q": q, "velocity": vel,
            "angular_velocity": flight.angular_velocity @ _FRD_TO_FLU.T}  # fmt: skip


def write_flight_ulog(
    path: str | Path, flight: Flight, curve: ThrottleCurve, *, body_velocity: bool = False, boot_us: int = 5_000_000
) -> Path:
    """``flight`` as a PX4 log; times become ``boot_us + t * 1e6`` microseconds since boot."""
    state_us = boot_us + np.round(flight.state_t * 1e6).astype(np.int64)
    cmd_us = boot_us + np.round(flight.command_t * 1e6).astype(np.int64)
    odom = {"timestamp": state_us, "timestamp_sample": state_us - 500, **ned_rows(flight, body_velocity)}
    odom.update(pose_frame=np.full(len(state_us), 1), velocity_frame=np.full(len(state_us), 3 if body_velocity else 1))
    control = np.full((len(cmd_us), 12), np.nan)
    control[:, :4] = normalized_output(flight.command, curve)
    motors = {"timestamp": cmd_us, "timestamp_sample": cmd_us - 200, "control": control}
    rates = flight.angular_velocity @ _FRD_TO_FLU.T
    rates_sp = {"timestamp": state_us, "roll": rates[:, 0], "pitch": rates[:, 1], "yaw": rates[:, 2]}
    rates_sp["thrust_body"] = np.tile([0.0, 0.0, -0.5], (len(state_us), 1))
    bat_us = state_us[::10]
    battery = {
        "timestamp": bat_us,
        "voltage_v": np.linspace(4.1, 3.9, len(bat_us)),
        "current_a": np.full(len(bat_us), 5.0),
    }
    return write_ulog(
        path,
        {
            "vehicle_odometry": (ODOMETRY, odom),
            "actuator_motors": (MOTORS, motors),
            "vehicle_rates_setpoint": (RATES_SP, rates_sp),
            "battery_status": (BATTERY, battery),
        },
    )
