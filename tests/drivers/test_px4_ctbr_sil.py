"""A ctbr flight through PX4's protocol: drivers.px4_bridge (with launch/px4_bridge.yaml) + drivers.fake_px4 (PX4
boot clock 5000 s off), each a process on one DDS domain; the test stands in for the runtime and publishes
RateThrustCommand on command/rates the way the runtime does after its safety layer (``arming``: minimum thrust,
zero rates; then ``policy``; then ``fallback``), from a small controller on state/pose and state/twist: height
PID -> collective thrust, attitude (levelling towards a weak position hold) -> body rates. The vehicle climbs to
0.5 m in 1 s and holds it through offboard switching, arming, VehicleRatesSetpoint and the fake's rate loop
(measured: height RMS 8 mm over the last 2 s of a 3 s hold; asserted < 3 cm, |error| < 8 cm, for busy machines);
then the fallback hands over to PX4, which lands and disarms. About 10 s."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from deploy.msgs import PoseStamped, RateThrustCommand, TwistStamped, Vector3, make_header
from deploy.msgs.px4 import VehicleStatus
from deploy.profile import check_policy, load_deploy_profile
from deploy.state_wire import world_velocity
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from drivers.px4_wire import PX4_QOS
from sim.quadrotor.actions import action_spec
from sim.quadrotor.config import QuadrotorTaskCfg
from tests.domains import random_domain
from tests.drivers._px4_client import ROOT, dds_env, start_fake_px4, wait_for

MASS, G = 0.027, 9.81  # the simulator's Crazyflie (randomized around it in the fake: the integral takes that)
MAX_THRUST = 4 * 3.16e-10 * 21702.0**2  # N
HEIGHT, CLIMB_S, HOLD_S = 0.5, 1.0, 3.0
OFFBOARD, AUTO_LAND, ARMED, DISARMED = 14, 18, 2, 1


class RateController:
    """Height PID -> thrust (N); roll/pitch towards the tilt a position PD asks for, yaw towards 0 -> body rates
    FLU (rad/s). Small angles: body rates ~ Euler angle rates."""

    def __init__(self, dt: float) -> None:
        self.dt, self.integral = dt, 0.0

    def __call__(self, pose: PoseStamped, twist: TwistStamped, z_ref: float, vz_ref: float):
        p, o = pose.pose.position, pose.pose.orientation
        w, x, y, z = o.w, o.x, o.y, o.z
        v = Vector3(*world_velocity(np.array([w, x, y, z]), twist)[0])  # the twist is in the body frame
        roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
        pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
        yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        err = z_ref - p.z
        self.integral = max(-0.5, min(0.5, self.integral + err * self.dt))
        az = 10.0 * err + 5.0 * (vz_ref - v.z) + 10.0 * self.integral
        tilt = max(math.cos(roll) * math.cos(pitch), 0.7)
        thrust = min(max(MASS * (G + az) / tilt, 0.0), MAX_THRUST)
        ax, ay = -1.0 * p.x - 1.5 * v.x, -1.0 * p.y - 1.5 * v.y  # world ENU, m/s^2
        pitch_ref = (ax * math.cos(yaw) + ay * math.sin(yaw)) / G  # + pitch (about left) tilts thrust forward
        roll_ref = (ax * math.sin(yaw) - ay * math.cos(yaw)) / G  # + roll (about forward) tilts it right
        k = 8.0  # 1/s
        return thrust, (k * (roll_ref - roll), k * (pitch_ref - pitch), -2.0 * yaw)


def climb_and_hold(send, poses, twists, hold_s: float, errors: list, offsets: list) -> None:
    """Stand in for the runtime: climb to HEIGHT in CLIMB_S, hold for ``hold_s``, at 100 Hz through ``send("policy",
    thrust, rates)``; appends the height error and the horizontal offset of the last hold_s - 1 s of the hold."""
    controller, start, dt = RateController(0.01), time.monotonic(), 0.01
    while (t := time.monotonic() - start) < CLIMB_S + hold_s:
        z_ref, vz_ref = (HEIGHT * t / CLIMB_S, HEIGHT / CLIMB_S) if t < CLIMB_S else (HEIGHT, 0.0)
        pose = poses.latest()
        send("policy", *controller(pose, twists.latest(), z_ref, vz_ref))
        if t > CLIMB_S + 1.0:
            p = pose.pose.position
            errors.append(p.z - HEIGHT)
            offsets.append(math.hypot(p.x, p.y))
        time.sleep(dt)


def test_the_ctbr_profile_takes_a_ctbr_policy_and_the_bridge_options_fit_its_robot():
    profile = load_deploy_profile(ROOT / "launch" / "px4_quadrotor_ctbr.yaml")
    assert profile.action_interface == "ctbr" and profile.safety.quadrotor.interface == "ctbr"
    assert profile.transport.topic("rate_command").name == "/px4_1/command/rates"
    cfg = QuadrotorTaskCfg(action_interface="ctbr")

    class CtbrPolicy:
        obs_spec, action_spec, control_hz = cfg.policy_obs_spec(), action_spec("ctbr", cfg.params), 100.0

    check_policy(profile, CtbrPolicy(), policy_robot_hash=profile.robot_hash)  # raises on a mismatch
    bridge = yaml.safe_load((ROOT / "launch" / "px4_bridge.yaml").read_text())["px4"]
    assert bridge["kf"] == pytest.approx(profile.robot.kf) and bridge["rpm_max"] == pytest.approx(profile.robot.max_rpm)


def test_ctbr_flight_through_the_px4_bridge_climbs_holds_and_fallback_lands():
    domain = random_domain()
    namespace = f"/px4ctbr{domain}"
    px4 = start_fake_px4(domain, "--clock-offset-s", "5000", "--seed", "5", seconds=60.0)
    bridge_cmd = [sys.executable, "-m", "drivers.px4_bridge", "--namespace", namespace, "--vehicle-id", "ctbr"]
    bridge_cmd += ["--config", str(ROOT / "launch" / "px4_bridge.yaml"), "--seconds", "60"]
    bridge = subprocess.Popen(bridge_cmd, cwd=ROOT, env=dds_env(domain), stderr=subprocess.PIPE, text=True)
    transport = TransportConfig.from_mapping({"namespace": namespace})
    errors, offsets, seen_states = [], [], set()
    try:
        with Ros2Node("runtime_stand_in", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            t_pose, t_twist, t_cmd = (transport.topic(k) for k in ("pose", "twist", "rate_command"))
            poses = node.subscription(t_pose.name, PoseStamped, t_pose.qos)
            twists = node.subscription(t_twist.name, TwistStamped, t_twist.qos)
            status = node.subscription("/fmu/out/vehicle_status", VehicleStatus, PX4_QOS)
            commands = node.publisher(t_cmd.name, RateThrustCommand, t_cmd.qos)
            assert commands.wait_for_subscribers(1, 30.0), "the bridge did not come up"
            assert wait_for(lambda: None not in (poses.latest(), twists.latest(), status.latest()), 15.0)

            def send(mode: str, thrust: float = 0.0, rates=(0.0, 0.0, 0.0)) -> None:
                header = make_header(time.monotonic_ns())
                commands.publish(RateThrustCommand(header, thrust, Vector3(*rates), "ctbr", mode))

            def state() -> tuple[int, int]:
                s = status.latest()
                seen_states.add((s.nav_state, s.arming_state))
                return s.nav_state, s.arming_state

            deadline = time.monotonic() + 6.0  # arming: the bridge's keep-alive runs > 1 s, switch, arm
            while state() != (OFFBOARD, ARMED) and time.monotonic() < deadline:
                send("arming")
                time.sleep(0.01)
            assert state() == (OFFBOARD, ARMED), "PX4 did not reach OFFBOARD and armed"
            climb_and_hold(send, poses, twists, HOLD_S, errors, offsets)
            assert state() == (OFFBOARD, ARMED)
            deadline = time.monotonic() + 10.0  # fallback: PX4 lands (hold 1 s, descend, disarm on the ground)
            while state()[1] == ARMED and time.monotonic() < deadline:
                send("fallback", MASS * G)
                time.sleep(0.01)
            landed_height = poses.latest().pose.position.z
            final = state()
    finally:
        for p in (bridge, px4):
            p.terminate()
        outs = {name: p.communicate(timeout=10)[1] for name, p in (("bridge", bridge), ("px4", px4))}
    context = (outs["bridge"][-1500:], outs["px4"][-1500:])
    rms = float(np.sqrt(np.mean(np.square(errors))))
    print(f"ctbr hold: height RMS {rms:.4f} m, max |error| {np.max(np.abs(errors)):.4f} m, drift {max(offsets):.3f} m")
    assert len(errors) > 100, context
    assert rms < 0.03 and np.max(np.abs(errors)) < 0.08, (rms, context)
    assert max(offsets) < 0.3, context
    assert "setpoints: body_rate (RateThrustCommand)" in outs["bridge"], context
    assert "offboard control mode body_rate" in outs["px4"], context
    assert (AUTO_LAND, ARMED) in seen_states and final[1] == DISARMED, (seen_states, final, context)
    assert "mode AUTO_LAND (NAV_LAND)" in outs["px4"] and "disarmed (landed (auto disarm))" in outs["px4"], context
    assert landed_height < 0.06
