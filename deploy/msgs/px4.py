"""PX4 uORB messages as they travel over uXRCE-DDS (``px4_msgs``), as Cyclone DDS IDL structs.

Field order and types follow PX4 v1.15 (``px4_msgs`` branch ``release/1.15``, ``msg/*.msg``); DDS type names are
``px4_msgs::msg::dds_::X_``. Fixed arrays (``float32[3]``) are ``array[...]``, timestamps ``uint64`` microseconds
since PX4 boot. The ``.msg`` texts below keep every field of the PX4 definition but only the constants this project
uses (constants do not change the CDR bytes). Frames are PX4's: NED world (or FRD: z down, arbitrary heading),
FRD body; ``q`` is (w, x, y, z) body FRD -> world.

Topics (PX4 ``dds_topics.yaml``): ``/fmu/out/vehicle_odometry``, ``/fmu/out/vehicle_status``,
``/fmu/out/battery_status`` out of PX4; ``/fmu/in/offboard_control_mode``, ``/fmu/in/actuator_motors``,
``/fmu/in/vehicle_command``, ``/fmu/in/vehicle_rates_setpoint`` into PX4. PX4 v1.16+ versioned messages
(VehicleStatus, VehicleCommand, ...) carry a ``_v<N>`` topic suffix; their layouts may differ from v1.15.

Like deploy/msgs/types.py this module does not use ``from __future__ import annotations`` (cyclonedds needs
real annotation types).
"""

import math
from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int8, uint8, uint16, uint32, uint64


def _nan3() -> list[float]:
    return [math.nan] * 3


def _nan4() -> list[float]:
    return [math.nan] * 4


def _nan12() -> list[float]:
    return [math.nan] * 12


def _zero3() -> list[float]:
    return [0.0] * 3


def _zero14() -> list[float]:
    return [0.0] * 14


@dataclass
class VehicleOdometry(IdlStruct, typename="px4_msgs.msg.dds_.VehicleOdometry_"):
    """px4_msgs/msg/VehicleOdometry: position (m) in ``pose_frame``, q body FRD -> that frame, velocity (m/s) in
    ``velocity_frame``, angular_velocity (rad/s) body FRD; NaN = unknown."""

    POSE_FRAME_UNKNOWN = 0
    POSE_FRAME_NED = 1
    POSE_FRAME_FRD = 2
    VELOCITY_FRAME_UNKNOWN = 0
    VELOCITY_FRAME_NED = 1
    VELOCITY_FRAME_FRD = 2
    VELOCITY_FRAME_BODY_FRD = 3

    timestamp: uint64 = 0
    timestamp_sample: uint64 = 0
    pose_frame: uint8 = 0
    position: array[float32, 3] = field(default_factory=_nan3)
    q: array[float32, 4] = field(default_factory=_nan4)
    velocity_frame: uint8 = 0
    velocity: array[float32, 3] = field(default_factory=_nan3)
    angular_velocity: array[float32, 3] = field(default_factory=_nan3)
    position_variance: array[float32, 3] = field(default_factory=_zero3)
    orientation_variance: array[float32, 3] = field(default_factory=_zero3)
    velocity_variance: array[float32, 3] = field(default_factory=_zero3)
    reset_counter: uint8 = 0
    quality: int8 = 0


