"""ROS 2 message types as Cyclone DDS IDL structs (XCDR1, final, keyless), wire-compatible with ROS 2.

Each class mirrors one ROS 2 ``.msg`` file field by field, in the same order, with the DDS type name ROS 2
uses on the wire (``pkg/msg/Type`` -> ``pkg::msg::dds_::Type_``). Units follow REP 103: metres, radians,
seconds, m/s, rad/s, m/s^2; ``builtin_interfaces/Time`` is ``{int32 sec, uint32 nanosec}``.

This module deliberately does NOT use ``from __future__ import annotations``: cyclonedds resolves string
annotations by importing dotted names, which fails for builtins and module aliases. Annotations here are
real types, as cyclonedds expects.
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int32, sequence, uint8, uint32


def _zeros9() -> list[float]:
    return [0.0] * 9


# ---------------------------------------------------------------- builtin_interfaces, std_msgs


@dataclass
class Time(IdlStruct, typename="builtin_interfaces.msg.dds_.Time_"):
    """builtin_interfaces/msg/Time: seconds and nanoseconds (0 <= nanosec < 1e9) since the clock's epoch."""

    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs.msg.dds_.Header_"):
    """std_msgs/msg/Header: acquisition time and coordinate frame of the data."""

    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class Bool(IdlStruct, typename="std_msgs.msg.dds_.Bool_"):
    """std_msgs/msg/Bool."""

    data: bool = False


@dataclass
class String(IdlStruct, typename="std_msgs.msg.dds_.String_"):
    """std_msgs/msg/String."""

    data: str = ""


@dataclass
class MultiArrayDimension(IdlStruct, typename="std_msgs.msg.dds_.MultiArrayDimension_"):
    """std_msgs/msg/MultiArrayDimension: label, size of this dimension, stride (elements)."""

    label: str = ""
    size: uint32 = 0
    stride: uint32 = 0


@dataclass
class MultiArrayLayout(IdlStruct, typename="std_msgs.msg.dds_.MultiArrayLayout_"):
    """std_msgs/msg/MultiArrayLayout."""

    dim: sequence[MultiArrayDimension] = field(default_factory=list)
    data_offset: uint32 = 0


@dataclass
class Float32MultiArray(IdlStruct, typename="std_msgs.msg.dds_.Float32MultiArray_"):
    """std_msgs/msg/Float32MultiArray."""

    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: sequence[float32] = field(default_factory=list)


# ---------------------------------------------------------------- geometry_msgs


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs.msg.dds_.Vector3_"):
    """geometry_msgs/msg/Vector3 (unit given by the field that holds it)."""

    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Point(IdlStruct, typename="geometry_msgs.msg.dds_.Point_"):
    """geometry_msgs/msg/Point, metres."""

    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs.msg.dds_.Quaternion_"):
    """geometry_msgs/msg/Quaternion (x, y, z, w); the default is the identity, as in ROS 2."""

    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs.msg.dds_.Pose_"):
    """geometry_msgs/msg/Pose: position (m) and orientation."""

    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class Twist(IdlStruct, typename="geometry_msgs.msg.dds_.Twist_"):
    """geometry_msgs/msg/Twist: linear (m/s) and angular (rad/s) velocity."""

    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class PoseStamped(IdlStruct, typename="geometry_msgs.msg.dds_.PoseStamped_"):
    """geometry_msgs/msg/PoseStamped."""

    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


@dataclass
class TwistStamped(IdlStruct, typename="geometry_msgs.msg.dds_.TwistStamped_"):
    """geometry_msgs/msg/TwistStamped."""

    header: Header = field(default_factory=Header)
    twist: Twist = field(default_factory=Twist)


@dataclass
class Vector3Stamped(IdlStruct, typename="geometry_msgs.msg.dds_.Vector3Stamped_"):
    """geometry_msgs/msg/Vector3Stamped."""

    header: Header = field(default_factory=Header)
    vector: Vector3 = field(default_factory=Vector3)


