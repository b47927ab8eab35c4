"""The fake autopilot enforces the autopilots' rules, one test per rule, over MAVLink on UDP loopback between
processes: drivers.fake_mavlink (PX4 flavour, COM_OF_LOSS_T 0.5 s to keep the tests short, boot clock 1000 s off)
is a process, the test is the companion computer (a raw pymavlink peer). One fake serves the module; each test
starts from whatever the previous one left, disarmed on the ground. The ArduPilot flavour's rules, which differ,
are tested on drivers.mavlink_autopilot.AutopilotRules directly (tests/drivers/test_mavlink_rules.py) and in flight
(tests/drivers/test_mavlink_sil.py)."""

from __future__ import annotations

import math
import time

import pytest

from drivers.mavlink_wire import PX4, px4_custom_mode
from tests.drivers._mavlink_client import MavlinkPeer, free_udp_port, start_fake
from tests.drivers._px4_client import HOVER_U, wait_for

DO_SET_MODE, ARM_DISARM = 176, 400
ACCEPTED, TEMPORARILY_REJECTED, DENIED = 0, 1, 2
POSCTL, OFFBOARD, AUTO_LAND = px4_custom_mode(3), px4_custom_mode(6), px4_custom_mode(4, 6)
CLOCK_OFFSET_S = 1000.0


@pytest.fixture(scope="module")
def px4():
    port = free_udp_port()
    peer = MavlinkPeer(port)
    fake = start_fake("px4", port, "--loss-timeout", "0.5", "--clock-offset-s", str(CLOCK_OFFSET_S), seconds=90)
    assert wait_for(lambda: {"HEARTBEAT", "ODOMETRY", "BATTERY_STATUS"} <= peer.latest.keys(), 20.0), fake.log
    peer.fake = fake
    yield peer
    peer.close()
    fake.stop()


def mode(peer: MavlinkPeer) -> int:
    return peer.heartbeat().custom_mode


def on_ground_disarmed(peer: MavlinkPeer) -> None:
    peer.thrust = 0.0
    if peer.armed():
        assert peer.command(ARM_DISARM, 0.0, 21196.0) == ACCEPTED
    assert wait_for(lambda: not peer.armed() and peer.height() < 0.03, 8.0)


def offboard_armed(peer: MavlinkPeer, thrust: float) -> None:
    on_ground_disarmed(peer)
    if not peer.streaming:
        peer.streaming = True
        time.sleep(1.2)  # the stream has run > 1 s
    peer.thrust = thrust
    assert peer.command(DO_SET_MODE, 1.0, 6.0) == ACCEPTED
    assert peer.command(ARM_DISARM, 1.0) == ACCEPTED


def test_heartbeat_odometry_and_battery_on_the_boot_clock(px4):
    """PX4's HEARTBEAT (autopilot 12, POSCTL, disarmed); ODOMETRY LOCAL_NED / BODY_FRD on the ground, level, nose
    east (yaw +90 deg in NED), stamped in microseconds since the fake's boot plus the offset."""
    hb, odo, bat = px4.heartbeat(), px4.latest["ODOMETRY"], px4.latest["BATTERY_STATUS"]
    assert hb.autopilot == PX4.mav_autopilot and hb.custom_mode == POSCTL and not px4.armed()
    assert (odo.frame_id, odo.child_frame_id) == (1, 12) and abs(odo.z) < 0.03
    assert odo.q == pytest.approx([math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)], abs=0.01)
    assert CLOCK_OFFSET_S * 1e6 < odo.time_usec < (CLOCK_OFFSET_S + 120.0) * 1e6
    assert 4000 < bat.voltages[0] < 4300 and bat.voltages[1] == 65535 and 90 <= bat.battery_remaining <= 95


def test_no_offboard_switch_without_the_setpoint_stream(px4):
    on_ground_disarmed(px4)
    px4.streaming = False
    time.sleep(0.6)  # stream gone
    assert px4.command(DO_SET_MODE, 1.0, 6.0) == TEMPORARILY_REJECTED
    px4.thrust, px4.streaming = 0.0, True
    time.sleep(0.5)  # streaming, but not yet for 1 s
    assert px4.command(DO_SET_MODE, 1.0, 6.0) == TEMPORARILY_REJECTED
    assert mode(px4) == POSCTL
    assert px4.fake.seen("offboard refused: no setpoint stream (>= 2 Hz for > 1 s)")


def test_no_arming_outside_offboard(px4):
    on_ground_disarmed(px4)
    px4.thrust, px4.streaming = 0.0, True
    assert px4.command(DO_SET_MODE, 1.0, 3.0) == ACCEPTED  # POSCTL
    time.sleep(1.1)
    assert px4.command(ARM_DISARM, 1.0) == DENIED  # stream fine, mode not
    time.sleep(0.3)
    assert not px4.armed()
    assert px4.fake.seen("arming refused: in POSCTL, not OFFBOARD")


def test_setpoints_are_ignored_unless_offboard_and_armed(px4):
    """Full thrust streams in POSCTL, then in OFFBOARD disarmed: the vehicle stays on the ground; armed it climbs."""
    on_ground_disarmed(px4)
    px4.thrust, px4.streaming = 0.9, True
    time.sleep(1.2)
    assert px4.height() < 0.02  # POSCTL: ignored
    assert px4.command(DO_SET_MODE, 1.0, 6.0) == ACCEPTED
    time.sleep(0.5)
    assert px4.height() < 0.02  # OFFBOARD, disarmed: ignored
    px4.thrust = HOVER_U + 0.1
    assert px4.command(ARM_DISARM, 1.0) == ACCEPTED
    assert wait_for(lambda: px4.height() > 0.1, 2.0), px4.height()  # used from now on
    assert px4.command(ARM_DISARM, 0.0, 21196.0) == ACCEPTED


def test_disarm_in_flight_needs_the_force_flag(px4):
    offboard_armed(px4, HOVER_U + 0.1)
    assert wait_for(lambda: px4.height() > 0.15, 3.0)
    px4.thrust = HOVER_U
    assert px4.command(ARM_DISARM, 0.0) == DENIED
    assert wait_for(px4.armed, 1.5) and px4.height() > 0.1
    assert px4.command(ARM_DISARM, 0.0, 21196.0) == ACCEPTED
    assert wait_for(lambda: px4.height() < 0.02, 3.0)  # motors off: it falls
    assert px4.fake.seen("disarm refused: in flight") and px4.fake.seen("disarmed (disarm command (forced))")


def test_setpoint_stream_loss_is_the_offboard_failsafe_auto_land(px4):
    offboard_armed(px4, HOVER_U + 0.1)
    assert wait_for(lambda: px4.height() > 0.15, 3.0)
    px4.streaming = False  # the companion falls silent
    lost = time.monotonic()
    assert wait_for(lambda: mode(px4) == AUTO_LAND, 3.0)
    assert px4.armed() and px4.height() > 0.05  # landing, not falling
    assert px4.fake.seen("mode AUTO_LAND (COM_OF_LOSS_T: setpoint stream lost)")
    assert time.monotonic() - lost > 0.45  # not before COM_OF_LOSS_T (the last setpoint left <= 50 ms before)
    px4.streaming = True  # a late setpoint does not take control back
    time.sleep(0.3)
    assert mode(px4) == AUTO_LAND
