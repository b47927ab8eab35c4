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


@dataclass(frozen=True)
class ParamDistribution:
    """How one simulator parameter is drawn.

    distribution: uniform U(low, high); log_uniform exp(U(ln low, ln high)); normal N(mean, std) clipped to
      [low, high] when those are given; int_uniform integers low..high inclusive; constant = mean.
    operation: scale (nominal * sample), offset (nominal + sample) or absolute (sample replaces nominal).
    when: startup (once), reset (each episode), interval (every ``interval_s`` seconds of sim time, and at reset).
    per_component: for vector parameters (inertia diag, force), draw each component independently; otherwise
      one draw scales/offsets every component alike.
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
        if self.distribution not in DISTRIBUTIONS:
            raise RandomizationSpecError(f"unknown distribution {self.distribution!r}; expected one of {DISTRIBUTIONS}")
        if self.operation not in OPERATIONS:
            raise RandomizationSpecError(f"unknown operation {self.operation!r}; expected one of {OPERATIONS}")
        if self.when not in WHEN:
            raise RandomizationSpecError(f"unknown 'when' {self.when!r}; expected one of {WHEN}")
        if self.distribution in ("uniform", "log_uniform", "int_uniform"):
            if self.low is None or self.high is None:
                raise RandomizationSpecError(f"{where} needs 'low' and 'high'")
            if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
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

    def bounds(self) -> tuple[float, float]:
        """Support of the sample (before the operation is applied); normal without clip bounds is +-inf."""
        if self.distribution in ("uniform", "log_uniform", "int_uniform"):
            return float(self.low), float(self.high)
        if self.distribution == "constant":
            return float(self.mean), float(self.mean)
        lo = -math.inf if self.low is None else float(self.low)
        hi = math.inf if self.high is None else float(self.high)
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v for k, v in asdict(self).items() if v not in (None, "") and not (k == "per_component" and v is False)
        }


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
    ) -> None:
        """Refuse draws no robot can have: ``positive`` parameters (masses, inertias, time constants, motor
        constants) reaching 0 or below, ``nonnegative`` ones (drag, noise) below 0, integer step counts
        (latencies) below 0 or reaching ``max_steps[name]`` or more (an episode shorter than its own latency).
        Raises :class:`RandomizationSpecError` naming the term, the bound and the value it can reach."""
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
