"""A cflib link driver for ``sim2real://<name>`` URIs: cflib's packets go to a fake Crazyflie in this process
(and every packet is recorded as cflib sent it), the fake's answers come back as packets. No radio, no socket.

    from drivers.fake_crazyflie_link import RecordingLink, register
    register()                                      # once: cflib.crtp.init_drivers() first, then this
    link = RecordingLink.attach("cf1", fake)        # fake: drivers.fake_crazyflie.FakeCrazyflie or any
                                                    #   object with receive(raw) and an outbox deque
    Crazyflie().open_link("sim2real://cf1")         # cflib's own connection sequence over the fake
    link.sent                                       # [(time, header, data bytes), ...] in the order cflib sent them

cflib finds drivers through ``cflib.crtp.CLASSES``: ``get_link_driver`` instantiates each class and calls
``connect(uri, ...)`` until one does not raise ``WrongUriType`` (cflib 0.1.34 ``crtp/__init__.py``,
``crtp/crtpdriver.py``). The fake is stepped by whoever owns it (a test, or ``RecordingLink.run``'s thread).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import ClassVar

from cflib.crtp import CLASSES
from cflib.crtp.crtpdriver import CRTPDriver
from cflib.crtp.crtpstack import CRTPPacket
from cflib.crtp.exceptions import WrongUriType

SCHEME = "sim2real://"


class RecordingLink:
    """The fake's end of a ``sim2real://name`` link: what cflib sent, and the queue of answers for it."""

    _links: ClassVar[dict[str, RecordingLink]] = {}

    def __init__(self, name: str, device) -> None:
        self.name, self.device = name, device
        self.sent: list[tuple[float, int, bytes]] = []
        self.incoming: queue.Queue[CRTPPacket] = queue.Queue()
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def attach(cls, name: str, device) -> RecordingLink:
        link = cls._links[name] = cls(name, device)
        return link

    @classmethod
    def get(cls, name: str) -> RecordingLink | None:
        return cls._links.get(name)

    def from_host(self, pk: CRTPPacket) -> None:
        raw = bytes([pk.get_header()]) + bytes(pk.data)
        self.sent.append((time.monotonic(), raw[0], raw[1:]))
        self.device.receive(raw)
        self.pump()

    def pump(self) -> None:
        """Move the fake's outbox to cflib's receive queue."""
        outbox = self.device.outbox
        while outbox:
            raw = outbox.popleft()
            self.incoming.put(CRTPPacket(raw[0], raw[1:]))

    def run(self, rate_hz: float = 100.0) -> None:
        """Step the fake in a thread at ``rate_hz`` (until :meth:`stop`), delivering its log data."""

        def loop() -> None:
            period, deadline = 1.0 / rate_hz, time.monotonic()
            while not self._stop.is_set():
                self.device.step()
                self.pump()
                deadline += period
                time.sleep(max(0.0, deadline - time.monotonic()))

        self._thread = threading.Thread(target=loop, name=f"fake_crazyflie_{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def packets(self, port: int, channel: int | None = None) -> list[bytes]:
        """The data of what cflib sent on ``port`` (and ``channel``), in order."""
        return [d for _, h, d in self.sent if h >> 4 == port and (channel is None or h & 3 == channel)]


class RecordingDriver(CRTPDriver):
    """cflib's side of a ``sim2real://name`` link."""

    def __init__(self) -> None:
        super().__init__()
        self.needs_resending = False
        self.link: RecordingLink | None = None

    def connect(self, uri, radio_link_statistics_callback, link_error_callback) -> None:
        if not str(uri).startswith(SCHEME):
            raise WrongUriType("not a sim2real:// URI")
        name = str(uri)[len(SCHEME) :]
        link = RecordingLink.get(name)
        if link is None:
            raise WrongUriType(f"no fake Crazyflie attached as {name!r} (RecordingLink.attach first)")
        self.link, link.connected = link, True

    def send_packet(self, pk: CRTPPacket) -> None:
        if self.link is not None:
            self.link.from_host(pk)

    def receive_packet(self, wait=0):
        if self.link is None:
            return None
        try:
            if wait == 0:
                return self.link.incoming.get_nowait()
            return self.link.incoming.get(timeout=None if wait < 0 else wait)
        except queue.Empty:
            return None

    def get_status(self) -> str:
        return "fake Crazyflie (in process)"

    def get_name(self) -> str:
        return "sim2real"

    def scan_interface(self, address=None) -> list:
        return [[SCHEME + name, ""] for name in RecordingLink._links]

    def close(self) -> None:
        if self.link is not None:
            self.link.connected = False
        self.link = None


def register() -> None:
    """Add the driver to cflib's list (after ``cflib.crtp.init_drivers()``; twice is harmless)."""
    if RecordingDriver not in CLASSES:
        CLASSES.insert(0, RecordingDriver)
