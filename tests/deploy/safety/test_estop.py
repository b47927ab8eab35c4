"""E-stop latch and reset: ESTOP from any source holds until reset(); disarm does not clear it; after a reset a
new arm needs a fresh heartbeat, a fresh state sample and every check OK."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from deploy.safety import CommandMode, SafetyState, a1_profile, crazyflie_profile, franka_profile
from tests.deploy.safety.helpers import Driver, healthy_sample, loose_gate, tilted_quat
from tests.deploy.safety.test_state_machine import drive_to

S = SafetyState
PROFILES = [crazyflie_profile, a1_profile, franka_profile]


@pytest.mark.parametrize("make", PROFILES)
@pytest.mark.parametrize("state", [S.DISARMED, S.ARMING, S.ACTIVE, S.FALLBACK])
def test_estop_reaches_estop_at_the_next_filter_and_stays_until_reset(make, state):
    d = Driver(make())
    drive_to(d, state)
    d.heartbeat_on = True
    d.layer.estop(d.t + 0.001, "test")
    cmd = d.step()
    assert cmd.state is S.ESTOP and cmd.mode is CommandMode.STOP
    for action in ("disarm", "arm"):
        getattr(d.layer, action)(d.t)
        assert all(c.state is S.ESTOP for _, c in d.run(0.1))
    assert d.layer.estop_latched and not d.layer.arm(d.t)
    assert d.layer.reset(d.t) and d.layer.state is S.DISARMED and not d.layer.estop_latched
    assert d.layer.transitions[-1].check == "operator.reset"
    assert d.step().mode is CommandMode.STOP


def test_estop_while_disarmed_means_nobody_can_arm():
    d = Driver(crazyflie_profile())
    d.feed()
    d.layer.estop(d.t)
    assert d.layer.state is S.ESTOP and not d.layer.arm(d.t)
    d.run(1.0)
    assert not d.layer.arm(d.t) and d.layer.state is S.ESTOP


def test_reset_only_from_estop_and_a_new_arm_needs_fresh_inputs():
    d = Driver(franka_profile())
    d.feed()
    assert not d.layer.reset(d.t)  # DISARMED: nothing to reset
    d.layer.estop(d.t)
    assert d.layer.reset(d.t)
    assert not d.layer.reset(d.t)
    assert not d.layer.arm(d.t)  # no heartbeat and no state since the reset
    d.layer.heartbeat(d.t)  # the same instant as the reset does not count
    d.t += d.period
    d.layer.heartbeat(d.t)
    assert not d.layer.arm(d.t)  # a heartbeat, but no state sample since the reset
    d.layer.on_state(healthy_sample(d.profile, d.t), d.t)
    assert d.layer.arm(d.t)


def test_estop_verdict_is_latched_after_its_cause_goes_away():
    d = Driver(loose_gate(crazyflie_profile()))
    d.to_active()
    d.sample_fn = lambda t: replace(healthy_sample(d.profile, t), quat_wxyz=tilted_quat(math.radians(70)))
    d.run(0.5)
    assert d.layer.state is S.ESTOP and d.layer.transitions[-1].check == "tilt"
    d.sample_fn = lambda t: healthy_sample(d.profile, t)  # level again
    d.layer.disarm(d.t)
    assert all(c.state is S.ESTOP for _, c in d.run(0.5))
    assert d.layer.reset(d.t) and d.layer.state is S.DISARMED


def test_blind_fallback_escalation_is_latched():
    d = Driver(crazyflie_profile())
    d.to_active()
    d.sample_fn = lambda t: None
    d.run(3.0)
    assert d.layer.state is S.ESTOP and d.layer.estop_latched


@pytest.mark.parametrize("make", PROFILES)
def test_request_fallback(make):
    d = Driver(make())
    d.to_active()
    assert d.layer.request_fallback(d.t, "operator land", "operator.land")
    assert d.layer.state is S.FALLBACK and d.layer.transitions[-1].check == "operator.land"
    assert d.step().mode is CommandMode.FALLBACK
    assert not d.layer.request_fallback(d.t, "again")
    d2 = Driver(make())
    d2.feed()
    d2.layer.arm(d2.t)
    assert d2.layer.request_fallback(d2.t, "land while arming") and d2.layer.state is S.DISARMED


def test_fallback_max_s_bounds_the_quadrotor_fallback():
    p = crazyflie_profile()
    q = p.quadrotor
    assert q.level_descent_max_s() == pytest.approx(2.0 / 0.4 + 3.0)
    held = q.fallback.hover_s + 2.0 / q.fallback.descent_rate_m_s + q.fallback.landing_timeout_margin_s
    assert p.fallback_max_s == pytest.approx(held + q.level_descent_max_s() + q.fallback.blind_timeout_s)
    assert franka_profile().fallback_max_s == 0.0
    assert np.isfinite(p.fallback_max_s)
