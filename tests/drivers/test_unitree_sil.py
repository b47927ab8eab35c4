"""End to end over real DDS: ``sim2real deploy`` (the runtime, unchanged: its stand-up ramp, the policy's hold and
its state machine, with launch/unitree_go2_sil.yaml) + drivers.unitree_bridge + drivers.sim_unitree (the simulated
Go2 on rt/lowcmd / rt/lowstate, checking every LowCmd's CRC), each a process on a random domain (loopback). The
policy is a freshly initialised Go2 legged-walk actor (one PPO iteration) with its last layer zeroed, so it holds
the default pose (no Go2 policy is trained in the tests). Before the run the test writes, straight onto Unitree's
topics, LowCmds and LowStates with a wrong CRC, and a JointCommand with a NaN onto the runtime's."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from deploy.articulated_wire import JointOrder, joint_command_msg
from deploy.msgs import Imu, JointCommand, JointState
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from sim.articulated.profile import load_profile
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]
LYING = [0.0, 1.2, -2.65] * 4  # hips 0, thighs 1.2 rad, calves folded (launch/sim_a1.yaml's start pose)
RATE_HZ = (
    200  # the robot's rate in this test (500 on a Go2): two 500 Hz Python loops beside the runtime overload 2 cores
)


def _stop(proc: subprocess.Popen) -> tuple[dict, str]:
    """SIGTERM, then the JSON counters the process prints at exit and its log."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    line = next((s for s in reversed(out.splitlines()) if s.startswith("{")), "{}")
    return json.loads(line), err


def _go2_hold_policy(root: Path) -> Path:
    """A Go2 legged-walk policy of the right layout (one tiny PPO iteration), last layer zeroed: action 0, i.e.
    joint targets = the default pose (as tests/deploy/conftest.py makes the A1's)."""
    import onnx
    import torch

    from policies.actor import load_checkpoint
    from policies.export import build_onnx, metadata_of
    from policies.train import train
    from policies.train_cfg import train_cfg

    cfg = train_cfg("legged-walk", "go2")
    cfg.seed, cfg.num_envs, cfg.max_iterations, cfg.save_interval = 0, 4, 1, 1
    cfg.ppo.num_steps_per_env = 8
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, root / "go2", progress=False)
    finally:
        torch.set_num_threads(threads)
    ck = load_checkpoint(root / "go2")
    w, b = ck.weights.layers[-1]
    ck.weights.layers[-1] = (np.zeros_like(w), np.zeros_like(b))
    path = root / "go2-hold.onnx"
    onnx.save(build_onnx(ck.weights, ck.action_spec, metadata_of(ck)), str(path))
    return path


