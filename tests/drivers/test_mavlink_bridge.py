"""drivers.mavlink_bridge.MavlinkBridge's rules, message by message, on a stub link and a stub ROS node with a
controlled clock: what goes out for each command mode of the runtime and each autopilot state (no process, no
socket). The same rules fly in tests/drivers/test_mavlink_sil.py."""

from __future__ import annotations

import logging
import time as real_time

import pytest

import drivers.mavlink_bridge as bridge_module
import drivers.mavlink_link as link_module
from deploy.msgs import RateThrustCommand, Vector3, make_header
from deploy.transport import TransportConfig
from drivers.mavlink_bridge import MavlinkBridge
from drivers.mavlink_wire import ARDUPILOT, PX4, MavlinkOptions, mavlink, px4_custom_mode
from drivers.px4_convert import ThrottleCurve

KF, RPM_MAX = 3.16e-10, 21702.0
SET_MODE, ARM, SET_ATTITUDE_TARGET = mavlink.MAV_CMD_DO_SET_MODE, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, "setpoint"


class Clock:
    """Stands in for the ``time`` module of the bridge: monotonic() is set by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    time_ns, monotonic_ns = staticmethod(real_time.time_ns), staticmethod(real_time.monotonic_ns)


class Wire:
    """Records what the bridge sends: ("setpoint", type_mask, rates, thrust) or ("command", id, p1, p2, p3)."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.mav = self

    def set_attitude_target_send(self, ms, ts, tc, type_mask, q, p, q_rate, r, thrust):
        self.sent.append((SET_ATTITUDE_TARGET, type_mask, (p, q_rate, r), thrust))

    def command_long_send(self, ts, tc, command, confirmation, p1, p2, p3, *rest):
        self.sent.append(("command", command, p1, p2, p3))

    def heartbeat_send(self, *args):
        self.sent.append(("heartbeat", *args))

    def param_request_read_send(self, ts, tc, name, index):
        self.sent.append(("param_request", name))

    def take(self, kind: str | None = None) -> list[tuple]:
        out = [m for m in self.sent if kind is None or m[0] == kind]
        self.sent = [m for m in self.sent if m not in out]
        return out

    def commands(self) -> list[tuple]:
        return [m[1:] for m in self.take("command") if m[1] != mavlink.MAV_CMD_SET_MESSAGE_INTERVAL]


class Node:
    def __init__(self) -> None:
        self.callbacks = {}

    def publisher(self, name, msg_type, qos):
        return type("Pub", (), {"publish": lambda self, msg: None})()

    def subscription(self, name, msg_type, qos, callback=None):
        self.callbacks[name] = callback


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(bridge_module, "time", c)
    monkeypatch.setattr(link_module, "time", c)
    return c


def make_bridge(autopilot: str, clock: Clock) -> tuple[MavlinkBridge, Wire, callable]:
    wire, node = Wire(), Node()
    options = MavlinkOptions(autopilot, "udpin:127.0.0.1:1", ThrottleCurve(RPM_MAX), KF)
    bridge = MavlinkBridge(node, TransportConfig.from_mapping({"namespace": "/v"}), wire, options, "v")
    on_command = node.callbacks["/v/command/rates"]

    def send(mode: str, thrust: float = 0.1, rates=(0.1, 0.2, 0.3), vehicle: str = "v") -> None:
        on_command(RateThrustCommand(make_header(0), thrust, Vector3(*rates), vehicle, mode))

    return bridge, wire, send


def heartbeat(bridge: MavlinkBridge, autopilot: int, custom_mode: int, armed: bool) -> None:
    base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (mavlink.MAV_MODE_FLAG_SAFETY_ARMED if armed else 0)
    bridge.link.handle(mavlink.MAVLink_heartbeat_message(2, autopilot, base, custom_mode, 3, 3))


def ack(bridge: MavlinkBridge, command: int, result: int = 0) -> None:
    bridge.link.handle(mavlink.MAVLink_command_ack_message(command, result))


def run(bridge, send, clock, mode: str, seconds: float, dt: float = 0.01, **kw) -> None:
    """The runtime's commands at 100 Hz and the bridge's loop, for ``seconds``."""
    end = clock.t + seconds
    while clock.t < end - 1e-9:
        send(mode, **kw)
        bridge.tick()
        clock.t += dt


def test_px4_arming_streams_first_switches_after_1_2_s_then_arms(clock):
    bridge, wire, send = make_bridge("px4", clock)
    heartbeat(bridge, 12, px4_custom_mode(3), armed=False)
    run(bridge, send, clock, "arming", 1.15, thrust=0.02, rates=(0.0, 0.0, 0.0))
    setpoints = wire.take(SET_ATTITUDE_TARGET)
    assert len(setpoints) >= 115  # each command, at once
    assert setpoints[0] == (SET_ATTITUDE_TARGET, 128, (0.0, 0.0, 0.0), pytest.approx(0.02 / (4 * KF * RPM_MAX**2)))
    run(bridge, send, clock, "arming", 0.1)
    assert wire.commands() == [(SET_MODE, 1.0, 6.0, 0.0)]  # OFFBOARD, once the stream has run 1.2 s
    ack(bridge, SET_MODE)
    run(bridge, send, clock, "arming", 0.35)
    assert wire.commands() == [(ARM, 1.0, 0.0, 0.0)]
    ack(bridge, ARM)
    assert bridge.link.engaged
    run(bridge, send, clock, "arming", 0.5)
    assert wire.commands() == []


