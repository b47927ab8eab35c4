"""Logged flight -> the arrays identification and re-simulation work on: one row per control cycle.

States are taken at the command times (interpolated when the state stream runs at another rate), so row k
holds the state the controller saw and the command it sent; the step k -> k+1 is one control period. Steps are
usable when both ends lie in an ACTIVE period of the safety state machine (the whole log when it records no
transitions), the period is regular (within 25 % of the median), the motors are not idling on the ground, and the
vehicle is more than ``near_ground_m`` above the ground. The ground is where the vehicle sat with idling motors (the
median height of those rows; a log without idle rows has no ground and no such exclusion). On the ground the floor
carries the weight: a spinning vehicle there (the runtime spools the motors down after touchdown; a policy pressing
it down) would read as a heavier one, and just above it ground effect adds thrust the model does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.errors import CalibrationError
from deploy.replay.flight import Flight


@dataclass
class SysIdData:
    """(K, ...) rows at command times: t (s), position/velocity (world), quaternion (w, x, y, z),
    angular_velocity (body), command (K, 4) RPM; ``step_ok`` (K-1,) marks usable steps k -> k+1."""

    source: str
    t: np.ndarray
    dt: float
    position: np.ndarray
    velocity: np.ndarray
    quaternion: np.ndarray
    angular_velocity: np.ndarray
    command: np.ndarray
    step_ok: np.ndarray

    @property
    def usable_s(self) -> float:
        return float(self.step_ok.sum() * self.dt)


def from_flight(
    flight: Flight,
    hover_rpm: float,
    settle_s: float = 0.3,
    min_usable_s: float = 2.0,
    max_rpm: float | None = None,
    near_ground_m: float = 0.1,
) -> SysIdData:
    """Build the per-cycle arrays. ``hover_rpm`` (nominal) tells idling on the ground (< 30 % of it) from flight;
    rows within ``near_ground_m`` of the ground (the height of the idle rows) are not used."""
    if len(flight.command_t) < 10 or len(flight.state_t) < 10:
        raise CalibrationError(
            f"{flight.path}: identification needs the robot state and the motor commands; found "
            f"{len(flight.state_t)} states and {len(flight.command_t)} commands"
        )
    if flight.command.shape[1] != 4:
        raise CalibrationError(
            f"{flight.path}: expected 4 rotor commands per message (quadrotor), found {flight.command.shape[1]}; "
            "map the motor topic with `order:` / `field:` in the topic map"
        )
    lo, hi = max(flight.state_t[0], flight.command_t[0]), flight.state_t[-1]
    keep = (flight.command_t >= lo) & (flight.command_t <= hi)
    t, command = flight.command_t[keep], flight.command[keep]
    if max_rpm is not None:
        command = np.clip(command, 0.0, max_rpm)
    state = flight.state_at(t)
    dts = np.diff(t)
    dt = float(np.median(dts))
    ok = np.abs(dts - dt) <= 0.25 * dt
    active = _active_mask(flight, t, settle_s)
    flying = command.mean(axis=1) > 0.3 * hover_rpm
    height = state["position"][:, 2]
    if (~flying).any() and np.isfinite(height[~flying]).any():
        flying &= height - np.nanmedian(height[~flying]) > near_ground_m  # on (or just above) the ground: not used
    ok &= active[:-1] & active[1:] & flying[:-1] & flying[1:]
    data = SysIdData(
        str(flight.path),
        t,
        dt,
        state["position"],
        state["velocity"],
        state["quaternion"],
        state["angular_velocity"],
        command,
        ok,
    )
    if data.usable_s < min_usable_s:
        raise CalibrationError(
            f"{flight.path}: only {data.usable_s:.1f} s of usable flight (ACTIVE, regular period, motors spinning, "
            f"> {near_ground_m:g} m above the ground) "
            f"out of {t[-1] - t[0]:.1f} s; identification needs at least {min_usable_s} s, ideally a minute of "
            "varied flight (setpoint steps, turns)"
        )
    return data


def _active_mask(flight: Flight, t: np.ndarray, settle_s: float) -> np.ndarray:
    if not flight.transitions:
        return t >= t[0] + settle_s
    mask = np.zeros(len(t), dtype=bool)
    start = None
    for tr in sorted(flight.transitions, key=lambda x: x.t):
        if tr.to_state == "ACTIVE" and start is None:
            start = tr.t
        elif tr.to_state != "ACTIVE" and start is not None:
            mask |= (t >= start + settle_s) & (t < tr.t)
            start = None
    if start is not None:
        mask |= t >= start + settle_s
    return mask
