"""Who writes a topic: DDS writer identity, and pinning a subscription to one writer.

Every DDS writer has a GUID (16 bytes: the 12-byte prefix of its participant, then a 4-byte entity id); a
reader sees each matched writer under a local *instance handle*, which is also ``sample_info.publication_handle``
of every sample that writer sent. Writers of :class:`~deploy.transport.Ros2Node` also carry the DDS entity name
``node@host:pid`` (RTPS ``PID_ENTITY_NAME``, ignored by implementations that do not know it), so a second writer
says which process it is; writers of other ROS 2 nodes show their GUIDs only.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cyclonedds.qos import Policy

if TYPE_CHECKING:
    from deploy.transport.node import Subscription


def writer_entity_name(node: str) -> str:
    """The DDS entity name our writers carry: ``node@host:pid`` of this process."""
    return f"{node}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class WriterInfo:
    """One writer matched by a subscription.

    handle: the reader's instance handle of the writer (= ``sample_info.publication_handle`` of its samples);
    guid: writer GUID; participant: GUID of its DDS participant (one per Ros2Node);
    node, host, pid: from the entity name ``node@host:pid`` ("", "", None when the writer sent none).
    """

    handle: int
    guid: str
    participant: str
    node: str = ""
    host: str = ""
    pid: int | None = None

    @classmethod
    def from_endpoint(cls, handle: int, endpoint: Any) -> WriterInfo:
        """From cyclonedds' ``DcpsEndpoint`` (``get_matched_publication_data``)."""
        name_policy = endpoint.qos[Policy.EntityName] if endpoint.qos is not None else None
        node, host, pid = _parse_entity_name(name_policy.name if name_policy is not None else "")
        return cls(unsigned_handle(handle), str(endpoint.key), str(endpoint.participant_key), node, host, pid)

    def __str__(self) -> str:
        if self.node:
            return f"node {self.node!r} (pid {self.pid} on {self.host}, writer {self.guid})"
        return f"writer {self.guid} (participant {self.participant})"


def unsigned_handle(handle: int) -> int:
    """A DDS instance handle as the unsigned 64-bit number it is (cyclonedds returns some as signed)."""
    return handle & 0xFFFF_FFFF_FFFF_FFFF


def matched_handles(entity: Any, kind: str) -> list[int]:
    """``entity.get_matched_<kind>()`` (``publications`` of a reader, ``subscriptions`` of a writer), safe to call
    while peers are matching.

    cyclonedds (0.10.x) sizes its buffer by one C call and fills it by a second; an endpoint that matches in between
    makes the second return more handles than the buffer holds, and the Python wrapper indexes past it
    (``IndexError: invalid index``). The list is then read again: the next read sees the new count."""
    read = getattr(entity, f"get_matched_{kind}")
    for _ in range(_MATCH_RETRIES):
        try:
            return list(read())
        except IndexError:
            continue
    return list(read())


_MATCH_RETRIES = 20


def _parse_entity_name(name: str) -> tuple[str, str, int | None]:
    node, at, rest = name.partition("@")
    host, colon, pid = rest.rpartition(":")
    if not at or not colon or not pid.isdigit():
        return name, "", None
    return node, host, int(pid)


def foreign_writers(sub: Subscription[Any]) -> list[WriterInfo]:
    """Writers matched by ``sub`` that belong to another DDS participant than ``sub``'s node.

    With ``node.subscription(t)`` beside ``node.publisher(t)``, this lists who else publishes ``t``."""
    return [w for w in sub.writers() if w.participant != sub.participant_guid]


class WriterPin:
    """Which writers a subscription admits. Not thread-safe: the subscription holds its lock around calls.

    Unpinned: every writer. Pinned to a handle: that writer only; samples of others are counted and
    their handles remembered. Pending (pinned before any writer was known): the first admitted sample's writer
    becomes the pinned one.
    """

    def __init__(self) -> None:
        self.pinned = False
        self.handle: int | None = None  # None while pinned: pending, the next sample's writer
        self.rejected_count = 0
        self.rejected_writers: set[int] = set()

    def pin(self, handle: int | None) -> None:
        """Admit only ``handle`` from now on; None: the writer of the next sample."""
        self.pinned, self.handle = True, handle
        self.rejected_count = 0
        self.rejected_writers = set()

    def unpin(self) -> None:
        self.pinned, self.handle = False, None

    def admit(self, writer: int) -> bool:
        """Whether a sample of ``writer`` passes; counts it when it does not."""
        if not self.pinned or self.handle == writer:
            return True
        if self.handle is None:
            self.handle = writer
            return True
        self.rejected_count += 1
        self.rejected_writers.add(writer)
        return False
