"""The flight recorder: three independent readers agree with what was written; the golden log still reads."""

from __future__ import annotations

import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader

from deploy.msgs import (
    Float32MultiArray,
    JointCommand,
    LoopTiming,
    MotorCommand,
    MultiArrayDimension,
    MultiArrayLayout,
    PoseStamped,
    SafetyTransition,
    String,
    Vector3,
    make_header,
    message_info,
)
from deploy.msgs.types import Header, TFMessage, Transform, TransformStamped
from deploy.recording import FlightRecorder, RecorderError, read_log
from deploy.transport import TransportConfig
from tests.deploy.recording.golden import GOLDEN_PATH, golden_messages, write_messages
from tests.deploy.transport.rosbags_bridge import from_rosbags

TOPICS = TransportConfig().resolved()
_KIND_TOPIC = {"observation": "observation", "action": "action", "timing": "timing"}


def expected(kind: str, payload: Any, stamp: int) -> tuple[str, Any]:
    """(topic, message as it reads back) for one item of golden_messages()."""
    if kind in ("observation", "action"):
        layout = MultiArrayLayout([MultiArrayDimension(kind, len(payload), len(payload))], 0)
        msg: Any = Float32MultiArray(layout, list(payload))
        topic = TOPICS[kind].name
    elif kind == "timing":
        msg, topic = LoopTiming(make_header(stamp), *payload), TOPICS["timing"].name
    elif kind == "safety_transition":
        msg, topic = SafetyTransition(make_header(stamp), *payload), TOPICS["safety_transition"].name
    elif kind == "command":
        key = "motor_command" if isinstance(payload, MotorCommand) else "joint_command"
        msg, topic = payload, TOPICS[key].name
    else:
        key = {t.msg_type: k for k, t in TOPICS.items() if k in ("pose", "twist", "imu", "joint_states", "battery")}
        msg, topic = payload, TOPICS[key[type(payload)]].name
    return topic, type(msg).deserialize(msg.serialize())  # float32 fields read back rounded


EXPECTED = [(*expected(k, p, t), t) for k, p, t in golden_messages()]


def with_tf(items: list[tuple[str, Any, int]]) -> list[tuple[str, Any, int]]:
    """What today's recorder writes for ``items``: each pose followed by its ``/tf`` world -> base_link (the
    golden file predates /tf)."""
    out = []
    for topic, msg, t in items:
        out.append((topic, msg, t))
        if isinstance(msg, PoseStamped):
            p = msg.pose.position
            transform = Transform(Vector3(p.x, p.y, p.z), msg.pose.orientation)
            out.append(
                ("/tf", TFMessage([TransformStamped(Header(msg.header.stamp, "world"), "base_link", transform)]), t)
            )
    return out


def check_all_readers(path: Path, expected: list[tuple[str, Any, int]] = EXPECTED) -> None:
    # 1. our reader
    contents = read_log(path)
    assert contents.complete and contents.truncated_at is None
    assert [(m.topic, m.msg, m.log_time_ns) for m in contents.messages] == expected
    assert contents.metadata["sim2real"]["robot"] == "golden"
    # 2. rosbags (types from the schemas in the file)
    with AnyReader([path]) as reader:
        got = [
            (c.topic, from_rosbags(reader.deserialize(raw, c.msgtype), c.msgtype), t) for c, t, raw in reader.messages()
        ]
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
    assert sorted(got, key=_order) == sorted(expected, key=_order)
    assert qos[TOPICS["imu"].name].depth == 5 and qos[TOPICS["imu"].name].reliability.name == "BEST_EFFORT"
    assert qos[TOPICS["motor_command"].name].reliability.name == "RELIABLE"
    # 3. mcap-ros2-support
    got = [(c.topic, from_rosbags(msg, s.name), m.log_time) for s, c, m, msg in decoded_mcap(path)]
    assert sorted(got, key=_order) == sorted(expected, key=_order)


def decoded_mcap(path: Path) -> list[tuple[Any, Any, Any, Any]]:
    """(schema, channel, message, decoded) through mcap's seeking reader and mcap-ros2-support's decoder."""
    with open(path, "rb") as f:
        return list(make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages())


