"""Open-loop policy replay: run the exported policy on the logged observations, compare with the logged actions,
and say what a mismatch most likely is.

- **match**: every replayed action equals the logged one (within float32 rounding).
- **timing**: the replayed actions match the logged ones shifted by whole cycles (the loop, or the log, pairs
  an observation with the action of another cycle).
- **observation pipeline**: the observation rebuilt from the logged robot state (with the deploy observation
  builder) differs from the logged observation: the policy was fed something else than the state explains
  (units, frames, scaling, term order).
- **different model**: the actions differ at every shift while the observations are consistent: another
  network, normalizer or action scaling than the file given (a constant offset points at the scaling).
Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deploy.replay.errors import ReplayError
from deploy.replay.flight import Flight, rotations

MATCH_TOL = 1e-4  # normalized action units: float32 rounding of one MLP is ~1e-6
OBS_TOL = 1e-3  # observation units (after the term scale)
MAX_SHIFT = 3  # cycles


@dataclass
class PolicyReplay:
    """Replayed vs logged actions (normalized, (M, A)) at times ``t`` and the verdict."""

    t: np.ndarray
    logged: np.ndarray
    replayed: np.ndarray
    verdict: str
    explanation: str
    max_abs_diff: float
    rms_by_shift: dict[int, float]
    mismatch_fraction: float
    mean_offset: list[float]
    obs_term_diff: dict[str, float] = field(default_factory=dict)  # term -> max |rebuilt - logged|

    def summary(self) -> dict[str, Any]:
        return {
            "cycles": len(self.t),
            "verdict": self.verdict,
            "explanation": self.explanation,
            "max_abs_diff": self.max_abs_diff,
            "rms_by_shift": {str(k): v for k, v in self.rms_by_shift.items()},
            "mismatch_fraction": self.mismatch_fraction,
            "mean_offset": self.mean_offset,
            "observation_rebuild_max_diff": self.obs_term_diff,
        }


def replay_policy(flight: Flight, policy: Any) -> PolicyReplay:
    """Re-run ``policy`` (an ``ExportedPolicy``: ``run(obs (M, D)) -> (command, action)``) on ``flight``'s
    logged observations and diagnose the difference with its logged actions."""
    if len(flight.obs) == 0 or len(flight.action) == 0:
        raise ReplayError(
            f"{flight.path}: open-loop replay needs the policy's observations and actions; the log has "
            f"{len(flight.obs)} observations on {flight.topics.get('observation', 'no topic')} and {len(flight.action)} "
            f"actions on {flight.topics.get('action', 'no topic')}. Map them with a topic map, or skip with --no-policy"
        )
    spec, aspec = policy.obs_spec, policy.action_spec
    if flight.obs.shape[1] != spec.dim or flight.action.shape[1] != aspec.dim:
        raise ReplayError(
            f"{flight.path}: logged observations have {flight.obs.shape[1]} values and actions {flight.action.shape[1]}; "
            f"the policy {policy.path} takes {spec.dim} ({list(spec.names)}) and gives {aspec.dim}. "
            "Is this the policy that flew this log?"
        )
    obs_idx, act_idx = _pair(flight.obs_t, flight.action_t)
    t, obs, logged = flight.obs_t[obs_idx], flight.obs[obs_idx], flight.action[act_idx]
    replayed = _actions(policy, obs)
    diff = replayed - logged
    rms = {s: _shifted_rms(replayed, logged, s) for s in range(-MAX_SHIFT, MAX_SHIFT + 1)}
    per_cycle = np.abs(diff).max(axis=1)
    result = PolicyReplay(
        t=t,
        logged=logged,
        replayed=replayed,
        verdict="",
        explanation="",
        max_abs_diff=float(per_cycle.max()),
        rms_by_shift=rms,
        mismatch_fraction=float(np.mean(per_cycle > MATCH_TOL)),
        mean_offset=diff.mean(axis=0).tolist(),
    )
    if len(flight.state_t) >= 2:
        result.obs_term_diff = _rebuild_diff(flight, spec, obs, t, logged)
    result.verdict, result.explanation = _diagnose(result, flight.path)
    return result


def _pair(obs_t: np.ndarray, act_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices pairing each observation with the action logged at the same time (within a third of a cycle)."""
    dt = float(np.median(np.diff(obs_t))) if len(obs_t) > 1 else 1.0
    j = np.clip(np.searchsorted(act_t, obs_t), 0, len(act_t) - 1)
    j_prev = np.clip(j - 1, 0, len(act_t) - 1)
    j = np.where(np.abs(act_t[j_prev] - obs_t) < np.abs(act_t[j] - obs_t), j_prev, j)
    ok = np.abs(act_t[j] - obs_t) <= dt / 3
    if not ok.any():
        raise ReplayError("no logged action shares its time with a logged observation; are they from one run?")
    return np.nonzero(ok)[0], j[ok]


def _actions(policy: Any, obs: np.ndarray) -> np.ndarray:
    """What the runtime logs as the action: clip(to_normalized(command), -1, 1), batched."""
    command, _ = policy.run(obs.astype(np.float32))
    return np.clip(policy.action_spec.to_normalized(np.asarray(command, dtype=np.float64)), -1.0, 1.0)


