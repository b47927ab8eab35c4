"""RIHS01 type hashes: equal to rosbags' implementation for every registered type, and to ROS 2's own values."""

from __future__ import annotations

import json

import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from deploy.msgs import MESSAGES, Imu, String
from deploy.msgs.type_hash import (
    MsgParseError,
    parse_fields,
    type_description,
    type_hash,
    user_data_entry,
)
from deploy.transport.ros_graph import RMW_DDS_COMMON_MSG_TEXT

ALL_TYPES = sorted(MESSAGES)
CUSTOM_PACKAGES = ("sim2real_msgs", "px4_msgs")

# The hashes ROS 2 Jazzy's generated code carries (rosidl_generator_c ``*__description.c``: ``get_type_hash``
# and the ``*__EXPECTED_HASH`` constants of referenced types), read from public Jazzy build trees.
ROS2_JAZZY_HASHES = {
    "builtin_interfaces/msg/Time": "b106235e25a4c5ed35098aa0a61a3ee9c9b18d197f398b0e4206cea9acf9c197",
    "std_msgs/msg/Bool": "feb91e995ff9ebd09c0cb3d2aed18b11077585839fb5db80193b62d74528f6c9",
    "std_msgs/msg/String": "df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18",
    "std_msgs/msg/Header": "f49fb3ae2cf070f793645ff749683ac6b06203e41c891e17701b1cb597ce6a01",
    "std_msgs/msg/MultiArrayLayout": "4c66e6f78e740ac103a94cf63259f968e48c617e7699e829b63c21a5cb50dac6",
    "geometry_msgs/msg/Point": "6963084842a9b04494d6b2941d11444708d892da2f4b09843b9c43f42a7f6881",
    "geometry_msgs/msg/Vector3": "cc12fe83e4c02719f1ce8070bfd14aecd40f75a96696a67a2a1f37f7dbb0765d",
    "geometry_msgs/msg/Pose": "d501954e9476cea2996984e812054b68026ae0bfae789d9a10b23daf35cc90fa",
    "geometry_msgs/msg/PoseStamped": "10f3786d7d40fd2b54367835614bff85d4ad3b5dab62bf8bca0cc232d73b4cd8",
    "sensor_msgs/msg/Imu": "7d9a00ff131080897a5ec7e26e315954b8eae3353c3f995c55faf71574000b5b",
    "nav_msgs/msg/Odometry": "3cc97dc7fb7502f8714462c526d369e35b603cfc34d946e3f2eda2766dfec6e0",
}
# rmw_dds_common (Jazzy: Gid is char[16]), from the same generated code.
RMW_DDS_COMMON_JAZZY_HASHES = {
    "rmw_dds_common/msg/Gid": "ab6f21cfbb0a6dbb837161e1110c2051a2850ed9f9c53944d7115d9bcebedf71",
    "rmw_dds_common/msg/NodeEntitiesInfo": "8ffef65ee2d088c63b1e8fcd31e800ba9fc8dbe0ee15ca60d1676de5218087a7",
    "rmw_dds_common/msg/ParticipantEntitiesInfo": "91a0593bacdcc50ea9bdcf849a938b128412cc1ea821245c663bcd26f83c295e",
}


def _rosbags_typestore():
    """Jazzy's typestore plus our custom packages, registered from the registry's .msg texts."""
    ts = get_typestore(Stores.ROS2_JAZZY)
    custom = {}
    for ros_type, info in MESSAGES.items():
        if ros_type.split("/")[0] in CUSTOM_PACKAGES:
            custom.update(get_types_from_msg(info.msg_text, ros_type))
    ts.register(custom)
    return ts


@pytest.fixture(scope="module")
def rosbags_store():
    return _rosbags_typestore()


@pytest.mark.parametrize("ros_type", ALL_TYPES)
def test_hash_equals_rosbags(ros_type: str, rosbags_store) -> None:
    ours = type_hash(ros_type)
    assert ours == rosbags_store.hash_rihs01(ros_type)
    assert ours.startswith("RIHS01_") and len(ours) == 7 + 64
    assert type_hash(MESSAGES[ros_type].cls) == ours


@pytest.mark.parametrize("ros_type", sorted(ROS2_JAZZY_HASHES))
def test_hash_equals_ros2_published(ros_type: str) -> None:
    assert type_hash(ros_type) == "RIHS01_" + ROS2_JAZZY_HASHES[ros_type]


