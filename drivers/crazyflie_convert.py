"""Pure conversions between the Crazyflie and this project: thrust, rates, the logged state, battery, clock.

Frames. The Crazyflie's state estimate is right-handed with z up: world (x, y, z) of its positioning system
(Lighthouse, Loco, motion capture; z up), body x forward, y left, z up, quaternion body -> world. That is the
project's world ENU / body FLU (REP 103) as it is: no change of basis. Two legacy signs remain in the firmware
(crazyflie-firmware 2026.08): the controller's pitch is positive nose up (``stateEstimate.pitch``,
``stateEstimateZ.ratePitch = -gyro.y``, the PID rate loop on ``-gyro.y``), and the RPYT setpoint's yaw rate is
inverted (crtp_commander_rpyt.c: ``attitudeRate.yaw = -values->yaw``, "legacy rate input is inverted").

Rates. With ``flightmode.stabModeRoll = stabModePitch = 0`` (rate) the RPYT setpoint's roll and pitch are body
rates in deg/s. cflib's ``send_setpoint(roll, pitch, yawrate, thrust)`` sends ``(roll, -pitch, yawrate, thrust)``;
the firmware uses ``attitudeRate.roll = roll`` (about +x), ``attitudeRate.pitch = -pitch`` (legacy, nose up) and
``attitudeRate.yaw = -yawrate`` (about +z). So for body rates (p, q, r) FLU rad/s the host calls
``send_setpoint(deg(p), deg(q), -deg(r), thrust)``: :func:`rates_to_rpyt`.

Thrust. The RPYT thrust (0..65535; the firmware caps it at 60000 and treats < 1000 as 0) is each motor's PWM
command when no torque is asked for (power_distribution_quadrotor.c, legacy mixer: motor = thrust +- roll/2 +-
pitch/2 +- yaw). :class:`ThrustCurve` maps PWM to one rotor's thrust; the collective thrust is four of them.
Default: Foerster's system identification of the Crazyflie 2.0 (ETH 2015, in shared FACTS.md),
F = 2.130295e-11 u^2 + 1.032633e-6 u + 5.484560e-4 N per motor. Its hover command for 27 g is about 36,300.
The firmware compensates the battery's sag in the PWM (motorsCompensateBatteryVoltage), so one curve holds
over a discharge; a Crazyflie 2.1 with other motors or propellers needs its own (see docs/crazyflie.md).

State. One log block of 22 bytes carries the whole state at one timestamp (``stateEstimateZ``: position mm,
velocity mm/s as int16, the compressed quaternion as uint32, gyro rates mrad/s as int16); :func:`state_from_log`.

Battery. ``pm.vbat`` (V) -> 0..1 through the firmware's own 1S LiPo table (pm_stm32f4.c
``LiPoTypicalChargeCurve``: 3.00 V 0 %, 3.78 10 %, ..., 4.10 90 %), extended to 4.20 V = 100 % (a LiPo cell's
full charge). A resting curve: under a hover's load the cell sags a few tenths of a volt, so in flight the
percentage reads low (conservative for the safety layer's low and critical levels).

Clock. Log timestamps are milliseconds since the Crazyflie booted, 24 bits (wrap after 4.66 h):
:class:`TickUnwrapper` makes them continuous; drivers.px4_convert.ClockOffset maps them onto this computer's
clock (it takes microseconds: pass ms * 1000).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from drivers.crazyflie_wire import RPYT_MAX_THRUST, quat_decompress

ROTORS = 4


@dataclass(frozen=True)
class ThrustCurve:
    """One rotor's thrust (N) from its PWM command u (0..65535): F = a u^2 + b u + c for u > 0, 0 at u = 0."""

    a: float = 2.130295e-11  # N (Foerster 2015, Crazyflie 2.0)
    b: float = 1.032633e-6  # N
    c: float = 5.484560e-4  # N

    def __post_init__(self) -> None:
        if not (self.a >= 0 and self.b >= 0 and self.a + self.b > 0 and self.c >= 0):
            raise ValueError(f"thrust curve: expected a, b, c >= 0 and a + b > 0 (N per PWM count), got {self}")

    def rotor_thrust(self, u: float) -> float:
        """PWM command -> one rotor's thrust, N."""
        u = min(max(float(u), 0.0), 65535.0)
        return 0.0 if u <= 0 else self.a * u * u + self.b * u + self.c

    def command(self, rotor_thrust_n: float) -> float:
        """One rotor's thrust N -> PWM command (real, not rounded; 0 for thrusts below the curve's start)."""
        f = float(rotor_thrust_n)
        if not f > self.c:
            return 0.0
        if self.a == 0:
            return (f - self.c) / self.b
        return (-self.b + math.sqrt(self.b * self.b + 4 * self.a * (f - self.c))) / (2 * self.a)