@dataclass
class VehicleStatus(IdlStruct, typename="px4_msgs.msg.dds_.VehicleStatus_"):
    """px4_msgs/msg/VehicleStatus (v1.15): arming state and navigation state (flight mode), among others."""

    ARMING_STATE_DISARMED = 1
    ARMING_STATE_ARMED = 2
    NAVIGATION_STATE_POSCTL = 2
    NAVIGATION_STATE_AUTO_LOITER = 4
    NAVIGATION_STATE_OFFBOARD = 14
    NAVIGATION_STATE_AUTO_LAND = 18

    timestamp: uint64 = 0
    armed_time: uint64 = 0
    takeoff_time: uint64 = 0
    arming_state: uint8 = 0
    latest_arming_reason: uint8 = 0
    latest_disarming_reason: uint8 = 0
    nav_state_timestamp: uint64 = 0
    nav_state_user_intention: uint8 = 0
    nav_state: uint8 = 0
    executor_in_charge: uint8 = 0
    valid_nav_states_mask: uint32 = 0
    can_set_nav_states_mask: uint32 = 0
    failure_detector_status: uint16 = 0
    hil_state: uint8 = 0
    vehicle_type: uint8 = 0
    failsafe: bool = False
    failsafe_and_user_took_over: bool = False
    failsafe_defer_state: uint8 = 0
    gcs_connection_lost: bool = False
    gcs_connection_lost_counter: uint8 = 0
    high_latency_data_link_lost: bool = False
    is_vtol: bool = False
    is_vtol_tailsitter: bool = False
    in_transition_mode: bool = False
    in_transition_to_fw: bool = False
    system_type: uint8 = 0
    system_id: uint8 = 0
    component_id: uint8 = 0
    safety_button_available: bool = False
    safety_off: bool = False
    power_input_valid: bool = False
    usb_connected: bool = False
    open_drone_id_system_present: bool = False
    open_drone_id_system_healthy: bool = False
    parachute_system_present: bool = False
    parachute_system_healthy: bool = False
    avoidance_system_required: bool = False
    avoidance_system_valid: bool = False
    rc_calibration_in_progress: bool = False
    calibration_enabled: bool = False
    pre_flight_checks_pass: bool = False


@dataclass
class BatteryStatus(IdlStruct, typename="px4_msgs.msg.dds_.BatteryStatus_"):
    """px4_msgs/msg/BatteryStatus (v1.15): voltage (V), current (A), remaining (0..1), cell voltages (V)."""

    timestamp: uint64 = 0
    connected: bool = False
    voltage_v: float32 = 0.0
    voltage_filtered_v: float32 = 0.0
    current_a: float32 = 0.0
    current_filtered_a: float32 = 0.0
    current_average_a: float32 = 0.0
    discharged_mah: float32 = 0.0
    remaining: float32 = 0.0
    scale: float32 = 0.0
    time_remaining_s: float32 = 0.0
    temperature: float32 = 0.0
    cell_count: uint8 = 0
    source: uint8 = 0
    priority: uint8 = 0
    capacity: uint16 = 0
    cycle_count: uint16 = 0
    average_time_to_empty: uint16 = 0
    serial_number: uint16 = 0
    manufacture_date: uint16 = 0
    state_of_health: uint16 = 0
    max_error: uint16 = 0
    id: uint8 = 0
    interface_error: uint16 = 0
    voltage_cell_v: array[float32, 14] = field(default_factory=_zero14)
    max_cell_voltage_delta: float32 = 0.0
    is_powering_off: bool = False
    is_required: bool = False
    faults: uint16 = 0
    custom_faults: uint32 = 0
    warning: uint8 = 0
    mode: uint8 = 0
    average_power: float32 = 0.0
    available_energy: float32 = 0.0
    full_charge_capacity_wh: float32 = 0.0
    remaining_capacity_wh: float32 = 0.0
    design_capacity: float32 = 0.0
    average_time_to_full: uint16 = 0
    over_discharge_count: uint16 = 0
    nominal_voltage: float32 = 0.0


@dataclass
class ActuatorMotors(IdlStruct, typename="px4_msgs.msg.dds_.ActuatorMotors_"):
    """px4_msgs/msg/ActuatorMotors: control[i] for motor i + 1, in [-1, 1] (0..1 for non-reversible motors);
    NaN = disarmed (motor off)."""

    NUM_CONTROLS = 12

    timestamp: uint64 = 0
    timestamp_sample: uint64 = 0
    reversible_flags: uint16 = 0
    control: array[float32, 12] = field(default_factory=_nan12)


@dataclass
class OffboardControlMode(IdlStruct, typename="px4_msgs.msg.dds_.OffboardControlMode_"):
    """px4_msgs/msg/OffboardControlMode: the offboard keep-alive; the first true flag picks the setpoint kind."""

    timestamp: uint64 = 0
    position: bool = False
    velocity: bool = False
    acceleration: bool = False
    attitude: bool = False
    body_rate: bool = False
    thrust_and_torque: bool = False
    direct_actuator: bool = False


