"""Subscription callbacks on a Python thread of the node, never on a Cyclone DDS thread.

Why: cyclonedds' ``DataWriter.write`` keeps the Python GIL while Cyclone delivers the sample to the readers of
the same process, and Cyclone runs the listeners of one reader one at a time. A listener (a Python callback)
invoked by Cyclone's receive thread for a sample from another process must take the GIL; if the writer of this
process delivers to that reader meanwhile, it waits for the listener, which waits for the GIL the writer holds:
``write`` never returns (docs/transport.md, "Threads"). Here no DDS thread ever runs Python: one thread per node
waits on a wait set (the wait releases the GIL), takes the samples and calls the callbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cyclonedds.core import DDSException, ReadCondition, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.util import duration

log = logging.getLogger(__name__)


class CallbackThread:
    """One thread of a node that calls ``dispatch()`` of each callback subscription when data is available.

    Started by the first :meth:`add`; :meth:`close` stops it (before the node deletes its participant).
    """

    def __init__(self, participant: DomainParticipant, name: str) -> None:
        self._waitset = WaitSet(participant)
        self._dispatchers: list[Callable[[], None]] = []
        self._name = name
        self._closing = False
        self._thread: threading.Thread | None = None

    def add(self, condition: ReadCondition, dispatch: Callable[[], None]) -> None:
        """Call ``dispatch()`` on this thread whenever ``condition`` (samples in a reader) triggers."""
        self._dispatchers.append(dispatch)
        self._waitset.attach(condition)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-callbacks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closing:
            try:
                self._waitset.wait(duration(seconds=1.0))  # releases the GIL while it waits
            except DDSException:  # the participant (and the wait set with it) was deleted
                return
            if self._closing:
                return
            for dispatch in list(self._dispatchers):
                dispatch()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread: wakes it and waits for the callback it may be running (not when called from it)."""
        self._closing = True
        thread = self._thread
        if thread is None:
            return
        try:
            self._waitset.set_trigger(True)
        except DDSException:
            pass
        if thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("callback thread of %s still runs a callback after %.1f s", self._name, timeout_s)
