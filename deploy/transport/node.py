"""A ROS 2 node on the wire: DDS participant, publishers and subscriptions with ROS 2 names, types and QoS.

Interoperates with rclpy/rclcpp nodes using rmw_cyclonedds_cpp or rmw_fastrtps_cpp on the same domain.
ROS 2 tools see it as a node (deploy/transport/ros_graph.py): the participant carries its enclave, every reader
and writer its type hash, and the node announces itself and its endpoints on ``ros_discovery_info`` (Jazzy
format). Not provided: services, parameters.

Threads: no Cyclone DDS thread runs Python (no DDS listeners). Subscription callbacks run on one Python thread
per node (deploy/transport/dispatch.py says why: a listener could deadlock ``publish`` on the GIL).
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from cyclonedds.core import DDSException, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from deploy.msgs import message_info
from deploy.transport import domains
from deploy.transport.config import resolve_domain_id
from deploy.transport.dispatch import CallbackThread
from deploy.transport.errors import TransportError
from deploy.transport.names import resolve_topic_name, ros_to_dds_topic, validate_namespace
from deploy.transport.publisher import Publisher, poll_until
from deploy.transport.qos import QosProfile, resolve_qos
from deploy.transport.ros_graph import DEFAULT_ENCLAVE, NodeGraph, participant_qos, type_hash_user_data
from deploy.transport.writers import WriterInfo, WriterPin, matched_handles, unsigned_handle, writer_entity_name

log = logging.getLogger(__name__)
M = TypeVar("M")
_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Subscription(Generic[M]):
    """Receives messages of one type on one topic. Create with :meth:`Ros2Node.subscription`.

    Without a callback, samples queue in the reader (``qos.depth`` of them, the oldest dropped first) until
    :meth:`take`; a subscription that is never read holds at most that many and never slows a writer.
    With a callback, it runs on the node's callback thread (one per node, never a DDS thread) for each sample;
    keep it short and thread-safe. :meth:`latest` works in both modes.

    Writers: :meth:`writers` lists the matched writers; every sample's writer is known (:meth:`latest_from`);
    after :meth:`pin` only that writer's samples are returned or passed to the callback, the others are counted
    (:attr:`rejected_count`, :attr:`rejected_writers`) and dropped.
    """

    def __init__(
        self,
        participant: DomainParticipant,
        topic_entity: Topic,
        topic: str,
        msg_type: type[M],
        qos: QosProfile,
        callback: Callable[[M], Any] | None,
    ) -> None:
        self.topic, self.msg_type, self.qos = topic, msg_type, qos
        #: GUID of this node's DDS participant (a writer with this participant GUID is this node's own).
        self.participant_guid = str(participant.guid)
        self._callback = callback
        self._lock = threading.Lock()
        self._last: tuple[M, int, int] | None = None  # (sample, writer handle, arrival on CLOCK_MONOTONIC ns)
        self._received = 0
        self._waited = 0
        self._pin = WriterPin()
        self._writer_info: dict[int, WriterInfo] = {}
        self._closed = False
        self._kept: collections.deque[M] | None = None  # every admitted sample since the last drain (keep_all)
        self._reader = DataReader(participant, topic_entity, qos=Qos(*qos.to_cyclone(), type_hash_user_data(msg_type)))
        self._condition = ReadCondition(self._reader, SampleState.Any | ViewState.Any | InstanceState.Any)
        self._waitset: WaitSet | None = None
        if callback is None:  # with a callback, the node's callback thread waits on the condition
            self._waitset = WaitSet(participant)
            self._waitset.attach(self._condition)

    def _on_data(self, reader: DataReader) -> None:
        """Take what the reader holds and run the callback for each admitted sample (the callback thread)."""
        while not self._closed:
            try:
                raw = reader.take(N=max(self.qos.depth, 16))
            except DDSException:  # the node closed while data was arriving: the reader is gone
                log.debug("data on %s arrived while its reader was deleted; dropped", self.topic)
                return
            if not raw:
                return
            for sample in self._admit(raw):
                try:
                    self._callback(sample)  # type: ignore[misc]
                except Exception:
                    log.exception("callback of subscription on %s raised", self.topic)

    def _admit(self, samples: list[Any]) -> list[M]:
        """Valid samples of admitted writers, remembered as the latest; others counted and dropped."""
        admitted: list[M] = []
        arrival_ns = time.monotonic_ns()
        with self._lock:
            for sample in samples:
                # Instance state changes (a writer going away) arrive as InvalidSample objects without data.
                if not isinstance(sample, self.msg_type):
                    continue
                writer = unsigned_handle(sample.sample_info.publication_handle)  # type: ignore[attr-defined]
                if self._pin.admit(writer):
                    admitted.append(sample)
                    self._last = (sample, writer, arrival_ns)
                    if self._kept is not None:
                        self._kept.append(sample)
                    self._received += 1
        return admitted

    def take(self, max_samples: int = 64) -> list[M]:
        """All queued samples (at most ``max_samples``), oldest first; never blocks; [] if none.

        Pinned: only the pinned writer's samples (up to ``max_samples`` are taken from the reader)."""
        if self._closed:
            raise TransportError(f"the subscription to {self.topic} was destroyed; create a new one")
        return self._admit(self._reader.take(N=max_samples))

    def keep_all(self, max_samples: int = 1024) -> None:
        """From now on remember every admitted sample (up to ``max_samples``, the oldest dropped first) until
        :meth:`drain`, whichever call took it from DDS: a flight recorder's whole state stream, while the control
        loop reads only :meth:`latest`."""
        with self._lock:
            self._kept = collections.deque(maxlen=max_samples)

    def drain(self) -> list[M]:
        """The samples admitted since the last drain, oldest first (:meth:`keep_all`; [] without it). Takes what
        the reader holds first, as :meth:`latest` does."""
        self._latest()
        with self._lock:
            if self._kept is None:
                return []
            out = list(self._kept)
            self._kept.clear()
            return out

    def latest(self) -> M | None:
        """The most recent sample received so far (taking queued ones first), or None if none yet."""
        return self.latest_from()[0]

    def latest_from(self) -> tuple[M | None, int | None]:
        """(latest sample, handle of the writer that sent it), as :meth:`latest`; (None, None) if none yet.

        The handle is :attr:`WriterInfo.handle` of one of :meth:`writers`."""
        sample, writer, _ = self._latest()
        return sample, writer

    def latest_arrival(self) -> tuple[M | None, int | None]:
        """(latest sample, when it was taken from DDS on CLOCK_MONOTONIC, ns), as :meth:`latest`; (None, None) if
        none yet. Without a callback samples are taken when asked for, so the arrival is at most that late."""
        sample, _, arrival_ns = self._latest()
        return sample, arrival_ns

    def _latest(self) -> tuple[M | None, int | None, int | None]:
        if self._callback is None and not self._closed:
            while True:
                raw = self._reader.take(N=64)
                self._admit(raw)
                if len(raw) < 64:
                    break
        with self._lock:
            return (None, None, None) if self._last is None else self._last

    @property
    def latest_writer(self) -> int | None:
        """Handle of the writer of the latest sample (without taking queued samples), or None."""
        with self._lock:
            return None if self._last is None else self._last[1]

    @property
    def received_count(self) -> int:
        """Samples taken through this subscription so far (admitted ones when pinned)."""
        with self._lock:
            return self._received

    def wait(self, timeout_s: float) -> bool:
        """Block until a sample is available or ``timeout_s`` seconds pass; True if one is available.

        With a callback: True if the callback ran since the previous ``wait`` returned True.
        Pinned, without a callback: samples of other writers also wake it (``take`` then drops them)."""
        if self._waitset is None:
            if poll_until(lambda: self.received_count > self._waited, timeout_s):
                self._waited = self.received_count
                return True
            return False
        return self._waitset.wait(duration(seconds=max(timeout_s, 0.0))) > 0

    # ------------------------------------------------------------------ writers
    def writers(self) -> list[WriterInfo]:
        """The matched writers (QoS-compatible, this node's own included), sorted by GUID."""
        handles = {unsigned_handle(h): h for h in matched_handles(self._reader, "publications")}
        infos = []
        for handle, raw in handles.items():
            info = self._writer_info.get(handle)
            if info is None:
                endpoint = self._reader.get_matched_publication_data(raw)
                if endpoint is None:  # unmatched since the list was read
                    continue
                info = self._writer_info[handle] = WriterInfo.from_endpoint(handle, endpoint)
            infos.append(info)
        for gone in set(self._writer_info) - set(handles):
            del self._writer_info[gone]
        return sorted(infos, key=lambda w: w.guid)

    def pin(self, writer: int | WriterInfo) -> None:
        """From now on admit only samples of ``writer`` (a handle or a :class:`WriterInfo`).

        Samples already taken are kept: :meth:`latest` stays what it was until the pinned writer sends."""
        handle = writer.handle if isinstance(writer, WriterInfo) else unsigned_handle(writer)
        with self._lock:
            self._pin.pin(handle)

    def pin_current(self) -> int | None:
        """Pin the writer of the latest sample; returns its handle.

        Before any sample: the only matched writer if there is exactly one, else the writer of the next sample
        (returns None; :attr:`pinned_writer` tells which once it arrived)."""
        _, writer = self.latest_from()
        if writer is None:
            matched = matched_handles(self._reader, "publications")
            writer = unsigned_handle(matched[0]) if len(matched) == 1 else None
        with self._lock:
            self._pin.pin(writer)
        return writer

    def unpin(self) -> None:
        """Admit every writer again (the rejected count and writers stay readable until the next pin)."""
        with self._lock:
            self._pin.unpin()

    @property
    def pinned_writer(self) -> int | None:
        """Handle of the pinned writer; None when not pinned or pinned to the next sample's writer."""
        with self._lock:
            return self._pin.handle

    @property
    def rejected_count(self) -> int:
        """Samples of other writers dropped since the last :meth:`pin`."""
        with self._lock:
            return self._pin.rejected_count

    @property
    def rejected_writers(self) -> frozenset[int]:
        """Handles of the other writers whose samples were dropped since the last :meth:`pin`."""
        with self._lock:
            return frozenset(self._pin.rejected_writers)

    @property
    def matched_count(self) -> int:
        """Number of matched publishers (QoS-compatible writers of this topic and type)."""
        return len(matched_handles(self._reader, "publications"))

    def wait_for_publishers(self, count: int = 1, timeout_s: float = 5.0) -> bool:
        """Block until ``count`` publishers match or ``timeout_s`` seconds pass; True if matched."""
        return poll_until(lambda: self.matched_count >= count, timeout_s)


