"""The quadrotor fallback's model of its motors (per-motor RPM commands), and the two things it is for.

The fallback controller (:mod:`deploy.safety.quadrotor_control`) is a PD loop on the nominal vehicle. A real one's
motors follow their commands with a lag (a Crazyflie's rise ~0.056 s, fall 0.15-0.25 s), and its loop sees the state
a period or more late; on vehicles of the default randomization with 2-3 periods of delay the plain PD loop tipped
over 10-40 % of them (benchmarks/fallback_vehicles.py, docs/safety.md "Fallback on imperfect vehicles"). So:

- the model: each motor's thrust [N] as a first-order lag (the body's ``motor_tau_up_s`` / ``motor_tau_down_s``) of
  the commands that actually left the safety layer, advanced each cycle;
- the lead: each motor is commanded f + gain (lag - mean lag), lag = f - f_model, so the motors' differences (the
  torques) are pushed ahead of their lag and the collective is not; scaled down, all motors alike, so that no motor
  leaves its thrust range (a saturated push costs collective thrust);
- the torque observer: J dw/dt from the measured body rates minus the modelled motors' torque at the same time is the
  torque the model does not explain (a centre of mass off the rotors' centre, unequal rotors); its first-order
  average is cancelled, starting from the trim the policy held (deploy/safety/trim.py). Unlike an integral of the
  attitude error it is zero on a vehicle the model explains, so it does not fight the position loop's manoeuvres;
- the prediction: a state measured a while ago (its stamp) is carried forward to now, J dw/dt = the modelled motors'
  torque of each instant minus the observer's compensation, before the PD loop reads it: the loop acts on where the
  vehicle is, not where it was (a delay of 3-5 control periods otherwise tips the low-inertia vehicles over).
"""

from __future__ import annotations

import math

import numpy as np


