"""State the runtime can trust: each new state sample is gated against the prediction from the previous
accepted one, and inconsistent samples (or integrity faults reported from outside) mark the state *suspect*.

Parts of a sample, each gated against its own anchor (the part of the last accepted sample that carried it
finite), dt = stamp difference in seconds (a part's own stamp where the sample has one: ``joint_stamp_s``,
``attitude_stamp_s``):

    position  (position_m, velocity_m_s), quadrotor:
              |p_new - (p_old + (v_old + v_new) / 2 dt)| <= position_jump_m + max_accel_m_s2 dt^2 / 4
              |v_new - v_old - f|                        <= velocity_jump_m_s + max_accel_m_s2 dt
              f: what the floor explains of a touchdown (new height within touchdown.height_m of
              fallback.ground_z_m, descending before): the vertical speed stopped or reversed (at most as fast as it
              came down), the horizontal speed cut by any share; the position limit then adds |f| dt / 2
    attitude  (quat_wxyz, body_rates_rad_s), quadrotor and legged:
              angle(q_new, q_old * exp((w_old + w_new) / 2 dt)) <= attitude_jump_rad + max_angular_accel dt^2 / 4
    joints    (joint_pos_rad, joint_vel_rad_s), arm and legged, per joint:
              |q_new - (q_old + (qd_old + qd_new) / 2 dt)| <= position_jump_rad + max_accel_rad_s2 dt^2 / 4
                                                               + |qd_new - qd_old| dt / 2

A trapezoid step of a motion whose acceleration stays within the bound errs by at most bound * dt^2 / 4, so
the limits widen with the gap since the anchor. A joint's velocity may also change abruptly between two samples
(a foot impact, a leg reversing its swing: 20 rad/s within one 20 ms period on a walking Go2): if it changes
monotonically from qd_old to qd_new the joint moves between qd_old dt and qd_new dt, at most |qd_new - qd_old| dt / 2
from the trapezoid, so the joint limit adds that term (both velocities are measured and bounded by the joint speed
limit check, so a sample cannot claim an arbitrary jump). Once the state is suspect in flight the limits stop
widening beyond a gap of max_state_age_s: a fake track that outlives the truth is never accepted by waiting (the fallback goes
blind instead of levelling on a faked attitude). The floors absorb sensor noise (values and sources in deploy/safety/limits.py). A part the sample does not carry,
or carries non-finite, is not gated (the ``finite`` check reports it) and does not move its anchor.

Re-anchoring (decided here, documented in docs/safety.md): in flight (ARMING, ACTIVE, FALLBACK) the gate never
follows a new track: every sample is compared with the last *accepted* one, so when a spoofer interleaves
fakes with the truth, the truth keeps being accepted and the fakes are rejected and counted. On the ground
(DISARMED, ESTOP: motors off) ``consistency_reanchor_samples`` consecutive rejected samples that agree with each
other re-anchor the gate (a motion-capture re-zero), and the state stays suspect until it has been clean for
``consistency_recover_s``. A suspect state is never trusted again in flight.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from deploy.observation import quat_multiply
from deploy.safety.checks import Severity, Verdict, ok, unit_quaternion, vector
from deploy.safety.inputs import SafetyInputs, StateSample
from deploy.safety.limits import CommonLimits, RobotClass, SafetyProfile

logger = logging.getLogger(__name__)


def quat_exp(rotvec_rad: np.ndarray) -> np.ndarray:
    """Unit quaternion (4,) of the rotation vector (3,) [rad] (axis * angle)."""
    angle = float(np.linalg.norm(rotvec_rad))
    if angle < 1e-12:
        return np.array([1.0, *(0.5 * rotvec_rad)])
    return np.array([math.cos(angle / 2), *(math.sin(angle / 2) * rotvec_rad / angle)])


def quat_angle_rad(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between two unit quaternions [rad] in [0, pi] (q and -q are the same)."""
    return 2.0 * math.acos(min(1.0, abs(float(a @ b))))


def predicted_attitude(q_old: np.ndarray, rates_old: np.ndarray, rates_new: np.ndarray, dt: float) -> np.ndarray:
    """q_old (4,) integrated over dt [s] with the mean body rate of both gyro readings (3,) [rad/s]."""
    q = quat_multiply(q_old, quat_exp(0.5 * (rates_old + rates_new) * dt))
    return q / np.linalg.norm(q)


