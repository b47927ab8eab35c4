"""px4_msgs (PX4 v1.15) types: registered in the message table, CDR bytes equal to rosbags' with the same .msg texts
(the generic check over every type is tests/deploy/transport/test_cdr_compat.py), and bytes written by hand."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from deploy.msgs import message_info, px4
from tests.deploy.transport.rosbags_bridge import from_rosbags, to_rosbags, typestore

PX4_TYPES = sorted(px4.CLASSES)


@pytest.mark.parametrize("ros_type", PX4_TYPES)
def test_registered_with_px4_dds_type_name(ros_type: str) -> None:
    info = message_info(ros_type)
    name = ros_type.split("/")[-1]
    assert info.cls is px4.CLASSES[ros_type]
    assert info.dds_type == f"px4_msgs::msg::dds_::{name}_"
    assert info.cls.__idl_typename__ == f"px4_msgs.msg.dds_.{name}_"
    assert message_info(info.cls) is info and info.dependencies == ()


@pytest.mark.parametrize("ros_type", PX4_TYPES)
def test_default_message_bytes_equal_rosbags(ros_type: str) -> None:
    msg = px4.CLASSES[ros_type]()
    ts = typestore()
    theirs = bytes(ts.serialize_cdr(to_rosbags(msg, ros_type), ros_type))
    assert msg.serialize() == theirs
    back = from_rosbags(ts.deserialize_cdr(theirs, ros_type), ros_type)
    for name in msg.__dataclass_fields__:  # NaN defaults: compare with NaN == NaN
        np.testing.assert_array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(msg, name)))


def test_offboard_control_mode_bytes_by_hand() -> None:
    """CDR_LE header, uint64 timestamp (8-aligned at offset 0), seven bools."""
    msg = px4.OffboardControlMode(timestamp=0x0102030405060708, direct_actuator=True)
    assert msg.serialize() == bytes.fromhex("00010000080706050403020100000000000001")


def test_vehicle_command_layout_by_hand() -> None:
    """param1..4 float32, param5/6 float64 (8-aligned: offset 24), param7, command uint32, 3 x uint8, uint16
    source_component (2-aligned), confirmation, from_external."""
    msg = px4.VehicleCommand(
        timestamp=7, param1=1.0, param2=6.0, command=176, target_system=1, source_component=0x0102, from_external=True
    )
    payload = msg.serialize()[4:]
    assert struct.unpack_from("<Q4f", payload, 0) == (7, 1.0, 6.0, 0.0, 0.0)
    assert struct.unpack_from("<2dfI", payload, 24) == (0.0, 0.0, 0.0, 176)
    assert struct.unpack_from("<3BxHB?", payload, 48) == (1, 0, 0, 0x0102, 0, True)
    assert len(payload) == 56


def test_actuator_motors_nan_is_default_and_survives_the_wire() -> None:
    msg = px4.ActuatorMotors(timestamp=1, control=[0.5] + [math.nan] * 11)
    back = px4.ActuatorMotors.deserialize(msg.serialize())
    assert back.control[0] == 0.5 and all(math.isnan(c) for c in back.control[1:])
    assert len(px4.ActuatorMotors().control) == px4.ActuatorMotors.NUM_CONTROLS


def test_vehicle_rates_setpoint_layout_by_hand_and_rosbags():
    """PX4 v1.15 msg/VehicleRatesSetpoint.msg: uint64 timestamp, float32 roll, pitch, yaw (rad/s FRD), float32[3]
    thrust_body (normalized, z negative = up for a multicopter), bool reset_integral: 33 bytes after the header."""
    msg = px4.VehicleRatesSetpoint(
        timestamp=12, roll=0.5, pitch=-0.25, yaw=1.0, thrust_body=[0.0, 0.0, -0.5], reset_integral=True
    )
    data = msg.serialize()
    assert data[:4] == bytes.fromhex("00010000")  # CDR little endian
    assert struct.unpack("<Q3f3f?", data[4:]) == (12, 0.5, -0.25, 1.0, 0.0, 0.0, -0.5, True)
    ros_type = "px4_msgs/msg/VehicleRatesSetpoint"
    ts = typestore()
    assert bytes(ts.serialize_cdr(to_rosbags(msg, ros_type), ros_type)) == data
    back = from_rosbags(ts.deserialize_cdr(data, ros_type), ros_type)
    assert (back.roll, back.pitch, back.yaw, back.reset_integral) == (0.5, -0.25, 1.0, True)
    assert list(back.thrust_body) == [0.0, 0.0, -0.5]