def test_policy_setpoints_only_while_the_autopilot_flies_for_us(clock, caplog):
    bridge, wire, send = make_bridge("px4", clock)
    heartbeat(bridge, 12, px4_custom_mode(3), armed=False)
    run(bridge, send, clock, "policy", 0.2)
    assert wire.take(SET_ATTITUDE_TARGET) == [] and "not in OFFBOARD and armed: no setpoints go out" in caplog.text
    heartbeat(bridge, 12, px4_custom_mode(6), armed=True)
    run(bridge, send, clock, "policy", 0.2)
    setpoints = wire.take(SET_ATTITUDE_TARGET)
    assert len(setpoints) >= 20 and setpoints[0][2] == pytest.approx((0.1, -0.2, -0.3))  # FLU -> FRD
    run(bridge, send, clock, "policy", 0.1, vehicle="other")  # another vehicle's commands
    assert len(wire.take(SET_ATTITUDE_TARGET)) <= 2  # only the loop's repeats of the last own command, at 20 Hz


@pytest.mark.parametrize(
    ("autopilot", "flying", "land"), [("px4", 12, (1.0, 4.0, 6.0)), ("ardupilot", 3, (1.0, 9.0, 0.0))]
)
def test_fallback_hands_over_to_the_autopilots_landing(clock, autopilot, flying, land):
    bridge, wire, send = make_bridge(autopilot, clock)
    offboard = PX4.offboard_mode if autopilot == "px4" else ARDUPILOT.offboard_mode
    heartbeat(bridge, flying, offboard, armed=True)
    bridge.link.params["GUID_OPTIONS"] = 8.0
    run(bridge, send, clock, "fallback", 0.5)
    assert wire.take(SET_ATTITUDE_TARGET) == []
    assert wire.commands() == [(SET_MODE, *land), (SET_MODE, *land)]  # every 0.3 s until it reports landing
    ack(bridge, SET_MODE)
    run(bridge, send, clock, "fallback", 0.5)
    assert wire.commands() == []


def test_stop_sends_zero_thrust_and_a_forced_disarm_until_disarmed(clock):
    bridge, wire, send = make_bridge("px4", clock)
    heartbeat(bridge, 12, PX4.offboard_mode, armed=True)
    run(bridge, send, clock, "stop", 0.35)
    assert set(wire.take(SET_ATTITUDE_TARGET)) == {(SET_ATTITUDE_TARGET, 128, (0.0, 0.0, 0.0), 0.0)}
    assert wire.commands() == [(ARM, 0.0, 21196.0, 0.0), (ARM, 0.0, 21196.0, 0.0)]
    ack(bridge, ARM)
    run(bridge, send, clock, "stop", 0.5)
    assert wire.commands() == [] and wire.take(SET_ATTITUDE_TARGET) == []


def test_commands_that_stop_end_the_stream_and_ask_for_landing(clock, caplog):
    bridge, wire, send = make_bridge("px4", clock)
    heartbeat(bridge, 12, PX4.offboard_mode, armed=True)
    run(bridge, send, clock, "policy", 0.2)
    wire.take()
    for _ in range(50):  # 0.5 s of silence: the last command is repeated at setpoint_hz while it is fresh
        bridge.tick()
        clock.t += 0.01
    assert 8 <= len(wire.take(SET_ATTITUDE_TARGET)) <= 10 and wire.commands() == []
    for _ in range(50):  # then nothing more, and the landing
        bridge.tick()
        clock.t += 0.01
    assert wire.take(SET_ATTITUDE_TARGET) == []
    assert wire.commands()[0] == (SET_MODE, 1.0, 4.0, 6.0)
    assert "runtime commands stopped: no setpoints; AUTO_LAND" in caplog.text


def test_ardupilot_arms_only_with_thrust_as_thrust(clock, caplog):
    bridge, wire, send = make_bridge("ardupilot", clock)
    heartbeat(bridge, 3, 0, armed=False)  # STABILIZE
    run(bridge, send, clock, "arming", 0.3)
    assert ("param_request", b"GUID_OPTIONS") in wire.sent and wire.commands() == []  # not read yet: wait
    bridge.link.params["GUID_OPTIONS"] = 0.0
    with caplog.at_level(logging.ERROR):
        run(bridge, send, clock, "arming", 0.3)
    assert wire.commands() == [] and "GUID_OPTIONS = 0, bit 3 (+8) clear" in caplog.text
    bridge.link.params["GUID_OPTIONS"] = 9.0
    run(bridge, send, clock, "arming", 0.05)
    assert wire.commands() == [(SET_MODE, 1.0, 20.0, 0.0)]  # GUIDED_NOGPS at once: no stream to wait for


def test_nothing_is_sent_to_an_autopilot_of_another_kind(clock):
    bridge, wire, send = make_bridge("px4", clock)
    heartbeat(bridge, 3, 20, armed=True)  # ArduPilot in GUIDED_NOGPS, armed
    run(bridge, send, clock, "arming", 1.5)
    run(bridge, send, clock, "policy", 0.2)
    assert [m for m in wire.sent if m[0] != "heartbeat"] == []
