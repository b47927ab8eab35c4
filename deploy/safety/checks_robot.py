"""Checks specific to a robot class: quadrotor envelope and battery; joint limits and base tilt.

A field a check needs that the robot did not report (or reported misshapen) is a FALLBACK verdict: a check
that cannot run is treated as failing, never skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.safety.checks import Severity, Verdict, ok, unit_quaternion, vector
from deploy.safety.inputs import SafetyInputs, StateSample


def tilt_rad(quat_wxyz: object) -> float | None:
    """Angle between body z and world z, radians in [0, pi]; None for a missing or zero-norm quaternion."""
    q = unit_quaternion(quat_wxyz)
    if q is None:
        return None
    _w, x, y, _z = q
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)  # R[2, 2] of the body-to-world rotation
    return math.acos(min(1.0, max(-1.0, cos_tilt)))


def _missing(name: str, field_name: str, expected: str, state: StateSample | None) -> Verdict:
    found = "no state" if state is None else repr(getattr(state, field_name))
    return Verdict(Severity.FALLBACK, name, f"state.{field_name}: expected {expected}, found {found}")


@dataclass
class TiltCheck:
    """Quadrotor attitude failure: tilt above ``max_tilt_rad`` for ``max_tilt_duration_s`` seconds -> ESTOP
    (flight termination, PX4 FD_FAIL_R/P with its trigger time); shorter excursions -> CLAMP (logged)."""

    max_tilt_rad: float = math.radians(60.0)
    max_tilt_duration_s: float = 0.3
    name: str = "tilt"
    since_s: float | None = field(default=None, init=False)

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        state = inputs.state
        tilt = tilt_rad(None if state is None else state.quat_wxyz)
        if tilt is None:
            return _missing(self.name, "quat_wxyz", "a finite (w, x, y, z) quaternion", state)
        if tilt <= self.max_tilt_rad:
            self.since_s = None
            return ok(self.name)
        if self.since_s is None or now < self.since_s:
            self.since_s = now
        held = now - self.since_s
        reason = f"tilt {math.degrees(tilt):.1f} deg > {math.degrees(self.max_tilt_rad):.1f} deg for {held:.3f} s"
        return Verdict(Severity.ESTOP if held >= self.max_tilt_duration_s else Severity.CLAMP, self.name, reason)

    def reset(self) -> None:
        self.since_s = None


@dataclass
class GeofenceCheck:
    """Horizontal distance from ``center_xy_m`` above ``radius_m`` metres -> FALLBACK (hover, then land)."""

    radius_m: float = 2.0
    center_xy_m: tuple[float, float] = (0.0, 0.0)
    name: str = "geofence"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        p = vector(None if inputs.state is None else inputs.state.position_m, 3)
        if p is None or not np.all(np.isfinite(p)):
            return _missing(self.name, "position_m", "a finite (3,) position [m]", inputs.state)
        d = math.hypot(p[0] - self.center_xy_m[0], p[1] - self.center_xy_m[1])
        if d > self.radius_m:
            return Verdict(Severity.FALLBACK, self.name, f"horizontal distance {d:.2f} m > geofence {self.radius_m} m")
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class AltitudeCheck:
    """World z above ``ceiling_m`` or below ``floor_m`` metres -> FALLBACK."""

    ceiling_m: float = 2.0
    floor_m: float = -0.1
    name: str = "altitude"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        p = vector(None if inputs.state is None else inputs.state.position_m, 3)
        if p is None or not np.all(np.isfinite(p)):
            return _missing(self.name, "position_m", "a finite (3,) position [m]", inputs.state)
        if p[2] > self.ceiling_m:
            return Verdict(Severity.FALLBACK, self.name, f"altitude {p[2]:.2f} m > ceiling {self.ceiling_m} m")
        if p[2] < self.floor_m:
            return Verdict(Severity.FALLBACK, self.name, f"altitude {p[2]:.2f} m < floor {self.floor_m} m")
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class BatteryCheck:
    """Battery fraction [0, 1] at or below ``low_fraction`` -> CLAMP (warning); at or below
    ``critical_fraction`` (or not reported) -> FALLBACK (land). PX4 thresholds 15 % / 7 %."""

    low_fraction: float = 0.15
    critical_fraction: float = 0.07
    name: str = "battery"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        b = None if inputs.state is None else inputs.state.battery_fraction
        if b is None or not math.isfinite(b):
            return _missing(self.name, "battery_fraction", "a finite fraction in [0, 1]", inputs.state)
        if b <= self.critical_fraction:
            return Verdict(Severity.FALLBACK, self.name, f"battery {b:.1%} <= critical {self.critical_fraction:.0%}")
        if b <= self.low_fraction:
            return Verdict(Severity.CLAMP, self.name, f"battery {b:.1%} <= low {self.low_fraction:.0%}")
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class JointRangeCheck:
    """A measured joint quantity outside its limits -> FALLBACK. Used three times:
    position (state.joint_pos_rad in [low - margin, high + margin] rad), velocity (|joint_vel_rad_s| <= limit
    rad/s) and torque (|joint_torque_nm| <= limit N m). low, high: (J,), in the profile's joint order."""

    name: str
    field_name: str
    unit: str
    low: np.ndarray
    high: np.ndarray
    joint_names: tuple[str, ...]

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        n = len(self.joint_names)
        x = vector(None if inputs.state is None else getattr(inputs.state, self.field_name), n)
        if x is None or not np.all(np.isfinite(x)):
            return _missing(self.name, self.field_name, f"{n} finite values [{self.unit}]", inputs.state)
        bad = np.flatnonzero((x < self.low) | (x > self.high))
        if bad.size:
            i = bad[0]
            return Verdict(
                Severity.FALLBACK,
                self.name,
                f"{self.joint_names[i]} = {x[i]:.4g} {self.unit} outside [{self.low[i]:.4g}, {self.high[i]:.4g}]",
            )
        return ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class BaseTiltCheck:
    """Legged base tilt above ``max_base_tilt_rad`` -> FALLBACK (damping) at once (rl_sar: 75 deg)."""

    max_base_tilt_rad: float = math.radians(75.0)
    name: str = "base_tilt"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        tilt = tilt_rad(None if inputs.state is None else inputs.state.quat_wxyz)
        if tilt is None:
            return _missing(self.name, "quat_wxyz", "a finite (w, x, y, z) quaternion", inputs.state)
        if tilt > self.max_base_tilt_rad:
            return Verdict(
                Severity.FALLBACK,
                self.name,
                f"base tilt {math.degrees(tilt):.1f} deg > {math.degrees(self.max_base_tilt_rad):.1f} deg",
            )
        return ok(self.name)

    def reset(self) -> None:
        pass
