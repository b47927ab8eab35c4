"""A fixed-rate control loop scheduled against absolute deadlines, with per-cycle timing.

Cycle k starts at ``t0 + k * period`` whatever the previous cycle cost (the pitfall it avoids: ``sleep(dt)``
after the compute makes the real period dt + compute time). A cycle that overruns its period is a deadline
miss; when the loop falls behind by whole periods it skips them (counted as misses) instead of bursting.
The clock and the sleep are injectable so the scheduling logic is tested deterministically.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """Timing of a loop run; all durations in seconds."""

    period_s: float
    starts: list[float] = field(default_factory=list)  # actual cycle start times (clock)
    jitter: list[float] = field(default_factory=list)  # start - scheduled deadline, >= 0
    compute: list[float] = field(default_factory=list)  # duration of the step callback
    inference: list[float] = field(default_factory=list)  # what the step reported as inference time
    deadline_misses: int = 0  # cycles whose compute ran past the next deadline, plus skipped cycles
    skipped_cycles: int = 0

    @property
    def cycles(self) -> int:
        return len(self.starts)

    def summary(self) -> dict[str, float]:
        """Percentiles in microseconds, counts as numbers: what a log or a benchmark prints."""

        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q) * 1e6) if values else float("nan")

        periods = np.diff(self.starts) if len(self.starts) > 1 else np.array([])
        return {
            "cycles": self.cycles,
            "rate_hz": 1.0 / self.period_s,
            "mean_period_us": float(periods.mean() * 1e6) if periods.size else float("nan"),
            "jitter_p50_us": pct(self.jitter, 50),
            "jitter_p99_us": pct(self.jitter, 99),
            "jitter_max_us": pct(self.jitter, 100),
            "compute_p50_us": pct(self.compute, 50),
            "compute_p99_us": pct(self.compute, 99),
            "inference_p50_us": pct(self.inference, 50),
            "inference_p99_us": pct(self.inference, 99),
            "inference_max_us": pct(self.inference, 100),
            "deadline_misses": self.deadline_misses,
            "skipped_cycles": self.skipped_cycles,
        }


def sleep_until(deadline: float, clock: Callable[[], float] = time.monotonic, spin_s: float = 2e-4) -> None:
    """Sleep until ``deadline`` (clock seconds): OS sleep for most of it, then spin the last ``spin_s``."""
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return
        if remaining > spin_s:
            time.sleep(remaining - spin_s)


class FixedRateLoop:
    """Calls ``step(now) -> inference_s | None | False`` at ``rate_hz``; ``False`` stops the loop."""

    def __init__(
        self,
        rate_hz: float,
        clock: Callable[[], float] = time.monotonic,
        wait_until: Callable[[float], None] | None = None,
        realtime_priority: int | None = None,
        cpu: int | None = None,
    ):
        """realtime_priority: run the loop's thread under SCHED_FIFO at this priority (1-99) while it runs; the
        OS otherwise wakes a sleeping thread milliseconds late now and then (measured here: 8 misses in 20 s
        at 500 Hz with nothing but inference in the cycle, 0 with SCHED_FIFO 50). Needs root or CAP_SYS_NICE;
        without them the loop logs a warning and runs at normal priority.

        cpu: pin the loop's thread to this CPU while it runs (other threads and processes keep their own
        affinity); None leaves the scheduler free to pick."""
        if not rate_hz > 0:
            raise ValueError(f"loop rate must be a positive number of Hz, got {rate_hz!r}")
        if realtime_priority is not None and not 1 <= realtime_priority <= 99:
            raise ValueError(f"realtime_priority must be 1..99 (SCHED_FIFO), got {realtime_priority!r}")
        self.realtime_priority = realtime_priority
        self.cpu = cpu
        self.period = 1.0 / rate_hz
        self.clock = clock
        self.wait_until = wait_until or (lambda deadline: sleep_until(deadline, clock))

    def run(
        self, step: Callable[[float], float | bool | None], cycles: int | None = None, duration_s: float | None = None
    ) -> LoopStats:
        if cycles is None and duration_s is None:
            raise ValueError("give cycles or duration_s: a loop without an end is run by the caller, cycle by cycle")
        total = cycles if cycles is not None else max(1, round(duration_s / self.period))
        stats = LoopStats(self.period)
        affinity = self._pin()  # first: it may refuse the CPU before anything else has changed
        # The cyclic garbage collector stops the interpreter for milliseconds at unpredictable times: keep it off
        # while the loop runs (reference counting still frees everything acyclic). Freeze, do not collect: a full
        # collection in a process holding torch took 1.6-2 s, a stall between arming and the first cycle.
        gc_was_enabled, frozen_before = gc.isenabled(), gc.get_freeze_count()
        gc.disable()
        gc.freeze()
        # A thread that gives up the GIL (onnxruntime, DDS and file calls do) waits for it up to the switch
        # interval (5 ms by default) when another Python thread took it meanwhile: keep that wait well under
        # a period while the loop runs.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, self.period / 20))
        previous = self._enter_realtime()
        try:
            return self._run(step, total, stats)
        finally:
            if previous is not None:
                os.sched_setscheduler(0, *previous)
            if affinity is not None:
                os.sched_setaffinity(0, affinity)
            sys.setswitchinterval(switch_interval)
            if not frozen_before:  # the caller's own frozen heap stays frozen
                gc.unfreeze()
            if gc_was_enabled:
                gc.enable()

    def _pin(self) -> set[int] | None:
        if self.cpu is None or not hasattr(os, "sched_setaffinity"):
            return None
        previous = os.sched_getaffinity(0)
        if self.cpu not in previous:
            raise ValueError(f"cpu {self.cpu} is not one this process may run on: {sorted(previous)}")
        os.sched_setaffinity(0, {self.cpu})  # 0: the calling thread on Linux
        return previous

    def _enter_realtime(self) -> tuple[int, os.sched_param] | None:
        if self.realtime_priority is None or not hasattr(os, "sched_setscheduler"):
            return None
        previous = (os.sched_getscheduler(0), os.sched_getparam(0))
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
        except PermissionError:
            log.warning(
                "could not run the control loop under SCHED_FIFO %d (needs root, CAP_SYS_NICE or an rtprio limit in "
                "/etc/security/limits.conf); running at normal priority, expect occasional late cycles",
                self.realtime_priority,
            )
            return None
        return previous

    def _run(self, step: Callable[[float], float | bool | None], total: int, stats: LoopStats) -> LoopStats:
        t0 = self.clock()
        k = 0
        while k < total:
            deadline = t0 + k * self.period
            self.wait_until(deadline)
            start = self.clock()
            result = step(start)
            end = self.clock()
            stats.starts.append(start)
            stats.jitter.append(max(0.0, start - deadline))
            stats.compute.append(end - start)
            if isinstance(result, float):
                stats.inference.append(result)
            if result is False:
                break
            next_deadline = deadline + self.period
            if end > next_deadline:
                # The overrun is a miss, and so is every deadline already in the past: skip to the first
                # deadline still ahead instead of running late cycles back to back.
                behind = int((end - next_deadline) // self.period) + 1
                stats.deadline_misses += 1 + behind
                stats.skipped_cycles += behind
                k += behind
            k += 1
        return stats