@dataclass
class VehicleCommand(IdlStruct, typename="px4_msgs.msg.dds_.VehicleCommand_"):
    """px4_msgs/msg/VehicleCommand (v1.15): a MAVLink-style command with seven parameters."""

    VEHICLE_CMD_NAV_LAND = 21
    VEHICLE_CMD_DO_SET_MODE = 176
    VEHICLE_CMD_COMPONENT_ARM_DISARM = 400

    timestamp: uint64 = 0
    param1: float32 = 0.0
    param2: float32 = 0.0
    param3: float32 = 0.0
    param4: float32 = 0.0
    param5: float64 = 0.0
    param6: float64 = 0.0
    param7: float32 = 0.0
    command: uint32 = 0
    target_system: uint8 = 0
    target_component: uint8 = 0
    source_system: uint8 = 0
    source_component: uint16 = 0
    confirmation: uint8 = 0
    from_external: bool = False


@dataclass
class VehicleRatesSetpoint(IdlStruct, typename="px4_msgs.msg.dds_.VehicleRatesSetpoint_"):
    """px4_msgs/msg/VehicleRatesSetpoint (v1.15): roll, pitch, yaw rate setpoints (rad/s, body FRD) and
    ``thrust_body`` normalized [-1, 1] in body FRD: a multicopter's is (0, 0, -throttle), negative z up;
    ``reset_integral`` resets the rate controller's integrators. Offboard: with OffboardControlMode body_rate, on
    ``/fmu/in/vehicle_rates_setpoint``. PX4 v1.16 lists it among the versioned messages (MESSAGE_VERSION 0) with
    the same fields; check its topic name with ``ros2 topic list``."""

    timestamp: uint64 = 0
    roll: float32 = 0.0
    pitch: float32 = 0.0
    yaw: float32 = 0.0
    thrust_body: array[float32, 3] = field(default_factory=_zero3)
    reset_integral: bool = False


def _text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _many(kind: str, names: str) -> list[str]:
    """``_many("bool", "a b")`` -> ``["bool a", "bool b"]``."""
    return [f"{kind} {n}" for n in names.split()]


