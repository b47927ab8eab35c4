"""drivers.mavlink_autopilot.AutopilotRules, the rules behind drivers.fake_mavlink, one test per rule and autopilot,
on a synthetic clock (no process, no simulator). tests/drivers/test_mavlink_fake.py checks the PX4 rules again over
UDP against the fake process."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.mavlink_autopilot import ACCEPTED, DENIED, TEMPORARILY_REJECTED, AutopilotRules
from drivers.mavlink_wire import ARDUPILOT, PX4, mavlink

SET_MODE, ARM, NAV_LAND = mavlink.MAV_CMD_DO_SET_MODE, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, mavlink.MAV_CMD_NAV_LAND
RATES = (0.1, -0.2, 0.3)


def stream(rules: AutopilotRules, t0: float, t1: float, thrust: float = 0.5, hz: float = 20.0) -> float:
    """SET_ATTITUDE_TARGET (rates + thrust) at ``hz`` from t0 to t1; returns t1."""
    for t in np.arange(t0, t1, 1.0 / hz):
        rules.on_setpoint(128, thrust, RATES, float(t))
    return t1


def set_mode(rules: AutopilotRules, mode: int, t: float) -> int:
    return rules.on_command(SET_MODE, *rules.autopilot.set_mode_params(mode), t, in_air=False)[0]


def engaged(autopilot, loss_timeout_s=None) -> AutopilotRules:
    rules = AutopilotRules(autopilot, loss_timeout_s)
    t = stream(rules, 0.0, 1.2)
    assert set_mode(rules, autopilot.offboard_mode, t) == ACCEPTED
    assert rules.on_command(ARM, 1.0, 0.0, 0.0, t, in_air=False)[0] == ACCEPTED
    stream(rules, t, t + 0.2, thrust=0.6)
    rules.on_setpoint(128, 0.6, RATES, t + 0.2)  # the last one at 1.4 s
    return rules


def test_px4_offboard_needs_the_stream_for_more_than_a_second():
    rules = AutopilotRules(PX4)
    assert set_mode(rules, PX4.offboard_mode, 0.0) == TEMPORARILY_REJECTED  # no stream
    stream(rules, 0.0, 0.9)
    assert set_mode(rules, PX4.offboard_mode, 0.9) == TEMPORARILY_REJECTED  # < 1 s of it
    stream(rules, 0.9, 1.2)
    assert set_mode(rules, PX4.offboard_mode, 1.2) == ACCEPTED and rules.mode == PX4.offboard_mode
    assert set_mode(rules, PX4.land_mode, 1.3) == ACCEPTED  # other modes: no stream needed


def test_px4_arming_only_in_offboard_with_the_stream():
    rules = AutopilotRules(PX4)
    t = stream(rules, 0.0, 1.2)
    code, why = rules.on_command(ARM, 1.0, 0.0, 0.0, t, in_air=False)
    assert code == DENIED and "not OFFBOARD" in why and not rules.armed  # POSCTL
    assert set_mode(rules, PX4.offboard_mode, t) == ACCEPTED
    code, why = rules.on_command(ARM, 1.0, 0.0, 0.0, t + 1.0, in_air=False)  # the stream stopped 1 s ago
    assert code == DENIED and "no setpoint stream" in why
    t = stream(rules, t + 1.0, t + 1.0 + 0.3)  # a new stream, but only 0.3 s old
    assert rules.on_command(ARM, 1.0, 0.0, 0.0, t, in_air=False)[0] == DENIED
    t = stream(rules, t, t + 1.0)
    assert rules.on_command(ARM, 1.0, 0.0, 0.0, t, in_air=False)[0] == ACCEPTED and rules.engaged


def test_ardupilot_guided_nogps_without_a_stream_and_arming_only_in_guided():
    rules = AutopilotRules(ARDUPILOT)
    assert rules.mode == 0  # STABILIZE
    code, why = rules.on_command(ARM, 1.0, 0.0, 0.0, 0.0, in_air=False)
    assert code == DENIED and "in STABILIZE, not GUIDED_NOGPS" in why
    assert set_mode(rules, 20, 0.0) == ACCEPTED  # no stream needed
    assert rules.on_command(ARM, 1.0, 0.0, 0.0, 0.0, in_air=False)[0] == ACCEPTED
    rules.set_armed(False, "test")
    assert set_mode(rules, 9, 0.1) == ACCEPTED  # LAND: no arming there
    assert rules.on_command(ARM, 1.0, 0.0, 0.0, 0.1, in_air=False)[0] == DENIED


@pytest.mark.parametrize("autopilot", [PX4, ARDUPILOT], ids=["px4", "ardupilot"])
def test_setpoints_are_ignored_unless_in_the_mode_and_armed(autopilot):
    rules = AutopilotRules(autopilot)
    t = stream(rules, 0.0, 1.2, thrust=0.9)
    assert rules.setpoint is None and rules.control(in_air=False) == ("off",)
    assert set_mode(rules, autopilot.offboard_mode, t) == ACCEPTED
    stream(rules, t, t + 0.2, thrust=0.9)
    assert rules.setpoint is None  # disarmed
    assert rules.on_command(ARM, 1.0, 0.0, 0.0, t + 0.2, in_air=False)[0] == ACCEPTED
    assert rules.control(in_air=False) == ("idle",)  # armed, nothing received since
    assert rules.on_setpoint(128, 0.7, RATES, t + 0.25)
    kind, thrust, rates = rules.control(in_air=True)
    assert (kind, thrust) == ("rates", 0.7) and rates == pytest.approx(RATES)
    assert not rules.on_setpoint(128 | 64, 0.7, RATES, t + 0.3)  # thrust ignored: dropped
    assert not rules.on_setpoint(0, 0.7, RATES, t + 0.35)  # an attitude target: not flown here
    set_mode(rules, autopilot.land_mode, t + 0.4)
    assert rules.setpoint is None and rules.control(in_air=True) == ("land",)  # dropped at the mode change


def test_px4_stream_loss_is_the_failsafe_landing():
    rules = engaged(PX4, loss_timeout_s=0.5)
    rules.update(1.4 + 0.5)  # 0.5 s after the last setpoint: not yet
    assert rules.mode == PX4.offboard_mode
    rules.update(1.4 + 0.6)
    assert rules.mode == PX4.land_mode and rules.armed and rules.control(in_air=True) == ("land",)
    disarmed = AutopilotRules(PX4, 0.5)  # in OFFBOARD but disarmed: back to POSCTL
    t = stream(disarmed, 0.0, 1.2)
    set_mode(disarmed, PX4.offboard_mode, t)
    disarmed.update(t + 0.6)
    assert disarmed.mode == PX4.boot_mode


def test_ardupilot_guid_timeout_levels_at_zero_climb_rate_and_does_not_land():
    rules = engaged(ARDUPILOT, loss_timeout_s=3.0)
    rules.update(1.4 + 2.9)
    assert rules.control(in_air=True)[0] == "rates"
    rules.update(1.4 + 3.1)
    assert rules.mode == 20 and rules.armed and rules.control(in_air=True) == ("level",)
    assert rules.on_setpoint(128, 0.5, RATES, 5.0) and rules.control(in_air=True)[0] == "rates"  # back in control


def test_ardupilot_thrust_is_a_climb_rate_without_guid_options_bit_3():
    rules = AutopilotRules(ARDUPILOT, guid_options=0)
    assert rules.params == {"GUID_TIMEOUT": 3.0, "GUID_OPTIONS": 0.0}
    set_mode(rules, 20, 0.0)
    rules.on_command(ARM, 1.0, 0.0, 0.0, 0.0, in_air=False)
    for thrust, climb in ((0.5, 0.0), (1.0, 2.5), (0.0, -1.5), (0.75, 1.25)):
        rules.on_setpoint(128, thrust, RATES, 0.1)
        kind, up, _ = rules.control(in_air=True)
        assert kind == "climb" and up == pytest.approx(climb)


@pytest.mark.parametrize("autopilot", [PX4, ARDUPILOT], ids=["px4", "ardupilot"])
def test_a_disarm_in_flight_must_be_forced(autopilot):
    rules = engaged(autopilot)
    code, why = rules.on_command(ARM, 0.0, 0.0, 0.0, 1.5, in_air=True)
    assert code == DENIED and "21196" in why and rules.armed
    assert rules.on_command(ARM, 0.0, 21196.0, 0.0, 1.5, in_air=True)[0] == ACCEPTED and not rules.armed
    rules = engaged(autopilot)
    assert rules.on_command(ARM, 0.0, 0.0, 0.0, 1.5, in_air=False)[0] == ACCEPTED  # on the ground: plain disarm


def test_nav_land_and_the_land_mode_land():
    for autopilot in (PX4, ARDUPILOT):
        rules = engaged(autopilot)
        assert rules.on_command(NAV_LAND, 0.0, 0.0, 0.0, 1.5, in_air=True)[0] == ACCEPTED
        assert rules.mode == autopilot.land_mode and rules.control(in_air=True) == ("land",)