@dataclass
class Transform(IdlStruct, typename="geometry_msgs.msg.dds_.Transform_"):
    """geometry_msgs/msg/Transform: translation (m) and rotation of a child frame in its parent frame."""

    translation: Vector3 = field(default_factory=Vector3)
    rotation: Quaternion = field(default_factory=Quaternion)


@dataclass
class TransformStamped(IdlStruct, typename="geometry_msgs.msg.dds_.TransformStamped_"):
    """geometry_msgs/msg/TransformStamped: ``child_frame_id`` in ``header.frame_id`` (the parent) at
    ``header.stamp``; maps points of the child frame into the parent frame."""

    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    transform: Transform = field(default_factory=Transform)


def _zeros36() -> list[float]:
    return [0.0] * 36


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs.msg.dds_.PoseWithCovariance_"):
    """geometry_msgs/msg/PoseWithCovariance: pose and its row-major 6x6 covariance (x, y, z, rotation about
    X, Y, Z); all zeros = not provided."""

    pose: Pose = field(default_factory=Pose)
    covariance: array[float64, 36] = field(default_factory=_zeros36)


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs.msg.dds_.TwistWithCovariance_"):
    """geometry_msgs/msg/TwistWithCovariance: twist and its row-major 6x6 covariance; all zeros = not provided."""

    twist: Twist = field(default_factory=Twist)
    covariance: array[float64, 36] = field(default_factory=_zeros36)


# ---------------------------------------------------------------- nav_msgs


@dataclass
class Odometry(IdlStruct, typename="nav_msgs.msg.dds_.Odometry_"):
    """nav_msgs/msg/Odometry (REP 105): ``pose`` of ``child_frame_id`` in ``header.frame_id`` (the world / odom
    frame), ``twist`` (linear m/s and angular rad/s) expressed in ``child_frame_id`` (the body frame)."""

    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)
    twist: TwistWithCovariance = field(default_factory=TwistWithCovariance)


# ---------------------------------------------------------------- tf2_msgs


@dataclass
class TFMessage(IdlStruct, typename="tf2_msgs.msg.dds_.TFMessage_"):
    """tf2_msgs/msg/TFMessage: the transforms of ``/tf`` (and ``/tf_static``)."""

    transforms: sequence[TransformStamped] = field(default_factory=list)


# ---------------------------------------------------------------- sensor_msgs


@dataclass
class Imu(IdlStruct, typename="sensor_msgs.msg.dds_.Imu_"):
    """sensor_msgs/msg/Imu: orientation, angular velocity (rad/s), linear acceleration (m/s^2).

    Covariances are row-major 3x3; element 0 = -1 means "not provided" (REP 145).
    """

    header: Header = field(default_factory=Header)
    orientation: Quaternion = field(default_factory=Quaternion)
    orientation_covariance: array[float64, 9] = field(default_factory=_zeros9)
    angular_velocity: Vector3 = field(default_factory=Vector3)
    angular_velocity_covariance: array[float64, 9] = field(default_factory=_zeros9)
    linear_acceleration: Vector3 = field(default_factory=Vector3)
    linear_acceleration_covariance: array[float64, 9] = field(default_factory=_zeros9)


@dataclass
class JointState(IdlStruct, typename="sensor_msgs.msg.dds_.JointState_"):
    """sensor_msgs/msg/JointState: position (rad or m), velocity (rad/s or m/s), effort (N m or N)."""

    header: Header = field(default_factory=Header)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


@dataclass
class BatteryState(IdlStruct, typename="sensor_msgs.msg.dds_.BatteryState_"):
    """sensor_msgs/msg/BatteryState: voltage (V), temperature (degC), current (A, negative when
    discharging), charge/capacity/design_capacity (Ah), percentage (0..1), cell voltages (V)."""

    header: Header = field(default_factory=Header)
    voltage: float32 = 0.0
    temperature: float32 = 0.0
    current: float32 = 0.0
    charge: float32 = 0.0
    capacity: float32 = 0.0
    design_capacity: float32 = 0.0
    percentage: float32 = 0.0
    power_supply_status: uint8 = 0
    power_supply_health: uint8 = 0
    power_supply_technology: uint8 = 0
    present: bool = False
    cell_voltage: sequence[float32] = field(default_factory=list)
    cell_temperature: sequence[float32] = field(default_factory=list)
    location: str = ""
    serial_number: str = ""


