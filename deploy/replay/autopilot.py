"""Logs written by the autopilot itself: PX4 ULog (``.ulg``, :mod:`deploy.replay.ulog`) and ArduPilot DataFlash
(``.bin``, :mod:`deploy.replay.dataflash`), read into the same :class:`~deploy.replay.flight.Flight` as the
deploy logs, by file extension (:func:`load_flight` sends them here).

Both autopilots log in world NED and body FRD; a :class:`Flight` is world ENU (z up), body FLU, quaternions
w-first body -> world, velocities world frame, rates body frame, times in seconds since ``t0_ns``. Timestamps
are microseconds since boot, converted to nanoseconds. Motor outputs become RPM through the user's
:class:`~deploy.replay.throttle.ThrottleCurve`. An autopilot log has no policy observations or actions and no
sim2real safety transitions: policy replay is skipped, identification takes the steps where motors spin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deploy.replay.errors import LogReadError, TopicMapError
from deploy.replay.flight import _FRD_TO_FLU, _NED_TO_ENU, Flight, _quat_ned_to_enu, rotations
from deploy.replay.throttle import ThrottleCurve

log = logging.getLogger(__name__)
SUFFIXES = {".ulg": "PX4 ULog", ".bin": "ArduPilot DataFlash"}


def is_autopilot_log(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES and not Path(path).is_dir()


def load_autopilot_flight(
    path: str | Path, throttle: ThrottleCurve | None = None, needed: Sequence[str] = ()
) -> Flight:
    """Read a ``.ulg`` or ``.bin`` log; raise :class:`LogReadError` (one line: what was expected, what was
    found) when the file is not one, and :class:`TopicMapError` when a ``needed`` role has no data."""
    path = Path(path)
    if not path.is_file():
        raise LogReadError(f"log {str(path)!r} does not exist; pass a PX4 .ulg or ArduPilot .bin file")
    throttle = throttle or ThrottleCurve()
    if path.suffix.lower() == ".ulg":
        from deploy.replay.ulog import read_ulog

        flight = read_ulog(path, throttle)
    else:
        from deploy.replay.dataflash import read_dataflash

        flight = read_dataflash(path, throttle)
    have = {"pose": len(flight.state_t), "twist": len(flight.twist_t), "command": len(flight.command_t)}
    missing = [role for role in needed if not have.get(role, 0)]
    if missing:
        raise TopicMapError(
            f"{path}: no data for {missing} in this {SUFFIXES[path.suffix.lower()]} log (it has: "
            f"{', '.join(flight.topics.values()) or 'none of the messages read'}); see docs/replay.md, "
            "'Logs from PX4 and ArduPilot', for the messages each role is read from"
        )
    for p in flight.problems:
        log.warning("%s", p)
    return flight


def check_magic(path: Path, blob: bytes, magic: bytes, kind: str) -> None:
    if not blob.startswith(magic):
        raise LogReadError(
            f"{path}: not a {kind} file: expected it to start with bytes {magic!r}, found {blob[: len(magic)]!r}"
        )


def euler_to_quat(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Z-Y-X Euler angles (rad, aerospace convention) -> (K, 4) w, x, y, z of the same frames (e.g. FRD -> NED)."""
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.stack(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ],
        -1,
    )


def ned_state(
    position_ned: np.ndarray, q_frd_ned: np.ndarray, velocity: np.ndarray, rates_frd: np.ndarray, body_velocity: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World NED / body FRD -> world ENU / body FLU: position (K, 3) m, quaternion (K, 4) w-first, velocity
    (K, 3) world m/s (``body_velocity``: the input is in body FRD), body rates (K, 3) rad/s."""
    q = _quat_ned_to_enu(q_frd_ned)
    if body_velocity:
        v_world = np.einsum("kij,kj->ki", rotations(q), velocity @ _FRD_TO_FLU.T)
    else:
        v_world = velocity @ _NED_TO_ENU.T
    return position_ned @ _NED_TO_ENU.T, q, v_world, rates_frd @ _FRD_TO_FLU.T


def frd_to_flu(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) @ _FRD_TO_FLU.T


def interp_rows(t: np.ndarray, src_t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(N, D) values at ``src_t`` -> at ``t`` (linear, held at the ends)."""
    return np.stack([np.interp(t, src_t, c) for c in np.asarray(values, dtype=np.float64).T], -1)


def fill_flight(
    flight: Flight,
    state_ns: np.ndarray,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    command_ns: np.ndarray,
    command_rpm: np.ndarray,
) -> Flight:
    """Put ENU/FLU state rows and RPM commands (times in ns since boot) into ``flight``; t0 = the first time."""
    finite = np.all(np.isfinite(np.concatenate(state, axis=1)), axis=1) if len(state_ns) else np.zeros(0, bool)
    if len(state_ns) and not finite.all():
        flight.problems.append(
            f"{flight.path}: {int((~finite).sum())} of {len(state_ns)} state rows have NaN fields (estimate not "
            "valid yet, or not estimated); left out"
        )
    state_ns, state = state_ns[finite], tuple(a[finite] for a in state)
    order = np.argsort(state_ns, kind="stable")
    starts = [a[0] for a in (np.sort(state_ns), np.sort(command_ns)) if len(a)]
    flight.t0_ns = int(min(starts)) if starts else 0
    t = (state_ns[order] - flight.t0_ns) * 1e-9
    position, q, velocity, rates = (a[order] for a in state)
    flight.state_t = flight.state_log_t = flight.twist_t = flight.twist_log_t = t
    flight.position, flight.quaternion = position, q
    flight.velocity = flight.twist_linear = velocity
    flight.angular_velocity = flight.twist_angular = rates
    corder = np.argsort(command_ns, kind="stable")
    flight.command_t = (command_ns[corder] - flight.t0_ns) * 1e-9
    flight.command = command_rpm[corder] if len(command_ns) else np.zeros((0, 4))
    flight.message_count = len(state_ns) + len(command_ns)
    return flight


def series_times(flight: Flight, ns: np.ndarray) -> np.ndarray:
    """ns since boot -> s since the flight's t0 (call after :func:`fill_flight`)."""
    return (np.asarray(ns, dtype=np.int64) - flight.t0_ns) * 1e-9
