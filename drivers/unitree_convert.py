"""What the Unitree Go2 bridge says on ``rt/lowcmd`` and hears on ``rt/lowstate``: its options and the pure
conversions (no DDS, no simulator; torch-free).

Runtime -> robot. A ``sim2real_msgs/JointCommand`` (joints by name) becomes per-motor targets in Unitree's motor
order (FR, FL, RR, RL; hip, thigh, calf: slots 0-11, ``motors`` in the options, by default the robot profile's
joint order, which launch/robots/go2.yaml keeps equal to it). Every LowCmd_ carries:

    head 0xFE 0xEF, level_flag 0xFF (low level)        unitree_sdk2_python go2_stand_example.py
    slots 0-11: mode 0x01, q, dq, tau, kp, kd           the command's position, velocity, effort, kp, kd
    slots 12-19 (no motor): mode 0x01, q PosStopF 2.146e9, dq VelStopF 16000, kp = kd = tau = 0
    crc: CRC-32/MPEG-2 of the packed struct (drivers/unitree_crc.py), recomputed for every write

A command is refused, with an error saying what was expected and what came (and nothing new is sent: the bridge
keeps repeating the last accepted one), when it names a joint the robot does not have or lacks one, when a list
has the wrong length, when a value is not finite, or when a gain is negative. Damping (the bridge's own fallback
when the runtime falls silent, FACTS.md: kp 0, kd 8) is q PosStopF (no position loop), dq 0, tau 0.

Robot -> runtime. A LowState_ whose CRC is wrong, or whose motor or IMU values are not finite, is refused (the
runtime sees a stale state and its watchdog acts); otherwise it gives the motors' q rad, dq rad/s, tau_est N m
in the ``motors`` order and the IMU's quaternion (w, x, y, z, body -> world), gyroscope (rad/s, body) and
accelerometer (m/s^2, body, specific force).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from deploy.msgs import JointCommand
from deploy.msgs.unitree import NUM_MOTORS, LowCmd_, LowState_, MotorCmd_
from drivers.unitree_crc import LOW_CMD, crc, crc_of_packed

HEAD = (0xFE, 0xEF)
LEVEL_FLAG_LOW = 0xFF  # low-level control (unitree_sdk2 LOWLEVEL)
MODE_SERVO = 0x01  # the motor closes its PD loop (0x00: off)
POS_STOP_F = 2.146e9  # a position target that turns the position loop off (unitree_sdk2 / legged_sdk PosStopF)
VEL_STOP_F = 16000.0  # a velocity target that turns the velocity loop off (VelStopF)


class UnitreeConfigError(ValueError):
    """The bridge's options are wrong; the message says which key, what was expected and what was found."""


class CommandRefused(ValueError):
    """A runtime command that cannot become a LowCmd as it is."""


class StateRefused(ValueError):
    """A LowState the runtime must not see as the robot's state."""


class CrcMismatch(StateRefused):
    """A LowState whose ``crc`` is not the CRC of its content (corrupted, or not written by Unitree's code)."""


