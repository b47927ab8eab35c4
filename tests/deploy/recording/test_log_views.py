"""What the recorder writes for people who look at a log: ``/tf`` from every pose (read back by our reader,
rosbags and mcap-ros2-support), the reference and its error, the Foxglove layout beside the log (valid JSON that
names the log's own topics, under its namespace), and the rosbag2 metadata.yaml of a directory of logs (rosbags
opens the directory and reads every message back)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from deploy.msgs import (
    MotorCommand,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    RateThrustCommand,
    Vector3,
    make_header,
    time_to_ns,
)
from deploy.recording import FlightRecorder, read_log
from deploy.recording.bag_metadata import write_bag_metadata
from deploy.recording.foxglove_layout import find_topics, layout_path
from deploy.transport import TransportConfig

HUMBLE = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000_000_000_000
DT = 10_000_000  # 100 Hz


def pose_at(i: int, frame: str = "world") -> PoseStamped:
    a = 0.1 * i
    q = Quaternion(0.0, 0.0, math.sin(a / 2), math.cos(a / 2))
    return PoseStamped(
        make_header(T0 + i * DT - 3_000_000, frame), Pose(Point(math.cos(a), math.sin(a), 1.0 + 0.01 * i), q)
    )


def fly(path: Path, n: int = 20, frame: str = "world", namespace: str | None = None, ctbr: bool = False) -> None:
    """A small run: each cycle a pose (stamped 3 ms before the cycle), the reference, a command."""
    topics = TransportConfig.from_mapping({"namespace": namespace} if namespace else None)
    with FlightRecorder(path, topics=topics, min_free_bytes=0) as rec:
        rec.write_safety_transition("DISARMED", "ARMING", "operator arm", "", T0)
        for i in range(n):
            t = T0 + i * DT
            rec.write_state(pose_at(i, frame), t)
            rec.write_reference([1.0, 0.0, 1.0 + 0.02 * i], t, frame_id=frame)
            if ctbr:
                rec.write_command(RateThrustCommand(make_header(t), 0.3, Vector3(0.0, 0.1, 0.0)), t)
            else:
                rec.write_command(MotorCommand(make_header(t), [15000.0 + i] * 4), t)
        rec.write_safety_transition("ARMING", "ACTIVE", "motors spun up", "", T0 + n * DT)


def as_tuple(tf) -> tuple:
    t, r = tf.transform.translation, tf.transform.rotation
    return (tf.header.frame_id, tf.child_frame_id, time_to_ns(tf.header.stamp), t.x, t.y, t.z, r.x, r.y, r.z, r.w)


def xyz(v) -> tuple[float, float, float]:
    return (v.x, v.y, v.z)


def xyzw(q) -> tuple[float, float, float, float]:
    return (q.x, q.y, q.z, q.w)


def expected_tf(i: int, parent: str = "world", child: str = "base_link") -> tuple:
    p = pose_at(i)
    pos, q = p.pose.position, p.pose.orientation
    return (parent, child, time_to_ns(p.header.stamp), pos.x, pos.y, pos.z, q.x, q.y, q.z, q.w)


def test_tf_equals_every_pose_in_three_readers(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    fly(path, n=20, frame="map")  # a driver that says "map": /tf still names the frame world
    log = read_log(path)
    base = [
        as_tuple(m.msg.transforms[0]) for m in log.topic("/tf") if m.msg.transforms[0].child_frame_id == "base_link"
    ]
    assert base == [expected_tf(i) for i in range(20)]
    assert [m.log_time_ns for m in log.topic("/tf")][:2] == [T0, T0]  # the cycle's time, as the pose
    # the reference: its own topic, world -> reference, and the error to the pose recorded before it
    refs = [m.msg for m in log.topic("/sim2real/policy/reference")]
    assert [(r.header.frame_id, r.pose.position.z) for r in refs[:2]] == [("world", 1.0), ("world", 1.02)]
    ref_tf = [
        as_tuple(m.msg.transforms[0]) for m in log.topic("/tf") if m.msg.transforms[0].child_frame_id == "reference"
    ]
    assert ref_tf[3] == ("world", "reference", T0 + 3 * DT, 1.0, 0.0, 1.06, 0.0, 0.0, 0.0, 1.0)
    errors = [m.msg.vector for m in log.topic("/sim2real/policy/tracking_error")]
    p3 = pose_at(3).pose.position
    assert (errors[3].x, errors[3].y, errors[3].z) == pytest.approx((p3.x - 1.0, p3.y, p3.z - 1.06), abs=1e-12)
    # rosbags, with the definitions the file carries
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if c.topic == "/tf"]
        assert conns[0].msgtype == "tf2_msgs/msg/TFMessage" and conns[0].ext.offered_qos_profiles[0].depth == 100
        got = [reader.deserialize(raw, c.msgtype).transforms[0] for c, _, raw in reader.messages(connections=conns)]
    rb = [
        (t.header.frame_id, t.child_frame_id, t.header.stamp.sec * 10**9 + t.header.stamp.nanosec, *xyz(tr), *xyzw(rot))
        for t in got
        if t.child_frame_id == "base_link"
        for tr, rot in [(t.transform.translation, t.transform.rotation)]
    ]
    assert rb == [expected_tf(i) for i in range(20)]
    # mcap-ros2-support
    with open(path, "rb") as f:
        decoded = [
            msg.transforms[0]
            for _, c, _, msg in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages(
                topics=["/tf"]
            )
        ]
    assert [(t.child_frame_id, t.transform.translation.x) for t in decoded[:2]] == [
        ("base_link", expected_tf(0)[3]),
        ("reference", 1.0),
    ]


def test_an_arm_end_effector_pose_gives_base_link_to_end_effector(tmp_path: Path) -> None:
    path = tmp_path / "arm.mcap"
    fly(path, n=3, frame="panda_link0")
    log = read_log(path)
    base = [
        as_tuple(m.msg.transforms[0]) for m in log.topic("/tf") if m.msg.transforms[0].child_frame_id == "end_effector"
    ]
    assert base == [expected_tf(i, "base_link", "end_effector") for i in range(3)]
    static = log.topic("/tf_static")
    assert len(static) == 1 and as_tuple(static[0].msg.transforms[0])[:2] == ("world", "base_link")
    assert as_tuple(static[0].msg.transforms[0])[3:] == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    assert {m.msg.transforms[0].header.frame_id for m in log.topic("/tf")} == {"base_link"}  # the reference too
    with AnyReader([path]) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
    assert qos["/tf_static"].durability.name == "TRANSIENT_LOCAL" and qos["/tf_static"].depth == 1


def message_paths(layout: dict) -> list[str]:
    text = json.dumps(layout["configById"])
    return re.findall(r'"value": "([^"]+)"', text)


@pytest.mark.parametrize("ctbr", [False, True])
def test_layout_names_the_logs_own_topics(tmp_path: Path, ctbr: bool) -> None:
    path = tmp_path / "cf1.mcap"
    fly(path, n=3, namespace="/cf1", ctbr=ctbr)
    layout = json.loads(layout_path(path).read_text())  # valid JSON
    assert layout_path(path).name == "cf1.foxglove-layout.json"
    topics = {m.topic for m in read_log(path).messages}
    paths = message_paths(layout)
    assert paths and all(p.split(".")[0] in topics for p in paths), (paths, topics)
    config = layout["configById"]
    assert config["3D!vehicle"]["followTf"] == "base_link"
    assert config["3D!vehicle"]["layers"]["grid"]["frameId"] == "world"
    assert set(config["3D!vehicle"]["topics"]) == {"/cf1/state/pose", "/cf1/policy/reference"}
    assert "/cf1/state/pose.pose.position.z" in paths and "/cf1/policy/reference.pose.position.z" in paths
    assert "/cf1/policy/tracking_error.vector.x" in paths
    assert config["StateTransitions!safety"]["paths"][0]["value"] == "/cf1/safety/transition.to_state"
    if ctbr:
        assert "/cf1/command/rates.thrust" in paths and "/cf1/command/rates.body_rate.z" in paths
    else:
        assert [p for p in paths if "command" in p] == [f"/cf1/command/motors.rpm[{i}]" for i in range(4)]
    # every panel the mosaic names is configured, and every configured panel is placed
    placed = re.findall(r'"(\w+![\w]+)"', json.dumps(layout["layout"]))
    assert sorted(placed) == sorted(config)


def test_find_topics_by_type_and_name() -> None:
    roles = find_topics(
        {
            "/a/state/pose": "geometry_msgs/msg/PoseStamped",
            "/a/policy/reference": "geometry_msgs/msg/PoseStamped",
            "/a/cmd": "sim2real_msgs/msg/MotorCommand",
            "/tf": "tf2_msgs/msg/TFMessage",
        }
    )
    assert roles == {"pose": "/a/state/pose", "reference": "/a/policy/reference", "motors": "/a/cmd", "tf": "/tf"}


def test_metadata_yaml_opens_a_directory_of_logs_in_rosbags(tmp_path: Path) -> None:
    fly(tmp_path / "20250101-120000.mcap", n=5)
    assert not (tmp_path / "metadata.yaml").exists()  # one log: nothing to gather
    fly(tmp_path / "20250101-120500.mcap", n=7, ctbr=True)
    (tmp_path / "20250101-121000.mcap").write_bytes(b"\x89MCAP0\r\n")  # a run still being written, or cut short
    meta = yaml.safe_load((tmp_path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9 and meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["20250101-120000.mcap", "20250101-120500.mcap"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts["/sim2real/state/pose"] == 12 and counts["/tf"] == 24
    assert counts["/sim2real/command/motors"] == 5 and counts["/sim2real/command/rates"] == 7
    tf_meta = next(
        t["topic_metadata"] for t in meta["topics_with_message_count"] if t["topic_metadata"]["name"] == "/tf"
    )
    assert tf_meta["serialization_format"] == "cdr" and tf_meta["type"] == "tf2_msgs/msg/TFMessage"
    assert tf_meta["offered_qos_profiles"][0]["reliability"] == "reliable"
    assert meta["starting_time"]["nanoseconds_since_epoch"] == T0
    per_cycle = 6  # pose, /tf, reference, /tf, error, command; and two safety transitions per run
    assert [f["message_count"] for f in meta["files"]] == [5 * per_cycle + 2, 7 * per_cycle + 2]
    with Reader(tmp_path) as reader:
        assert reader.message_count == meta["message_count"] == 12 * per_cycle + 4
        pose_conns = [c for c in reader.connections if c.topic == "/sim2real/state/pose"]
        poses = [HUMBLE.deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages(pose_conns)]
        # every message comes back, the run's QoS with it
        assert len(list(reader.messages())) == reader.message_count
        assert pose_conns[0].ext.offered_qos_profiles[0].reliability.name == "BEST_EFFORT"
    assert [p.pose.position.z for p in poses] == [pose_at(i).pose.position.z for i in range(5)] + [
        pose_at(i).pose.position.z for i in range(7)
    ]
    assert write_bag_metadata(tmp_path, min_logs=3) is None  # two closed logs are fewer than three
