"""Topic names, QoS presets, domain id and the profile's transport section."""

from __future__ import annotations

import pytest
from cyclonedds.qos import Policy

from deploy.msgs import Imu, MotorCommand
from deploy.transport import (
    DEFAULT_TOPICS,
    PRESETS,
    QosError,
    QosProfile,
    TopicNameError,
    TransportConfig,
    TransportError,
    dds_to_ros_topic,
    resolve_domain_id,
    resolve_qos,
    resolve_topic_name,
    ros_to_dds_topic,
)


@pytest.mark.parametrize(
    ("name", "namespace", "dds"),
    [
        ("/foo", "", "rt/foo"),
        ("/robot1/imu", "", "rt/robot1/imu"),
        ("imu", "/cf1", "rt/cf1/imu"),
        ("state/imu", "/a/b", "rt/a/b/state/imu"),
        ("/abs", "/ignored", "rt/abs"),
        ("_x1/y_2", "", "rt/_x1/y_2"),
    ],
)
def test_topic_mapping(name: str, namespace: str, dds: str) -> None:
    assert ros_to_dds_topic(name, namespace) == dds
    assert dds_to_ros_topic(dds) == dds[2:]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "non-empty"),
        ("/foo/", "trailing"),
        ("/foo//bar", "token ''"),
        ("/1foo", "token '1foo'"),
        ("/foo bar", "token 'foo bar'"),
        ("/foo-bar", "token 'foo-bar'"),
        ("/foo__bar", "'__'"),
        ("~/private", "private"),
        ("/{node}/x", "substitution"),
        ("/" + "a" * 300, "maximum"),
    ],
)
def test_invalid_topic_names_are_explained(name: str, message: str) -> None:
    with pytest.raises(TopicNameError, match=message):
        resolve_topic_name(name)


def test_invalid_namespace_and_dds_name() -> None:
    with pytest.raises(TopicNameError, match="absolute"):
        resolve_topic_name("imu", "cf1")
    with pytest.raises(TopicNameError, match="rt/"):
        dds_to_ros_topic("rq/foo")


def test_qos_presets_are_the_ros2_ones() -> None:
    sensor, default = PRESETS["sensor_data"], PRESETS["default"]
    assert (sensor.depth, sensor.reliability, sensor.durability) == (5, "best_effort", "volatile")
    assert (default.depth, default.reliability, default.durability) == (10, "reliable", "volatile")
    qos = sensor.to_cyclone()
    assert qos[Policy.Reliability] == Policy.Reliability.BestEffort
    assert qos[Policy.History] == Policy.History.KeepLast(5)
    assert qos[Policy.Durability] == Policy.Durability.Volatile
    assert qos[Policy.DataRepresentation] == Policy.DataRepresentation(use_cdrv0_representation=True)
    qos = default.to_cyclone()
    assert isinstance(qos[Policy.Reliability], Policy.Reliability.Reliable)
    assert qos[Policy.History] == Policy.History.KeepLast(10)


def test_qos_errors() -> None:
    with pytest.raises(QosError, match="sensor_data"):
        resolve_qos("fast")
    with pytest.raises(QosError, match="depth"):
        QosProfile(depth=0)
    with pytest.raises(QosError, match="reliability"):
        QosProfile(reliability="sometimes")  # type: ignore[arg-type]


def test_domain_id_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROS_DOMAIN_ID", raising=False)
    assert resolve_domain_id() == 0
    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    assert resolve_domain_id() == 42
    assert resolve_domain_id(7) == 7
    monkeypatch.setenv("ROS_DOMAIN_ID", "abc")
    with pytest.raises(TransportError, match="ROS_DOMAIN_ID='abc'"):
        resolve_domain_id()
    with pytest.raises(TransportError, match=r"0\.\.232"):
        resolve_domain_id(500)


def test_default_topic_table() -> None:
    topics = TransportConfig().resolved()
    assert topics["imu"].name == "/sim2real/state/imu"
    assert topics["imu"].msg_type is Imu and topics["imu"].qos == PRESETS["sensor_data"]
    assert topics["motor_command"].name == "/sim2real/command/motors"
    assert topics["motor_command"].msg_type is MotorCommand
    assert set(topics) == set(DEFAULT_TOPICS)
    assert len({t.name for t in topics.values()}) == len(topics), "topic names must be unique"


def test_profile_overrides() -> None:
    config = TransportConfig.from_mapping(
        {
            "domain_id": 3,
            "namespace": "/cf1",
            "topics": {"imu": "/cf1/sensors/imu", "motor_command": {"name": "cmd", "qos": "sensor_data"}},
        }
    )
    assert config.resolved_domain_id == 3
    assert config.topic("imu").name == "/cf1/sensors/imu"
    assert config.topic("motor_command").name == "/cf1/cmd"
    assert config.topic("motor_command").qos == PRESETS["sensor_data"]
    assert config.topic("pose").name == "/cf1/state/pose"
    assert TransportConfig.from_mapping(None) == TransportConfig()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"domian_id": 1}, "unknown keys"),
        ({"topics": {"imuu": "/x"}}, "unknown topic key 'imuu'"),
        ({"topics": {"imu": {"name": "/x", "type": "Imu"}}}, "mapping with 'name'"),
        ({"topics": {"imu": "/bad name"}}, "token"),
        ({"topics": {"imu": {"qos": "fastest"}}}, "unknown QoS"),
        ({"namespace": "cf1"}, "absolute"),
        ({"domain_id": -1}, "0..232"),
    ],
)
def test_profile_errors(section: dict, message: str) -> None:
    with pytest.raises((TransportError, TopicNameError, QosError), match=message):
        TransportConfig.from_mapping(section)
