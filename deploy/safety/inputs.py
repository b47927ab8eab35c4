"""What the safety layer sees and what it lets out. Plain dataclasses over numpy arrays; no torch.

Time is explicit everywhere: ``now`` and ``stamp_s`` are float seconds of the runtime's monotonic clock
(``time.monotonic()``). Drivers stamp samples in that clock domain; the layer never reads a clock itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from deploy.safety.state_machine import SafetyState


@dataclass(frozen=True)
class StateSample:
    """One measured robot state, as a driver reports it. Fields a robot class does not have stay ``None``.

    stamp_s: measurement time, runtime monotonic clock, seconds.
    position_m: (3,) world frame, z up, metres.          velocity_m_s: (3,) world frame, m/s.
    quat_wxyz: (4,) body-to-world attitude (w, x, y, z).  body_rates_rad_s: (3,) body frame, rad/s.
    battery_fraction: remaining charge in [0, 1].          estop_pressed: a hardware e-stop input is active.
    joint_pos_rad, joint_vel_rad_s, joint_torque_nm: (J,) in the profile's joint order.
    observation: (O,) the observation vector the policy was given this cycle (checked for NaN/inf).
    joint_stamp_s, attitude_stamp_s: the joint state's and the attitude's own measurement times where they came in
    separate messages (an articulated robot's JointState and Imu); None: ``stamp_s``. The consistency gate predicts
    each part over its own time step: a JointState one period newer than the Imu it was read with moved a period.
    """

    stamp_s: float
    position_m: np.ndarray | None = None
    velocity_m_s: np.ndarray | None = None
    quat_wxyz: np.ndarray | None = None
    body_rates_rad_s: np.ndarray | None = None
    battery_fraction: float | None = None
    joint_pos_rad: np.ndarray | None = None
    joint_vel_rad_s: np.ndarray | None = None
    joint_torque_nm: np.ndarray | None = None
    observation: np.ndarray | None = None
    estop_pressed: bool = False
    joint_stamp_s: float | None = None
    attitude_stamp_s: float | None = None


@dataclass(frozen=True)
class SafetyInputs:
    """Everything the checks see in one cycle (built by the layer; checks never read anything else).

    state: latest accepted sample (``None`` before the first one).
    action: raw policy action in command units, (A,), or ``None`` when no action was given.
    action_required: the layer is in ARMING or ACTIVE, where a missing action is a fault.
    inference_time_s: how long the policy took this cycle, seconds (``None``: not measured).
    last_heartbeat_s: runtime time of the last operator heartbeat (``None``: never).
    previous_values: the last emitted command values (A,), for the rate check.
    dt_s: time since the previous cycle, seconds (0 when the clock did not advance).
    now_backwards_s: how far ``now`` went backwards this cycle, seconds (0 normally).
    estop_requested: the operator asked for an e-stop and it has not been reset.
    trust: the state-trust bookkeeping (``deploy.safety.consistency.TrustStatus``): suspect state, input faults.
    """

    state: StateSample | None
    action: np.ndarray | None
    action_required: bool
    inference_time_s: float | None
    last_heartbeat_s: float | None
    previous_values: np.ndarray
    dt_s: float
    now_backwards_s: float = 0.0
    estop_requested: bool = False
    trust: object | None = None


class CommandMode(enum.Enum):
    """What produced an emitted command."""

    POLICY = "policy"  # ACTIVE: the policy's action after clamping and rate limiting
    ARMING = "arming"  # ARMING: idle spin (quadrotor) or hold the measured pose (joints)
    FALLBACK = "fallback"  # FALLBACK: the robot class's fallback controller
    STOP = "stop"  # DISARMED / ESTOP: motors off (quadrotor 0 RPM) or zero torque (kp = kd = 0)


@dataclass(frozen=True)
class SafeCommand:
    """The only thing that may leave the runtime towards the actuators.

    values: (A,) command in the profile's units: per-motor RPM (quadrotor, M1..M4) or joint position
        targets in radians (arm, legged), in the profile's joint order.
    kp_nm_per_rad, kd_nm_s_per_rad: (A,) joint PD gains for drivers with PD at the motor (None: quadrotor).
    """

    values: np.ndarray
    mode: CommandMode
    state: SafetyState
    stamp_s: float
    reason: str = ""
    kp_nm_per_rad: np.ndarray | None = None
    kd_nm_s_per_rad: np.ndarray | None = None
