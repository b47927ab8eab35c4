"""Domain id resolution and Cyclone DDS XML configuration.

ROS 2 takes the domain from ``ROS_DOMAIN_ID`` (default 0). Cyclone DDS reads its XML configuration from
``CYCLONEDDS_URI`` unless one is given explicitly; :func:`cyclone_config_xml` builds a configuration pinned to
one network interface (``lo`` for software-in-the-loop and tests).
"""

from __future__ import annotations

import os
from xml.sax.saxutils import quoteattr

from deploy.transport.errors import TransportError

#: Largest DDS domain id Cyclone DDS accepts with the default port mapping (RTPS ports fit in 16 bits).
MAX_DOMAIN_ID = 232


def resolve_domain_id(domain_id: int | None = None) -> int:
    """``domain_id`` if given, else ``ROS_DOMAIN_ID`` from the environment, else 0; checked to be in 0..232."""
    source = "domain_id argument"
    if domain_id is None:
        raw = os.environ.get("ROS_DOMAIN_ID", "").strip()
        source = "ROS_DOMAIN_ID"
        if not raw:
            return 0
        try:
            domain_id = int(raw)
        except ValueError:
            raise TransportError(f"ROS_DOMAIN_ID={raw!r} is not an integer; set it to 0..{MAX_DOMAIN_ID}") from None
    if isinstance(domain_id, bool) or not isinstance(domain_id, int) or not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise TransportError(
            f"{source} must be an integer in 0..{MAX_DOMAIN_ID} (ROS 2 recommends 0..101), got {domain_id!r}"
        )
    return domain_id


def cyclone_config_xml(
    interface: str = "lo",
    *,
    multicast: bool = False,
    peers: tuple[str, ...] = ("127.0.0.1",),
    max_participant_index: int = 32,
) -> str:
    """A Cyclone DDS XML configuration pinned to network ``interface``.

    With ``multicast=False`` discovery is unicast to ``peers`` (participant indices 0..max_participant_index
    on each peer), which works on the loopback interface where multicast usually does not.
    """
    peer_xml = "".join(f"<Peer address={quoteattr(p)}/>" for p in peers)
    discovery = (
        "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
        f"<MaxAutoParticipantIndex>{int(max_participant_index)}</MaxAutoParticipantIndex>"
        f"<Peers>{peer_xml}</Peers></Discovery>"
        if not multicast
        else ""
    )
    return (
        '<CycloneDDS><Domain Id="any"><General>'
        f"<Interfaces><NetworkInterface name={quoteattr(interface)}/></Interfaces>"
        f"<AllowMulticast>{'true' if multicast else 'false'}</AllowMulticast>"
        f"</General>{discovery}</Domain></CycloneDDS>"
    )


LOOPBACK_CONFIG = cyclone_config_xml("lo")
