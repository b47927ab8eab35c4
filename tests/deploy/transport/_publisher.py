"""Publisher process for the loopback tests: ``python -m tests.deploy.transport._publisher N``.

Publishes N Imu messages on /test/imu (reliable) once a subscriber matched; message i has
header.stamp.sec = i, frame_id = f"imu{i}", angular_velocity = (i, -i, 0.5 i). Domain and interface come from
ROS_DOMAIN_ID and CYCLONEDDS_URI.
"""

from __future__ import annotations

import sys
import time

from deploy.msgs import Imu, Time, Vector3
from deploy.transport import QosProfile, Ros2Node

#: Deep enough that the subscriber keeps every message even when it takes them late.
QOS = QosProfile(depth=100, reliability="reliable")


def main(count: int) -> int:
    with Ros2Node("test_publisher") as node:
        pub = node.publisher("/test/imu", Imu, QOS)
        if not pub.wait_for_subscribers(1, timeout_s=10.0):
            print("no subscriber", file=sys.stderr)
            return 2
        for i in range(count):
            msg = Imu()
            msg.header.stamp = Time(sec=i, nanosec=7)
            msg.header.frame_id = f"imu{i}"
            msg.angular_velocity = Vector3(float(i), float(-i), 0.5 * i)
            msg.orientation_covariance = [float(i)] * 9
            pub.publish(msg)
        time.sleep(0.5)  # let reliable retransmissions finish before the participant goes away
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
