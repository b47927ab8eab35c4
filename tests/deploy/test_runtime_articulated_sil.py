"""Software-in-the-loop for articulated robots: the deploy runtime drives the simulated A1 and Franka (each a
separate process, drivers/sim_articulated_node.py) over real DDS, with exported policies."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deploy.msgs import JointCommand, JointState, PoseStamped, String, time_to_ns
from deploy.profile import load_deploy_profile
from deploy.recording import read_log
from deploy.recording.recorder import FlightRecorder
from deploy.runtime.articulated import ArmPlan, ArmTarget, LeggedPlan
from deploy.runtime.clock import ros_minus_monotonic_ns
from deploy.runtime.core import Runtime
from deploy.safety import SafetyLayer, SafetyState
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, resolve_topic_name
from drivers.sim_articulated_node import INJECT_TOPIC
from policies.onnx_policy import load_policy
from tests.deploy.runtimes import articulated_runtime

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


class Wire:
    """What the test sees on the wire besides the runtime: joint states, commands and the base pose (legged)."""

    def __init__(self, node: Ros2Node, transport, legged: bool):
        self.lock = threading.Lock()
        self.joints: list[JointState] = []
        self.commands: list[JointCommand] = []
        self.poses: list[PoseStamped] = []
        t = transport.topic

        def keep(store):
            def add(msg):
                with self.lock:
                    store.append(msg)

            return add

        self.subs = [
            node.subscription(t("joint_states").name, JointState, t("joint_states").qos, keep(self.joints)),
            node.subscription(t("joint_command").name, JointCommand, t("joint_command").qos, keep(self.commands)),
            node.subscription(t("pose").name, PoseStamped, t("pose").qos, keep(self.poses)),
        ]
        self.inject = node.publisher(resolve_topic_name(INJECT_TOPIC, transport.namespace), String)

    def send(self, text: str) -> None:
        self.inject.publish(String(text))


def setup(node: Ros2Node, policy, deploy_profile: str, plan, recorder=None):
    profile = load_deploy_profile(LAUNCH / deploy_profile)
    transport = profile.transport
    # The simulator shares two cores with this process, the recorder and other work: it may stall for a second.
    # A watchdog of 1 s keeps such a stall from ending a test about other checks (profiles keep 0.25 s).
    safety = replace(profile.safety, common=replace(profile.safety.common, max_state_age_s=1.0))
    runtime = articulated_runtime(
        policy,
        node,
        transport,
        SafetyLayer(safety),
        profile.robot.joints.default_position_rad,
        profile.robot_class,
        recorder,
        plan,
    )
    wire = Wire(node, transport, profile.robot_class == "legged")
    assert runtime.adapter.joints_sub.wait_for_publishers(1, timeout_s=60.0), "the simulated robot did not come up"
    assert wire.inject.wait_for_subscribers(1, timeout_s=10.0)
    for sub in (wire.subs[0], wire.subs[2]):  # the runtime's command writer exists from its first arming on
        assert sub.wait_for_publishers(1, timeout_s=10.0)
    wire.send("reset")  # as at launch, whatever the previous test did
    sent = time.monotonic_ns()

    def fresh() -> int:
        with wire.lock:
            return sum(time_to_ns(m.header.stamp) > sent for m in wire.joints)

    deadline = time.monotonic() + 15.0
    while fresh() < 25 and time.monotonic() < deadline:  # the reset is done and the stream is steady
        time.sleep(0.05)
    assert fresh() >= 25, "the simulated robot does not publish its state"
    return runtime, wire, profile


def drive(runtime: Runtime, seconds: float, until=None) -> None:
    """Cycle at the policy rate for ``seconds`` or until ``until(now)`` is true."""
    period = 1.0 / runtime.policy.control_hz
    start = next_t = time.monotonic()
    while (now := time.monotonic()) < start + seconds:
        runtime.cycle(now)
        if until is not None and until(now):
            return
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))


def tilt_deg(q) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, 1.0 - 2.0 * (q.x * q.x + q.y * q.y)))))


def assert_damping(wire: Wire, since_s: float, kd: float) -> None:
    """Commands on the wire after ``since_s`` are damping (kp 0, kd) and the simulated motors' torques are
    -kd * velocity (the robot reports them as JointState effort)."""
    since_s += ros_minus_monotonic_ns() * 1e-9  # the layer's monotonic time -> the stamps' ROS time
    with wire.lock:
        commands = [c for c in wire.commands if time_to_ns(c.header.stamp) * 1e-9 > since_s]
        states = [m for m in wire.joints if time_to_ns(m.header.stamp) * 1e-9 > since_s + 0.1]
    assert len(commands) >= 10 and len(states) >= 10, (len(commands), len(states))
    for c in commands:
        assert c.mode == "fallback" and not any(c.kp) and np.allclose(c.kd, kd), c
    moving = 0
    for m in states:
        velocity, effort = np.array(m.velocity), np.array(m.effort)
        np.testing.assert_allclose(effort, -kd * velocity, atol=1e-9)
        moving += np.abs(velocity).max() > 1e-3
    assert moving > 0, "the joints never moved: the damping torque was not exercised"


def test_legged_zero_action_policy_stands_walks_the_plan_and_logs(legged_sil, articulated_policies, tmp_path):
    policy = load_policy(articulated_policies["legged-walk"]["zero"])
    plan = LeggedPlan(stand_s=1.5, hold_s=1.0, walk_s=1.0, velocity_command=(0.5, 0.0, 0.0), stop_s=0.5)
    topics = load_deploy_profile(LAUNCH / "sim_a1.yaml").transport
    with (
        Ros2Node("deploy", domain_id=legged_sil, config=LOOPBACK_CONFIG) as node,
        FlightRecorder(tmp_path / "run.mcap", topics=topics) as rec,
    ):
        runtime, wire, profile = setup(node, policy, "sim_a1.yaml", plan, rec)
        stats = runtime.run(timeout_s=30.0)
    states = [(t.from_state, t.to_state) for t in runtime.safety.transitions]
    assert states == [
        (SafetyState.DISARMED, SafetyState.ARMING),
        (SafetyState.ARMING, SafetyState.ACTIVE),
        (SafetyState.ACTIVE, SafetyState.DISARMED),
    ], [str(t) for t in runtime.safety.transitions]
    assert runtime.safety.transitions[-1].reason == "plan complete, robot at rest"
    assert stats.cycles >= 0.3 * plan.duration_s * 50  # cycles skipped on a busy computer are counted as misses
    # stood up and stayed up under the policy: base above 15 cm, tilt under 30 deg, from the end of the stand-up
    # to the disarm
    to_ros = ros_minus_monotonic_ns() * 1e-9  # the runtime's monotonic times -> the stamps' ROS time
    policy_start = runtime.plan_start_s + plan.stand_s + 0.3 + to_ros
    disarm = runtime.safety.transitions[-1].time_s + to_ros
    with wire.lock:
        up = [p for p in wire.poses if policy_start < time_to_ns(p.header.stamp) * 1e-9 < disarm]
    assert len(up) >= 20  # 110 at 50 Hz; a busy computer slows the simulator (23 Hz seen with training beside it)
    heights = [p.pose.position.z for p in up]
    tilts = [tilt_deg(p.pose.orientation) for p in up]
    assert min(heights) > 0.15 and max(tilts) < 30.0, (min(heights), max(tilts))

    log = read_log(tmp_path / "run.mcap")
    assert log.complete
    topics = {m.topic for m in log.messages}
    for name in ("state/joints", "state/imu", "policy/observation", "policy/action", "command/joints"):
        assert f"/sim2real/{name}" in topics, name
    assert [m.msg.to_state for m in log.topic("/sim2real/safety/transition")] == ["ARMING", "ACTIVE", "DISARMED"]
    commands = [m.msg for m in log.topic("/sim2real/command/joints")]
    assert {c.mode for c in commands} >= {"arming", "policy", "stop"}
    low, high = profile.safety.command_low(), profile.safety.command_high()
    for c in commands:
        assert list(c.name) == list(profile.action_names)
        assert np.all(np.array(c.position) >= low) and np.all(np.array(c.position) <= high)
        if c.mode == "policy":
            assert np.allclose(c.kp, 20.0) and np.allclose(c.kd, 0.5)
    # the observation carries the plan's velocity command: 0.5 m/s for the walk second, 0 in hold and stop
    spec = policy.obs_spec
    vx = np.array([m.msg.data[spec.slice("velocity_command")][0] for m in log.topic("/sim2real/policy/observation")])
    assert 10 <= int((vx == 0.5).sum()) <= 52 and int((vx == 0.0).sum()) >= 10  # 50 and 75 at full rate
    assert set(np.round(vx, 6)) <= {0.0, 0.5}


def test_legged_base_tilt_trips_the_damping_fallback(legged_sil, articulated_policies):
    policy = load_policy(articulated_policies["legged-walk"]["zero"])
    plan = LeggedPlan(stand_s=1.5, hold_s=30.0, walk_s=0.0, stop_s=0.0)
    with Ros2Node("deploy", domain_id=legged_sil, config=LOOPBACK_CONFIG) as node:
        runtime, wire, profile = setup(node, policy, "sim_a1.yaml", plan)
        runtime.wait_and_arm(30.0)
        drive(runtime, 2.5)  # arming + stand-up + the policy holding
        assert runtime.safety.state is SafetyState.ACTIVE and runtime.phase == "hold"
        wire.send("tip_over")
        drive(runtime, 3.0, until=lambda now: runtime.safety.state is SafetyState.FALLBACK)
        fallback = [t for t in runtime.safety.transitions if t.to_state is SafetyState.FALLBACK]
        # the injection teleports the base 100 deg in one step: the consistency gate (attitude vs gyro) sees that
        # before the tilt check; either way the fallback is damping
        assert fallback and fallback[0].check in ("base_tilt", "state_consistency"), [
            str(t) for t in runtime.safety.transitions
        ]
        drive(runtime, 1.0)
        assert runtime.safety.state is SafetyState.FALLBACK  # damping goes on until the operator disarms
        assert_damping(wire, fallback[0].time_s, profile.safety.legged.damping_kd_nm_s_per_rad)
        runtime.safety.disarm(time.monotonic())
        drive(runtime, 0.1)


def test_legged_commands_beyond_the_limits_are_clamped_and_a_joint_beyond_them_trips_damping(
    legged_sil, articulated_policies
):
    exported = load_policy(articulated_policies["legged-walk"]["zero"])

    class BeyondTheLimit:
        """Default pose but FR calf 0.5 rad beyond its upper limit (physical joint targets, rad)."""

        obs_spec, action_spec, control_hz = exported.obs_spec, exported.action_spec, exported.control_hz

        def __call__(self, obs):
            targets = np.array(self.action_spec.offset)
            targets[2] = self.action_spec.high[2] + 0.5
            return targets

    plan = LeggedPlan(stand_s=1.0, hold_s=30.0, walk_s=0.0, stop_s=0.0)
    with Ros2Node("deploy", domain_id=legged_sil, config=LOOPBACK_CONFIG) as node:
        runtime, wire, profile = setup(node, BeyondTheLimit(), "sim_a1.yaml", plan)
        runtime.wait_and_arm(30.0)
        drive(runtime, 2.5)
        high = profile.safety.command_high()
        with wire.lock:
            policy_commands = [c for c in wire.commands if c.mode == "policy"]
        assert len(policy_commands) > 30 and runtime.safety.state is SafetyState.ACTIVE
        assert all(c.position[2] <= high[2] + 1e-12 for c in policy_commands)  # clamped, not passed on
        assert policy_commands[-1].position[2] == pytest.approx(high[2])
        assert any(v.check == "action_limits" and v.severity.name == "CLAMP" for v in runtime.safety.last_verdicts)
        wire.send("displace FR_lower_joint -0.5")  # 0.42 rad beyond the calf's upper limit (an impact, a bad encoder)
        drive(runtime, 3.0, until=lambda now: runtime.safety.state is SafetyState.FALLBACK)
        fallback = [t for t in runtime.safety.transitions if t.to_state is SafetyState.FALLBACK]
        assert fallback and fallback[0].check in ("joint_position", "state_consistency"), [
            str(t) for t in runtime.safety.transitions
        ]
        assert "FR_lower_joint" in fallback[0].reason
        drive(runtime, 1.0)
        assert_damping(wire, fallback[0].time_s, profile.safety.legged.damping_kd_nm_s_per_rad)
        runtime.safety.disarm(time.monotonic())
        drive(runtime, 0.1)


def test_arm_zero_action_policy_holds_the_default_pose_through_the_targets(arm_sil, articulated_policies, tmp_path):
    policy = load_policy(articulated_policies["arm-reach"]["zero"])
    targets = (ArmTarget((0.45, 0.0, 0.45), hold_s=1.0), ArmTarget((0.4, 0.15, 0.35), hold_s=1.0))
    plan = ArmPlan(move_s=1.0, targets=targets)
    with Ros2Node("deploy", domain_id=arm_sil, config=LOOPBACK_CONFIG) as node:
        runtime, wire, profile = setup(node, policy, "sim_franka.yaml", plan)
        runtime.run(timeout_s=30.0)
        reading = runtime.adapter.read()
    assert [t.to_state for t in runtime.safety.transitions] == [
        SafetyState.ARMING,
        SafetyState.ACTIVE,
        SafetyState.DISARMED,
    ], [str(t) for t in runtime.safety.transitions]
    default = np.array(profile.robot.joints.default_position_rad)
    assert np.abs(reading.state.joint_position - default).max() < 0.1  # action 0 = the default pose (gravity sags it)
    summary = runtime.summary()["tracking"]
    assert set(summary["final_ee_error_m"]) == {"target0", "target1"}
    # the default pose is not the targets: the errors are the distances from the default pose's end effector
    ee = reading.state.position
    # (measured at the last policy cycle; the arm settles a little further on its brakes after the disarm)
    assert summary["final_ee_error_m"]["target1"] == pytest.approx(np.linalg.norm(ee - targets[1].position_m), abs=0.03)
    with wire.lock:
        assert {c.mode for c in wire.commands} >= {"arming", "policy"}


def test_arm_joint_beyond_its_limit_trips_the_hold_fallback(arm_sil, articulated_policies):
    policy = load_policy(articulated_policies["arm-reach"]["zero"])
    plan = ArmPlan(move_s=1.0, targets=(ArmTarget((0.45, 0.0, 0.45), hold_s=30.0),))
    with Ros2Node("deploy", domain_id=arm_sil, config=LOOPBACK_CONFIG) as node:
        runtime, wire, profile = setup(node, policy, "sim_franka.yaml", plan)
        runtime.wait_and_arm(30.0)
        drive(runtime, 2.0)
        assert runtime.safety.state is SafetyState.ACTIVE and runtime.phase == "target0"
        wire.send("displace panda_joint4 0.2")  # upper limit -0.0698 rad
        drive(runtime, 3.0, until=lambda now: runtime.safety.state is SafetyState.FALLBACK)
        fallback = [t for t in runtime.safety.transitions if t.to_state is SafetyState.FALLBACK]
        # The joint limit throws the joint back within the physics steps of one control period: the first state
        # after the displacement shows it beyond its limit or moving faster than the velocity limit.
        assert fallback and fallback[0].check in ("joint_position", "joint_velocity", "state_consistency"), fallback
        drive(runtime, 1.0)
        with wire.lock:
            since = fallback[0].time_s + ros_minus_monotonic_ns() * 1e-9
            held = [c for c in wire.commands if time_to_ns(c.header.stamp) * 1e-9 > since]
        assert len(held) >= 10 and all(c.mode == "fallback" for c in held)
        kp = np.array(profile.safety.joints.kp_nm_per_rad)
        assert all(np.allclose(c.kp, kp) for c in held)  # hold with the profile's stiffness, not limp
        # The hold target is the position measured when the fallback started, clipped into the limits; the layer
        # slews to it no faster than the joints' rate limits (it may be far from the last command: the joint
        # was thrown to its limit).
        q = np.array([c.position for c in held])
        t = np.array([time_to_ns(c.header.stamp) * 1e-9 for c in held])
        assert np.all(q <= profile.safety.command_high()) and np.all(q >= profile.safety.command_low())
        rate = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
        assert np.all(rate <= np.array(profile.safety.command_max_rate_per_s()) * 1.05 + 1e-6)
        runtime.safety.disarm(time.monotonic())
        drive(runtime, 0.1)
