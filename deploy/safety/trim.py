"""What the policy's commands show about the real vehicle, kept for the fallback controller: the torque it holds in
steady flight (per-motor RPM only) and how much collective thrust it takes to carry the vehicle (both interfaces).

A real vehicle is never the nominal one: a centre of mass 1 mm off the rotor plane's centre, or one rotor 5 %
weaker, is a constant torque the policy cancels with a steady difference between its motor speeds. The fallback
controller (:mod:`deploy.safety.quadrotor_control`) is a PD loop on the nominal vehicle: without that difference it
holds a tilt of tau_bias / (J w_a^2) (14 deg for 1 mm at w_a = 8 rad/s on a Crazyflie) and drifts sideways while it
lands. So while the policy flies, the safety layer averages the body torque of the commands that left it, on the
nominal mixer (f = kf rpm^2), over the cycles in which the vehicle was in steady flight: off the floor, nearly level,
slowly turning. On entering FALLBACK the controller adds that average to its own torque: the same motor-speed
difference in the nominal mapping the policy's commands were read with.

Likewise a vehicle heavier than its profile (a battery, a deck, a payload) or with weaker rotors needs more than
the nominal thrust. The fallback's thrust is m_nominal (g + a) on the nominal mapping, so such a vehicle sinks until
the slow altitude integral has made up the difference: on the rigid-body model, 0.1-0.4 m in the first second at
1.1-1.33x the weight (docs/safety.md). The layer therefore also averages the ratio of the thrust the policy
commanded (nominal mapping, its vertical part) to the thrust the nominal vehicle would have needed for the vertical
acceleration that was measured: m_nominal (g + dvz/dt). The fallback multiplies its collective thrust by that ratio.

Why the policy's commands are trusted here: the torque is only taken while the vehicle stayed level and still,
which a policy that commands a constant wrong torque cannot do for long (1 mm of CoM offset on a Crazyflie turns it
at 16 rad/s^2 unopposed), and it is clamped to ``trim_max_fraction`` of weight x lever arm. The thrust ratio is
checked against the measured acceleration itself, so a policy commanding too much thrust makes the vehicle climb
and the ratio stays the vehicle's; it is clamped to ``thrust_scale_range`` (``QuadrotorFallback``). Thrust +
body-rate (ctbr) vehicles get no torque trim (their autopilot's rate loop holds it), but the thrust ratio, since
the autopilot's thrust mapping is as nominal as ours.
"""

from __future__ import annotations

import math

import numpy as np

from deploy.safety.checks import vector
from deploy.safety.checks_robot import tilt_rad
from deploy.safety.quadrotor_control import GRAVITY_M_S2, QuadrotorMixer, trim_limit_nm


