"""The runtime's end of the operator link: :class:`OperatorLink` reads the operator's heartbeat, commands and
e-stop (deploy/operator/__init__.py, docs/operator.md) and hands them out per :meth:`OperatorLink.poll`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from deploy.msgs import Bool, Header, String
from deploy.transport import Ros2Node, TransportConfig

log = logging.getLogger("sim2real.operator")

#: Commands on the ``operator_command`` topic.
COMMANDS = ("arm", "disarm", "reset", "land")


@dataclass(frozen=True)
class OperatorInputs:
    """What the operator sent since the previous :meth:`OperatorLink.poll`.

    heartbeat_s: monotonic ARRIVAL time (the link's clock, seconds) of the newest heartbeat so far, None if none ever
    arrived; heartbeat_age_s: ``now - heartbeat_s`` at the poll (inf if none); estop: a ``true`` arrived on the
    e-stop topic since the previous poll (from any writer); commands: commands that arrived since the previous poll,
    oldest first, each one of :data:`COMMANDS`; operator_id: frame_id of the newest heartbeat ("" if none).
    """

    heartbeat_s: float | None
    heartbeat_age_s: float
    estop: bool
    commands: list[str]
    operator_id: str = ""


class OperatorLink:
    """The runtime's end of the operator link: subscribes to ``operator_heartbeat``, ``operator_command`` and
    ``estop`` of ``config`` on ``node``.

    Contract:

    - :meth:`poll` never blocks and loses nothing between polls: each sample is queued by a DDS-thread callback
      (under a lock) the moment it arrives, and handed out by exactly one poll.
    - Heartbeat time is the arrival time on this computer's ``clock`` (default ``time.monotonic``, the runtime's
      clock), not the sender's stamp: the two computers' clocks need not agree. Pass it to
      ``SafetyLayer.heartbeat(inputs.heartbeat_s)`` when it changed.
    - ``estop`` is True if any ``true`` arrived since the previous poll, from any writer (operator, a hardware
      button node, ``ros2 topic pub``); ``false`` releases nothing: the runtime's e-stop is reset with a command.
    - Unknown command strings are dropped with a warning, never passed on.
    """

    def __init__(self, node: Ros2Node, config: TransportConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._heartbeat_s: float | None = None
        self._operator_id = ""
        self._estop = False
        self._commands: list[str] = []
        hb, cmd, estop = (config.topic(k) for k in ("operator_heartbeat", "operator_command", "estop"))
        self.heartbeat_sub = node.subscription(hb.name, hb.msg_type, hb.qos, callback=self._on_heartbeat)
        self.command_sub = node.subscription(cmd.name, cmd.msg_type, cmd.qos, callback=self._on_command)
        self.estop_sub = node.subscription(estop.name, estop.msg_type, estop.qos, callback=self._on_estop)

    def _on_heartbeat(self, msg: Header) -> None:
        arrived = self._clock()
        with self._lock:
            if self._heartbeat_s is None or arrived >= self._heartbeat_s:
                self._heartbeat_s, self._operator_id = arrived, msg.frame_id

    def _on_command(self, msg: String) -> None:
        if msg.data not in COMMANDS:
            log.warning("ignoring unknown operator command %r; expected one of %s", msg.data, ", ".join(COMMANDS))
            return
        with self._lock:
            self._commands.append(msg.data)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            with self._lock:
                self._estop = True

    def poll(self, now_monotonic: float) -> OperatorInputs:
        """Everything since the previous poll; ``now_monotonic``: the runtime's time now (for the age), s."""
        with self._lock:
            hb, operator_id, estop, commands = self._heartbeat_s, self._operator_id, self._estop, self._commands
            self._estop, self._commands = False, []
        age = float("inf") if hb is None else now_monotonic - hb
        return OperatorInputs(hb, age, estop, commands, operator_id)