@dataclass(frozen=True)
class BridgeOptions:
    """``motors``: joint names, slot i = motors[i] (the Go2 drives 12 of the 20 slots); ``rate_hz``: LowCmd
    writes per second (the Go2 examples: 500); ``domain_id``: the robot's DDS domain (0); ``command_timeout_s``:
    no accepted runtime command for this long -> damping; ``damping_kd_nm_s_per_rad``: the damping gain (Unitree's
    damping mode: 8); ``check_state_crc``: drop LowStates whose CRC is wrong; ``lowcmd_topic`` /
    ``lowstate_topic``: the DDS topics (``rt/`` = ROS 2's prefix, what Unitree's SDK uses)."""

    motors: tuple[str, ...]
    rate_hz: float = 500.0
    domain_id: int = 0
    command_timeout_s: float = 0.2
    damping_kd_nm_s_per_rad: float = 8.0
    check_state_crc: bool = True
    lowcmd_topic: str = "rt/lowcmd"
    lowstate_topic: str = "rt/lowstate"

    def __post_init__(self) -> None:
        motors = tuple(self.motors)
        if not 0 < len(motors) <= NUM_MOTORS or len(set(motors)) != len(motors):
            raise UnitreeConfigError(
                f"unitree.motors: expected 1-{NUM_MOTORS} distinct joint names in motor-slot order, got {list(motors)}"
            )
        object.__setattr__(self, "motors", motors)
        for key in ("rate_hz", "command_timeout_s", "damping_kd_nm_s_per_rad"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UnitreeConfigError(f"unitree.{key}: expected a number > 0, got {value!r}")
        if not (isinstance(self.domain_id, int) and 0 <= self.domain_id <= 232):
            raise UnitreeConfigError(f"unitree.domain_id: expected a DDS domain id 0..232, got {self.domain_id!r}")


def bridge_options(section: Mapping[str, Any], profile_joints: Sequence[str] | None = None) -> BridgeOptions:
    """From the ``unitree:`` section of the bridge's options (keys: the fields of :class:`BridgeOptions`; ``motors``
    defaults to ``profile_joints``, and must name the same joints when both are given)."""
    if not isinstance(section, Mapping):
        raise UnitreeConfigError(f"unitree: expected a mapping, got {type(section).__name__}")
    known = set(BridgeOptions.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise UnitreeConfigError(f"unitree: unknown keys {unknown}; expected some of {sorted(known)}")
    values = dict(section)
    if "motors" not in values:
        if profile_joints is None:
            raise UnitreeConfigError("unitree.motors: missing, and no robot profile to take the joint order from")
        values["motors"] = tuple(profile_joints)
    elif profile_joints is not None and set(values["motors"]) != set(profile_joints):
        raise UnitreeConfigError(
            f"unitree.motors {list(values['motors'])} do not name the robot profile's joints {list(profile_joints)}: "
            f"list the profile's joints in Unitree's motor order (FR, FL, RR, RL; hip, thigh, calf)"
        )
    return BridgeOptions(**values)


def load_bridge_options(path: str | Path) -> tuple[BridgeOptions, dict[str, Any]]:
    """(options, the rest of the file) from a YAML file with a ``unitree:`` section and an optional ``robot``
    (a profile name or YAML, relative to launch/) whose joints the motors must be."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if "unitree" not in data:
        raise UnitreeConfigError(f"{path}: expected a 'unitree:' section (motors, rate_hz, ...)")
    joints = None
    if data.get("robot") is not None:
        from sim.articulated.profile import load_profile  # torch-free

        robot = Path(path).parent / str(data["robot"])  # relative to the options file, as in deploy profiles
        joints = load_profile(robot if robot.is_file() else data["robot"]).joints.names
    return bridge_options(data["unitree"], joints), {k: v for k, v in data.items() if k != "unitree"}


@dataclass(frozen=True)
class MotorTargets:
    """Per-motor command, each (J,) in the ``motors`` order: q rad, dq rad/s, tau N m, kp N m/rad, kd N m s/rad."""

    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    kp: np.ndarray
    kd: np.ndarray


def damping(joints: int, kd: float) -> MotorTargets:
    """Unitree's damping mode for ``joints`` motors: no position loop (q PosStopF, kp 0), dq 0, tau 0, kd."""
    zeros = np.zeros(joints)
    return MotorTargets(np.full(joints, POS_STOP_F), zeros, zeros, zeros, np.full(joints, float(kd)))


class CommandConverter:
    """sim2real_msgs/JointCommand (joints by name) -> :class:`MotorTargets` in the motors' order."""

    FIELDS = ("position", "velocity", "effort", "kp", "kd")

    def __init__(self, motors: Sequence[str]):
        self.motors = tuple(motors)
        self._index: dict[tuple[str, ...], np.ndarray] = {}

    def targets(self, msg: JointCommand) -> MotorTargets:
        """Raises :class:`CommandRefused` naming what is wrong."""
        names = tuple(msg.name)
        index = self._index.get(names)
        if index is None:
            unknown = [n for n in names if n not in self.motors]
            missing = [n for n in self.motors if n not in names]
            if unknown or missing or len(set(names)) != len(names):
                raise CommandRefused(
                    f"JointCommand names {list(names)} do not match the robot's motors {list(self.motors)} "
                    f"(unknown: {unknown}, missing: {missing}): check the robot profile's joint names against the "
                    f"bridge's unitree.motors"
                )
            index = self._index[names] = np.array([names.index(m) for m in self.motors])
        n, values = len(names), []
        for name in self.FIELDS:
            v = getattr(msg, name)
            if name in ("velocity", "effort") and len(v) == 0:
                values.append(np.zeros(n))
                continue
            if len(v) != n:
                raise CommandRefused(f"JointCommand.{name} has {len(v)} values for {n} names; expected one per name")
            values.append(np.asarray(v, dtype=float)[index])
        q, dq, tau, kp, kd = values
        for name, v in zip(self.FIELDS, values, strict=True):
            if not np.all(np.isfinite(v)):
                bad = [m for m, x in zip(self.motors, v, strict=True) if not math.isfinite(x)]
                raise CommandRefused(f"JointCommand.{name} of {bad} is not finite: {v.tolist()}")
        if np.any(kp < 0) or np.any(kd < 0):
            raise CommandRefused(f"JointCommand gains must be >= 0: kp {kp.tolist()}, kd {kd.tolist()}")
        return MotorTargets(q, dq, tau, kp, kd)


class CommandWatch:
    """The newest accepted command and when it came; after ``timeout_s`` without one, damping. ``source`` of
    :meth:`select`: ``"none"`` (no command yet: send nothing), ``"runtime"`` or ``"damping"``."""

    def __init__(self, joints: int, timeout_s: float, damping_kd: float):
        self.timeout_s = timeout_s
        self._damping = damping(joints, damping_kd)
        self._latest: MotorTargets | None = None
        self._arrived = -math.inf

    def accept(self, targets: MotorTargets, now: float) -> None:
        self._latest, self._arrived = targets, now

    def select(self, now: float) -> tuple[MotorTargets | None, str]:
        if self._latest is None:
            return None, "none"
        if now - self._arrived > self.timeout_s:
            return self._damping, "damping"
        return self._latest, "runtime"


@dataclass
class LowCmdFrame:
    """The LowCmd_ the bridge writes, kept packed (:data:`drivers.unitree_crc.LOW_CMD`) so that setting targets is
    a few vector writes and the CRC one call. Idle slots and the header are filled once."""

    joints: int
    packed: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        p = self.packed = np.zeros(1, dtype=LOW_CMD)
        p["head"], p["level_flag"] = HEAD, LEVEL_FLAG_LOW
        m = p["motor_cmd"][0]
        m["mode"], m["q"], m["dq"] = MODE_SERVO, POS_STOP_F, VEL_STOP_F

    def set(self, targets: MotorTargets) -> None:
        m, j = self.packed["motor_cmd"][0], self.joints
        for name, value in (("q", targets.q), ("dq", targets.dq), ("tau", targets.tau)):
            m[name][:j] = value
        m["kp"][:j], m["kd"][:j] = targets.kp, targets.kd

    def message(self) -> LowCmd_:
        """The LowCmd_ of the packed frame, its CRC computed now."""
        p = self.packed[0]
        m = p["motor_cmd"]
        motors = [
            MotorCmd_(int(m["mode"][i]), float(m["q"][i]), float(m["dq"][i]), float(m["tau"][i]), float(m["kp"][i]),
                      float(m["kd"][i]), [0, 0, 0])
            for i in range(NUM_MOTORS)
        ]  # fmt: skip
        msg = LowCmd_(head=list(HEAD), level_flag=LEVEL_FLAG_LOW, motor_cmd=motors)
        msg.crc = crc_of_packed(self.packed)
        return msg


@dataclass(frozen=True)
class LowStateSample:
    """One LowState_, decoded: q rad, dq rad/s, tau N m (J,) in the motors' order; quat (4,) w, x, y, z body ->
    world; gyro (3,) rad/s body; accel (3,) m/s^2 body (specific force); tick ms (the robot's clock)."""

    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    quat: np.ndarray
    gyro: np.ndarray
    accel: np.ndarray
    tick: int


def decode_state(msg: LowState_, joints: int, check_crc: bool = True) -> LowStateSample:
    """Raises :class:`CrcMismatch` for a wrong CRC, :class:`StateRefused` for non-finite values or a quaternion that
    is not a unit one."""
    if check_crc:
        expected = crc(msg)
        if int(msg.crc) != expected:
            raise CrcMismatch(f"LowState CRC {int(msg.crc):#010x}, expected {expected:#010x}: dropped")
    motors = msg.motor_state[:joints]
    q = np.array([m.q for m in motors], dtype=float)
    dq = np.array([m.dq for m in motors], dtype=float)
    tau = np.array([m.tau_est for m in motors], dtype=float)
    imu = msg.imu_state
    quat, gyro, accel = (np.asarray(v, dtype=float) for v in (imu.quaternion, imu.gyroscope, imu.accelerometer))
    values = np.concatenate([q, dq, tau, quat, gyro, accel])
    if not np.all(np.isfinite(values)):
        raise StateRefused(f"LowState has non-finite values: q {q.tolist()}, dq {dq.tolist()}, quat {quat.tolist()}")
    norm = float(np.linalg.norm(quat))
    if not 0.9 < norm < 1.1:
        raise StateRefused(f"LowState IMU quaternion {quat.tolist()} has norm {norm:.3f}; expected a unit quaternion")
    return LowStateSample(q, dq, tau, quat / norm, gyro, accel, int(msg.tick))
