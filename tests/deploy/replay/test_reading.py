"""Reading logs: sim2real MCAP, rosbag2 (sqlite3 and MCAP storage, Humble and Jazzy) through a topic map, and
damaged files (truncated, unknown type, missing topic) with errors that name the file, topic and position."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
import yaml

from calibration.sysid.synthetic_bag import MOTORS_TOPIC, ODOMETRY_TOPIC, px4_style_map, write_px4_style_bag
from deploy.replay import LogReadError, TopicMap, TopicMapError, load_flight
from deploy.replay.flight import _matrix_to_quat, _quat_ned_to_enu, rotations

STATE = ("pose", "twist", "command")


def _truncate(src, dst, fraction: float) -> int:
    blob = src.read_bytes()
    dst.write_bytes(blob[: int(len(blob) * fraction)])
    return len(blob)


def test_sim2real_log_reads_every_cycle(logs):
    f = load_flight(logs["good"], needed=STATE)
    assert f.problems == []
    assert f.topics["pose"] == "/sim2real/state/pose" and f.topics["command"] == "/sim2real/command/motors"
    assert len(f.state_t) == len(f.command_t) == len(f.obs) == len(f.action) == 400
    np.testing.assert_allclose(np.diff(f.command_t), 0.01, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(f.quaternion, axis=1), 1.0, atol=1e-6)  # float32 simulator
    assert f.obs.shape == (400, 22) and f.command.shape == (400, 4)
    assert [(t.from_state, t.to_state) for t in f.transitions] == [
        ("DISARMED", "ARMING"),
        ("ARMING", "ACTIVE"),
        ("ACTIVE", "DISARMED"),
    ]
    np.testing.assert_allclose(f.timing["cycle_s"], 0.01)
    # the logged observation's velocity term is the logged twist (the runtime builds one from the other)
    np.testing.assert_allclose(f.obs[:, 12:15], f.velocity, atol=1e-6)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("typestore", ["humble", "jazzy"])
def test_rosbag2_with_user_topics_reads_through_a_topic_map(logs, tmp_path, storage, typestore):
    ref = load_flight(logs["good"], needed=STATE)
    order = (1, 2, 3, 0)
    bag = write_px4_style_bag(ref, tmp_path / "bag", storage=storage, typestore=typestore, order=order)
    map_file = tmp_path / "px4.yaml"
    map_file.write_text(yaml.safe_dump(px4_style_map(21702.0, order, typestore)))
    f = load_flight(bag, TopicMap.from_yaml(map_file), STATE)
    assert f.topics["pose"] == ODOMETRY_TOPIC and f.topics["command"] == MOTORS_TOPIC
    np.testing.assert_allclose(f.state_t, ref.state_t, atol=1e-9)
    np.testing.assert_allclose(f.position, ref.position, atol=1e-9)  # NED -> ENU
    np.testing.assert_allclose(np.abs(np.sum(f.quaternion * ref.quaternion, 1)), 1.0, atol=1e-6)
    np.testing.assert_allclose(f.velocity, ref.velocity, atol=1e-6)  # body FRD twist -> world ENU
    np.testing.assert_allclose(f.angular_velocity, ref.angular_velocity, atol=1e-9)
    np.testing.assert_allclose(f.command, ref.command, atol=0.002 * 1.0 + 21702.0 * 6e-8)  # float32 normalized
    # the bare storage file reads as well as the bag directory
    storage_file = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    g = load_flight(storage_file, TopicMap.from_yaml(map_file), STATE)
    np.testing.assert_array_equal(g.position, f.position)


def test_ned_frd_conversion_matches_hand_computed_cases():
    # level, nose north in NED/FRD = nose along +y (north) in ENU/FLU: yaw +90 deg about z
    q = _quat_ned_to_enu(np.array([[1.0, 0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(rotations(q)[0], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    c = np.cos(np.pi / 8)
    rng = np.random.default_rng(0)
    qs = rng.normal(size=(50, 4))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    qs *= np.sign(qs[:, :1])
    np.testing.assert_allclose(_matrix_to_quat(rotations(qs)), qs, atol=1e-12)
    assert c > 0


def test_truncated_sim2real_mcap_keeps_the_readable_prefix(logs, tmp_path):
    ref = load_flight(logs["good"], needed=STATE)
    cut = tmp_path / "cut.mcap"
    size = _truncate(logs["good"], cut, 0.6)
    f = load_flight(cut, needed=STATE)
    assert len(f.problems) == 1
    problem = f.problems[0]
    assert str(cut) in problem and f"of {int(size * 0.6)}" in problem and "at byte" in problem
    assert 100 < len(f.state_t) < len(ref.state_t)
    n = len(f.state_t)
    np.testing.assert_array_equal(f.position, ref.position[:n])
    np.testing.assert_array_equal(f.command[: len(f.command_t)], ref.command[: len(f.command_t)])


def test_truncated_db3_recovers_rows_and_names_the_page(logs, tmp_path):
    ref = load_flight(logs["good"], needed=STATE)
    bag = write_px4_style_bag(ref, tmp_path / "bag", storage="sqlite3")
    db3 = next(bag.glob("*.db3"))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    shutil.copy(bag / "metadata.yaml", damaged / "metadata.yaml")
    _truncate(db3, damaged / db3.name, 0.6)
    f = load_flight(damaged, TopicMap.from_dict(px4_style_map(21702.0)), STATE)
    text = " ".join(f.problems)
    assert str(damaged / db3.name) in text and "after row" in text and "log time" in text
    n = len(f.state_t)
    assert 0.3 * len(ref.state_t) < n < len(ref.state_t)
    np.testing.assert_allclose(f.position, ref.position[:n], atol=1e-9)


def test_truncated_rosbag2_mcap_names_file_and_byte(logs, tmp_path):
    ref = load_flight(logs["good"], needed=STATE)
    bag = write_px4_style_bag(ref, tmp_path / "bag", storage="mcap")
    storage = next(bag.glob("*.mcap"))
    cut = tmp_path / "cut.mcap"
    _truncate(storage, cut, 0.7)  # rosbags writes 1 MB chunks: this 4 s bag is one chunk, nothing survives
    with pytest.raises(TopicMapError) as err:
        load_flight(cut, TopicMap.from_dict(px4_style_map(21702.0)), STATE)
    msg = str(err.value)
    assert str(cut) in msg and ODOMETRY_TOPIC in msg and "file ends inside a record" in msg and "at byte" in msg


def test_unknown_type_names_file_and_topic_and_can_be_defined(logs, tmp_path):
    ref = load_flight(logs["good"], needed=STATE)
    bag = write_px4_style_bag(ref, tmp_path / "bag", storage="sqlite3")
    db3 = next(bag.glob("*.db3"))
    with sqlite3.connect(db3) as conn:  # a vendor type the bag does not define and no typestore knows
        conn.execute("UPDATE topics SET type = 'px4_msgs/msg/ActuatorMotors' WHERE name = ?", (MOTORS_TOPIC,))
        conn.execute("DELETE FROM message_definitions")
    mapping = px4_style_map(21702.0)
    with pytest.raises(LogReadError) as err:
        load_flight(db3, TopicMap.from_dict(mapping), STATE)
    msg = str(err.value)
    assert str(db3) in msg and MOTORS_TOPIC in msg and "px4_msgs/msg/ActuatorMotors" in msg and "types:" in msg
    mapping["types"] = {"px4_msgs/msg/ActuatorMotors": "std_msgs/MultiArrayLayout layout\nfloat32[] data\n"}
    f = load_flight(db3, TopicMap.from_dict(mapping), STATE)
    np.testing.assert_allclose(f.command, ref.command, atol=0.002)


def test_missing_topic_lists_what_the_log_has(logs):
    with pytest.raises(TopicMapError) as err:
        load_flight(logs["good"], TopicMap.from_dict({"topics": {"pose": "/vehicle/pose"}}), STATE)
    msg = str(err.value)
    assert str(logs["good"]) in msg and "/vehicle/pose" in msg and "'pose'" in msg
    assert "/sim2real/state/twist (geometry_msgs/msg/TwistStamped)" in msg and "--map" in msg


def test_topic_of_the_wrong_type_is_refused(logs):
    tmap = TopicMap.from_dict({"topics": {"pose": "/sim2real/policy/observation"}})
    with pytest.raises(TopicMapError, match=r"/sim2real/policy/observation \(role 'pose'\) has type std_msgs"):
        load_flight(logs["good"], tmap, STATE)


def test_topic_map_validation():
    with pytest.raises(TopicMapError, match="unknown role 'odom'"):
        TopicMap.from_dict({"topics": {"odom": "/x"}})
    with pytest.raises(TopicMapError, match="frame must be"):
        TopicMap.from_dict({"frame": "nwu"})
    with pytest.raises(TopicMapError, match="unknown keys"):
        TopicMap.from_dict({"topics": {"command": {"topic": "/m", "gain": 2}}})


def test_not_a_log(tmp_path):
    bogus = tmp_path / "notes.mcap"
    bogus.write_bytes(b"hello world, not a log")
    with pytest.raises(LogReadError, match="not an MCAP file"):
        load_flight(bogus)
    with pytest.raises(LogReadError, match="does not exist"):
        load_flight(tmp_path / "missing.mcap")


def test_fast_cdr_readers_agree_with_rosbags(logs, tmp_path):
    from deploy.replay.cdr_fast import FAST, decode_many
    from deploy.replay.flight import _series, _twist_values
    from deploy.replay.sources import make_typestore, read_messages

    ref = load_flight(logs["good"], needed=STATE)
    bag = write_px4_style_bag(ref, tmp_path / "bag", storage="mcap")
    checked = set()
    for path in (logs["good"], bag):
        raw = read_messages(path)
        for topic in raw.topics:
            msgs = raw.of(topic)
            if not msgs or msgs[0].ros_type not in FAST:
                continue
            generic = _twist_values if "Twist" in msgs[0].ros_type else None
            if generic is None:
                from deploy.replay.flight import _pose_values

                generic = _pose_values if "Pose" in msgs[0].ros_type or "Odometry" in msgs[0].ros_type else None
            if generic is None:
                field = "rpm" if "MotorCommand" in msgs[0].ros_type else "data"
                generic = lambda m, f=field: list(getattr(m, f))  # noqa: E731
            fast = _series(raw, msgs, 0, True, generic, topic)
            slow = _series(raw, msgs, 0, True, generic, topic, fast=False)
            np.testing.assert_array_equal(fast[0], slow[0])
            np.testing.assert_allclose(fast[1], slow[1], rtol=0, atol=1e-12)
            checked.add(msgs[0].ros_type)
    assert checked == set(FAST)
    # big-endian CDR (allowed by the spec, written by some DDS vendors)
    store = make_typestore("humble")
    t = store.types
    msg = t["geometry_msgs/msg/PoseStamped"](
        header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=3, nanosec=7), frame_id="map"),
        pose=t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](1.0, 2.0, 3.0),
            orientation=t["geometry_msgs/msg/Quaternion"](0.1, 0.2, 0.3, 0.9),
        ),
    )
    for little in (True, False):
        blob = bytes(store.serialize_cdr(msg, "geometry_msgs/msg/PoseStamped", little_endian=little))
        stamps, values = decode_many("geometry_msgs/msg/PoseStamped", [blob])
        assert stamps[0] == 3_000_000_007
        np.testing.assert_array_equal(values[0], [1.0, 2.0, 3.0, 0.1, 0.2, 0.3, 0.9])
