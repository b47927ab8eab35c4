"""The PX4 bridge's rules over DDS: the bridge (its class on its own node) against a test node that plays the
runtime (MotorCommand or RateThrustCommand) and PX4 (VehicleStatus, VehicleOdometry) and records what reaches /fmu/in. The bridge's
tick is called by the test, at 100 Hz."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from deploy.msgs import MotorCommand, PoseStamped, RateThrustCommand, Vector3, make_header, time_to_ns
from deploy.msgs.px4 import (
    ActuatorMotors,
    OffboardControlMode,
    VehicleCommand,
    VehicleOdometry,
    VehicleRatesSetpoint,
    VehicleStatus,
)
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from drivers.px4_bridge import Px4Bridge
from drivers.px4_convert import ThrottleCurve
from drivers.px4_wire import PX4_COMMAND_QOS, PX4_QOS, MotorOptions, Px4Topics
from tests.domains import random_domain
from tests.drivers._px4_client import wait_for

NS = "/br"
OFFBOARD, POSCTL, AUTO_LAND, ARMED, DISARMED = 14, 2, 18, 2, 1


class Rig:
    def __init__(self) -> None:
        domain = random_domain()
        self.transport = TransportConfig.from_mapping({"namespace": NS})
        self.bridge_node = Ros2Node("px4_bridge", namespace=NS, domain_id=domain, config=LOOPBACK_CONFIG)
        # kf: 4 rotors at 20000 RPM give 4 * 1e-9 * 20000^2 = 1.6 N
        motors = MotorOptions(ThrottleCurve(rpm_max=20_000.0, exponent=2.0), (1, 4, 2, 3), kf=1e-9)
        self.bridge = Px4Bridge(self.bridge_node, self.transport, Px4Topics(), motors, vehicle_id="br")
        self.node = Ros2Node("rig", domain_id=domain)  # the domain is configured by the first node
        cmd = self.transport.topic("motor_command")
        self.commands = self.node.publisher(cmd.name, MotorCommand, cmd.qos)
        rates = self.transport.topic("rate_command")
        self.rate_commands = self.node.publisher(rates.name, RateThrustCommand, rates.qos)
        self.status = self.node.publisher("/fmu/out/vehicle_status", VehicleStatus, PX4_QOS)
        self.odometry = self.node.publisher("/fmu/out/vehicle_odometry", VehicleOdometry, PX4_QOS)
        pose = self.transport.topic("pose")
        self.pose = self.node.subscription(pose.name, PoseStamped, pose.qos)
        self.seen: dict[str, list] = {"ocm": [], "motors": [], "rates": [], "commands": []}
        for key, topic, cls, qos in (
            ("ocm", "offboard_control_mode", OffboardControlMode, PX4_QOS),
            ("motors", "actuator_motors", ActuatorMotors, PX4_QOS),
            ("rates", "vehicle_rates_setpoint", VehicleRatesSetpoint, PX4_QOS),
            ("commands", "vehicle_command", VehicleCommand, PX4_COMMAND_QOS),
        ):
            self.node.subscription(f"/fmu/in/{topic}", cls, qos, callback=lambda m, k=key: self.seen[k].append(m))
        assert self.commands.wait_for_subscribers(1, 5.0) and self.status.wait_for_subscribers(1, 5.0)
        assert self.rate_commands.wait_for_subscribers(1, 5.0)

    def px4(self, nav_state: int, arming_state: int) -> None:
        self.status.publish(VehicleStatus(nav_state=nav_state, arming_state=arming_state))
        assert wait_for(lambda: self.bridge.status is not None and self.bridge.status.nav_state == nav_state, 2.0)
        assert wait_for(lambda: self.bridge.status.arming_state == arming_state, 2.0)

    def run(
        self, seconds: float, mode: str | None = None, rpm=(10_000.0,) * 4, vehicle_id: str = "br", ctbr=None
    ) -> None:
        """Tick the bridge at 100 Hz for ``seconds``, sending one command per tick unless mode is None: a
        MotorCommand (``rpm``), or a RateThrustCommand where ``ctbr`` = (thrust N, (roll, pitch, yaw) FLU rad/s)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            header = make_header(time.monotonic_ns())
            if mode is not None and ctbr is not None:
                thrust, rate = ctbr
                self.rate_commands.publish(RateThrustCommand(header, thrust, Vector3(*rate), vehicle_id, mode))
            elif mode is not None:
                self.commands.publish(MotorCommand(header, list(rpm), vehicle_id, mode))
            self.bridge.tick()
            time.sleep(0.01)
        time.sleep(0.05)

    def clear(self) -> None:
        for v in self.seen.values():
            v.clear()

    def close(self) -> None:
        self.node.close()
        self.bridge_node.close()


