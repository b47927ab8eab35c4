"""The ROS 2 graph on the wire: what makes ``ros2 node list``, ``rqt_graph`` and ``ros2 topic info -v`` see a node.

What rmw_cyclonedds_cpp does (ros2/rmw_cyclonedds ``rmw_node.cpp``; ros2/rmw_dds_common ``graph_cache.cpp``,
``qos.cpp``, ``msg/``), and :class:`NodeGraph` does the same for one :class:`~deploy.transport.Ros2Node`:

- The DDS participant carries USER_DATA ``enclave=<enclave>;`` (``rmw_context_impl_s::init``). ROS 2 only counts
  a participant as a ROS context when it finds the ``enclave`` key (``handle_DCPSParticipant``). rcl's default
  enclave is ``/``.
- Every reader and writer carries USER_DATA ``typehash=RIHS01_<hex>;`` (``create_readwrite_qos`` ->
  ``encode_type_hash_for_user_data_qos``), the hash of its type (:mod:`deploy.msgs.type_hash`).
- Each participant publishes on the DDS topic ``ros_discovery_info`` (no ``rt/`` prefix:
  ``avoid_ros_namespace_conventions``), type ``rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_``, its GID and,
  per node, the node's namespace and name and the GIDs of the node's readers and writers. It republishes the whole
  message when a node, reader or writer is added or removed. Writer QoS: reliable, transient local (durability
  service keep last 1), keep last 1; ROS 2's reader of it is reliable, transient local, keep all. Late joiners
  (the ``ros2`` daemon) get the last message; a participant that goes away takes its nodes with it.
- A GID is the entity's 16-byte DDS GUID (``convert_guid_to_gid``: ``memcpy`` of ``dds_guid_t``). The
  ``rmw_dds_common/Gid`` message is ``char[16] data`` from Iron on, ROS 2 Jazzy (the LTS) included; Humble's is
  ``char[24]``: Humble tools cannot read these messages (nor those of Jazzy nodes), and do not list the node.

The ``ros_discovery_info`` writer is not listed among the node's writers (rmw_cyclonedds does not list it either).
"""

# No ``from __future__ import annotations``: cyclonedds reads the IDL struct annotations below as real types
# (deploy/msgs/types.py says why).

import threading
from dataclasses import dataclass, field
from typing import Any

from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, bounded_str, sequence, uint8
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from deploy.msgs.type_hash import user_data_entry
from deploy.transport.errors import TransportError

DISCOVERY_TOPIC = "ros_discovery_info"
GID_SIZE = 16  # bytes: rmw_dds_common/msg/Gid in Iron and later (Humble: 24)
DEFAULT_ENCLAVE = "/"

#: ``.msg`` texts of rmw_dds_common (Jazzy), for their type hashes (the ros_discovery_info writer's USER_DATA).
RMW_DDS_COMMON_MSG_TEXT = {
    "rmw_dds_common/msg/Gid": "char[16] data\n",
    "rmw_dds_common/msg/NodeEntitiesInfo": (
        "string<=256 node_namespace\nstring<=256 node_name\nGid[] reader_gid_seq\nGid[] writer_gid_seq\n"
    ),
    "rmw_dds_common/msg/ParticipantEntitiesInfo": "Gid gid\nNodeEntitiesInfo[] node_entities_info_seq\n",
}


def _zero_gid() -> list[int]:
    return [0] * GID_SIZE


@dataclass
class Gid(IdlStruct, typename="rmw_dds_common.msg.dds_.Gid_"):
    """rmw_dds_common/msg/Gid (Jazzy): the 16 bytes of a DDS GUID."""

    data: array[uint8, 16] = field(default_factory=_zero_gid)


@dataclass
class NodeEntitiesInfo(IdlStruct, typename="rmw_dds_common.msg.dds_.NodeEntitiesInfo_"):
    """rmw_dds_common/msg/NodeEntitiesInfo: one node, its readers and writers."""

    node_namespace: bounded_str[256] = "/"
    node_name: bounded_str[256] = ""
    reader_gid_seq: sequence[Gid] = field(default_factory=list)
    writer_gid_seq: sequence[Gid] = field(default_factory=list)