class MotorModel:
    """limits: QuadrotorLimits; mixer: the controller's QuadrotorMixer; torque_limit_nm: the compensation's clamp
    per axis [N m]. ``sent`` each cycle with the command that left, then ``led`` and ``compensation``."""

    #: how far back the modelled motor torque is kept [s]: a state this old still finds the torque it felt
    HISTORY_S = 0.3

    def __init__(self, limits, mixer, torque_limit_nm: float) -> None:
        body = limits.body
        self.limits = limits
        self.mixer = mixer
        self.inertia = np.asarray(body.inertia_kg_m2, dtype=float)
        self.min_thrust_n = body.kf_n_per_rpm2 * body.min_rpm**2
        self.max_thrust_n = body.kf_n_per_rpm2 * body.max_rpm**2
        self.torque_limit_nm = torque_limit_nm
        self.restart()

    def restart(self, now: float | None = None, rpm: np.ndarray | None = None) -> None:
        """Forget everything (a new fallback): the compensation starts again from the trim; with ``rpm`` (4,), the
        command that left last (the policy's), the motors are modelled at it from ``now`` [s]."""
        self.thrust_n: np.ndarray | None = None  # (4,) modelled motor thrusts now [N]; None: unknown
        self._last_s: float | None = None
        self._history: list[tuple[float, np.ndarray]] = []  # (time [s], modelled motor torque (3,) [N m])
        self.compensation_nm: np.ndarray | None = None
        self._observer_last: tuple[float, np.ndarray] | None = None
        if rpm is not None:
            self.sent(now, rpm)

    def sent(self, now: float, rpm: np.ndarray) -> None:
        """Advance the model to ``now`` [s] with the command (4,) RPM that left the runtime since the last call
        (after the safety layer's clamps); the first call assumes the motors are at it. Non-finite: unknown."""
        rpm = np.asarray(rpm, dtype=float)
        if self.limits.interface != "rpm" or rpm.shape != (4,) or not np.all(np.isfinite(rpm)):
            self.thrust_n, self._last_s, self._history = None, None, []
            return
        body = self.limits.body
        sent = body.kf_n_per_rpm2 * rpm * rpm
        if self.thrust_n is None or self._last_s is None:
            self.thrust_n = sent
        else:
            dt = min(max(now - self._last_s, 0.0), 0.1)
            tau = np.where(sent > self.thrust_n, body.motor_tau_up_s, body.motor_tau_down_s)
            self.thrust_n = self.thrust_n + (1.0 - np.exp(-dt / tau)) * (sent - self.thrust_n)
        self._last_s = now
        self._history = [h for h in self._history if now - self.HISTORY_S < h[0] < now]  # one entry per time
        self._history.append((now, self.mixer.wrench(self.thrust_n)[1:]))

    def led(self, thrusts_n: np.ndarray) -> np.ndarray:
        """The motor thrusts (4,) [N] to command for ``thrusts_n``: the lag's differences pushed ahead by
        ``gains.motor_lead_gain``, scaled down so no motor leaves [min, max] thrust. Unchanged while unknown."""
        gain = self.limits.gains.motor_lead_gain
        if gain <= 0 or self.thrust_n is None:
            return thrusts_n
        lag = thrusts_n - self.thrust_n
        push = gain * (lag - lag.mean())
        room = np.where(push > 0, self.max_thrust_n - thrusts_n, thrusts_n - self.min_thrust_n)
        need = np.abs(push)
        fits = np.divide(np.maximum(room, 0.0), need, out=np.ones(4), where=need > 0)
        return thrusts_n + min(1.0, float(fits.min())) * push

    def compensation(
        self, now: float | None, rates_rad_s: np.ndarray, stamp_s: float | None, trim_nm: np.ndarray
    ) -> np.ndarray:
        """The torque (3,) [N m] that cancels what the model does not explain: ``trim_nm`` at the fallback's start,
        then, for each new sample (measurement time ``stamp_s``, else ``now``), a first-order estimate
        (``gains.torque_observer_s``) of -(J dw/dt - tau_motors) for roll and pitch, tau_motors the modelled motors'
        torque at the middle of the interval between this sample and the last (a state a period old is compared with
        the torque of its time); clamped per axis to ``torque_limit_nm``. rates_rad_s: (3,) body."""
        if self.compensation_nm is None:
            self.compensation_nm = np.array(trim_nm, dtype=float)
        stamp = now if stamp_s is None else stamp_s
        if stamp is None or not self._history or self.limits.gains.torque_observer_s <= 0:
            return self.compensation_nm
        w = np.asarray(rates_rad_s, dtype=float)
        last, self._observer_last = self._observer_last, (stamp, w)
        if last is None:
            return self.compensation_nm
        dt = stamp - last[0]
        if not 0.0 < dt <= 0.1:  # the same sample again (keep the older one), or a gap: nothing to learn from
            self._observer_last = last if dt == 0.0 else self._observer_last
            return self.compensation_nm
        times, torques = self._history_arrays()
        middle = stamp - 0.5 * dt
        motors = np.array([np.interp(middle, times, torques[:, k]) for k in range(2)])
        unexplained = self.inertia[:2] * (w[:2] - last[1][:2]) / dt - motors
        alpha = min(dt / self.limits.gains.torque_observer_s, 1.0)
        self.compensation_nm[:2] += alpha * (-unexplained - self.compensation_nm[:2])
        np.clip(self.compensation_nm, -self.torque_limit_nm, self.torque_limit_nm, out=self.compensation_nm)
        return self.compensation_nm

    def _history_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The modelled motor torques' history: times (K,) [s] and torques (K, 3) [N m]."""
        return np.array([h[0] for h in self._history]), np.array([h[1] for h in self._history])

    #: integration step of :meth:`predicted` [s]
    PREDICTION_STEP_S = 0.0025

    def predicted(
        self, now: float | None, stamp_s: float | None, quat_wxyz: np.ndarray, rates_rad_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The attitude (4,) wxyz and body rates (3,) at ``now`` [s] of a state measured at ``stamp_s``, integrated
        with J dw/dt = the modelled motors' torque at each instant (interpolated from the commands' history) minus
        :attr:`compensation_nm` (gyroscopic terms neglected). The state unchanged without a model, a stamp, or for
        an age outside (0, ``gains.state_prediction_max_s``]."""
        age = None if now is None or stamp_s is None else now - stamp_s
        if age is None or not 0.0 < age <= self.limits.gains.state_prediction_max_s or not self._history:
            return quat_wxyz, rates_rad_s
        times, torques = self._history_arrays()
        rest = -self.compensation_nm if self.compensation_nm is not None else np.zeros(3)
        q = np.asarray(quat_wxyz, dtype=float)
        w = np.asarray(rates_rad_s, dtype=float)
        steps = max(1, math.ceil(age / self.PREDICTION_STEP_S))
        dt = age / steps
        middles = stamp_s + (np.arange(steps) + 0.5) * dt
        accs = (np.stack([np.interp(middles, times, torques[:, a]) for a in range(3)], axis=1) + rest) / self.inertia
        for acc in accs:
            q = _rotate(q, (w + 0.5 * dt * acc) * dt)
            w = w + dt * acc
        return q / np.linalg.norm(q), w


def _rotate(q: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """The quaternion q (wxyz) turned by the body-frame rotation vector ``angle`` (3,) [rad]."""
    theta = float(np.linalg.norm(angle))
    if theta < 1e-12:
        return q
    half = 0.5 * theta
    dw, (dx, dy, dz) = np.cos(half), np.sin(half) * angle / theta
    w, x, y, z = q
    return np.array(
        [
            w * dw - x * dx - y * dy - z * dz,
            w * dx + x * dw + y * dz - z * dy,
            w * dy - x * dz + y * dw + z * dx,
            w * dz + x * dy - y * dx + z * dw,
        ]
    )
