"""Mixer signs, and the closed-loop fallback on an independent rigid-body model: from a tilted hover it levels,
holds, descends at the configured rate and turns the motors off at the floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploy.safety import CommandMode, SafetyState, StateSample, crazyflie_profile
from deploy.safety.quadrotor_control import QuadrotorMixer, quat_to_rotation
from tests.deploy.safety.helpers import Driver, hover_rpm, tilted_quat, with_common
from tests.deploy.safety.quad_model import QuadModel, body_wrench, rotation


def test_mixer_signs_against_r_cross_f():
    body = crazyflie_profile().quadrotor.body
    mixer = QuadrotorMixer(body.arm_length_m, body.km_m)
    a = body.arm_length_m / math.sqrt(2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        f = rng.uniform(0.0, 0.15, 4)
        expected = [
            f.sum(),
            a * (-f[0] - f[1] + f[2] + f[3]),  # tau_x = sum y_i f_i
            a * (-f[0] + f[1] + f[2] - f[3]),  # tau_y = -sum x_i f_i
            body.km_m * (f[0] - f[1] + f[2] - f[3]),  # M1, M3 clockwise
        ]
        np.testing.assert_allclose(mixer.wrench(f), expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(body_wrench(body, f), expected, rtol=1e-12, atol=1e-15)  # the test model agrees
        np.testing.assert_allclose(mixer.thrusts(mixer.wrench(f)), f, atol=1e-12)
    # more thrust on the left motors (M3, M4 at +y) rolls right-side down: +tau_x
    assert mixer.wrench(np.array([0.0, 0.0, 1.0, 1.0]))[1] > 0
    # more thrust on the back motors (M2, M3 at -x) pitches nose down: +tau_y
    assert mixer.wrench(np.array([0.0, 1.0, 1.0, 0.0]))[2] > 0


def test_quaternion_rotation_matches_model():
    q = tilted_quat(0.7, (0.3, -0.5, 0.8))
    np.testing.assert_allclose(quat_to_rotation(q), rotation(q), atol=1e-12)
    np.testing.assert_allclose(quat_to_rotation(q) @ quat_to_rotation(q).T, np.eye(3), atol=1e-12)


def fly(tilt_deg: float, motor_tau_s: float, start=(0.2, -0.1, 1.0)):
    # the upset is teleported into the model: open the attitude gate, else it would mark the state suspect
    # (that case, the attitude-only descent, is tested in test_level_descent.py)
    profile = with_common(crazyflie_profile(), attitude_jump_rad=math.pi)
    model = QuadModel(profile.quadrotor.body, motor_tau_s=motor_tau_s)
    model.p[:] = start

    def sample(t):
        return StateSample(t, model.p.copy(), model.v.copy(), model.q.copy(), model.w.copy(), battery_fraction=0.9)

    d = Driver(profile, sample_fn=sample)
    d.to_active()
    model.q = tilted_quat(math.radians(tilt_deg), (0.6, 0.8, 0.0))
    model.w[:] = [1.0, -2.0, 3.0]
    d.action_fn = lambda t: np.full(4, math.nan)  # the policy breaks: FALLBACK
    trace = []
    t_fault = d.t
    for _ in range(1500):
        cmd = d.step()
        for _ in range(10):
            model.step(cmd.values, d.period / 10)
        trace.append((d.t - t_fault, cmd, model.p.copy(), model.v.copy(), model.tilt_rad()))
        if d.layer.state is not SafetyState.FALLBACK:
            break
    return d, trace


@pytest.mark.parametrize(("tilt_deg", "motor_tau_s"), [(30.0, 0.03), (45.0, 0.05), (30.0, 0.1)])
def test_fallback_levels_descends_and_cuts_motors(tilt_deg, motor_tau_s):
    d, trace = fly(tilt_deg, motor_tau_s)
    fb = d.profile.quadrotor.fallback
    assert trace[0][1].mode is CommandMode.FALLBACK  # the first cycle after the fault
    # levels out (position corrections tilt it at most max_tilt_cmd_rad) and never tips over
    assert max(x[4] for x in trace) < math.radians(max(tilt_deg, 20.0) + 5.0)
    assert all(x[4] < math.radians(10.0) for x in trace if 2.0 < x[0] < trace[-1][0] - 0.1)
    # holds altitude during the hover phase (within 25 cm after a 45 deg upset) and stays near the hold point
    assert all(abs(x[2][2] - 1.0) < 0.25 for x in trace if x[0] < fb.hover_s)
    assert all(np.hypot(x[2][0] - 0.2, x[2][1] + 0.1) < 0.75 for x in trace)
    assert np.hypot(trace[-1][2][0] - 0.2, trace[-1][2][1] + 0.1) < 0.1  # lands back at the hold point
    # descends at the configured rate in the middle of the descent (within 15 %)
    mid = [x[3][2] for x in trace if 0.3 < x[2][2] < 0.7]
    assert len(mid) > 10
    assert np.mean(mid) == pytest.approx(-fb.descent_rate_m_s, rel=0.15)
    # motors off at the floor, then DISARMED with the reason
    last_t, last_cmd, last_p, _, _ = trace[-1]
    assert d.layer.state is SafetyState.DISARMED
    assert last_cmd.mode is CommandMode.STOP and not last_cmd.values.any()
    assert last_p[2] <= fb.ground_z_m + fb.landed_height_m + 0.02
    assert "landed" in d.layer.transitions[-1].reason
    expected = fb.hover_s + 1.0 / fb.descent_rate_m_s
    assert expected - 0.5 < last_t < expected + 1.5
    # every emitted command stays in [min_rpm, max_rpm] until the cut
    body = d.profile.quadrotor.body
    assert all(np.all((x[1].values >= body.min_rpm) & (x[1].values <= body.max_rpm)) for x in trace[:-1])


def test_hover_at_start_is_near_hover_rpm():
    d, trace = fly(0.0, 0.03)
    hover = hover_rpm(d.profile)
    early = np.array([x[1].values for x in trace[5:50]])  # the hover phase, yaw/roll rates being damped
    assert np.all(np.abs(early.mean(axis=1) - hover) < 0.05 * hover)


def test_blind_fallback_sinks_then_estops_after_timeout():
    profile = crazyflie_profile()
    d = Driver(profile)
    d.to_active()
    d.sample_fn = lambda t: None  # state lost: watchdog -> FALLBACK, then blind
    d.run(3.0)
    fb = profile.quadrotor.fallback
    modes = [(t, c) for t, c in d.log if c.mode is CommandMode.FALLBACK]
    assert modes, "never in fallback"
    blind = modes[-1][1].values
    body = profile.quadrotor.body
    thrust = 4 * body.kf_n_per_rpm2 * blind[0] ** 2
    assert np.allclose(blind, blind[0]) and thrust < body.mass_kg * 9.81
    est = [tr for tr in d.layer.transitions if tr.to_state is SafetyState.ESTOP]
    assert est and est[0].check == "fallback"
    t_fallback = next(tr.time_s for tr in d.layer.transitions if tr.to_state is SafetyState.FALLBACK)
    assert est[0].time_s - t_fallback == pytest.approx(fb.blind_timeout_s, abs=2 * d.period)


def test_fallback_with_absurd_state_goes_blind_not_nan():
    profile = crazyflie_profile()
    d = Driver(profile)
    d.to_active()
    d.sample_fn = lambda t: StateSample(
        t, np.array([1e300, 0.0, 1.0]), np.zeros(3), np.array([1.0, 1e300, 0.0, 0.0]), np.zeros(3), 0.9
    )
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is harmless
        d.run(0.2)
    cmd = d.log[-1][1]
    assert d.layer.state is SafetyState.FALLBACK and cmd.mode is CommandMode.FALLBACK
    assert np.allclose(cmd.values, cmd.values[0])  # blind: equal motor speeds
