"""Replay reads the twist of old and new logs alike: a TwistStamped by its header frame (``world``: the earlier
world-frame linear velocity; ``base_link``: the body frame, ROS convention, rotated with the pose's attitude or,
in a legged robot's log, the IMU's), an Odometry's in its child frame."""

from __future__ import annotations

import numpy as np

from deploy.articulated_wire import imu_msg
from deploy.msgs import Twist, TwistStamped, Vector3, make_header
from deploy.recording import FlightRecorder, read_log
from deploy.replay import load_flight
from deploy.state_wire import state_messages
from tests.deploy.recording.golden import GOLDEN_PATH

T0, DT, N = 1_700_000_000_000_000_000, 10_000_000, 40


def _truth(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A vehicle yawing through 2 rad and tilted 0.35 rad: attitude (w, x, y, z), world velocity, body rates."""
    yaw, tilt = 0.05 * k, 0.35
    qz = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    qx = np.array([np.cos(tilt / 2), np.sin(tilt / 2), 0.0, 0.0])
    w1, v1, w2, v2 = qz[0], qz[1:], qx[0], qx[1:]
    q = np.concatenate([[w1 * w2 - v1 @ v2], w1 * v2 + w2 * v1 + np.cross(v1, v2)])
    return q, np.array([0.5 + 0.01 * k, -0.3, 0.1 * np.sin(k)]), np.array([0.2, -0.1, 5.0])


def _write(path, convention: str) -> None:
    with FlightRecorder(path, viewer_files=False) as rec:
        for k in range(N):
            stamp = T0 + k * DT
            q, v, w = _truth(k)
            pose, twist, odom = state_messages(stamp, [0.0, 0.0, 1.0], q, v, w)
            if convention == "odometry":
                rec.write_state(odom, stamp)
                continue
            if convention == "legged":  # the legged runtime records the IMU and the twist, no pose
                rec.write_state(imu_msg(q, w, stamp), stamp)
                rec.write_state(twist, stamp)
                continue
            if convention == "old":  # as sim2real wrote twists before the ROS convention
                twist = TwistStamped(make_header(stamp, "world"), Twist(Vector3(*v), Vector3(*w)))
            rec.write_state(pose, stamp)
            rec.write_state(twist, stamp)


def test_old_new_and_odometry_logs_give_the_same_world_velocity(tmp_path) -> None:
    truth = [_truth(k) for k in range(N)]
    velocity, rates = np.array([t[1] for t in truth]), np.array([t[2] for t in truth])
    for convention in ("old", "new", "odometry", "legged"):
        path = tmp_path / f"{convention}.mcap"
        _write(path, convention)
        f = load_flight(path, needed=("twist",) if convention == "legged" else ("pose", "twist"))
        if convention == "legged":
            np.testing.assert_allclose(f.twist_linear, velocity, atol=1e-9)
            continue
        topic = "/sim2real/state/odom" if convention == "odometry" else "/sim2real/state/twist"
        assert f.topics["twist"] == topic, convention
        np.testing.assert_allclose(f.velocity, velocity, atol=1e-9, err_msg=convention)
        np.testing.assert_allclose(f.twist_linear, velocity, atol=1e-9, err_msg=convention)
        np.testing.assert_allclose(f.angular_velocity, rates, atol=1e-12, err_msg=convention)
        np.testing.assert_allclose(np.abs(np.sum(f.quaternion * [t[0] for t in truth], 1)), 1.0, atol=1e-12)
    tf = read_log(tmp_path / "odometry.mcap").topic("/tf")  # the recorder's /tf from the Odometry's pose
    assert len(tf) == N and tf[0].msg.transforms[0].child_frame_id == "base_link"


def test_the_committed_golden_log_reads_as_written() -> None:
    """tests/deploy/data/golden_small.mcap was written before the ROS-convention twist (frame ``world``)."""
    f = load_flight(GOLDEN_PATH, needed=("pose", "twist"))
    np.testing.assert_allclose(f.twist_linear, [[0.5, 0.0, -0.1 * i] for i in range(5)], atol=1e-12)
    np.testing.assert_allclose(f.twist_angular, [[0.0, 0.01 * i, 0.0] for i in range(5)], atol=1e-12)
