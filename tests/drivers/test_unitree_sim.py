"""The simulated Go2's motor law and LowState (drivers/sim_unitree.py), stepped in this process: each term of
tau = kp (q* - q) + kd (dq* - dq) + tau_ff, PosStopF / VelStopF, mode 0, the envelope, and a LowState that carries
its CRC and a resting accelerometer's +g."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from drivers.unitree_convert import POS_STOP_F, VEL_STOP_F
from drivers.unitree_crc import crc_ok
from tests.domains import random_domain


@pytest.fixture(scope="module")
def sim():
    from cyclonedds.domain import DomainParticipant

    from deploy.transport import LOOPBACK_CONFIG, domains
    from drivers.sim_articulated import SimulatedArticulatedRobot
    from drivers.sim_unitree import SimGo2
    from sim.articulated.profile import load_profile
    from sim.randomization import RandomizationSpec

    domain_id = random_domain()
    robot = SimulatedArticulatedRobot(
        "legged-walk", seed=0, profile=load_profile("go2"), randomization=RandomizationSpec({})
    )
    release = domains.acquire(domain_id, LOOPBACK_CONFIG, robot)  # shared with a test's node on the same domain
    yield SimGo2(DomainParticipant(domain_id), robot)
    release()


def _command(q, dq=0.0, tau=0.0, kp=0.0, kd=0.0, mode=1.0) -> np.ndarray:
    return np.stack([np.broadcast_to(np.asarray(v, dtype=float), (12,)) for v in (mode, q, dq, tau, kp, kd)])


def _joints(sim) -> tuple[np.ndarray, np.ndarray]:
    e = sim.env.engine
    return e.qpos[0, sim.env.qadr].numpy().copy(), e.qvel[0, sim.env.dadr].numpy().copy()


def test_each_term_of_the_motor_law(sim):
    q, _ = _joints(sim)
    sim._physics_step(_command(q + 0.1, kp=20.0))  # position term only
    np.testing.assert_allclose(sim._tau, 2.0, atol=1e-9)
    sim._physics_step(_command(POS_STOP_F, tau=1.5, kp=20.0))  # PosStopF: no position term; feed-forward only
    np.testing.assert_allclose(sim._tau, 1.5, atol=1e-9)
    sim._physics_step(_command(POS_STOP_F, dq=0.5, kd=2.0))  # kd dq* explicit, -kd dq implicit (joint damping)
    np.testing.assert_allclose(sim._tau, 1.0 - 2.0 * _joints(sim)[1], atol=1e-9)
    sim._physics_step(_command(POS_STOP_F, dq=VEL_STOP_F, kd=2.0))  # VelStopF: no velocity term at all
    np.testing.assert_allclose(sim._tau, 0.0, atol=1e-12)
    sim._physics_step(_command(q, tau=3.0, kp=20.0, kd=1.0, mode=0.0))  # mode 0: the motor is off
    np.testing.assert_allclose(sim._tau, 0.0, atol=1e-12)
    sim._physics_step(None)  # no LowCmd yet
    np.testing.assert_allclose(sim._tau, 0.0, atol=1e-12)


def test_torque_is_clipped_to_the_motor_envelope(sim):
    q, _ = _joints(sim)
    sim._physics_step(_command(q + 1.0, kp=1000.0))  # asks for 1000 N m
    limit = (sim.env.actuators.effort_limit * sim.env.actuators.strength[0]).numpy()
    assert np.all(sim._tau <= limit + 1e-6) and np.all(sim._tau > 0.5 * limit)  # 23.5 N m nominal


def test_the_lowstate_carries_its_crc_the_motors_and_a_resting_accelerometer(sim):
    sim._place(None, None)  # standing start, motors off
    for _ in range(200):
        sim._physics_step(None)  # the limp robot settles on the ground
    msg = sim.lowstate()
    assert crc_ok(msg) and list(msg.head) == [0xFE, 0xEF]
    q, qd = _joints(sim)
    np.testing.assert_allclose([m.q for m in msg.motor_state[:12]], q, atol=1e-6)
    np.testing.assert_allclose([m.dq for m in msg.motor_state[:12]], qd, atol=1e-5)
    assert all(m.q == 0.0 for m in msg.motor_state[12:])  # slots without a motor
    quat = np.array(msg.imu_state.quaternion)
    assert abs(np.linalg.norm(quat) - 1.0) < 1e-6
    from deploy.observation import projected_gravity

    # at rest the accelerometer reads the specific force: -g in the body frame, i.e. +9.81 along the body's up
    expected = -9.81 * projected_gravity(quat)
    np.testing.assert_allclose(msg.imu_state.accelerometer, expected, atol=0.5)


def test_deploy_sil_robot_unitree_starts_the_simulated_go2_with_its_bridge():
    from deploy import cli
    from deploy.profile import load_deploy_profile

    root = Path(__file__).resolve().parents[2]
    profile = load_deploy_profile(root / "launch" / "unitree_go2_sil.yaml")
    cmd = cli.sil_command(profile, "unitree")
    assert cmd[cmd.index("-m") + 1] == "drivers.sim_unitree" and "--no-bridge" not in cmd and "--task" not in cmd
    assert cmd[cmd.index("--robot") + 1].endswith("go2.yaml")
    assert cmd[cmd.index("--namespace") + 1] == profile.transport.namespace
    assert (
        "--truth-twist" in cmd
    )  # the runtime scores the walk with the simulator's velocity (the policy never sees it)


def test_truth_twist_is_the_base_velocity_in_the_base_frame(sim, monkeypatch):
    """--truth-twist: a walking base (yawed 90 deg, moving +y in the world at 0.4 m/s) reads +x 0.4 m/s in base_link,
    received over DDS on the runtime's state/twist."""
    import contextlib

    import torch

    from deploy.msgs import TwistStamped
    from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
    from drivers.sim_unitree import truth_publisher

    e = sim.env.engine
    qpos, qvel = e.qpos[:1].clone(), torch.zeros_like(e.qvel[:1])
    qpos[0, 3:7] = torch.tensor([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)], dtype=qpos.dtype)
    qvel[0, 0:3] = torch.tensor([0.0, 0.4, 0.0], dtype=qvel.dtype)
    qvel[0, 5] = 0.3  # yaw rate, body frame
    e.set_state(torch.tensor([0]), qpos, qvel)
    domain = random_domain()
    topic = TransportConfig.from_mapping({"namespace": "/truth_test"}).topic("twist")
    monkeypatch.setenv("CYCLONEDDS_URI", LOOPBACK_CONFIG)
    with contextlib.ExitStack() as stack, Ros2Node("reader", domain_id=domain, config=LOOPBACK_CONFIG) as node:
        pub = truth_publisher(stack, "/truth_test", domain)
        sub = node.subscription(topic.name, TwistStamped, topic.qos)
        assert pub.wait_for_subscribers(1, 10.0)
        pub.publish(sim.truth_twist(123))
        assert sub.wait(5.0)
        msg = sub.latest()
    assert msg.header.frame_id == "base_link"
    v, w = msg.twist.linear, msg.twist.angular
    np.testing.assert_allclose([v.x, v.y, v.z], [0.4, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose([w.x, w.y, w.z], [0.0, 0.0, 0.3], atol=1e-6)


def test_bridge_forwards_the_newest_of_queued_lowstates(monkeypatch):
    """LowStates that queued while the bridge was descheduled: only the newest is forwarded (the older ones would
    carry its arrival stamp), the rest are counted as superseded."""
    from cyclonedds.domain import DomainParticipant

    from deploy.msgs import JointState
    from deploy.msgs.unitree import LowState_
    from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
    from drivers.unitree_bridge import UnitreeBridge
    from drivers.unitree_convert import load_bridge_options
    from drivers.unitree_crc import with_crc

    class Queued:
        def __init__(self, messages):
            self.messages = messages

        def take(self, n):
            return self.messages[:n]

    root = Path(__file__).resolve().parents[2]
    options, _ = load_bridge_options(str(root / "launch" / "unitree_go2_bridge.yaml"))
    domain = random_domain()
    monkeypatch.setenv("CYCLONEDDS_URI", LOOPBACK_CONFIG)
    transport = TransportConfig.from_mapping(None)
    states = []
    for k in range(3):
        msg = LowState_()
        msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
        for m in msg.motor_state[:12]:
            m.q = 0.1 * (k + 1)
        states.append(with_crc(msg))
    with Ros2Node("bridge_test", domain_id=domain, config=LOOPBACK_CONFIG) as node:
        topic = transport.topic("joint_states")
        sub = node.subscription(topic.name, JointState, topic.qos)
        bridge = UnitreeBridge(node, transport, options, DomainParticipant(domain))
        time.sleep(0.5)  # discovery (same participant: quick)
        bridge._on_lowstate(Queued(states))
        assert sub.wait(5.0)
        got = sub.latest()
    assert bridge.counts["lowstate"] == 3 and bridge.counts["lowstate_superseded"] == 2
    np.testing.assert_allclose(got.position, [0.3] * 12, atol=1e-6)
