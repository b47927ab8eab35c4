"""DDS round-trip latency over loopback between two processes (ping-pong), printed as JSON.

    .venv/bin/python benchmarks/dds_roundtrip.py [--count 2000] [--warmup 200] [--qos default]

The main process publishes std_msgs/Header pings on /bench/ping (stamp = send time); a child process
echoes each one on /bench/pong; the main process waits for the echo (WaitSet) and records the round
trip. Both sides use the Cyclone DDS loopback configuration and a random ROS_DOMAIN_ID.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.msgs import Header, time_from_ns
from deploy.transport import LOOPBACK_CONFIG, Ros2Node


def echo(domain_id: int, qos: str) -> None:
    with Ros2Node("bench_echo", domain_id=domain_id, config=LOOPBACK_CONFIG) as node:
        sub = node.subscription("/bench/ping", Header, qos)
        pub = node.publisher("/bench/pong", Header, qos)
        while True:
            if not sub.wait(10.0):
                return  # the pinger is gone
            for msg in sub.take():
                if msg.frame_id == "stop":
                    return
                pub.publish(msg)


def ping(count: int, warmup: int, qos: str) -> dict[str, object]:
    domain_id = random.randint(1, 230)
    child = subprocess.Popen(
        [sys.executable, __file__, "--echo", str(domain_id), "--qos", qos],
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
    )
    try:
        with Ros2Node("bench_ping", domain_id=domain_id, config=LOOPBACK_CONFIG) as node:
            pub = node.publisher("/bench/ping", Header, qos)
            sub = node.subscription("/bench/pong", Header, qos)
            if not (pub.wait_for_subscribers(1, 15.0) and sub.wait_for_publishers(1, 15.0)):
                raise RuntimeError("echo process did not match within 15 s")
            rtts_us: list[float] = []
            lost = 0
            for i in range(warmup + count):
                t0 = time.perf_counter_ns()
                pub.publish(Header(time_from_ns(t0), str(i)))
                got = False
                while sub.wait(1.0):
                    if any(m.frame_id == str(i) for m in sub.take()):
                        got = True
                        break
                t1 = time.perf_counter_ns()
                if not got:
                    lost += 1
                elif i >= warmup:
                    rtts_us.append((t1 - t0) / 1e3)
            pub.publish(Header(frame_id="stop"))
            time.sleep(0.1)
    finally:
        child.wait(timeout=15)
    rtts_us.sort()

    def pct(p: float) -> float:
        return round(rtts_us[min(len(rtts_us) - 1, int(p / 100 * len(rtts_us)))], 1)

    return {
        "benchmark": "dds_roundtrip",
        "message": "std_msgs/Header",
        "qos": qos,
        "transport": "Cyclone DDS (cyclonedds-python), loopback, 2 processes",
        "count": len(rtts_us),
        "lost": lost,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": round(rtts_us[-1], 1),
        "mean_us": round(sum(rtts_us) / len(rtts_us), 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--qos", default="default", choices=["default", "sensor_data"])
    parser.add_argument("--echo", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo is not None:
        echo(args.echo, args.qos)
        return
    print(json.dumps(ping(args.count, args.warmup, args.qos)))


if __name__ == "__main__":
    main()
