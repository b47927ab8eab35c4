"""Autopilot motor outputs -> rotor speeds: the throttle curve the user supplies for PX4 and ArduPilot logs.

An autopilot logs what it sends to the ESCs, not rotor speeds: PX4 ``actuator_motors.control`` (normalized,
0..1) and ArduPilot ``RCOU`` (PWM microseconds, normalized here as ``(pwm - pwm_min) / (pwm_max - pwm_min)``).
The simulator and the identification work in RPM, so a curve maps the normalized output ``u`` to RPM::

    thrust fraction   f(u) = (1 - expo) * u + expo * u^2          (PX4 THR_MDL_FAC, ArduPilot MOT_THST_EXPO form)
    rotor speed       rpm  = idle_rpm + (max_rpm - idle_rpm) * sqrt(f(u))       (thrust ~ rpm^2)

``expo = 1`` (default) makes the speed linear in ``u``; ``expo = 0`` treats ``u`` as a thrust fraction (PX4's
``actuator_motors`` when THR_MDL_FAC describes the vehicle). ``max_rpm`` defaults to the robot profile's.
Values come from the CLI (``--max-rpm``, ``--throttle-expo``, ``--idle-rpm``, ``--pwm-range``, ``--motor-order``),
else from a ``throttle_curve:`` section of the robot profile YAML (same keys), else the defaults here.

Motor order: both autopilots number a quad X as 1 front-right, 2 back-left, 3 front-left, 4 back-right; the
simulator's M1..M4 are front-right, back-right, back-left, front-left, so the default order is (0, 3, 1, 2).
Their propellers spin the other way round from the simulator's (front-right counter-clockwise): the yaw torque
of mapped commands has the opposite sign, and identification reports ``km`` as not identified.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from deploy.replay.errors import ReplayError

AUTOPILOT_ORDER = (0, 3, 1, 2)  # simulator M1..M4 <- autopilot motor index (0-based), quad X


@dataclass(frozen=True)
class ThrottleCurve:
    """max_rpm, idle_rpm: RPM; expo: 0..1 (dimensionless); pwm_min/pwm_max: us; order: 4 autopilot indices."""

    max_rpm: float = 21702.0
    expo: float = 1.0
    idle_rpm: float = 0.0
    pwm_min: float = 1000.0
    pwm_max: float = 2000.0
    order: tuple[int, ...] = AUTOPILOT_ORDER

    def __post_init__(self) -> None:
        if not (0.0 <= self.expo <= 1.0):
            raise ReplayError(f"throttle curve: expo must lie in [0, 1], got {self.expo}")
        if not (0.0 <= self.idle_rpm < self.max_rpm):
            raise ReplayError(
                f"throttle curve: expected 0 <= idle_rpm < max_rpm, got idle {self.idle_rpm}, max {self.max_rpm}"
            )
        if self.pwm_max <= self.pwm_min:
            raise ReplayError(f"throttle curve: pwm range {self.pwm_min}..{self.pwm_max} us is empty")
        if len(self.order) != 4 or sorted(self.order) != list(range(4)):
            raise ReplayError(f"throttle curve: motor order must be a permutation of 0..3, got {list(self.order)}")

    def rpm(self, u: np.ndarray) -> np.ndarray:
        """(N, >=4) normalized outputs in autopilot order -> (N, 4) RPM in simulator order (u clipped to 0..1)."""
        u = np.clip(np.asarray(u, dtype=np.float64)[:, list(self.order)], 0.0, 1.0)
        thrust = (1.0 - self.expo) * u + self.expo * u * u
        return self.idle_rpm + (self.max_rpm - self.idle_rpm) * np.sqrt(thrust)

    def normalized_pwm(self, pwm: np.ndarray) -> np.ndarray:
        """PWM (us) -> 0..1 (not clipped: :meth:`rpm` clips)."""
        return (np.asarray(pwm, dtype=np.float64) - self.pwm_min) / (self.pwm_max - self.pwm_min)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: ThrottleCurve | None = None, source: str = ""
    ) -> ThrottleCurve:
        known = {f.name for f in fields(cls)} | {"motor_order", "pwm_range"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ReplayError(f"{source}: unknown throttle_curve keys {unknown}; allowed: {sorted(known - {'order'})}")
        values = dict(data)
        if "motor_order" in values:
            values["order"] = values.pop("motor_order")
        if "pwm_range" in values:
            values["pwm_min"], values["pwm_max"] = values.pop("pwm_range")
        try:
            values = {k: tuple(int(i) for i in v) if k == "order" else float(v) for k, v in values.items()}
        except (TypeError, ValueError) as exc:
            raise ReplayError(f"{source}: throttle_curve values must be numbers ({exc})") from exc
        return replace(base or cls(), **values)


def add_throttle_arguments(p: argparse.ArgumentParser) -> None:
    """The CLI options of the throttle curve (used only for PX4 .ulg and ArduPilot .bin logs)."""
    g = p.add_argument_group("PX4 / ArduPilot logs (.ulg, .bin): motor output -> RPM, see docs/replay.md")
    g.add_argument("--max-rpm", type=float, default=None, help="rotor speed at full output (default: the profile's)")
    g.add_argument("--throttle-expo", type=float, default=None, help="thrust ~ (1-e) u + e u^2, 0..1 (default 1)")
    g.add_argument("--idle-rpm", type=float, default=None, help="rotor speed at zero output (default 0)")
    g.add_argument("--pwm-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"), help="RCOU us (1000 2000)")
    g.add_argument("--motor-order", type=int, nargs=4, default=None, help="autopilot index of M1..M4 (0 3 1 2)")


def throttle_from_args(args: argparse.Namespace, profile: Path | None = None) -> ThrottleCurve:
    """CLI values over the profile's ``throttle_curve:`` section over the profile's max_rpm over the defaults."""
    curve = ThrottleCurve()
    if profile is not None and Path(profile).is_file():
        import yaml

        data = yaml.safe_load(Path(profile).read_text()) or {}
        if isinstance(data, Mapping):
            quad = data.get("quadrotor", data)
            if isinstance(quad, Mapping) and "max_rpm" in quad:
                curve = replace(curve, max_rpm=float(quad["max_rpm"]))
            if isinstance(data.get("throttle_curve"), Mapping):
                curve = ThrottleCurve.from_mapping(data["throttle_curve"], curve, f"{profile}: throttle_curve")
    cli = {
        "max_rpm": getattr(args, "max_rpm", None),
        "expo": getattr(args, "throttle_expo", None),
        "idle_rpm": getattr(args, "idle_rpm", None),
        "pwm_range": getattr(args, "pwm_range", None),
        "motor_order": getattr(args, "motor_order", None),
    }
    given = {k: v for k, v in cli.items() if v is not None}
    return ThrottleCurve.from_mapping(given, curve, "command line") if given else curve