def _shifted_rms(replayed: np.ndarray, logged: np.ndarray, shift: int) -> float:
    """RMS of replayed[k] - logged[k + shift]."""
    n = len(replayed) - abs(shift)
    if n <= 0:
        return float("nan")
    a = replayed[max(0, -shift) : max(0, -shift) + n]
    b = logged[max(0, shift) : max(0, shift) + n]
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _rebuild_diff(flight: Flight, spec: Any, obs: np.ndarray, t: np.ndarray, logged: np.ndarray) -> dict[str, float]:
    """Max |observation rebuilt from the logged state - logged observation| per term (scaled units), for the
    terms the deploy observation builder computes from a state (deploy.observation.TERMS, same formulas,
    vectorized over cycles). position_error and reference_velocity carry the reference, which a log does not
    hold otherwise: they are not checked; last_action is the previous logged action."""
    from deploy.observation import TERMS

    k = _used(flight.state_log_t, flight.state_t, t)
    previous = np.vstack([np.zeros((1, logged.shape[1])), logged[:-1]])
    rebuilt = {"rotation_matrix": rotations(flight.quaternion[k]).reshape(-1, 9), "last_action": previous}
    if len(flight.twist_t):
        j = _used(flight.twist_log_t, flight.twist_t, t)
        rebuilt["linear_velocity"], rebuilt["angular_velocity"] = flight.twist_linear[j], flight.twist_angular[j]
    out: dict[str, float] = {}
    for name in spec.names:
        if name not in rebuilt or name not in TERMS:
            continue
        sl = spec.slice(name)
        diff = np.abs(rebuilt[name] * spec.term(name).scale - obs[:, sl])
        out[name] = float(diff[1:].max()) if len(t) > 1 else 0.0
    return out


def _used(log_t: np.ndarray, stamp_t: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the message each cycle used: sim2real's runtime records the pose and twist it used at the
    cycle's time, so the last one recorded at or before the observation (a measurement stamp may be older than
    the cycle that first saw it: pairing by stamps would pick a newer one). Logs from elsewhere (no state
    recorded with the observation's time) fall back to the last measurement stamped before it."""
    times = log_t if len(log_t) == len(stamp_t) and np.isin(t, log_t).mean() > 0.9 else stamp_t
    order = np.argsort(times, kind="stable")
    j = np.clip(np.searchsorted(times[order], t + 1e-9, side="right") - 1, 0, len(order) - 1)
    return order[j]


def _diagnose(r: PolicyReplay, path: Any) -> tuple[str, str]:
    bad_terms = {k: v for k, v in r.obs_term_diff.items() if k != "last_action" and v > OBS_TOL}
    if r.max_abs_diff <= MATCH_TOL and not bad_terms:
        return "match", f"the policy reproduces all {len(r.t)} logged actions (max diff {r.max_abs_diff:.1e})"
    best = min(r.rms_by_shift, key=lambda s: r.rms_by_shift[s])
    if best != 0 and r.rms_by_shift[best] <= MATCH_TOL and r.rms_by_shift[0] > MATCH_TOL:
        when = "earlier" if best > 0 else "later"
        return "timing", (
            f"each logged action is the policy's output for the observation logged {abs(best)} cycle(s) {when} "
            f"(RMS {r.rms_by_shift[best]:.1e} "
            f"shifted vs {r.rms_by_shift[0]:.2e} unshifted): the loop or the log pairs each observation with the "
            "action of another cycle. Check where the action is stamped and whether the policy runs on a stale state"
        )
    if bad_terms:
        worst = max(bad_terms, key=lambda k: bad_terms[k])
        return "observation pipeline", (
            f"the observation rebuilt from the logged state differs from the logged one in {sorted(bad_terms)} "
            f"(worst {worst}: max diff {bad_terms[worst]:.3g}): the policy was fed something else than the state "
            "explains. Check units, frames, scales and term order of the observation builder against the policy's spec"
        )
    if r.max_abs_diff <= MATCH_TOL:
        return "match", f"the policy reproduces all {len(r.t)} logged actions (max diff {r.max_abs_diff:.1e})"
    offset = np.asarray(r.mean_offset)
    spread = float(np.sqrt(max(r.rms_by_shift[0] ** 2 - float(np.mean(offset**2)), 0.0)))
    if r.mismatch_fraction < 0.5:
        return "intermittent", (
            f"{100 * r.mismatch_fraction:.1f}% of cycles differ (max {r.max_abs_diff:.3g}): look for dropped or "
            "reordered messages, a policy swapped during the run, or non-finite observations"
        )
    if np.abs(offset).max() > 3 * spread:
        return "different model", (
            f"every action differs by a near-constant offset {np.round(offset, 4).tolist()} (spread {spread:.2g}): "
            "the action scaling/offset of the file differs from the one that flew (e.g. another hover RPM). Use "
            "the policy.onnx of this run"
        )
    return "different model", (
        f"{100 * r.mismatch_fraction:.0f}% of actions differ at every shift (RMS {r.rms_by_shift[0]:.3g}) while the "
        "observations agree with the logged state: this log was flown by another network or normalizer than the "
        "file given. Use the policy.onnx of this run (compare its sha256 with the log's metadata)"
    )
