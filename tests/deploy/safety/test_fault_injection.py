"""One fault-injection test per check: the fault, the transition it causes (state, check name) and that the
fallback / stop command leaves the layer within one control period of the fault."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from deploy.safety import CommandMode, SafetyState, a1_profile, crazyflie_profile, franka_profile
from tests.deploy.safety.helpers import Driver, healthy_sample, loose_gate, nominal_action, tilted_quat

PROFILES = {"quadrotor": crazyflie_profile, "legged": a1_profile, "arm": franka_profile}


def active(profile_name: str, loose: bool = False) -> Driver:
    """ACTIVE on a healthy robot. loose: the consistency gate opened wide, for tests that teleport the state
    to inject another check's fault (the gate itself is tested in test_consistency.py)."""
    profile = PROFILES[profile_name]()
    d = Driver(loose_gate(profile) if loose else profile)
    d.to_active()
    return d


def assert_reaction(d: Driver, t_fault: float, to_state: SafetyState, check: str, mode: CommandMode) -> None:
    """The first command after the fault is of ``mode`` and comes no later than one period after it."""
    after = [(t, cmd) for t, cmd in d.log if t > t_fault]
    assert after, "no cycle ran after the fault"
    t, cmd = after[0]
    assert t - t_fault <= d.period + 1e-9
    assert cmd.mode is mode, (cmd, d.layer.transitions)
    assert cmd.state is to_state
    last = d.layer.transitions[-1] if to_state is not SafetyState.ACTIVE else None
    if last is not None:
        hits = [tr for tr in d.layer.transitions if tr.to_state is to_state and tr.check == check]
        assert hits, f"no transition to {to_state} by {check}: {d.layer.transitions}"
        assert t_fault <= hits[0].time_s <= t_fault + d.period + 1e-9
    if mode is CommandMode.STOP and d.profile.quadrotor is not None:
        np.testing.assert_array_equal(cmd.values, np.zeros(4))
    if mode is CommandMode.STOP and d.profile.joints is not None:
        assert not cmd.kp_nm_per_rad.any() and not cmd.kd_nm_s_per_rad.any()


ALL = ["quadrotor", "legged", "arm"]


@pytest.mark.parametrize("name", ALL)
def test_operator_estop_cuts_to_stop(name):
    d = active(name)
    t_fault = d.t + 0.003
    d.layer.estop(t_fault, "test")
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.ESTOP, "operator.estop", CommandMode.STOP)


@pytest.mark.parametrize("name", ALL)
def test_hardware_estop_input(name):
    d = active(name)
    t_fault = d.t
    d.sample_fn = lambda t: replace(healthy_sample(d.profile, t), estop_pressed=True)
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.ESTOP, "estop", CommandMode.STOP)
    assert not d.layer.reset(d.t)  # refused while the button is still pressed
    d.layer.disarm(d.t)  # disarm does not clear an e-stop
    d.run(d.period)
    assert d.layer.state is SafetyState.ESTOP
    d.sample_fn = lambda t: healthy_sample(d.profile, t)  # released
    d.run(d.period)
    assert d.layer.state is SafetyState.ESTOP  # still latched until the reset
    assert d.layer.reset(d.t) and d.layer.state is SafetyState.DISARMED


@pytest.mark.parametrize("name", ALL)
def test_clock_backwards(name):
    d = active(name)
    t_fault = d.t
    cmd = d.layer.filter(nominal_action(d.profile), d.t - 0.5, 0.001)
    assert cmd.mode is CommandMode.FALLBACK and d.layer.transitions[-1].check == "clock"
    assert cmd.stamp_s == t_fault  # records keep a non-decreasing time


def test_clock_not_finite_estops():
    d = active("legged")
    cmd = d.layer.filter(nominal_action(d.profile), math.nan, 0.001)
    assert cmd.mode is CommandMode.STOP and d.layer.transitions[-1].check == "clock"


@pytest.mark.parametrize("name", ALL)
def test_stale_state_watchdog(name):
    d = active(name)
    last_stamp = d.t
    d.sample_fn = lambda t: None  # the state stream stops
    t_fault = last_stamp + d.profile.common.max_state_age_s
    d.run(0.3)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "state_watchdog", CommandMode.FALLBACK)


