"""Software-in-the-loop robot: a separate process speaking ROS 2 over real DDS on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.msgs import MotorCommand, PoseStamped, make_header
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from sim.quadrotor.params import QuadrotorParams
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]


def test_simulated_robot_flies_on_commands_and_stops_when_they_stop():
    domain = random_domain()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    # Open-loop commands: the ideal vehicle (at a fixed command the default's imperfect one may not lift, or tip)
    ideal = ROOT / "launch" / "randomization" / "crazyflie2_base.yaml"
    cmd = [sys.executable, "-m", "drivers.sim_robot", "--seconds", "15", "--seed", "3", "--randomization", str(ideal)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
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


def test_physics_time_keeps_pace_with_the_clock_and_stamps_each_state_with_it():
    """A late call runs the due steps back to back (the motors hold the last command); a stall longer than
    MAX_CATCH_UP steps is given up; every state is stamped with its physics time, so stamps never say more (or
    less) time passed than the vehicle flew. Before, a late call advanced one step and stamped the send time."""
    from drivers.sim_robot import MAX_CATCH_UP, SimulatedQuadrotor

    domain = random_domain()
    transport = TransportConfig.from_mapping({"namespace": f"/stamps{domain}"})
    with Ros2Node("sim", domain_id=domain, config=LOOPBACK_CONFIG, namespace=transport.namespace) as node:
        robot = SimulatedQuadrotor(node, transport, seed=0)
        robot.clock.budget_s = 10.0  # the schedule below, not this machine's speed, decides the steps
        pose_t = transport.topic("pose")
        poses = node.subscription(pose_t.name, PoseStamped, pose_t.qos)
        poses.keep_all()
        dt = robot.cfg.control_dt
        stamps, steps = [], []
        # on time, on time, 2.5 periods late (3 steps due), on time, then a stall of 30 periods
        for now in (0.0, dt, 3.5 * dt, 5.0 * dt, 35.0 * dt, 36.0 * dt):
            robot.step(100.0 + now)
            steps.append(robot.steps)
            deadline = time.monotonic() + 2.0
            while len(stamps) < len(steps) and time.monotonic() < deadline:
                stamps += [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in poses.drain()]
                time.sleep(0.005)
        assert steps == [1, 2, 4, 6, 6 + MAX_CATCH_UP, 7 + MAX_CATCH_UP]
        assert robot.clock.dropped_s == pytest.approx((30 - MAX_CATCH_UP) * dt)  # 30 steps due, 10 run
        gaps = np.diff(stamps) / 1e9
        assert gaps == pytest.approx([dt, 2 * dt, 2 * dt, 30 * dt, dt], abs=1e-6)  # the stall: 10 flown + 20 given up
        physics = np.diff(steps) * dt  # what the vehicle flew between the states
        assert gaps[:3] == pytest.approx(physics[:3], abs=1e-6) and gaps[4] == pytest.approx(physics[4], abs=1e-6)


def test_a_simulator_slower_than_real_time_gives_up_physics_time_instead_of_falling_behind(monkeypatch):
    """Catching up stops after the compute budget (half a period by default): the rest of the due steps is given up,
    so a slow simulator freezes for that long instead of spiralling ever further behind the clock. The compute clock
    is a fake one that each step moves by 3 ms (a real sleep overshoots on a loaded machine: the count then varies)."""
    import drivers.vehicle
    from drivers.vehicle import PhysicsClock

    compute = [0.0]
    fake_time = type("FakeTime", (), {"monotonic": staticmethod(lambda: compute[0]), "time_ns": time.time_ns})
    monkeypatch.setattr(drivers.vehicle, "time", fake_time)
    clock, steps = PhysicsClock(0.01, max_catch_up=10, budget_s=0.004), 0

    def slow_step() -> None:
        nonlocal steps
        compute[0] += 0.003  # 3 ms a step: two fit the 4 ms budget, not three
        steps += 1

    assert clock.advance(100.0, steps, slow_step) == 1
    first = clock.stamp_ns(steps)
    ran = clock.advance(100.05, steps, slow_step)  # 5 steps due: two run, three given up
    assert ran == 2 and steps == 3 and clock.dropped_s == pytest.approx(0.03)
    assert (clock.stamp_ns(steps) - first) / 1e9 == pytest.approx(0.05)  # the clock's time: 0.02 s flown, 0.03 frozen
    assert clock.advance(100.06, steps, slow_step) == 1  # back in pace