@pytest.fixture(scope="module")
def shared_rig():
    r = Rig()
    yield r
    r.close()


@pytest.fixture
def rig(shared_rig):
    """One pair of nodes for the module (closing a node takes a second); a fresh bridge session per test."""
    shared_rig.bridge.reset()
    shared_rig.clear()
    return shared_rig


def test_keepalive_streams_from_the_start(rig):
    rig.run(1.0)  # no runtime yet
    assert 10 <= len(rig.seen["ocm"]) <= 25  # 20 Hz (fewer when the machine is busy)
    assert all(m.direct_actuator and not m.position for m in rig.seen["ocm"])
    assert not rig.seen["motors"] and not rig.seen["commands"]


def test_arming_switches_to_offboard_then_arms(rig):
    rig.px4(POSCTL, DISARMED)
    rig.run(0.2, "arming")
    first = rig.seen["commands"][0]
    assert (first.command, first.param1, first.param2) == (176, 1.0, 6.0)
    assert first.target_system == 1 and first.from_external
    assert all(c.command == 176 for c in rig.seen["commands"])  # no arming before offboard
    assert not rig.seen["motors"]  # not offboard: no setpoints
    rig.px4(OFFBOARD, DISARMED)
    rig.clear()
    rig.run(0.2, "arming")
    assert [c.command for c in rig.seen["commands"]][:1] == [400] and rig.seen["commands"][0].param1 == 1.0
    assert not rig.seen["motors"]


def test_setpoints_only_in_offboard_and_armed_through_curve_and_motor_map(rig):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.3, "policy", rpm=(10_000.0, 20_000.0, 0.0, 14_142.1356))
    assert len(rig.seen["motors"]) >= 20
    control = rig.seen["motors"][-1].control
    # M1 -> PX4 1, M2 -> 4, M3 -> 2, M4 -> 3; (rpm / 20000)^2
    np.testing.assert_allclose(control[:4], [0.25, 0.0, 0.5, 1.0], atol=1e-6)
    assert all(math.isnan(c) for c in control[4:])
    rig.px4(AUTO_LAND, ARMED)
    rig.clear()
    rig.run(0.3, "policy")
    assert not rig.seen["motors"]  # PX4 left offboard: setpoints stop


def test_other_vehicles_commands_are_rejected(rig):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.3, "policy", vehicle_id="someone_else")
    assert not rig.seen["motors"] and rig.bridge.vehicle.rejected > 10


def test_fallback_hands_over_to_px4_landing(rig):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.2, "policy")
    rig.clear()
    rig.run(0.3, "fallback")
    assert not rig.seen["motors"]
    assert rig.seen["commands"] and rig.seen["commands"][0].command == 21  # NAV_LAND


def test_stop_sends_nan_and_a_forced_disarm(rig):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.1, "stop")
    assert rig.seen["motors"] and all(math.isnan(c) for c in rig.seen["motors"][-1].control)
    disarm = rig.seen["commands"][0]
    assert (disarm.command, disarm.param1, disarm.param2) == (400, 0.0, 21196.0)


def test_commands_stop_then_setpoints_and_keepalive_stop_and_px4_lands(rig):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.3, "policy")
    rig.clear()
    rig.run(1.0)  # the runtime is gone
    assert len(rig.seen["ocm"]) <= 12  # at most the first 0.5 s (20 Hz) then nothing
    assert [c.command for c in rig.seen["commands"]][:1] == [21]  # PX4 still offboard and armed: NAV_LAND
    rig.clear()
    rig.run(0.5)
    assert not rig.seen["ocm"] and not rig.seen["motors"]


