"""ctbr flights through MAVLink: drivers.mavlink_bridge (with its launch options file) + drivers.fake_mavlink, each a
process, the bridge and the fake on UDP loopback (MAVLink 2), the bridge and the test on one DDS domain. The test
stands in for the runtime: it publishes RateThrustCommand on command/rates as the runtime does after its safety
layer (``arming``: minimum thrust, zero rates; then ``policy``; then ``fallback``, or nothing), from the small
height/attitude controller of tests/drivers/test_px4_ctbr_sil.py on state/pose and state/twist.

- PX4 (ODOMETRY, boot clock 5000 s off): the bridge streams the arming setpoint, switches to OFFBOARD after 1 s of
  it, arms; the vehicle climbs to 0.5 m in 1 s and holds it (measured: height RMS ~1 cm over the last 1.5 s;
  asserted < 3 cm, |error| < 8 cm); ``fallback`` -> DO_SET_MODE AUTO_LAND: the autopilot lands and disarms.
- ArduPilot (ATTITUDE_QUATERNION + LOCAL_POSITION_NED, SYS_STATUS): the bridge reads GUID_OPTIONS, switches to
  GUIDED_NOGPS without waiting for a stream, arms, the vehicle climbs and holds; then the commands stop: after
  0.5 s the bridge asks for LAND, the autopilot lands and disarms.
About 10 s each."""

from __future__ import annotations

import math
import time

import numpy as np

from deploy.msgs import BatteryState, MotorCommand, PoseStamped, RateThrustCommand, TwistStamped, Vector3, make_header
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from tests.domains import random_domain
from tests.drivers._mavlink_client import free_udp_port, start_bridge, start_fake
from tests.drivers._px4_client import wait_for
from tests.drivers.test_px4_ctbr_sil import MASS, climb_and_hold

G = 9.81
HEIGHT, CLIMB_S, HOLD_S = 0.5, 1.0, 2.5


def fly(autopilot: str, ending: str, *fake_args: str) -> dict:
    """Arm, climb, hold, then ``ending`` ("fallback" or "silence"); returns what was seen."""
    domain, port = random_domain(), free_udp_port()
    namespace = f"/mav{autopilot[:3]}{domain}"
    fake = start_fake(autopilot, port, "--seed", "5", *fake_args, seconds=40.0, domain=domain)
    bridge = start_bridge(autopilot, port, domain, namespace, "mav")
    transport = TransportConfig.from_mapping({"namespace": namespace})
    seen: dict = {"errors": [], "offsets": []}
    try:
        with Ros2Node("runtime_stand_in", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            t_pose, t_twist, t_bat = (transport.topic(k) for k in ("pose", "twist", "battery"))
            poses = node.subscription(t_pose.name, PoseStamped, t_pose.qos)
            twists = node.subscription(t_twist.name, TwistStamped, t_twist.qos)
            battery = node.subscription(t_bat.name, BatteryState, t_bat.qos)
            t_cmd, t_motor = transport.topic("rate_command"), transport.topic("motor_command")
            commands = node.publisher(t_cmd.name, RateThrustCommand, t_cmd.qos)
            motors = node.publisher(t_motor.name, MotorCommand, t_motor.qos)
            assert commands.wait_for_subscribers(1, 30.0), "the bridge did not come up"
            assert wait_for(lambda: None not in (poses.latest(), twists.latest(), battery.latest()), 15.0), (
                bridge.log,
                fake.log,
            )
            seen["battery"] = battery.latest()
            seen["stamp_lag_s"] = (time.time_ns() - _stamp_ns(poses.latest())) / 1e9
            motors.publish(MotorCommand(make_header(time.time_ns()), [0.0] * 4, "mav", "arming"))  # refused

            def send(mode: str, thrust: float = 0.0, rates=(0.0, 0.0, 0.0)) -> None:
                commands.publish(RateThrustCommand(make_header(time.time_ns()), thrust, Vector3(*rates), "mav", mode))

            deadline = time.monotonic() + 6.0  # arming: stream, switch, arm (the fake logs each at once)
            while not fake.seen("armed (arm command)") and time.monotonic() < deadline:
                send("arming", 0.01)
                time.sleep(0.01)
            seen["armed_after_s"] = 6.0 - (deadline - time.monotonic())
            assert fake.seen("armed (arm command)"), (bridge.log, fake.log)
            climb_and_hold(send, poses, twists, HOLD_S, seen["errors"], seen["offsets"])
            deadline = time.monotonic() + 10.0  # the autopilot lands (hold 1 s, descend, disarm on the ground)
            while not fake.seen("disarmed (landed (auto disarm))") and time.monotonic() < deadline:
                if ending == "fallback":
                    send("fallback", MASS * G)
                time.sleep(0.01)
            seen["landed_height"] = poses.latest().pose.position.z
    finally:
        bridge.stop()
        fake.stop()
    seen["bridge"], seen["fake"] = bridge.log, fake.log
    return seen


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def check_hold(seen: dict) -> None:
    context = (seen["bridge"][-2500:], seen["fake"][-2500:])
    errors = np.asarray(seen["errors"])
    rms = float(np.sqrt(np.mean(np.square(errors)))) if errors.size else math.nan
    print(
        f"hold: height RMS {rms:.4f} m, max |error| {np.max(np.abs(errors)):.4f} m, armed after {seen['armed_after_s']:.2f} s"
    )
    assert errors.size > 80, context
    assert rms < 0.03 and np.max(np.abs(errors)) < 0.08, (rms, context)
    assert max(seen["offsets"]) < 0.3, context
    assert "disarmed (landed (auto disarm))" in seen["fake"] and seen["landed_height"] < 0.06, context
    # stamps: the autopilot's boot clock mapped onto this computer's ROS time, never in the future
    assert 0.0 <= seen["stamp_lag_s"] < 0.5, seen["stamp_lag_s"]
    assert "command refused: MotorCommand on command/motors: an rpm policy" in seen["bridge"], context


def test_px4_ctbr_flight_over_mavlink_climbs_holds_and_fallback_lands():
    seen = fly("px4", "fallback", "--clock-offset-s", "5000")
    check_hold(seen)
    bridge, fake = seen["bridge"], seen["fake"]
    assert "autopilot: POSCTL, disarmed" in bridge
    assert "mode OFFBOARD (DO_SET_MODE)" in fake, fake  # after the stream (the bridge waits 1.2 s for it)
    assert "-> autopilot: AUTO_LAND (fallback: the autopilot lands)" in bridge
    assert "mode AUTO_LAND (DO_SET_MODE)" in fake
    assert 0.9 < seen["armed_after_s"] < 3.0, seen["armed_after_s"]
    assert math.isclose(seen["battery"].percentage, 0.95, abs_tol=0.02) and seen["battery"].voltage > 4.0


def test_ardupilot_ctbr_flight_over_mavlink_climbs_holds_and_lands_when_commands_stop():
    seen = fly("ardupilot", "silence")
    check_hold(seen)
    bridge, fake = seen["bridge"], seen["fake"]
    assert "autopilot: STABILIZE, disarmed" in bridge
    assert "mode GUIDED_NOGPS (DO_SET_MODE)" in fake and "armed (arm command)" in fake
    assert "runtime commands stopped: no setpoints; LAND" in bridge
    assert "-> autopilot: LAND (runtime commands stopped)" in bridge and "mode LAND (DO_SET_MODE)" in fake
    assert seen["armed_after_s"] < 2.0  # no stream to wait for
    # SYS_STATUS: volts and remaining %, no cells
    assert math.isclose(seen["battery"].percentage, 0.95, abs_tol=0.02) and seen["battery"].voltage > 4.0