@dataclass(frozen=True)
class GateResult:
    """ok: consistent with the anchors. reason: what jumped, with numbers. velocity_bad: the velocity itself
    jumped (so the velocity is suspect too, not only the position)."""

    ok: bool
    reason: str = ""
    velocity_bad: bool = False


OK = GateResult(True)


def _finite(value: object, size: int) -> np.ndarray | None:
    arr = vector(value, size)
    return arr if arr is not None and np.all(np.isfinite(arr)) else None


@dataclass(frozen=True)
class _Anchor:
    stamp_s: float
    value: np.ndarray  # position (3,), unit quaternion (4,) or joint positions (J,)
    rate: np.ndarray  # velocity (3,), body rates (3,) or joint velocities (J,)


class ConsistencyGate:
    """Compares a sample with the last accepted one, part by part. ``check`` is pure; ``accept`` moves the
    anchors; ``reject`` tracks whether the rejected samples form a consistent track of their own."""

    def __init__(self, profile: SafetyProfile) -> None:
        self.profile = profile
        rc = profile.robot_class
        self.parts = {
            RobotClass.QUADROTOR: ("position", "attitude"),
            RobotClass.LEGGED: ("attitude", "joints"),
            RobotClass.ARM: ("joints",),
        }[rc]
        self.anchors: dict[str, _Anchor] = {}
        self.candidate: dict[str, _Anchor] = {}
        self.candidate_count = 0

    def _part(self, name: str, sample: StateSample) -> _Anchor | None:
        stamp = sample.stamp_s
        if name == "position":
            p, v = _finite(sample.position_m, 3), _finite(sample.velocity_m_s, 3)
        elif name == "attitude":
            p, v = unit_quaternion(sample.quat_wxyz), _finite(sample.body_rates_rad_s, 3)
            stamp = sample.attitude_stamp_s if sample.attitude_stamp_s is not None else stamp
        else:
            n = len(self.profile.joints.names)
            p, v = _finite(sample.joint_pos_rad, n), _finite(sample.joint_vel_rad_s, n)
            stamp = sample.joint_stamp_s if sample.joint_stamp_s is not None else stamp
        return None if p is None or v is None else _Anchor(float(stamp), p, v)

    def anchors_of(self, sample: StateSample) -> dict[str, _Anchor]:
        parts = {name: self._part(name, sample) for name in self.parts}
        return {name: a for name, a in parts.items() if a is not None}

    def compare(self, anchors: dict[str, _Anchor], sample: StateSample, max_gap_s: float = math.inf) -> GateResult:
        """Gate ``sample`` against ``anchors``; the first inconsistent part decides the reason. max_gap_s caps
        the dt that widens the limits (the prediction itself uses the true dt)."""
        with np.errstate(all="ignore"):
            for name, new in self.anchors_of(sample).items():
                old = anchors.get(name)
                if old is None or not new.stamp_s > old.stamp_s:
                    continue
                dt = new.stamp_s - old.stamp_s
                result = getattr(self, f"_gate_{name}")(old, new, dt, min(dt, max_gap_s))
                if not result.ok:
                    return result
        return OK

    def _floor_share(self, old: _Anchor, new: _Anchor) -> np.ndarray:
        """The part of the velocity change (3,) that the floor explains when the new sample is on it: a descending
        vehicle's vertical speed stopped (or reversed, never faster than it came down) and any share of its
        horizontal speed taken by friction. Zero above the floor or when it was not descending."""
        q = self.profile.quadrotor
        v_old, v_new = old.rate, new.rate
        if not (new.value[2] - q.fallback.ground_z_m <= q.touchdown.height_m and v_old[2] < 0.0):
            return np.zeros(3)
        share = np.zeros(3)
        share[2] = min(max(v_new[2] - v_old[2], 0.0), -2.0 * v_old[2])
        horizontal = float(v_old[:2] @ v_old[:2])
        if horizontal > 0.0:  # friction scales the old horizontal velocity by s in [0, 1]
            s = min(max(float(v_new[:2] @ v_old[:2]) / horizontal, 0.0), 1.0)
            share[:2] = (s - 1.0) * v_old[:2]
        return share

    def _gate_position(self, old: _Anchor, new: _Anchor, dt: float, grow: float) -> GateResult:
        lim = self.profile.quadrotor.consistency
        floor = self._floor_share(old, new)  # a touchdown: the floor stops the vehicle within one sample
        dv = float(np.linalg.norm(new.rate - old.rate - floor))
        dv_max = lim.velocity_jump_m_s + lim.max_accel_m_s2 * grow
        if not dv <= dv_max:
            return GateResult(False, f"velocity jumped {dv:.3g} m/s in {dt:.3f} s (> {dv_max:.3g} m/s)", True)
        predicted = old.value + 0.5 * (old.rate + new.rate) * dt
        err = float(np.linalg.norm(new.value - predicted))
        # + |floor share| dt / 2: the velocity changed abruptly and monotonically somewhere in the period (as a joint's)
        err_max = (
            lim.position_jump_m + lim.max_accel_m_s2 * grow * grow / 4.0 + 0.5 * float(np.linalg.norm(floor)) * grow
        )
        if not err <= err_max:
            return GateResult(
                False, f"position {err:.3g} m off the prediction from velocity over {dt:.3f} s (> {err_max:.3g} m)"
            )
        return OK

    def _gate_attitude(self, old: _Anchor, new: _Anchor, dt: float, grow: float) -> GateResult:
        common = self.profile.common
        angle = quat_angle_rad(predicted_attitude(old.value, old.rate, new.rate, dt), new.value)
        limit = common.attitude_jump_rad + common.max_angular_accel_rad_s2 * grow * grow / 4.0
        if not angle <= limit:
            return GateResult(
                False,
                f"attitude {math.degrees(angle):.3g} deg off the gyro prediction over {dt:.3f} s "
                f"(> {math.degrees(limit):.3g} deg)",
            )
        return OK

    def _gate_joints(self, old: _Anchor, new: _Anchor, dt: float, grow: float) -> GateResult:
        j = self.profile.joints
        err = np.abs(new.value - (old.value + 0.5 * (old.rate + new.rate) * dt))
        # + |qd_new - qd_old| dt / 2: a velocity that changed abruptly between the samples (a foot striking the
        # ground), monotonically, moves the joint anywhere between qd_old dt and qd_new dt, at most this far from the
        # trapezoid. The reported velocities bound it, and the joint speed limit bounds those.
        limit = np.asarray(j.position_jump_rad) + j.max_accel_rad_s2 * grow * grow / 4.0
        limit = limit + 0.5 * np.abs(new.rate - old.rate) * grow
        bad = np.flatnonzero(~(err <= limit))
        if bad.size:
            i = bad[0]
            return GateResult(
                False,
                f"{j.names[i]} {err[i]:.3g} rad off the prediction from its velocity over {dt:.3f} s "
                f"(> {limit[i]:.3g} rad)",
            )
        return OK

    def check(self, sample: StateSample, max_gap_s: float = math.inf) -> GateResult:
        return self.compare(self.anchors, sample, max_gap_s)

    def accept(self, sample: StateSample) -> None:
        self.anchors.update(self.anchors_of(sample))
        self.candidate, self.candidate_count = {}, 0

    def reject(self, sample: StateSample) -> int:
        """Record a rejected sample; returns how many consecutive rejected samples agree with each other."""
        agrees = bool(self.candidate) and self.compare(self.candidate, sample).ok
        self.candidate_count = self.candidate_count + 1 if agrees else 1
        self.candidate = {**self.candidate, **self.anchors_of(sample)} if agrees else self.anchors_of(sample)
        return self.candidate_count