def test_odometry_becomes_an_enu_pose_on_this_clock(rig):
    """PX4 clock 1000 s behind: the pose stamp is mapped to this computer's ROS time, at or before now."""
    px4_us = 5_000_000
    for i in range(5):
        now_us = time.time_ns() // 1000
        q = [math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)]  # nose east
        rig.odometry.publish(
            VehicleOdometry(
                timestamp=px4_us + i * 10_000,
                timestamp_sample=px4_us + i * 10_000,
                pose_frame=1,
                position=[1.0, 2.0, -0.5],
                q=q,
                velocity_frame=1,
                velocity=[0.0, 0.0, -1.0],
                angular_velocity=[0.1, 0.2, 0.3],
            )
        )
        time.sleep(0.01)
    assert wait_for(lambda: rig.pose.latest() is not None, 2.0)
    msg = rig.pose.latest()
    p = msg.pose.position
    assert (p.x, p.y, p.z) == pytest.approx((2.0, 1.0, 0.5))
    o = msg.pose.orientation
    assert (o.w, o.x, o.y, o.z) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=1e-6)
    stamp = time_to_ns(msg.header.stamp)
    assert now_us * 1000 - 0.2e9 < stamp <= time.time_ns()


def test_rate_commands_become_body_rate_setpoints_frd_and_normalized(rig):
    rig.run(0.3)  # before any command: the keep-alive selects direct_actuator, as for rpm policies
    assert rig.seen["ocm"] and rig.seen["ocm"][-1].direct_actuator
    rig.px4(OFFBOARD, ARMED)
    rig.clear()
    rig.run(0.3, "policy", ctbr=(0.4, (0.1, 0.2, -0.3)))
    assert len(rig.seen["rates"]) >= 20 and not rig.seen["motors"]
    sp = rig.seen["rates"][-1]
    # FLU (0.1, 0.2, -0.3) -> FRD (0.1, -0.2, 0.3); 0.4 N of 1.6 N -> 0.25, z down: -0.25
    assert (sp.roll, sp.pitch, sp.yaw) == pytest.approx((0.1, -0.2, 0.3), abs=1e-6)
    assert list(sp.thrust_body) == pytest.approx([0.0, 0.0, -0.25], abs=1e-6)
    ocm = rig.seen["ocm"][-5:]  # the keep-alive now selects body_rate, and only it
    assert ocm and all(m.body_rate and not m.direct_actuator and not m.attitude for m in ocm)
    rig.px4(AUTO_LAND, ARMED)
    rig.clear()
    rig.run(0.2, "policy", ctbr=(0.4, (0.0, 0.0, 0.0)))
    assert not rig.seen["rates"]  # PX4 left offboard: setpoints stop


def test_a_mix_of_command_kinds_is_refused_until_the_run_is_over(rig, caplog):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.2, "policy", ctbr=(0.4, (0.0, 0.0, 0.0)))
    rig.clear()
    with caplog.at_level("ERROR", logger="sim2real.px4_bridge"):
        rig.run(0.3, "policy", rpm=(20_000.0,) * 4)  # a second runtime with an rpm policy
    assert not rig.seen["motors"] and all(m.body_rate for m in rig.seen["ocm"])
    assert sum("a mix of kinds" in r.message for r in caplog.records) == 1  # logged once
    rig.px4(POSCTL, DISARMED)
    rig.run(0.7)  # the commands stop (0.5 s) with PX4 disarmed: the run is over
    rig.clear()
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.3, "policy", rpm=(20_000.0,) * 4)
    assert rig.seen["motors"] and rig.seen["motors"][-1].control[0] == pytest.approx(1.0)
    assert rig.seen["ocm"][-1].direct_actuator and not rig.seen["ocm"][-1].body_rate


def test_rate_stop_is_zero_thrust_and_a_forced_disarm(rig):
    rig.px4(OFFBOARD, ARMED)
    rig.run(0.1, "stop", ctbr=(0.4, (1.0, 0.0, 0.0)))
    sp = rig.seen["rates"][-1]
    assert (sp.roll, sp.pitch, sp.yaw, *sp.thrust_body) == (0.0,) * 6 and not rig.seen["motors"]
    disarm = rig.seen["commands"][0]
    assert (disarm.command, disarm.param1, disarm.param2) == (400, 0.0, 21196.0)
