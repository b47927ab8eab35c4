"""Time: ROS time on the wire and in logs, the monotonic clock for the loop, and each input stream's clock
reconciled with this computer's.

- Out: every stamp the runtime writes (command headers, log times) is ROS time, the system clock
  (``time.time_ns()``), as rclpy's default clock: logs line up with other ROS data and open at the right date.
- In: a state stream is stamped on its sender's clock. :class:`StreamClock` maps each stamp onto this computer's
  CLOCK_MONOTONIC (the safety layer's and the loop's clock, which never jumps):

  * synchronized (the first samples arrive between ``max_future_s`` ahead of and ``sync_tolerance_s`` behind
    this computer's ROS time: same computer, or NTP/PTP-synchronized computers): stamp - (ROS time - monotonic).
    The latency of the link then shows in the state's age, which the watchdog bounds.
  * measured (any other clock: a flight controller's boot clock, an unsynchronized computer): offset = the
    smallest (arrival - stamp) over the last ``window_s``; mapped stamps lag by at most the smallest latency
    seen, so the watchdog sees only latency beyond that. Logged at WARNING with the offset found, once.

  Stamps it cannot reconcile are refused (None) with the reason at WARNING, once per reason and stream: a stamp
  older than the previous one of its stream (a clock stepped back, or a replayed sample); zero stamps; in
  synchronized mode, ``switch_after`` consecutive samples from the future switch the stream to measured mode
  (a clock that lost its synchronization), again at WARNING.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("sim2real.runtime.clock")


def ros_time_ns() -> int:
    """ROS time now: the system clock, ns since the Unix epoch."""
    return time.time_ns()


def ros_minus_monotonic_ns() -> int:
    """ROS time - CLOCK_MONOTONIC now, ns (changes when the system clock is stepped)."""
    return time.time_ns() - time.monotonic_ns()


def ros_stamp_ns(now: float) -> int:
    """The ROS time (ns) of ``now`` on the monotonic clock (s): what the runtime writes in stamps and log times."""
    return round(now * 1e9) + ros_minus_monotonic_ns()


class StreamClock:
    """Maps one input stream's header stamps onto this computer's monotonic clock (see the module docstring)."""

    def __init__(
        self,
        name: str,
        sync_tolerance_s: float = 0.5,
        max_future_s: float = 0.005,
        window_s: float = 5.0,
        switch_after: int = 5,
        offset_now: Callable[[], int] = ros_minus_monotonic_ns,
    ) -> None:
        self.name = name
        self.sync_tolerance_ns, self.max_future_ns = int(sync_tolerance_s * 1e9), int(max_future_s * 1e9)
        self.window_ns, self.switch_after = int(window_s * 1e9), switch_after
        self._offset_now = offset_now
        self.mode: str | None = None  # "synchronized" | "measured", decided on the first sample
        self._window: deque[tuple[int, int]] = deque()  # (arrival ns, arrival - stamp ns), minimum at the front
        self._last_stamp_ns: int | None = None
        self._future_run = 0
        self._warned: set[str] = set()

    def _warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("state stream %s: " + message, self.name, *args)

    def to_monotonic_ns(self, stamp_ns: int, arrival_ns: int) -> int | None:
        """The monotonic time (ns) of a sample stamped ``stamp_ns`` (its sender's clock) that arrived at
        ``arrival_ns`` (this computer's monotonic clock); None when the stamp cannot be reconciled."""
        stamp_ns, arrival_ns = int(stamp_ns), int(arrival_ns)
        if stamp_ns <= 0:
            self._warn("zero", "stamp %d ns is not a time: its driver does not stamp its messages", stamp_ns)
            return None
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            self._warn(
                "backwards",
                "stamp went back by %.3f s (a clock stepped back or an old sample replayed): sample refused",
                (self._last_stamp_ns - stamp_ns) * 1e-9,
            )
            return None
        self._last_stamp_ns = stamp_ns
        ros_minus_mono = self._offset_now()
        late_ns = arrival_ns + ros_minus_mono - stamp_ns  # how late it is if the sender's clock is ROS time
        if self.mode is None:
            synchronized = -self.max_future_ns <= late_ns <= self.sync_tolerance_ns
            self.mode = "synchronized" if synchronized else "measured"
            if not synchronized:
                self._warn(
                    "offset",
                    "its clock differs from this computer's ROS time by %.3f s: using a measured offset (the "
                    "link's smallest latency is then invisible to the state watchdog; synchronize the clocks, "
                    "e.g. chrony or PTP, to see it)",
                    late_ns * 1e-9,
                )
        if self.mode == "synchronized":
            if late_ns < -self.max_future_ns:
                self._future_run += 1
                if self._future_run >= self.switch_after:
                    self.mode = "measured"
                    self._warn(
                        "lost-sync",
                        "%d samples in a row from %.3f s in the future: the clocks are not synchronized, using a "
                        "measured offset from now on",
                        self._future_run,
                        -late_ns * 1e-9,
                    )
                else:
                    return stamp_ns - ros_minus_mono  # the safety layer's clock check refuses it
            else:
                self._future_run = 0
                return stamp_ns - ros_minus_mono
        return stamp_ns + self._measured_offset(stamp_ns, arrival_ns)

    def _measured_offset(self, stamp_ns: int, arrival_ns: int) -> int:
        delta = arrival_ns - stamp_ns
        while self._window and self._window[-1][1] >= delta:  # a monotonic queue: the front is the minimum
            self._window.pop()
        self._window.append((arrival_ns, delta))
        while self._window[0][0] < arrival_ns - self.window_ns:
            self._window.popleft()
        return self._window[0][1]


class InputClocks:
    """One :class:`StreamClock` per input subscription of an adapter, keyed like ``adapter.inputs``."""

    def __init__(self, names, **kwargs) -> None:
        self.clocks = {name: StreamClock(name, **kwargs) for name in names}

    def latest(self, name: str, subscription):
        """(latest message, its stamp on the monotonic clock in s or None when refused) of ``subscription``;
        (None, None) when nothing arrived yet."""
        msg, arrival_ns = subscription.latest_arrival()
        if msg is None:
            return None, None
        from deploy.msgs import time_to_ns

        local = self.clocks[name].to_monotonic_ns(time_to_ns(msg.header.stamp), arrival_ns)
        return msg, None if local is None else local * 1e-9
