"""Unitree's low-level DDS types of the Go2 class (``unitree_go``), as Cyclone DDS IDL structs.

The Go2 (and B2, Go2-W) firmware reads ``rt/lowcmd`` (:class:`LowCmd_`) and writes ``rt/lowstate``
(:class:`LowState_`) on plain DDS (domain 0 on the robot's Ethernet; no ROS 2 node, no type hash). Field order,
types and DDS type names (``unitree_go::msg::dds_::LowCmd_`` ...) are those of Unitree's own IDL
(unitree_sdk2_python ``unitree_sdk2py/idl/unitree_go/msg/dds_``, the types its examples talk to robots with;
unitree_ros2 ``unitree_go/msg/*.msg`` has the same layout with ``int8`` for the temperatures, which is the same
byte). The tests check the CDR bytes and the DDS type identifiers against Unitree's classes.

    LowCmd_     head 0xFE 0xEF, level_flag 0xFF, 20 MotorCmd_ slots (the Go2 uses 0-11), crc: CRC-32/MPEG-2 over
                the packed little-endian struct (drivers/unitree_crc.py)
    MotorCmd_   mode (0x01 = servo, 0x00 = off), q rad, dq rad/s, tau N m (feed-forward), kp N m/rad, kd N m s/rad;
                the motor computes tau + kp (q - q_meas) + kd (dq - dq_meas)
    LowState_   imu_state (quaternion w, x, y, z body -> world; gyroscope rad/s body; accelerometer m/s^2 body;
                rpy rad), 20 MotorState_ (q rad, dq rad/s, tau_est N m), bms_state, foot_force, tick (ms), crc

G1 / H1-2 use ``unitree_hg`` types (35 motors) and are not here.

Like deploy/msgs/types.py this module does not use ``from __future__ import annotations`` (cyclonedds needs real
annotation types).
"""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.annotations import autoid, final
from cyclonedds.idl.types import array, float32, int16, int32, uint8, uint16, uint32

NUM_MOTORS = 20  # motor slots in LowCmd_ / LowState_; the Go2 drives slots 0-11


@dataclass
@final
@autoid("sequential")
class MotorCmd_(IdlStruct, typename="unitree_go.msg.dds_.MotorCmd_"):
    """One motor's command: mode, q rad, dq rad/s, tau N m, kp N m/rad, kd N m s/rad."""

    mode: uint8 = 0
    q: float32 = 0.0
    dq: float32 = 0.0
    tau: float32 = 0.0
    kp: float32 = 0.0
    kd: float32 = 0.0
    reserve: array[uint32, 3] = field(default_factory=lambda: [0] * 3)


@dataclass
@final
@autoid("sequential")
class BmsCmd_(IdlStruct, typename="unitree_go.msg.dds_.BmsCmd_"):
    """Battery command (``off``: 0xA5 switches the battery off; 0 otherwise)."""

    off: uint8 = 0
    reserve: array[uint8, 3] = field(default_factory=lambda: [0] * 3)


@dataclass
@final
@autoid("sequential")
class LowCmd_(IdlStruct, typename="unitree_go.msg.dds_.LowCmd_"):
    """The low-level command of ``rt/lowcmd``."""

    head: array[uint8, 2] = field(default_factory=lambda: [0] * 2)
    level_flag: uint8 = 0
    frame_reserve: uint8 = 0
    sn: array[uint32, 2] = field(default_factory=lambda: [0] * 2)
    version: array[uint32, 2] = field(default_factory=lambda: [0] * 2)
    bandwidth: uint16 = 0
    motor_cmd: array[MotorCmd_, NUM_MOTORS] = field(default_factory=lambda: [MotorCmd_() for _ in range(NUM_MOTORS)])
    bms_cmd: BmsCmd_ = field(default_factory=BmsCmd_)
    wireless_remote: array[uint8, 40] = field(default_factory=lambda: [0] * 40)
    led: array[uint8, 12] = field(default_factory=lambda: [0] * 12)
    fan: array[uint8, 2] = field(default_factory=lambda: [0] * 2)
    gpio: uint8 = 0
    reserve: uint32 = 0
    crc: uint32 = 0


@dataclass
@final
@autoid("sequential")
class IMUState_(IdlStruct, typename="unitree_go.msg.dds_.IMUState_"):
    """quaternion (w, x, y, z) body -> world; gyroscope rad/s, accelerometer m/s^2, both body frame; rpy rad;
    temperature deg C."""

    quaternion: array[float32, 4] = field(default_factory=lambda: [0.0] * 4)
    gyroscope: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    accelerometer: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    rpy: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    temperature: uint8 = 0


@dataclass
@final
@autoid("sequential")
class MotorState_(IdlStruct, typename="unitree_go.msg.dds_.MotorState_"):
    """One motor's state: q rad, dq rad/s, ddq rad/s^2, tau_est N m (and raw values), temperature deg C."""

    mode: uint8 = 0
    q: float32 = 0.0
    dq: float32 = 0.0
    ddq: float32 = 0.0
    tau_est: float32 = 0.0
    q_raw: float32 = 0.0
    dq_raw: float32 = 0.0
    ddq_raw: float32 = 0.0
    temperature: uint8 = 0
    lost: uint32 = 0
    reserve: array[uint32, 2] = field(default_factory=lambda: [0] * 2)


@dataclass
@final
@autoid("sequential")
class BmsState_(IdlStruct, typename="unitree_go.msg.dds_.BmsState_"):
    """Battery: soc %, current mA, cell voltages mV."""

    version_high: uint8 = 0
    version_low: uint8 = 0
    status: uint8 = 0
    soc: uint8 = 0
    current: int32 = 0
    cycle: uint16 = 0
    bq_ntc: array[uint8, 2] = field(default_factory=lambda: [0] * 2)
    mcu_ntc: array[uint8, 2] = field(default_factory=lambda: [0] * 2)
    cell_vol: array[uint16, 15] = field(default_factory=lambda: [0] * 15)


@dataclass
@final
@autoid("sequential")
class LowState_(IdlStruct, typename="unitree_go.msg.dds_.LowState_"):
    """The low-level state of ``rt/lowstate``."""

    head: array[uint8, 2] = field(default_factory=lambda: [0] * 2)
    level_flag: uint8 = 0
    frame_reserve: uint8 = 0
    sn: array[uint32, 2] = field(default_factory=lambda: [0] * 2)
    version: array[uint32, 2] = field(default_factory=lambda: [0] * 2)
    bandwidth: uint16 = 0
    imu_state: IMUState_ = field(default_factory=IMUState_)
    motor_state: array[MotorState_, NUM_MOTORS] = field(
        default_factory=lambda: [MotorState_() for _ in range(NUM_MOTORS)]
    )
    bms_state: BmsState_ = field(default_factory=BmsState_)
    foot_force: array[int16, 4] = field(default_factory=lambda: [0] * 4)
    foot_force_est: array[int16, 4] = field(default_factory=lambda: [0] * 4)
    tick: uint32 = 0
    wireless_remote: array[uint8, 40] = field(default_factory=lambda: [0] * 40)
    bit_flag: uint8 = 0
    adc_reel: float32 = 0.0
    temperature_ntc1: uint8 = 0
    temperature_ntc2: uint8 = 0
    power_v: float32 = 0.0
    power_a: float32 = 0.0
    fan_frequency: array[uint16, 4] = field(default_factory=lambda: [0] * 4)
    reserve: uint32 = 0
    crc: uint32 = 0
