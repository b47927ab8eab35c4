"""The randomization spec: parameter -> distribution, as data.

Training reads it, calibration writes it (fitted centre and spread). This module is torch-free; sampling
lives in :mod:`sim.sampling` and is a pure function of (spec, generator).

YAML form::

    name: crazyflie2-default
    terms:
      mass:        {distribution: uniform, low: 0.9, high: 1.2, operation: scale, when: reset}
      motor_tau_up: {distribution: log_uniform, low: 0.25, high: 2.0, operation: scale}
      action_latency: {distribution: int_uniform, low: 0, high: 2, operation: absolute, unit: control steps}
      disturbance_force: {distribution: normal, mean: 0.0, std: 0.01, operation: absolute, when: interval,
                          interval_s: 2.0, per_component: true}
      inertia:     {distribution: uniform, low: [0.9, 0.95, 0.5], high: [1.1, 1.05, 2.0], per_component: true}

Per-component bounds (``low``/``high`` as lists, one value per component of a vector parameter) are for
``uniform`` terms with ``per_component: true``: each component gets its own interval (e.g. per-axis inertia from
system identification). They are :class:`Components`, which broadcast against an (N, C) array or tensor of
draws the way a scalar does, so the samplers need no special case.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("uniform", "log_uniform", "normal", "int_uniform", "constant")
OPERATIONS = ("scale", "offset", "absolute")
WHEN = ("startup", "reset", "interval")


class RandomizationSpecError(ValueError):
    """A randomization spec is malformed or does not fit the simulator it is given to."""


class Components(tuple):
    """Per-component bounds: a tuple of floats that does element-wise arithmetic. With a number or another
    Components the result is a Components; with an array or a tensor (anything with ``new_tensor`` or
    ``__array__``) it is converted to one first and broadcasts over the last axis: ``low + (high - low) * u``
    with u (N, C) gives (N, C). Torch-free: a tensor converts itself."""

    def _other(self, other: Any) -> Any:
        if isinstance(other, int | float):
            return Components(other for _ in self)
        if isinstance(other, Components):
            if len(other) != len(self):
                raise ValueError(f"per-component bounds of different lengths: {len(self)} and {len(other)}")
            return other
        return None

    def _apply(self, other: Any, op: Any) -> Any:
        mine = self._other(other)
        if mine is not None:
            return Components(op(a, b) for a, b in zip(self, mine))
        if hasattr(other, "new_tensor"):
            return op(other.new_tensor(tuple(self)), other)
        if hasattr(other, "__array__"):
            import numpy as np

            return op(np.asarray(tuple(self), dtype=np.float64), other)
        return NotImplemented

    def __add__(self, other: Any) -> Any:  # type: ignore[override]
        return self._apply(other, lambda a, b: a + b)

    def __radd__(self, other: Any) -> Any:
        return self._apply(other, lambda a, b: b + a)

    def __sub__(self, other: Any) -> Any:
        return self._apply(other, lambda a, b: a - b)

    def __rsub__(self, other: Any) -> Any:
        return self._apply(other, lambda a, b: b - a)

    def __mul__(self, other: Any) -> Any:  # type: ignore[override]
        return self._apply(other, lambda a, b: a * b)

    def __rmul__(self, other: Any) -> Any:  # type: ignore[override]
        return self._apply(other, lambda a, b: b * a)


@dataclass(frozen=True)
class ParamDistribution:
    """How one simulator parameter is drawn.

    distribution: uniform U(low, high); log_uniform exp(U(ln low, ln high)); normal N(mean, std) clipped to
      [low, high] when those are given; int_uniform integers low..high inclusive; constant = mean.
    operation: scale (nominal * sample), offset (nominal + sample) or absolute (sample replaces nominal).
    when: startup (once), reset (each episode), interval (every ``interval_s`` seconds of sim time, and at reset).
    per_component: for vector parameters (inertia diag, force), draw each component independently; otherwise
      one draw scales/offsets every component alike.
    low/high may be lists (one bound per component, :class:`Components`) for a ``uniform`` term with
    ``per_component``: each component its own interval.
    """

    distribution: str
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    operation: str = "scale"
    when: str = "reset"
    interval_s: float | None = None
    per_component: bool = False
    unit: str = ""

    def __post_init__(self) -> None:
        where = f"distribution {self.distribution!r}"
        self._vector_bounds(where)
        if self.distribution not in DISTRIBUTIONS:
            raise RandomizationSpecError(f"unknown distribution {self.distribution!r}; expected one of {DISTRIBUTIONS}")
        if self.operation not in OPERATIONS:
            raise RandomizationSpecError(f"unknown operation {self.operation!r}; expected one of {OPERATIONS}")
        if self.when not in WHEN:
            raise RandomizationSpecError(f"unknown 'when' {self.when!r}; expected one of {WHEN}")
        if self.distribution in ("uniform", "log_uniform", "int_uniform"):
            if self.low is None or self.high is None:
                raise RandomizationSpecError(f"{where} needs 'low' and 'high'")
            pairs = zip(self.low, self.high) if self.per_axis else [(self.low, self.high)]
            if not all(math.isfinite(lo) and math.isfinite(hi) and lo <= hi for lo, hi in pairs):
                raise RandomizationSpecError(f"{where} needs finite low <= high, got low={self.low}, high={self.high}")
        if self.distribution == "log_uniform" and self.low <= 0:
            raise RandomizationSpecError(f"{where} needs low > 0, got {self.low}")
        if self.distribution == "int_uniform" and (self.low != int(self.low) or self.high != int(self.high)):
            raise RandomizationSpecError(f"{where} needs integer bounds, got low={self.low}, high={self.high}")
        if self.distribution == "normal":
            if self.mean is None or self.std is None or not self.std >= 0 or not math.isfinite(self.mean):
                raise RandomizationSpecError(
                    f"{where} needs finite 'mean' and 'std' >= 0, got mean={self.mean}, std={self.std}"
                )
        if self.distribution == "constant" and (self.mean is None or not math.isfinite(self.mean)):
            raise RandomizationSpecError(f"{where} needs a finite 'mean'")
        if self.when == "interval" and not (self.interval_s and self.interval_s > 0):
            raise RandomizationSpecError(f"when='interval' needs interval_s > 0 seconds, got {self.interval_s}")

    @property
    def per_axis(self) -> bool:
        """True when low/high are per-component bounds (:class:`Components`)."""
        return isinstance(self.low, Components)

    def _vector_bounds(self, where: str) -> None:
        """Turn list bounds into :class:`Components` (a scalar beside a list is repeated), or refuse them."""
        vector = [isinstance(v, list | tuple) for v in (self.low, self.high)]
        if not any(vector):
            return
        if self.distribution != "uniform" or not self.per_component:
            raise RandomizationSpecError(
                f"{where}: per-component bounds (low/high as lists) need distribution 'uniform' and "
                f"per_component: true, got distribution {self.distribution!r}, per_component {self.per_component}; "
                "give scalar bounds or make the term uniform per component"
            )
        n = max(len(v) for v, is_vec in zip((self.low, self.high), vector) if is_vec)
        bounds = []
        for v, is_vec in zip((self.low, self.high), vector):
            values = list(v) if is_vec else [v] * n
            if len(values) != n or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in values):
                raise RandomizationSpecError(
                    f"{where}: per-component low and high must be lists of {n} numbers, got low={self.low}, "
                    f"high={self.high}"
                )
            bounds.append(Components(float(x) for x in values))
        object.__setattr__(self, "low", bounds[0])
        object.__setattr__(self, "high", bounds[1])

    def bounds(self) -> tuple[float, float]:
        """Support of the sample (before the operation is applied); normal without clip bounds is +-inf.
        Per-component bounds: the smallest low and the largest high (:meth:`component_bounds` has each)."""
        if self.per_axis:
            return min(self.low), max(self.high)
        if self.distribution in ("uniform", "log_uniform", "int_uniform"):
            return float(self.low), float(self.high)
        if self.distribution == "constant":
            return float(self.mean), float(self.mean)
        lo = -math.inf if self.low is None else float(self.low)
        hi = math.inf if self.high is None else float(self.high)
        return lo, hi

    def component_bounds(self, size: int) -> list[tuple[float, float]]:
        """(low, high) of each of ``size`` components (the same for every one unless per-component)."""
        if self.per_axis:
            if len(self.low) != size:
                raise RandomizationSpecError(
                    f"per-component bounds for {len(self.low)} components, but the parameter has {size}; give "
                    f"{size} values in low and high"
                )
            return list(zip(self.low, self.high))
        return [self.bounds()] * size

    def to_dict(self) -> dict[str, Any]:
        out = {
            k: v for k, v in asdict(self).items() if v not in (None, "") and not (k == "per_component" and v is False)
        }
        return {k: list(v) if isinstance(v, Components) else v for k, v in out.items()}


@dataclass(frozen=True)
class RandomizationSpec:
    """Named parameter distributions. Parameter names are those of the simulator's parameter profile."""

    terms: Mapping[str, ParamDistribution] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", dict(self.terms))

    def __contains__(self, param: str) -> bool:
        return param in self.terms

    def get(self, param: str) -> ParamDistribution | None:
        return self.terms.get(param)

    def replace(self, **terms: ParamDistribution | None) -> RandomizationSpec:
        """A copy with terms replaced (``None`` removes one)."""
        merged = dict(self.terms)
        for key, value in terms.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return RandomizationSpec(merged, name=self.name)

    def without_randomization(self) -> RandomizationSpec:
        """Every parameter at its nominal value (no terms): for reference checks."""
        return RandomizationSpec({}, name=f"{self.name}-nominal" if self.name else "nominal")

    def check_params(self, known: set[str] | frozenset[str]) -> None:
        """Refuse terms that name parameters the simulator does not have (what values are physical is
        :meth:`check_physical`'s, with the simulator's own lists)."""
        unknown = sorted(set(self.terms) - set(known))
        if unknown:
            raise RandomizationSpecError(
                f"randomization spec {self.name or '(unnamed)'} names unknown parameters {unknown}; "
                f"this simulator randomizes {sorted(known)}"
            )

    def value_range(self, name: str, nominal: list[float] | tuple[float, ...]) -> tuple[float, float]:
        """Smallest and largest value parameter ``name`` can take (over its components), nominal if not
        randomized."""
        lo_n, hi_n = min(nominal), max(nominal)
        term = self.terms.get(name)
        if term is None:
            return lo_n, hi_n
        if term.per_axis:
            ranges = [
                RandomizationSpec({name: ParamDistribution("uniform", low=lo, high=hi, operation=term.operation)})
                .value_range(name, [n])
                for n, (lo, hi) in zip(nominal, term.component_bounds(len(nominal)))
            ]  # fmt: skip
            return min(r[0] for r in ranges), max(r[1] for r in ranges)
        lo, hi = term.bounds()
        if term.operation == "absolute":
            return lo, hi
        if term.operation == "offset":
            return lo_n + lo, hi_n + hi
        products = [a * b for a in (lo_n, hi_n) for b in (lo, hi) if math.isfinite(b)]
        return (min(products), max(products)) if len(products) == 4 else (-math.inf, math.inf)

    def check_physical(
        self,
        nominal: Mapping[str, Any],
        positive: tuple[str, ...] = (),
        nonnegative: tuple[str, ...] = (),
        max_steps: Mapping[str, int] | None = None,
        within: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        """Refuse draws no robot can have: ``positive`` parameters (masses, inertias, time constants, motor
        constants) reaching 0 or below, ``nonnegative`` ones (drag, noise) below 0, integer step counts
        (latencies) below 0 or reaching ``max_steps[name]`` or more (an episode shorter than its own latency),
        ``within[name] = (a, b)`` ones outside [a, b] (a battery sag of 100 %).
        Raises :class:`RandomizationSpecError` naming the term, the bound and the value it can reach.
        Per-component bounds must have one value per component of the nominal value."""
        for name, term in self.terms.items():
            if term.per_axis and name in nominal:
                try:
                    term.component_bounds(len(nominal[name]))
                except RandomizationSpecError as exc:
                    raise RandomizationSpecError(f"randomization term {name!r}: {exc}") from exc
        for names, ok, what in ((positive, lambda v: v > 0, "> 0"), (nonnegative, lambda v: v >= 0, ">= 0")):
            for name in names:
                if name not in nominal:
                    continue
                lo, _hi = self.value_range(name, list(nominal[name]))
                if not ok(lo):
                    raise RandomizationSpecError(
                        f"randomization term {name!r}: its values must be {what}, but it can reach {lo:g}; "
                        "narrow low/high (or clip a normal) to physical values"
                    )
        for name, limit in (max_steps or {}).items():
            if name not in self.terms:
                continue
            lo, hi = self.value_range(name, list(nominal.get(name, (0.0,))))
            if not lo >= 0:
                raise RandomizationSpecError(
                    f"randomization term {name!r}: a latency is a number of steps >= 0, but it can reach {lo:g}; "
                    "set low >= 0"
                )
            if not hi < limit:
                raise RandomizationSpecError(
                    f"randomization term {name!r}: up to {hi:g} steps, but an episode has {limit}; a latency must "
                    "stay well below the episode length"
                )
        for name, (a, b) in (within or {}).items():
            if name not in self.terms or name not in nominal:
                continue
            lo, hi = self.value_range(name, list(nominal[name]))
            if not (a <= lo and hi <= b):
                raise RandomizationSpecError(
                    f"randomization term {name!r}: its values must lie in [{a:g}, {b:g}], but they can reach "
                    f"[{lo:g}, {hi:g}]; narrow low/high (or clip a normal) to that range"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "terms": {k: v.to_dict() for k, v in self.terms.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "randomization spec") -> RandomizationSpec:
        if not isinstance(data, Mapping) or not isinstance(data.get("terms", {}), Mapping):
            raise RandomizationSpecError(
                f"{source}: expected a mapping with a 'terms' mapping, got {type(data).__name__}"
            )
        terms = {}
        allowed = set(ParamDistribution.__dataclass_fields__)
        for param, raw in (data.get("terms") or {}).items():
            if not isinstance(raw, Mapping):
                raise RandomizationSpecError(f"{source}: term {param!r} must be a mapping, got {raw!r}")
            unknown = set(raw) - allowed
            if unknown:
                raise RandomizationSpecError(
                    f"{source}: term {param!r} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
                )
            try:
                terms[param] = ParamDistribution(**raw)
            except (RandomizationSpecError, TypeError) as exc:
                raise RandomizationSpecError(f"{source}: term {param!r}: {exc}") from exc
        return cls(terms, name=str(data.get("name", "")))

    def to_yaml(self, path: str | Path | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> RandomizationSpec:
        """Load a spec from a YAML file."""
        path = Path(path)
        if not path.is_file():
            raise RandomizationSpecError(f"randomization spec file {str(path)!r} does not exist")
        return cls.from_yaml_text(path.read_text(), source=str(path))

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "randomization spec text") -> RandomizationSpec:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RandomizationSpecError(f"{source} is not valid YAML: {exc}") from exc
        return cls.from_dict(data or {}, source=source)

    def digest(self) -> str:
        """Content hash (independent of term order and of the name)."""
        text = json.dumps({k: self.terms[k].to_dict() for k in sorted(self.terms)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
