"""Writing a topic: :class:`Publisher` (created by :meth:`deploy.transport.node.Ros2Node.publisher`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cyclonedds.pub import DataWriter

from deploy.transport.errors import TransportError
from deploy.transport.qos import QosProfile
from deploy.transport.writers import matched_handles

M = TypeVar("M")


class Publisher(Generic[M]):
    """Writes messages of one type on one topic. Create with :meth:`Ros2Node.publisher`."""

    def __init__(self, writer: DataWriter, topic: str, msg_type: type[M], qos: QosProfile) -> None:
        self._writer = writer
        self.topic, self.msg_type, self.qos = topic, msg_type, qos
        self._closed = False

    def publish(self, msg: M) -> None:
        """Send one message (non-blocking for best effort; reliable blocks at most qos.max_blocking_s).

        Holds the GIL while it blocks (cyclonedds does not release it): other Python threads pause that long."""
        if type(msg) is not self.msg_type:
            raise TypeError(
                f"publisher on {self.topic} sends {self.msg_type.__name__}, got {type(msg).__name__}; "
                f"build a deploy.msgs.{self.msg_type.__name__}"
            )
        if self._closed:
            raise TransportError(f"the publisher on {self.topic} was destroyed; create a new one")
        self._writer.write(msg)

    @property
    def matched_count(self) -> int:
        """Number of matched subscriptions (QoS-compatible readers of this topic and type)."""
        return len(matched_handles(self._writer, "subscriptions"))

    def wait_for_subscribers(self, count: int = 1, timeout_s: float = 5.0) -> bool:
        """Block until ``count`` subscriptions match or ``timeout_s`` seconds pass; True if matched."""
        return poll_until(lambda: self.matched_count >= count, timeout_s)


def poll_until(predicate: Callable[[], bool], timeout_s: float, period_s: float = 0.002) -> bool:
    """True as soon as ``predicate()`` is; False after ``timeout_s`` seconds of checking every ``period_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(period_s)
