"""Byte compatibility of our message classes with ROS 2 CDR, checked against rosbags for every type."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rosbags.typesys import get_types_from_msg

from deploy.msgs import MESSAGES, Header, Imu, JointState, Quaternion, Time, Vector3, make_header, message_info
from tests.deploy.transport.rosbags_bridge import (
    CUSTOM_PACKAGES,
    from_rosbags,
    message_strategy,
    to_rosbags,
    typestore,
)

ALL_TYPES = sorted(MESSAGES)


@pytest.mark.parametrize("ros_type", ALL_TYPES)
def test_bytes_equal_rosbags_and_cross_decode(ros_type: str) -> None:
    ts = typestore()

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message_strategy(ros_type))
    def check(msg: object) -> None:
        ours = msg.serialize()  # type: ignore[attr-defined]
        theirs = bytes(ts.serialize_cdr(to_rosbags(msg, ros_type), ros_type))
        assert ours == theirs
        cls = message_info(ros_type).cls
        assert cls.deserialize(theirs) == msg
        assert from_rosbags(ts.deserialize_cdr(ours, ros_type), ros_type) == msg

    check()


def test_known_bytes_of_a_header() -> None:
    """Hand-written CDR: encapsulation CDR_LE, int32 sec, uint32 nanosec, uint32 length, 'ab\\0' (no tail padding)."""
    data = Header(Time(1, 2), "ab").serialize()
    assert data == bytes.fromhex("00010000010000000200000003000000616200")


def test_float64_after_string_is_8_byte_aligned() -> None:
    """XCDR1 aligns float64 to 8 bytes from the start of the payload (XCDR2 would use 4): the classic bug."""
    msg = Imu(header=make_header(1_500_000_000, "imu"), orientation=Quaternion(0.0, 0.0, 0.0, 1.0))
    payload = msg.serialize()[4:]
    # Header: 4 + 4 + 4 (len) + 4 ("imu\0") = 16 -> orientation.x at offset 16, already aligned.
    assert payload[16:24] == bytes(8)
    msg2 = Imu(header=make_header(0, "imu1"))  # 4+4+4+5 = 17 -> padded to 24
    assert len(msg2.serialize()) - 4 == 24 + 4 * 8 + 9 * 8 + 3 * 8 + 9 * 8 + 3 * 8 + 9 * 8


@pytest.mark.parametrize("ros_type", ALL_TYPES)
def test_dds_type_name(ros_type: str) -> None:
    info = message_info(ros_type)
    pkg, _, name = ros_type.split("/")
    assert info.cls.__idl_typename__ == f"{pkg}.msg.dds_.{name}_"
    assert info.dds_type == f"{pkg}::msg::dds_::{name}_"


@pytest.mark.parametrize("ros_type", ALL_TYPES)
def test_msg_text_matches_ros2_definitions(ros_type: str) -> None:
    """Our .msg texts (with dependencies) parse to exactly the fields of the ROS 2 Humble definitions."""
    ts = typestore()
    parsed = get_types_from_msg(message_info(ros_type).full_definition, ros_type)
    for name, (consts, fields) in parsed.items():
        if name.split("/")[0] in CUSTOM_PACKAGES:
            continue
        ref_consts, ref_fields = ts.fielddefs[name]
        assert fields == ref_fields, name
        assert sorted(consts) == sorted(ref_consts), name
    # the class fields follow the .msg order
    cls_fields = list(message_info(ros_type).cls.__dataclass_fields__)
    assert cls_fields == [f for f, _ in parsed[ros_type][1]]


def test_full_definition_is_concatenated_ros2_format() -> None:
    text = message_info(Imu).full_definition
    sections = text.split("=" * 80 + "\n")
    assert sections[0].startswith("std_msgs/Header header\n")
    assert [s.splitlines()[0] for s in sections[1:]] == [
        "MSG: std_msgs/Header",
        "MSG: builtin_interfaces/Time",
        "MSG: geometry_msgs/Quaternion",
        "MSG: geometry_msgs/Vector3",
    ]


def test_unknown_type_error_says_what_to_do() -> None:
    with pytest.raises(KeyError, match=r"deploy/msgs/types\.py"):
        message_info("nav_msgs/msg/Path")
    with pytest.raises(KeyError, match="not a registered ROS 2 message class"):
        message_info(dict)


@given(st.integers(-(2**62), 2**62))
def test_time_ns_roundtrip(ns: int) -> None:
    from deploy.msgs import time_from_ns, time_to_ns

    sec_fits = -(2**31) <= ns // 1_000_000_000 < 2**31
    if sec_fits:
        t = time_from_ns(ns)
        assert 0 <= t.nanosec < 1_000_000_000
        assert time_to_ns(t) == ns
    else:
        with pytest.raises(ValueError, match="int32"):
            time_from_ns(ns)


def test_defaults_match_ros2() -> None:
    assert Quaternion() == Quaternion(0.0, 0.0, 0.0, 1.0)
    assert Vector3() == Vector3(0.0, 0.0, 0.0)
    assert JointState().name == [] and JointState().name is not JointState().name
