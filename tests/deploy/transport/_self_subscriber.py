"""A node that publishes a topic it also subscribes to, while other processes publish it: the write hang.

``python -m tests.deploy.transport._self_subscriber TOPIC MODE FOREIGN SECONDS`` with MODE ``take`` (no callback,
never taken) or ``callback``: waits for FOREIGN writers of other processes, then publishes Imu on TOPIC (default
QoS) for SECONDS and prints JSON {"writes", "max_write_s", "foreign", "received"}. A write that never returns
ends the process after SECONDS + 20 s with the stacks of all threads on stderr and status 1.
"""

from __future__ import annotations

import faulthandler
import json
import sys
import time

from deploy.msgs import Imu
from deploy.transport import Ros2Node, foreign_writers


def main(topic: str, mode: str, foreign: int, seconds: float) -> int:
    faulthandler.dump_traceback_later(seconds + 20.0, exit=True)  # a thread-free watchdog: the GIL may be held
    received = []
    with Ros2Node("self_subscriber") as node:
        pub = node.publisher(topic, Imu, "default")
        sub = node.subscription(topic, Imu, "default", callback=received.append if mode == "callback" else None)
        deadline = time.monotonic() + 15.0
        while len(foreign_writers(sub)) < foreign:
            if time.monotonic() > deadline:
                print(f"only {len(foreign_writers(sub))} of {foreign} foreign writers matched", file=sys.stderr)
                return 2
            time.sleep(0.01)
        writes, max_write_s = 0, 0.0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            pub.publish(Imu())
            max_write_s = max(max_write_s, time.monotonic() - t0)
            writes += 1
        others = [str(w) for w in foreign_writers(sub)]
        print(json.dumps({"writes": writes, "max_write_s": max_write_s, "foreign": others, "received": len(received)}))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], args[1], int(args[2]), float(args[3])))
