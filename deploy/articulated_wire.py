"""The wire format of articulated robots (arms, legged robots), shared by the deploy runtime and the simulated
robot. Torch-free.

State, published by the robot (topics of the transport table, ``sensor_data`` QoS):

    state/joints  sensor_msgs/JointState      joints by name: position rad, velocity rad/s, effort N m
    state/imu     sensor_msgs/Imu             legged: base orientation (body -> world) and gyro (rad/s, body)
    state/pose    geometry_msgs/PoseStamped   arm: end-effector pose in the base frame (Franka's O_T_EE);
                                              legged: base pose, where a state estimator or motion capture has one
    state/twist   geometry_msgs/TwistStamped  legged, optional: base velocity, linear m/s and angular rad/s, both
                                              in the base frame (ROS convention, frame ``base_link``;
                                              deploy/state_wire.py)

Command, published by the runtime after the safety layer (``default`` QoS, reliable):

    command/joints  sim2real_msgs/JointCommand  joints by name: q target (rad), dq target (rad/s), feed-forward
                                                torque (N m), kp (N m/rad), kd (N m s/rad), mode

Why not ``sensor_msgs/JointState`` for the command: the gains must travel with the targets in one message. The
safety layer's fallbacks are gain changes (Unitree damping: kp 0, kd 8; zero torque: kp = kd = tau = 0; FACTS.md
"Legged and arm defaults"), and a target whose gains arrive in another message, or not at all, is a different
command. The per-joint fields are those of Unitree's low-level motor command (q, dq, tau, kp, kd) and of Franka's
joint impedance controller; the joints are keyed by name like a JointState, so driver and runtime need not share
an index order. A Unitree driver maps them onto its ``rt/lowcmd`` LowCmd (with its CRC, FACTS.md) by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deploy.msgs import (
    Imu,
    JointCommand,
    JointState,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    TwistStamped,
    Vector3,
    make_header,
)
from deploy.state_wire import state_messages

NOT_PROVIDED = [-1.0] + [0.0] * 8  # REP 145: covariance element 0 = -1 marks a quantity the IMU does not provide


class JointStateError(ValueError):
    """A joint message does not carry the robot profile's joints (missing names, wrong lengths)."""


class JointOrder:
    """Reorders joint messages (any name order) into the robot profile's joint order. Each name list seen is
    resolved once; a message that lacks a profile joint raises :class:`JointStateError` naming it."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        self._index: dict[tuple[str, ...], np.ndarray] = {}

    def indices(self, msg_names: Sequence[str], what: str = "JointState") -> np.ndarray:
        key = tuple(msg_names)
        index = self._index.get(key)
        if index is None:
            missing = [n for n in self.names if n not in key]
            if missing:
                raise JointStateError(
                    f"{what} lacks the joints {missing} of the robot profile: expected all of {list(self.names)}, "
                    f"found {list(key)}. Make the driver publish the profile's joint names (or rename them in the "
                    f"robot profile)"
                )
            index = self._index[key] = np.array([key.index(n) for n in self.names])
        return index

    def _take(self, values: Sequence[float], n: int, index: np.ndarray, field: str, what: str) -> np.ndarray:
        if len(values) != n:
            raise JointStateError(f"{what}.{field} has {len(values)} values for {n} names; expected one per name")
        return np.asarray(values, dtype=float)[index]

    def state(self, msg: JointState) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(J,) position rad, (J,) velocity rad/s, (J,) effort N m or None when the driver sends none."""
        index, n = self.indices(msg.name), len(msg.name)
        q = self._take(msg.position, n, index, "position", "JointState")
        qd = self._take(msg.velocity, n, index, "velocity", "JointState")
        tau = self._take(msg.effort, n, index, "effort", "JointState") if len(msg.effort) else None
        return q, qd, tau

    def command(self, msg: JointCommand) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(J,) position targets rad, (J,) kp N m/rad, (J,) kd N m s/rad in profile order."""
        index, n = self.indices(msg.name, "JointCommand"), len(msg.name)
        return tuple(self._take(getattr(msg, f), n, index, f, "JointCommand") for f in ("position", "kp", "kd"))


def joint_state_msg(
    names: Sequence[str], position: np.ndarray, velocity: np.ndarray, effort: np.ndarray | None, stamp_ns: int
) -> JointState:
    """A JointState (profile order; receivers reorder by name)."""
    return JointState(
        make_header(stamp_ns, "base"),
        list(names),
        [float(v) for v in position],
        [float(v) for v in velocity],
        [] if effort is None else [float(v) for v in effort],
    )


def _quaternion(quat_wxyz: np.ndarray) -> Quaternion:
    w, x, y, z = (float(v) for v in quat_wxyz)
    return Quaternion(x, y, z, w)


def quat_wxyz(q: Quaternion) -> np.ndarray:
    """(4,) w, x, y, z from a ROS quaternion (x, y, z, w)."""
    return np.array([q.w, q.x, q.y, q.z], dtype=float)


def imu_msg(quat: np.ndarray, gyro_rad_s: np.ndarray, stamp_ns: int) -> Imu:
    """Orientation body -> world (w, x, y, z) and body angular velocity; no linear acceleration (REP 145 -1)."""
    return Imu(
        make_header(stamp_ns, "base"),
        orientation=_quaternion(quat),
        angular_velocity=Vector3(*(float(v) for v in gyro_rad_s)),
        linear_acceleration_covariance=list(NOT_PROVIDED),
    )


def pose_msg(position_m: np.ndarray, quat: np.ndarray, stamp_ns: int, frame_id: str) -> PoseStamped:
    return PoseStamped(make_header(stamp_ns, frame_id), Pose(Point(*(float(v) for v in position_m)), _quaternion(quat)))


def twist_msg(quat: np.ndarray, linear_m_s: np.ndarray, angular_rad_s: np.ndarray, stamp_ns: int) -> TwistStamped:
    """The base twist by ROS convention (frame ``base_link``): ``linear_m_s`` (3,) WORLD frame, rotated into the
    base frame with ``quat`` (w, x, y, z, body -> world); ``angular_rad_s`` (3,) base frame."""
    return state_messages(stamp_ns, np.zeros(3), quat, linear_m_s, angular_rad_s)[1]


def joint_command_msg(
    names: Sequence[str], position: np.ndarray, kp: np.ndarray, kd: np.ndarray, mode: str, stamp_ns: int
) -> JointCommand:
    """A JointCommand with zero velocity targets and feed-forward torques (the policies command positions)."""
    n = len(names)
    return JointCommand(
        make_header(stamp_ns, "base"),
        list(names),
        [float(v) for v in position],
        [0.0] * n,
        [0.0] * n,
        [float(v) for v in kp],
        [float(v) for v in kd],
        mode,
    )
