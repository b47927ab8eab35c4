"""The observation spec: one declared, named, ordered layout per task.

The simulator and the deploy-time observation builder both assemble observation vectors through
:meth:`ObsSpec.assemble`, and the exported policy carries the spec (``to_json``), so the layout exists once.
This module imports neither torch nor numpy at import time: it runs on the robot computer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


class ObsSpecError(ValueError):
    """An observation spec, or values given to it, do not match what was declared."""


@dataclass(frozen=True)
class ObsTerm:
    """One named block of the observation vector.

    The assembled block is ``(value + noise) * scale`` where ``noise ~ N(0, noise_std)`` in the term's own
    unit (the simulator adds it; on the robot the sensors do).
    """

    name: str
    size: int
    scale: float = 1.0
    noise_std: float = 0.0
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ObsSpecError(f"observation term name must be a non-empty identifier, got {self.name!r}")
        if int(self.size) != self.size or self.size <= 0:
            raise ObsSpecError(f"observation term {self.name!r}: size must be a positive integer, got {self.size!r}")
        if not (self.scale == self.scale) or self.scale == 0.0:
            raise ObsSpecError(f"observation term {self.name!r}: scale must be finite and non-zero, got {self.scale}")
        if not self.noise_std >= 0.0:
            raise ObsSpecError(f"observation term {self.name!r}: noise_std must be >= 0, got {self.noise_std}")


@dataclass(frozen=True)
class ObsSpec:
    """An ordered tuple of :class:`ObsTerm`; the observation vector is their concatenation."""

    terms: tuple[ObsTerm, ...]
    version: int = 1
    _offsets: dict[str, tuple[int, int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(self.terms))
        names = [t.name for t in self.terms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ObsSpecError(f"observation term names must be unique, repeated: {duplicates}")
        start = 0
        for term in self.terms:
            self._offsets[term.name] = (start, start + term.size)
            start += term.size

    @property
    def dim(self) -> int:
        """Length of the assembled observation vector."""
        return sum(t.size for t in self.terms)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.terms)

    def term(self, name: str) -> ObsTerm:
        for t in self.terms:
            if t.name == name:
                return t
        raise ObsSpecError(f"no observation term named {name!r}; this spec has {list(self.names)}")

    def slice(self, name: str) -> slice:
        """Columns of term ``name`` in the assembled vector."""
        if name not in self._offsets:
            raise ObsSpecError(f"no observation term named {name!r}; this spec has {list(self.names)}")
        lo, hi = self._offsets[name]
        return slice(lo, hi)

    def scales(self) -> list[float]:
        """Per-column scale, length ``dim``."""
        return [t.scale for t in self.terms for _ in range(t.size)]

    def noise_stds(self) -> list[float]:
        """Per-column noise std in physical units (before scaling), length ``dim``."""
        return [t.noise_std for t in self.terms for _ in range(t.size)]

    def _check_names(self, values: Mapping[str, Any]) -> None:
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self._offsets]
        if missing or extra:
            raise ObsSpecError(
                f"observation values do not match the spec: missing {missing}, unexpected {extra}; "
                f"the spec declares {list(self.names)}"
            )

    def assemble(self, values: Mapping[str, Any], concat: Any = None) -> Any:
        """Concatenate term values in declared order and apply the scales.

        values: name -> array of shape (..., size) (numpy or torch). Every declared term must be present
        with its declared size; extra names are refused too (a typo would otherwise be silently dropped).
        concat: the concatenation function (``numpy.concatenate`` or ``torch.cat``); inferred when None.
        Returns (..., dim).
        """
        self._check_names(values)
        blocks = []
        for t in self.terms:
            v = values[t.name]
            if v.shape[-1] != t.size:
                raise ObsSpecError(
                    f"observation term {t.name!r}: expected last dimension {t.size}, got shape {tuple(v.shape)}"
                )
            blocks.append(v * t.scale if t.scale != 1.0 else v)
        if concat is None:
            concat = _infer_concat(blocks[0])
        return concat(blocks, -1)

    def columns(self, values: Mapping[str, Any]) -> list[Any]:
        """The scaled columns of the observation vector, in order, from component-major values.

        values: name -> sequence of ``size`` arrays (e.g. a (size, N) tensor, or a tuple of (N,) tensors).
        ``stack(columns, -1)`` equals :meth:`assemble` of the transposed values; batched simulators use this
        form because it compiles into one vectorised pass.
        """
        self._check_names(values)
        cols = []
        for t in self.terms:
            v = values[t.name]
            if len(v) != t.size:
                raise ObsSpecError(f"observation term {t.name!r}: expected {t.size} components, got {len(v)}")
            cols.extend(c * t.scale if t.scale != 1.0 else c for c in v)
        return cols

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "terms": [asdict(t) for t in self.terms]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObsSpec:
        if not isinstance(data, Mapping) or "terms" not in data:
            raise ObsSpecError(f"an observation spec must be a mapping with a 'terms' list, got {type(data).__name__}")
        known = {"name", "size", "scale", "noise_std", "unit", "description"}
        terms = []
        for i, raw in enumerate(data["terms"]):
            unknown = set(raw) - known
            if unknown or "name" not in raw or "size" not in raw:
                raise ObsSpecError(
                    f"observation term #{i} must have 'name' and 'size' (and optionally {sorted(known - {'name', 'size'})}); "
                    f"got keys {sorted(raw)}"
                )
            terms.append(ObsTerm(**raw))
        return cls(tuple(terms), version=int(data.get("version", 1)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ObsSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ObsSpecError(f"observation spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def digest(self) -> str:
        """A short content hash of the layout (names, sizes, scales, noise)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def check_same_layout(self, other: ObsSpec) -> None:
        """Raise an :class:`ObsSpecError` naming the first difference between two layouts."""
        for i, (a, b) in enumerate(zip(self.terms, other.terms)):
            for key in ("name", "size", "scale"):
                if getattr(a, key) != getattr(b, key):
                    raise ObsSpecError(
                        f"observation layouts differ at term #{i} field {key!r}: "
                        f"expected {getattr(a, key)!r}, found {getattr(b, key)!r}"
                    )
        if len(self.terms) != len(other.terms):
            raise ObsSpecError(
                f"observation layouts differ in length: expected terms {list(self.names)}, found {list(other.names)}"
            )


