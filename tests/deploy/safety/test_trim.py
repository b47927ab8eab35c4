"""The fallback's trim (deploy/safety/trim.py): the torque the policy held in steady flight, added to the fallback
controller's own. Closed loop on the independent rigid-body model (quad_model.py) with its centre of mass 1 mm off
the rotors' centre, both fallbacks (position trusted: hold and descend; position suspect: level and descend), with
and without the trim."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from deploy.safety import SafetyState, StateSample, crazyflie_profile
from deploy.safety.limits import ProfileError
from deploy.safety.trim import TrimEstimator
from tests.deploy.safety.helpers import Driver, hover_rpm, tilted_quat, with_common
from tests.deploy.safety.quad_model import QuadModel, body_wrench

COM = (0.001, -0.0007)  # m, body frame
FAKE = np.array([1000.0, 0.0, 1.0])


def with_fallback(profile, **changes):
    q = profile.quadrotor
    return replace(profile, quadrotor=replace(q, fallback=replace(q.fallback, **changes)))


def cancelling_rpm(model: QuadModel) -> np.ndarray:
    """(4,) RPM whose thrust equals the weight and whose torque cancels the CoM offset's, solved on the test
    model's own wrench (r x F per rotor), not on the mixer under test: what a policy holds in a steady hover."""
    body = model.body
    weight = body.mass_kg * 9.81
    columns = np.stack([body_wrench(body, e) for e in np.eye(4)], axis=1)  # (wrench, motor): linear in thrust
    bias = np.cross(-model.com_offset_m, [0.0, 0.0, weight])
    thrusts = np.linalg.solve(columns, np.array([weight, *(-bias)]))
    return np.sqrt(thrusts / body.kf_n_per_rpm2)


def land(profile, spoof: bool, seconds: float = 12.0):
    """ACTIVE for 2 s in a steady hover at (0, 0, 1) (the policy holds the CoM torque), then the policy breaks
    (NaN; with ``spoof`` a position 1000 m away as well, so the position goes suspect). Returns the driver and
    the horizontal distance [m] from the start at every cycle of the fallback."""
    model = QuadModel(profile.quadrotor.body, motor_tau_s=0.05, com_offset_m=COM)
    model.p[:] = (0.0, 0.0, 1.0)
    hold = cancelling_rpm(model)

    def truth(t):
        return StateSample(t, model.p.copy(), model.v.copy(), model.q.copy(), model.w.copy(), battery_fraction=0.9)

    d = Driver(profile, sample_fn=truth, action_fn=lambda t: hold.copy())
    d.to_active()
    d.run(2.0)  # the model is held still meanwhile: 2 s of steady samples and the cancelling command
    d.action_fn = lambda t: np.full(4, math.nan)
    t0, drift = d.t, []
    if spoof:  # every other cycle of the first 0.1 s
        d.sample_fn = lambda t: (
            replace(truth(t), position_m=FAKE.copy()) if t < t0 + 0.1 and round(t / d.period) % 2 else truth(t)
        )
    for _ in range(round(seconds / d.period)):
        cmd = d.step()
        for _ in range(10):
            model.step(cmd.values, d.period / 10)
        drift.append(math.hypot(*model.p[:2]))
        if d.layer.state is not SafetyState.FALLBACK and len(drift) > 20:
            break
    return d, np.array(drift)


def with_observer(profile, seconds: float):
    q = profile.quadrotor
    return replace(profile, quadrotor=replace(q, gains=replace(q.gains, torque_observer_s=seconds)))


@pytest.mark.parametrize("spoof", [False, True])
def test_the_trim_lands_an_offset_vehicle_where_it_was_and_without_it_it_drifts(spoof):
    profile = with_common(crazyflie_profile(), attitude_jump_rad=math.pi)
    d, drift = land(profile, spoof)
    assert d.layer.state is SafetyState.DISARMED  # landed, motors off
    assert d.layer.position_trusted is not spoof
    # the trim it flew with is the torque that cancels the offset (the model's own r x F), within 2 %
    weight = profile.quadrotor.body.mass_kg * 9.81
    expected = -np.cross(-np.array([*COM, 0.0]), [0.0, 0.0, weight])
    np.testing.assert_allclose(d.layer.behaviour.controller.trim_nm, expected, rtol=0.02, atol=2e-7)
    assert drift.max() < 0.1
    # the trim alone (no torque observer) lands it there too: 0.05 / 0.02 m measured
    _, drift_trim = land(with_observer(profile, 0.0), spoof)
    assert drift_trim.max() < 0.1
    # without the trim the observer learns the offset's torque in flight, after some drift (0.19 / 0.33 m measured)
    d_obs, drift_obs = land(with_fallback(profile, trim_time_constant_s=0.0), spoof)
    assert not d_obs.layer.behaviour.controller.trim_nm.any()
    assert 0.1 < drift_obs.max() < 0.5
    # with neither, the PD loop holds a tilt against the offset (14 deg at 1 mm) and flies away: 5.3 / 3.1 m
    _, drift_off = land(with_observer(with_fallback(profile, trim_time_constant_s=0.0), 0.0), spoof)
    assert drift_off.max() > 1.0


