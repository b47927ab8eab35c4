"""Identified parameters -> a randomization spec for training, and a fitted robot profile.

The spec is in the simulator's terms (``sim.randomization``): ratios (``operation: scale``) to the nominal
profile the training task uses, so ``sim2real train --randomization FILE`` reads it directly. Each identified
parameter becomes ``uniform(ratio - w, ratio + w)`` with ``w = max(sigmas * std / nominal, min_spread * ratio)``.
Inertia and drag are one term each in the simulator (one distribution for the three axes): the range covers
every axis' interval and components are drawn independently. The latency identified is the whole actuation
delay in control steps (a log cannot tell sensing from actuation delay): ``action_latency`` is set to it and
``obs_latency`` to 0. Terms a flight log does not identify (sensor noise, disturbances, max RPM), and estimates
this log does not pin down (not positive, or relative std above 30 %: e.g. yaw inertia from a hover without
turns), keep the task's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping

from calibration.sysid.core import Estimate
from sim.quadrotor.config import default_randomization
from sim.quadrotor.params import QuadrotorParams
from sim.randomization import ParamDistribution, RandomizationSpec

SCALAR = ("mass", "kf", "km", "motor_tau_up", "motor_tau_down")
MAX_REL_STD = 0.3  # an estimate less certain than this (or not positive) is "not identified by this log"
VECTOR = {"inertia": ("inertia_x", "inertia_y", "inertia_z"), "drag": ("drag_x", "drag_y", "drag_z")}


def identified(e: Estimate, max_rel_std: float = MAX_REL_STD) -> bool:
    """A positive value known to better than ``max_rel_std`` relative standard deviation."""
    return e.value > 0 and e.std <= max_rel_std * e.value


def unidentified(estimates: Mapping[str, Estimate]) -> list[str]:
    """Names the log does not pin down (kept at the nominal value and the default randomization)."""
    return [k for k, e in estimates.items() if k != "action_latency" and not identified(e)]


def _interval(e: Estimate, sigmas: float, min_spread: float) -> tuple[float, float]:
    if not e.nominal:
        raise ValueError("an estimate without a nominal value cannot become a ratio")
    ratio = e.value / e.nominal
    w = max(sigmas * e.std / e.nominal, min_spread * abs(ratio))
    return max(ratio - w, 1e-3 * abs(ratio)), ratio + w


def randomization_from_fit(
    estimates: Mapping[str, Estimate],
    name: str = "sysid",
    *,
    sigmas: float = 2.0,
    min_spread: float = 0.02,
    base: RandomizationSpec | None = None,
) -> RandomizationSpec:
    """A spec centred on the fitted values with spread from their uncertainty (see the module docstring)."""
    spec = base or default_randomization()
    terms: dict[str, ParamDistribution | None] = {}
    for key in SCALAR:
        if key in estimates and identified(estimates[key]):
            lo, hi = _interval(estimates[key], sigmas, min_spread)
            terms[key] = ParamDistribution("uniform", low=round(lo, 5), high=round(hi, 5))
    for key, axes in VECTOR.items():
        if all(a in estimates and identified(estimates[a]) for a in axes):
            bounds = [_interval(estimates[a], sigmas, min_spread) for a in axes]
            lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
            terms[key] = ParamDistribution("uniform", low=round(lo, 5), high=round(hi, 5), per_component=True)
    if "action_latency" in estimates:
        steps = round(estimates["action_latency"].value)
        unit = "control steps"
        terms["action_latency"] = ParamDistribution(
            "int_uniform", low=steps, high=steps, operation="absolute", unit=unit
        )
        terms["obs_latency"] = ParamDistribution("int_uniform", low=0, high=0, operation="absolute", unit=unit)
    out = spec.replace(**terms)
    return RandomizationSpec(out.terms, name=name)


def fitted_profile(estimates: Mapping[str, Estimate], nominal: QuadrotorParams) -> QuadrotorParams:
    """The nominal profile with every identified value replaced (a robot profile for eval and re-simulation)."""
    ok = {k: e for k, e in estimates.items() if identified(e)}
    changes: dict[str, object] = {k: ok[k].value for k in SCALAR if k in ok}
    for key, axes in VECTOR.items():
        old = getattr(nominal, key)
        changes[key] = tuple(ok[a].value if a in ok else old[i] for i, a in enumerate(axes))
    return nominal.replace(name=f"{nominal.name}-sysid", **changes)
