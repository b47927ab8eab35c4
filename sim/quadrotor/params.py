"""Quadrotor physical parameters (a robot profile), torch-free.

Conventions used everywhere in sim2real:
- body frame FLU (x forward, y left, z up); world frame ENU-like with z up; gravity -z.
- quaternions (w, x, y, z), body -> world.
- motors M1..M4 at (+a,-a), (-a,-a), (-a,+a), (+a,+a), a = arm_length / sqrt(2): front-right, back-right,
  back-left, front-left. M1 and M3 spin clockwise seen from above, M2 and M4 counter-clockwise. A rotor's
  reaction torque opposes its spin, so yaw torque = km * (f1 - f2 + f3 - f4).
- rotor speeds in RPM; thrust per rotor f = kf * rpm^2.

Defaults are a Crazyflie 2.x. Sources (see shared FACTS.md): mass, arm, inertia, kf, km/kf, max RPM and drag
from gym-pybullet-drones `cf2x.urdf` / `BaseAviary.py`; motor time constants from RLtools 2025 (rise 0.056 s)
and learning-to-fly (0.15 s, used here for the slower fall).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

GRAVITY = 9.81  # m/s^2


class ProfileError(ValueError):
    """A robot profile is missing a field, has a wrong value, or does not fit the simulator."""


@dataclass(frozen=True)
class QuadrotorParams:
    """Nominal physical parameters of one quadrotor (SI units; rotor speeds in RPM)."""

    mass: float = 0.027  # kg
    arm_length: float = 0.0397  # m, centre to motor
    inertia: tuple[float, float, float] = (1.4e-5, 1.4e-5, 2.17e-5)  # kg m^2, body-axis diagonal
    kf: float = 3.16e-10  # N / RPM^2
    km: float = 0.0251  # m, yaw torque per newton of thrust
    max_rpm: float = 21702.0  # RPM
    min_rpm: float = 0.0  # RPM
    motor_tau_up: float = 0.056  # s, first-order time constant when speeding up
    motor_tau_down: float = 0.15  # s, when slowing down
    drag: tuple[float, float, float] = (9.1785e-7, 9.1785e-7, 10.311e-7)  # N / (m/s) / (rad/s of summed rotor speed)
    name: str = "crazyflie2"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                continue
            values = value if isinstance(value, tuple) else (value,)
            if f.name in ("inertia", "drag") and len(values) != 3:
                raise ProfileError(f"quadrotor profile field {f.name!r} needs 3 values (x, y, z), got {value!r}")
            for v in values:
                if not isinstance(v, int | float) or not math.isfinite(v):
                    raise ProfileError(f"quadrotor profile field {f.name!r} must be finite numbers, got {value!r}")
                if v < 0 or (v == 0 and f.name not in ("min_rpm", "drag")):
                    raise ProfileError(f"quadrotor profile field {f.name!r} must be positive, got {value!r}")
        if self.min_rpm >= self.max_rpm:
            raise ProfileError(f"min_rpm ({self.min_rpm}) must be below max_rpm ({self.max_rpm})")
        if self.thrust_to_weight <= 1.0:
            raise ProfileError(
                f"profile {self.name!r} cannot hover: 4 * kf * max_rpm^2 / (mass * g) = {self.thrust_to_weight:.2f} <= 1; "
                "check kf (N/RPM^2, not N/(rad/s)^2) and max_rpm"
            )

    @property
    def hover_rpm(self) -> float:
        """Rotor speed at which four rotors carry the weight (RPM)."""
        return math.sqrt(self.mass * GRAVITY / (4.0 * self.kf))

    @property
    def thrust_to_weight(self) -> float:
        return 4.0 * self.kf * self.max_rpm**2 / (self.mass * GRAVITY)

    @property
    def max_thrust(self) -> float:
        """Total thrust at max_rpm (N)."""
        return 4.0 * self.kf * self.max_rpm**2

    def digest(self) -> str:
        """Content hash of the profile: sha256 of its canonical JSON (sorted keys, no spaces), 16 hex digits.
        The exported policy carries it (``profile_hash``); the runtime compares it with the robot's."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inertia"], d["drag"] = list(self.inertia), list(self.drag)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "quadrotor profile") -> QuadrotorParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(f"{source}: unknown fields {unknown}; a quadrotor profile has {sorted(known)}")
        kwargs = {k: tuple(v) if k in ("inertia", "drag") else v for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ProfileError as exc:
            raise ProfileError(f"{source}: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> QuadrotorParams:
        """Load the ``quadrotor:`` section of a robot profile YAML (or a bare mapping of parameters)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ProfileError(f"quadrotor profile {str(path)!r} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        section = data.get("quadrotor", data) if isinstance(data, Mapping) else data
        if not isinstance(section, Mapping):
            raise ProfileError(f"{path}: expected a mapping of quadrotor parameters, got {type(section).__name__}")
        return cls.from_dict(section, source=str(path))

    def replace(self, **changes: Any) -> QuadrotorParams:
        return replace(self, **changes)


# Parameters the simulator randomizes per env (name -> number of components).
RANDOMIZABLE = {
    "mass": 1,
    "inertia": 3,
    "kf": 1,
    "km": 1,
    "motor_tau_up": 1,
    "motor_tau_down": 1,
    "drag": 3,
    "max_rpm": 1,
}
