"""The fallback for a suspect position, closed loop on the independent rigid-body model (quad_model.py): it
levels and descends on attitude, body rates and (trusted) velocity alone, never toward a faked position.
Compared with the position-hold fallback fed the same fake (what the runtime did before the gate)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from deploy.safety import CommandMode, SafetyState, StateSample, crazyflie_profile
from deploy.safety.quadrotor_control import touched_down
from tests.deploy.safety.helpers import Driver, healthy_sample, hover_rpm, loose_gate, tilted_quat, with_common
from tests.deploy.safety.quad_model import QuadModel

FAKE = np.array([1000.0, 0.0, 1.0])  # where the spoofer says the vehicle is


def run(profile, tilt_deg: float = 25.0, fakes: int = 9, seconds: float = 15.0, motor_tau_s: float = 0.05):
    """ACTIVE at (0.2, -0.1, 1.0), then the vehicle is upset by ``tilt_deg`` and the policy keeps sending hover
    while a spoofer interleaves ``fakes`` samples 1000 m away with the truth (every other cycle the runtime
    passes the fake). Returns the driver and a trace of (time since the upset, command, position, velocity,
    tilt) until the layer leaves FALLBACK or ``seconds`` pass."""
    model = QuadModel(profile.quadrotor.body, motor_tau_s=motor_tau_s)
    model.p[:] = (0.2, -0.1, 1.0)
    sent = {"fakes": 0}

    def truth(t):
        return StateSample(t, model.p.copy(), model.v.copy(), model.q.copy(), model.w.copy(), battery_fraction=0.9)

    def sample(t):
        if sent["fakes"] < fakes and round(t / profile.common.control_period_s) % 2:
            sent["fakes"] += 1
            return replace(truth(t), position_m=FAKE.copy())
        return truth(t)

    d = Driver(profile, sample_fn=truth)
    d.to_active()
    model.q = tilted_quat(math.radians(tilt_deg), (0.6, 0.8, 0.0))
    model.w[:] = [1.0, -2.0, 0.5]
    d.sample_fn = sample
    t0, trace = d.t, []
    for _ in range(round(seconds / d.period)):
        cmd = d.step()
        for _ in range(10):
            model.step(cmd.values, d.period / 10)
        trace.append((d.t - t0, cmd, model.p.copy(), model.v.copy(), model.tilt_rad()))
        if d.layer.state is not SafetyState.FALLBACK and len(trace) > 20:
            break
    return d, trace


def upset_profile():
    # the upset is teleported into the model: open the attitude gate so that only the fake position is gated
    return with_common(crazyflie_profile(), attitude_jump_rad=math.pi)


def test_suspect_position_levels_descends_and_lands_without_steering_toward_the_fake():
    d, trace = run(upset_profile())
    ld, td = d.profile.quadrotor.level_descent, d.profile.quadrotor.touchdown
    fallback = next(tr for tr in d.layer.transitions if tr.to_state is SafetyState.FALLBACK)
    assert fallback.check == "state_consistency" and "1e+03 m off" in fallback.reason
    assert not d.layer.position_trusted and d.layer.velocity_trusted
    # levels within 1 s and stays level
    assert all(x[4] < math.radians(8.0) for x in trace if 1.0 < x[0] < trace[-1][0] - 0.1)
    # never drifts toward the fake (or anywhere): < 1 m horizontally from the start
    drift = max(math.hypot(x[2][0] - 0.2, x[2][1] + 0.1) for x in trace)
    assert drift < 1.0
    assert max(x[2][0] for x in trace) < 0.2 + 1.0
    # descends at the configured rate in the middle of the descent (within 15 %)
    mid = [x[3][2] for x in trace if 0.3 < x[2][2] < 0.7]
    assert len(mid) > 10 and np.mean(mid) == pytest.approx(-ld.descent_rate_m_s, rel=0.15)
    # touches down, motors off, DISARMED with the reason; well before the deadline
    last_t, last_cmd, last_p, _, _ = trace[-1]
    assert d.layer.state is SafetyState.DISARMED and "touchdown" in d.layer.transitions[-1].reason
    assert last_cmd.mode is CommandMode.STOP and not last_cmd.values.any()
    assert last_p[2] == pytest.approx(0.0, abs=1e-9)
    assert last_t < 1.0 / ld.descent_rate_m_s + 1.0 + td.hold_s
    # never a position error: every fallback command carries the attitude-only reason
    fb = [x[1] for x in trace if x[1].mode is CommandMode.FALLBACK]
    assert fb and all("position suspect" in c.reason or "no valid state" in c.reason for c in fb)
    body = d.profile.quadrotor.body
    assert all(np.all((c.values >= body.min_rpm) & (c.values <= body.max_rpm)) for c in fb)


def test_before_the_gate_the_fallback_flew_toward_the_fake():
    """The same scenario with the gate open (what the runtime did before): a fake sample becomes the latest
    state, the geofence sends it to FALLBACK, the hold point is latched at the fake and the vehicle flies
    toward it at the commanded tilt limit."""
    d, trace = run(loose_gate(upset_profile()))
    fallback = next(tr for tr in d.layer.transitions if tr.to_state is SafetyState.FALLBACK)
    assert fallback.check == "geofence"
    assert next(x[2][0] for x in trace if x[0] >= 3.0) - 0.2 > 5.0  # metres toward the fake in 3 s
    assert d.layer.state is SafetyState.DISARMED  # it "landed"
    radius = d.profile.quadrotor.envelope.geofence_radius_m
    assert math.hypot(*trace[-1][2][:2]) > radius + 10.0  # more than 10 m outside the geofence (issue: 22.6 m)


def test_without_a_trusted_velocity_it_descends_open_loop_then_estops_without_touchdown_evidence():
    profile = crazyflie_profile()
    model = QuadModel(profile.quadrotor.body, motor_tau_s=0.05)
    model.p[:] = (0.0, 0.0, 1.0)

    def truth(t):
        return StateSample(t, model.p.copy(), model.v.copy(), model.q.copy(), model.w.copy(), battery_fraction=0.9)

    d = Driver(profile, sample_fn=truth)
    d.to_active()
    d.layer.input_fault(d.t, "writers.pose", "2 writers publish state/pose")  # position and velocity suspect
    assert not d.layer.position_trusted and not d.layer.velocity_trusted
    t0, impact, trace = d.t, None, []
    for _ in range(round(12.0 / d.period)):
        cmd = d.step()
        for _ in range(10):
            v_before = model.v.copy()
            model.step(cmd.values, d.period / 10)
            if impact is None and model.p[2] == 0.0:
                impact = (d.t - t0, float(np.linalg.norm(v_before)))
        trace.append((d.t - t0, cmd, model.p.copy(), model.tilt_rad()))
        if d.layer.state is not SafetyState.FALLBACK:
            break
    assert d.layer.transitions[2].check == "input_integrity"
    assert max(x[3] for x in trace) < math.radians(3.0)  # stays level
    assert max(math.hypot(*x[2][:2]) for x in trace) < 0.05
    assert impact is not None and impact[0] < 2.5 and impact[1] < 1.0  # down in 2.5 s at < 1 m/s
    # no trusted velocity or height: no touchdown evidence, motors off at the deadline -> ESTOP
    deadline = profile.quadrotor.level_descent_max_s()
    assert d.layer.state is SafetyState.ESTOP and d.layer.estop_latched
    assert "no touchdown evidence" in d.layer.transitions[-1].reason
    assert trace[-1][0] == pytest.approx(deadline, abs=2 * d.period)


def test_suspect_from_the_floor_ends_disarmed_at_the_deadline():
    profile = crazyflie_profile()
    d = Driver(profile, sample_fn=lambda t: replace(healthy_sample(profile, t), position_m=np.array([0, 0, 0.05])))
    d.to_active()
    d.layer.input_fault(d.t, "writers.pose", "second writer")
    d.run(profile.quadrotor.level_descent_max_s() + 0.1)
    assert d.layer.state is SafetyState.DISARMED
    assert "last trusted height at the floor" in d.layer.transitions[-1].reason


def test_position_going_suspect_during_the_fallback_switches_to_level_descent():
    profile = crazyflie_profile()
    d = Driver(profile)
    d.to_active()
    d.heartbeat_on = False
    d.run(0.7)  # heartbeat lost: position-hold fallback
    assert d.layer.state is SafetyState.FALLBACK and "position suspect" not in d.log[-1][1].reason
    d.layer.on_state(replace(healthy_sample(profile, d.t + 0.005), position_m=FAKE.copy()), d.t + 0.005)
    d.run(0.5)
    assert not d.layer.position_trusted
    assert all("position suspect" in c.reason for _, c in d.log[-50:])


def test_touched_down_thresholds():
    profile = crazyflie_profile()
    hover = hover_rpm(profile)
    low = np.full(4, 0.85 * hover)  # thrust (0.85)^2 = 0.72 of hover <= 0.8
    s = replace(healthy_sample(profile, 0.0), position_m=np.array([0.3, 0.2, 0.08]), velocity_m_s=np.zeros(3))
    assert touched_down(s, low, profile)
    assert touched_down(s, low, profile.quadrotor)
    assert not touched_down(s, np.full(4, hover), profile)  # hover thrust: still flying
    assert not touched_down(replace(s, position_m=np.array([0.0, 0.0, 0.12])), low, profile)  # 12 cm up
    assert touched_down(replace(s, position_m=np.array([0.0, 0.0, 0.62])), low, profile, floor_z_m=0.55)
    assert not touched_down(replace(s, velocity_m_s=np.array([0.0, 0.15, -0.15])), low, profile)  # 0.21 m/s
    assert not touched_down(replace(s, position_m=np.array([0.0, math.nan, 0.0])), low, profile)
    assert not touched_down(replace(s, velocity_m_s=None), low, profile)
    stop = Driver(profile).layer.last_command  # a STOP command (0 RPM) counts as low thrust
    assert touched_down(s, stop, profile)