class Ros2Node:
    """A DDS participant that speaks ROS 2: ``/foo`` is DDS topic ``rt/foo``, types are ROS 2 types.

    name: node name (``[A-Za-z_][A-Za-z0-9_]*``), used in logs; namespace: prefix for relative topic names;
    domain_id: DDS domain, None -> ``ROS_DOMAIN_ID`` (default 0); config: Cyclone DDS XML (string or
    ``file://`` URL) for this domain, None -> ``CYCLONEDDS_URI`` or Cyclone's defaults; enclave: the ROS 2
    security enclave announced in the participant's USER_DATA (rcl's default ``/``); None: not a ROS 2 node for
    the graph (no enclave, no ``ros_discovery_info``; topics still match, and carry their type hashes).
    """

    def __init__(
        self,
        name: str,
        *,
        namespace: str = "",
        domain_id: int | None = None,
        config: str | None = None,
        enclave: str | None = DEFAULT_ENCLAVE,
    ) -> None:
        if not isinstance(name, str) or not _NODE_NAME.match(name):
            raise TransportError(f"invalid node name {name!r}: expected letters, digits and '_', e.g. 'deploy'")
        self.name = name
        self.namespace = validate_namespace(namespace)
        self.domain_id = resolve_domain_id(domain_id)
        self.enclave = enclave
        ppant_qos = participant_qos(enclave) if enclave is not None else None  # checks the enclave first
        # nodes of one process with the same XML share the domain; closed or collected, a node lets go of it once
        self._release_domain = None if config is None else domains.acquire(self.domain_id, config, self)
        try:
            self._participant = DomainParticipant(self.domain_id, qos=ppant_qos)
        except DDSException as err:
            if self._release_domain is not None:
                self._release_domain()
            raise TransportError(
                f"could not create a DDS participant on domain {self.domain_id}: {err}. Check the Cyclone DDS "
                "XML (config argument or CYCLONEDDS_URI) and that the network interface it names exists."
            ) from err
        self._topics: dict[str, tuple[Topic, type]] = {}
        self._endpoints: list[Publisher[Any] | Subscription[Any]] = []
        self._callbacks = CallbackThread(self._participant, name)
        self._writer_name = writer_entity_name(name)
        self._closed = False
        #: Announces this node, its readers and writers on ros_discovery_info (None without an enclave).
        self._graph = NodeGraph(self._participant, name, self.namespace) if enclave is not None else None
        log.debug("node %s on domain %d", name, self.domain_id)

    @property
    def guid(self) -> str:
        """GUID of this node's DDS participant: :attr:`WriterInfo.participant` of the writers it owns."""
        return str(self._participant.guid)

    def _topic(self, topic: str, msg_type: type) -> tuple[str, Topic]:
        if self._closed:
            raise TransportError(f"node {self.name!r} is closed; create a new Ros2Node")
        message_info(msg_type)  # raises a clear error for unregistered classes
        full = resolve_topic_name(topic, self.namespace)
        if full in self._topics:
            entity, existing = self._topics[full]
            if existing is not msg_type:
                raise TransportError(
                    f"topic {full} is already used with {existing.__name__} on this node; "
                    f"got {msg_type.__name__}. One topic carries one message type."
                )
            return full, entity
        entity = Topic(self._participant, ros_to_dds_topic(full), msg_type)
        self._topics[full] = (entity, msg_type)
        return full, entity

    def publisher(self, topic: str, msg_type: type[M], qos: str | QosProfile = "default") -> Publisher[M]:
        """A publisher of ``msg_type`` (a deploy.msgs class) on ROS 2 topic ``topic``."""
        full, entity = self._topic(topic, msg_type)
        profile = resolve_qos(qos)
        # The entity name travels with discovery: a subscriber's writers() says which node, host and pid this is.
        writer_qos = Qos(*profile.to_cyclone(), Policy.EntityName(self._writer_name), type_hash_user_data(msg_type))
        pub: Publisher[M] = Publisher(DataWriter(self._participant, entity, qos=writer_qos), full, msg_type, profile)
        self._endpoints.append(pub)
        if self._graph is not None:
            self._graph.add(pub._writer, is_reader=False)
        return pub

    def subscription(
        self,
        topic: str,
        msg_type: type[M],
        qos: str | QosProfile = "default",
        callback: Callable[[M], Any] | None = None,
    ) -> Subscription[M]:
        """A subscription to ``msg_type`` on ROS 2 topic ``topic``; see :class:`Subscription`."""
        full, entity = self._topic(topic, msg_type)
        sub: Subscription[M] = Subscription(self._participant, entity, full, msg_type, resolve_qos(qos), callback)
        if callback is not None:
            self._callbacks.add(sub._condition, lambda: sub._on_data(sub._reader))
        self._endpoints.append(sub)
        if self._graph is not None:
            self._graph.add(sub._reader, is_reader=True)
        return sub

    def destroy(self, endpoint: Publisher[Any] | Subscription[Any]) -> None:
        """Delete a publisher or subscription of this node (rclpy's destroy_publisher / destroy_subscription).

        Its DDS writer or reader goes away (matched endpoints see it leave) and the ROS graph stops listing it;
        publish / take on it afterwards raise TransportError."""
        if not any(e is endpoint for e in self._endpoints):
            raise TransportError(f"{type(endpoint).__name__} on {endpoint.topic} does not belong to node {self.name!r}")
        self._endpoints = [e for e in self._endpoints if e is not endpoint]
        entity = endpoint._writer if isinstance(endpoint, Publisher) else endpoint._reader
        if self._graph is not None:
            self._graph.remove(entity)
        endpoint._closed = True  # a callback subscription's dispatch now returns at once
        entity.__del__()  # deletes the reader's conditions with it (Cyclone detaches them from wait sets)

    def close(self) -> None:
        """Delete the participant and everything it owns; the node cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self._callbacks.close()  # no callback runs once the participant is gone
        self._graph = None
        self._endpoints.clear()
        self._topics.clear()
        # Deleting the participant deletes its topics, readers, writers and wait sets in Cyclone DDS.
        self._participant.__del__()
        if self._release_domain is not None:
            self._release_domain()

    def __enter__(self) -> Ros2Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