def _sil_profile(root: Path) -> Path:
    data = yaml.safe_load((ROOT / "launch" / "unitree_go2_sil.yaml").read_text())
    data["robot"] = str(ROOT / "launch" / "robots" / "go2.yaml")
    data["recording"] = {"directory": str(root)}
    data["safety"] = {"common": {"max_state_age_s": 0.5}}  # three Python processes on 2 shared cores
    path = root / "unitree_go2_sil.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_deploy_stands_the_go2_up_through_the_bridge_and_bad_crcs_are_dropped_on_both_sides(tmp_path):
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic

    from deploy.msgs.unitree import LowCmd_, LowState_
    from drivers.unitree_bridge import WRITER_QOS
    from drivers.unitree_convert import LowCmdFrame, MotorTargets
    from drivers.unitree_crc import with_crc

    domain = random_domain()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    py, d = sys.executable, str(domain)
    sim = subprocess.Popen(
        [py, "-m", "drivers.sim_unitree", "--no-bridge", "--domain-id", d, "--rate", str(RATE_HZ), "--seconds", "90",
         "--seed", "3", "--start-pose", ",".join(map(str, LYING)), "--start-height", "0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    bridge = subprocess.Popen(
        [py, "-m", "drivers.unitree_bridge", "--config", "launch/unitree_go2_bridge.yaml", "--domain-id", d,
         "--rate", str(RATE_HZ), "--seconds", "90"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    operator = None
    try:
        policy, profile = _go2_hold_policy(tmp_path), _sil_profile(tmp_path)  # while the robot boots
        names = load_profile("go2").joints.names
        order = JointOrder(names)
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

            def measured() -> tuple[np.ndarray, np.ndarray]:
                return order.state(joints.latest())[:2]

            time.sleep(1.0)  # dropped limp from 0.1 m, the legs splay until they rest
            deadline = time.monotonic() + 10.0
            while np.abs(measured()[1]).max() > 0.02 and time.monotonic() < deadline:
                time.sleep(0.05)
            lying = measured()[0]
            # At rest the accelerometer reads gravity in the body frame: R(q)^T (0, 0, g) with R from the ROS
            # x, y, z, w quaternion the bridge made of Unitree's w, x, y, z (a wrong order fails this at any
            # resting attitude). The limp robot rests on its splayed legs, tilted by its drawn masses (< 30 deg).
            msg = imu.latest()
            q, a = msg.orientation, msg.linear_acceleration
            x, y, z, w = q.x, q.y, q.z, q.w
            up = np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])  # R^T e_z
            assert abs(x * x + y * y + z * z + w * w - 1.0) < 1e-6 and up[2] > math.cos(math.radians(30)), q
            np.testing.assert_allclose([a.x, a.y, a.z], 9.81 * up, atol=0.2)

            # A LowCmd that would stand the robot up with kp 60, its CRC off by one: dropped, no motion.
            frame = LowCmdFrame(12)
            default = np.array(load_profile("go2").joints.default_position_rad)
            frame.set(MotorTargets(default, np.zeros(12), np.zeros(12), np.full(12, 60.0), np.full(12, 3.0)))
            bad = frame.message()
            bad.crc ^= 1
            for _ in range(20):
                bad_cmd.write(bad)
                time.sleep(0.01)
            # 5 LowStates with a wrong CRC (claiming the robot stands level), and a runtime command with a NaN
            fake = with_crc(LowState_())
            fake.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
            fake.crc ^= 0x80000000
            for _ in range(5):
                bad_state.write(fake)
                time.sleep(0.01)
            nan = joint_command_msg(names, np.where(np.arange(12) == 2, np.nan, default), np.full(12, 20.0),
                                    np.full(12, 0.5), "policy", time.time_ns())  # fmt: skip
            nan.vehicle_id = "sim2real"
            cmd.publish(nan)
            time.sleep(0.3)
            assert np.abs(measured()[0] - lying).max() < 0.02, measured()[0] - lying

        operator = subprocess.Popen(
            [py, "-m", "deploy.operator", "--namespace", "/sim2real", "--script", "arm@0"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        run = subprocess.run(
            [py, "sim2real.py", "deploy", "--profile", str(profile), "--policy", str(policy), "--operator",
             "external", "--log", str(tmp_path / "run.mcap")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        time.sleep(0.5)  # the runtime is gone: the bridge damps on its own after its 0.2 s timeout
        sim_counts, sim_log = _stop(sim)
        bridge_counts, bridge_log = _stop(bridge)
    finally:
        for p in (sim, bridge, operator):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    out = run.stdout
    summary = json.loads(out[out.index("{") :]) if "{" in out else {}
    context = (summary.get("transitions"), run.stderr[-1500:], sim_counts, bridge_counts, bridge_log[-1500:])
    assert run.returncode == 0 and summary["end"] == "plan complete", context
    assert sim_counts["lowcmd_dropped_crc"] == 20 and "LowCmd dropped: CRC" in sim_log, context
    assert sim_counts["lowcmd_applied"] > 0.9 * 4.0 * RATE_HZ, context  # the bridge's writes through stand and hold
    # Stood up: lying, the base is at ~0.1 m; the profile's kp 20 (the runtime's stand-up and hold gains) holds the
    # 15 kg Go2 at 0.2-0.23 m, sagging below the default pose's 0.31 m (legged-walk's own PD: 0.23 m after 8 s).
    assert sim_counts["base_height_max_m"] > 0.16, context
    assert bridge_counts["lowstate_dropped_crc"] == 5 and bridge_counts["lowstate_refused"] == 0, context
    assert bridge_counts["refused"] == 1 and "is not finite" in bridge_log, context
    assert bridge_counts["damping_written"] > 0 and "damping (kp 0, kd 8)" in bridge_log, context
