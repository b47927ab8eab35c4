"""The torque a quadrotor's policy holds in steady hover, kept for the fallback controller (per-motor RPM only).

A real vehicle is never the nominal one: a centre of mass 1 mm off the rotor plane's centre, or one rotor 5 %
weaker, is a constant torque the policy cancels with a steady difference between its motor speeds. The fallback
controller (:mod:`deploy.safety.quadrotor_control`) is a PD loop on the nominal vehicle: without that difference it
holds a tilt of tau_bias / (J w_a^2) (14 deg for 1 mm at w_a = 8 rad/s on a Crazyflie) and drifts sideways while it
lands. So while the policy flies, the safety layer averages the body torque of the commands that left it, on the
nominal mixer (f = kf rpm^2), over the cycles in which the vehicle was in steady flight: off the floor, nearly level,
slowly turning. On entering FALLBACK the controller adds that average to its own torque: the same motor-speed
difference in the nominal mapping the policy's commands were read with.

Why the policy's torque is trusted here: it is only taken while the vehicle stayed level and still, which a policy
that commands a constant wrong torque cannot do for long (1 mm of CoM offset on a Crazyflie turns it at 16 rad/s^2
unopposed), and it is clamped to ``trim_max_fraction`` of weight x lever arm
(``QuadrotorFallback``). Thrust + body-rate (ctbr) vehicles get no trim: their autopilot's rate loop holds it.
"""

from __future__ import annotations

import math

import numpy as np

from deploy.safety.checks import vector
from deploy.safety.checks_robot import tilt_rad
from deploy.safety.quadrotor_control import GRAVITY_M_S2, QuadrotorMixer


class TrimEstimator:
    """Exponential average of the commanded body torque [N m] (3,) over steady-flight cycles.

    limits: QuadrotorLimits. ``observe`` each cycle with the command that left the runtime; ``torque_nm`` on
    entering FALLBACK."""

    #: steady flight: tilt under this [rad], body rates under this [rad/s], this far above the floor [m]. Not wider:
    #: in a wobbling climb (10-19 deg, 1-5 rad/s, measured in SIL) the commanded torque's mean is not the trim, since
    #: motors spin up faster than they spin down (a 25 deg / 5 rad/s gate took 10x the hover's trim there).
    MAX_TILT_RAD = math.radians(10.0)
    MAX_RATE_RAD_S = 1.0
    MIN_HEIGHT_M = 0.1

    def __init__(self, limits) -> None:
        self.limits = limits
        body, fb = limits.body, limits.fallback
        self.enabled = limits.interface == "rpm" and fb.trim_time_constant_s > 0
        self.mixer = QuadrotorMixer(body.arm_length_m, body.km_m)
        lever = float(self.mixer.motor_xy_m[0, 0])  # arm / sqrt(2): a motor's distance from each body axis
        self.max_nm = fb.trim_max_fraction * body.mass_kg * GRAVITY_M_S2 * lever
        self.average_nm = np.zeros(3)
        self.weight_s = 0.0  # seconds of steady flight averaged so far (saturates the first-cycle bias)
        self._last_s: float | None = None

    def reset(self) -> None:
        """Forget the average (on arming: a new flight may carry another battery or payload)."""
        self.average_nm = np.zeros(3)
        self.weight_s = 0.0
        self._last_s = None

    def steady(self, state) -> bool:
        """The sample shows steady flight: finite, off the floor, tilt and body rates small."""
        p, w = vector(state.position_m, 3), vector(state.body_rates_rad_s, 3)
        tilt = tilt_rad(state.quat_wxyz)
        if p is None or w is None or tilt is None or not (np.all(np.isfinite(p)) and np.all(np.isfinite(w))):
            return False
        height = p[2] - self.limits.fallback.ground_z_m
        return tilt < self.MAX_TILT_RAD and float(np.abs(w).max()) < self.MAX_RATE_RAD_S and height > self.MIN_HEIGHT_M

    def observe(self, now: float, state, fresh: bool, values: np.ndarray) -> None:
        """One cycle of ACTIVE flight: the state the command was computed on and the command (4,) RPM that left."""
        last, self._last_s = self._last_s, now
        if not self.enabled or not fresh or state is None or last is None or not self.steady(state):
            return
        rpm = np.asarray(values, dtype=float)
        if rpm.shape != (4,) or not np.all(np.isfinite(rpm)):
            return
        dt = min(max(now - last, 0.0), 0.1)
        torque = self.mixer.wrench(self.limits.body.kf_n_per_rpm2 * rpm * rpm)[1:]
        self.weight_s += dt
        # the average of the first weight_s seconds, then an exponential one with the profile's time constant
        alpha = dt / min(self.weight_s, self.limits.fallback.trim_time_constant_s) if self.weight_s > 0 else 0.0
        self.average_nm += alpha * (torque - self.average_nm)

    def torque_nm(self) -> np.ndarray:
        """The trim (3,) [N m, body roll, pitch, yaw], each axis clamped to +-max_nm; zeros when disabled. Faded in
        over the first time constant of steady flight (a few noisy samples after take-off are not a trim)."""
        if not self.enabled:
            return np.zeros(3)
        fade = min(self.weight_s / self.limits.fallback.trim_time_constant_s, 1.0)
        return np.clip(fade * self.average_nm, -self.max_nm, self.max_nm)
