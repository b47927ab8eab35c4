"""Exceptions of the DDS transport."""

from __future__ import annotations


class TransportError(RuntimeError):
    """The transport could not be set up or used (DDS entity creation, domain id, closed node)."""


class TopicNameError(ValueError):
    """A topic name that is not a valid ROS 2 name."""


class QosError(ValueError):
    """An unknown QoS preset or an invalid QoS profile."""