# ---------------------------------------------------------------- sim2real_msgs (custom)


@dataclass
class MotorCommand(IdlStruct, typename="sim2real_msgs.msg.dds_.MotorCommand_"):
    """sim2real_msgs/msg/MotorCommand: per-motor speed setpoints in revolutions per minute, motor order
    as in the robot profile; ``vehicle_id``: the vehicle the command is for (robots reject other vehicles');
    ``mode``: what produced it (policy, arming, fallback, stop): a bridge to an autopilot hands control back to
    the autopilot's own landing on ``fallback`` and disarms on ``stop``."""

    header: Header = field(default_factory=Header)
    rpm: sequence[float32] = field(default_factory=list)
    vehicle_id: str = ""
    mode: str = ""


@dataclass
class RateThrustCommand(IdlStruct, typename="sim2real_msgs.msg.dds_.RateThrustCommand_"):
    """sim2real_msgs/msg/RateThrustCommand: collective thrust and body-rate setpoints (CTBR), for autopilots
    that close the rate loop themselves (PX4 VehicleRatesSetpoint, MAVLink SET_ATTITUDE_TARGET, the Crazyflie's
    rate mode). ``thrust``: collective thrust along body +z, newtons; ``body_rate``: roll, pitch, yaw rate
    setpoints in the body frame FLU (x forward, y left, z up), rad/s; ``vehicle_id`` and ``mode`` as in
    :class:`MotorCommand`. A bridge converts newtons to the autopilot's normalized thrust with the vehicle's
    thrust curve and FLU to the autopilot's FRD."""

    header: Header = field(default_factory=Header)
    thrust: float32 = 0.0
    body_rate: Vector3 = field(default_factory=Vector3)
    vehicle_id: str = ""
    mode: str = ""


@dataclass
class JointCommand(IdlStruct, typename="sim2real_msgs.msg.dds_.JointCommand_"):
    """sim2real_msgs/msg/JointCommand: per-joint PD command for motor drivers that close the loop themselves
    (Unitree low-level motor commands q, dq, tau, kp, kd; Franka joint impedance). Joints by name, like
    sensor_msgs/JointState; the motor computes tau + kp (position - q) + kd (velocity - dq).

    position: target angle (rad); velocity: target speed (rad/s); effort: feed-forward torque (N m);
    kp: stiffness (N m/rad); kd: damping (N m s/rad); all zero = zero torque; kp 0, kd > 0 = damping.
    mode: what produced it (policy, arming, fallback, stop), for logs; vehicle_id: the robot the command is
    for (robots reject other robots' commands)."""

    header: Header = field(default_factory=Header)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)
    kp: sequence[float64] = field(default_factory=list)
    kd: sequence[float64] = field(default_factory=list)
    mode: str = ""
    vehicle_id: str = ""


@dataclass
class SafetyTransition(IdlStruct, typename="sim2real_msgs.msg.dds_.SafetyTransition_"):
    """sim2real_msgs/msg/SafetyTransition: a state change of the safety state machine and its cause."""

    header: Header = field(default_factory=Header)
    from_state: str = ""
    to_state: str = ""
    reason: str = ""
    check: str = ""


@dataclass
class LoopTiming(IdlStruct, typename="sim2real_msgs.msg.dds_.LoopTiming_"):
    """sim2real_msgs/msg/LoopTiming: one control cycle's inference time, cycle period and jitter
    (seconds) and the running count of missed deadlines."""

    header: Header = field(default_factory=Header)
    inference_s: float64 = 0.0
    cycle_s: float64 = 0.0
    jitter_s: float64 = 0.0
    deadline_misses: uint32 = 0
