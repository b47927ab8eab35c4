"""Vehicle ids: every command carries the id of the robot it is for, and a robot obeys only its own.

Two robots on one DDS domain with different namespaces never see each other's commands; this is the second
guard, for a robot that is reached anyway (a misconfigured namespace, a remapped topic, a replayed log)."""

from __future__ import annotations

import logging

log = logging.getLogger("sim2real.vehicle")


def default_vehicle_id(namespace: str) -> str:
    """The id a robot has when its profile names none: its namespace without slashes (``/cf1`` -> ``cf1``)."""
    return namespace.strip("/") or "robot"


class VehicleFilter:
    """Accepts commands whose ``vehicle_id`` is this robot's; counts and logs (once per sender id) the rest."""

    def __init__(self, vehicle_id: str):
        self.vehicle_id = vehicle_id
        self.rejected = 0
        self._logged: set[str] = set()

    def accepts(self, msg) -> bool:
        vid = getattr(msg, "vehicle_id", None)
        if vid == self.vehicle_id:
            return True
        self.rejected += 1
        if vid not in self._logged:
            self._logged.add(vid)
            log.warning(
                "rejected a command for vehicle %r (this is %r): another vehicle's runtime reaches this one",
                vid,
                self.vehicle_id,
            )
        return False