@dataclass(frozen=True)
class InputFault:
    """An integrity fault reported from outside the layer (e.g. a second writer on a state topic).
    position_suspect / velocity_suspect: the samples the runtime passes may come from that writer."""

    name: str
    reason: str
    since_s: float
    position_suspect: bool = True
    velocity_suspect: bool = True


@dataclass(frozen=True)
class TrustStatus:
    """What the checks see of the trust bookkeeping. Empty strings: trusted."""

    gate_suspect: str = ""  # why the gate marked the state suspect
    velocity_suspect: str = ""
    fault_suspect: str = ""  # a (possibly cleared) input fault marked the position suspect; latched in flight
    faults: tuple[InputFault, ...] = ()


class StateTrust:
    """Bookkeeping of rejections and input faults -> whether position and velocity may steer the robot."""

    def __init__(self, common: CommonLimits) -> None:
        self.common = common
        self.rejections: deque[float] = deque()
        self.gate_suspect = ""
        self.velocity_suspect = ""
        self.fault_suspect = ""
        self.fault_velocity_suspect = ""
        self.faults: dict[str, InputFault] = {}
        self.last_doubt_s: float | None = None
        self.last_trusted: StateSample | None = None

    @property
    def position_trusted(self) -> bool:
        return not (self.gate_suspect or self.fault_suspect)

    @property
    def velocity_trusted(self) -> bool:
        return not (self.velocity_suspect or self.fault_velocity_suspect)

    def status(self) -> TrustStatus:
        return TrustStatus(self.gate_suspect, self.velocity_suspect, self.fault_suspect, tuple(self.faults.values()))

    def _doubt(self, now: float) -> None:
        if math.isfinite(now):
            self.last_doubt_s = now if self.last_doubt_s is None else max(self.last_doubt_s, now)

    def rejected(self, now: float, result: GateResult, in_flight: bool) -> None:
        self._doubt(now)
        self.rejections.append(now)
        while self.rejections and not now - self.rejections[0] <= self.common.consistency_window_s:
            self.rejections.popleft()
        n = len(self.rejections)
        if in_flight or n >= self.common.consistency_max_rejections:
            if not self.gate_suspect:
                where = "in flight" if in_flight else f"{n} within {self.common.consistency_window_s} s"
                self.gate_suspect = f"inconsistent state sample ({where}): {result.reason}"
                logger.warning("state marked suspect: %s", self.gate_suspect)
            if result.velocity_bad and not self.velocity_suspect:
                self.velocity_suspect = self.gate_suspect

    def accepted(self, sample: StateSample) -> None:
        if self.position_trusted:
            self.last_trusted = sample

    def add_fault(self, fault: InputFault) -> None:
        self.faults[fault.name] = fault
        self._doubt(fault.since_s)
        if fault.position_suspect and not self.fault_suspect:
            self.fault_suspect = f"input fault {fault.name}: {fault.reason}"
            logger.warning("position marked suspect: %s", self.fault_suspect)
        if fault.velocity_suspect and not self.fault_velocity_suspect:
            self.fault_velocity_suspect = f"input fault {fault.name}: {fault.reason}"

    def refresh(self, now: float, on_ground: bool) -> None:
        """Each cycle: present suspect-marking faults keep doubting; on the ground, a state clean for
        consistency_recover_s (no rejection, no such fault) is trusted again."""
        if any(f.position_suspect or f.velocity_suspect for f in self.faults.values()):
            self._doubt(now)
        suspect = self.gate_suspect or self.velocity_suspect or self.fault_suspect or self.fault_velocity_suspect
        if not (suspect and on_ground and math.isfinite(now)):
            return
        if self.last_doubt_s is None or now - self.last_doubt_s >= self.common.consistency_recover_s:
            logger.info("state trusted again after %.2f s clean on the ground", self.common.consistency_recover_s)
            self.gate_suspect = self.velocity_suspect = self.fault_suspect = self.fault_velocity_suspect = ""
            self.rejections.clear()


