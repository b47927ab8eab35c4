"""Each input stream's clock reconciled with the runtime's (deploy/runtime/clock.py): synchronized clocks keep
their latency visible, other clocks get a measured offset, stamps that cannot be reconciled are refused."""

from __future__ import annotations

import logging

import pytest

from deploy.runtime.clock import StreamClock, ros_stamp_ns

S = 1_000_000_000
ROS_MINUS_MONO = 1_765_000_000 * S  # this computer: ROS time = monotonic + ~56 years


def clock(**kw) -> StreamClock:
    return StreamClock("pose", offset_now=lambda: ROS_MINUS_MONO, **kw)


def test_synchronized_stream_keeps_its_latency():
    c = clock()
    arrival = 100 * S
    stamp = arrival + ROS_MINUS_MONO - 30_000_000  # sent 30 ms before it arrived, on a synchronized clock
    assert c.to_monotonic_ns(stamp, arrival) == arrival - 30_000_000
    assert c.mode == "synchronized"
    # a later sample 80 ms late shows 80 ms of age (the watchdog sees it)
    assert c.to_monotonic_ns(stamp + 10 * 1_000_000, arrival + 90_000_000) == arrival - 20_000_000


def test_unsynchronized_stream_gets_the_smallest_measured_offset(caplog):
    c = clock()
    boot = 5 * S  # a flight controller's boot clock: 5 s since it started
    with caplog.at_level(logging.WARNING, logger="sim2real.runtime.clock"):
        first = c.to_monotonic_ns(boot, 100 * S + 7_000_000)  # 7 ms link latency
    assert c.mode == "measured"
    assert "differs from this computer's ROS time by" in caplog.text and "chrony" in caplog.text
    assert first == 100 * S + 7_000_000
    # a faster sample lowers the offset; slower ones keep the smallest
    assert c.to_monotonic_ns(boot + 10_000_000, 100 * S + 12_000_000) == 100 * S + 12_000_000
    assert c.to_monotonic_ns(boot + 20_000_000, 100 * S + 40_000_000) == 100 * S + 22_000_000  # 18 ms late shows


def test_backwards_and_zero_stamps_are_refused_with_a_warning(caplog):
    c = clock()
    t = 100 * S + ROS_MINUS_MONO
    assert c.to_monotonic_ns(t, 100 * S) is not None
    with caplog.at_level(logging.WARNING, logger="sim2real.runtime.clock"):
        assert c.to_monotonic_ns(t - 50_000_000, 100 * S + 10_000_000) is None
        assert c.to_monotonic_ns(0, 100 * S + 20_000_000) is None
    assert "went back by 0.050 s" in caplog.text and "does not stamp" in caplog.text
    assert c.to_monotonic_ns(t, 100 * S + 30_000_000) is not None  # the same stamp again is fine


def test_future_samples_pass_to_the_clock_check_until_the_stream_is_clearly_unsynchronized(caplog):
    c = clock(switch_after=3)
    t = 100 * S
    assert c.to_monotonic_ns(t + ROS_MINUS_MONO, t) == t
    ahead = 2 * S  # the sender's clock jumped 2 s ahead
    for k in range(1, 3):
        # passed through in the future: the safety layer's clock check refuses those samples
        assert c.to_monotonic_ns(t + k * S // 100 + ahead + ROS_MINUS_MONO, t + k * S // 100) > t + ahead // 2
    with caplog.at_level(logging.WARNING, logger="sim2real.runtime.clock"):
        mapped = c.to_monotonic_ns(t + 3 * S // 100 + ahead + ROS_MINUS_MONO, t + 3 * S // 100)
    assert c.mode == "measured" and "not synchronized" in caplog.text
    assert mapped == t + 3 * S // 100  # from now on the measured offset


def test_runtime_stamps_are_ros_time():
    import time

    now = time.monotonic()
    assert abs(ros_stamp_ns(now) - time.time_ns()) < 50_000_000


@pytest.mark.parametrize("late_s", [0.0, 0.4])
def test_sync_tolerance_decides_the_mode(late_s):
    c = clock(sync_tolerance_s=0.5)
    c.to_monotonic_ns(10 * S + ROS_MINUS_MONO - int(late_s * S), 10 * S)
    assert c.mode == "synchronized"
