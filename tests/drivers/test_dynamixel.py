"""Dynamixel Protocol 2.0: ROBOTIS' dynamixel_sdk (the independent implementation) against drivers.fake_dynamixel
(written from the e-manual) on a pseudo-terminal, and drivers.dynamixel_bus / dynamixel_bridge on top."""

from __future__ import annotations

import os
import random
import struct
import time

import numpy as np
import pytest

from tests.domains import random_domain

dynamixel_sdk = pytest.importorskip("dynamixel_sdk")

from deploy.articulated_wire import joint_command_msg  # noqa: E402
from deploy.msgs import JointCommand, JointState  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from drivers.dynamixel_bridge import DynamixelBridge  # noqa: E402
from drivers.dynamixel_bus import ADDR_GOAL_POSITION, ADDR_TORQUE_ENABLE, DynamixelBus, ServoJoint, to_ticks  # noqa: E402
from drivers.fake_dynamixel import PING, SYNC_READ, SYNC_WRITE, WRITE, FakeDynamixelBus, crc16, packet  # noqa: E402

JOINTS = (ServoJoint("j1", 1), ServoJoint("j2", 2, sign=-1, offset_rad=0.5), ServoJoint("j3", 7))


@pytest.fixture
def fake():
    with FakeDynamixelBus([1, 2, 7]) as bus:
        yield bus


def test_crc_equals_the_sdk_and_the_e_manual_example():
    sdk = dynamixel_sdk.PacketHandler(2.0)
    rng = random.Random(0)
    for n in (0, 1, 10, 200):
        data = [rng.randrange(256) for _ in range(n)]
        assert crc16(bytes(data)) == sdk.updateCRC(0, data, n)
    # e-manual, Protocol 2.0 PING example: ID 1 -> FF FF FD 00 01 03 00 01 19 4E
    assert packet(1, PING) == bytes.fromhex("FFFFFD000103000119 4E".replace(" ", ""))


def _unstuffed(dxl_id: int, instruction: int, params: bytes) -> bytes:
    raw = bytes([0xFF, 0xFF, 0xFD, 0x00, dxl_id]) + struct.pack("<H", len(params) + 3) + bytes([instruction]) + params
    return raw + struct.pack("<H", crc16(raw))


def test_sdk_packets_equal_ours_byte_for_byte(fake):
    bus = DynamixelBus(fake.port, JOINTS)
    try:
        assert bus.ping() == {1: 1020, 2: 1020, 7: 1020}  # XM430-W350
        bus.torque(True)
        ticks = bus.write(np.array([0.1, 0.2, -0.3]))
        bus.read()
    finally:
        bus.close()
    sync_write = b"".join(bytes([i]) + struct.pack("<i", t) for i, t in zip((1, 2, 7), ticks, strict=True))
    assert fake.log == [
        packet(1, PING),
        packet(2, PING),
        packet(7, PING),
        *(packet(i, WRITE, struct.pack("<H", ADDR_TORQUE_ENABLE) + b"\x01") for i in (1, 2, 7)),
        packet(0xFE, SYNC_WRITE, struct.pack("<HH", ADDR_GOAL_POSITION, 4) + sync_write),
        packet(0xFE, SYNC_READ, struct.pack("<HH", 128, 8) + bytes([1, 2, 7])),
    ]
    assert fake.crc_errors == 0


def test_byte_stuffing_equals_the_sdk_and_the_fake_reads_both_forms(fake):
    """Data holding FF FF FD: ours is stuffed (FF FF FD FD) as the SDK's addStuffing returns it. The SDK's txPacket
    (dynamixel_sdk 4.1.0, Python) drops addStuffing's result when the length grows and sends the packet unstuffed;
    the fake reads both (an FD is removed only after FF FF FD FD), as a servo following the e-manual does."""
    params = struct.pack("<HI", ADDR_GOAL_POSITION, 0xFDFFFF00)  # 74 00 | 00 FF FF FD
    ours = packet(1, WRITE, params)
    assert b"\xff\xff\xfd\xfd" in ours and len(ours) == len(_unstuffed(1, WRITE, params)) + 1
    sdk = dynamixel_sdk.PacketHandler(2.0)
    unstuffed = list(_unstuffed(1, WRITE, params))
    stuffed = sdk.addStuffing([*unstuffed[:-2], 0, 0])
    assert bytes(stuffed[:-2]) == ours[:-2]  # header with the new length, stuffed body (the SDK adds the CRC later)
    bus = DynamixelBus(fake.port, JOINTS)
    try:
        assert sdk.write4ByteTxRx(bus.port, 1, ADDR_GOAL_POSITION, 0xFDFFFF00)[0] == dynamixel_sdk.COMM_SUCCESS
        assert fake.log[-1] == _unstuffed(1, WRITE, params)  # what the SDK sent
        expected = struct.unpack("<i", struct.pack("<I", 0xFDFFFF00))[0]
        assert fake.servos[1].get("goal_position") == expected
        fake.servos[1].write(ADDR_GOAL_POSITION, bytes(4))
        fd = os.open(fake.port, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, ours)
            time.sleep(0.1)
        finally:
            os.close(fd)
        assert fake.log[-1] == ours and fake.servos[1].get("goal_position") == expected
    finally:
        bus.close()


