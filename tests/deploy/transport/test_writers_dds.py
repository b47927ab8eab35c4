"""Writers over real DDS between processes: identity, pinning, own writers, and the write hang.

Each test runs on a random domain over loopback (as test_dds_loopback.py); the writers are other processes
(tests/deploy/transport/_writer.py), so discovery, GUIDs and entity names go over the wire.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.msgs import Imu
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, WriterInfo, foreign_writers
from deploy.transport.writers import matched_handles
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "/test/writers"


@pytest.fixture
def domain_id() -> int:
    return random_domain()


@pytest.fixture
def node(domain_id: int) -> Iterator[Ros2Node]:
    with Ros2Node("test_node", domain_id=domain_id, config=LOOPBACK_CONFIG) as n:
        yield n


@pytest.fixture
def spawn(domain_id: int) -> Iterator:
    """spawn(module, *args) -> Popen of ``python -m tests.deploy.transport.<module>`` on the test's domain."""
    procs: list[subprocess.Popen] = []
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), CYCLONEDDS_URI=LOOPBACK_CONFIG)

    def start(module: str, *args: object) -> subprocess.Popen:
        cmd = [sys.executable, "-m", f"tests.deploy.transport.{module}", *map(str, args)]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()  # the writers stop when their stdin closes
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def writer(spawn, tag: str, seconds: float = 30.0, period_s: float = 0.002) -> subprocess.Popen:
    return spawn("_writer", TOPIC, tag, seconds, period_s)


def collect(sub, seconds: float) -> list[Imu]:
    got: list[Imu] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sub.wait(0.05):
            got.extend(sub.take())
    return got


def until(predicate, timeout_s: float = 15.0) -> bool:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_two_writers_in_other_processes_are_listed_with_their_process(node: Ros2Node, spawn) -> None:
    sub = node.subscription(TOPIC, Imu)
    a, b = writer(spawn, "A"), writer(spawn, "B")
    assert sub.wait_for_publishers(2, timeout_s=15.0)
    writers = sub.writers()
    assert len(writers) == 2
    assert {w.pid for w in writers} == {a.pid, b.pid}
    assert {w.node for w in writers} == {"test_writer"}
    assert {w.host for w in writers} == {socket.gethostname()}
    assert len({w.participant for w in writers}) == 2 and node.guid not in {w.participant for w in writers}
    assert len({w.handle for w in writers}) == 2 and all(w.guid[:8] == w.participant[:8] for w in writers)
    assert f"pid {a.pid}" in " ".join(str(w) for w in writers)
    assert foreign_writers(sub) == writers
    # each sample says which of them sent it
    by_pid = {w.pid: w.handle for w in writers}
    assert until(lambda: sub.latest() is not None)
    sample, handle = sub.latest_from()
    assert handle == by_pid[a.pid if sample.header.frame_id == "A" else b.pid]
    assert sub.latest_writer == handle


def test_pinned_subscription_never_returns_the_other_writers_samples(node: Ros2Node, spawn) -> None:
    sub = node.subscription(TOPIC, Imu)
    a = writer(spawn, "A", period_s=0.005)
    assert until(lambda: sub.latest() is not None)
    pinned = sub.pin_current()
    (a_info,) = sub.writers()
    assert pinned == a_info.handle == sub.pinned_writer and a_info.pid == a.pid
    b = writer(spawn, "B", period_s=0.0)  # a burst, as fast as the process can write
    assert sub.wait_for_publishers(2, timeout_s=15.0)
    (b_info,) = [w for w in sub.writers() if w.pid == b.pid]
    got = collect(sub, 1.5)
    latest = [sub.latest() for _ in range(50)]
    assert got and all(m.header.frame_id == "A" for m in got)
    assert all(m.header.frame_id == "A" for m in latest)
    stamps = [m.header.stamp.sec for m in got]
    assert stamps == sorted(stamps)  # A's samples, in order
    assert sub.rejected_count > 100 and sub.rejected_writers == {b_info.handle}
    assert sub.latest_from()[1] == a_info.handle
    # unpinned, B is heard again
    sub.unpin()
    assert until(lambda: any(m.header.frame_id == "B" for m in sub.take()), 5.0)


def test_pinned_callback_subscription_never_sees_the_other_writer(node: Ros2Node, spawn) -> None:
    seen: list[Imu] = []
    sub = node.subscription(TOPIC, Imu, callback=seen.append)
    a = writer(spawn, "A", period_s=0.005)
    assert until(lambda: sub.latest() is not None)
    (a_info,) = sub.writers()
    sub.pin(a_info)
    assert a_info.pid == a.pid and sub.pinned_writer == a_info.handle
    writer(spawn, "B", period_s=0.0)
    assert sub.wait_for_publishers(2, timeout_s=15.0)
    before = len(seen)
    assert until(lambda: sub.rejected_count > 100, 10.0)
    time.sleep(0.3)
    assert len(seen) > before and {m.header.frame_id for m in seen[before:]} == {"A"}
    assert sub.latest().header.frame_id == "A"


