"""Real DDS on loopback: a publisher in another process, matching rules, wire names."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.msgs import Bool, Imu, String
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportError
from tests.deploy.transport._publisher import QOS
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def domain_id() -> int:
    """A random domain per test so concurrent test runs on this machine do not talk to each other."""
    return random_domain()


@pytest.fixture
def node(domain_id: int):
    with Ros2Node("test_node", domain_id=domain_id, config=LOOPBACK_CONFIG) as n:
        yield n


def test_messages_from_another_process(node: Ros2Node, domain_id: int) -> None:
    count = 20
    sub = node.subscription("/test/imu", Imu, QOS)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.deploy.transport._publisher", str(count)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    got: list[Imu] = []
    deadline = time.monotonic() + 15.0
    while len(got) < count and time.monotonic() < deadline:
        if sub.wait(0.2):
            got.extend(sub.take())
    _, err = proc.communicate(timeout=15.0)
    assert proc.returncode == 0, err
    assert [m.header.stamp.sec for m in got] == list(range(count))
    for i, m in enumerate(got):
        assert m.header.stamp.nanosec == 7
        assert m.header.frame_id == f"imu{i}"
        assert (m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z) == (i, -i, 0.5 * i)
        assert m.orientation_covariance == [float(i)] * 9
    assert sub.latest() == got[-1]


def test_best_effort_writer_does_not_match_reliable_reader(node: Ros2Node) -> None:
    reliable_reader = node.subscription("/qos/a", Bool, "default")
    best_effort_writer = node.publisher("/qos/a", Bool, "sensor_data")
    best_effort_reader = node.subscription("/qos/b", Bool, "sensor_data")
    reliable_writer = node.publisher("/qos/b", Bool, "default")
    assert reliable_writer.wait_for_subscribers(1, timeout_s=3.0)
    assert best_effort_reader.matched_count == 1
    time.sleep(0.2)
    assert best_effort_writer.matched_count == 0
    assert reliable_reader.matched_count == 0
    best_effort_writer.publish(Bool(True))
    assert not reliable_reader.wait(0.2)


def test_dds_topic_and_type_names_on_the_wire(node: Ros2Node) -> None:
    pub = node.publisher("status", String)
    assert pub.topic == "/status"
    writer_topic = pub._writer.topic
    assert writer_topic.name == "rt/status"
    assert writer_topic.typename == "std_msgs::msg::dds_::String_"


def test_callback_subscription_and_latest(node: Ros2Node) -> None:
    seen: list[String] = []
    sub = node.subscription("/cb", String, "default", callback=seen.append)
    pub = node.publisher("/cb", String, "default")
    assert pub.wait_for_subscribers(1, 3.0)
    pub.publish(String("hello"))
    assert sub.wait(3.0)
    assert seen == [String("hello")] and sub.latest() == String("hello")


def test_errors(node: Ros2Node) -> None:
    node.publisher("/typed", Bool)
    with pytest.raises(TransportError, match="already used with Bool"):
        node.subscription("/typed", String)
    pub = node.publisher("/typed2", Bool)
    with pytest.raises(TypeError, match="sends Bool, got String"):
        pub.publish(String("x"))  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="invalid node name"):
        Ros2Node("bad name")
    node.close()
    with pytest.raises(TransportError, match="closed"):
        node.publisher("/x", Bool)


def test_data_arriving_while_the_node_closes_is_dropped_quietly(domain_id: int) -> None:
    """Cyclone DDS can call a subscription's listener while the node is deleting its reader; the take then fails
    (DDS_RETCODE_PRECONDITION_NOT_MET). The listener runs on a DDS thread, where an exception is lost to an
    'unraisable' warning: it must drop the data instead."""
    seen: list[String] = []
    node = Ros2Node("closing_node", domain_id=domain_id, config=LOOPBACK_CONFIG)
    sub = node.subscription("/closing", String, "default", callback=seen.append)
    reader = sub._reader
    node.close()
    sub._on_data(reader)  # what the DDS thread does when data races the close
    assert seen == [] and sub.received_count == 0


def test_keep_all_remembers_every_sample_latest_took_until_drained(node: Ros2Node) -> None:
    """The runtime reads only the newest state each cycle; a flight recorder needs all of them (keep_all/drain)."""
    pub = node.publisher("/test/kept", String, "default")
    plain, kept = node.subscription("/test/kept", String, "default"), node.subscription("/test/kept", String, "default")
    kept.keep_all(max_samples=4)
    assert plain.wait_for_publishers(1, 5.0) and kept.wait_for_publishers(1, 5.0)
    for i in range(3):
        pub.publish(String(f"m{i}"))
    deadline = time.monotonic() + 5.0
    while (kept.latest() is None or kept.latest().data != "m2") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert kept.latest().data == "m2"  # the loop's view: the newest only
    assert [m.data for m in kept.drain()] == ["m0", "m1", "m2"]  # the recorder's: every one, oldest first
    assert kept.drain() == [] and plain.drain() == []  # drained; never kept
    for i in range(3, 9):
        pub.publish(String(f"m{i}"))
    deadline = time.monotonic() + 5.0
    while (kept.latest() is None or kept.latest().data != "m8") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [m.data for m in kept.drain()] == ["m5", "m6", "m7", "m8"]  # at most max_samples, the oldest dropped


def test_nodes_in_one_process_share_a_domain_they_configure_alike(domain_id: int) -> None:
    """Two nodes of one process on one domain with the same XML (a runtime and a bridge, a reader and a driver):
    both come up and talk; the domain outlives the first to close; another XML, or a domain this process made
    without Ros2Node, is refused with a message that says what to do."""
    from cyclonedds.domain import Domain

    with Ros2Node("first", domain_id=domain_id, config=LOOPBACK_CONFIG) as first:
        second = Ros2Node("second", domain_id=domain_id, config=LOOPBACK_CONFIG)
        with pytest.raises(TransportError, match="another Cyclone DDS XML"):
            Ros2Node("third", domain_id=domain_id, config=LOOPBACK_CONFIG.replace("<Peers>", "<Peers> "))
        second.close()  # the first node's domain stays
        third = Ros2Node("third", domain_id=domain_id, config=LOOPBACK_CONFIG)
        sub = first.subscription("/share/flag", Bool, "sensor_data")
        pub = third.publisher("/share/flag", Bool, "sensor_data")
        assert pub.wait_for_subscribers(1, 10.0)
        deadline = time.monotonic() + 10.0
        while sub.latest() is None and time.monotonic() < deadline:
            pub.publish(Bool(data=True))
            sub.wait(0.1)
        assert sub.latest() == Bool(data=True)
        third.close()
    other = domain_id % 230 + 1
    raw = Domain(other, LOOPBACK_CONFIG)  # made outside Ros2Node: its XML is not known here
    try:
        with pytest.raises(TransportError, match="config=None to join it"):
            Ros2Node("late", domain_id=other, config=LOOPBACK_CONFIG)
        with Ros2Node("joins", domain_id=other) as joins:
            assert joins.domain_id == other
    finally:
        raw.__del__()
    Domain(domain_id, LOOPBACK_CONFIG).__del__()  # the last node to close deleted the shared domain
    forgotten = Ros2Node("forgotten", domain_id=domain_id, config=LOOPBACK_CONFIG)
    del forgotten  # never closed: collected, it lets go of the domain all the same
    gc.collect()
    Domain(domain_id, LOOPBACK_CONFIG).__del__()
