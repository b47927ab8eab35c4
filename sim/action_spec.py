"""Action semantics: what each policy output means physically. Torch-free (the robot reads it).

A policy outputs a in [-1, 1]^A; the physical command is ``clip(offset + scale * clip(a, -1, 1), low, high)``
per element, in ``unit``. The exported model carries this spec and applies it, so the robot never rescales.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


class ActionSpecError(ValueError):
    """An action spec is malformed or does not match the robot."""


@dataclass(frozen=True)
class ActionSpec:
    interface: str  # e.g. "rpm", "ctbr", "joint_position"
    names: tuple[str, ...]  # one per action element, in order (motor or joint names)
    units: tuple[str, ...]
    offset: tuple[float, ...]
    scale: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        for field in ("units", "offset", "scale", "low", "high"):
            value = tuple(getattr(self, field))
            object.__setattr__(self, field, value)
            if len(value) != n:
                raise ActionSpecError(
                    f"action spec {self.interface!r}: {field} has {len(value)} entries, names has {n}"
                )
        object.__setattr__(self, "names", tuple(self.names))
        bad = [self.names[i] for i in range(n) if not self.low[i] <= self.high[i]]
        if bad:
            raise ActionSpecError(f"action spec {self.interface!r}: low > high for {bad}")

    @property
    def dim(self) -> int:
        return len(self.names)

    def to_physical(self, action: Any) -> Any:
        """(..., A) normalized actions -> (..., A) physical commands (numpy or torch)."""
        if action.shape[-1] != self.dim:
            raise ActionSpecError(
                f"expected actions with last dimension {self.dim} ({self.interface}), got {tuple(action.shape)}"
            )
        lib = _lib(action)
        offset, scale = lib.asarray(self.offset), lib.asarray(self.scale)
        low, high = lib.asarray(self.low), lib.asarray(self.high)
        if lib.__name__ == "torch":
            offset, scale, low, high = (t.to(action) for t in (offset, scale, low, high))
            return (offset + scale * action.clamp(-1.0, 1.0)).clamp(low, high)
        return lib.clip(offset + scale * lib.clip(action, -1.0, 1.0), low, high)

    def to_normalized(self, physical: Any) -> Any:
        """Inverse of :meth:`to_physical` inside the limits (for baselines that think in physical units)."""
        lib = _lib(physical)
        offset, scale = lib.asarray(self.offset), lib.asarray(self.scale)
        if lib.__name__ == "torch":
            offset, scale = offset.to(physical), scale.to(physical)
        return (physical - offset) / scale

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionSpec:
        required = {"interface", "names", "units", "offset", "scale", "low", "high"}
        missing = required - set(data)
        if missing:
            raise ActionSpecError(f"action spec is missing {sorted(missing)}")
        return cls(**{k: tuple(data[k]) if k != "interface" else data[k] for k in required})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ActionSpec:
        return cls.from_dict(json.loads(text))


def uniform_spec(interface: str, names: Sequence[str], unit: str, offset, scale, low, high) -> ActionSpec:
    """An action spec whose elements share unit/offset/scale/limits."""
    n = len(names)
    return ActionSpec(interface, tuple(names), (unit,) * n, (offset,) * n, (scale,) * n, (low,) * n, (high,) * n)


def _lib(x: Any):
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    import numpy as np

    return np
