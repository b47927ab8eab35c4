"""End to end through PX4's protocol: `sim2real deploy` (the runtime, unchanged) + drivers.px4_bridge +
drivers.fake_px4 (PX4 boot clock 5000 s off this computer's), each a process on one DDS domain, fly the exported
hover policy: take-off, hover, landing. The flight goes through offboard switching, arming, ActuatorMotors and the
clock mapping, or it does not happen."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.domains import random_domain
from tests.drivers._px4_client import ROOT, RPM_MAX, dds_env, start_fake_px4

POLICY = ROOT / "tests" / "data" / "hover_policy.onnx"


def write_profile(tmp_path, namespace: str, hover_s: float = 3.0):
    profile = {
        "name": "px4_sil",
        "robot_class": "quadrotor",
        "control_hz": 100,
        "robot": str(ROOT / "launch" / "robots" / "crazyflie2.yaml"),
        "action": {"interface": "rpm", "names": ["m1", "m2", "m3", "m4"]},
        "transport": {"namespace": namespace},
        "vehicle_id": "px4_sil",
        "safety": {"preset": "crazyflie", "common": {"max_state_age_s": 0.25, "arming_duration_s": 2.0}},
        "plan": {"height_m": 0.6, "climb_rate_m_s": 0.6, "hover_s": hover_s, "descent_rate_m_s": 0.5},
        "recording": {"directory": str(tmp_path)},
    }
    path = tmp_path / "px4_sil.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_deploy_flies_the_hover_policy_through_the_px4_bridge(tmp_path):
    domain = random_domain()
    namespace = f"/px4sil{domain}"
    env = dds_env(domain)
    px4 = start_fake_px4(domain, "--clock-offset-s", "5000", "--seed", "3")
    bridge_cmd = [sys.executable, "-m", "drivers.px4_bridge", "--namespace", namespace, "--vehicle-id", "px4_sil"]
    bridge_cmd += ["--rpm-max", str(RPM_MAX), "--seconds", "120"]
    bridge = subprocess.Popen(bridge_cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    operator = subprocess.Popen(
        [sys.executable, "-m", "deploy.operator", "--namespace", namespace, "--script", "arm@0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(write_profile(tmp_path, namespace))]
    cmd += ["--policy", str(POLICY), "--operator", "external", "--log", str(tmp_path / "run.mcap")]
    try:
        run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    finally:
        for p in (operator, bridge, px4):
            p.terminate()
        outs = {name: p.communicate(timeout=10)[1] for name, p in (("bridge", bridge), ("px4", px4))}
        operator.wait(10)
    out = run.stdout
    summary = json.loads(out[out.index("{") :]) if "{" in out else {}
    context = (summary.get("transitions"), run.stderr[-2000:], outs["bridge"][-1500:], outs["px4"][-1500:])
    assert run.returncode == 0 and summary.get("end") == "plan complete", context
    print("hover RMS", summary["tracking"]["hover_rms_m"])
    assert summary["tracking"]["hover_rms_m"] < 0.1, context
    # the flight went through PX4's protocol: switch to offboard, arm, land, disarm
    assert "mode OFFBOARD (DO_SET_MODE)" in outs["px4"] and "armed (arm command)" in outs["px4"], context
    assert "disarmed" in outs["px4"].split("armed (arm command)")[1], context


def test_runtime_killed_in_flight_the_bridge_hands_over_and_px4_lands(tmp_path):
    """The deploy process dies in flight: after 0.5 s without commands the bridge stops the setpoints and the
    keep-alive and sends NAV_LAND; PX4 (the fake) lands with its own controller and disarms on the ground."""
    import time

    domain = random_domain()
    namespace = f"/px4kill{domain}"
    env = dds_env(domain)
    px4 = start_fake_px4(domain, "--seed", "3")
    bridge_cmd = [sys.executable, "-m", "drivers.px4_bridge", "--namespace", namespace, "--vehicle-id", "px4_sil"]
    bridge = subprocess.Popen(
        [*bridge_cmd, "--rpm-max", str(RPM_MAX)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    operator = subprocess.Popen(
        [sys.executable, "-m", "deploy.operator", "--namespace", namespace, "--script", "arm@0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(write_profile(tmp_path, namespace, 20.0))]
    cmd += ["--policy", str(POLICY), "--operator", "external", "--log", str(tmp_path / "run.mcap")]
    deploy = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from deploy.msgs import PoseStamped
        from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig

        topic = TransportConfig.from_mapping({"namespace": namespace}).topic("pose")
        with Ros2Node("watcher", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            poses = node.subscription(topic.name, PoseStamped, topic.qos)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline:  # until the policy has climbed
                msg = poses.latest()
                if msg is not None and msg.pose.position.z > 0.45:
                    break
                time.sleep(0.05)
        deploy.kill()
        deploy.wait(10)
        time.sleep(5.0)  # 0.5 s, hold 1 s, descend ~0.6 m at 0.3 m/s, auto disarm after 0.5 s
    finally:
        for p in (operator, bridge, px4):
            p.terminate()
        outs = {name: p.communicate(timeout=10)[1] for name, p in (("bridge", bridge), ("px4", px4))}
        operator.wait(10)
    log = outs["px4"]
    assert "armed (arm command)" in log, log[-2000:]
    after = log.split("armed (arm command)")[1]
    assert "mode AUTO_LAND (NAV_LAND) at " in after, (log[-2000:], outs["bridge"][-1500:])
    height = float(after.split("mode AUTO_LAND (NAV_LAND) at ")[1].split(" m")[0])
    assert height > 0.3, "not flying when the runtime died, or fell before the hand-over"
    assert "disarmed (landed (auto disarm))" in after.split("AUTO_LAND")[1], log[-2000:]
    assert "runtime commands stopped" in outs["bridge"]