def steady(t: float, tilt_rad: float = 0.0, z: float = 1.0, rates=(0.0, 0.0, 0.0)) -> StateSample:
    return StateSample(t, np.array([0.0, 0.0, z]), np.zeros(3), tilted_quat(tilt_rad, (1.0, 0.0, 0.0)),
                       np.array(rates, dtype=float), battery_fraction=0.9)  # fmt: skip


def test_only_steady_flight_counts_and_the_trim_fades_in_and_is_clamped():
    profile = crazyflie_profile()
    est = TrimEstimator(profile.quadrotor)
    body = profile.quadrotor.body
    h = hover_rpm(profile)
    roll = np.array([h - 200, h - 200, h + 200, h + 200])  # left motors faster: +tau_x
    a = body.arm_length_m / math.sqrt(2.0)
    tau_x = a * body.kf_n_per_rpm2 * 2 * ((h + 200) ** 2 - (h - 200) ** 2)
    for k in range(26):  # 0.25 s of steady hover: half the time constant
        est.observe(0.01 * k, steady(0.01 * k), True, roll)
    np.testing.assert_allclose(est.torque_nm(), [0.5 * tau_x, 0.0, 0.0], rtol=1e-9, atol=1e-12)
    before = est.torque_nm().copy()
    t = 0.25
    for sample, fresh, values in [
        (steady(t, tilt_rad=0.3), True, -roll),  # tilted 17 deg
        (steady(t, rates=(0.0, 2.0, 0.0)), True, -roll),  # turning
        (steady(t, z=0.05), True, -roll),  # on the floor
        (steady(t), False, -roll),  # stale
        (None, True, -roll),
        (steady(t), True, np.array([h, math.nan, h, h])),
        (replace(steady(t), quat_wxyz=np.zeros(4)), True, -roll),
    ]:
        t += 0.01
        est.observe(t, sample, fresh, values)
        np.testing.assert_array_equal(est.torque_nm(), before)
    for _ in range(100):  # a full time constant later: the whole average
        t += 0.01
        est.observe(t, steady(t), True, roll)
    np.testing.assert_allclose(est.torque_nm(), [tau_x, 0.0, 0.0], rtol=1e-9)
    huge = np.array([body.min_rpm, body.min_rpm, body.max_rpm, body.max_rpm])
    for _ in range(200):
        t += 0.01
        est.observe(t, steady(t), True, huge)
    limit = 0.1 * body.mass_kg * 9.81 * a
    assert est.torque_nm()[0] == pytest.approx(limit)  # clamped to 10 % of weight x lever arm


def test_ctbr_and_a_zero_time_constant_have_no_trim_and_bad_values_are_refused():
    est = TrimEstimator(replace(crazyflie_profile().quadrotor, interface="ctbr"))
    est.observe(0.0, steady(0.0), True, np.array([0.3, 1.0, 0.0, 0.0]))
    est.observe(0.01, steady(0.01), True, np.array([0.3, 1.0, 0.0, 0.0]))
    assert not est.enabled and not est.torque_nm().any()
    q = crazyflie_profile().quadrotor
    for field, value in [
        ("trim_time_constant_s", -0.1),
        ("trim_time_constant_s", math.nan),
        ("trim_max_fraction", 0.9),
    ]:
        with pytest.raises(ProfileError, match=f"quadrotor.fallback.{field}"):
            replace(q.fallback, **{field: value})


def test_a_new_arming_forgets_the_last_flights_trim():
    profile = with_common(crazyflie_profile(), attitude_jump_rad=math.pi)
    d, _ = land(profile, spoof=False)
    assert d.layer.behaviour.trim.torque_nm().any() and d.layer.state is SafetyState.DISARMED
    d.layer.behaviour.start_arming(None, np.zeros(4))
    assert not d.layer.behaviour.trim.torque_nm().any() and d.layer.behaviour.trim.weight_s == 0.0
