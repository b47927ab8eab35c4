"""The ROS 2 messages ros2_control's controllers take, as Cyclone DDS IDL structs (drivers/ros2_control_bridge.py).

- ``forward_command_controller`` (and its position/velocity/effort variants) subscribes
  ``<controller>/commands``: ``std_msgs/msg/Float64MultiArray``, one value per joint of the controller's
  ``joints`` parameter, in that order.
- ``joint_trajectory_controller`` subscribes ``<controller>/joint_trajectory``:
  ``trajectory_msgs/msg/JointTrajectory`` (joint names, points with ``time_from_start``, a
  ``builtin_interfaces/msg/Duration``).

Field order and types follow the ``.msg`` files of ROS 2 Humble/Jazzy (std_msgs, trajectory_msgs,
builtin_interfaces); CDR and RIHS01 hashes are checked against rosbags (tests/deploy/transport). Like
deploy/msgs/types.py this module does not use ``from __future__ import annotations`` (cyclonedds needs real
annotation types).
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float64, int32, sequence, uint32

from deploy.msgs.types import Header, MultiArrayLayout


@dataclass
class Float64MultiArray(IdlStruct, typename="std_msgs.msg.dds_.Float64MultiArray_"):
    """std_msgs/msg/Float64MultiArray."""

    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: sequence[float64] = field(default_factory=list)


@dataclass
class Duration(IdlStruct, typename="builtin_interfaces.msg.dds_.Duration_"):
    """builtin_interfaces/msg/Duration: sec (may be negative) + nanosec in [0, 1e9)."""

    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class JointTrajectoryPoint(IdlStruct, typename="trajectory_msgs.msg.dds_.JointTrajectoryPoint_"):
    """trajectory_msgs/msg/JointTrajectoryPoint: positions rad, velocities rad/s, accelerations rad/s^2,
    effort N m, per joint of the trajectory's joint_names; time_from_start from the trajectory's stamp."""

    positions: sequence[float64] = field(default_factory=list)
    velocities: sequence[float64] = field(default_factory=list)
    accelerations: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
class JointTrajectory(IdlStruct, typename="trajectory_msgs.msg.dds_.JointTrajectory_"):
    """trajectory_msgs/msg/JointTrajectory. A zero header stamp means "start now" (joint_trajectory_controller)."""

    header: Header = field(default_factory=Header)
    joint_names: sequence[str] = field(default_factory=list)
    points: sequence[JointTrajectoryPoint] = field(default_factory=list)


MSG_TEXT: dict[str, str] = {
    "builtin_interfaces/msg/Duration": "int32 sec\nuint32 nanosec\n",
    "std_msgs/msg/Float64MultiArray": "MultiArrayLayout layout\nfloat64[] data\n",
    "trajectory_msgs/msg/JointTrajectoryPoint": (
        "float64[] positions\n"
        "float64[] velocities\n"
        "float64[] accelerations\n"
        "float64[] effort\n"
        "builtin_interfaces/Duration time_from_start\n"
    ),
    "trajectory_msgs/msg/JointTrajectory": (
        "std_msgs/Header header\nstring[] joint_names\nJointTrajectoryPoint[] points\n"
    ),
}

CLASSES: dict[str, type] = {
    "builtin_interfaces/msg/Duration": Duration,
    "std_msgs/msg/Float64MultiArray": Float64MultiArray,
    "trajectory_msgs/msg/JointTrajectoryPoint": JointTrajectoryPoint,
    "trajectory_msgs/msg/JointTrajectory": JointTrajectory,
}


def duration(seconds: float) -> Duration:
    """A Duration of ``seconds`` (>= 0 here: a trajectory point's time from start)."""
    ns = round(seconds * 1e9)
    return Duration(ns // 1_000_000_000, ns % 1_000_000_000)