@dataclass
class StateConsistencyCheck:
    """The gate marked the state suspect (one inconsistent sample in flight, or consistency_max_rejections
    within consistency_window_s on the ground) -> FALLBACK: ARMING aborts, ACTIVE hands over to the fallback,
    which then never steers toward the suspect position. Latched in flight; see :class:`StateTrust`."""

    name: str = "state_consistency"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        trust = inputs.trust
        why = "" if trust is None else trust.gate_suspect or trust.velocity_suspect
        return Verdict(Severity.FALLBACK, self.name, why) if why else ok(self.name)

    def reset(self) -> None:
        pass


@dataclass
class InputIntegrityCheck:
    """An integrity fault reported with :meth:`SafetyLayer.input_fault` is present (or one that marked the
    position suspect was cleared in flight: suspect until clean on the ground) -> FALLBACK; ``arm`` refuses."""

    name: str = "input_integrity"

    def evaluate(self, inputs: SafetyInputs, now: float) -> Verdict:
        trust = inputs.trust
        if trust is None:
            return ok(self.name)
        if trust.faults:
            why = "; ".join(f"{f.name}: {f.reason}" for f in trust.faults)
            return Verdict(Severity.FALLBACK, self.name, f"input fault {why}")
        if trust.fault_suspect:
            return Verdict(Severity.FALLBACK, self.name, f"position still suspect after {trust.fault_suspect}")
        return ok(self.name)

    def reset(self) -> None:
        pass
