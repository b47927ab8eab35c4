"""Pure conversions between PX4 and this project: frames, clocks, motor speeds.

Frames. PX4: world NED (x north, y east, z down; or "FRD": z down, heading arbitrary), body FRD (x forward,
y right, z down), quaternion (w, x, y, z) body FRD -> world NED. Project (REP 103, the simulator): world ENU /
z up, body FLU (x forward, y left, z up), quaternion (w, x, y, z) body FLU -> world ENU. Both changes of basis are
rotations by pi: NED -> ENU about (1, 1, 0)/sqrt(2) (swap x and y, negate z), FRD -> FLU about x (negate y, z).
So q_enu_flu = Q_NED_TO_ENU * q_ned_frd * Q_FLU_TO_FRD.

Clock. PX4 stamps are microseconds since PX4 boot, on the flight controller's clock. A bridge stamps what it
publishes in ROS time (the system clock of its computer, as ROS 2 drivers do). :class:`ClockOffset` estimates
offset = host - px4 as the smallest (arrival - stamp) seen in a sliding window, arrivals on the host clock the
bridge uses (``time.time_ns``): the sample with the least latency. Mapped stamps are therefore never in the
future (each sample's mapped stamp <= its arrival) and are late by at most the smallest latency.

Motors. PX4's ``ActuatorMotors.control`` is normalized 0..1 per motor; the runtime commands RPM. :class:`ThrottleCurve`
maps RPM -> normalized either by ``(rpm / rpm_max) ** exponent`` (exponent 2: normalized thrust, thrust ~ rpm^2,
what PX4 assumes with THR_MDL_FAC = 0; exponent 1: ESC speed linear in the command) or by a measured table.

Thrust. PX4's ``VehicleRatesSetpoint.thrust_body`` is normalized collective thrust: with no torque demand PX4's
allocation commands every motor at that value. The runtime commands newtons. :func:`thrust_to_normalized` divides
the collective thrust evenly over the rotors, takes each rotor's speed from thrust = kf rpm^2, and that speed's
command from the throttle curve; :func:`normalized_to_thrust` is its inverse. With the power law of exponent 2,
normalized = thrust / (rotors kf rpm_max^2): linear in thrust.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deploy.observation import quat_multiply

#: rotation taking NED coordinates to ENU coordinates (w, x, y, z): pi about (1, 1, 0)/sqrt(2).
Q_NED_TO_ENU = np.array([0.0, math.sqrt(0.5), math.sqrt(0.5), 0.0])
#: rotation taking FLU body coordinates to FRD body coordinates: pi about x. Its own inverse (up to sign).
Q_FLU_TO_FRD = np.array([0.0, 1.0, 0.0, 0.0])

POSE_FRAME_NED, POSE_FRAME_FRD = 1, 2
VELOCITY_FRAME_NED, VELOCITY_FRAME_FRD, VELOCITY_FRAME_BODY_FRD = 1, 2, 3


class FrameError(ValueError):
    """A PX4 sample in a frame this bridge cannot convert (unknown frame)."""


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector v (3,) by unit quaternion q (4,) (w, x, y, z) -> (3,)."""
    qv = np.array([0.0, *v])
    conj = np.array([q[0], -q[1], -q[2], -q[3]])
    return quat_multiply(quat_multiply(q, qv), conj)[1:]


