"""One table: message class <-> ROS 2 type name <-> ``.msg`` definition text.

Used by the transport (DDS type names) and by the recorder (MCAP schemas, encoding ``ros2msg``, with the
dependencies appended in the ROS 2 concatenated format that rosbag2, rosbags and mcap-ros2-support read).
The ``.msg`` texts are those of ROS 2 Humble (comments dropped, fields, constants and defaults kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deploy.msgs import control, px4
from deploy.msgs import types as m

SEPARATOR = "=" * 80

_MSG_TEXT: dict[str, str] = {
    "builtin_interfaces/msg/Time": "int32 sec\nuint32 nanosec\n",
    "std_msgs/msg/Header": "builtin_interfaces/Time stamp\nstring frame_id\n",
    "std_msgs/msg/Bool": "bool data\n",
    "std_msgs/msg/String": "string data\n",
    "std_msgs/msg/MultiArrayDimension": "string label\nuint32 size\nuint32 stride\n",
    "std_msgs/msg/MultiArrayLayout": "MultiArrayDimension[] dim\nuint32 data_offset\n",
    "std_msgs/msg/Float32MultiArray": "MultiArrayLayout layout\nfloat32[] data\n",
    "geometry_msgs/msg/Vector3": "float64 x\nfloat64 y\nfloat64 z\n",
    "geometry_msgs/msg/Point": "float64 x\nfloat64 y\nfloat64 z\n",
    "geometry_msgs/msg/Quaternion": "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
    "geometry_msgs/msg/Pose": "Point position\nQuaternion orientation\n",
    "geometry_msgs/msg/Twist": "Vector3 linear\nVector3 angular\n",
    "geometry_msgs/msg/PoseStamped": "std_msgs/Header header\nPose pose\n",
    "geometry_msgs/msg/TwistStamped": "std_msgs/Header header\nTwist twist\n",
    "geometry_msgs/msg/Vector3Stamped": "std_msgs/Header header\nVector3 vector\n",
    "geometry_msgs/msg/Transform": "Vector3 translation\nQuaternion rotation\n",
    "geometry_msgs/msg/TransformStamped": "std_msgs/Header header\nstring child_frame_id\nTransform transform\n",
    "tf2_msgs/msg/TFMessage": "geometry_msgs/TransformStamped[] transforms\n",
    "geometry_msgs/msg/PoseWithCovariance": "Pose pose\nfloat64[36] covariance\n",
    "geometry_msgs/msg/TwistWithCovariance": "Twist twist\nfloat64[36] covariance\n",
    "nav_msgs/msg/Odometry": (
        "std_msgs/Header header\nstring child_frame_id\n"
        "geometry_msgs/PoseWithCovariance pose\ngeometry_msgs/TwistWithCovariance twist\n"
    ),
    "sensor_msgs/msg/Imu": (
        "std_msgs/Header header\n"
        "geometry_msgs/Quaternion orientation\n"
        "float64[9] orientation_covariance\n"
        "geometry_msgs/Vector3 angular_velocity\n"
        "float64[9] angular_velocity_covariance\n"
        "geometry_msgs/Vector3 linear_acceleration\n"
        "float64[9] linear_acceleration_covariance\n"
    ),
    "sensor_msgs/msg/JointState": (
        "std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort\n"
    ),
    "sensor_msgs/msg/BatteryState": (
        "uint8 POWER_SUPPLY_STATUS_UNKNOWN = 0\n"
        "uint8 POWER_SUPPLY_STATUS_CHARGING = 1\n"
        "uint8 POWER_SUPPLY_STATUS_DISCHARGING = 2\n"
        "uint8 POWER_SUPPLY_STATUS_NOT_CHARGING = 3\n"
        "uint8 POWER_SUPPLY_STATUS_FULL = 4\n"
        "uint8 POWER_SUPPLY_HEALTH_UNKNOWN = 0\n"
        "uint8 POWER_SUPPLY_HEALTH_GOOD = 1\n"
        "uint8 POWER_SUPPLY_HEALTH_OVERHEAT = 2\n"
        "uint8 POWER_SUPPLY_HEALTH_DEAD = 3\n"
        "uint8 POWER_SUPPLY_HEALTH_OVERVOLTAGE = 4\n"
        "uint8 POWER_SUPPLY_HEALTH_UNSPEC_FAILURE = 5\n"
        "uint8 POWER_SUPPLY_HEALTH_COLD = 6\n"
        "uint8 POWER_SUPPLY_HEALTH_WATCHDOG_TIMER_EXPIRE = 7\n"
        "uint8 POWER_SUPPLY_HEALTH_SAFETY_TIMER_EXPIRE = 8\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_UNKNOWN = 0\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_NIMH = 1\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_LION = 2\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_LIPO = 3\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_LIFE = 4\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_NICD = 5\n"
        "uint8 POWER_SUPPLY_TECHNOLOGY_LIMN = 6\n"
        "\n"
        "std_msgs/Header header\n"
        "float32 voltage\n"
        "float32 temperature\n"
        "float32 current\n"
        "float32 charge\n"
        "float32 capacity\n"
        "float32 design_capacity\n"
        "float32 percentage\n"
        "uint8 power_supply_status\n"
        "uint8 power_supply_health\n"
        "uint8 power_supply_technology\n"
        "bool present\n"
        "float32[] cell_voltage\n"
        "float32[] cell_temperature\n"
        "string location\n"
        "string serial_number\n"
    ),
    "sim2real_msgs/msg/MotorCommand": (
        "# Per-motor speed setpoints, revolutions per minute, motor order as in the robot profile.\n"
        "std_msgs/Header header\n"
        "float32[] rpm\n"
        "# The vehicle this command is for; a robot rejects commands for another vehicle.\n"
        "string vehicle_id\n"
        "# What produced the command: policy, arming, fallback or stop.\n"
        "string mode\n"
    ),
    "sim2real_msgs/msg/RateThrustCommand": (
        "# Collective thrust and body-rate setpoints, for autopilots that close the rate loop themselves.\n"
        "std_msgs/Header header\n"
        "# Collective thrust along body +z, newtons.\n"
        "float32 thrust\n"
        "# Roll, pitch, yaw rate setpoints, body frame FLU (x forward, y left, z up), rad/s.\n"
        "geometry_msgs/Vector3 body_rate\n"
        "# The vehicle this command is for; a robot rejects commands for another vehicle.\n"
        "string vehicle_id\n"
        "# What produced the command: policy, arming, fallback or stop.\n"
        "string mode\n"
    ),
    "sim2real_msgs/msg/JointCommand": (
        "# Per-joint PD command, joints by name; the motor applies effort + kp (position - q) + kd (velocity - dq).\n"
        "# All gains zero = zero torque; kp 0 with kd > 0 = damping.\n"
        "std_msgs/Header header\n"
        "string[] name\n"
        "# Target joint angle, rad.\n"
        "float64[] position\n"
        "# Target joint speed, rad/s.\n"
        "float64[] velocity\n"
        "# Feed-forward torque, N m.\n"
        "float64[] effort\n"
        "# Stiffness, N m/rad.\n"
        "float64[] kp\n"
        "# Damping, N m s/rad.\n"
        "float64[] kd\n"
        "# What produced the command: policy, arming, fallback or stop.\n"
        "string mode\n"
        "# The robot this command is for; a robot rejects commands for another robot.\n"
        "string vehicle_id\n"
    ),
    "sim2real_msgs/msg/SafetyTransition": (
        "# A state change of the sim2real safety state machine (DISARMED, ARMING, ACTIVE, FALLBACK, ESTOP).\n"
        "std_msgs/Header header\n"
        "string from_state\n"
        "string to_state\n"
        "string reason\n"
        "# Name of the safety check that caused the transition; empty for operator requests.\n"
        "string check\n"
    ),
    "sim2real_msgs/msg/LoopTiming": (
        "# One control cycle of the deploy loop. Times in seconds.\n"
        "std_msgs/Header header\n"
        "float64 inference_s\n"
        "float64 cycle_s\n"
        "float64 jitter_s\n"
        "uint32 deadline_misses\n"
    ),
}

_CLASSES: dict[str, type] = {
    "builtin_interfaces/msg/Time": m.Time,
    "std_msgs/msg/Header": m.Header,
    "std_msgs/msg/Bool": m.Bool,
    "std_msgs/msg/String": m.String,
    "std_msgs/msg/MultiArrayDimension": m.MultiArrayDimension,
    "std_msgs/msg/MultiArrayLayout": m.MultiArrayLayout,
    "std_msgs/msg/Float32MultiArray": m.Float32MultiArray,
    "geometry_msgs/msg/Vector3": m.Vector3,
    "geometry_msgs/msg/Point": m.Point,
    "geometry_msgs/msg/Quaternion": m.Quaternion,
    "geometry_msgs/msg/Pose": m.Pose,
    "geometry_msgs/msg/Twist": m.Twist,
    "geometry_msgs/msg/PoseStamped": m.PoseStamped,
    "geometry_msgs/msg/TwistStamped": m.TwistStamped,
    "geometry_msgs/msg/Vector3Stamped": m.Vector3Stamped,
    "geometry_msgs/msg/Transform": m.Transform,
    "geometry_msgs/msg/TransformStamped": m.TransformStamped,
    "tf2_msgs/msg/TFMessage": m.TFMessage,
    "geometry_msgs/msg/PoseWithCovariance": m.PoseWithCovariance,
    "geometry_msgs/msg/TwistWithCovariance": m.TwistWithCovariance,
    "nav_msgs/msg/Odometry": m.Odometry,
    "sensor_msgs/msg/Imu": m.Imu,
    "sensor_msgs/msg/JointState": m.JointState,
    "sensor_msgs/msg/BatteryState": m.BatteryState,
    "sim2real_msgs/msg/MotorCommand": m.MotorCommand,
    "sim2real_msgs/msg/RateThrustCommand": m.RateThrustCommand,
    "sim2real_msgs/msg/JointCommand": m.JointCommand,
    "sim2real_msgs/msg/SafetyTransition": m.SafetyTransition,
    "sim2real_msgs/msg/LoopTiming": m.LoopTiming,
}
_MSG_TEXT.update(px4.MSG_TEXT)  # px4_msgs (PX4 v1.15), deploy/msgs/px4.py
_CLASSES.update(px4.CLASSES)
_MSG_TEXT.update(control.MSG_TEXT)  # ros2_control controllers' inputs, deploy/msgs/control.py
_CLASSES.update(control.CLASSES)

_PRIMITIVES = frozenset(
    "bool byte char float32 float64 int8 uint8 int16 uint16 int32 uint32 int64 uint64 string wstring".split()
)


class UnknownMessageTypeError(KeyError):
    """A message class or type name that is not in the table."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class MessageInfo:
    """One row of the table.

    ros_type: ``pkg/msg/Type``; dds_type: ``pkg::msg::dds_::Type_``; msg_text: the type's own ``.msg`` text;
    dependencies: ``pkg/msg/Type`` of every message type it uses, directly or not, in first-use order.
    """

    cls: type
    ros_type: str
    msg_text: str
    dependencies: tuple[str, ...]

    @property
    def dds_type(self) -> str:
        pkg, _, name = self.ros_type.split("/")
        return f"{pkg}::msg::dds_::{name}_"

    @property
    def full_definition(self) -> str:
        """The ROS 2 concatenated definition: own text, then ``MSG: pkg/Type`` sections of all dependencies."""
        parts = [self.msg_text.rstrip("\n")]
        for dep in self.dependencies:
            pkg, _, name = dep.split("/")
            parts.append(f"{SEPARATOR}\nMSG: {pkg}/{name}\n{_MSG_TEXT[dep].rstrip(chr(10))}")
        return "\n".join(parts) + "\n"


