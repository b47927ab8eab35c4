"""ROS 2 on the wire through Cyclone DDS: ROS 2 topic names, type names, CDR layouts and QoS, without rclpy."""

from deploy.transport.config import LOOPBACK_CONFIG, cyclone_config_xml, resolve_domain_id
from deploy.transport.errors import QosError, TopicNameError, TransportError
from deploy.transport.names import dds_to_ros_topic, resolve_topic_name, ros_to_dds_topic
from deploy.transport.node import Ros2Node, Subscription
from deploy.transport.publisher import Publisher
from deploy.transport.qos import DEFAULT, PRESETS, SENSOR_DATA, QosProfile, resolve_qos
from deploy.transport.topics import DEFAULT_NAMESPACE, DEFAULT_TOPICS, ResolvedTopic, TopicSpec, TransportConfig
from deploy.transport.writers import WriterInfo, foreign_writers

__all__ = [
    "DEFAULT",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TOPICS",
    "LOOPBACK_CONFIG",
    "PRESETS",
    "SENSOR_DATA",
    "Publisher",
    "QosError",
    "QosProfile",
    "ResolvedTopic",
    "Ros2Node",
    "Subscription",
    "TopicNameError",
    "TopicSpec",
    "TransportConfig",
    "TransportError",
    "WriterInfo",
    "cyclone_config_xml",
    "dds_to_ros_topic",
    "foreign_writers",
    "resolve_domain_id",
    "resolve_qos",
    "resolve_topic_name",
    "ros_to_dds_topic",
]