def _canonical(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q


def ned_to_enu(v: Sequence[float]) -> np.ndarray:
    """World vector (3,) NED -> ENU (position m, velocity m/s): (y, x, -z). Its own inverse."""
    x, y, z = v
    return np.array([y, x, -z], dtype=float)


enu_to_ned = ned_to_enu


def frd_to_flu(v: Sequence[float]) -> np.ndarray:
    """Body vector (3,) FRD -> FLU (body rates rad/s, body velocities m/s): (x, -y, -z). Its own inverse."""
    x, y, z = v
    return np.array([x, -y, -z], dtype=float)


flu_to_frd = frd_to_flu


def quat_ned_frd_to_enu_flu(q_ned: Sequence[float]) -> np.ndarray:
    """PX4 attitude (4,) w, x, y, z body FRD -> NED  ->  project attitude (4,) body FLU -> ENU, w >= 0."""
    return _canonical(quat_multiply(quat_multiply(Q_NED_TO_ENU, np.asarray(q_ned, dtype=float)), Q_FLU_TO_FRD))


def quat_enu_flu_to_ned_frd(q_enu: Sequence[float]) -> np.ndarray:
    """Project attitude (4,) body FLU -> ENU  ->  PX4 attitude (4,) body FRD -> NED, w >= 0."""
    return _canonical(quat_multiply(quat_multiply(Q_NED_TO_ENU, np.asarray(q_enu, dtype=float)), Q_FLU_TO_FRD))


def velocity_to_enu(velocity: Sequence[float], velocity_frame: int, q_ned_frd: Sequence[float]) -> np.ndarray:
    """VehicleOdometry velocity (3,) m/s in ``velocity_frame`` -> world ENU (3,) m/s.

    NED and FRD (earth-fixed, z down) are converted like positions; BODY_FRD is rotated into the world by the
    attitude ``q_ned_frd`` first. Raises FrameError for VELOCITY_FRAME_UNKNOWN or any other value."""
    if velocity_frame in (VELOCITY_FRAME_NED, VELOCITY_FRAME_FRD):
        return ned_to_enu(velocity)
    if velocity_frame == VELOCITY_FRAME_BODY_FRD:
        return ned_to_enu(quat_rotate(_canonical(np.asarray(q_ned_frd, dtype=float)), np.asarray(velocity, float)))
    raise FrameError(f"VehicleOdometry velocity_frame {velocity_frame}: expected 1 (NED), 2 (FRD) or 3 (BODY_FRD)")


def position_to_enu(position: Sequence[float], pose_frame: int) -> np.ndarray:
    """VehicleOdometry position (3,) m in ``pose_frame`` (NED or FRD, both z down) -> world ENU (3,) m."""
    if pose_frame in (POSE_FRAME_NED, POSE_FRAME_FRD):
        return ned_to_enu(position)
    raise FrameError(f"VehicleOdometry pose_frame {pose_frame}: expected 1 (NED) or 2 (FRD)")


class ClockOffset:
    """Maps PX4 boot-clock microseconds to this computer's clock (the one arrivals are measured on: the bridges
    use ROS time, ``time.time_ns``), nanoseconds.

    offset_ns = min over a sliding window of (arrival_ns - px4_us * 1000). ``window_s``: how long a sample
    counts (follows slow drift between the two clocks; seconds of this computer's clock)."""

    def __init__(self, window_s: float = 5.0) -> None:
        if not window_s > 0:
            raise ValueError(f"ClockOffset window_s: expected seconds > 0, got {window_s}")
        self.window_ns = int(window_s * 1e9)
        self._window: deque[tuple[int, int]] = deque()  # (arrival_ns, arrival - stamp), increasing second items

    def observe(self, px4_us: int, arrival_ns: int) -> int:
        """Record one sample stamped ``px4_us`` (PX4 clock) that arrived at ``arrival_ns`` (host clock);
        returns the current offset, ns."""
        delta = int(arrival_ns) - int(px4_us) * 1000
        while self._window and self._window[-1][1] >= delta:  # a monotonic queue: the front is the minimum
            self._window.pop()
        self._window.append((int(arrival_ns), delta))
        while self._window[0][0] < arrival_ns - self.window_ns:
            self._window.popleft()
        return self._window[0][1]

    @property
    def ready(self) -> bool:
        return bool(self._window)

    @property
    def offset_ns(self) -> int:
        if not self._window:
            raise RuntimeError("ClockOffset has no sample yet: call observe() with a PX4 message first")
        return self._window[0][1]

    def to_host_ns(self, px4_us: int) -> int:
        """PX4 microseconds -> this computer's clock (the arrivals'), nanoseconds."""
        return int(px4_us) * 1000 + self.offset_ns

    to_monotonic_ns = to_host_ns  # the name before the bridges stamped ROS time

    def to_px4_us(self, host_ns: int) -> int:
        """This computer's clock (the arrivals'), ns -> PX4 microseconds (for stamps of messages sent to PX4)."""
        return max(0, (int(host_ns) - self.offset_ns) // 1000)


@dataclass(frozen=True)
class ThrottleCurve:
    """RPM <-> PX4 normalized motor command (0..1) for one vehicle.

    rpm_max: motor speed at command 1, RPM; exponent: normalized = (rpm / rpm_max) ** exponent; table: optional
    measured pairs ((rpm, normalized), ...) increasing in both, used instead of the power law (linear in between,
    clamped outside)."""

    rpm_max: float
    exponent: float = 2.0
    table: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rpm_max) and self.rpm_max > 0):
            raise ValueError(f"throttle curve rpm_max: expected RPM > 0, got {self.rpm_max}")
        if not (math.isfinite(self.exponent) and self.exponent > 0):
            raise ValueError(f"throttle curve exponent: expected a number > 0, got {self.exponent}")
        if self.table:
            rpm, u = np.array(self.table, dtype=float).T
            if len(rpm) < 2 or np.any(np.diff(rpm) <= 0) or np.any(np.diff(u) <= 0):
                raise ValueError(
                    f"throttle curve table: expected >= 2 (rpm, normalized) pairs increasing in both, got {self.table}"
                )

    def normalized(self, rpm: Sequence[float]) -> np.ndarray:
        """RPM (N,) -> command (N,) in 0..1; NaN stays NaN (motor off)."""
        rpm = np.asarray(rpm, dtype=float)
        if self.table:
            pts = np.array(self.table, dtype=float)
            out = np.interp(rpm, pts[:, 0], pts[:, 1])
        else:
            out = (np.clip(rpm, 0.0, self.rpm_max) / self.rpm_max) ** self.exponent
        return np.where(np.isnan(rpm), np.nan, np.clip(out, 0.0, 1.0))

    def rpm(self, normalized: Sequence[float]) -> np.ndarray:
        """Command (N,) in 0..1 -> RPM (N,); the inverse of :meth:`normalized`; NaN stays NaN."""
        u = np.clip(np.asarray(normalized, dtype=float), 0.0, 1.0)
        if self.table:
            pts = np.array(self.table, dtype=float)
            return np.interp(u, pts[:, 1], pts[:, 0])
        return self.rpm_max * u ** (1.0 / self.exponent)


