"""The Crazyflie bridge's rules, in one process: its cflib session connects to a fake Crazyflie through the
recording link (``sim2real://``, drivers/fake_crazyflie_link.py: every packet cflib sends is kept), a test node
plays the runtime over DDS (RateThrustCommand, MotorCommand) and reads state/pose and state/battery; the test
calls the bridge's tick at 100 Hz. What reached the Crazyflie is read back from the recorded packets with the
firmware's formats."""

from __future__ import annotations

import itertools
import logging
import struct
import time

import pytest

from tests.domains import random_domain

pytest.importorskip("cflib", reason="cflib (bitcraze crazyflie-lib-python) is not installed")

from deploy.msgs import (
    BatteryState,
    MotorCommand,
    PoseStamped,
    RateThrustCommand,
    Vector3,
    make_header,
)
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from drivers import crazyflie_wire as wire
from drivers.crazyflie_bridge import CrazyflieBridge
from drivers.crazyflie_convert import ThrustCurve, thrust_to_command
from drivers.crazyflie_link import FLIGHT_PARAMS, CrazyflieSession
from drivers.fake_crazyflie import FakeCrazyflie
from drivers.fake_crazyflie_link import RecordingLink
from tests.drivers._px4_client import wait_for

NS = "/cfb"
_names = itertools.count()