def _infer_concat(example: Any) -> Any:
    module = type(example).__module__
    if module.startswith("torch"):
        import torch

        return lambda blocks, dim: torch.cat(blocks, dim)
    import numpy as np

    return lambda blocks, dim: np.concatenate(blocks, axis=dim)


# ----------------------------------------------------------------------------------------------- observation history
HISTORY_TERM = "observation_history"


def with_history(base: ObsSpec, steps: int) -> ObsSpec:
    """``base`` followed by the ``steps`` previous ``base`` vectors (term ``observation_history``).

    The history holds the vectors exactly as the policy received them at the previous control steps (scaled,
    noisy, delayed), newest first. When a flight (episode) starts, every slot holds the first observation.
    A memoryless policy cannot tell a slow motor or a delayed loop from a fast one; with a few past steps it can
    (docs/training.md, "Observation history"). ``steps`` 0 returns ``base`` unchanged.
    """
    if int(steps) != steps or steps < 0:
        raise ObsSpecError(f"observation history must be a whole number of control steps >= 0, got {steps!r}")
    if steps == 0:
        return base
    if HISTORY_TERM in base.names:
        raise ObsSpecError(f"the base observation spec already has a {HISTORY_TERM!r} term")
    description = f"the {steps} previous observations of the terms above as the policy saw them, newest first"
    return ObsSpec((*base.terms, ObsTerm(HISTORY_TERM, steps * base.dim, 1.0, 0.0, "", description)), base.version)


def split_history(spec: ObsSpec) -> tuple[ObsSpec, int]:
    """The inverse of :func:`with_history`: (base spec, number of history steps); (spec, 0) without history.

    Refuses a history term that is not last or whose size is not a whole number of base vectors: such a file
    was not written by :func:`with_history` and its layout cannot be rebuilt.
    """
    if HISTORY_TERM not in spec.names:
        return spec, 0
    if spec.terms[-1].name != HISTORY_TERM or len(spec.terms) < 2:
        raise ObsSpecError(f"{HISTORY_TERM!r} must be the last term after at least one other; got {list(spec.names)}")
    base = ObsSpec(spec.terms[:-1], spec.version)
    size = spec.terms[-1].size
    if size % base.dim:
        raise ObsSpecError(
            f"{HISTORY_TERM!r} has {size} columns, not a whole number of {base.dim}-column observations "
            f"of {list(base.names)}"
        )
    return base, size // base.dim
