"""Write a recorded flight as a rosbag2 from "another stack": PX4-style topics and frames, for the tests of the
topic map and of the rosbag2 readers (sqlite3 and MCAP storage, Humble or Jazzy typestore).

The state goes out as ``nav_msgs/Odometry`` in NED / FRD (pose in the world NED frame, twist in the body FRD
frame, as PX4's odometry), the motor commands as ``std_msgs/Float32MultiArray`` normalized to [0, 1] of
``max_rpm``, in the motor order given. :data:`PX4_STYLE_MAP` is the topic map that reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.replay.flight import Flight, rotations

ODOMETRY_TOPIC = "/fmu/out/vehicle_odometry"
MOTORS_TOPIC = "/fmu/out/actuator_motors"
_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
_FRD = np.diag([1.0, -1.0, -1.0])


def px4_style_map(max_rpm: float, order: tuple[int, ...] = (0, 1, 2, 3), typestore: str = "humble") -> dict[str, Any]:
    """The topic map (as a mapping, dump it to YAML for ``--map``) that reads :func:`write_px4_style_bag` output."""
    inverse = tuple(int(i) for i in np.argsort(order))
    return {
        "typestore": typestore,
        "frame": "ned",
        "time": "header",
        "topics": {
            "pose": ODOMETRY_TOPIC,
            "twist": ODOMETRY_TOPIC,
            "command": {"topic": MOTORS_TOPIC, "field": "data", "scale": max_rpm, "order": list(inverse)},
        },
    }


def write_px4_style_bag(
    flight: Flight,
    path: str | Path,
    *,
    storage: str = "sqlite3",
    typestore: str = "humble",
    max_rpm: float = 21702.0,
    order: tuple[int, ...] = (0, 1, 2, 3),
) -> Path:
    """Write ``flight``'s state and commands to a new rosbag2 directory ``path`` (``storage``: sqlite3 or mcap)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore({"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}[typestore])
    t = store.types
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    odom_type, array_type = "nav_msgs/msg/Odometry", "std_msgs/msg/Float32MultiArray"
    R = rotations(flight.quaternion)
    q_ned = _quat(_NED @ R @ _FRD)
    p_ned = flight.position @ _NED.T
    v_body = np.einsum("kji,kj->ki", R, flight.velocity) @ _FRD.T
    w_body = flight.angular_velocity @ _FRD.T
    zeros36 = np.zeros(36)
    with Writer(Path(path), version=9, storage_plugin=plugin) as writer:
        odom = writer.add_connection(ODOMETRY_TOPIC, odom_type, typestore=store)
        motors = writer.add_connection(MOTORS_TOPIC, array_type, typestore=store)
        events = [(ts, 0, k) for k, ts in enumerate(flight.state_t)] + [
            (ts, 1, k) for k, ts in enumerate(flight.command_t)
        ]
        for ts, kind, k in sorted(events):
            ns = flight.t0_ns + round(ts * 1e9)
            stamp = t["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
            header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="odom")
            if kind == 0:
                pose = t["geometry_msgs/msg/Pose"](
                    position=t["geometry_msgs/msg/Point"](*p_ned[k]),
                    orientation=t["geometry_msgs/msg/Quaternion"](q_ned[k, 1], q_ned[k, 2], q_ned[k, 3], q_ned[k, 0]),
                )
                twist = t["geometry_msgs/msg/Twist"](
                    linear=t["geometry_msgs/msg/Vector3"](*v_body[k]),
                    angular=t["geometry_msgs/msg/Vector3"](*w_body[k]),
                )
                msg = t[odom_type](
                    header=header,
                    child_frame_id="base_link",
                    pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=zeros36),
                    twist=t["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=zeros36),
                )
                writer.write(odom, ns, store.serialize_cdr(msg, odom_type))
            else:
                values = (flight.command[k, list(order)] / max_rpm).astype(np.float32)
                layout = t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
                msg = t[array_type](layout=layout, data=values)
                writer.write(motors, ns, store.serialize_cdr(msg, array_type))
    return Path(path)


def _quat(R: np.ndarray) -> np.ndarray:
    from deploy.replay.flight import _matrix_to_quat

    return _matrix_to_quat(R)
