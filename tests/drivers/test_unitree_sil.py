"""End to end over real DDS: drivers.sim_unitree (the simulated Go2 on rt/lowcmd / rt/lowstate, checking every
LowCmd's CRC) + drivers.unitree_bridge, each a process on a random domain (loopback), and this test as the runtime
(a scripted command stream on command/joints: the deploy plan's stand-up ramp from the measured pose to the
default pose, then hold) and as a saboteur writing LowCmds and LowStates with a wrong CRC straight onto Unitree's
topics."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from deploy.articulated_wire import JointOrder, joint_command_msg
from deploy.msgs import Imu, JointCommand, JointState
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from sim.articulated.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
LYING = [0.0, 1.2, -2.65] * 4  # hips 0, thighs 1.2 rad, calves folded (launch/sim_a1.yaml's start pose)
RATE_HZ = 200  # the robot's rate in this test (500 on a Go2): three 500 Hz Python loops overload 2 shared cores


def _stop(proc: subprocess.Popen) -> tuple[dict, str]:
    """SIGTERM, then the JSON counters the process prints at exit and its log."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    line = next((s for s in reversed(out.splitlines()) if s.startswith("{")), "{}")
    return json.loads(line), err


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def test_go2_stands_up_through_the_bridge_and_bad_crcs_are_dropped_on_both_sides(tmp_path):
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic

    from deploy.msgs.unitree import LowCmd_, LowState_
    from drivers.unitree_bridge import WRITER_QOS
    from drivers.unitree_convert import LowCmdFrame, MotorTargets
    from drivers.unitree_crc import with_crc

    domain = random.randint(1, 230)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    py, d = sys.executable, str(domain)
    sim = subprocess.Popen(
        [py, "-m", "drivers.sim_unitree", "--domain-id", d, "--rate", str(RATE_HZ), "--seconds", "60", "--seed", "3",
         "--start-pose", ",".join(map(str, LYING)), "--start-height", "0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    bridge = subprocess.Popen(
        [py, "-m", "drivers.unitree_bridge", "--config", "launch/unitree_go2_bridge.yaml", "--domain-id", d,
         "--rate", str(RATE_HZ), "--seconds", "60"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    profile = load_profile("go2")
    names, default = profile.joints.names, np.array(profile.joints.default_position_rad)
    kp, kd = np.full(12, profile.joints.kp_nm_per_rad), np.full(12, profile.joints.kd_nm_s_per_rad)
    order = JointOrder(names)
    try:
        with Ros2Node("unitree_test", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            t = TransportConfig.from_mapping(None).topic
            joints = node.subscription(t("joint_states").name, JointState, t("joint_states").qos)
            imu = node.subscription(t("imu").name, Imu, t("imu").qos)
            cmd = node.publisher(t("joint_command").name, JointCommand, t("joint_command").qos)
            robot = DomainParticipant(domain)
            bad_cmd = DataWriter(robot, Topic(robot, "rt/lowcmd", LowCmd_), WRITER_QOS)
            bad_state = DataWriter(robot, Topic(robot, "rt/lowstate", LowState_), WRITER_QOS)
            assert joints.wait(30.0), "no state/joints from the bridge"
            assert cmd.wait_for_subscribers(1, 10.0) and imu.wait(5.0)

            def measured() -> np.ndarray:
                return order.state(joints.latest())[0]

            deadline = time.monotonic() + 10.0  # dropped limp from 0.1 m, the legs splay until they rest
            time.sleep(1.0)
            while np.abs(order.state(joints.latest())[1]).max() > 0.02 and time.monotonic() < deadline:
                time.sleep(0.05)
            lying = measured()
            assert np.abs(lying[[1, 2, 4, 5, 7, 8, 10, 11]] - np.array(LYING)[[1, 2, 4, 5, 7, 8, 10, 11]]).max() < 0.3
            q = imu.latest().orientation
            # level (any yaw: the task draws one), through the bridge's w, x, y, z -> ROS x, y, z, w
            assert abs(q.x) < 0.02 and abs(q.y) < 0.02 and abs(q.w**2 + q.z**2 - 1.0) < 1e-3, q

            # 1. A LowCmd that would stand the robot up with kp 60, its CRC off by one: dropped, no motion.
            frame = LowCmdFrame(12)
            frame.set(MotorTargets(default, np.zeros(12), np.zeros(12), np.full(12, 60.0), np.full(12, 3.0)))
            bad = frame.message()
            bad.crc ^= 1
            for _ in range(20):
                bad_cmd.write(bad)
                time.sleep(0.01)
            time.sleep(0.3)
            assert np.abs(measured() - lying).max() < 0.02, measured() - lying
            # ... and 5 LowStates with a wrong CRC (claiming the robot stands): the bridge drops them.
            fake = with_crc(LowState_())
            fake.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
            fake.crc ^= 0x80000000
            for _ in range(5):
                bad_state.write(fake)
                time.sleep(0.01)

            # 2. The runtime's stand-up: 2 s from the measured pose to the default pose at 50 Hz, then hold 1 s;
            # one command with a NaN target in between is refused by the bridge.
            start = measured()
            t0 = time.monotonic()
            sent_nan = False
            while (elapsed := time.monotonic() - t0) < 3.0:
                target = start + _smoothstep(elapsed / 2.0) * (default - start)
                if elapsed > 2.5 and not sent_nan:
                    target, sent_nan = np.where(np.arange(12) == 2, np.nan, target), True
                msg = joint_command_msg(names, target, kp, kd, "policy", time.time_ns())
                msg.vehicle_id = "sim2real"
                cmd.publish(msg)
                time.sleep(0.02)
            standing = measured()
            sim_counts, sim_log = _stop(sim)  # the robot as it stands, still commanded
            # 3. The runtime falls silent: the bridge damps on its own after its 0.2 s timeout.
            time.sleep(0.5)
            bridge_counts, bridge_log = _stop(bridge)
    finally:
        for p in (sim, bridge):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    context = (sim_counts, bridge_counts, sim_log[-1500:], bridge_log[-1500:])
    print(context)
    assert sim_counts["lowcmd_dropped_crc"] == 20, context  # every corrupted LowCmd, no good one
    assert "LowCmd dropped: CRC" in sim_log
    assert sim_counts["lowcmd_applied"] > 0.9 * 2.5 * RATE_HZ, context  # the bridge's writes, at its rate
    # Standing: lying, the base is at ~0.1 m; the profile's kp 20 (the runtime's stand-up gains) holds the 15 kg
    # Go2 at 0.2-0.23 m, sagging below the default pose's 0.31 m (legged-walk's own PD: 0.23 m after 8 s).
    assert sim_counts["base_height_m"] > 0.16, context
    legs = [1, 2, 4, 5, 7, 8, 10, 11]  # thighs and calves
    assert np.abs(standing - default)[legs].max() < 0.5 * np.abs(lying - default)[legs].max(), standing - default
    assert bridge_counts["lowstate_dropped_crc"] == 5 and bridge_counts["lowstate_refused"] == 0, context
    assert bridge_counts["refused"] == 1 and "is not finite" in bridge_log, context
    assert bridge_counts["damping_written"] > 0 and "damping (kp 0, kd 8)" in bridge_log, context
