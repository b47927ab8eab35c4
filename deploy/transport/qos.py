"""ROS 2 QoS profiles and their Cyclone DDS form.

Presets follow rmw (``rmw_qos_profile_sensor_data`` / ``rmw_qos_profile_default``): sensor data is
KEEP_LAST 5, BEST_EFFORT, VOLATILE; default is KEEP_LAST 10, RELIABLE, VOLATILE. A BEST_EFFORT writer does
not match a RELIABLE reader. Data representation is pinned to XCDR1, as ROS 2 registers its types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cyclonedds.qos import Policy, Qos
from cyclonedds.util import duration

from deploy.transport.errors import QosError

Reliability = Literal["reliable", "best_effort"]
Durability = Literal["volatile", "transient_local"]


@dataclass(frozen=True)
class QosProfile:
    """A ROS 2 QoS profile (history is always KEEP_LAST).

    depth: history depth, samples; max_blocking_s: how long a reliable write may block when resources are
    exhausted, seconds (rmw_cyclonedds uses 0.1 s).
    """

    depth: int = 10
    reliability: Reliability = "reliable"
    durability: Durability = "volatile"
    max_blocking_s: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or self.depth < 1:
            raise QosError(f"QoS depth must be an integer >= 1, got {self.depth!r}")
        if self.reliability not in ("reliable", "best_effort"):
            raise QosError(f"QoS reliability must be 'reliable' or 'best_effort', got {self.reliability!r}")
        if self.durability not in ("volatile", "transient_local"):
            raise QosError(f"QoS durability must be 'volatile' or 'transient_local', got {self.durability!r}")
        if self.max_blocking_s < 0:
            raise QosError(f"QoS max_blocking_s must be >= 0 seconds, got {self.max_blocking_s!r}")

    def to_cyclone(self) -> Qos:
        """The Cyclone DDS Qos object for readers and writers."""
        if self.reliability == "reliable":
            rel = Policy.Reliability.Reliable(duration(seconds=self.max_blocking_s))
        else:
            rel = Policy.Reliability.BestEffort
        dur = Policy.Durability.Volatile if self.durability == "volatile" else Policy.Durability.TransientLocal
        return Qos(
            rel,
            dur,
            Policy.History.KeepLast(self.depth),
            Policy.DataRepresentation(use_cdrv0_representation=True),
        )


SENSOR_DATA = QosProfile(depth=5, reliability="best_effort", durability="volatile")
DEFAULT = QosProfile(depth=10, reliability="reliable", durability="volatile")
#: Latched topics (e.g. robot description, last safety state): late subscribers get the last sample.
TRANSIENT_LOCAL = QosProfile(depth=1, reliability="reliable", durability="transient_local")

PRESETS: dict[str, QosProfile] = {
    "sensor_data": SENSOR_DATA,
    "default": DEFAULT,
    "transient_local": TRANSIENT_LOCAL,
}


def resolve_qos(qos: str | QosProfile) -> QosProfile:
    """A preset name (``sensor_data``, ``default``, ``transient_local``) or a QosProfile -> QosProfile."""
    if isinstance(qos, QosProfile):
        return qos
    if isinstance(qos, str) and qos in PRESETS:
        return PRESETS[qos]
    raise QosError(f"unknown QoS {qos!r}: expected one of {sorted(PRESETS)} or a QosProfile")
