"""Vehicle ids: every command carries the id of the robot it is for, and a robot obeys only its own.

Two robots on one DDS domain with different namespaces never see each other's commands; this is the second
guard, for a robot that is reached anyway (a misconfigured namespace, a remapped topic, a replayed log)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sim2real.vehicle")


def autopilot_vehicle_cfg(control_hz: float = 100.0):
    """The task config of the simulated autopilots' vehicle (fake PX4, fake MAVLink autopilot, fake Crazyflie): the
    ideal vehicle (``sim.quadrotor.config.base_randomization``), not the default's imperfect one. Their on-board
    loops (rate loop, the auto-land controller) run once per control period here, at 100 Hz, where the real
    autopilots close attitude and rates at 500 Hz-1 kHz; at 100 Hz a 1 mm centre-of-mass offset tips them over
    (docs/quadrotor_model.md). A policy that drives the motors directly (``sim2real deploy --sil``) meets the
    imperfect vehicle."""
    from sim.quadrotor.config import QuadrotorTaskCfg, base_randomization

    return QuadrotorTaskCfg(control_hz=control_hz, randomization=base_randomization())


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


class LatestCommand:
    """The newest command for this robot (``vehicle``), stored from a DDS callback with its arrival time
    (CLOCK_MONOTONIC, s); a control loop :meth:`take` s it with its age, to apply it or to fall back when it is
    older than the robot's command timeout. Thread-safe."""

    def __init__(self, vehicle: VehicleFilter):
        self.vehicle = vehicle
        self._lock = threading.Lock()
        self._latest: tuple[Any, float] | None = None

    def on_message(self, msg: Any) -> None:
        """The subscription's callback: keeps ``msg`` if it is for this vehicle."""
        if self.vehicle.accepts(msg):
            with self._lock:
                self._latest = (msg, time.monotonic())

    def take(self, now: float) -> tuple[Any | None, float]:
        """(the newest command or None before the first, its age in s at ``now``, CLOCK_MONOTONIC)."""
        with self._lock:
            latest = self._latest
        return (None, 0.0) if latest is None else (latest[0], now - latest[1])

    def clear(self) -> None:
        """Forget the command (a robot restarted waits for a new one)."""
        with self._lock:
            self._latest = None


class PhysicsClock:
    """Physics time of a simulated robot, kept in pace with the clock, and the stamp of each state it produces.

    A SIL robot steps its simulator once per control period of its loop; on a loaded machine calls come late or a
    period is skipped. :meth:`advance` runs the steps that bring the physics up to ``now`` (monotonic s) back to back,
    on the held command, as a vehicle's motors hold their last command, for at most half a period of compute (and
    ``max_catch_up`` steps); what does not fit is given up (``dropped_s``, logged at most every 5 s): a simulator too
    slow for real time freezes for that long instead of falling ever further behind. :meth:`stamp_ns` is the physics
    time of the state after ``steps`` steps on the system clock, as a driver stamps a sample with its measurement
    time, not with when it was sent: within what was simulated, no state says more time passed than the vehicle
    flew."""

    def __init__(self, dt: float, max_catch_up: int = 10, budget_s: float | None = None):
        self.dt, self.max_catch_up = dt, max_catch_up
        self.budget_s = 0.5 * dt if budget_s is None else budget_s  # compute one call may spend catching up
        self.dropped_s = 0.0
        self._t0: float | None = None  # monotonic s of the first step
        self._t0_ns = 0  # the same instant on the system clock (ROS time), ns
        self._logged_at = -math.inf

    def due(self, now: float, steps: int) -> int:
        """Steps that bring the physics up to ``now`` (>= 1), ``steps`` having been run so far; beyond
        ``max_catch_up`` the rest is given up."""
        if self._t0 is None:
            self._t0, self._t0_ns = now, time.time_ns()
        due = int((now - self._t0) / self.dt + 1e-6) + 1 - steps
        if due > self.max_catch_up:
            self.give_up(due - self.max_catch_up, now)
            due = self.max_catch_up
        return max(1, due)

    def give_up(self, steps: int, now: float) -> None:
        """Move physics time's origin ``steps`` periods later: that much wall time passes without physics."""
        self._t0 += steps * self.dt  # type: ignore[operator]
        self._t0_ns += round(steps * self.dt * 1e9)
        self.dropped_s += steps * self.dt
        if now - self._logged_at >= 5.0:
            self._logged_at = now
            log.warning("simulator slower than real time: %.3f s of physics time given up so far", self.dropped_s)

    def advance(self, now: float, steps: int, step: Callable[[], None]) -> int:
        """Run ``step`` for the due steps (``steps`` run so far) within ``budget_s`` of compute; -> steps run."""
        due = self.due(now, steps)
        start = time.monotonic()
        for i in range(due):
            if i and time.monotonic() - start > self.budget_s:
                self.give_up(due - i, now)
                return i
            step()
        return due

    def stamp_ns(self, steps: int) -> int:
        """ROS time (ns) of the state after ``steps`` steps: the first state is stamped at the first call."""
        return self._t0_ns + round((steps - 1) * self.dt * 1e9)