def _direct_dependencies(ros_type: str) -> list[str]:
    pkg = ros_type.split("/")[0]
    deps: list[str] = []
    for line in _MSG_TEXT[ros_type].splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        field_type = re.sub(r"\[.*\]$", "", line.split()[0])
        field_type = re.sub(r"<=\d+$", "", field_type)
        if field_type in _PRIMITIVES:
            continue
        if field_type == "Header":
            full = "std_msgs/msg/Header"
        elif "/" in field_type:
            dep_pkg, name = field_type.split("/")[0], field_type.split("/")[-1]
            full = f"{dep_pkg}/msg/{name}"
        else:
            full = f"{pkg}/msg/{field_type}"
        if full not in deps:
            deps.append(full)
    return deps


def _all_dependencies(ros_type: str) -> tuple[str, ...]:
    seen: list[str] = []

    def visit(t: str) -> None:
        for dep in _direct_dependencies(t):
            if dep not in seen:
                seen.append(dep)
                visit(dep)

    visit(ros_type)
    return tuple(seen)


MESSAGES: dict[str, MessageInfo] = {
    ros_type: MessageInfo(cls, ros_type, _MSG_TEXT[ros_type], _all_dependencies(ros_type))
    for ros_type, cls in _CLASSES.items()
}
_BY_CLASS: dict[type, MessageInfo] = {info.cls: info for info in MESSAGES.values()}


def message_info(msg_type: type | object | str) -> MessageInfo:
    """The table row for a message class, an instance of one, or a ``pkg/msg/Type`` name."""
    if isinstance(msg_type, str):
        key = msg_type if "/msg/" in msg_type else msg_type.replace("/", "/msg/", 1)
        if key in MESSAGES:
            return MESSAGES[key]
        raise UnknownMessageTypeError(
            f"unknown ROS 2 message type {msg_type!r}; expected one of {sorted(MESSAGES)}. "
            "Add the class to deploy/msgs/types.py and its .msg text to deploy/msgs/registry.py."
        )
    cls = msg_type if isinstance(msg_type, type) else type(msg_type)
    if cls in _BY_CLASS:
        return _BY_CLASS[cls]
    raise UnknownMessageTypeError(
        f"{cls.__module__}.{cls.__qualname__} is not a registered ROS 2 message class; expected one of "
        f"{sorted(c.__name__ for c in _BY_CLASS)} from deploy.msgs."
    )