def _order(item: tuple[str, Any, int]) -> tuple[int, str, bytes]:
    return item[2], item[0], item[1].serialize()


def test_golden_file_reads_with_three_readers() -> None:
    assert GOLDEN_PATH.stat().st_size < 50_000
    check_all_readers(GOLDEN_PATH)


def test_fresh_log_reads_with_three_readers(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    with FlightRecorder(path, min_free_bytes=0, metadata={"sim2real": {"robot": "golden"}}) as rec:
        write_messages(rec, golden_messages())
    check_all_readers(path, with_tf(EXPECTED))


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_compressions_and_schema_text(tmp_path: Path, compression: str) -> None:
    path = tmp_path / f"{compression}.mcap"
    command = JointCommand(make_header(5), ["j1"], [0.5], [0.0], [0.0], [20.0], [0.5], "policy")
    with FlightRecorder(path, min_free_bytes=0, compression=compression) as rec:
        rec.write_command(command, 5)
        rec.write("/custom/text", String("free text"), 6)
    contents = read_log(path)
    assert [m.msg for m in contents.messages] == [command, String("free text")]
    assert contents.messages[0].topic == "/sim2real/command/joints"
    schemas = {s.name: s.data.decode() for s, _, _, _ in decoded_mcap(path)}
    assert schemas["sim2real_msgs/msg/JointCommand"] == message_info(JointCommand).full_definition


def test_preflight_refuses_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    path.write_bytes(b"old run")
    with pytest.raises(RecorderError, match="already exists"):
        FlightRecorder(path, min_free_bytes=0)
    assert path.read_bytes() == b"old run"


def test_preflight_refuses_unwritable_directory(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(RecorderError, match="cannot create the log directory"):
        FlightRecorder(not_a_dir / "logs" / "run.mcap", min_free_bytes=0)


def test_preflight_refuses_full_disk(tmp_path: Path) -> None:
    with pytest.raises(RecorderError, match=r"MB free .* needs at least"):
        FlightRecorder(tmp_path / "run.mcap", min_free_bytes=10**18)
    assert not (tmp_path / "run.mcap").exists()


def test_write_error_at_open_is_reported(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC: the recorder must fail at open, before arming."""
    link = tmp_path / "full.mcap"
    link.symlink_to("/dev/full")
    with pytest.raises(RecorderError, match="No space left on device"):
        FlightRecorder(link, min_free_bytes=0, overwrite=True)


def test_preflight_refuses_bad_names(tmp_path: Path) -> None:
    with pytest.raises(RecorderError, match=r"must end in '\.mcap'"):
        FlightRecorder(tmp_path / "run.bag", min_free_bytes=0)
    (tmp_path / "dir.mcap").mkdir()
    with pytest.raises(RecorderError, match="is a directory"):
        FlightRecorder(tmp_path / "dir.mcap", min_free_bytes=0)


def test_failure_during_run_surfaces_in_write(tmp_path: Path) -> None:
    """A disk write that fails in the writer process (here: a 16 KiB file size limit, EFBIG) reaches the caller."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))  # inherited by the writer process only
    try:
        rec = FlightRecorder(tmp_path / "run.mcap", min_free_bytes=0, flush_interval_s=0.01, compression="none")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    with pytest.raises(RecorderError, match=r"failed: .*File too large"):  # in a write or, at the latest, a flush
        for i in range(20_000):
            rec.write_observation([float(i)] * 8, i)
            if i % 500 == 499:
                rec.flush()
    assert not rec.healthy
    with pytest.raises(RecorderError, match="failed"):
        rec.write_observation([2.0], 2)
    with pytest.raises(RecorderError):
        rec.close()


def test_writer_process_death_surfaces(tmp_path: Path) -> None:
    rec = FlightRecorder(tmp_path / "run.mcap", min_free_bytes=0)
    rec.write_observation([1.0], 1)
    rec.flush()
    assert rec.healthy and rec.written == 1
    os.kill(rec.writer_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while rec.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not rec.healthy
    with pytest.raises(RecorderError, match="writer process exited"):
        rec.write_observation([2.0], 2)
    with pytest.raises(RecorderError):
        rec.close()


def test_a_burst_waits_in_order_instead_of_dropping(tmp_path: Path) -> None:
    """Messages that do not fit in the pipe wait in order (an offline writer, a disk that stalls for a while)."""
    path = tmp_path / "burst.mcap"
    n = 30_000  # about twice what the pipe holds
    with FlightRecorder(path, min_free_bytes=0, max_queue=n) as rec:
        os.kill(rec.writer_pid, signal.SIGSTOP)
        try:
            for i in range(n):
                rec.write_observation([float(i)], i)
            assert rec._pipe.backlog  # some waited
        finally:
            os.kill(rec.writer_pid, signal.SIGCONT)
    assert rec.dropped == 0 and rec.written == n
    contents = read_log(path, decode=False)
    assert contents.complete
    assert [m.log_time_ns for m in contents.messages] == list(range(n))


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "drop.mcap"
    n = 30_000
    with FlightRecorder(path, min_free_bytes=0, max_queue=10) as rec:
        os.kill(rec.writer_pid, signal.SIGSTOP)
        try:
            for i in range(n):
                rec.write_observation([float(i)], i)
            assert rec.dropped > 0
        finally:
            os.kill(rec.writer_pid, signal.SIGCONT)
    contents = read_log(path)
    assert contents.complete and len(contents.messages) == rec.written == n - rec.dropped
    stamps = [m.log_time_ns for m in contents.messages]
    assert stamps == sorted(stamps) and stamps[0] == 0
    assert [m.msg.data[0] for m in contents.messages] == [float(t) for t in stamps]  # each message whole


def test_type_errors(tmp_path: Path) -> None:
    with FlightRecorder(tmp_path / "run.mcap", min_free_bytes=0) as rec:
        with pytest.raises(TypeError, match="not a command message"):
            rec.write_command(String("x"), 0)
        with pytest.raises(TypeError, match="not a robot state message"):
            rec.write_state(String("x"), 0)
        rec.write("/t", String("x"), 0)
        with pytest.raises(RecorderError, match="One topic, one type"):
            rec.write("/t", MotorCommand(), 0)
    with pytest.raises(RecorderError, match="closed"):
        rec.write("/t", String("x"), 0)


@pytest.mark.parametrize("n", [0, 1, 4, 22])
def test_cached_vector_bytes_equal_the_generic_serializer(tmp_path: Path, n: int) -> None:
    """After the first vector of a length, observation/action CDR comes from a cached prefix: same bytes."""
    path = tmp_path / "vectors.mcap"
    rows = [[0.1 * i + j for j in range(n)] for i in range(5)]
    with FlightRecorder(path, min_free_bytes=0) as rec:
        for i, row in enumerate(rows):
            rec.write_observation(row, i)
            rec.write_action([-x for x in row], i)
        assert {key for key, _ in rec._vectors} == {"observation", "action"}
    with open(path, "rb") as f:
        raw = [(c.topic, m.data) for _, c, m in make_reader(f).iter_messages()]
    obs, act = TOPICS["observation"].name, TOPICS["action"].name
    layouts = {obs: "observation", act: "action"}
    for topic, data in raw:
        i = sum(1 for t, _ in raw[: raw.index((topic, data))] if t == topic)
        values = rows[i] if topic == obs else [-x for x in rows[i]]
        label = layouts[topic]
        generic = Float32MultiArray(MultiArrayLayout([MultiArrayDimension(label, n, n)], 0), values).serialize()
        assert data == generic


def test_a_log_written_before_motor_commands_carried_vehicle_id_and_mode_still_reads():
    """tests/deploy/data/golden_small_v1.mcap is the golden file as written before sim2real_msgs/MotorCommand
    gained ``vehicle_id`` and ``mode``: our reader decodes it from the definition the file carries."""
    contents = read_log(GOLDEN_PATH.with_name("golden_small_v1.mcap"))
    assert contents.complete
    commands = contents.topic(TOPICS["motor_command"].name)
    assert [list(m.msg.rpm) for m in commands] == [[15000.0 + i, 15001.0, 15002.0, 15003.0] for i in range(5)]
    assert not hasattr(commands[0].msg, "vehicle_id")  # decoded with the old definition, not today's class
    assert [m.topic for m in contents.messages] == [topic for topic, _msg, _t in EXPECTED]