def test_future_and_old_stamps_are_rejected_and_age_out():
    d = active("arm")
    t_fault = d.t + d.profile.common.max_state_age_s
    d.sample_fn = lambda t: healthy_sample(d.profile, t + 1.0 if int(t * 1000) % 2 else t - 5.0)
    d.run(0.3)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "state_watchdog", CommandMode.FALLBACK)


@pytest.mark.parametrize("name", ALL)
def test_lost_operator_heartbeat(name):
    d = active(name)
    d.heartbeat_on = False
    t_fault = d.layer.last_heartbeat_s + d.profile.common.max_heartbeat_age_s
    d.run(1.0)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "heartbeat", CommandMode.FALLBACK)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("where", ["observation", "action", "state"])
def test_nan_inf(name, where):
    d = active(name)
    t_fault = d.t + 1e-6
    if where == "observation":
        d.sample_fn = lambda t: replace(healthy_sample(d.profile, t), observation=np.array([0.0, math.nan, 1.0]))
    elif where == "action":
        d.action_fn = lambda t: np.where(np.arange(d.profile.command_size) == 1, math.inf, nominal_action(d.profile))
    else:
        field = "position_m" if d.profile.quadrotor is not None else "joint_vel_rad_s"
        size = 3 if field == "position_m" else d.profile.command_size
        d.sample_fn = lambda t: replace(healthy_sample(d.profile, t), **{field: np.full(size, -math.inf)})
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "finite", CommandMode.FALLBACK)


def test_wrong_action_shape_is_a_fault():
    d = active("arm")
    t_fault = d.t + 1e-6
    d.action_fn = lambda t: np.zeros(5)
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "finite", CommandMode.FALLBACK)


@pytest.mark.parametrize("name", ALL)
def test_inference_deadline_overruns(name):
    d = active(name)
    n = d.profile.common.max_consecutive_overruns
    d.inference_s = 10 * d.period
    d.run((n - 1) * d.period)  # one overrun short of the limit: still ACTIVE
    assert d.layer.state is SafetyState.ACTIVE
    d.inference_s = 0.001
    d.run(d.period)
    d.inference_s = 10 * d.period
    d.run((n - 1) * d.period)
    assert d.layer.state is SafetyState.ACTIVE  # the counter was reset by the on-time cycle
    t_fault = d.t + 1e-6  # the next overrun is number n in a row
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "inference_deadline", CommandMode.FALLBACK)


@pytest.mark.parametrize("name", ALL)
def test_action_clamped_and_rate_limited(name):
    d = active(name)
    prev = d.log[-1][1].values
    d.action_fn = lambda t: np.full(d.profile.command_size, 1e12)
    cmd = d.step()
    assert cmd.mode is CommandMode.POLICY and d.layer.state is SafetyState.ACTIVE
    assert any(v.check == "action_limits" and v.severity.name == "CLAMP" for v in d.layer.last_verdicts)
    step = d.profile.command_max_rate_per_s() * d.period
    np.testing.assert_allclose(cmd.values, np.minimum(prev + step, d.profile.command_high()))
    d.run(2.0)
    np.testing.assert_allclose(d.log[-1][1].values, d.profile.command_high())


def _quad_with(d: Driver, **fields):
    return lambda t: replace(healthy_sample(d.profile, t), **fields)


def test_quadrotor_tilt_sustained_estops():
    d = active("quadrotor", loose=True)
    t_start = d.t + 1e-6
    d.sample_fn = _quad_with(d, quat_wxyz=tilted_quat(math.radians(70)))
    d.run(0.6)
    t_fault = t_start + d.profile.quadrotor.envelope.max_tilt_duration_s
    assert_reaction(d, t_fault, SafetyState.ESTOP, "tilt", CommandMode.STOP)


