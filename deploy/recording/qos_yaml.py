"""The ``offered_qos_profiles`` channel metadata rosbag2 writes, so ``ros2 bag play`` republishes with the
QoS the topic had (enum values from rmw: KEEP_LAST=1, RELIABLE=1, BEST_EFFORT=2, TRANSIENT_LOCAL=1,
VOLATILE=2, AUTOMATIC=1)."""

from __future__ import annotations

from deploy.transport.qos import QosProfile

_INFINITE = "    sec: 2147483647\n    nsec: 4294967295\n"


def offered_qos_yaml(qos: QosProfile) -> str:
    """YAML list with one QoS profile, in rosbag2's (Humble) spelling."""
    reliability = 1 if qos.reliability == "reliable" else 2
    durability = 1 if qos.durability == "transient_local" else 2
    return (
        f"- history: 1\n  depth: {qos.depth}\n  reliability: {reliability}\n  durability: {durability}\n"
        f"  deadline:\n{_INFINITE}  lifespan:\n{_INFINITE}  liveliness: 1\n"
        f"  liveliness_lease_duration:\n{_INFINITE}  avoid_ros_namespace_conventions: false\n"
    )
