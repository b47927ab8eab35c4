"""A quadrotor fit -> what the log determines: honest estimates, per-parameter status, latency range, biases.

Runs after :func:`calibration.sysid.core.fit` on a :class:`~calibration.sysid.quadrotor.QuadrotorModel`:

1. the residual correlation factor c at the best latency (the least-squares covariances are already inflated
   to the batch-means spread, :func:`~calibration.sysid.identifiability.batch_means_cov`); the motor time
   constants' profile-likelihood covariance is multiplied by c (it counted every row as independent);
2. the latencies the log cannot tell apart (:func:`~calibration.sysid.identifiability.latency_range`);
3. every estimate with the spread over those latencies added (what the latency's ambiguity costs);
4. per parameter determined / ratio only / not determined / anchor (:func:`~calibration.sysid.identifiability.
   classify`), the constant terms (offset torque and force) and the per-motor thrust scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from calibration.sysid.core import Estimate, FitResult
from calibration.sysid.identifiability import (
    ANCHOR,
    DETERMINED,
    LACK_OF_FIT,
    MAX_REL_STD,
    MISMATCH_REL_STD,
    Identifiability,
    classify,
    latency_range,
    with_latency_spread,
    with_mismatch,
)
from calibration.sysid.quadrotor import QuadrotorModel

MOTOR_SCALE_MAX_STD = 0.02  # a per-motor thrust scale is "determined" when known to 2 % (std)
BOUND_MARGIN = 1.05  # a nonlinear estimate within 5 % of its search bound ended there
#: the linear group each physical parameter comes from (its lack of fit applies to it)
GROUP_OF = {"mass": "force_z", "inertia_x": "rate_x", "inertia_y": "rate_y", "inertia_z": "rate_x", "km": "rate_z",
            "drag_x": "force_x", "drag_y": "force_y", "drag_z": "force_z"}  # fmt: skip


@dataclass
class Assessment:
    """estimates: honest (inflated) estimates; status: parameter -> Identifiability; latency: the plausible
    total latencies in control steps and why; bias: name -> (value, std) in SI units (N m, N); motor_scale:
    status and values of the per-motor thrust scale; diagnostics: excitation and conditioning numbers."""

    estimates: dict[str, Estimate]
    status: dict[str, Identifiability]
    latency: list[int]
    latency_reason: str
    bias: dict[str, tuple[float, float]] = field(default_factory=dict)
    motor_scale: dict[str, object] = field(default_factory=dict)
    diagnostics: dict[str, object] = field(default_factory=dict)

    def determined(self) -> list[str]:
        return [k for k, s in self.status.items() if s.status == DETERMINED]


def assess(model: QuadrotorModel, result: FitResult) -> Assessment:
    """See the module docstring. Leaves the model's per-group state at the best latency."""
    best = result.discrete
    x_best = result.x_by_discrete.get(best)
    if x_best is None:
        raise ValueError("the fit result carries no nonlinear values per latency (x_by_discrete); refit")
    model.linear_fit(x_best, best)
    corr = dict(model.correlation)
    factor = max(corr.values())
    base = dict(result.estimates)
    for k in ("motor_tau_up", "motor_tau_down"):
        e = base[k]
        base[k] = with_mismatch(Estimate(e.value, e.std * math.sqrt(factor), e.unit, e.nominal), factor)
    at_bound = [p.name for p, x in zip(model.nonlinear, x_best) if min(x / p.low, p.high / x) < BOUND_MARGIN]
    taus_ok = not at_bound and all(
        base[k].std <= MAX_REL_STD * base[k].value for k in ("motor_tau_up", "motor_tau_down")
    )
    latencies, why = latency_range(result.cost_by_discrete, factor, taus_ok)
    rel_cov = np.diag([(base[k].std / base[k].value) ** 2 for k in ("motor_tau_up", "motor_tau_down")])
    by_latency, yaw = {}, []
    for lat in latencies:
        x = result.x_by_discrete[lat]
        by_latency[lat] = model.estimates(x, lat, rel_cov * np.outer(x, x))
        yaw.append(model.linear_fit(x, lat)["rate_z"][0][0])
    estimates = with_latency_spread(base, by_latency)
    for key, group in GROUP_OF.items():
        estimates[key] = with_mismatch(estimates[key], corr[group])
    fitted = model.linear_fit(x_best, best)
    model.estimates(x_best, best, rel_cov * np.outer(x_best, x_best))  # residual_rms at the best latency
    diag = model.diagnostics(fitted)
    ratio, ratio_std = diag["yaw_ratio"]
    ratio_std = math.sqrt(ratio_std**2 + float(np.mean([(y - ratio) ** 2 for y in yaw])))
    ratio_std = with_mismatch(Estimate(ratio, ratio_std), corr["rate_z"]).std
    status = classify(estimates, model.anchor, diag["gyro_snr"], (ratio, ratio_std), diag["velocity_snr"], at_bound)
    groups = {**GROUP_OF, "motor_tau_up": max(corr, key=corr.get), "motor_tau_down": max(corr, key=corr.get)}
    for key, group in groups.items():
        if corr[group] > LACK_OF_FIT and key in status and status[key].status != ANCHOR:
            st = status[key]
            note = f"; lack of fit: {group} residual correlation {corr[group]:.1f} > {LACK_OF_FIT:g}, std >= {MISMATCH_REL_STD:.0%}"
            status[key] = Identifiability(st.status, st.reason + note, st.combination, st.value, st.std)
    lo, hi = min(latencies), max(latencies)
    estimates["action_latency"] = Estimate(float(best), (hi - lo) / math.sqrt(12.0) if hi > lo else 0.0,
                                           "control steps", 0.0)  # fmt: skip
    return Assessment(estimates, status, latencies, why, _biases(estimates, diag, model), _motors(model, x_best, best),
                      diag)  # fmt: skip


def _value(estimates: dict[str, Estimate], key: str) -> float:
    """The estimate if positive and known to MAX_REL_STD, else the nominal value."""
    e = estimates[key]
    return e.value if e.value > 0 and e.std <= MAX_REL_STD * e.value else float(e.nominal)


def _biases(estimates: dict[str, Estimate], diag: dict[str, object], model: QuadrotorModel) -> dict[str, tuple]:
    """Constant terms of the rate equations (rad/s^2) -> offset torques J b (N m); of the lateral force
    equations (m/s^2) -> offset forces m b (N)."""
    out = {}
    for axis in "xyz":
        b, sb = diag["bias"][f"rate_{axis}"]
        j = _value(estimates, f"inertia_{axis}")
        out[f"torque_{axis}"] = (b * j, sb * j)
    mass = _value(estimates, "mass")
    for axis in "xy":
        b, sb = diag["bias"][f"force_{axis}"]
        out[f"force_{axis}"] = (b * mass, sb * mass)
    return out


def _motors(model: QuadrotorModel, x: np.ndarray, latency: int) -> dict[str, object]:
    scale, std, cond = model.motor_scales(x, latency)
    ok = bool(np.all(std <= MOTOR_SCALE_MAX_STD))
    reason = (
        f"per-motor columns of the vertical force equation, condition number {cond:.0f}, std "
        f"{', '.join(f'{s:.3f}' for s in std)} ({'<=' if ok else 'not all <='} {MOTOR_SCALE_MAX_STD:g})"
    )
    return {"status": DETERMINED if ok else "not determined", "reason": reason, "scale": scale.tolist(),
            "std": std.tolist()}  # fmt: skip
