"""Model-agnostic fitting core: separable least squares + CMA-ES.

A model splits its parameters in three:
- **linear** ones, solved exactly by (batched) least squares inside the model for any value of the others
  (for a quadrotor: thrust/mass, drag, inertia ratios, torque ratio from accelerations given rotor speeds);
- **nonlinear** continuous ones (motor time constants), searched by CMA-ES (``cma``) in log space on the
  profile cost, i.e. the cost with the linear parameters at their optimum (variable projection);
- one **discrete** one (a latency in control steps): one CMA-ES run per value, all run in lockstep so that a
  model evaluates the whole generation of every run in one batched call.
The profile cost is a negative log-likelihood. Its curvature at the optimum (finite-difference Hessian) gives
the covariance of the nonlinear parameters; the model turns its linear covariance into physical estimates.
A new robot (e.g. an articulated one: motor strength, joint friction and damping, latency) implements
:class:`SeparableModel` and reuses :func:`fit` unchanged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Estimate:
    """A fitted value with its standard deviation, unit and the nominal value it replaces."""

    value: float
    std: float
    unit: str = ""
    nominal: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.nominal else self.value / self.nominal


@dataclass(frozen=True)
class NonlinearParam:
    """A positive parameter searched in log space between ``low`` and ``high``, starting at ``initial``."""

    name: str
    initial: float
    low: float
    high: float
    unit: str = ""


class SeparableModel(Protocol):
    nonlinear: Sequence[NonlinearParam]
    discrete_name: str
    discrete_values: Sequence[int]

    def profile_cost(self, x: np.ndarray, discrete: np.ndarray) -> np.ndarray:
        """x: (P, n) nonlinear values (physical units), discrete: (P,) -> (P,) negative log-likelihood."""

    def estimates(self, x: np.ndarray, discrete: int, x_cov: np.ndarray) -> dict[str, Estimate]:
        """Every fitted parameter at the optimum; x_cov: (n, n) covariance of x."""


@dataclass
class FitResult:
    estimates: dict[str, Estimate]
    discrete: int
    cost: float
    cost_by_discrete: dict[int, float]
    evaluations: int
    seconds: float
    generations: int
    extras: dict[str, float] = field(default_factory=dict)
    x_by_discrete: dict[int, np.ndarray] = field(default_factory=dict)  # best nonlinear values per discrete value


def fit(
    model: SeparableModel,
    *,
    seed: int = 0,
    popsize: int = 8,
    sigma0: float = 0.4,
    max_generations: int = 60,
    tol_x: float = 2e-3,
    progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Minimise the model's profile cost over its nonlinear (CMA-ES per discrete value) parameters."""
    import cma

    start = time.perf_counter()
    params = list(model.nonlinear)
    lo = np.log([p.low for p in params])
    hi = np.log([p.high for p in params])
    x0 = np.clip(np.log([p.initial for p in params]), lo, hi)
    runs = {}
    for i, value in enumerate(model.discrete_values):
        opts = {
            "popsize": popsize,
            "bounds": [lo.tolist(), hi.tolist()],
            "seed": seed * 1000 + i + 1,
            "tolx": tol_x,
            "tolfun": 1e-6,
            "maxiter": max_generations,
            "verbose": -9,
        }
        runs[value] = cma.CMAEvolutionStrategy(x0.tolist(), sigma0, opts)
    evaluations = generations = 0
    while True:
        active = [v for v, es in runs.items() if not es.stop()]
        if not active:
            break
        asked = {v: runs[v].ask() for v in active}
        xs = np.exp(np.concatenate([np.asarray(asked[v]) for v in active]))
        ds = np.concatenate([np.full(len(asked[v]), v) for v in active])
        costs = model.profile_cost(xs, ds)
        costs = np.where(np.isfinite(costs), costs, 1e30)
        evaluations += len(xs)
        offset = 0
        for v in active:
            n = len(asked[v])
            runs[v].tell(asked[v], costs[offset : offset + n].tolist())
            offset += n
        generations += 1
        if progress is not None:
            progress(generations, max_generations)
    best_x = {v: np.asarray(es.result.xbest) for v, es in runs.items()}
    best_cost = {v: float(es.result.fbest) for v, es in runs.items()}
    chosen = min(best_cost, key=lambda v: best_cost[v])
    x_log = best_x[chosen]
    hess = _hessian(lambda z: float(model.profile_cost(np.exp(z)[None], np.array([chosen]))[0]), x_log)
    cov_log = _inverse(hess)
    x = np.exp(x_log)
    x_cov = cov_log * np.outer(x, x)  # d x = x d(log x)
    est = model.estimates(x, chosen, x_cov)
    for p, xi, var in zip(params, x, np.diag(x_cov)):
        est.setdefault(p.name, Estimate(float(xi), math.sqrt(max(var, 0.0)), p.unit))
    seconds = time.perf_counter() - start
    log.info(
        "fitted %s in %.1f s (%d evaluations): %s = %d, cost %.1f (%s)",
        [p.name for p in params],
        seconds,
        evaluations,
        model.discrete_name,
        chosen,
        best_cost[chosen],
        ", ".join(f"{v}: {c:.1f}" for v, c in best_cost.items()),
    )
    x_all = {int(v): np.exp(b) for v, b in best_x.items()}
    return FitResult(est, int(chosen), best_cost[chosen], best_cost, evaluations, seconds, generations, {}, x_all)


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 0.02) -> np.ndarray:
    n = len(x)
    H = np.zeros((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            if i == j:
                H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h**2
            else:
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return H


def _inverse(H: np.ndarray) -> np.ndarray:
    """Covariance from the Hessian of a negative log-likelihood; flat directions get a large variance."""
    w, V = np.linalg.eigh(0.5 * (H + H.T))
    w = np.where(w > 1e-9, w, 1e-9)
    return (V / w) @ V.T


def batched_lstsq(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares for P problems at once. X: (P, N, n), y: (N,) or (P, N) ->
    (theta (P, n), rss (P,), cov (P, n, n) = rss / (N - n) (X^T X)^-1). Columns are scaled internally."""
    scale = np.sqrt(np.mean(X * X, axis=1, keepdims=True)) + 1e-300  # (P, 1, n)
    Xs = X / scale
    yb = np.broadcast_to(y, X.shape[:2])
    xtx = np.einsum("pni,pnj->pij", Xs, Xs)
    xty = np.einsum("pni,pn->pi", Xs, yb)
    inv = np.linalg.inv(xtx + 1e-12 * np.eye(X.shape[2]))
    theta_s = np.einsum("pij,pj->pi", inv, xty)
    resid = yb - np.einsum("pni,pi->pn", Xs, theta_s)
    rss = np.einsum("pn,pn->p", resid, resid)
    s = scale[:, 0, :]
    dof = max(X.shape[1] - X.shape[2], 1)
    cov = (rss / dof)[:, None, None] * inv / (s[:, :, None] * s[:, None, :])
    return theta_s / s, rss, cov
