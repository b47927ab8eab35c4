"""The runtime's topics: default names, message types and QoS, and their configuration from a profile.

Names are relative and resolved against the namespace (default ``/sim2real``); a profile may rename any
topic, change its QoS preset, or move everything under another namespace::

    transport:
      domain_id: null            # null -> ROS_DOMAIN_ID (default 0)
      namespace: /cf1
      topics:
        imu: /cf1/sensors/imu    # short form: a new name
        motor_command: {name: cmd/motors, qos: sensor_data}

The table is documented in docs/transport.md; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from deploy.msgs import (
    BatteryState,
    Bool,
    Float32MultiArray,
    Header,
    Imu,
    JointCommand,
    JointState,
    LoopTiming,
    MotorCommand,
    Odometry,
    PoseStamped,
    RateThrustCommand,
    SafetyTransition,
    String,
    Twist,
    TwistStamped,
)
from deploy.transport.config import resolve_domain_id
from deploy.transport.errors import TransportError
from deploy.transport.names import resolve_topic_name, validate_namespace
from deploy.transport.qos import QosProfile, resolve_qos


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name (relative to the namespace, or absolute), message class, QoS preset or profile."""

    name: str
    msg_type: type
    qos: str | QosProfile = "default"
    description: str = ""


DEFAULT_NAMESPACE = "/sim2real"

DEFAULT_TOPICS: dict[str, TopicSpec] = {
    # robot state, published by the robot driver (or simulated robot), read by the runtime
    "pose": TopicSpec("state/pose", PoseStamped, "sensor_data", "body pose in the world frame (m, quaternion)"),
    "twist": TopicSpec(
        "state/twist", TwistStamped, "sensor_data", "linear (m/s) and angular (rad/s) velocity, body frame FLU"
    ),
    "odom": TopicSpec(
        "state/odom", Odometry, "sensor_data", "pose in the world frame, twist in the child (body) frame"
    ),
    "imu": TopicSpec("state/imu", Imu, "sensor_data", "IMU (rad/s, m/s^2)"),
    "joint_states": TopicSpec("state/joints", JointState, "sensor_data", "joint position/velocity/effort"),
    "battery": TopicSpec("state/battery", BatteryState, "sensor_data", "battery voltage (V), percentage"),
    # references a user's planner or joystick streams, read when the profile's reference source is topic
    "setpoint": TopicSpec(
        "reference/setpoint", PoseStamped, "default", "quadrotor position setpoint, world frame (m), read"
    ),
    "cmd_vel": TopicSpec(
        "cmd_vel", Twist, "default", "legged velocity command: linear.x/y (m/s), angular.z (rad/s), body frame, read"
    ),
    "target": TopicSpec(
        "reference/target", PoseStamped, "default", "arm end-effector target, robot base frame (m), read"
    ),
    # policy I/O, published by the runtime for monitoring
    "observation": TopicSpec("policy/observation", Float32MultiArray, "sensor_data", "observation vector"),
    "action": TopicSpec("policy/action", Float32MultiArray, "sensor_data", "raw policy action"),
    "excitation": TopicSpec(
        "policy/excitation",
        Float32MultiArray,
        "sensor_data",
        "normalized doublet added to the command for system identification (plan.excitation)",
    ),
    # commands, published by the runtime after the safety layer
    "motor_command": TopicSpec("command/motors", MotorCommand, "default", "quadrotor motor speeds (rpm)"),
    "rate_command": TopicSpec(
        "command/rates",
        RateThrustCommand,
        "default",
        "quadrotor collective thrust (N) and body-rate setpoints (rad/s, FLU)",
    ),
    "joint_command": TopicSpec(
        "command/joints",
        JointCommand,
        "default",
        "joint PD command: targets (rad), gains (N m/rad, N m s/rad), by name",
    ),
    # safety and diagnostics
    "safety_transition": TopicSpec("safety/transition", SafetyTransition, "default", "state machine changes"),
    "estop": TopicSpec("safety/estop", Bool, "default", "operator emergency stop (true = stop), read"),
    # the operator in the loop (`sim2real operator`, deploy/operator/), read by the runtime
    "operator_heartbeat": TopicSpec(
        "operator/heartbeat",
        Header,
        "sensor_data",
        "operator dead-man heartbeat (stamp: operator wall clock, frame_id: operator id)",
    ),
    "operator_command": TopicSpec("operator/command", String, "default", "operator command: arm|disarm|reset|land"),
    "timing": TopicSpec("diagnostics/timing", LoopTiming, "sensor_data", "per-cycle loop timing (s)"),
    "status": TopicSpec("status", String, "default", "human-readable runtime status"),
}


@dataclass(frozen=True)
class ResolvedTopic:
    """A topic ready to use: fully qualified ROS 2 name, message class, QoS profile."""

    key: str
    name: str
    msg_type: type
    qos: QosProfile


@dataclass(frozen=True)
class TransportConfig:
    """Domain, namespace and topic table of the runtime's transport."""

    domain_id: int | None = None
    namespace: str = DEFAULT_NAMESPACE
    topics: Mapping[str, TopicSpec] = field(default_factory=lambda: dict(DEFAULT_TOPICS))

    def topic(self, key: str) -> ResolvedTopic:
        """The resolved topic for table key ``key`` (e.g. ``"imu"``)."""
        if key not in self.topics:
            raise TransportError(f"unknown topic key {key!r}; expected one of {sorted(self.topics)}")
        spec = self.topics[key]
        return ResolvedTopic(key, resolve_topic_name(spec.name, self.namespace), spec.msg_type, resolve_qos(spec.qos))

    def resolved(self) -> dict[str, ResolvedTopic]:
        """Every topic of the table, resolved."""
        return {key: self.topic(key) for key in self.topics}

    @property
    def resolved_domain_id(self) -> int:
        """The domain id, with ``ROS_DOMAIN_ID`` applied when unset."""
        return resolve_domain_id(self.domain_id)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> TransportConfig:
        """Build from the ``transport:`` section of a profile (see the module docstring); None -> defaults."""
        data = dict(data or {})
        unknown = set(data) - {"domain_id", "namespace", "topics"}
        if unknown:
            raise TransportError(
                f"unknown keys {sorted(unknown)} in the transport section; expected domain_id, namespace, topics"
            )
        domain_id = data.get("domain_id")
        if domain_id is not None:
            resolve_domain_id(domain_id)
        namespace = data.get("namespace", DEFAULT_NAMESPACE)
        validate_namespace(namespace)
        topics = dict(DEFAULT_TOPICS)
        for key, override in (data.get("topics") or {}).items():
            if key not in topics:
                raise TransportError(f"unknown topic key {key!r} in transport.topics; expected one of {sorted(topics)}")
            if isinstance(override, str):
                override = {"name": override}
            if not isinstance(override, Mapping) or set(override) - {"name", "qos"}:
                raise TransportError(
                    f"transport.topics.{key} must be a name or a mapping with 'name' and/or 'qos', got {override!r}"
                )
            topics[key] = replace(topics[key], **override)
        config = cls(domain_id=domain_id, namespace=namespace, topics=topics)
        config.resolved()  # validate every name and QoS now, not at first use
        return config
