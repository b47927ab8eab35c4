"""Thrust-stand calibration of one quadrotor motor + propeller.

Input CSV header (SI units): ``command, rpm, thrust, torque, voltage`` and optionally ``time`` [s]. With
``time`` the log is a staircase of command steps: each constant-command stretch gives one steady-state
point (mean of its last 40 %) and each step gives a first-order motor time constant
(rpm(t) = r_end + (r_start - r_end) exp(-(t - t_step) / tau); tau_up for rising, tau_down for falling steps).
Without ``time`` each row is a steady-state point.

Fits: thrust = kf rpm^2 [N/RPM^2], yaw torque = km thrust [m], polynomials thrust(rpm), torque(rpm) (degree 2),
command -> rpm polynomial (degree 1 default). Names match the simulator's quadrotor parameter profile.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import least_squares

from calibration.csv_io import read_csv_columns
from calibration.errors import NotEnoughViewsError
from sim.randomization import ParamDistribution, RandomizationSpec

log = logging.getLogger(__name__)

COLUMNS = ("command", "rpm", "thrust", "torque", "voltage")


@dataclass
class StandData:
    """Thrust-stand samples, each (N,): command [command unit], rpm [RPM], thrust [N], torque [N m], voltage [V],
    time [s] or None (then each row is a steady-state point)."""

    command: np.ndarray
    rpm: np.ndarray
    thrust: np.ndarray
    torque: np.ndarray
    voltage: np.ndarray
    time: np.ndarray | None = None


def read_stand_csv(path: str | Path) -> StandData:
    col = read_csv_columns(Path(path), COLUMNS, optional=("time",), what="thrust-stand")
    return StandData(**{k: col[k] for k in COLUMNS}, time=col.get("time"))


def write_stand_csv(data: StandData, path: str | Path) -> Path:
    path = Path(path)
    cols = ([data.time] if data.time is not None else []) + [getattr(data, c) for c in COLUMNS]
    header = (["time"] if data.time is not None else []) + list(COLUMNS)
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=",".join(header), comments="", fmt="%.9g")
    return path


@dataclass
class StepFit:
    """One step response: start time [s], start and end rpm, fitted tau [s], direction 'up' or 'down'."""

    t0: float
    rpm_start: float
    rpm_end: float
    tau: float
    direction: str
    t: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    rpm: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def steady_state_points(data: StandData, settle_fraction: float = 0.6) -> tuple[StandData, list[slice]]:
    """One mean point per constant-command stretch (ignoring its first ``settle_fraction``) and the stretches."""
    if data.time is None:
        return data, []
    change = np.flatnonzero(np.diff(data.command) != 0) + 1
    bounds = np.concatenate([[0], change, [len(data.command)]])
    segs = [slice(a, b) for a, b in itertools.pairwise(bounds) if b - a >= 5]
    pts = {c: [] for c in COLUMNS}
    for s in segs:
        start = s.start + int((s.stop - s.start) * settle_fraction)
        for c in COLUMNS:
            pts[c].append(float(np.mean(getattr(data, c)[start : s.stop])))
    return StandData(**{c: np.asarray(v) for c, v in pts.items()}), segs


def fit_steps(data: StandData, segs: list[slice], steady: StandData, min_step_fraction: float = 0.04) -> list[StepFit]:
    """First-order time constant of every command step larger than ``min_step_fraction`` of the rpm range."""
    fits = []
    span = float(np.ptp(steady.rpm)) if len(steady.rpm) else 0.0
    for k in range(1, len(segs)):
        r0, r1 = steady.rpm[k - 1], steady.rpm[k]
        if span <= 0 or abs(r1 - r0) < min_step_fraction * span:
            continue
        t = (
            data.time[segs[k]] - data.time[segs[k].start - 1]
        )  # step happened at the last sample of the previous stretch
        r = data.rpm[segs[k]]

        def resid(p, t=t, r=r, r0=r0, r1=r1):
            return r1 + (r0 - r1) * np.exp(-t / np.exp(p[0])) - r

        guess = max(float(t[np.argmax(np.abs(r - r0) > 0.63 * abs(r1 - r0))]), 1e-3)
        sol = least_squares(resid, [np.log(guess)])
        fits.append(
            StepFit(
                float(data.time[segs[k].start - 1]),
                float(r0),
                float(r1),
                float(np.exp(sol.x[0])),
                "up" if r1 > r0 else "down",
                t,
                r,
            )
        )
    return fits


@dataclass
class ThrustCalibration:
    """Fitted motor model; rel_std: relative 1-sigma uncertainty of each fitted profile parameter."""

    kf: float
    km: float
    thrust_poly: np.ndarray
    torque_poly: np.ndarray
    command_to_rpm: np.ndarray
    command_range: tuple[float, float]
    motor_tau_up: float | None
    motor_tau_down: float | None
    rel_std: dict[str, float]
    steady: StandData
    steps: list[StepFit]

    @property
    def min_rpm(self) -> float:
        return float(np.polyval(self.command_to_rpm, self.command_range[0]))

    @property
    def max_rpm(self) -> float:
        return float(np.polyval(self.command_to_rpm, self.command_range[1]))


def _ratio_spread(y: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    return float(np.std(y[mask] / pred[mask] - 1)) if mask.sum() > 1 else 0.0


def fit_thrust_stand(
    data: StandData, map_degree: int = 1, min_rel_std: float = 0.01, min_tau_rel_std: float = 0.05
) -> ThrustCalibration:
    """Fit the motor model. rel_std of kf/km = max(std of per-point ratio to the fit above 30 % of max rpm, min_rel_std);
    of the time constants = max(std/mean over steps, min_tau_rel_std)."""
    steady, segs = steady_state_points(data)
    spinning = steady.rpm > 0.01 * max(float(steady.rpm.max()), 1e-9)
    if spinning.sum() < max(3, map_degree + 2):
        raise NotEnoughViewsError(
            f"thrust fit needs >= {max(3, map_degree + 2)} steady-state points with the motor spinning, found {int(spinning.sum())}; "
            "sweep the command over its range in steps"
        )
    rpm, thrust, torque, cmd = (
        steady.rpm[spinning],
        steady.thrust[spinning],
        steady.torque[spinning],
        steady.command[spinning],
    )
    kf = float((rpm**2 @ thrust) / (rpm**2 @ rpm**2))
    km = float((thrust @ torque) / (thrust @ thrust))
    high = rpm > 0.3 * rpm.max()
    rel = {
        "kf": max(_ratio_spread(thrust, kf * rpm**2, high), min_rel_std),
        "km": max(_ratio_spread(torque, km * thrust, high), min_rel_std),
    }
    steps = fit_steps(data, segs, steady) if data.time is not None else []
    taus: dict[str, float | None] = {}
    for direction in ("up", "down"):
        values = np.array([s.tau for s in steps if s.direction == direction])
        taus[direction] = float(np.median(values)) if len(values) else None
        if len(values):
            spread = float(np.std(values) / np.mean(values)) if len(values) > 1 else 0.0
            rel[f"motor_tau_{direction}"] = max(spread, min_tau_rel_std)
        else:
            log.warning(
                "no %s steps found: motor_tau_%s not fitted (log with a 'time' column and command steps)",
                direction,
                direction,
            )
    return ThrustCalibration(
        kf=kf,
        km=km,
        thrust_poly=np.polyfit(rpm, thrust, 2),
        torque_poly=np.polyfit(rpm, torque, 2),
        command_to_rpm=np.polyfit(cmd, rpm, map_degree),
        command_range=(float(cmd.min()), float(cmd.max())),
        motor_tau_up=taus["up"],
        motor_tau_down=taus["down"],
        rel_std=rel,
        steady=steady,
        steps=steps,
    )


def profile_dict(cal: ThrustCalibration, command_unit: str) -> dict:
    """The quadrotor parameter profile entries this calibration determines (SI units)."""
    out: dict = {"kf": cal.kf, "km": cal.km, "max_rpm": cal.max_rpm, "min_rpm": cal.min_rpm}
    if cal.motor_tau_up is not None:
        out["motor_tau_up"] = cal.motor_tau_up
    if cal.motor_tau_down is not None:
        out["motor_tau_down"] = cal.motor_tau_down
    out["command_to_rpm"] = {
        "coefficients": [float(c) for c in cal.command_to_rpm],
        "order": "highest power first",
        "command_unit": command_unit,
        "output_unit": "RPM",
        "command_range": list(cal.command_range),
    }
    out["thrust_poly"] = {
        "coefficients": [float(c) for c in cal.thrust_poly],
        "order": "highest power first",
        "input_unit": "RPM",
        "output_unit": "N",
    }
    out["torque_poly"] = {
        "coefficients": [float(c) for c in cal.torque_poly],
        "order": "highest power first",
        "input_unit": "RPM",
        "output_unit": "N m",
    }
    return {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in out.items()}


def write_profile_yaml(cal: ThrustCalibration, path: str | Path, command_unit: str) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(profile_dict(cal, command_unit), sort_keys=False))
    return path


def thrust_randomization_spec(cal: ThrustCalibration, name: str = "thrust-stand") -> RandomizationSpec:
    """Scale terms centred at 1.0 on the written profile: normal(1, rel_std) clipped to 1 +- 3 rel_std, at reset."""
    terms = {}
    for key, sigma in cal.rel_std.items():
        terms[key] = ParamDistribution(
            "normal", mean=1.0, std=sigma, low=1 - 3 * sigma, high=1 + 3 * sigma, operation="scale"
        )
    return RandomizationSpec(terms, name=name)
