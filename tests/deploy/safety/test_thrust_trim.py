"""The fallback's thrust scale (deploy/safety/trim.py): how much more (or less) collective thrust than the nominal
vehicle's the policy needed to carry the real one, measured against the vertical acceleration, and used by the
fallback controllers. Closed loop on the independent rigid-body model (quad_model.py) with a vehicle heavier or
weaker than its profile, the fault coming in the climb after take-off (before any steady hover)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from deploy.safety import SafetyState, StateSample, crazyflie_profile
from deploy.safety.limits import ProfileError
from deploy.safety.trim import TrimEstimator
from tests.deploy.safety.helpers import Driver, tilted_quat, with_common
from tests.deploy.safety.quad_model import G, QuadModel

CLIMB_M_S = 0.5


def with_fallback(profile, **changes):
    q = profile.quadrotor
    return replace(profile, quadrotor=replace(q, fallback=replace(q.fallback, **changes)))


def climb_then_fail(profile, mass_factor: float, kf_factor: float = 1.0, climb_s: float = 0.6):
    """A policy that knows the real vehicle (mass x mass_factor, thrust coefficient x kf_factor) holds it at 0.3 m,
    then climbs at 0.5 m/s for ``climb_s`` and breaks (NaN). Returns the driver, the height at the fault and the
    heights [m] of every cycle until the fallback has held for its hover_s."""
    nominal = profile.quadrotor.body
    body = replace(nominal, mass_kg=nominal.mass_kg * mass_factor, kf_n_per_rpm2=nominal.kf_n_per_rpm2 * kf_factor)
    model = QuadModel(body, motor_tau_s=0.05)
    model.p[:] = (0.0, 0.0, 0.3)
    climb_from = [math.inf]

    def policy(t: float) -> np.ndarray:  # altitude PD on the real vehicle, equal motors (it stays level)
        z_ref = 0.3 + CLIMB_M_S * max(t - climb_from[0], 0.0)
        vz_ref = CLIMB_M_S if t > climb_from[0] else 0.0
        thrust = body.mass_kg * (G + 16.0 * (z_ref - model.p[2]) + 8.0 * (vz_ref - model.v[2]))
        return np.full(4, math.sqrt(max(thrust, 0.0) / (4 * body.kf_n_per_rpm2)))

    def truth(t: float) -> StateSample:
        return StateSample(t, model.p.copy(), model.v.copy(), model.q.copy(), model.w.copy(), battery_fraction=0.9)

    d = Driver(profile, sample_fn=truth, action_fn=policy)
    d.to_active()  # the model is held still meanwhile
    climb_from[0] = d.t

    def cycle() -> None:
        cmd = d.step()
        for _ in range(10):
            model.step(cmd.values, d.period / 10)

    for _ in range(round(climb_s / d.period)):
        cycle()
    d.action_fn = lambda t: np.full(4, math.nan)
    z_fault, heights = float(model.p[2]), []
    for _ in range(round(profile.quadrotor.fallback.hover_s / d.period)):
        cycle()
        heights.append(float(model.p[2]))
    assert d.layer.state is SafetyState.FALLBACK
    for _ in range(round(10.0 / d.period)):  # then the descent to the floor
        cycle()
        if d.layer.state is not SafetyState.FALLBACK:
            break
    return d, z_fault, np.array(heights)


@pytest.mark.parametrize("mass_factor, kf_factor", [(1.2, 0.85), (1.33, 1.0), (0.8, 1.0)])
def test_the_fallback_holds_a_vehicle_heavier_or_lighter_than_its_profile(mass_factor, kf_factor):
    profile = with_common(crazyflie_profile(), attitude_jump_rad=math.pi)
    _, z_nominal, nominal = climb_then_fail(profile, 1.0)
    d, z_fault, heights = climb_then_fail(profile, mass_factor, kf_factor)
    assert d.layer.behaviour.controller.thrust_scale == pytest.approx(mass_factor / kf_factor, rel=0.01)
    assert d.layer.state is SafetyState.DISARMED  # landed, motors off
    # it holds as the nominal vehicle does (which overshoots ~0.11 m from the 0.5 m/s climb, then comes back)
    assert z_fault == pytest.approx(z_nominal, abs=0.005)
    assert np.abs(heights - nominal).max() < 0.01 and heights.min() > z_fault - 0.02
    d_off, z_off, heights_off = climb_then_fail(with_fallback(profile, thrust_scale_range=(1.0, 1.0)), mass_factor,
                                                kf_factor)  # fmt: skip
    assert d_off.layer.behaviour.controller.thrust_scale == 1.0
    if mass_factor / kf_factor > 1:  # without it: sinks 0.36 m (1.33) or to the floor (1.41) in the 1 s hold
        assert heights_off.min() < z_off - 0.3
    else:  # or climbs away, 0.35 m
        assert heights_off.max() > z_off + 0.3


def sample(t: float, vz: float, tilt_rad: float = 0.0, z: float = 1.0, rate: float = 0.0) -> StateSample:
    return StateSample(t, np.array([0.0, 0.0, z]), np.array([0.0, 0.0, vz]), tilted_quat(tilt_rad, (1.0, 0.0, 0.0)),
                       np.array([rate, 0.0, 0.0]), battery_fraction=0.9)  # fmt: skip


def rpm_for(profile, thrust_n: float) -> np.ndarray:
    return np.full(4, math.sqrt(thrust_n / (4 * profile.quadrotor.body.kf_n_per_rpm2)))


def test_the_ratio_counts_the_tilt_and_the_measured_acceleration_and_fades_in():
    profile = crazyflie_profile()
    est = TrimEstimator(profile.quadrotor)
    weight = profile.quadrotor.body.mass_kg * G
    assert est.thrust_scale() == 1.0  # nothing flown yet
    # 0.25 s (half the time constant) tilted 20 deg, accelerating up at 2 m/s^2, commanding 1.3 x what the nominal
    # vehicle needs for that: its vertical part 1.3 m (g + 2)
    tilt, a = math.radians(20.0), 2.0
    thrust = 1.3 * profile.quadrotor.body.mass_kg * (G + a) / math.cos(tilt)
    for k in range(27):
        est.observe(0.01 * k, sample(0.01 * k, a * 0.01 * k, tilt), True, rpm_for(profile, thrust))
    assert est.thrust_weight_s == pytest.approx(0.25)
    assert est.thrust_scale() == pytest.approx(1.0 + 0.5 * 0.3, rel=1e-6)
    t, vz = 0.26, a * 0.26
    for _ in range(60):  # the time constant reached: the whole ratio
        t += 0.01
        vz += a * 0.01
        est.observe(t, sample(t, vz, tilt), True, rpm_for(profile, thrust))
    assert est.thrust_scale() == pytest.approx(1.3, rel=1e-6)
    before = (est.thrust_n, est.need_n)
    for bad, fresh, values in [
        (sample(t, vz, tilt_rad=math.radians(40.0)), True, rpm_for(profile, 3 * weight)),  # tilted beyond the gate
        (sample(t, vz, rate=8.0), True, rpm_for(profile, 3 * weight)),  # turning fast
        (sample(t, vz, z=0.05), True, rpm_for(profile, 3 * weight)),  # on the floor
        (sample(t, vz), False, rpm_for(profile, 3 * weight)),  # stale
        (None, True, rpm_for(profile, 3 * weight)),
        (sample(t, vz), True, np.array([1e4, math.nan, 1e4, 1e4])),
        (replace(sample(t, vz), velocity_m_s=None), True, rpm_for(profile, 3 * weight)),
    ]:
        t += 0.01
        est.observe(t, bad, fresh, values)
        assert (est.thrust_n, est.need_n) == before
    for _ in range(300):  # a policy commanding 3x the weight of a vehicle that stays level and still: clamped
        t += 0.01
        est.observe(t, sample(t, 0.0), True, rpm_for(profile, 3 * weight))
    assert est.thrust_scale() == pytest.approx(1.6)


def test_ctbr_vehicles_get_the_thrust_scale_from_their_thrust_commands_and_bad_ranges_are_refused():
    q = replace(crazyflie_profile().quadrotor, interface="ctbr")
    est = TrimEstimator(q)
    weight = q.body.mass_kg * G
    for k in range(100):
        est.observe(0.01 * k, sample(0.01 * k, 0.0), True, np.array([1.25 * weight, 0.3, -0.2, 0.0]))
    assert est.thrust_scale() == pytest.approx(1.25, rel=1e-9) and not est.torque_nm().any()
    off = TrimEstimator(replace(q, fallback=replace(q.fallback, thrust_scale_range=(1.0, 1.0))))
    for k in range(100):
        off.observe(0.01 * k, sample(0.01 * k, 0.0), True, np.array([1.25 * weight, 0.0, 0.0, 0.0]))
    assert off.thrust_scale() == 1.0
    for value in [(1.1, 1.5), (0.5, 0.9), (0.0, 1.5), (0.8,), (0.8, math.nan)]:
        with pytest.raises(ProfileError, match=r"quadrotor\.fallback\.thrust_scale_range"):
            replace(q.fallback, thrust_scale_range=value)


def test_a_fall_is_not_a_thrust_ratio():
    """A vehicle falling (measured need under half the weight) gives no ratio: the fallback keeps the nominal."""
    profile = crazyflie_profile()
    est = TrimEstimator(profile.quadrotor)
    t, vz = 0.0, 0.0
    for _ in range(100):
        t += 0.01
        vz -= 0.8 * G * 0.01
        est.observe(t, sample(t, vz, z=2.0), True, rpm_for(profile, 0.1 * profile.quadrotor.body.mass_kg * G))
    assert est.need_n < 0.5 * profile.quadrotor.body.mass_kg * G
    assert est.thrust_scale() == 1.0
