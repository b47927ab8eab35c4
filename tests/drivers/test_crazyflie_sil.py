"""A ctbr flight through the Crazyflie bridge: drivers.fake_crazyflie (CRTP over UDP on 127.0.0.1, boot clock
7000 s off, launch/crazyflie_bridge.yaml's thrust curve) + drivers.crazyflie_bridge (cflib's own UDP driver, the
same options file), each a process; the test stands in for the runtime and publishes RateThrustCommand on
command/rates the way the runtime does after its safety layer (``arming``: minimum thrust, zero rates; then
``policy``; then ``fallback``; then ``stop``), from a small controller on state/pose and state/twist: height PID ->
collective thrust, attitude (levelling towards a weak position hold) -> body rates. Through the thrust unlock,
stabMode rate, RPYT setpoints, the fake's rate loop and the high-level land.

Measured on the 2-core machine: height RMS 6-16 mm (7 runs) over the last 2 s of a 3 s hold at 0.5 m; asserted
< 3 cm, |error| < 8 cm (busy machines). About 15 s."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from tests.domains import random_domain

pytest.importorskip("cflib", reason="cflib (bitcraze crazyflie-lib-python) is not installed")

from deploy.msgs import BatteryState, PoseStamped, RateThrustCommand, TwistStamped, Vector3, make_header
from deploy.profile import check_policy, load_deploy_profile
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from drivers.crazyflie_convert import load_thrust_curve, max_thrust, thrust_to_command
from sim.quadrotor.actions import action_spec
from sim.quadrotor.config import QuadrotorTaskCfg
from tests.drivers._px4_client import ROOT, dds_env, wait_for
from tests.drivers.test_px4_ctbr_sil import climb_and_hold

MASS, G = 0.027, 9.81
HEIGHT, CLIMB_S, HOLD_S = 0.5, 1.0, 3.0
OPTIONS = str(ROOT / "launch" / "crazyflie_bridge.yaml")


def test_the_crazyflie_profile_takes_a_ctbr_policy_and_the_thrust_curve_lifts_its_robot():
    profile = load_deploy_profile(ROOT / "launch" / "crazyflie_ctbr.yaml")
    assert profile.action_interface == "ctbr" and profile.safety.quadrotor.interface == "ctbr"
    assert profile.transport.topic("rate_command").name == "/cf1/command/rates" and profile.vehicle_id == "cf1"
    cfg = QuadrotorTaskCfg(action_interface="ctbr")

    class CtbrPolicy:
        obs_spec, action_spec, control_hz = cfg.policy_obs_spec(), action_spec("ctbr", cfg.params), 100.0

    check_policy(profile, CtbrPolicy(), policy_robot_hash=profile.robot_hash)  # raises on a mismatch
    curve = load_thrust_curve(OPTIONS)
    weight = profile.robot.mass * G
    assert 1.8 * weight < max_thrust(curve) and 30000 < thrust_to_command(weight, curve) < 45000


def start_fake(domain: int, *extra: str) -> tuple[subprocess.Popen, int]:
    """The fake Crazyflie on a free UDP port; returns the process and the port it logged."""
    cmd = [sys.executable, "-m", "drivers.fake_crazyflie", "--port", "0", "--config", OPTIONS, *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dds_env(domain), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "fake Crazyflie on udp://127.0.0.1:" in line:
            return proc, int(line.split("udp://127.0.0.1:")[1].split(",")[0])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the fake Crazyflie did not start: {proc.stderr.read()[-2000:]}")


def test_ctbr_flight_through_the_crazyflie_bridge_climbs_holds_and_lands_itself():
    domain = random_domain()
    namespace = f"/cfsil{domain}"
    fake, port = start_fake(domain, "--seconds", "60", "--clock-offset-s", "7000", "--seed", "5")
    bridge_cmd = [sys.executable, "-m", "drivers.crazyflie_bridge", "--uri", f"udp://127.0.0.1:{port}"]
    bridge_cmd += ["--namespace", namespace, "--vehicle-id", "cf", "--config", OPTIONS, "--seconds", "60"]
    bridge = subprocess.Popen(bridge_cmd, cwd=ROOT, env=dds_env(domain), stderr=subprocess.PIPE, text=True)
    transport = TransportConfig.from_mapping({"namespace": namespace})
    errors, offsets, heights = [], [], []
    try:
        with Ros2Node("runtime_stand_in", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            t_pose, t_twist, t_cmd, t_bat = (transport.topic(k) for k in ("pose", "twist", "rate_command", "battery"))
            poses = node.subscription(t_pose.name, PoseStamped, t_pose.qos)
            twists = node.subscription(t_twist.name, TwistStamped, t_twist.qos)
            battery = node.subscription(t_bat.name, BatteryState, t_bat.qos)
            commands = node.publisher(t_cmd.name, RateThrustCommand, t_cmd.qos)
            assert commands.wait_for_subscribers(1, 30.0), "the bridge did not come up"
            assert wait_for(lambda: None not in (poses.latest(), twists.latest(), battery.latest()), 20.0)
            stamp_lag = time.time() - poses.latest().header.stamp.sec - poses.latest().header.stamp.nanosec * 1e-9

            def send(mode: str, thrust: float = 0.0, rates=(0.0, 0.0, 0.0)) -> None:
                header = make_header(time.time_ns())
                commands.publish(RateThrustCommand(header, thrust, Vector3(*rates), "cf", mode))

            for _ in range(50):  # the runtime's arming window: minimum thrust, zero rates, 0.5 s
                send("arming", 0.11)
                time.sleep(0.01)
            climb_and_hold(send, poses, twists, HOLD_S, errors, offsets)
            deadline = time.monotonic() + 6.0  # fallback: the Crazyflie's own land (0.5 m at 0.3 m/s: 1.7 s)
            while time.monotonic() < deadline:
                send("fallback", MASS * G)
                heights.append(poses.latest().pose.position.z)
                if heights[-1] < 0.02 and len(heights) > 150:
                    break
                time.sleep(0.01)
            for _ in range(20):
                send("stop")
                time.sleep(0.01)
            time.sleep(0.3)
            landed_height = poses.latest().pose.position.z
            volts = battery.latest().voltage
            charge = battery.latest().percentage
    finally:
        outs = {}
        for name, p in (("bridge", bridge), ("fake", fake)):  # the bridge first: it restores the parameters
            p.terminate()
            outs[name] = p.communicate(timeout=15)[1]
    context = (outs["bridge"][-2500:], outs["fake"][-2500:])
    rms = float(np.sqrt(np.mean(np.square(errors))))
    print(f"Crazyflie ctbr hold: height RMS {rms:.4f} m, max |error| {np.max(np.abs(errors)):.4f} m")
    assert len(errors) > 100, context
    assert rms < 0.03 and np.max(np.abs(errors)) < 0.08, (rms, context)
    assert max(offsets) < 0.3, context
    assert 0.0 <= stamp_lag < 0.5, stamp_lag  # the boot clock, 7000 s off, mapped onto this computer's
    assert 3.0 < volts < 4.3 and 0.0 < charge <= 1.0, (volts, charge)
    bridge_log, fake_log = outs["bridge"], outs["fake"]
    assert "flightmode.stabModeRoll = 0 (was 1), read back" in bridge_log, context
    assert "-> Crazyflie: thrust unlock" in bridge_log and "-> Crazyflie: land to" in bridge_log, context
    assert "supervisor: ready to fly -> flying" in fake_log, context
    assert landed_height < 0.03, (landed_height, context)
    assert min(heights) < 0.03 and max(heights) > 0.4, context  # it came down from the hold
