"""DDS domains this process configured itself, shared by the nodes that name them.

Cyclone DDS holds one configuration per domain per process: a second ``Domain(id, xml)`` for a domain that already
exists fails with PRECONDITION_NOT_MET, so two nodes in one process (a runtime and a bridge, a test's reader and a
driver) could not both pass the same XML. Here the first node to name a domain with an XML creates it; later nodes
with the same XML share it, and the last one to close deletes it. A different XML for a domain in use is refused,
saying which: one process cannot put one domain on two configurations.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from cyclonedds.core import DDSException
from cyclonedds.domain import Domain

from deploy.transport.errors import TransportError


@dataclass
class _Shared:
    domain: Domain
    config: str
    users: int


_lock = threading.Lock()
_shared: dict[int, _Shared] = {}


def acquire(domain_id: int, config: str, owner: object) -> weakref.finalize:
    """Domain ``domain_id`` exists in this process on ``config`` (created now, or shared) for ``owner``; the returned
    callable lets go of it once: when called, or when the owner is collected. The last one to let go deletes it."""
    _acquire(domain_id, config)
    finalizer = weakref.finalize(owner, _release, domain_id)
    finalizer.atexit = False  # at exit Cyclone DDS tears its domains down itself
    return finalizer


def _acquire(domain_id: int, config: str) -> None:
    with _lock:
        entry = _shared.get(domain_id)
        if entry is not None:
            if entry.config != config:
                raise TransportError(
                    f"DDS domain {domain_id} is already in use in this process with another Cyclone DDS XML; "
                    "one process runs a domain on one configuration: give every node on it the same config "
                    "(or config=None to join it as it is), or use another domain id"
                )
            entry.users += 1
            return
        try:
            domain = Domain(domain_id, config)
        except DDSException as err:
            if err.code == DDSException.DDS_RETCODE_PRECONDITION_NOT_MET:
                raise TransportError(
                    f"DDS domain {domain_id} already exists in this process, configured elsewhere (a participant "
                    "created without this XML, e.g. a node with config=None or another library); its configuration "
                    "cannot change now: create that node with config=None to join it as it is, or use another "
                    "domain id"
                ) from err
            raise TransportError(
                f"could not create DDS domain {domain_id}: {err}. Check the Cyclone DDS XML (config argument or "
                "CYCLONEDDS_URI) and that the network interface it names exists."
            ) from err
        _shared[domain_id] = _Shared(domain, config, 1)


def _release(domain_id: int) -> None:
    with _lock:
        entry = _shared.get(domain_id)
        if entry is None:
            return
        entry.users -= 1
        if entry.users == 0:
            del _shared[domain_id]
            entry.domain.__del__()
