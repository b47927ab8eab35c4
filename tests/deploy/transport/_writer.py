"""Writer process for the writer-identity and hang tests.

``python -m tests.deploy.transport._writer TOPIC TAG SECONDS [PERIOD_S]`` publishes Imu on TOPIC (default QoS,
reliable) for SECONDS: message i has header.frame_id = TAG and header.stamp.sec = i; PERIOD_S between messages
(0: as fast as it can). Prints the number written. Domain and interface come from ROS_DOMAIN_ID and
CYCLONEDDS_URI. It exits early, with status 0, when its stdin closes (the test ended).
"""

from __future__ import annotations

import select
import sys
import time

from deploy.msgs import Imu, Time
from deploy.transport import Ros2Node


def main(topic: str, tag: str, seconds: float, period_s: float) -> int:
    written = 0
    with Ros2Node("test_writer") as node:
        pub = node.publisher(topic, Imu, "default")
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = Imu()
            msg.header.stamp = Time(sec=written, nanosec=0)
            msg.header.frame_id = tag
            pub.publish(msg)
            written += 1
            if period_s > 0 or written % 200 == 0:  # at full rate, look at stdin now and then only
                if select.select([sys.stdin], [], [], period_s)[0] and not sys.stdin.readline():
                    break
    print(written, flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], args[1], float(args[2]), float(args[3]) if len(args) > 3 else 0.001))
