"""The node as ROS 2 tools see it: participant USER_DATA (enclave), endpoint USER_DATA (type hash), ros_discovery_info.

A discovery reader, written here with cyclonedds' built-in topic readers as rmw_cyclonedds reads the graph
(``handle_DCPSParticipant``, ``handle_builtintopic_endpoint``, ``handle_ParticipantEntitiesInfo``), watches a
Ros2Node in another process over loopback, so USER_DATA and the graph messages go over the wire.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclonedds.builtin import (
    BuiltinDataReader,
    BuiltinTopicDcpsParticipant,
    BuiltinTopicDcpsPublication,
    BuiltinTopicDcpsSubscription,
)
from cyclonedds.core import InstanceState
from cyclonedds.domain import DomainParticipant
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from deploy.msgs import MESSAGES, Bool
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportError
from deploy.transport.ros_graph import (
    DISCOVERY_TOPIC,
    RMW_DDS_COMMON_MSG_TEXT,
    Gid,
    NodeEntitiesInfo,
    ParticipantEntitiesInfo,
    parse_user_data,
)
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[3]
# Jazzy's own hashes (rosidl_generator_c output), not computed by the code under test.
POSE_STAMPED_HASH = "RIHS01_10f3786d7d40fd2b54367835614bff85d4ad3b5dab62bf8bca0cc232d73b4cd8"
DISCOVERY_HASH = "RIHS01_91a0593bacdcc50ea9bdcf849a938b128412cc1ea821245c663bcd26f83c295e"

# A node in another process: a publisher and a subscription; on stdin "add" adds a publisher, "destroy" removes it.
PROBE = """
import sys
from deploy.msgs import Bool, MotorCommand, PoseStamped
from deploy.transport import Ros2Node
with Ros2Node("graph_probe", namespace="/sim2real") as node:
    node.publisher("state/pose", PoseStamped, "sensor_data")
    node.subscription("command/motors", MotorCommand)
    print(node.guid, flush=True)
    for line in sys.stdin:
        if line.strip() == "add":
            extra = node.publisher("/extra", Bool)
        elif line.strip() == "destroy":
            node.destroy(extra)
        print("ok", flush=True)
