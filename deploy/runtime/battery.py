"""The battery's state of charge from ``sensor_msgs/BatteryState``, as the deploy profile says to read it.

    battery: {source: percentage}                       # the driver's own estimate (default; PX4, Unitree)
    battery: {source: voltage, cells: 1, empty_v_per_cell: 3.3, full_v_per_cell: 4.2}   # e.g. a Crazyflie

``percentage`` is the message's 0..1 field (ROS: NaN when unknown). ``voltage`` is a linear gauge from the pack
voltage: 0 at ``cells * empty_v_per_cell``, 1 at ``cells * full_v_per_cell``. A LiPo cell is 4.2 V full at rest
and sags under load, so the gauge reads low in flight: conservative for the safety layer's low and critical
battery levels, which act on this fraction. A reading that is missing or not finite gives None (the safety
layer's battery check then falls back: it never flies on an unknown battery).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOURCES = ("percentage", "voltage")


class BatteryGaugeError(ValueError):
    """A deploy profile's battery section that cannot be used."""


@dataclass(frozen=True)
class BatteryGauge:
    source: str = "percentage"
    cells: int = 1
    empty_v_per_cell: float = 3.3
    full_v_per_cell: float = 4.2

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise BatteryGaugeError(f"battery.source: expected one of {SOURCES}, found {self.source!r}")
        if isinstance(self.cells, bool) or not isinstance(self.cells, int) or not 1 <= self.cells <= 24:
            raise BatteryGaugeError(
                f"battery.cells: expected the number of cells in series (1-24), found {self.cells!r}"
            )
        lo, hi = self.empty_v_per_cell, self.full_v_per_cell
        if not (isinstance(lo, int | float) and isinstance(hi, int | float) and 2.0 <= lo < hi <= 5.0):
            raise BatteryGaugeError(
                f"battery: expected 2.0 <= empty_v_per_cell < full_v_per_cell <= 5.0 volts per cell, found "
                f"{lo!r} and {hi!r} (pack voltages? divide by the number of cells)"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> BatteryGauge:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise BatteryGaugeError(
                f"battery: expected a mapping such as {{source: voltage, cells: 1}}, found {data!r}"
            )
        unknown = sorted(set(data) - {"source", "cells", "empty_v_per_cell", "full_v_per_cell"})
        if unknown:
            raise BatteryGaugeError(
                f"battery: unknown keys {unknown}; expected source, cells, empty_v_per_cell, full_v_per_cell"
            )
        return cls(**dict(data))

    def fraction(self, msg: Any) -> float | None:
        """State of charge 0..1 from a BatteryState message, None when it is unknown."""
        if self.source == "percentage":
            value = float(msg.percentage)
        else:
            volts = float(msg.voltage)
            if not math.isfinite(volts) or volts <= 0.0:
                return None
            empty, full = self.cells * self.empty_v_per_cell, self.cells * self.full_v_per_cell
            value = min(max((volts - empty) / (full - empty), 0.0), 1.0)
        return value if math.isfinite(value) else None