def test_quadrotor_short_tilt_excursion_is_tolerated():
    d = active("quadrotor", loose=True)
    d.sample_fn = _quad_with(d, quat_wxyz=tilted_quat(math.radians(70), (0.0, 1.0, 0.0)))
    d.run(0.2)
    d.sample_fn = lambda t: healthy_sample(d.profile, t)
    d.run(0.5)
    assert d.layer.state is SafetyState.ACTIVE


@pytest.mark.parametrize(
    ("position", "check"),
    [((2.5, 0.0, 1.0), "geofence"), ((0.0, 0.0, 2.5), "altitude"), ((0.0, 0.0, -0.3), "altitude")],
)
def test_quadrotor_envelope(position, check):
    d = active("quadrotor", loose=True)
    t_fault = d.t + 1e-6
    d.sample_fn = _quad_with(d, position_m=np.array(position))
    d.run(0.05)
    # below the floor the fallback finds itself landed and turns the motors off in the same cycle
    below = position[2] < 0
    assert_reaction(
        d,
        t_fault,
        SafetyState.DISARMED if below else SafetyState.FALLBACK,
        "fallback" if below else check,
        CommandMode.STOP if below else CommandMode.FALLBACK,
    )
    assert any(tr.check == check and tr.to_state is SafetyState.FALLBACK for tr in d.layer.transitions)


def test_quadrotor_battery():
    d = active("quadrotor")
    d.sample_fn = _quad_with(d, battery_fraction=0.10)
    d.run(0.1)
    assert d.layer.state is SafetyState.ACTIVE  # low: warning only
    assert any(v.check == "battery" and v.severity.name == "CLAMP" for v in d.layer.last_verdicts)
    t_fault = d.t + 1e-6
    d.sample_fn = _quad_with(d, battery_fraction=0.05)
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "battery", CommandMode.FALLBACK)


@pytest.mark.parametrize("name", ["legged", "arm"])
@pytest.mark.parametrize("check", ["joint_position", "joint_velocity", "joint_torque"])
def test_joint_limits(name, check):
    d = active(name, loose=True)
    j = d.profile.joints
    field, value = {
        "joint_position": ("joint_pos_rad", j.position_max_rad[2] + 0.2),
        "joint_velocity": ("joint_vel_rad_s", -1.5 * j.velocity_max_rad_s[2]),
        "joint_torque": ("joint_torque_nm", 1.5 * j.torque_max_nm[2]),
    }[check]

    def sample(t):
        s = healthy_sample(d.profile, t)
        x = getattr(s, field).copy()
        x[2] = value
        return replace(s, **{field: x})

    t_fault = d.t + 1e-6
    measured = sample(0.0).joint_pos_rad
    d.sample_fn = sample
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, check, CommandMode.FALLBACK)
    cmd = d.log[-1][1]
    if name == "legged":  # damping: kp 0, kd 8
        assert not cmd.kp_nm_per_rad.any()
        np.testing.assert_allclose(cmd.kd_nm_s_per_rad, 8.0)
    else:  # hold the measured position (clipped into the limits), with the profile's gains
        target = np.clip(measured, d.profile.command_low(), d.profile.command_high())
        d.run(2.0)  # the hold target moves to the measured position at the target rate limit
        np.testing.assert_allclose(d.log[-1][1].values, target)
        np.testing.assert_allclose(d.log[-1][1].kp_nm_per_rad, j.kp_nm_per_rad)


def test_legged_base_tilt_goes_to_damping():
    d = active("legged", loose=True)
    t_fault = d.t + 1e-6
    d.sample_fn = lambda t: replace(healthy_sample(d.profile, t), quat_wxyz=tilted_quat(math.radians(80)))
    d.run(0.05)
    assert_reaction(d, t_fault, SafetyState.FALLBACK, "base_tilt", CommandMode.FALLBACK)
    assert not d.log[-1][1].kp_nm_per_rad.any()


def test_every_transition_is_logged_with_reason(caplog):
    d = active("quadrotor")
    d.heartbeat_on = False
    with caplog.at_level("INFO", logger="deploy.safety"):
        d.run(1.0)
    assert any("ACTIVE -> FALLBACK [heartbeat]" in r.getMessage() for r in caplog.records)
    assert all(tr.reason for tr in d.layer.transitions)
