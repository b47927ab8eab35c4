"""What every bridge publishes on the runtime's side: ``state/pose``, ``state/twist`` and ``state/battery`` of the
topic table, in the project's frames (world ENU, body FLU) and stamped in ROS time by the bridge (docs/runtime.md,
"Time"). One place, so the three bridges (PX4, MAVLink, Crazyflie) cannot drift apart in frame ids or layout.

Twist convention of the topic table: ``linear`` world-frame velocity (m/s), ``angular`` body rates FLU (rad/s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deploy.msgs import (
    BatteryState,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    Twist,
    TwistStamped,
    Vector3,
    make_header,
)
from deploy.transport import Ros2Node, TransportConfig

WORLD_FRAME = "world"


class StateOut:
    """The state publishers of one vehicle (its transport table)."""

    def __init__(self, node: Ros2Node, transport: TransportConfig) -> None:
        pose, twist, battery = transport.topic("pose"), transport.topic("twist"), transport.topic("battery")
        self.pose_pub = node.publisher(pose.name, PoseStamped, pose.qos)
        self.twist_pub = node.publisher(twist.name, TwistStamped, twist.qos)
        self.battery_pub = node.publisher(battery.name, BatteryState, battery.qos)

    def publish(
        self,
        stamp_ns: int,
        position: Sequence[float],
        quat_wxyz: Sequence[float],
        velocity: Sequence[float] | None = None,
        rates: Sequence[float] | None = None,
    ) -> None:
        """Pose (position (3,) world m, quaternion (w, x, y, z) body FLU -> world ENU) and, when both are given
        and finite, the twist (velocity (3,) world m/s, rates (3,) body FLU rad/s), under one header."""
        header = make_header(stamp_ns, WORLD_FRAME)
        w, x, y, z = (float(v) for v in quat_wxyz)
        self.pose_pub.publish(PoseStamped(header, Pose(Point(*map(float, position)), Quaternion(x, y, z, w))))
        if velocity is not None and rates is not None and np.isfinite(velocity).all() and np.isfinite(rates).all():
            self.twist_pub.publish(
                TwistStamped(header, Twist(Vector3(*map(float, velocity)), Vector3(*map(float, rates))))
            )

    def publish_battery(self, msg: BatteryState) -> None:
        self.battery_pub.publish(msg)
