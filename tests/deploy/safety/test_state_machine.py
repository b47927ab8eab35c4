"""The transition table, and that the operator can always disarm or e-stop, from every state."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deploy.safety import (
    ALLOWED_TRANSITIONS,
    CommandMode,
    ForbiddenTransition,
    SafetyState,
    a1_profile,
    crazyflie_profile,
    franka_profile,
)
from deploy.safety.state_machine import SafetyStateMachine
from tests.deploy.safety.helpers import Driver

S = SafetyState
EXPECTED = {
    (S.DISARMED, S.ARMING),
    (S.DISARMED, S.ESTOP),
    (S.ARMING, S.ACTIVE),
    (S.ARMING, S.DISARMED),
    (S.ARMING, S.ESTOP),
    (S.ACTIVE, S.FALLBACK),
    (S.ACTIVE, S.DISARMED),
    (S.ACTIVE, S.ESTOP),
    (S.FALLBACK, S.DISARMED),
    (S.FALLBACK, S.ESTOP),
    (S.ESTOP, S.DISARMED),
}


def test_table_is_exactly_the_documented_one():
    assert set(ALLOWED_TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(S, S)))
def test_allowed_and_forbidden(src, dst):
    m = SafetyStateMachine()
    m.state = src
    if (src, dst) in EXPECTED:
        rec = m.go(dst, 1.5, "why", "test")
        assert (rec.from_state, rec.to_state, rec.time_s, rec.reason, rec.check) == (src, dst, 1.5, "why", "test")
        assert m.state is dst and m.history == [rec]
    else:
        with pytest.raises(ForbiddenTransition, match=f"{src.name} -> {dst.name}"):
            m.go(dst, 1.5, "why", "test")
        assert m.state is src and m.history == []


def test_no_way_back_to_active_without_arming():
    for src in S:
        if src is not S.ARMING:
            assert (src, S.ACTIVE) not in ALLOWED_TRANSITIONS
    assert (S.FALLBACK, S.ARMING) not in ALLOWED_TRANSITIONS


def drive_to(d: Driver, target: SafetyState) -> None:
    if target is S.DISARMED:
        return
    if target is S.ESTOP:
        d.layer.estop(d.t, "test")
        return
    d.feed()
    assert d.layer.arm(d.t)
    if target is S.ARMING:
        return
    while d.layer.state is S.ARMING:
        d.step()
    assert d.layer.state is S.ACTIVE
    if target is S.FALLBACK:
        d.heartbeat_on = False
        while d.layer.state is S.ACTIVE:
            d.step()
        assert d.layer.state is S.FALLBACK


PROFILES = [crazyflie_profile, a1_profile, franka_profile]


@pytest.mark.parametrize("make", PROFILES)
@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("command", ["disarm", "estop"])
def test_operator_can_always_disarm_and_estop(make, state, command):
    d = Driver(make())
    drive_to(d, state)
    assert d.layer.state is state
    getattr(d.layer, command)(d.t)
    # disarm does not clear an e-stop: only reset() leaves ESTOP
    want = S.DISARMED if command == "disarm" and state is not S.ESTOP else S.ESTOP
    assert d.layer.state is want
    cmd = d.step()
    assert cmd.mode is CommandMode.STOP and cmd.state is want
    if d.profile.quadrotor is not None:
        np.testing.assert_array_equal(cmd.values, 0.0)
    else:
        assert not cmd.kp_nm_per_rad.any() and not cmd.kd_nm_s_per_rad.any()


def test_arm_requires_healthy_stream_and_heartbeat():
    d = Driver(crazyflie_profile())
    assert not d.layer.arm(0.0)  # nothing received yet
    d.layer.heartbeat(0.0)
    assert not d.layer.arm(0.0)  # still no state
    d.feed()
    assert d.layer.arm(0.0)
    assert d.layer.transitions[-1].check == "operator.arm"


def test_arm_refused_with_stale_state_and_outside_disarmed():
    d = Driver(franka_profile())
    d.feed()
    assert not d.layer.arm(d.t + 1.0)  # state 1 s old
    assert d.layer.arm(d.t)
    assert not d.layer.arm(d.t)  # already ARMING
    d.layer.estop(d.t)
    assert not d.layer.arm(d.t)  # ESTOP must be reset first
    d.layer.disarm(d.t)
    assert d.layer.state is S.ESTOP and not d.layer.arm(d.t)  # disarm is not a reset
    assert d.layer.reset(d.t) and d.layer.state is S.DISARMED
    assert not d.layer.arm(d.t)  # needs a fresh heartbeat and state after the reset
    d.t += d.period
    d.feed()
    assert d.layer.arm(d.t)


def test_arming_window_then_active_and_fault_in_arming_aborts():
    d = Driver(a1_profile())
    d.feed()
    d.layer.arm(d.t)
    steps = round(d.profile.common.arming_duration_s / d.period)
    for _ in range(steps - 1):
        assert d.step().mode is CommandMode.ARMING
    assert d.step().mode is CommandMode.POLICY
    d2 = Driver(a1_profile())
    d2.feed()
    d2.layer.arm(d2.t)
    d2.step()
    d2.action_fn = lambda t: None  # the policy produced nothing during arming
    cmd = d2.step()
    assert d2.layer.state is S.DISARMED and cmd.mode is CommandMode.STOP
    assert "arming aborted" in d2.layer.transitions[-1].reason


def test_quadrotor_fallback_never_returns_to_active():
    d = Driver(crazyflie_profile())
    drive_to(d, S.FALLBACK)
    d.heartbeat_on = True
    d.run(0.5)
    assert d.layer.state in (S.FALLBACK, S.DISARMED)
    assert all(tr.to_state is not S.ACTIVE for tr in d.layer.transitions[2:])