"""


@pytest.fixture
def domain_id() -> int:
    return random_domain()


class Observer:
    """What rmw_cyclonedds' discovery thread reads: DCPSParticipant, DCPSPublication, DCPSSubscription and
    ros_discovery_info (reliable, transient local, keep all), on a participant of its own."""

    def __init__(self, domain_id: int) -> None:
        self.participant = DomainParticipant(domain_id)
        self.participants = BuiltinDataReader(self.participant, BuiltinTopicDcpsParticipant)
        self.publications = BuiltinDataReader(self.participant, BuiltinTopicDcpsPublication)
        self.subscriptions = BuiltinDataReader(self.participant, BuiltinTopicDcpsSubscription)
        qos = Qos(
            Policy.Reliability.Reliable(0),
            Policy.Durability.TransientLocal,
            Policy.History.KeepAll,
            Policy.DataRepresentation(use_cdrv0_representation=True),
        )
        topic = Topic(self.participant, DISCOVERY_TOPIC, ParticipantEntitiesInfo)
        self.discovery = DataReader(self.participant, topic, qos=qos)
        self.graph: dict[bytes, ParticipantEntitiesInfo] = {}  # by participant GID, the latest message

    def alive(self, reader: BuiltinDataReader) -> list[Any]:
        return [s for s in reader.read(N=256) if s.sample_info.instance_state == InstanceState.Alive]

    def endpoints(self, participant: uuid.UUID, kind: str) -> dict[str, Any]:
        """Alive DCPS publications or subscriptions of one participant, by topic name."""
        reader = self.publications if kind == "pub" else self.subscriptions
        return {s.topic_name: s for s in self.alive(reader) if s.participant_key == participant}

    def node_info(self, participant: uuid.UUID) -> ParticipantEntitiesInfo | None:
        for msg in self.discovery.take(N=256):
            if isinstance(msg, ParticipantEntitiesInfo):
                self.graph[bytes(msg.gid.data)] = msg
        return self.graph.get(participant.bytes)

    def close(self) -> None:
        self.participant.__del__()


def until(predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    end = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.02)


@pytest.fixture
def observer(domain_id: int) -> Iterator[Observer]:
    # The host node configures the domain for loopback (the first participant of the domain in this process).
    with Ros2Node("observer_host", domain_id=domain_id, config=LOOPBACK_CONFIG, enclave=None):
        obs = Observer(domain_id)
        yield obs
        obs.close()


@pytest.fixture
def probe(domain_id: int) -> Iterator[tuple[subprocess.Popen, uuid.UUID]]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    guid = uuid.UUID(proc.stdout.readline().strip())
    yield proc, guid
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _gids(seq: list[Gid]) -> set[bytes]:
    return {bytes(g.data) for g in seq}


def test_ros_tools_see_the_node_with_its_endpoints(observer: Observer, probe, domain_id: int) -> None:
    proc, guid = probe

    # Participant USER_DATA: enclave=/; (what makes rmw_cyclonedds count it as a ROS 2 context).
    ppant = until(lambda: [p for p in observer.alive(observer.participants) if p.key == guid])
    assert ppant, "the probe's participant was not discovered"
    assert parse_user_data(ppant[0].qos[Policy.Userdata].data) == {"enclave": "/"}

    # Endpoint USER_DATA: typehash of the topic's type (ROS 2's published hash for PoseStamped; rosbags' for ours).
    pubs = until(lambda: observer.endpoints(guid, "pub") if len(observer.endpoints(guid, "pub")) == 2 else None)
    subs = until(lambda: observer.endpoints(guid, "sub") or None)
    assert pubs and sorted(pubs) == ["ros_discovery_info", "rt/sim2real/state/pose"]
    assert sorted(subs) == ["rt/sim2real/command/motors"]
    pose = pubs["rt/sim2real/state/pose"]
    assert pose.type_name == "geometry_msgs::msg::dds_::PoseStamped_"
    assert parse_user_data(pose.qos[Policy.Userdata].data) == {"typehash": POSE_STAMPED_HASH}
    motors = subs["rt/sim2real/command/motors"]
    assert motors.type_name == "sim2real_msgs::msg::dds_::MotorCommand_"
    assert parse_user_data(motors.qos[Policy.Userdata].data) == {"typehash": _rosbags_hash("MotorCommand")}

    # ros_discovery_info: rmw_cyclonedds' QoS and type, and its own type hash.
    info_writer = pubs["ros_discovery_info"]
    assert info_writer.type_name == "rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"
    assert parse_user_data(info_writer.qos[Policy.Userdata].data) == {"typehash": DISCOVERY_HASH}
    assert isinstance(info_writer.qos[Policy.Reliability], Policy.Reliability.Reliable)
    assert info_writer.qos[Policy.Durability] == Policy.Durability.TransientLocal
    assert info_writer.qos[Policy.History] == Policy.History.KeepLast(1)

    # The node, its namespace and the GIDs (= DDS GUIDs) of its writer and reader.
    info = until(lambda: observer.node_info(guid))
    assert info is not None, "no ros_discovery_info from the probe"
    assert bytes(info.gid.data) == guid.bytes
    (node,) = info.node_entities_info_seq
    assert (node.node_namespace, node.node_name) == ("/sim2real", "graph_probe")
    assert _gids(node.writer_gid_seq) == {pose.key.bytes}  # the ros_discovery_info writer is not the node's
    assert _gids(node.reader_gid_seq) == {motors.key.bytes}
    late = Observer(domain_id)  # a late joiner (the ros2 daemon started later) gets the last message
    try:
        assert until(lambda: late.node_info(guid)) == info
    finally:
        late.close()

    # Republished when an endpoint is added, and when it is destroyed.
    proc.stdin.write("add\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ok"
    extra = until(lambda: observer.endpoints(guid, "pub").get("rt/extra"))
    assert extra is not None
    assert until(lambda: len(observer.node_info(guid).node_entities_info_seq[0].writer_gid_seq) == 2)
    assert _gids(observer.node_info(guid).node_entities_info_seq[0].writer_gid_seq) == {
        pose.key.bytes,
        extra.key.bytes,
    }
    proc.stdin.write("destroy\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ok"
    assert until(lambda: len(observer.node_info(guid).node_entities_info_seq[0].writer_gid_seq) == 1)
    assert _gids(observer.node_info(guid).node_entities_info_seq[0].writer_gid_seq) == {pose.key.bytes}
    assert until(lambda: "rt/extra" not in observer.endpoints(guid, "pub"))


def test_without_enclave_the_node_is_not_announced(observer: Observer, domain_id: int) -> None:
    """enclave=None: no enclave key (ROS 2 does not count the participant) and no ros_discovery_info writer; the
    endpoints still carry their type hashes."""
    with Ros2Node("plain", domain_id=domain_id, enclave=None) as node:
        node.publisher("/flag", Bool)
        guid = uuid.UUID(node.guid)
        pubs = until(lambda: observer.endpoints(guid, "pub") or None)
        ppant = [p for p in observer.alive(observer.participants) if p.key == guid]
        assert ppant and "enclave" not in parse_user_data(
            ppant[0].qos[Policy.Userdata].data if Policy.Userdata in ppant[0].qos else b""
        )
        assert sorted(pubs) == ["rt/flag"]
        assert parse_user_data(pubs["rt/flag"].qos[Policy.Userdata].data)["typehash"] == _rosbags_hash("Bool")
        assert observer.node_info(guid) is None


def test_enclave_is_configurable_and_checked(observer: Observer, domain_id: int) -> None:
    with Ros2Node("secure", domain_id=domain_id, enclave="/robot1") as node:
        guid = uuid.UUID(node.guid)
        ppant = until(lambda: [p for p in observer.alive(observer.participants) if p.key == guid])
        assert parse_user_data(ppant[0].qos[Policy.Userdata].data) == {"enclave": "/robot1"}
    for bad in ("robot1", "/a;b", ""):
        with pytest.raises(TransportError, match="invalid enclave"):
            Ros2Node("bad", domain_id=domain_id, enclave=bad)


def test_destroyed_endpoints_refuse_use(domain_id: int) -> None:
    with Ros2Node("n", domain_id=domain_id, config=LOOPBACK_CONFIG) as node:
        pub = node.publisher("/flag", Bool)
        sub = node.subscription("/flag", Bool, callback=lambda m: None)
        node.destroy(pub)
        node.destroy(sub)
        with pytest.raises(TransportError, match="destroyed"):
            pub.publish(Bool(True))
        with pytest.raises(TransportError, match="destroyed"):
            sub.take()
        assert sub.latest() is None
        with pytest.raises(TransportError, match="does not belong"):
            node.destroy(pub)
        assert node._graph is not None and node._graph.message().node_entities_info_seq[0].writer_gid_seq == []


def test_discovery_message_bytes_equal_rosbags() -> None:
    """Our ParticipantEntitiesInfo CDR equals rosbags' for rmw_dds_common's Jazzy definitions (Gid = char[16])."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict[str, Any] = {}
    for name, text in RMW_DDS_COMMON_MSG_TEXT.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    gid = Gid(list(range(16)))
    msg = ParticipantEntitiesInfo(
        gid, [NodeEntitiesInfo("/sim2real", "deploy", [Gid([7] * 16)], [Gid(list(range(16, 32))), Gid([255] * 16)])]
    )
    theirs = store.deserialize_cdr(msg.serialize(), "rmw_dds_common/msg/ParticipantEntitiesInfo")
    assert list(theirs.gid.data) == list(range(16))
    (node,) = theirs.node_entities_info_seq
    assert (node.node_namespace, node.node_name) == ("/sim2real", "deploy")
    assert [list(g.data) for g in node.reader_gid_seq] == [[7] * 16]
    assert [list(g.data) for g in node.writer_gid_seq] == [list(range(16, 32)), [255] * 16]
    assert bytes(store.serialize_cdr(theirs, "rmw_dds_common/msg/ParticipantEntitiesInfo")) == msg.serialize()


def _rosbags_hash(name: str) -> str:
    """rosbags' RIHS01 of a registered type (an implementation independent of deploy.msgs.type_hash)."""
    ros_type = next(t for t in MESSAGES if t.endswith(f"/msg/{name}"))
    store = get_typestore(Stores.ROS2_JAZZY)
    if ros_type.startswith("sim2real_msgs/"):
        store.register(get_types_from_msg(MESSAGES[ros_type].msg_text, ros_type))
    return store.hash_rihs01(ros_type)
