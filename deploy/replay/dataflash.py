"""ArduPilot DataFlash (``.bin``) -> :class:`~deploy.replay.flight.Flight`, through pymavlink's ``DFReader``.

Read (``TimeUS``, microseconds since boot; first instance where a message has one, ``I`` / ``C`` = 0):

- attitude: ``ATT`` Roll, Pitch, Yaw (deg; body FRD -> world NED, Z-Y-X Euler). The state rows are at its times.
- position and velocity: ``XKF1`` (EKF3 core 0: PN, PE, PD m, VN, VE, VD m/s, NED) when logged; else ``POS``
  (Lat, Lng deg, Alt m; flat-earth about the first fix) with velocities differentiated from it.
- body rates: ``IMU`` GyrX, GyrY, GyrZ (rad/s, body FRD, instance 0), else ``RATE`` R, P, Y (deg/s).
- motors: ``RCOU`` C1..C4 (PWM us) -> normalized by the throttle curve's PWM range -> RPM.
- ``RATE`` RDes, PDes, YDes (deg/s) and ``BAT`` Volt, Curr -> :attr:`Flight.extra` (rad/s, body FLU).

A file cut mid-message keeps every complete message; the byte offset of the cut is in :attr:`Flight.problems`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from deploy.replay.autopilot import (
    check_magic,
    euler_to_quat,
    fill_flight,
    frd_to_flu,
    interp_rows,
    ned_state,
    series_times,
)
from deploy.replay.errors import LogReadError
from deploy.replay.flight import Flight
from deploy.replay.throttle import ThrottleCurve

HEAD = b"\xa3\x95"
FMT_TYPE, FMT_LENGTH = 0x80, 89
TYPES = ("ATT", "XKF1", "POS", "IMU", "RATE", "RCOU", "BAT", "PARM")
EARTH_RADIUS_M = 6_378_137.0


def complete_bytes(blob: bytes) -> tuple[int, str]:
    """Byte offset where the last complete message ends, and why reading stops there ('' at the file's end)."""
    lengths, pos = {FMT_TYPE: FMT_LENGTH}, 0
    while pos < len(blob):
        if blob[pos : pos + 2] != HEAD[: len(blob) - pos]:
            return pos, f"no message header (0xA3 0x95) at byte {pos}"
        if pos + 3 > len(blob):
            return pos, "the file ends mid-message"
        kind = blob[pos + 2]
        if kind not in lengths:
            return pos, f"message type {kind} at byte {pos} has no FMT definition"
        if pos + lengths[kind] > len(blob):
            return pos, "the file ends mid-message"
        if kind == FMT_TYPE:
            lengths[blob[pos + 3]] = blob[pos + 4]
        pos += lengths[kind]
    return pos, ""


def read_dataflash(path: Path, throttle: ThrottleCurve) -> Flight:
    from pymavlink.DFReader import DFReader_binary

    blob = path.read_bytes()
    check_magic(path, blob, HEAD + bytes([FMT_TYPE]), "ArduPilot DataFlash (.bin; FMT messages first)")
    flight = Flight(path, 0)
    end, why = complete_bytes(blob)
    if end < len(blob):
        flight.problems.append(
            f"{path}: {why}: the last complete message ends at byte {end} of {len(blob)}; "
            f"{len(blob) - end} bytes after it are not read"
        )
    rows: dict[str, list] = {name: [] for name in TYPES}
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            reader = DFReader_binary(str(path), zero_time_base=False)
            while (m := reader.recv_match(type=list(TYPES))) is not None:
                rows[m.get_type()].append(m)
    except Exception as exc:  # pymavlink raises many types on damaged data; what was read is kept
        if not any(rows.values()):
            raise LogReadError(
                f"{path}: pymavlink cannot read this DataFlash log ({type(exc).__name__}: {exc})"
            ) from exc
        flight.problems.append(f"{path}: pymavlink stopped reading ({type(exc).__name__}: {exc}); kept what was read")
    data = {name: _columns(msgs) for name, msgs in rows.items() if msgs}
    _check_pwm(data.get("PARM"), throttle, flight)
    state_ns, state = _state(data, flight)
    command_ns, rpm = np.zeros(0, np.int64), np.zeros((0, 4))
    if "RCOU" in data:
        r = data["RCOU"]
        command_ns = r["TimeUS"].astype(np.int64) * 1000
        pwm = np.stack([r[f"C{i}"] for i in range(1, 5)], -1)
        rpm = throttle.rpm(throttle.normalized_pwm(pwm))
        flight.topics["command"] = "RCOU"
    fill_flight(flight, state_ns, state, command_ns, rpm)
    if "RATE" in data:
        r = data["RATE"]
        sp = np.radians(np.stack([r["RDes"], r["PDes"], r["YDes"]], -1))
        flight.extra["rates_setpoint"] = {"t": series_times(flight, r["TimeUS"] * 1000), "rates": frd_to_flu(sp)}
    if "BAT" in data:
        b = _first_instance(data["BAT"], "Inst")
        flight.extra["battery"] = {"t": series_times(flight, b["TimeUS"] * 1000), "voltage_v": b["Volt"]}
        if "Curr" in b:
            flight.extra["battery"]["current_a"] = b["Curr"]
    return flight


def _columns(msgs: list) -> dict[str, np.ndarray]:
    names = [n for n in msgs[0].get_fieldnames() if not isinstance(getattr(msgs[0], n), (str, bytes))]
    out = {n: np.array([getattr(m, n) for m in msgs], dtype=np.float64) for n in names}
    if msgs[0].get_type() == "PARM":
        out["Name"] = np.array([m.Name for m in msgs])
    out["TimeUS"] = out["TimeUS"].astype(np.int64)
    return out


def _first_instance(d: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    if key not in d:
        return d
    keep = d[key] == d[key].min()
    return {k: v[keep] for k, v in d.items()}


def _check_pwm(parm: dict[str, np.ndarray] | None, throttle: ThrottleCurve, flight: Flight) -> None:
    if parm is None:
        return
    values = dict(zip(parm["Name"].tolist(), parm["Value"].tolist()))
    lo, hi = values.get("MOT_PWM_MIN", 0.0), values.get("MOT_PWM_MAX", 0.0)
    if lo > 0 and hi > 0 and (lo, hi) != (throttle.pwm_min, throttle.pwm_max):
        flight.problems.append(
            f"{flight.path}: the log's MOT_PWM_MIN/MAX are {lo:g}/{hi:g} us, the throttle curve uses "
            f"{throttle.pwm_min:g}/{throttle.pwm_max:g}; pass --pwm-range {lo:g} {hi:g} if the log is right"
        )


def _state(data: dict[str, dict[str, np.ndarray]], flight: Flight):
    empty = np.zeros((0, 3))
    if "ATT" not in data or not ({"XKF1", "POS"} & set(data)):
        return np.zeros(0, np.int64), (empty, np.zeros((0, 4)), empty, empty)
    att = data["ATT"]
    ns = att["TimeUS"] * 1000
    q = euler_to_quat(*(np.radians(att[k]) for k in ("Roll", "Pitch", "Yaw")))
    if "XKF1" in data:
        k = _first_instance(data["XKF1"], "C")
        k_ns = k["TimeUS"] * 1000
        pos = interp_rows(ns, k_ns, np.stack([k["PN"], k["PE"], k["PD"]], -1))
        vel = interp_rows(ns, k_ns, np.stack([k["VN"], k["VE"], k["VD"]], -1))
        flight.topics.update(pose="XKF1 + ATT", twist="XKF1")
    else:
        p = data["POS"]
        lat, lon = np.radians(p["Lat"]), np.radians(p["Lng"])
        ned = np.stack(
            [
                (lat - lat[0]) * EARTH_RADIUS_M,
                (lon - lon[0]) * EARTH_RADIUS_M * np.cos(lat[0]),
                -(p["Alt"] - p["Alt"][0]),
            ],
            -1,
        )
        p_s = p["TimeUS"] * 1e-6
        vel_ned = np.stack([np.gradient(c, p_s) for c in ned.T], -1) if len(p_s) > 1 else np.zeros_like(ned)
        pos, vel = interp_rows(ns, p["TimeUS"] * 1000, ned), interp_rows(ns, p["TimeUS"] * 1000, vel_ned)
        flight.topics.update(pose="POS + ATT", twist="POS (differentiated)")
    if "IMU" in data:
        imu = _first_instance(data["IMU"], "I")
        rates = interp_rows(ns, imu["TimeUS"] * 1000, np.stack([imu["GyrX"], imu["GyrY"], imu["GyrZ"]], -1))
    elif "RATE" in data:
        r = data["RATE"]
        rates = interp_rows(ns, r["TimeUS"] * 1000, np.radians(np.stack([r["R"], r["P"], r["Y"]], -1)))
    else:
        rates = np.full((len(ns), 3), np.nan)
    return ns, ned_state(pos, q, vel, rates, body_velocity=False)