def check_motor_map(motor_map: Sequence[int], num_controls: int = 12) -> tuple[int, ...]:
    """``motor_map[i]``: the PX4 motor number (1-based, ``ActuatorMotors.control[n - 1]``) of the project's motor
    i (profile order M1..M4). Raises ValueError unless the numbers are distinct and in 1..num_controls."""
    out = tuple(int(n) for n in motor_map)
    if len(set(out)) != len(out) or not all(1 <= n <= num_controls for n in out):
        raise ValueError(f"motor map {list(motor_map)}: expected distinct PX4 motor numbers in 1..{num_controls}")
    return out


def to_px4_controls(normalized: Sequence[float], motor_map: Sequence[int], num_controls: int = 12) -> list[float]:
    """Project-order commands (N,) -> ActuatorMotors.control (num_controls,): NaN (disarmed) in unused slots."""
    controls = [math.nan] * num_controls
    for value, number in zip(normalized, motor_map, strict=True):
        controls[number - 1] = float(value)
    return controls


def from_px4_controls(controls: Sequence[float], motor_map: Sequence[int]) -> np.ndarray:
    """ActuatorMotors.control -> project-order commands (N,) (the inverse of :func:`to_px4_controls`)."""
    return np.array([controls[n - 1] for n in motor_map], dtype=float)


def thrust_to_normalized(thrust_n: float, kf: float, curve: ThrottleCurve, rotors: int = 4) -> float:
    """Collective thrust (N) -> PX4 normalized thrust 0..1: each rotor thrust_n / rotors = kf rpm^2 (kf N/RPM^2),
    that rpm through ``curve``. Negative thrust is 0; NaN stays NaN."""
    if not (math.isfinite(kf) and kf > 0):
        raise ValueError(f"kf: expected N/RPM^2 > 0 (the robot profile's kf), got {kf}")
    if math.isnan(thrust_n):
        return math.nan
    rpm = math.sqrt(max(float(thrust_n), 0.0) / (rotors * kf))
    return float(curve.normalized([rpm])[0])


def normalized_to_thrust(normalized: float, kf: float, curve: ThrottleCurve, rotors: int = 4) -> float:
    """PX4 normalized thrust 0..1 -> collective thrust (N): the inverse of :func:`thrust_to_normalized` (clamped to
    0..1 first, as PX4 does for a multicopter)."""
    rpm = float(curve.rpm([normalized])[0])
    return rotors * kf * rpm * rpm


def to_px4_rates(
    thrust_n: float, rate_flu: Sequence[float], kf: float, curve: ThrottleCurve
) -> tuple[list[float], list[float]]:
    """A RateThrustCommand -> VehicleRatesSetpoint (roll, pitch, yaw) rad/s FRD (3,) and thrust_body (3,):
    (0, 0, -normalized), body z down, so negative is up."""
    return flu_to_frd(rate_flu).tolist(), [0.0, 0.0, -thrust_to_normalized(thrust_n, kf, curve)]
