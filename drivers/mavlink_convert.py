"""Pure conversions between MAVLink messages and the project's state and commands. The frames, the clock and the
thrust curve are PX4's conventions, shared with drivers/px4_convert.py (used here, not copied):

- State in. ODOMETRY (#331): ``frame_id`` MAV_FRAME_LOCAL_NED (1) or MAV_FRAME_LOCAL_FRD (20) for the position and
  the attitude ``q`` (w, x, y, z, body FRD -> that frame); the velocity is in ``child_frame_id``: MAV_FRAME_BODY_FRD
  (12, what PX4 streams) is rotated into the world by ``q``, LOCAL_NED / LOCAL_FRD are used as they are; any other
  frame raises FrameError. Or ATTITUDE_QUATERNION (q1..q4 = w, x, y, z, body FRD -> NED) + LOCAL_POSITION_NED
  (position and velocity NED). Body rates (rollspeed, pitchspeed, yawspeed) are FRD. Out: world ENU, body FLU,
  quaternion body FLU -> ENU, through :func:`drivers.px4_convert.quat_ned_frd_to_enu_flu` and friends.
- Command out. SET_ATTITUDE_TARGET (attitude ignored): body rates FRD = (p, -q, -r) of the runtime's FLU rates;
  ``thrust`` = normalized collective thrust 0..1: the runtime's newtons spread over 4 rotors, thrust / 4 = kf
  rpm^2, that rpm through the vehicle's throttle curve (:func:`drivers.px4_convert.thrust_to_normalized`; with the
  power law of exponent 2 it is thrust / (4 kf rpm_max^2), the fraction of full thrust). PX4 then sends that
  value to every motor when no torque is asked for; ArduPilot (GUID_OPTIONS bit 3) treats it as the fraction of
  full thrust through its MOT_THST_EXPO linearization: both are the power law of exponent 2 for a tuned vehicle.
- Battery. BATTERY_STATUS: cells ``voltages`` mV (UINT16_MAX = no cell), ``voltages_ext`` for cells 11-14 (0 = none),
  ``current_battery`` cA (-1 unknown), ``battery_remaining`` % (-1 unknown); SYS_STATUS: ``voltage_battery`` mV
  (UINT16_MAX unknown), ``current_battery`` cA, ``battery_remaining`` %. Unknown values become NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drivers.px4_convert import (
    POSE_FRAME_FRD,
    POSE_FRAME_NED,
    VELOCITY_FRAME_BODY_FRD,
    VELOCITY_FRAME_FRD,
    VELOCITY_FRAME_NED,
    FrameError,
    flu_to_frd,
    frd_to_flu,
    ned_to_enu,
    normalized_to_thrust,
    position_to_enu,
    quat_ned_frd_to_enu_flu,
    thrust_to_normalized,
    velocity_to_enu,
)

MAV_FRAME_LOCAL_NED, MAV_FRAME_BODY_FRD, MAV_FRAME_LOCAL_FRD = 1, 12, 20
#: MAVLink frame -> the VehicleOdometry frame code drivers.px4_convert understands.
POSE_FRAMES = {MAV_FRAME_LOCAL_NED: POSE_FRAME_NED, MAV_FRAME_LOCAL_FRD: POSE_FRAME_FRD}
VELOCITY_FRAMES = {
    MAV_FRAME_LOCAL_NED: VELOCITY_FRAME_NED,
    MAV_FRAME_LOCAL_FRD: VELOCITY_FRAME_FRD,
    MAV_FRAME_BODY_FRD: VELOCITY_FRAME_BODY_FRD,
}
UINT16_MAX = 65535


@dataclass(frozen=True)
class State:
    """One state sample in the project's frames: position (3,) world ENU m; quat (4,) w, x, y, z body FLU -> ENU;
    velocity (3,) world ENU m/s; rates (3,) body FLU rad/s."""

    position: np.ndarray
    quat: np.ndarray
    velocity: np.ndarray
    rates: np.ndarray

    @property
    def pose_finite(self) -> bool:
        return bool(np.isfinite(self.position).all() and np.isfinite(self.quat).all())

    @property
    def twist_finite(self) -> bool:
        return bool(np.isfinite(self.velocity).all() and np.isfinite(self.rates).all())


def _quat(q_ned_frd: Sequence[float]) -> np.ndarray:
    q = np.asarray(q_ned_frd, dtype=float)
    if not np.isfinite(q).all() or np.linalg.norm(q) < 0.5:
        return np.full(4, np.nan)
    return quat_ned_frd_to_enu_flu(q)


def state_from_odometry(msg) -> State:
    """ODOMETRY -> :class:`State`. Raises FrameError for a frame other than those of the module docstring."""
    pose_frame = POSE_FRAMES.get(int(msg.frame_id))
    velocity_frame = VELOCITY_FRAMES.get(int(msg.child_frame_id))
    if pose_frame is None:
        raise FrameError(f"ODOMETRY frame_id {msg.frame_id}: expected 1 (MAV_FRAME_LOCAL_NED) or 20 (LOCAL_FRD)")
    if velocity_frame is None:
        raise FrameError(
            f"ODOMETRY child_frame_id {msg.child_frame_id}: expected 12 (MAV_FRAME_BODY_FRD), 1 (LOCAL_NED) or 20"
        )
    q = list(msg.q)
    quat = _quat(q)
    body = velocity_frame == VELOCITY_FRAME_BODY_FRD and not np.isfinite(quat).all()
    return State(
        position=position_to_enu((msg.x, msg.y, msg.z), pose_frame),
        quat=quat,
        velocity=np.full(3, np.nan) if body else velocity_to_enu((msg.vx, msg.vy, msg.vz), velocity_frame, q),
        rates=frd_to_flu((msg.rollspeed, msg.pitchspeed, msg.yawspeed)),
    )


def state_from_attitude_position(attitude, position) -> State:
    """ATTITUDE_QUATERNION + LOCAL_POSITION_NED -> :class:`State`."""
    return State(
        position=ned_to_enu((position.x, position.y, position.z)),
        quat=_quat((attitude.q1, attitude.q2, attitude.q3, attitude.q4)),
        velocity=ned_to_enu((position.vx, position.vy, position.vz)),
        rates=frd_to_flu((attitude.rollspeed, attitude.pitchspeed, attitude.yawspeed)),
    )


def attitude_target(
    thrust_n: float, rate_flu: Sequence[float], kf: float, curve
) -> tuple[tuple[float, float, float], float]:
    """A RateThrustCommand (thrust N, body rates FLU rad/s) -> SET_ATTITUDE_TARGET body rates FRD rad/s (3,) and
    normalized thrust 0..1."""
    p, q, r = (float(v) for v in flu_to_frd(rate_flu))
    return (p, q, r), thrust_to_normalized(thrust_n, kf, curve)


def thrust_newtons(normalized: float, kf: float, curve) -> float:
    """SET_ATTITUDE_TARGET.thrust (clamped to 0..1) -> collective thrust N: the inverse of :func:`attitude_target`."""
    return normalized_to_thrust(min(max(float(normalized), 0.0), 1.0), kf, curve)


def _fraction(percent: int) -> float:
    return math.nan if percent < 0 else float(percent) / 100.0


def _amps(centiamps: int) -> float:
    return math.nan if centiamps == -1 else float(centiamps) / 100.0


def battery_from_status(msg) -> tuple[float, float, float, list[float]]:
    """BATTERY_STATUS -> (voltage V, current A, remaining 0..1, cell voltages V); NaN for unknown values."""
    cells = [v / 1000.0 for v in msg.voltages if v != UINT16_MAX]
    cells += [v / 1000.0 for v in getattr(msg, "voltages_ext", ()) if v not in (0, UINT16_MAX)]
    voltage = float(sum(cells)) if cells else math.nan
    return voltage, _amps(msg.current_battery), _fraction(msg.battery_remaining), cells


def battery_from_sys_status(msg) -> tuple[float, float, float, list[float]]:
    """SYS_STATUS -> (voltage V, current A, remaining 0..1, []); NaN for unknown values."""
    voltage = math.nan if msg.voltage_battery == UINT16_MAX else msg.voltage_battery / 1000.0
    return voltage, _amps(msg.current_battery), _fraction(msg.battery_remaining), []


class BootClock:
    """The autopilot's boot clock (microseconds; time_boot_ms x 1000) and its reboots: a stamp more than
    ``reboot_s`` older than the newest one means the autopilot restarted, and the offset must be measured again."""

    def __init__(self, reboot_s: float = 1.0) -> None:
        self.reboot_us = int(reboot_s * 1e6)
        self.newest_us = -1

    def rebooted(self, stamp_us: int) -> bool:
        """Record ``stamp_us``; True if it went back by more than ``reboot_s`` (the caller resets its offset)."""
        back = self.newest_us >= 0 and stamp_us < self.newest_us - self.reboot_us
        self.newest_us = stamp_us if back else max(self.newest_us, stamp_us)
        return back
