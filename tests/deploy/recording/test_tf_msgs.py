"""geometry_msgs/Transform, TransformStamped and tf2_msgs/TFMessage: our CDR bytes equal rosbags' (Humble's
definitions), by hand for known values and for random messages; the recorder's cached layouts (deploy/recording/
frames.py) equal the generic serializer."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.msgs import Header, Point, Pose, PoseStamped, Quaternion, Time, Vector3, Vector3Stamped, message_info
from deploy.msgs.types import TFMessage, Transform, TransformStamped
from deploy.recording import frames
from tests.deploy.transport.rosbags_bridge import from_rosbags, message_strategy, to_rosbags, typestore

TF_TYPES = ["geometry_msgs/msg/Transform", "geometry_msgs/msg/TransformStamped", "tf2_msgs/msg/TFMessage"]


@pytest.mark.parametrize("ros_type", TF_TYPES)
def test_bytes_equal_rosbags(ros_type: str) -> None:
    ts = typestore()

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message_strategy(ros_type))
    def check(msg: object) -> None:
        ours = msg.serialize()  # type: ignore[attr-defined]
        assert ours == bytes(ts.serialize_cdr(to_rosbags(msg, ros_type), ros_type))
        assert message_info(ros_type).cls.deserialize(ours) == msg
        assert from_rosbags(ts.deserialize_cdr(ours, ros_type), ros_type) == msg

    check()


def test_known_bytes_of_a_tf_message() -> None:
    """world -> base_link at 3 s + 5 ns, translation (1, 2, 3), rotation (0, 0, 0, 1), written out by hand."""
    tf = TFMessage([TransformStamped(Header(Time(3, 5), "world"), "base_link", Transform(Vector3(1.0, 2.0, 3.0)))])
    expected = (
        bytes.fromhex("00010000")  # CDR little endian
        + struct.pack("<I", 1)  # one transform
        + struct.pack("<iI", 3, 5)  # stamp
        + struct.pack("<I", 6)
        + b"world\0"  # offset 22
        + b"\0\0"  # -> 24, 4-aligned length
        + struct.pack("<I", 10)
        + b"base_link\0"  # offset 38
        + b"\0\0"  # -> 40: float64 8-aligned from the start of the payload
        + struct.pack("<7d", 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0)
    )
    assert tf.serialize() == expected
    ts = typestore()
    assert bytes(ts.serialize_cdr(to_rosbags(tf, "tf2_msgs/msg/TFMessage"), "tf2_msgs/msg/TFMessage")) == expected


def test_definitions_are_humbles() -> None:
    text = message_info(TFMessage).full_definition
    assert text.startswith("geometry_msgs/TransformStamped[] transforms\n")
    for dep in ("MSG: geometry_msgs/TransformStamped", "MSG: geometry_msgs/Transform", "MSG: std_msgs/Header"):
        assert dep in text


_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)
_STAMP = st.integers(-(2**31) * 10**9, (2**31 - 1) * 10**9 + 999_999_999)
_FRAME = st.sampled_from(["", "world", "base_link", "a", "abc", "abcd", "end_effector"])


@settings(max_examples=60, deadline=None)
@given(_FRAME, _FRAME, _STAMP, st.lists(_FLOAT, min_size=7, max_size=7))
def test_cached_layouts_equal_the_generic_serializer(parent: str, child: str, stamp_ns: int, values) -> None:
    tf = frames.tf_template(parent, child).pack_values(stamp_ns, values)
    assert tf == frames.transform_message(parent, child, stamp_ns, values).serialize()
    pose = frames.pose_template(parent).pack_values(stamp_ns, values)
    sec, nanosec = divmod(stamp_ns, 10**9)
    generic = PoseStamped(Header(Time(sec, nanosec), parent), Pose(Point(*values[:3]), Quaternion(*values[3:])))
    assert pose == generic.serialize()
    vector = frames.vector_template(child).pack_values(stamp_ns, values[:3])
    assert vector == Vector3Stamped(Header(Time(sec, nanosec), child), Vector3(*values[:3])).serialize()