@dataclass
class ParticipantEntitiesInfo(IdlStruct, typename="rmw_dds_common.msg.dds_.ParticipantEntitiesInfo_"):
    """rmw_dds_common/msg/ParticipantEntitiesInfo: a participant's GID and its nodes."""

    gid: Gid = field(default_factory=Gid)
    node_entities_info_seq: sequence[NodeEntitiesInfo] = field(default_factory=list)


def gid_of(entity: Any) -> Gid:
    """The GID of a DDS entity (participant, reader, writer), as rmw_cyclonedds derives it from the GUID."""
    return Gid(list(entity.guid.bytes))


def parse_user_data(data: bytes) -> dict[str, str]:
    """``k1=v1;k2=v2;`` -> ``{"k1": "v1", ...}``, as rmw (``rmw::impl::cpp::parse_key_value``) reads USER_DATA.

    Entries without ``=`` are skipped; values are decoded as UTF-8 (invalid bytes replaced)."""
    entries: dict[str, str] = {}
    for item in data.split(b";"):
        key, eq, value = item.partition(b"=")
        if eq and key:
            entries[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return entries


def participant_qos(enclave: str) -> Qos:
    """Participant QoS with USER_DATA ``enclave=<enclave>;`` (what makes it a ROS 2 context)."""
    if not enclave.startswith("/") or ";" in enclave or "=" in enclave:
        raise TransportError(f"invalid enclave {enclave!r}: expected an absolute name like '/' or '/robot1'")
    return Qos(Policy.Userdata(f"enclave={enclave};".encode()))


def type_hash_user_data(msg_type: Any) -> Policy.Userdata:
    """USER_DATA ``typehash=RIHS01_...;`` for a reader or writer of ``msg_type`` (a registered message class)."""
    return Policy.Userdata(user_data_entry(msg_type).encode())


def discovery_writer_qos() -> Qos:
    """QoS of the ros_discovery_info writer, as rmw_cyclonedds creates it (``rmw_context_impl_s::init``)."""
    return Qos(
        Policy.Reliability.Reliable(duration(seconds=0.1)),
        Policy.Durability.TransientLocal,
        Policy.DurabilityService(0, Policy.History.KeepLast(1), -1, -1, -1),
        Policy.History.KeepLast(1),
        Policy.WriterDataLifecycle(autodispose=False),
        Policy.DataRepresentation(use_cdrv0_representation=True),
        Policy.Userdata(
            user_data_entry("rmw_dds_common/msg/ParticipantEntitiesInfo", RMW_DDS_COMMON_MSG_TEXT).encode()
        ),
    )


class NodeGraph:
    """Announces one node of a participant on ``ros_discovery_info``: its namespace, name, readers and writers.

    Publishes at creation (the node without endpoints) and again after each :meth:`add` and :meth:`remove`.
    Thread-safe. The participant's deletion removes the writer; readers on the graph drop the participant's
    nodes when it goes away.
    """

    def __init__(self, participant: DomainParticipant, name: str, namespace: str) -> None:
        self.name = name
        self.namespace = namespace or "/"
        self._gid = gid_of(participant)
        self._lock = threading.Lock()
        self._readers: dict[bytes, Gid] = {}
        self._writers: dict[bytes, Gid] = {}
        topic = Topic(participant, DISCOVERY_TOPIC, ParticipantEntitiesInfo)
        self._writer = DataWriter(participant, topic, qos=discovery_writer_qos())
        self.publish()

    def add(self, entity: Any, *, is_reader: bool) -> None:
        """List a DDS reader or writer of the node and republish."""
        gid = gid_of(entity)
        with self._lock:
            (self._readers if is_reader else self._writers)[bytes(gid.data)] = gid
            self._publish_locked()

    def remove(self, entity: Any) -> None:
        """Drop a DDS reader or writer of the node (before deleting it) and republish."""
        key = bytes(gid_of(entity).data)
        with self._lock:
            self._readers.pop(key, None)
            self._writers.pop(key, None)
            self._publish_locked()

    def message(self) -> ParticipantEntitiesInfo:
        """What the node announces now."""
        with self._lock:
            return self._message_locked()

    def publish(self) -> None:
        with self._lock:
            self._publish_locked()

    def _message_locked(self) -> ParticipantEntitiesInfo:
        node = NodeEntitiesInfo(self.namespace, self.name, list(self._readers.values()), list(self._writers.values()))
        return ParticipantEntitiesInfo(self._gid, [node])

    def _publish_locked(self) -> None:
        self._writer.write(self._message_locked())
