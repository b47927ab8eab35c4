"""What every bridge publishes on the runtime's side: ``state/pose``, ``state/twist``, ``state/odom`` and
``state/battery`` of the topic table, in the project's frames (world ENU, body FLU) and stamped in ROS time by the
bridge (docs/runtime.md, "Time"). One place, so the three bridges (PX4, MAVLink, Crazyflie) cannot drift apart in
frame ids or layout.

Twist by ROS convention (:mod:`deploy.state_wire`): ``state/twist`` and the Odometry's twist carry linear and
angular velocity in the body frame FLU (frame ``base_link``); the bridges hand in the autopilot's world-frame
velocity and it is rotated here with the same attitude that goes out in the pose. The runtime reads either
``pose`` + ``twist`` or ``odom`` (deploy profile ``state: {input: ...}``); a bridge publishes both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deploy.msgs import BatteryState, Odometry, PoseStamped, TwistStamped
from deploy.state_wire import state_messages
from deploy.transport import Ros2Node, TransportConfig


class StateOut:
    """The state publishers of one vehicle (its transport table)."""

    def __init__(self, node: Ros2Node, transport: TransportConfig) -> None:
        pose, twist, odom = transport.topic("pose"), transport.topic("twist"), transport.topic("odom")
        battery = transport.topic("battery")
        self.pose_pub = node.publisher(pose.name, PoseStamped, pose.qos)
        self.twist_pub = node.publisher(twist.name, TwistStamped, twist.qos)
        self.odom_pub = node.publisher(odom.name, Odometry, odom.qos)
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
        and finite, the twist and the odometry (velocity (3,) WORLD m/s, rotated into the body frame here; rates
        (3,) body FLU rad/s), all under one stamp; not without a usable attitude to rotate the velocity by."""
        has_twist = velocity is not None and rates is not None
        finite = has_twist and np.isfinite(velocity).all() and np.isfinite(rates).all()
        finite = finite and np.isfinite(quat_wxyz).all() and float(np.linalg.norm(quat_wxyz)) > 0.5  # to rotate by
        pose, twist, odom = state_messages(
            stamp_ns, position, quat_wxyz, velocity if finite else (0.0,) * 3, rates if finite else (0.0,) * 3
        )
        self.pose_pub.publish(pose)
        if finite:
            self.twist_pub.publish(twist)
            self.odom_pub.publish(odom)

    def publish_battery(self, msg: BatteryState) -> None:
        self.battery_pub.publish(msg)
