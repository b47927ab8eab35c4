"""The fake PX4 enforces PX4's offboard rules, one test per rule, over DDS between processes: the fake PX4 is a
process, the test is the offboard computer. One fake PX4 serves the module (each test starts from whatever the
previous one left, disarmed on the ground); COM_OF_LOSS_T is 0.5 s here to keep the tests short."""

from __future__ import annotations

import math
import time

import pytest

from tests.domains import random_domain
from tests.drivers._px4_client import HOVER_U, OffboardClient, start_fake_px4, wait_for

OFFBOARD, AUTO_LAND, ARMED, DISARMED = 14, 18, 2, 1
CLOCK_OFFSET_S = 1000.0


@pytest.fixture(scope="module")
def px4():
    domain = random_domain()
    proc = start_fake_px4(domain, "--com-of-loss-t", "0.5", "--clock-offset-s", str(CLOCK_OFFSET_S))
    client = OffboardClient(domain)
    yield client
    client.close()
    proc.kill()
    proc.wait(10)


def on_ground_disarmed(px4: OffboardClient) -> None:
    px4.streaming, px4.flag = True, "direct_actuator"
    if px4.status().arming_state == ARMED:
        px4.thrust(math.nan)
        px4.arm(False, force=True)
    assert wait_for(lambda: px4.status().arming_state == DISARMED and px4.height() < 0.03, 8.0)


def offboard_armed(px4: OffboardClient) -> None:
    on_ground_disarmed(px4)
    time.sleep(1.2)  # the stream has run > 1 s
    px4.set_offboard()
    assert wait_for(lambda: px4.status().nav_state == OFFBOARD, 2.0)
    px4.arm()
    assert wait_for(lambda: px4.status().arming_state == ARMED, 2.0)


def test_odometry_is_ned_on_the_px4_boot_clock(px4):
    """On the ground: position z ~ 0, level attitude; stamps in microseconds since the fake's boot plus the
    offset (about 1000 s + uptime), nothing like this computer's monotonic clock."""
    odo = px4.odometry.latest()
    assert odo.pose_frame == 1 and odo.velocity_frame == 1
    assert abs(odo.position[2]) < 0.03
    # the simulator starts level, nose along ENU x = east: in NED that is yaw +90 deg about z down
    assert odo.q == pytest.approx([math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)], abs=0.01)
    assert CLOCK_OFFSET_S * 1e6 < odo.timestamp < (CLOCK_OFFSET_S + 120.0) * 1e6


def test_no_offboard_switch_or_arming_without_the_keepalive_stream(px4):
    on_ground_disarmed(px4)
    px4.streaming = False
    time.sleep(0.7)  # stream gone
    px4.set_offboard()
    time.sleep(0.4)
    assert px4.status().nav_state != OFFBOARD
    px4.streaming = True
    time.sleep(0.5)  # a stream of only 0.5 s: not enough
    px4.set_offboard()
    px4.arm()
    time.sleep(0.4)
    assert px4.status().nav_state != OFFBOARD and px4.status().arming_state == DISARMED
    time.sleep(0.6)  # now > 1 s of stream
    px4.set_offboard()
    assert wait_for(lambda: px4.status().nav_state == OFFBOARD, 2.0)


def test_setpoints_are_ignored_while_disarmed_and_applied_when_armed(px4):
    on_ground_disarmed(px4)
    time.sleep(1.2)
    px4.set_offboard()
    assert wait_for(lambda: px4.status().nav_state == OFFBOARD, 2.0)
    for _ in range(50):  # 0.5 s of full throttle while disarmed
        px4.thrust(0.9)
        time.sleep(0.01)
    assert px4.height() < 0.03
    px4.arm()
    assert wait_for(lambda: px4.status().arming_state == ARMED, 2.0)
    time.sleep(0.2)
    assert px4.height() < 0.03  # the setpoint sent while disarmed was dropped: idle
    for _ in range(30):
        px4.thrust(0.7)
        time.sleep(0.01)
    assert wait_for(lambda: px4.height() > 0.1, 2.0)


def test_nan_actuator_is_motors_off(px4):
    offboard_armed(px4)
    for _ in range(40):
        px4.thrust(0.7)
        time.sleep(0.01)
    assert wait_for(lambda: px4.height() > 0.1, 2.0)
    px4.thrust(math.nan)
    assert wait_for(lambda: px4.odometry.latest().velocity[2] > 1.0, 2.0)  # falling (NED: +z down) fast
    assert wait_for(lambda: px4.height() < 0.03, 3.0)


def test_stream_loss_is_the_failsafe_land_then_disarm(px4):
    offboard_armed(px4)
    for _ in range(40):
        px4.thrust(0.65)
        time.sleep(0.01)
    px4.thrust(HOVER_U)
    assert wait_for(lambda: px4.height() > 0.15, 2.0)
    px4.streaming = False
    lost = time.monotonic()
    assert wait_for(lambda: px4.status().nav_state == AUTO_LAND, 2.0)
    assert 0.5 - 0.1 <= time.monotonic() - lost <= 0.5 + 0.8  # COM_OF_LOSS_T (0.5 s here) plus delivery
    assert px4.status().failsafe
    for _ in range(20):
        px4.thrust(0.9)  # setpoints outside offboard do nothing
        time.sleep(0.01)
    assert wait_for(lambda: px4.status().arming_state == DISARMED, 10.0)  # landed, auto-disarmed
    assert px4.height() < 0.06


def test_disarm_in_flight_needs_the_kill_parameter(px4):
    offboard_armed(px4)
    for _ in range(40):
        px4.thrust(0.7)
        time.sleep(0.01)
    px4.thrust(HOVER_U)
    assert wait_for(lambda: px4.height() > 0.15, 2.0)
    px4.arm(False)
    time.sleep(0.3)
    assert px4.status().arming_state == ARMED
    px4.arm(False, force=True)
    assert wait_for(lambda: px4.status().arming_state == DISARMED, 1.0)


def test_rate_setpoints_fly_only_when_the_control_mode_is_body_rate(px4):
    """PX4 uses only the setpoint kind OffboardControlMode selects: VehicleRatesSetpoint under direct_actuator
    and ActuatorMotors under body_rate do nothing; under body_rate the rate setpoint flies, rates in FRD."""
    offboard_armed(px4)  # the stream selects direct_actuator
    for _ in range(50):
        px4.rates(0.9)
        time.sleep(0.01)
    assert px4.height() < 0.03
    px4.flag = "body_rate"
    time.sleep(0.15)
    for _ in range(50):
        px4.thrust(0.9)
        time.sleep(0.01)
    assert px4.height() < 0.03
    for _ in range(30):
        px4.rates(0.7)
        time.sleep(0.01)
    assert wait_for(lambda: px4.height() > 0.1, 2.0)
    yaw_rates = []
    for _ in range(60):  # yaw right (FRD +z) at 1 rad/s, hover thrust: odometry reports FRD +z
        px4.rates(HOVER_U, yaw=1.0)
        time.sleep(0.01)
        yaw_rates.append(px4.odometry.latest().angular_velocity[2])
    assert sum(yaw_rates[-20:]) / 20 == pytest.approx(1.0, abs=0.25)
    on_ground_disarmed(px4)
