"""A robot's pose and velocity on the wire, by ROS convention (REP 103, REP 105, nav_msgs/Odometry).

    state/pose   geometry_msgs/PoseStamped  header.frame_id ``world``: position (m) and attitude body FLU -> world ENU
    state/twist  geometry_msgs/TwistStamped header.frame_id ``base_link``: linear (m/s) and angular (rad/s)
                                            velocity, BOTH in the body frame FLU
    state/odom   nav_msgs/Odometry          header.frame_id ``world``, child_frame_id ``base_link``: the pose as
                                            above, the twist in the child (body) frame; covariances all zero
                                            (not provided) or the estimator's

Inside the runtime the state keeps the simulator's frames (:class:`drivers.robot.RobotState`: velocity in the
world frame, rates in the body frame), because the safety layer predicts world positions from it and the
quadrotor's policy observes world velocity: :func:`world_velocity` rotates the body-frame linear velocity with
the attitude of the same state (the pose's, or the Odometry message's own). Publishers build their messages
with :func:`state_messages` from world-frame numbers, so the frames cannot drift between the bridges and the
simulated robots. Torch-free.

Before this convention the topic table's twist carried a WORLD-frame linear velocity (with body rates) under
``header.frame_id`` ``world``: such a twist (any frame id in :data:`WORLD_FRAMES`) is refused at run time
(:class:`TwistFrameError`) and read with its old meaning from logs (deploy/replay/flight.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deploy.msgs import (
    Odometry,
    Point,
    Pose,
    PoseStamped,
    PoseWithCovariance,
    Quaternion,
    Twist,
    TwistStamped,
    TwistWithCovariance,
    Vector3,
    make_header,
)
from deploy.observation import rotation_matrix

WORLD_FRAME = "world"
BODY_FRAME = "base_link"
#: frame ids that name the world frame (deploy/recording/frames.py takes the same): a twist stamped in one of
#: them is not in the body frame
WORLD_FRAMES = ("world", "map", "odom", "")


class TwistFrameError(ValueError):
    """A twist that is not expressed in the body frame (a publisher of the earlier world-frame convention)."""


def body_to_world(quat_wxyz: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """(3,) vector in the body frame -> world frame; quat_wxyz: (4,) w, x, y, z body -> world (normalized here)."""
    q = np.asarray(quat_wxyz, dtype=float)
    return rotation_matrix(q / np.linalg.norm(q)).reshape(3, 3) @ np.asarray(vector, dtype=float)


def world_to_body(quat_wxyz: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """(3,) vector in the world frame -> body frame (the inverse of :func:`body_to_world`)."""
    q = np.asarray(quat_wxyz, dtype=float)
    return rotation_matrix(q / np.linalg.norm(q)).reshape(3, 3).T @ np.asarray(vector, dtype=float)


def is_world_frame(frame_id: str) -> bool:
    return frame_id.lstrip("/") in WORLD_FRAMES


def _vector(v: Vector3) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=float)


def _quat(q: Quaternion) -> np.ndarray:
    return np.array([q.w, q.x, q.y, q.z], dtype=float)


def _check_body(frame_id: str, what: str) -> None:
    if is_world_frame(frame_id):
        raise TwistFrameError(
            f"{what} is stamped in frame {frame_id!r}, a world frame: the runtime takes the twist in the body "
            f"frame (ROS convention: linear and angular velocity in the child frame, e.g. {BODY_FRAME!r}). A "
            "driver written for the earlier convention (world-frame linear velocity) must rotate it into the body "
            "frame and stamp it with the body frame (docs/transport.md, 'Robot state')"
        )


def world_velocity(quat_wxyz: np.ndarray, twist: TwistStamped) -> tuple[np.ndarray, np.ndarray]:
    """A body-frame TwistStamped -> ((3,) linear velocity world m/s, (3,) body rates rad/s), the attitude
    ``quat_wxyz`` (w, x, y, z, body -> world) rotating the linear part. Raises :class:`TwistFrameError` for a
    twist stamped in a world frame."""
    _check_body(twist.header.frame_id, "state/twist")
    return body_to_world(quat_wxyz, _vector(twist.twist.linear)), _vector(twist.twist.angular)


def odometry_state(msg: Odometry) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """nav_msgs/Odometry -> (position (3,) m world, quaternion (4,) w, x, y, z, velocity (3,) m/s world, rates (3,)
    rad/s body): the twist is in ``child_frame_id`` and rotated with the message's own attitude. Raises
    :class:`TwistFrameError` when the child frame is a world frame."""
    _check_body(msg.child_frame_id, "the Odometry's twist (child_frame_id)")
    pose, twist = msg.pose.pose, msg.twist.twist
    q = _quat(pose.orientation)
    return _vector(pose.position), q, body_to_world(q, _vector(twist.linear)), _vector(twist.angular)


def state_messages(
    stamp_ns: int,
    position: Sequence[float],
    quat_wxyz: Sequence[float],
    velocity: Sequence[float],
    rates: Sequence[float],
) -> tuple[PoseStamped, TwistStamped, Odometry]:
    """The pose, twist and odometry of one state, stamped ``stamp_ns`` (ROS time). position (3,) world m;
    quat_wxyz (4,) body FLU -> world ENU; velocity (3,) WORLD m/s (rotated into the body frame here); rates (3,)
    body FLU rad/s."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    pose = Pose(Point(*(float(v) for v in position)), Quaternion(x, y, z, w))
    body = world_to_body(np.array([w, x, y, z]), np.asarray(velocity, dtype=float))
    twist = Twist(Vector3(*(float(v) for v in body)), Vector3(*(float(v) for v in rates)))
    return (
        PoseStamped(make_header(stamp_ns, WORLD_FRAME), pose),
        TwistStamped(make_header(stamp_ns, BODY_FRAME), twist),
        Odometry(make_header(stamp_ns, WORLD_FRAME), BODY_FRAME, PoseWithCovariance(pose), TwistWithCovariance(twist)),
    )