@pytest.mark.parametrize("ros_type", sorted(RMW_DDS_COMMON_JAZZY_HASHES))
def test_rmw_dds_common_hashes_equal_ros2_jazzy(ros_type: str) -> None:
    """``char`` is uint8 in ROS 2's type description (rosbags says FIELD_TYPE_CHAR: its hash would differ)."""
    assert type_hash(ros_type, RMW_DDS_COMMON_MSG_TEXT) == "RIHS01_" + RMW_DDS_COMMON_JAZZY_HASHES[ros_type]


def test_description_of_header_by_hand() -> None:
    """The document ROS 2 hashes, written out for std_msgs/Header: field ids, references sorted, no defaults."""
    described = type_description("std_msgs/msg/Header")
    assert described == {
        "type_description": {
            "type_name": "std_msgs/msg/Header",
            "fields": [
                {
                    "name": "stamp",
                    "type": {
                        "type_id": 1,
                        "capacity": 0,
                        "string_capacity": 0,
                        "nested_type_name": "builtin_interfaces/msg/Time",
                    },
                },
                {
                    "name": "frame_id",
                    "type": {"type_id": 17, "capacity": 0, "string_capacity": 0, "nested_type_name": ""},
                },
            ],
        },
        "referenced_type_descriptions": [
            {
                "type_name": "builtin_interfaces/msg/Time",
                "fields": [
                    {
                        "name": "sec",
                        "type": {"type_id": 6, "capacity": 0, "string_capacity": 0, "nested_type_name": ""},
                    },
                    {
                        "name": "nanosec",
                        "type": {"type_id": 7, "capacity": 0, "string_capacity": 0, "nested_type_name": ""},
                    },
                ],
            }
        ],
    }
    json.dumps(described)  # JSON-ready


def test_field_types_of_arrays_sequences_and_bounds() -> None:
    text = (
        "uint8 A = 1\n"  # a constant: not a field
        "float64[9] cov\n"
        "float32[] data  # a comment\n"
        "int16[<=4] few\n"
        "string<=8 name 'x'\n"
        "string<=8[2] names\n"
        "wstring w\n"
        "char c\n"
        "byte b\n"
        "geometry_msgs/Vector3[3] vs\n"
        "Local[<=2] locals\n"
    )
    got = {
        name: (t.type_id, t.capacity, t.string_capacity, t.nested_type_name)
        for name, t in parse_fields(text, "p/msg/T")
    }
    assert got == {
        "cov": (11 + 48, 9, 0, ""),
        "data": (10 + 144, 0, 0, ""),
        "few": (4 + 96, 4, 0, ""),
        "name": (21, 0, 8, ""),
        "names": (21 + 48, 2, 8, ""),
        "w": (18, 0, 0, ""),
        "c": (3, 0, 0, ""),
        "b": (16, 0, 0, ""),
        "vs": (1 + 48, 3, 0, "geometry_msgs/msg/Vector3"),
        "locals": (1 + 96, 2, 0, "p/msg/Local"),
    }


def test_empty_message_gets_the_placeholder_member() -> None:
    assert [name for name, _ in parse_fields("# nothing\nint32 X=1\n", "p/msg/Empty")] == [
        "structure_needs_at_least_one_member"
    ]


def test_constants_and_defaults_do_not_change_the_hash() -> None:
    texts = {"p/msg/A": "int32 x\n", "p/msg/B": "int32 X = 3\nint32 x 7  # default 7\n"}
    assert type_hash("p/msg/A", texts).split("_", 1)[1] != ""
    a = type_description("p/msg/A", texts)["type_description"]["fields"]
    b = type_description("p/msg/B", texts)["type_description"]["fields"]
    assert a == b


def test_user_data_entry_and_errors() -> None:
    assert user_data_entry(String) == "typehash=RIHS01_" + ROS2_JAZZY_HASHES["std_msgs/msg/String"] + ";"
    assert user_data_entry(Imu()) == f"typehash={type_hash('sensor_msgs/msg/Imu')};"
    with pytest.raises(MsgParseError, match="no field name"):
        parse_fields("int32\n", "p/msg/Bad")
    with pytest.raises(MsgParseError, match=r"no \.msg text for p/msg/Missing"):
        type_hash("p/msg/T", {"p/msg/T": "Missing m\n"})
