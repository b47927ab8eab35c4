"""Software-in-the-loop robot: a separate process speaking ROS 2 over real DDS on loopback."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from deploy.msgs import MotorCommand, PoseStamped, make_header
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from sim.quadrotor.params import QuadrotorParams

ROOT = Path(__file__).resolve().parents[2]


def test_simulated_robot_flies_on_commands_and_stops_when_they_stop():
    domain = random.randint(1, 230)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim_robot", "--seconds", "15", "--seed", "3"], cwd=ROOT, env=env
    )
    transport = TransportConfig.from_mapping(None)
    try:
        with Ros2Node("test_client", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            pose_t, cmd_t = transport.topic("pose"), transport.topic("motor_command")
            heights: list[float] = []
            poses = node.subscription(
                pose_t.name, PoseStamped, pose_t.qos, callback=lambda m: heights.append(m.pose.position.z)
            )
            commands = node.publisher(cmd_t.name, MotorCommand, cmd_t.qos)
            assert poses.wait_for_publishers(1, timeout_s=30.0), "the simulated robot did not come up"
            assert poses.wait(10.0)

            def height() -> float:
                return poses.latest().pose.position.z

            time.sleep(0.3)
            assert abs(height()) < 0.02  # resting on the ground, motors off
            stamp_age = time.time_ns() - (lambda s: s.sec * 10**9 + s.nanosec)(poses.latest().header.stamp)
            assert 0 <= stamp_age < 0.2e9  # stamps in ROS time (the system clock), fresh
            climb = 1.2 * QuadrotorParams().hover_rpm
            # commands for another vehicle (its namespace reached this one anyway) are rejected: it stays down
            t_end = time.monotonic() + 0.5
            while time.monotonic() < t_end:
                commands.publish(MotorCommand(make_header(time.monotonic_ns()), [climb] * 4, "cf9", "policy"))
                time.sleep(0.01)
            assert abs(height()) < 0.02, "obeyed another vehicle's commands"
            t_end = time.monotonic() + 0.7
            while time.monotonic() < t_end:  # its own id: the namespace's, by default
                commands.publish(MotorCommand(make_header(time.monotonic_ns()), [climb] * 4, "sim2real", "policy"))
                time.sleep(0.01)
            top = height()
            assert top > 0.2, f"climbed only to {top:.3f} m"
            # Commands stopped: after the 0.5 s timeout the motors stop and it falls back to the ground.
            t_stop = time.monotonic()
            while abs(height()) >= 0.02 and time.monotonic() - t_stop < 8.0:
                time.sleep(0.02)
            assert abs(height()) < 0.02, f"still at {height():.2f} m 8 s after the commands stopped"
            assert len(heights) > 150  # ~100 Hz for > 4 s; a starved VM delivered 213 once
            assert max(heights) >= top
    finally:
        proc.kill()
        proc.wait(timeout=10)