def test_pin_before_any_sample_pins_the_only_writer(node: Ros2Node, spawn) -> None:
    sub = node.subscription(TOPIC, Imu)
    # before any writer: pending, the first sample's writer will be the pinned one
    assert sub.pin_current() is None and sub.pinned_writer is None
    a = writer(spawn, "A", period_s=0.005)
    assert until(lambda: sub.latest() is not None)
    (a_info,) = sub.writers()
    assert sub.pinned_writer == a_info.handle and a_info.pid == a.pid
    sub.unpin()
    assert sub.pinned_writer is None
    # one matched writer, no sample taken yet by a fresh subscription: pin_current pins it
    fresh = node.subscription(TOPIC, Imu)
    assert fresh.wait_for_publishers(1, timeout_s=10.0)
    assert fresh.pin_current() == fresh.writers()[0].handle


def test_own_writer_is_not_foreign(node: Ros2Node, spawn) -> None:
    """The runtime watches the command topic it publishes: only other participants' writers count."""
    watch = node.subscription(TOPIC, Imu)  # never read, as the runtime's command watch
    pub = node.publisher(TOPIC, Imu)
    assert watch.wait_for_publishers(1, timeout_s=5.0)
    (own,) = watch.writers()
    assert own.participant == node.guid and own.pid == os.getpid() and own.node == "test_node"
    assert foreign_writers(watch) == []
    other = writer(spawn, "other")
    assert watch.wait_for_publishers(2, timeout_s=15.0)
    (foreign,) = foreign_writers(watch)
    assert foreign.pid == other.pid and foreign.participant != node.guid
    for _ in range(500):  # writing beside a never-read subscription and a foreign writer does not block
        pub.publish(Imu())
    assert [w.pid for w in foreign_writers(watch)] == [other.pid]


@pytest.mark.parametrize("mode", ["take", "callback"])
def test_writing_a_topic_the_node_subscribes_while_another_process_writes_it(spawn, mode: str) -> None:
    """The hang: before the fix, ``callback`` mode never returned from ``write`` (a GIL deadlock between the
    writer's local delivery and the reader's listener on Cyclone's receive thread). The node lives in its own
    process, so a hang fails this test (watchdog) instead of freezing the suite."""
    spawn("_writer", TOPIC, "other", 30.0, 0.0)
    spawn("_writer", TOPIC, "other2", 30.0, 0.0)
    node_proc = spawn("_self_subscriber", TOPIC, mode, 2, 3.0)
    try:
        out, err = node_proc.communicate(timeout=60.0)
    except subprocess.TimeoutExpired:
        node_proc.kill()
        out, err = node_proc.communicate()
        pytest.fail(f"the node did not finish: {err[-3000:]}")
    assert node_proc.returncode == 0, f"write hung or failed (status {node_proc.returncode}):\n{err[-3000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    assert result["writes"] > 1000
    assert len(result["foreign"]) == 2
    # RELIABLE default QoS: a write may block for at most max_blocking_s (0.1 s); slack for a loaded 2-core host
    assert result["max_write_s"] < 0.1 + 0.4
    if mode == "callback":
        assert result["received"] > 0


def test_writer_info_from_names() -> None:
    ours = WriterInfo(1, "g", "p", "deploy", "robot-7", 4242)
    assert str(ours) == "node 'deploy' (pid 4242 on robot-7, writer g)"
    assert str(WriterInfo(2, "g2", "p2")) == "writer g2 (participant p2)"


class _MatchingWhileRead:
    """A reader on which ``races`` endpoints match between cyclonedds' two C calls: its wrapper then indexes past
    the buffer it sized by the first call (the IndexError CI met in the self-subscriber test)."""

    def __init__(self, races: int) -> None:
        self.races, self.calls = races, 0

    def get_matched_publications(self) -> list[int]:
        self.calls += 1
        if self.calls <= self.races:
            raise IndexError("invalid index")
        return [7, 9]


def test_matched_handles_reads_again_when_a_writer_matches_during_the_read() -> None:
    reader = _MatchingWhileRead(races=3)
    assert matched_handles(reader, "publications") == [7, 9]
    assert reader.calls == 4
    with pytest.raises(IndexError):  # a list that never settles is not hidden
        matched_handles(_MatchingWhileRead(races=10_000), "publications")


def test_matched_handles_of_a_real_reader_and_writer(node: Ros2Node) -> None:
    pub = node.publisher(TOPIC + "_m", Imu, "default")
    sub = node.subscription(TOPIC + "_m", Imu, "default")
    assert sub.wait_for_publishers(1, 5.0) and pub.wait_for_subscribers(1, 5.0)
    assert sub.matched_count == 1 and pub.matched_count == 1
    assert len(sub.writers()) == 1
