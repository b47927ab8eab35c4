"""The pybullet legged foreign SIL robot (drivers/foreign_sil/pybullet_legged.py): the stand-up against the
project's MuJoCo robot, joints by name, the motor law, the base frames, the wire between processes and the deploy
command that starts it."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.domains import random_domain

pytest.importorskip("pybullet")

from deploy.articulated_wire import twist_msg
from drivers.foreign_sil.pybullet_legged import PybulletLegged, pd_torque, saturate
from sim.articulated.profile import load_profile
from tests.drivers._px4_client import dds_env

ROOT = Path(__file__).resolve().parents[2]
ROBOTS = ROOT / "launch" / "robots"
LYING = np.array([0.0, 1.2, -2.65] * 4)  # launch/sim_a1.yaml's sil start pose: on the belly, legs folded

#: Base height (m) after the scripted stand-up below, measured on the project's MuJoCo robot
#: (drivers.sim_articulated.SimulatedArticulatedRobot, task legged-walk, seed 0, same gains and timing), 2026-12-05.
MUJOCO_STAND_HEIGHT_M = {"a1": 0.2898, "go2": 0.3071}


def stand_up(robot: PybulletLegged, kp: float, kd: float) -> None:
    """Lying (0.5 s limp), targets interpolated to the default pose over 1 s, held 1 s (as the deploy plan's
    scripted stand, stiffer so the height is the pose's, not the sag's)."""
    j = robot.profile.joints.dim
    robot.place(LYING, 0.1)
    robot.limp()
    for _ in range(25):
        robot.step()
    q0, _ = robot.joint_state()
    default, z = np.asarray(robot.profile.joints.default_position_rad), np.zeros(j)
    for k in range(100):
        a = min(1.0, (k + 1) / 50)
        robot.command(q0 + (default - q0) * a, z, np.full(j, kp), np.full(j, kd), z)
        robot.step()


@pytest.mark.parametrize("name", sorted(MUJOCO_STAND_HEIGHT_M))
def test_scripted_stand_up_reaches_the_mujoco_standing_height(name):
    robot = PybulletLegged(load_profile(ROBOTS / f"{name}.yaml"), physics_hz=1000.0)  # Kd 4 needs 1 kHz here
    stand_up(robot, kp=150.0, kd=4.0)
    pos, quat, velocity, gyro = robot.base_state()
    tilt = 2 * math.degrees(math.asin(min(1.0, float(np.linalg.norm(quat[1:3])))))
    assert abs(pos[2] - MUJOCO_STAND_HEIGHT_M[name]) < 0.01, pos  # measured: a1 0.2913, go2 0.3079
    assert tilt < 2.0 and np.abs(velocity).max() < 0.01 and np.abs(gyro).max() < 0.01, (quat, velocity, gyro)
    q, _ = robot.joint_state()
    assert np.abs(q - robot.profile.joints.default_position_rad).max() < 0.1


def _held_in_the_air(physics_hz: float = 1000.0) -> PybulletLegged:
    """A1 with its base welded 0.6 m above the ground, legs at the default pose."""
    robot = PybulletLegged(load_profile(ROBOTS / "a1.yaml"), physics_hz=physics_hz)
    robot.place(np.asarray(robot.profile.joints.default_position_rad), 0.6)
    c = robot.client
    pos, orn = c.getBasePositionAndOrientation(robot.body)
    c.createConstraint(robot.body, -1, -1, -1, c.JOINT_FIXED, [0, 0, 0], [0, 0, 0], pos, childFrameOrientation=orn)
    return robot


def test_a_command_to_one_named_joint_moves_that_joint_only():
    robot = _held_in_the_air()
    names = robot.profile.joints.names
    j, moved = len(names), names.index("RL_upper_joint")
    q0, _ = robot.joint_state()
    target = q0.copy()
    target[moved] += 0.3
    z = np.zeros(j)
    robot.command(target, z, np.full(j, 150.0), np.full(j, 4.0), z)  # stiff: the legs' weight sags < 0.01 rad
    for _ in range(25):
        robot.step()
    q, _ = robot.joint_state()
    assert abs(q[moved] - q0[moved] - 0.3) < 0.03, q - q0
    assert np.abs(np.delete(q - q0, moved)).max() < 0.01, q - q0
    # and pybullet's own joint of that name is the one that moved
    index = robot.joint_ids[moved]
    assert robot.client.getJointInfo(robot.body, index)[1].decode() == "RL_upper_joint"
    assert abs(robot.client.getJointState(robot.body, index)[0] - q[moved]) < 1e-12


def test_a_wrong_joint_name_is_refused_naming_it():
    profile = load_profile(ROBOTS / "a1.yaml")
    bad = replace(profile, joints=replace(profile.joints, names=("FR_hip", *profile.joints.names[1:])))
    with pytest.raises(ValueError, match=r"no joints named \['FR_hip'\].*FR_hip_joint"):
        PybulletLegged(bad)


def test_pd_law_and_motor_limits_by_hand():
    tau = pd_torque(np.array([1.0, 0.0]), np.array([0.5, 0.0]), np.array([2.0, -1.0]), np.array([20.0, 10.0]),
                    np.array([0.5, 2.0]), np.array([0.9, 0.1]), np.array([0.1, 3.0]))  # fmt: skip
    assert np.allclose(tau, [2.0 + 20.0 * 0.1 + 0.5 * 0.4, -1.0 - 1.0 - 6.0])  # 4.2, -8.0
    effort, stall, dq_max = np.full(3, 33.5), np.full(3, 33.5), np.full(3, 21.0)
    out = saturate(np.array([100.0, 100.0, -100.0]), np.array([0.0, 10.5, 10.5]), effort, stall, dq_max)
    # at 10.5 rad/s a 33.5 N m / 21 rad/s motor gives at most 33.5 (1 - 0.5) = 16.75 N m forward, 33.5 braking
    assert np.allclose(out, [33.5, 16.75, -33.5])
    assert np.allclose(saturate(np.array([50.0, -50.0]), np.zeros(2), np.full(2, 20.0), None, None), [20.0, -20.0])


def test_the_simulated_motors_apply_the_pd_law_at_the_physics_rate():
    robot = _held_in_the_air(physics_hz=50.0)  # one physics step per control period: the law's inputs are known
    j = robot.profile.joints.dim
    q, dq = robot.joint_state()
    rng = np.random.default_rng(0)
    q_t, dq_t, tau_ff = q + rng.uniform(-0.2, 0.2, j), rng.uniform(-1, 1, j), rng.uniform(-1, 1, j)
    kp, kd = np.full(j, 20.0), np.full(j, 0.5)
    robot.command(q_t, dq_t, kp, kd, tau_ff)
    robot.step()
    assert np.allclose(robot.tau, tau_ff + kp * (q_t - q) + kd * (dq_t - dq), atol=1e-9)


def test_limp_motors_let_the_legs_swing_pybullets_own_velocity_motors_are_off():
    robot = _held_in_the_air()
    robot.limp()
    q0, _ = robot.joint_state()
    for _ in range(10):
        robot.step()
    q, _ = robot.joint_state()
    assert np.abs(robot.tau).max() == 0.0
    assert np.abs(q - q0).max() > 0.1, q - q0  # pybullet's default velocity motors would hold them


def test_base_velocity_is_the_base_link_origin_and_the_twist_is_in_the_base_frame():
    robot = PybulletLegged(load_profile(ROBOTS / "a1.yaml"), physics_hz=1000.0)
    robot.client.setGravity(0.0, 0.0, 0.0)
    yaw = math.pi / 2
    robot.place(
        np.asarray(robot.profile.joints.default_position_rad), 1.0, (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    )
    robot.client.resetBaseVelocity(robot.body, [1.0, 0.0, 0.0], [0.0, 0.0, 2.0])  # centre of mass, world
    p0, quat, v, gyro = robot.base_state()
    robot.step()  # 20 physics steps of 1 ms, limp, no gravity: a free spin
    p1, *_ = robot.base_state()
    assert np.allclose(gyro, [0.0, 0.0, 2.0], atol=1e-9)  # about body z = world z
    # the link origin is offset from the centre of mass: its velocity differs from (1, 0, 0) by w x r
    assert np.linalg.norm(v - [1.0, 0.0, 0.0]) > 1e-3
    assert np.allclose((p1 - p0) / 0.02, v, atol=0.02), ((p1 - p0) / 0.02, v)
    msg = twist_msg(quat, v, gyro, 0)
    assert msg.header.frame_id == "base_link"
    # yawed +90 deg: world +x is the base's -y
    linear = np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z])
    assert np.allclose(linear, [v[1], -v[0], v[2]], atol=1e-9)


def test_the_node_speaks_the_topics_between_processes():
    """The node as its own process on a loopback DDS domain: joint states by name, IMU, twist; a command moves the
    named joints (the robot lies on the ground, motors limp at launch)."""
    from deploy.articulated_wire import JointOrder, joint_command_msg
    from deploy.msgs import Imu, JointCommand, JointState, TwistStamped
    from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig

    domain = random_domain()
    namespace = f"/pbl{domain}"
    env = dds_env(domain)
    start = ",".join(str(v) for v in LYING)
    cmd = [sys.executable, "-m", "drivers.foreign_sil.pybullet_legged", "--seconds", "15", "--namespace", namespace,
           "--start-pose", start, "--start-height", "0.1", "--vehicle-id", "a1"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        transport = TransportConfig.from_mapping({"namespace": namespace})
        profile = load_profile(ROBOTS / "a1.yaml")
        order = JointOrder(profile.joints.names)
        got: dict[str, list] = {"joint_states": [], "imu": [], "twist": []}
        with Ros2Node("test_reader", namespace=namespace, domain_id=domain, config=LOOPBACK_CONFIG) as node:
            types = {"joint_states": JointState, "imu": Imu, "twist": TwistStamped}
            subs = [node.subscription(transport.topic(k).name, types[k], transport.topic(k).qos,
                                      callback=got[k].append) for k in got]  # fmt: skip
            t = transport.topic("joint_command")
            pub = node.publisher(t.name, JointCommand, t.qos)
            deadline = time.monotonic() + 20
            while not got["joint_states"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert got["joint_states"] and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
            q_lying, _, _ = order.state(got["joint_states"][-1])
            assert np.abs(q_lying - LYING).max() < 0.3
            # a stand command in reversed joint order: the names, not the order, carry it
            names = list(reversed(profile.joints.names))
            target = np.asarray(profile.joints.default_position_rad)[::-1]
            msg = joint_command_msg(names, target, np.full(12, 20.0), np.full(12, 0.5), "policy", time.time_ns())
            msg.vehicle_id = "a1"
            for _ in range(100):  # 2 s at 50 Hz
                pub.publish(msg)
                time.sleep(0.02)
            q_now, _, _ = order.state(got["joint_states"][-1])
            del subs
        assert got["imu"] and got["twist"] and got["twist"][-1].header.frame_id == "base_link"
        err = np.abs(q_now - np.asarray(profile.joints.default_position_rad))
        # stood up, by name (the rear calves sag ~0.46 rad under the A1's weight at Kp 20; a joint that took another
        # joint's target would be off by more than 1 rad)
        assert err.max() < 0.55 and np.abs(q_now - q_lying).max() > 0.8, (q_now, q_lying)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_deploy_starts_pybullet_for_a_legged_profile_only():
    from deploy import cli
    from deploy.profile import load_deploy_profile

    profile = load_deploy_profile(ROOT / "launch" / "sim_a1.yaml")
    cmd = cli.sil_command(profile, "pybullet")
    assert cmd[cmd.index("-m") + 1] == "drivers.foreign_sil.pybullet_legged" and "--task" not in cmd
    assert cmd[cmd.index("--robot") + 1].endswith("a1.yaml") and "--start-pose" in cmd and "--start-height" in cmd
    assert cli.sil_command(profile)[cli.sil_command(profile).index("-m") + 1] == "drivers.sim_articulated_node"
    with pytest.raises(ValueError, match="no foreign SIL robot 'pybullet' for robot class 'arm'"):
        cli.sil_command(load_deploy_profile(ROOT / "launch" / "sim_franka.yaml"), "pybullet")
    with pytest.raises(ValueError, match="no foreign SIL robot 'rotorpy' for robot class 'legged'"):
        cli.sil_command(profile, "rotorpy")
