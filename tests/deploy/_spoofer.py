"""A hostile process for the fault-injection tests: ``python -m tests.deploy._spoofer MODE NAMESPACE [DELAY_S]``.

Waits until the runtime has armed (its command writer appears) and DELAY_S seconds more, then creates its
writer (so the runtime cannot see it before) and, on the robot's ``state/pose``:

    far      a burst of 9 poses 1000 m away (10 ms apart)
    offset   for 3 s, every true pose it hears republished 0.5 m lower (a plausible fake)
    estop    5 ``true`` on ``safety/estop``

Prints ``injected <monotonic s>`` on stdout at the first fake message. Domain and interface come from
ROS_DOMAIN_ID and CYCLONEDDS_URI.
"""

from __future__ import annotations

import sys
import time

from deploy.msgs import Bool, Point, Pose, PoseStamped, Quaternion, make_header
from deploy.transport import Ros2Node, TransportConfig


def main(mode: str, namespace: str, delay_s: float) -> int:
    transport = TransportConfig.from_mapping({"namespace": namespace})
    pose, command = transport.topic("pose"), transport.topic("motor_command")
    with Ros2Node("spoofer", namespace=namespace) as node:
        truth = node.subscription(pose.name, PoseStamped, pose.qos)
        armed = node.subscription(command.name, command.msg_type, command.qos)
        # an e-stop button is connected long before it is pressed: its writer matches the runtime's reader first
        # (a writer created at the moment of injection loses its first samples to the discovery race)
        estop = transport.topic("estop")
        estop_pub = node.publisher(estop.name, Bool, estop.qos) if mode == "estop" else None
        if not armed.wait_for_publishers(1, timeout_s=60.0):
            print("the runtime never armed", file=sys.stderr)
            return 2
        time.sleep(delay_s)
        if estop_pub is not None:
            if not estop_pub.wait_for_subscribers(1, timeout_s=10.0):
                return 2
            print(f"injected {time.monotonic():.6f}", flush=True)
            for _ in range(5):
                estop_pub.publish(Bool(True))
                time.sleep(0.01)
            time.sleep(1.0)
            return 0
        truth.pin_current()  # the robot's writer only: never re-spoof our own fakes (a feedback flood)
        pub = node.publisher(pose.name, PoseStamped, pose.qos)
        if not pub.wait_for_subscribers(2, timeout_s=10.0):  # the runtime's reader and this process's own
            return 2
        if mode == "far":
            print(f"injected {time.monotonic():.6f}", flush=True)
            for _ in range(9):
                far = Pose(Point(1000.0, 1000.0, 1.0), Quaternion(0.0, 0.0, 0.0, 1.0))
                pub.publish(PoseStamped(make_header(time.time_ns(), "world"), far))  # ROS time, as the robot
                time.sleep(0.01)
        elif mode == "offset":
            first, end = True, time.monotonic() + 3.0
            while time.monotonic() < end:
                for msg in truth.take():
                    msg.pose.position.z -= 0.5
                    pub.publish(msg)
                    if first:
                        print(f"injected {time.monotonic():.6f}", flush=True)
                        first = False
                time.sleep(0.002)
        else:
            print(f"unknown mode {mode!r}: far, offset or estop", file=sys.stderr)
            return 2
        time.sleep(1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