#: ``.msg`` texts of PX4 v1.15 (px4_msgs release/1.15), comments dropped, only the constants used here kept.
MSG_TEXT: dict[str, str] = {
    "px4_msgs/msg/VehicleOdometry": _text(
        "uint64 timestamp",
        "uint64 timestamp_sample",
        "uint8 POSE_FRAME_UNKNOWN = 0",
        "uint8 POSE_FRAME_NED = 1",
        "uint8 POSE_FRAME_FRD = 2",
        "uint8 pose_frame",
        "float32[3] position",
        "float32[4] q",
        "uint8 VELOCITY_FRAME_UNKNOWN = 0",
        "uint8 VELOCITY_FRAME_NED = 1",
        "uint8 VELOCITY_FRAME_FRD = 2",
        "uint8 VELOCITY_FRAME_BODY_FRD = 3",
        "uint8 velocity_frame",
        "float32[3] velocity",
        "float32[3] angular_velocity",
        "float32[3] position_variance",
        "float32[3] orientation_variance",
        "float32[3] velocity_variance",
        "uint8 reset_counter",
        "int8 quality",
    ),
    "px4_msgs/msg/VehicleStatus": _text(
        "uint64 timestamp",
        "uint64 armed_time",
        "uint64 takeoff_time",
        "uint8 arming_state",
        "uint8 ARMING_STATE_DISARMED = 1",
        "uint8 ARMING_STATE_ARMED = 2",
        "uint8 latest_arming_reason",
        "uint8 latest_disarming_reason",
        "uint64 nav_state_timestamp",
        "uint8 nav_state_user_intention",
        "uint8 nav_state",
        "uint8 NAVIGATION_STATE_POSCTL = 2",
        "uint8 NAVIGATION_STATE_AUTO_LOITER = 4",
        "uint8 NAVIGATION_STATE_OFFBOARD = 14",
        "uint8 NAVIGATION_STATE_AUTO_LAND = 18",
        "uint8 executor_in_charge",
        "uint32 valid_nav_states_mask",
        "uint32 can_set_nav_states_mask",
        "uint16 failure_detector_status",
        "uint8 hil_state",
        "uint8 vehicle_type",
        *_many("bool", "failsafe failsafe_and_user_took_over"),
        "uint8 failsafe_defer_state",
        "bool gcs_connection_lost",
        "uint8 gcs_connection_lost_counter",
        *_many("bool", "high_latency_data_link_lost is_vtol is_vtol_tailsitter in_transition_mode in_transition_to_fw"),
        "uint8 system_type",
        "uint8 system_id",
        "uint8 component_id",
        *_many(
            "bool",
            "safety_button_available safety_off power_input_valid usb_connected open_drone_id_system_present open_drone_id_system_healthy parachute_system_present parachute_system_healthy avoidance_system_required avoidance_system_valid rc_calibration_in_progress calibration_enabled pre_flight_checks_pass",
        ),
    ),
    "px4_msgs/msg/BatteryStatus": _text(
        "uint64 timestamp",
        "bool connected",
        *_many(
            "float32",
            "voltage_v voltage_filtered_v current_a current_filtered_a current_average_a discharged_mah remaining scale time_remaining_s temperature",
        ),
        "uint8 cell_count",
        "uint8 source",
        "uint8 priority",
        *_many(
            "uint16",
            "capacity cycle_count average_time_to_empty serial_number manufacture_date state_of_health max_error",
        ),
        "uint8 id",
        "uint16 interface_error",
        "float32[14] voltage_cell_v",
        "float32 max_cell_voltage_delta",
        "bool is_powering_off",
        "bool is_required",
        "uint16 faults",
        "uint32 custom_faults",
        "uint8 warning",
        "uint8 mode",
        *_many(
            "float32", "average_power available_energy full_charge_capacity_wh remaining_capacity_wh design_capacity"
        ),
        "uint16 average_time_to_full",
        "uint16 over_discharge_count",
        "float32 nominal_voltage",
    ),
    "px4_msgs/msg/ActuatorMotors": _text(
        "uint64 timestamp",
        "uint64 timestamp_sample",
        "uint16 reversible_flags",
        "uint8 ACTUATOR_FUNCTION_MOTOR1 = 101",
        "uint8 NUM_CONTROLS = 12",
        "float32[12] control",
    ),
    "px4_msgs/msg/OffboardControlMode": _text(
        "uint64 timestamp",
        *_many("bool", "position velocity acceleration attitude body_rate thrust_and_torque direct_actuator"),
    ),
    "px4_msgs/msg/VehicleCommand": _text(
        "uint64 timestamp",
        "uint16 VEHICLE_CMD_NAV_LAND = 21",
        "uint16 VEHICLE_CMD_DO_SET_MODE = 176",
        "uint16 VEHICLE_CMD_COMPONENT_ARM_DISARM = 400",
        *_many("float32", "param1 param2 param3 param4"),
        "float64 param5",
        "float64 param6",
        "float32 param7",
        "uint32 command",
        "uint8 target_system",
        "uint8 target_component",
        "uint8 source_system",
        "uint16 source_component",
        "uint8 confirmation",
        "bool from_external",
    ),
    "px4_msgs/msg/VehicleRatesSetpoint": _text(
        "uint64 timestamp",
        "float32 roll",
        "float32 pitch",
        "float32 yaw",
        "float32[3] thrust_body",
        "bool reset_integral",
    ),
}

CLASSES: dict[str, type] = {
    "px4_msgs/msg/VehicleOdometry": VehicleOdometry,
    "px4_msgs/msg/VehicleStatus": VehicleStatus,
    "px4_msgs/msg/BatteryStatus": BatteryStatus,
    "px4_msgs/msg/ActuatorMotors": ActuatorMotors,
    "px4_msgs/msg/OffboardControlMode": OffboardControlMode,
    "px4_msgs/msg/VehicleCommand": VehicleCommand,
    "px4_msgs/msg/VehicleRatesSetpoint": VehicleRatesSetpoint,
}