class Rig:
    def __init__(self, require_arming: bool = False) -> None:
        self.fake = FakeCrazyflie(seed=2, clock_offset_s=300.0, require_arming=require_arming)
        self.name = f"rig{next(_names)}"
        self.link = RecordingLink.attach(self.name, self.fake)
        self.link.run(50.0)
        domain = random_domain()
        self.transport = TransportConfig.from_mapping({"namespace": NS})
        self.bridge_node = Ros2Node("crazyflie_bridge", namespace=NS, domain_id=domain, config=LOOPBACK_CONFIG)
        holder = {}
        self.session = CrazyflieSession(
            f"sim2real://{self.name}",
            lambda ts, v: holder["b"].on_state(ts, v),
            lambda ts, v: holder["b"].on_status(ts, v),
            lambda msg: holder["b"].on_lost(msg),
        )
        self.bridge = holder["b"] = CrazyflieBridge(
            self.bridge_node, self.transport, self.session, ThrustCurve(), vehicle_id="cfb"
        )
        self.session.open()
        self.node = Ros2Node("rig", domain_id=domain)
        t_rates, t_motors = self.transport.topic("rate_command"), self.transport.topic("motor_command")
        self.rates = self.node.publisher(t_rates.name, RateThrustCommand, t_rates.qos)
        self.motors = self.node.publisher(t_motors.name, MotorCommand, t_motors.qos)
        t_pose, t_battery = self.transport.topic("pose"), self.transport.topic("battery")
        self.pose = self.node.subscription(t_pose.name, PoseStamped, t_pose.qos)
        self.battery = self.node.subscription(t_battery.name, BatteryState, t_battery.qos)
        assert self.rates.wait_for_subscribers(1, 5.0) and self.motors.wait_for_subscribers(1, 5.0)

    def run(self, seconds: float, mode: str | None = None, thrust: float = 0.0, rates=(0.0, 0.0, 0.0)) -> None:
        """Tick the bridge at 100 Hz, publishing one RateThrustCommand per tick unless mode is None."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if mode is not None:
                header = make_header(time.time_ns())
                self.rates.publish(RateThrustCommand(header, thrust, Vector3(*rates), "cfb", mode))
            self.bridge.tick()
            time.sleep(0.01)

    def rpyt(self) -> list[tuple[float, wire.Rpyt]]:
        """(time, setpoint) of every RPYT packet the bridge sent, in order."""
        return [(t, wire.decode_rpyt(d)) for t, h, d in self.link.sent if h >> 4 == wire.PORT_SETPOINT]

    def close(self) -> None:
        self.session.close()
        self.link.stop()
        self.node.close()
        self.bridge_node.close()


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def test_connect_sets_rate_mode_reads_it_back_and_streams_the_state(rig):
    writes = dict(rig.fake.crtp.param_writes)
    assert writes["flightmode.stabModeRoll"] == writes["flightmode.stabModePitch"] == wire.STAB_MODE_RATE
    assert writes["stabilizer.controller"] == 1 and writes["motorPowerSet.enable"] == 0
    reads = rig.link.packets(wire.PORT_PARAM, wire.PARAM_CH_READ)
    assert len(reads) == len(rig.fake.crtp.params) + len(FLIGHT_PARAMS)  # all at connect, each write read back
    blocks = sorted(rig.fake.crtp.blocks.values(), key=lambda b: b.period_ms)
    assert [b.period_ms for b in blocks] == [10, 100]
    assert sum(struct.calcsize(wire.LOG_TYPES[kind][1]) for _, kind in blocks[0].ops) == 22
    assert wait_for(lambda: rig.pose.latest() is not None and rig.battery.latest() is not None, 5.0)
    z = rig.fake.env.state_rows("position")[0, 2].item()
    assert rig.pose.latest().pose.position.z == pytest.approx(z, abs=0.01)
    assert rig.pose.latest().pose.orientation.w == pytest.approx(1.0, abs=0.01)
    battery = rig.battery.latest()
    assert 4.0 < battery.voltage < 4.2 and 0.8 < battery.percentage <= 1.0 and list(battery.cell_voltage)
    age = time.time() - (rig.pose.latest().header.stamp.sec + rig.pose.latest().header.stamp.nanosec * 1e-9)
    assert 0.0 <= age < 0.5  # the boot clock (300 s off) mapped onto this computer's


def test_arming_unlocks_first_then_streams_rates_and_thrust_keeps_alive_and_lands_when_commands_stop(rig):
    rig.run(0.3, "arming", 0.11)
    rig.run(0.4, "policy", 0.3, (0.1, 0.2, 0.3))
    sent = rig.rpyt()
    assert sent[0][1] == wire.Rpyt(0.0, 0.0, 0.0, 0)  # the thrust unlock comes first
    arming = [s for _, s in sent if s.thrust == thrust_to_command(0.11, ThrustCurve())]
    assert len(arming) >= 15 and all((s.roll, s.pitch, s.yaw) == (0.0, 0.0, 0.0) for s in arming)
    last = sent[-1][1]  # cflib's send_setpoint(deg p, deg q, -deg r): pitch negated on the wire, yaw as given
    assert (last.roll, last.pitch, last.yaw) == pytest.approx((5.729578, -11.459156, -17.188734), rel=1e-6)
    assert last.thrust == thrust_to_command(0.3, ThrustCurve())
    assert rig.fake.firmware.state == "flying"
    n, t0 = len(sent), time.monotonic()
    rig.run(0.45)  # no commands: the bridge repeats the last one every 0.1 s
    gaps = [t for t, _ in rig.rpyt()[n - 1 :]]
    assert len(gaps) >= 4 and max(b - a for a, b in itertools.pairwise(gaps)) < 0.15
    rig.run(0.3)  # past 0.5 s: no more setpoints; the Crazyflie lands itself
    assert rig.rpyt()[-1][0] < t0 + 0.55
    notify = rig.link.packets(wire.PORT_SETPOINT_GENERIC, wire.GENERIC_META_CHANNEL)
    lands = [wire.decode_hl_land(d) for d in rig.link.packets(wire.PORT_SETPOINT_HL, 0)]
    assert len(notify) == 1 and len(lands) == 1 and lands[0].duration_s >= 1.0
    assert wait_for(lambda: rig.fake.firmware.hl_state == "landing", 1.0)


def test_a_crazyflie_that_needs_arming_gets_the_request_until_it_reports_armed():
    rig = Rig(require_arming=True)
    try:
        assert wait_for(lambda: rig.bridge.info is not None, 2.0)
        assert not rig.bridge.info >> wire.INFO_ARMED & 1 and rig.bridge.info >> wire.INFO_CAN_BE_ARMED & 1
        rig.run(0.8, "arming", 0.11)
        arms = rig.link.packets(wire.PORT_SUPERVISOR, wire.SUPERVISOR_CH_COMMAND)
        assert arms and set(arms) == {bytes([wire.CMD_ARM_SYSTEM, 1])} and len(arms) <= 2
        assert rig.fake.firmware.armed and rig.bridge.info >> wire.INFO_ARMED & 1
        assert rig.fake.firmware.state in ("ready to fly", "flying")
    finally:
        rig.close()


def test_stop_sends_the_stop_setpoint_and_a_disarm_request(rig):
    rig.run(0.2, "arming", 0.11)
    rig.run(0.2, "stop")
    stops = rig.link.packets(wire.PORT_SETPOINT_GENERIC, wire.GENERIC_SETPOINT_CHANNEL)
    arms = rig.link.packets(wire.PORT_SUPERVISOR, wire.SUPERVISOR_CH_COMMAND)
    assert stops and all(d == bytes([wire.TYPE_STOP]) for d in stops) and len(stops) >= 2
    assert arms[-1] == bytes([wire.CMD_ARM_SYSTEM, 0])


def test_rpm_policies_are_refused_with_the_reason(rig, caplog):
    n = len(rig.link.sent)
    with caplog.at_level(logging.ERROR, logger="sim2real.crazyflie_bridge"):
        for _ in range(20):
            rig.motors.publish(MotorCommand(make_header(time.time_ns()), [15000.0] * 4, "cfb", "policy"))
            rig.bridge.tick()
            time.sleep(0.01)
        time.sleep(0.1)
    refusals = [r.getMessage() for r in caplog.records if "MotorCommand" in r.getMessage()]
    assert len(refusals) == 1 and "motorPowerSet" in refusals[0] and "docs/crazyflie_onboard.md" in refusals[0]
    ports = {h >> 4 for _, h, _ in rig.link.sent[n:]}
    assert wire.PORT_SETPOINT not in ports and not rig.link.packets(wire.PORT_PARAM, wire.PARAM_CH_WRITE)[8:]