class TrimEstimator:
    """Exponential averages over ACTIVE cycles: the commanded body torque [N m] (3,) in steady flight, and the
    commanded vertical thrust against the nominal vehicle's need in any near-level flight.

    limits: QuadrotorLimits. ``observe`` each cycle with the command that left the runtime; ``torque_nm`` and
    ``thrust_scale`` on entering FALLBACK."""

    #: steady flight: tilt under this [rad], body rates under this [rad/s], this far above the floor [m]. Not wider:
    #: in a wobbling climb (10-19 deg, 1-5 rad/s, measured in SIL) the commanded torque's mean is not the trim, since
    #: motors spin up faster than they spin down (a 25 deg / 5 rad/s gate took 10x the hover's trim there).
    MAX_TILT_RAD = math.radians(10.0)
    MAX_RATE_RAD_S = 1.0
    MIN_HEIGHT_M = 0.1
    #: the thrust ratio's gate: wider, so a climb right after take-off counts (the fault may come before any steady
    #: hover); the tilt is accounted for (the thrust's vertical part), and the acceleration is measured
    THRUST_MAX_TILT_RAD = math.radians(30.0)
    THRUST_MAX_RATE_RAD_S = 6.0

    def __init__(self, limits) -> None:
        self.limits = limits
        fb = limits.fallback
        self.rpm = limits.interface == "rpm"
        self.enabled = self.rpm and fb.trim_time_constant_s > 0
        self.thrust_enabled = fb.trim_time_constant_s > 0 and tuple(fb.thrust_scale_range) != (1.0, 1.0)
        self.mixer = QuadrotorMixer(limits.body.arm_length_m, limits.body.km_m)
        self.max_nm = trim_limit_nm(limits)
        self.reset()

    def reset(self) -> None:
        """Forget the averages (on arming: a new flight may carry another battery or payload)."""
        self.average_nm = np.zeros(3)
        self.weight_s = 0.0  # seconds of steady flight averaged so far (saturates the first-cycle bias)
        self.thrust_n = 0.0  # average commanded vertical thrust, nominal mapping [N]
        self.need_n = 0.0  # average m_nominal (g + dvz/dt) [N]
        self.thrust_weight_s = 0.0
        self._last_s: float | None = None
        self._last_vz: float | None = None

    def _flight(self, state) -> tuple[float, float, float, float] | None:
        """(height above the floor [m], tilt [rad], largest body rate [rad/s], vz [m/s]) of a finite sample."""
        p, v, w = vector(state.position_m, 3), vector(state.velocity_m_s, 3), vector(state.body_rates_rad_s, 3)
        tilt = tilt_rad(state.quat_wxyz)
        if p is None or v is None or w is None or tilt is None:
            return None
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            return None
        return p[2] - self.limits.fallback.ground_z_m, tilt, float(np.abs(w).max()), float(v[2])

    def observe(self, now: float, state, fresh: bool, values: np.ndarray) -> None:
        """One cycle of ACTIVE flight: the state the command was computed on and the command (4,) that left (RPM,
        or ctbr thrust [N] and rates)."""
        last, self._last_s = self._last_s, now
        last_vz, self._last_vz = self._last_vz, None
        command = np.asarray(values, dtype=float)
        if last is None or not fresh or state is None or command.shape != (4,) or not np.all(np.isfinite(command)):
            return
        flight = self._flight(state)
        if flight is None:
            return
        height, tilt, rate, vz = flight
        if height <= self.MIN_HEIGHT_M:  # on or near the floor: its contact carries the vehicle, not the thrust
            return
        dt = min(max(now - last, 0.0), 0.1)
        tau = self.limits.fallback.trim_time_constant_s
        thrusts = self.limits.body.kf_n_per_rpm2 * command * command if self.rpm else None
        if self.enabled and tilt < self.MAX_TILT_RAD and rate < self.MAX_RATE_RAD_S:  # steady flight
            self.weight_s += dt
            # the average of the first weight_s seconds, then an exponential one with the profile's time constant
            alpha = dt / min(self.weight_s, tau) if self.weight_s > 0 else 0.0
            self.average_nm += alpha * (self.mixer.wrench(thrusts)[1:] - self.average_nm)
        if not (self.thrust_enabled and tilt < self.THRUST_MAX_TILT_RAD and rate < self.THRUST_MAX_RATE_RAD_S):
            return
        self._last_vz = vz
        if last_vz is None or dt <= 0:  # the acceleration needs the last cycle's velocity
            return
        # dvz / dt per cycle: summed with the averages' weights it telescopes to the velocity's change over the
        # window, so a repeated sample (dvz = 0) is made up by the next fresh one
        need = self.limits.body.mass_kg * (GRAVITY_M_S2 + (vz - last_vz) / dt)
        vertical = (float(thrusts.sum()) if self.rpm else float(command[0])) * math.cos(tilt)
        self.thrust_weight_s += dt
        alpha = dt / min(self.thrust_weight_s, tau)
        self.thrust_n += alpha * (vertical - self.thrust_n)
        self.need_n += alpha * (need - self.need_n)

    def torque_nm(self) -> np.ndarray:
        """The trim (3,) [N m, body roll, pitch, yaw], each axis clamped to +-max_nm; zeros when disabled. Faded in
        over the first time constant of steady flight (a few noisy samples after take-off are not a trim)."""
        if not self.enabled:
            return np.zeros(3)
        fade = min(self.weight_s / self.limits.fallback.trim_time_constant_s, 1.0)
        return np.clip(fade * self.average_nm, -self.max_nm, self.max_nm)

    def thrust_scale(self) -> float:
        """The fallback's collective thrust factor: commanded vertical thrust / the nominal vehicle's need, faded in
        from 1 over the first time constant of flight in the gate, clamped to ``thrust_scale_range``; 1 when
        disabled or before any flight (or if the measured need was not at least half the weight: a fall)."""
        low, high = self.limits.fallback.thrust_scale_range
        weight = self.limits.body.mass_kg * GRAVITY_M_S2
        if not self.thrust_enabled or self.thrust_weight_s <= 0 or self.need_n < 0.5 * weight:
            return 1.0
        fade = min(self.thrust_weight_s / self.limits.fallback.trim_time_constant_s, 1.0)
        return float(np.clip(1.0 + fade * (self.thrust_n / self.need_n - 1.0), low, high))