def test_positions_round_trip_with_sign_offset_and_limits(fake):
    bus = DynamixelBus(fake.port, JOINTS)
    try:
        q0, _ = bus.read()
        np.testing.assert_allclose(q0, [0.0, 0.5, 0.0])  # every servo at tick 2048
        bus.write(np.array([1.0, 0.5, 0.0]))  # torque off: goals stored, nothing moves
        time.sleep(0.05)
        np.testing.assert_allclose(bus.read()[0], q0)
        bus.torque(True)
        goal = np.array([0.7, -0.4, -1.2])
        ticks = bus.write(goal)
        time.sleep(0.05)  # a sync write has no status: give the bus a moment
        assert ticks == [2048 + round(0.7 / (2 * np.pi / 4096)), 2048 + round(0.9 / (2 * np.pi / 4096)), 2048 - 782]
        assert fake.servos[2].get("goal_position") == ticks[1] and ticks[1] > 2048  # sign -1: 0.5 - (-0.4)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and np.abs(bus.read()[0] - goal).max() > 2e-3:
            time.sleep(0.02)
        q, qd = bus.read()
        np.testing.assert_allclose(q, goal, atol=2 * np.pi / 4096)
        assert np.abs(qd).max() < 0.1  # arrived, at rest
        assert to_ticks([ServoJoint("x", 1, max_ticks=3000)], np.array([10.0])) == [3000]
    finally:
        bus.close()


def test_a_packet_with_a_bad_crc_is_dropped(fake):
    bus = DynamixelBus(fake.port, JOINTS)
    try:
        bad = bytearray(packet(1, WRITE, struct.pack("<HB", ADDR_TORQUE_ENABLE, 1)))
        bad[-1] ^= 0x01
        fd = os.open(fake.port, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, bytes(bad))
            time.sleep(0.1)
        finally:
            os.close(fd)
        assert fake.crc_errors == 1 and fake.servos[1].get("torque_enable") == 0  # dropped, nothing changed
        assert bus.ping()[1] == 1020  # the bus goes on
    finally:
        bus.close()


def test_bridge_arms_commands_and_disarms_over_dds(fake):
    transport = TransportConfig.from_mapping(None)
    bus = DynamixelBus(fake.port, JOINTS)
    names = [j.name for j in JOINTS]
    with Ros2Node("dxl_test", domain_id=random_domain(), config=LOOPBACK_CONFIG) as node:
        bridge = DynamixelBridge(node, transport, bus, "sim2real", command_timeout_s=0.3)
        t = transport.topic
        cmd = node.publisher(t("joint_command").name, JointCommand, t("joint_command").qos)
        states = node.subscription(t("joint_states").name, JointState, t("joint_states").qos)
        assert cmd.wait_for_subscribers(1, 10.0) and states.wait_for_publishers(1, 10.0)

        def send(q, kp, names=names):
            msg = joint_command_msg(names, q, kp, np.zeros(len(names)), "policy", time.time_ns())
            msg.vehicle_id = "sim2real"
            cmd.publish(msg)
            time.sleep(0.02)
            bridge.tick()

        goal = np.array([0.3, 0.2, -0.5])
        send(goal, np.ones(3))
        assert bridge.torque_on and all(s.get("torque_enable") for s in fake.servos.values())
        send(np.array([0.3, np.nan, 0.0]), np.ones(3))  # refused: NaN
        send(np.zeros(2), np.ones(2), names=["j1", "j2"])  # refused: a joint missing
        send(np.zeros(4), np.ones(4), names=[*names, "gripper"])  # refused: a joint not on the bus
        assert bridge.refused == 3
        for _ in range(100):
            bridge.tick()
            time.sleep(0.01)
        assert states.wait(2.0)
        msg = states.latest()
        assert list(msg.name) == names
        np.testing.assert_allclose(msg.position, goal, atol=2e-3)  # the refused commands changed nothing
        send(goal, np.zeros(3))  # stop: torque off
        assert not bridge.torque_on and not any(s.get("torque_enable") for s in fake.servos.values())
    bus.close()