def load_thrust_curve(path: str | Path | None) -> ThrustCurve:
    """The ``crazyflie: {thrust_curve: {a, b, c}}`` section of a bridge options file (launch/crazyflie_bridge.yaml),
    or the default curve for None. Raises ValueError naming an unknown key or a bad value, OSError for the file."""
    if path is None:
        return ThrustCurve()
    data = yaml.safe_load(Path(path).read_text()) or {}
    section = data.get("crazyflie", data)
    unknown = sorted(set(section) - {"thrust_curve"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown} under crazyflie; expected thrust_curve")
    curve = section.get("thrust_curve") or {}
    unknown = sorted(set(curve) - {"a", "b", "c"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown} in thrust_curve; expected a, b, c (N per PWM^2, PWM, 1)")
    return ThrustCurve(**{k: float(v) for k, v in curve.items()})


def thrust_to_command(thrust_n: float, curve: ThrustCurve) -> int:
    """Collective thrust N -> RPYT thrust: each of 4 rotors thrust_n / 4, through ``curve``, rounded, clipped to
    0..60000 (the firmware's cap). Raises ValueError for NaN or inf (never send a guess)."""
    if not math.isfinite(thrust_n):
        raise ValueError(f"collective thrust: expected a finite number of newtons, got {thrust_n}")
    return int(min(round(curve.command(thrust_n / ROTORS)), RPYT_MAX_THRUST))


def command_to_thrust(command: float, curve: ThrustCurve) -> float:
    """RPYT thrust (PWM command of each motor) -> collective thrust N, the inverse of :func:`thrust_to_command`."""
    return ROTORS * curve.rotor_thrust(command)


def max_thrust(curve: ThrustCurve) -> float:
    """The largest collective thrust the firmware lets the RPYT setpoint ask for (60000), N."""
    return command_to_thrust(RPYT_MAX_THRUST, curve)


def rates_to_rpyt(rate_flu: Sequence[float]) -> tuple[float, float, float]:
    """Body rates (p, q, r) FLU rad/s -> cflib ``send_setpoint``'s (roll, pitch, yawrate) deg/s, for roll and
    pitch in rate mode: (deg(p), deg(q), -deg(r))."""
    p, q, r = (math.degrees(float(v)) for v in rate_flu)
    return p, q, -r


def firmware_rates_to_flu(roll_dps: float, pitch_legacy_dps: float, yaw_dps: float) -> np.ndarray:
    """The firmware's rate setpoints (attitudeRate.roll about +x, .pitch legacy nose up, .yaw about +z; deg/s)
    -> body rates FLU rad/s (3,)."""
    return np.radians([roll_dps, -pitch_legacy_dps, yaw_dps])


#: The state log block: (variable, log type), 22 of the 26 bytes a block may carry. stateEstimateZ.ratePitch is
#: -gyro.y (stabilizer.c compressState: legacy, nose up).
STATE_VARIABLES = (
    ("stateEstimateZ.x", "int16_t"),  # mm, world
    ("stateEstimateZ.y", "int16_t"),
    ("stateEstimateZ.z", "int16_t"),
    ("stateEstimateZ.vx", "int16_t"),  # mm/s, world
    ("stateEstimateZ.vy", "int16_t"),
    ("stateEstimateZ.vz", "int16_t"),
    ("stateEstimateZ.quat", "uint32_t"),  # quatcompress.h, body -> world
    ("stateEstimateZ.rateRoll", "int16_t"),  # mrad/s, gyro x
    ("stateEstimateZ.ratePitch", "int16_t"),  # mrad/s, -gyro y
    ("stateEstimateZ.rateYaw", "int16_t"),  # mrad/s, gyro z
)
#: The status log block at 10 Hz: battery volts, the supervisor's bits, the power state (0 battery, 1 charging,
#: 2 charged, 3 low power, 4 shutdown).
STATUS_VARIABLES = (("pm.vbat", "float"), ("supervisor.info", "uint16_t"), ("pm.state", "int8_t"))


@dataclass(frozen=True)
class VehicleState:
    """position (3,) m world; quaternion (4,) w, x, y, z body FLU -> world; velocity (3,) m/s world; rates (3,)
    rad/s body FLU."""

    position: np.ndarray
    quaternion: np.ndarray
    velocity: np.ndarray
    rates: np.ndarray


def state_from_log(values: Mapping[str, float]) -> VehicleState:
    """The state block's values (cflib's dict: name -> value) -> :class:`VehicleState`."""
    g = "stateEstimateZ."
    x, y, z, w = quat_decompress(int(values[g + "quat"]))
    return VehicleState(
        position=np.array([values[g + "x"], values[g + "y"], values[g + "z"]], dtype=float) / 1000.0,
        quaternion=np.array([w, x, y, z]),
        velocity=np.array([values[g + "vx"], values[g + "vy"], values[g + "vz"]], dtype=float) / 1000.0,
        rates=np.array([values[g + "rateRoll"], -values[g + "ratePitch"], values[g + "rateYaw"]], dtype=float) / 1e3,
    )


#: (volts, fraction) of one LiPo cell at rest: pm_stm32f4.c LiPoTypicalChargeCurve, and 4.20 V full.
LIPO_CURVE = (
    (3.00, 0.0),
    (3.78, 0.1),
    (3.83, 0.2),
    (3.87, 0.3),
    (3.89, 0.4),
    (3.92, 0.5),
    (3.96, 0.6),
    (4.00, 0.7),
    (4.04, 0.8),
    (4.10, 0.9),
    (4.20, 1.0),
)


def battery_fraction(volts: float) -> float:
    """1S LiPo voltage -> state of charge 0..1 (linear between the table's points, clamped); NaN stays NaN."""
    if not math.isfinite(volts):
        return math.nan
    v, f = zip(*LIPO_CURVE, strict=True)
    return float(np.interp(volts, v, f))


class TickUnwrapper:
    """24-bit millisecond log timestamps -> continuous milliseconds since boot (a jump back of more than half
    the range is a wrap; a small step back is kept as it is, for the clock checks downstream to see)."""

    RANGE = 1 << 24

    def __init__(self) -> None:
        self._epoch = 0
        self._last: int | None = None

    def __call__(self, ticks: int) -> int:
        ticks = int(ticks) & (self.RANGE - 1)
        if self._last is not None and ticks < self._last - self.RANGE // 2:
            self._epoch += self.RANGE
        self._last = ticks
        return self._epoch + ticks
