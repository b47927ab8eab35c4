"""What a log determines: per-parameter identifiability from the excitation, honest uncertainties, latency range.

A flight log fixes a parameter only as far as the motion excites the regressor that carries it. Three questions
per parameter, answered from the data, never from the fit's own confidence alone:

1. **Is its regressor excited above its noise?** The gyroscopic regressors of the roll and pitch equations
   (``w_y w_z``, ``w_z w_x``) are products of measured rates: in a hover they are mostly noise products, and a
   coefficient fitted to noise is biased towards 0 by an amount no covariance shows (errors in variables). J_z
   comes only from them, so without that excitation J_z and km are not separately determined; the yaw equation
   still gives their combination ``km kf / J_z`` ("ratio only").
2. **Is its uncertainty honest?** Least squares assumes white residuals. Model mismatch (another simulator's
   aerodynamics, timing jitter between processes) makes them correlated and slowly varying; the covariance is
   inflated to the spread of the estimates over contiguous segments of the log (batch means), and by the
   spread of the estimates over the latencies the log cannot tell apart (:func:`latency_range`).
3. **Is it then known well enough?** Relative standard deviation at most :data:`MAX_REL_STD`: "determined";
   otherwise "not determined" (kept at the nominal value and the task's default randomization).

The anchor (kf from a thrust stand, or the mass from a scale) is "anchor": flight data fix every force and
inertia only relative to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from calibration.sysid.core import Estimate

DETERMINED, RATIO_ONLY, NOT_DETERMINED, ANCHOR = "determined", "ratio only", "not determined", "anchor"
#: largest relative standard deviation (after inflation) of a "determined" parameter: its 2-sigma interval is
#: within +-30 % of the value
MAX_REL_STD = 0.15
#: a regressor whose signal RMS is below this multiple of its noise RMS is "not excited" (errors in variables)
MIN_SNR = 3.0
#: likelihood-ratio threshold for latencies: half the 95 % quantile of chi-square with 1 degree of freedom
LR_THRESHOLD = 0.5 * 3.841
#: a single latency is kept unwidened only when every other one costs this many thresholds more
LATENCY_MARGIN = 10.0
SEGMENTS = 5  # contiguous pieces of the log for the batch-means covariance
#: lack of fit: a group whose residuals are this correlated (integrated autocorrelation time, white = 1) misses
#: dynamics the model does not have; its coefficients get at least MISMATCH_REL_STD relative std. Measured
#: (calibration.sysid.coverage, hover flights in RotorPy and drone-models): the rate equations' residual
#: correlation 7-10 and the torque coefficients off by +26 to +100 % at 11-14 % reported std; the project's own
#: simulator's logs: 1.0 in every group.
LACK_OF_FIT = 3.0
MISMATCH_REL_STD = 0.5


@dataclass(frozen=True)
class Identifiability:
    """status: determined | ratio only | not determined | anchor; combination: what is determined instead
    (ratio only), with its value and standard deviation."""

    status: str
    reason: str
    combination: str = ""
    value: float | None = None
    std: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


def rate_noise_std(w: np.ndarray) -> np.ndarray:
    """Per-axis white-noise std of measured rates (K, 3) rad/s, from second differences (a smooth signal's are
    small at 100 Hz): var(w[k+1] - 2 w[k] + w[k-1]) = 6 sigma^2. -> (3,) rad/s, an upper bound."""
    d2 = w[2:] - 2.0 * w[1:-1] + w[:-2]
    return np.sqrt(np.median(d2 * d2, axis=0) / 0.4549 / 6.0)  # median of chi2(1) = 0.4549: robust to manoeuvres


def product_snr(a: np.ndarray, b: np.ndarray, sa: float, sb: float) -> float:
    """Signal-to-noise RMS ratio of the regressor a*b (N,) built from two measured signals with noise stds
    sa, sb: noise of the product ~ a n_b + b n_a + n_a n_b."""
    noise = np.sqrt(np.mean(b * b) * sa * sa + np.mean(a * a) * sb * sb + (sa * sb) ** 2)
    signal = math.sqrt(max(float(np.mean((a * b) ** 2)) - float(noise) ** 2, 0.0))
    return signal / max(float(noise), 1e-300)


def batch_means_cov(X: np.ndarray, y: np.ndarray, cov: np.ndarray, segments: int = SEGMENTS) -> np.ndarray:
    """The least-squares covariance (n, n) of y ~ X (N, n), inflated per coefficient to its batch-means variance:
    the variance over ``segments`` contiguous pieces of the log of that coefficient refitted alone (the others
    at their whole-log values: a piece too short to separate collinear columns does not count as drift),
    divided by the number of pieces. Never deflated."""
    pieces = [p for p in np.array_split(np.arange(len(y)), segments) if len(p) > 2 * X.shape[1]]
    if len(pieces) < 3:
        return cov
    theta = np.linalg.lstsq(X, y, rcond=None)[0]
    resid = y - X @ theta
    var_bm = np.empty(X.shape[1])
    for j in range(X.shape[1]):
        xj = X[:, j]
        local = [theta[j] + (xj[p] @ resid[p]) / max(float(xj[p] @ xj[p]), 1e-300) for p in pieces]
        var_bm[j] = np.var(local, ddof=1) / len(pieces)
    factor = np.sqrt(np.maximum(var_bm / np.maximum(np.diag(cov), 1e-300), 1.0))
    return cov * np.outer(factor, factor)


def residual_correlation_factor(resid: np.ndarray, max_lag: int = 20) -> float:
    """Integrated autocorrelation time 1 + 2 sum rho_k (Bartlett window, lags 1..max_lag) of residuals (N,),
    at least 1: how many times fewer independent samples the log holds than rows."""
    r = resid - resid.mean()
    var = float(r @ r) / len(r)
    if var <= 0:
        return 1.0
    rho = [float(r[:-k] @ r[k:]) / len(r) / var for k in range(1, min(max_lag, len(r) // 4) + 1)]
    tau = 1.0 + 2.0 * sum((1.0 - k / (len(rho) + 1)) * p for k, p in enumerate(rho, 1))
    return max(tau, 1.0)


def latency_range(
    cost_by_discrete: Mapping[int, float], factor: float = 1.0, motors_determined: bool = True
) -> tuple[list[int], str]:
    """Latencies (control steps) the log cannot tell apart, and why.

    cost_by_discrete: latency -> negative log-likelihood; factor: residual correlation factor (the cost counts
    every row as independent, so its differences are divided by it). The set holds every latency within
    :data:`LR_THRESHOLD` of the best; it is widened by one step each side (within the values tried, and >= 0)
    unless one latency is unambiguous: every other costs more than :data:`LATENCY_MARGIN` thresholds more, and
    the motor time constants are determined (a latency and a slow motor both delay the response: while the
    motors are not determined, neither is the latency)."""
    best = min(cost_by_discrete, key=lambda k: cost_by_discrete[k])
    gaps = {k: (c - cost_by_discrete[best]) / factor for k, c in cost_by_discrete.items()}
    inside = sorted(k for k, g in gaps.items() if g <= LR_THRESHOLD)
    others = [g for k, g in gaps.items() if k != best]
    margin = min(others) if others else math.inf
    if len(inside) == 1 and margin > LATENCY_MARGIN * LR_THRESHOLD and motors_determined:
        return inside, (
            f"{best} steps, unambiguous: the next best costs {margin:.1f} more (> {LATENCY_MARGIN:g} x "
            f"{LR_THRESHOLD:.2f}, likelihood ratio over residual correlation {factor:.1f})"
        )
    tried = sorted(cost_by_discrete)
    lo, hi = max(min(inside) - 1, tried[0]), min(max(inside) + 1, tried[-1])
    reasons = []
    if len(inside) > 1 or margin <= LATENCY_MARGIN * LR_THRESHOLD:
        reasons.append(
            f"the nearest other costs only {margin:.1f} more (unambiguous: > {LATENCY_MARGIN:g} x the threshold)"
        )
    if not motors_determined:
        reasons.append("the motor time constants are not determined (a slow motor and a delay both delay the response)")
    why = (
        f"within the likelihood-ratio threshold {LR_THRESHOLD:.2f} (cost differences over residual correlation "
        f"{factor:.1f}): {inside}; widened by one step each side: " + "; ".join(reasons)
    )
    return list(range(lo, hi + 1)), why


def with_latency_spread(
    best: Mapping[str, Estimate], by_latency: Mapping[int, Mapping[str, Estimate]]
) -> dict[str, Estimate]:
    """Estimates at the best latency with the spread over the plausible latencies added to their variance:
    std^2 + mean_L (value_L - value)^2 (a parameter inherits the latency's ambiguity)."""
    out = dict(best)
    for k, e in best.items():
        if k == "action_latency":
            continue
        spread = [(by_latency[lat][k].value - e.value) ** 2 for lat in by_latency if k in by_latency[lat]]
        if spread:
            out[k] = Estimate(e.value, math.sqrt(e.std**2 + float(np.mean(spread))), e.unit, e.nominal)
    return out


def _rel(e: Estimate) -> float:
    return e.std / abs(e.value) if e.value else math.inf


def with_mismatch(e: Estimate, correlation: float) -> Estimate:
    """e with its std raised to MISMATCH_REL_STD of its value when its group lacks fit (see LACK_OF_FIT)."""
    if correlation <= LACK_OF_FIT:
        return e
    return Estimate(e.value, max(e.std, MISMATCH_REL_STD * abs(e.value)), e.unit, e.nominal)


def _by_rel_std(e: Estimate, source: str) -> Identifiability:
    if e.value <= 0:
        return Identifiability(NOT_DETERMINED, f"{source}: fitted value {e.value:.3g} is not positive")
    if _rel(e) > MAX_REL_STD:
        return Identifiability(
            NOT_DETERMINED, f"{source}: relative std {100 * _rel(e):.0f} % > {100 * MAX_REL_STD:.0f} %"
        )
    return Identifiability(DETERMINED, f"{source}: relative std {100 * _rel(e):.1f} %")


def classify(
    estimates: Mapping[str, Estimate],
    anchor: tuple[str, float],
    gyro_snr: float,
    yaw_ratio: tuple[float, float],
    velocity_snr: Mapping[str, float],
    at_bound: Sequence[str] = (),
) -> dict[str, Identifiability]:
    """Per parameter: determined / ratio only / not determined / anchor, with the reason.

    gyro_snr: smaller signal-to-noise of the two gyroscopic regressors; yaw_ratio: (value, std) of km kf / J_z
    in 1/(s^2 RPM^2); velocity_snr: drag axis -> signal-to-noise of its body-velocity regressor; at_bound:
    nonlinear parameters whose fit ended at a search bound (not determined whatever their curvature)."""
    name, value = anchor
    out: dict[str, Identifiability] = {}
    scaled = "mass" if name == "kf" else "kf"
    out[name] = Identifiability(
        ANCHOR, f"the scale anchor ({name} = {value:.4g}); every force and inertia is relative to it"
    )
    out[scaled] = _by_rel_std(estimates[scaled], "thrust per weight from the vertical force equation, times the anchor")
    for axis in "xy":
        out[f"inertia_{axis}"] = _by_rel_std(
            estimates[f"inertia_{axis}"], f"rate_{axis} torque coefficient (kf/J_{axis})"
        )
    combo = "km kf / J_z (yaw equation)"
    ratio_rel = yaw_ratio[1] / abs(yaw_ratio[0]) if yaw_ratio[0] else math.inf
    if yaw_ratio[0] <= 0 or ratio_rel > MAX_REL_STD:
        why = (
            f"the yaw equation's km kf / J_z = {yaw_ratio[0]:.3g} +- {yaw_ratio[1]:.2g} is not determined either "
            f"(relative std {100 * ratio_rel:.0f} % > {100 * MAX_REL_STD:.0f} %: yaw not excited)"
        )
        out["inertia_z"] = out["km"] = Identifiability(NOT_DETERMINED, why, combo, yaw_ratio[0], yaw_ratio[1])
    elif gyro_snr < MIN_SNR:
        why = (
            f"J_z comes only from the gyroscopic terms w_y w_z, w_z w_x, excited {gyro_snr:.1f} x their noise "
            f"(< {MIN_SNR:g}): J_z and km are not separately determined; their ratio is"
        )
        for k in ("inertia_z", "km"):
            out[k] = Identifiability(RATIO_ONLY, why, combo, yaw_ratio[0], yaw_ratio[1])
    else:
        jz = _by_rel_std(estimates["inertia_z"], f"gyroscopic terms (excited {gyro_snr:.1f} x their noise)")
        out["inertia_z"] = jz
        if jz.status == DETERMINED:
            out["km"] = _by_rel_std(estimates["km"], "yaw equation coefficient times J_z / kf")
        else:
            out["inertia_z"] = Identifiability(RATIO_ONLY, jz.reason + "; the yaw ratio is", combo, *yaw_ratio)
            out["km"] = Identifiability(RATIO_ONLY, "J_z not determined; the yaw ratio is", combo, *yaw_ratio)
    for axis in "xyz":
        snr = velocity_snr[axis]
        key = f"drag_{axis}"
        if snr < MIN_SNR:
            out[key] = Identifiability(
                NOT_DETERMINED, f"body velocity {axis} excited {snr:.1f} x its noise (< {MIN_SNR:g})"
            )
        else:
            out[key] = _by_rel_std(estimates[key], f"force_{axis} drag coefficient")
    for key in ("motor_tau_up", "motor_tau_down"):
        if key in at_bound:
            out[key] = Identifiability(
                NOT_DETERMINED, f"the fit ended at the search bound ({estimates[key].value:.3g})"
            )
        else:
            out[key] = _by_rel_std(
                estimates[key], "profile-likelihood curvature and the spread over plausible latencies"
            )
    return out
