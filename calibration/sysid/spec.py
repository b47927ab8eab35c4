"""Identified parameters -> a randomization spec for training, and a fitted robot profile.

The spec is in the simulator's terms (``sim.randomization``): ratios (``operation: scale``) to the nominal
profile the training task uses, so ``sim2real train --randomization FILE`` reads it directly.

- A **determined** parameter (or the anchor) becomes ``uniform(ratio - w, ratio + w)`` with
  ``w = max(sigmas * std / nominal, min_spread * ratio)``. Parameters "not determined" or "ratio only"
  (:mod:`calibration.sysid.identifiability`) keep the task's default term: never narrowed, never centred on a
  value the log does not support (J_z and km from a hover: only km kf / J_z is known).
- **Inertia and drag per axis**: one ``uniform`` term with per-component bounds (``low``/``high`` lists); a
  determined axis gets its interval, an undetermined one the default term's interval for that axis (the
  default ``log_uniform`` becomes uniform over the same interval). No axis determined: the default term.
- **Latency**: the log gives the whole delay from command to measured response in control steps (it cannot tell
  sensing from actuation delay). ``action_latency`` is ``int_uniform`` over the latencies the log cannot tell
  apart (:func:`calibration.sysid.identifiability.latency_range`); ``obs_latency`` keeps the task's default,
  except when one latency is unambiguous: then all of it is actuation delay (``obs_latency`` 0).
- **Biases the fit sees**: the constant terms of the rate equations are an offset torque (N m, e.g. a centre-
  of-mass offset), those of the lateral force equations an offset force (N). Where one is larger than the
  default disturbance covers, ``disturbance_torque`` / ``disturbance_force`` become ``uniform`` per axis over
  the default interval joined with ``bias +- sigmas std`` (still re-drawn at the default interval).
- Terms a flight log does not identify (sensor noise, max RPM) keep the task's defaults.
- ``cover=True`` (``sim2real sysid --cover [SPEC]``): every term the log set is joined with ``base``'s interval
  (per axis; ``base`` is the task's default unless SPEC names another, e.g. a wider one), so that training
  covers the identified vehicle *and* the vehicles ``base`` covers. A policy retrained on the identified ranges
  alone forgot the default's vehicles (never worse refused it, #18); this one is nowhere narrower than ``base``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from calibration.sysid.core import Estimate
from calibration.sysid.identifiability import ANCHOR, DETERMINED, NOT_DETERMINED, Identifiability
from sim.quadrotor.config import default_randomization
from sim.quadrotor.params import QuadrotorParams
from sim.randomization import ParamDistribution, RandomizationSpec

SCALAR = ("mass", "kf", "km", "motor_tau_up", "motor_tau_down")
MAX_REL_STD = 0.3  # without a status: an estimate less certain than this (or not positive) is not identified
VECTOR = {"inertia": ("inertia_x", "inertia_y", "inertia_z"), "drag": ("drag_x", "drag_y", "drag_z")}
BIAS_TERMS = {"disturbance_torque": ("torque_x", "torque_y", "torque_z"), "disturbance_force": ("force_x", "force_y")}


def identified(e: Estimate, max_rel_std: float = MAX_REL_STD) -> bool:
    """A positive value known to better than ``max_rel_std`` relative standard deviation."""
    return e.value > 0 and e.std <= max_rel_std * e.value


def status_from_std(estimates: Mapping[str, Estimate]) -> dict[str, Identifiability]:
    """A status from the relative std alone (for estimates without an excitation analysis)."""
    return {
        k: Identifiability(DETERMINED if identified(e) else NOT_DETERMINED, "relative standard deviation")
        for k, e in estimates.items()
        if k != "action_latency"
    }


def unidentified(estimates: Mapping[str, Estimate], status: Mapping[str, Identifiability] | None = None) -> list[str]:
    """Names the log does not determine (kept at the nominal value and the default randomization)."""
    status = status or status_from_std(estimates)
    return [k for k, s in status.items() if s.status not in (DETERMINED, ANCHOR)]


def _interval(e: Estimate, sigmas: float, min_spread: float) -> tuple[float, float]:
    if not e.nominal:
        raise ValueError("an estimate without a nominal value cannot become a ratio")
    ratio = e.value / e.nominal
    w = max(sigmas * e.std / e.nominal, min_spread * abs(ratio))
    return max(ratio - w, 1e-3 * abs(ratio)), ratio + w


def _default_axis(term: ParamDistribution | None, axis: int) -> tuple[float, float]:
    if term is None:
        return 1.0, 1.0
    return term.component_bounds(axis + 1)[axis] if term.per_axis else term.bounds()


def randomization_from_fit(
    estimates: Mapping[str, Estimate],
    name: str = "sysid",
    *,
    status: Mapping[str, Identifiability] | None = None,
    latency: Sequence[int] | None = None,
    bias: Mapping[str, tuple[float, float]] | None = None,
    sigmas: float = 2.0,
    min_spread: float = 0.02,
    base: RandomizationSpec | None = None,
    cover: bool = False,
) -> RandomizationSpec:
    """A spec centred on the determined values with spread from their uncertainty (see the module docstring).

    status: parameter -> Identifiability (default: from the relative std alone); latency: plausible total
    latencies in control steps (default: the estimate's value alone); bias: name -> (value, std) in N m / N."""
    spec = base or default_randomization()
    status = status or status_from_std(estimates)

    def known(key: str) -> bool:
        return key in estimates and key in status and status[key].status in (DETERMINED, ANCHOR)

    terms: dict[str, ParamDistribution | None] = {}
    for key in SCALAR:
        if known(key):
            lo, hi = _interval(estimates[key], sigmas, min_spread)
            terms[key] = ParamDistribution("uniform", low=round(lo, 5), high=round(hi, 5))
    for key, axes in VECTOR.items():
        if any(known(a) for a in axes):
            bounds = [
                _interval(estimates[a], sigmas, min_spread) if known(a) else _default_axis(spec.get(key), i)
                for i, a in enumerate(axes)
            ]
            low, high = [round(b[0], 5) for b in bounds], [round(b[1], 5) for b in bounds]
            terms[key] = ParamDistribution("uniform", low=low, high=high, per_component=True)
    if latency is None and "action_latency" in estimates:
        latency = [round(estimates["action_latency"].value)]
    if latency:
        unit = "control steps"
        terms["action_latency"] = ParamDistribution(
            "int_uniform", low=min(latency), high=max(latency), operation="absolute", unit=unit
        )
        if len(latency) == 1:
            terms["obs_latency"] = ParamDistribution("int_uniform", low=0, high=0, operation="absolute", unit=unit)
    for key, names in BIAS_TERMS.items() if bias else ():
        term = _bias_term(spec.get(key), [bias.get(n) for n in names], sigmas)
        if term is not None:
            terms[key] = term
    if cover:
        terms = {k: _covering(t, spec.get(k)) for k, t in terms.items()}
    out = spec.replace(**terms)
    return RandomizationSpec(out.terms, name=name)


def _covering(term: ParamDistribution | None, default: ParamDistribution | None) -> ParamDistribution | None:
    """``term`` widened per axis to include the default's interval (same operation, unit and schedule). A scalar
    log-uniform default keeps its law over the joined interval, per-axis bounds are uniform (as the narrow per-axis
    terms), an integer default stays integer."""
    if term is None or default is None:
        return term
    size = len(term.low) if term.per_axis else (len(default.low) if default.per_axis else 1)
    mine, theirs = term.component_bounds(size), default.component_bounds(size)
    low = [min(a[0], b[0]) for a, b in zip(mine, theirs)]
    high = [max(a[1], b[1]) for a, b in zip(mine, theirs)]
    per = size > 1 and (term.per_axis or default.per_axis)  # per-axis bounds: a uniform law (sim.randomization)
    law = default.distribution if default.distribution in ("uniform", "log_uniform", "int_uniform") else "uniform"
    if law == "int_uniform":
        low, high = [int(v) for v in low], [int(v) for v in high]
    elif per:
        law = "uniform"
    return ParamDistribution(
        law, low=low if per else low[0], high=high if per else high[0], operation=term.operation, when=term.when,
        interval_s=term.interval_s, per_component=term.per_component or default.per_component, unit=term.unit,
    )  # fmt: skip


def _bias_term(
    default: ParamDistribution | None, values: list[tuple[float, float] | None], sigmas: float
) -> ParamDistribution | None:
    """Per-axis uniform over the default's interval joined with bias +- sigmas std; None when the default covers
    every bias interval (the default term stays)."""
    if default is None:
        return None
    dlo, dhi = default.bounds()
    lows, highs = [], []
    for i in range(3):
        b, s = values[i] if i < len(values) and values[i] is not None else (0.0, 0.0)
        lows.append(min(dlo, b - sigmas * s))
        highs.append(max(dhi, b + sigmas * s))
    if all(lo >= dlo for lo in lows) and all(hi <= dhi for hi in highs):
        return None
    return ParamDistribution(
        "uniform", low=[float(f"{v:.4g}") for v in lows], high=[float(f"{v:.4g}") for v in highs],
        operation="absolute", when=default.when, interval_s=default.interval_s, per_component=True, unit=default.unit,
    )  # fmt: skip


def fitted_profile(
    estimates: Mapping[str, Estimate], nominal: QuadrotorParams, status: Mapping[str, Identifiability] | None = None
) -> QuadrotorParams:
    """The nominal profile with every determined value (and the anchor) replaced, for eval and re-simulation."""
    status = status or status_from_std(estimates)
    ok = {k: e for k, e in estimates.items() if k in status and status[k].status in (DETERMINED, ANCHOR)}
    changes: dict[str, object] = {k: ok[k].value for k in SCALAR if k in ok}
    for key, axes in VECTOR.items():
        old = getattr(nominal, key)
        changes[key] = tuple(ok[a].value if a in ok else old[i] for i, a in enumerate(axes))
    return nominal.replace(name=f"{nominal.name}-sysid", **changes)
