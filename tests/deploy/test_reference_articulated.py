"""Streamed references of the articulated robots (deploy/runtime/reference_articulated.py): a legged robot's
cmd_vel and an arm's end-effector target, clipped into what the policy was trained with and rate-limited; a
stale stream stands the robot up / holds the arm, a lost one falls back. Unit tests without DDS, then one run
per class over DDS against the simulated robot."""

from __future__ import annotations

import logging
import math
import threading
import time
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.articulated_plan import ArmPlan, LeggedPlan, StreamedArticulatedPlan
from deploy.articulated_wire import JointOrder, imu_msg, joint_state_msg, pose_msg
from deploy.msgs import Point, Pose, PoseStamped, Quaternion, Twist, Vector3, make_header
from deploy.profile import DeployProfileError, load_deploy_profile
from deploy.recording import read_log
from deploy.recording.recorder import FlightRecorder
from deploy.runtime import Runtime, adapter_for
from deploy.runtime.articulated import ArticulatedAdapter, joint_reading
from deploy.runtime.clock import ros_minus_monotonic_ns
from deploy.runtime.reference import ReferenceConfigError
from deploy.runtime.reference_articulated import (
    DOWN_WXYZ,
    ArmReference,
    CmdVelReference,
    LeggedReference,
    TargetReference,
    articulated_reference,
    axis_angle,
    clip_orientation,
    from_axis_angle,
    quat_conjugate,
    quat_multiply,
)
from deploy.safety import SafetyLayer, SafetyState
from deploy.transport import LOOPBACK_CONFIG, Ros2Node
from policies.onnx_policy import load_policy
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec, ObsTerm
from tests.deploy.test_runtime_articulated import FakePolicy

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
FRAMES = ("", "base", "base_link", "panda_link0")


class FakeSub:
    """A subscription's latest_arrival(): (message, arrival ns on the monotonic clock)."""

    def __init__(self, topic: str = "/sim2real/cmd_vel"):
        self.topic = topic
        self.value = (None, None)

    def put(self, msg, now_s: float) -> None:
        self.value = (msg, round(now_s * 1e9))

    def latest_arrival(self):
        return self.value


def twist(vx: float, vy: float = 0.0, wz: float = 0.0) -> Twist:
    return Twist(Vector3(vx, vy, 0.0), Vector3(0.0, 0.0, wz))


def target(xyz, wxyz=(0.0, 1.0, 0.0, 0.0), frame: str = "base") -> PoseStamped:
    w, x, y, z = wxyz
    return PoseStamped(make_header(1, frame), Pose(Point(*xyz), Quaternion(x, y, z, w)))


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return axis_angle(quat_multiply(a, quat_conjugate(b)))[1]


# ---------------------------------------------------------------------------------------------- legged: cmd_vel
def test_cmd_vel_is_clipped_into_the_trained_ranges_and_slewed_at_the_acceleration_limits():
    ref, sub = CmdVelReference(LeggedReference(max_lin_acc_m_s2=1.0, max_yaw_acc_rad_s2=2.0), FakeSub()), None
    sub = ref.watch.sub
    for k in range(51):  # 0.5 s at 100 Hz
        sub.put(twist(2.0, -1.0, 3.0), 0.01 * k)
        assert ref.update(0.01 * k) == ""
    np.testing.assert_allclose(ref.requested, [1.0, -0.3, 0.5])  # legged-walk's CommandCfg bounds
    planar = np.array([1.0, -0.3]) / math.hypot(1.0, -0.3) * 0.5  # 1 m/s^2 for 0.5 s along the request
    np.testing.assert_allclose(ref.command, [*planar, 0.5], atol=1e-9)  # yaw: 2 rad/s^2 reached 0.5 at 0.25 s
    for k in range(51, 200):
        sub.put(twist(2.0, -1.0, 3.0), 0.01 * k)
        ref.update(0.01 * k)
    np.testing.assert_allclose(ref.command, [1.0, -0.3, 0.5], atol=1e-9)


def test_a_stale_cmd_vel_ramps_to_zero_a_lost_one_faults_and_warnings_come_once(caplog):
    ref = CmdVelReference(LeggedReference(timeout_s=0.3, lost_s=1.0, max_lin_acc_m_s2=2.0), FakeSub())
    sub = ref.watch.sub
    for k in range(101):
        sub.put(twist(0.8), 0.01 * k)
        ref.update(0.01 * k)
    assert ref.command[0] == pytest.approx(0.8)
    with caplog.at_level(logging.WARNING, "sim2real.runtime"):
        for k in range(101, 130):  # the last sample arrived at 1.0 s: fresh until 1.3 s
            assert ref.update(0.01 * k) == ""
        assert ref.command[0] == pytest.approx(0.8)
        speeds = []
        for k in range(130, 200):  # stale: 2 m/s^2 down to zero in 0.4 s
            assert ref.update(0.01 * k) == ""
            speeds.append(ref.command[0])
        assert speeds[0] < 0.8 and speeds[-1] == 0.0 and np.all(np.diff(speeds) >= -0.02 - 1e-9)
        assert "lost" in ref.update(2.01)
    assert caplog.text.count("nothing for") == 1


def test_cmd_vel_samples_that_are_not_finite_are_skipped_and_the_age_runs_on():
    ref = CmdVelReference(LeggedReference(timeout_s=0.3, lost_s=1.0), FakeSub())
    sub = ref.watch.sub
    sub.put(twist(0.4), 0.0)
    ref.update(0.0)
    assert ref.requested[0] == 0.4
    for k in range(1, 150):  # NaNs from 0.01 s on: the last usable sample is the one at 0
        sub.put(twist(math.nan), 0.01 * k)
        fault = ref.update(0.01 * k)
        assert np.all(np.isfinite(ref.command))
        if 0.01 * k <= 1.0:
            assert fault == ""
    assert "lost" in fault and ref.requested[0] == 0.4


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.floats(-5, 5),
            st.floats(-5, 5),
            st.floats(0.001, 0.2),
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_any_cmd_vel_sequence_gives_commands_within_the_ranges_and_the_acceleration_limits(steps):
    config = LeggedReference()
    ref, now = CmdVelReference(config, FakeSub()), 0.0
    previous = ref.command.copy()
    for vx, vy, wz, dt, send in steps:
        now += dt
        if send:
            ref.watch.sub.put(twist(vx, vy, wz), now)
        ref.update(now)
        c = ref.command
        assert np.all(c >= config.low - 1e-12) and np.all(c <= config.high + 1e-12)
        assert np.linalg.norm(c[:2] - previous[:2]) <= config.max_lin_acc_m_s2 * dt + 1e-9
        assert abs(c[2] - previous[2]) <= config.max_yaw_acc_rad_s2 * dt + 1e-9
        previous = c.copy()


def test_the_default_ranges_are_the_training_tasks():
    from sim.articulated.tasks.arm_reach import TargetCfg
    from sim.articulated.tasks.legged_walk import CommandCfg

    legged, arm, command, box = LeggedReference(), ArmReference(), CommandCfg(), TargetCfg()
    assert legged.lin_vel_x_m_s == command.lin_vel_x_m_s and legged.lin_vel_y_m_s == command.lin_vel_y_m_s
    assert legged.yaw_rate_rad_s == command.yaw_rate_rad_s
    assert (arm.workspace_x_m, arm.workspace_y_m, arm.workspace_z_m) == (box.x_m, box.y_m, box.z_m)
    assert arm.yaw_rad == box.yaw_rad and arm.tilt_rad == box.tilt_rad


# ---------------------------------------------------------------------------------------------- arm: target
def arm(config: ArmReference | None = None, start=(0.31, 0.0, 0.49)) -> TargetReference:
    return TargetReference(config or ArmReference(), FakeSub("/sim2real/reference/target"), FRAMES, start, DOWN_WXYZ)


def test_targets_are_clipped_into_the_workspace_and_approached_at_the_speed_limit():
    ref = arm(ArmReference(max_speed_m_s=0.25), start=(0.4, 0.0, 0.45))
    for k in range(51):  # 0.5 s at 100 Hz
        ref.watch.sub.put(target((0.9, 0.0, 0.45)), 0.01 * k)
        assert ref.update(0.01 * k) == ""
    np.testing.assert_allclose(ref.target, [0.55, 0.0, 0.45])  # arm-reach's box ends at x 0.55 m
    np.testing.assert_allclose(ref.position, [0.525, 0.0, 0.45], atol=1e-9)  # 0.25 m/s for 0.5 s
    ref.watch.sub.put(target((0.1, -1.0, 0.0)), 0.6)
    ref.update(0.6)
    np.testing.assert_allclose(ref.target, [0.3, -0.2, 0.3])


def test_orientations_are_kept_within_the_trained_yaw_and_tilt_and_turned_at_the_rate_limit():
    yaw = lambda a: from_axis_angle([0.0, 0.0, 1.0], a)  # noqa: E731
    config = ArmReference(yaw_rad=(-0.5, 0.5), tilt_rad=0.2, max_angular_speed_rad_s=1.0)
    # turned 1.2 rad about z and tilted 0.6 rad about x -> 0.5 rad and 0.2 rad
    asked = quat_multiply(from_axis_angle([1.0, 0.0, 0.0], 0.6), quat_multiply(yaw(1.2), DOWN_WXYZ))
    expected = quat_multiply(from_axis_angle([1.0, 0.0, 0.0], 0.2), quat_multiply(yaw(0.5), DOWN_WXYZ))
    assert angle_between(clip_orientation(asked, config.yaw_rad, config.tilt_rad), expected) < 1e-9
    inside = quat_multiply(from_axis_angle([0.6, 0.8, 0.0], 0.15), quat_multiply(yaw(-0.3), DOWN_WXYZ))
    assert angle_between(clip_orientation(inside, config.yaw_rad, config.tilt_rad), inside) < 1e-9
    assert angle_between(clip_orientation(-inside, config.yaw_rad, config.tilt_rad), inside) < 1e-9  # same rotation
    ref = arm(config)
    for k in range(31):  # 0.3 s at 1 rad/s
        ref.watch.sub.put(target((0.4, 0.0, 0.45), tuple(quat_multiply(yaw(0.5), DOWN_WXYZ))), 0.01 * k)
        ref.update(0.01 * k)
    assert angle_between(ref.quat, DOWN_WXYZ) == pytest.approx(0.3, abs=1e-9)


def test_a_stale_target_holds_a_lost_one_faults_and_other_frames_are_refused(caplog):
    ref = arm(ArmReference(timeout_s=0.3, lost_s=1.0, max_speed_m_s=0.25), start=(0.4, 0.0, 0.45))
    sub = ref.watch.sub
    sub.put(target((0.5, 0.0, 0.45)), 0.0)
    for k in range(21):
        ref.update(0.01 * k)
    assert ref.position[0] == pytest.approx(0.45)  # 0.2 s at 0.25 m/s
    with caplog.at_level(logging.WARNING, "sim2real.runtime"):
        for k in range(21, 40):
            ref.update(0.01 * k)
        held = ref.position.copy()  # stale after 0.3 s: the target stops where it is
        assert held[0] == pytest.approx(0.475)
        for k in range(40, 100):
            assert ref.update(0.01 * k) == ""
        np.testing.assert_allclose(ref.position, held)
        assert "lost" in ref.update(1.01)
        assert caplog.text.count("nothing for") == 1

        other = arm(ArmReference(timeout_s=0.3, lost_s=1.0))
        other.watch.sub.put(target((0.5, 0.0, 0.45), frame="world"), 0.0)
        assert other.update(0.0) == "" and other.target is None
        assert "is not the robot base frame" in caplog.text
        assert "lost" in other.update(1.01)  # nothing usable since the stream was first read
    for frame in FRAMES:
        ok = arm()
        ok.watch.sub.put(target((0.5, 0.0, 0.45), frame=frame), 0.0)
        ok.update(0.0)
        assert ok.target is not None, frame
    assert ArmReference(frame_ids=["world"]).frames("panda_link0") == ("world",)
    assert ArmReference().frames("panda_link0") == FRAMES


@pytest.mark.parametrize(
    ("orientation", "reason"),
    [((0.0, 0.0, 0.0, 0.0), "not a unit quaternion"), ((math.nan, 1.0, 0.0, 0.0), "not finite")],
)
def test_targets_that_are_not_poses_are_refused(orientation, reason, caplog):
    ref = arm()
    ref.watch.sub.put(target((0.4, 0.0, 0.4), orientation), 0.0)
    with caplog.at_level(logging.WARNING, "sim2real.runtime"):
        assert ref.update(0.0) == "" and ref.target is None
    assert reason in caplog.text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.tuples(*[st.floats(-3, 3)] * 3),
            st.tuples(*[st.floats(-1, 1)] * 4),
            st.floats(0.001, 0.2),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_target_sequence_moves_the_reference_within_the_limits(steps):
    config = ArmReference()
    ref, now = arm(config), 0.0
    position, quat = ref.position.copy(), ref.quat.copy()
    for xyz, wxyz, dt in steps:
        now += dt
        norm = np.linalg.norm(wxyz)
        if norm > 0.5:
            wxyz = tuple(np.asarray(wxyz) / norm)
        ref.watch.sub.put(target(xyz, wxyz), now)
        ref.update(now)
        if ref.target is not None:
            assert np.all(ref.target >= config.low) and np.all(ref.target <= config.high)
        assert np.linalg.norm(ref.position - position) <= config.max_speed_m_s * dt + 1e-9
        assert angle_between(ref.quat, quat) <= config.max_angular_speed_rad_s * dt + 1e-6
        position, quat = ref.position.copy(), ref.quat.copy()


# ---------------------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("robot_class", "section", "message"),
    [
        ("legged", {"source": "joystick"}, "expected 'plan' or 'topic'"),
        ("legged", {"source": "topic", "timeout_s": 0}, "timeout_s: expected a positive number"),
        ("legged", {"source": "topic", "timeout_s": 2.0, "lost_s": 1.0}, "raise lost_s"),
        ("legged", {"source": "topic", "lin_vel_x_m_s": 1.0}, r"expected \[low, high\]"),
        ("legged", {"source": "topic", "lin_vel_x_m_s": [0.2, 1.0]}, "does not contain 0"),
        ("legged", {"source": "topic", "yaw_rate_rad_s": [0.5, -0.5]}, "low < high"),
        ("legged", {"source": "topic", "max_lin_acc_m_s2": -1}, "max_lin_acc_m_s2: expected a positive"),
        ("legged", {"source": "topic", "workspace_x_m": [0, 1]}, "unknown keys"),
        ("arm", {"source": "topic", "lin_vel_x_m_s": [0, 1]}, "unknown keys"),
        ("arm", {"source": "topic", "workspace_z_m": [0.6, 0.3]}, "low < high"),
        ("arm", {"source": "topic", "tilt_rad": 20.0}, "degrees"),
        ("arm", {"source": "topic", "max_speed_m_s": "fast"}, "max_speed_m_s: expected a positive"),
        ("arm", {"source": "topic", "frame_ids": "world"}, "frame_ids: expected a list"),
        ("arm", {"source": "plan", "max_speed_m_s": 0.1}, "no other keys"),
    ],
)
def test_bad_reference_sections_are_refused(robot_class, section, message):
    with pytest.raises(ReferenceConfigError, match=message):
        articulated_reference(robot_class, section)


def profile_file(tmp_path: Path, name: str, **changes) -> Path:
    data = yaml.safe_load((LAUNCH / name).read_text())
    data["robot"] = str(LAUNCH / data["robot"])
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_reference_section_of_articulated_profiles(tmp_path):
    legged = load_deploy_profile(profile_file(tmp_path, "sim_a1.yaml", reference={"source": "topic"}))
    assert legged.reference == LeggedReference()
    section = {"source": "topic", "max_speed_m_s": 0.1, "workspace_z_m": [0.35, 0.5]}
    arm_profile = load_deploy_profile(profile_file(tmp_path, "sim_franka.yaml", reference=section))
    assert arm_profile.reference == ArmReference(max_speed_m_s=0.1, workspace_z_m=(0.35, 0.5))
    assert load_deploy_profile(profile_file(tmp_path, "sim_a1.yaml")).reference is None
    short = {"source": "topic", "duration_s": 1.0}
    with pytest.raises(DeployProfileError, match=r"duration_s \(1.0 s\) must be longer than the plan's stand_s"):
        load_deploy_profile(profile_file(tmp_path, "sim_a1.yaml", reference=short))
    with pytest.raises(DeployProfileError, match=r"sim_franka.yaml: reference.max_speed_m_s: expected a positive"):
        load_deploy_profile(
            profile_file(tmp_path, "sim_franka.yaml", reference={"source": "topic", "max_speed_m_s": 0})
        )


def test_the_streamed_plan_runs_the_scripted_start_first():
    plan = StreamedArticulatedPlan(LeggedPlan(stand_s=2.0), 10.0, "cmd_vel", "stop")
    assert plan.at(1.0).phase == "stand" and plan.at(1.0).blend == pytest.approx(0.5)
    assert plan.at(2.0).phase == "cmd_vel" and plan.at(2.0).blend is None
    assert plan.at(10.0).phase == "stop" and plan.duration_s == 10.0
    assert StreamedArticulatedPlan(ArmPlan(move_s=1.0), 5.0).at(0.5).phase == "move"
    with pytest.raises(ValueError, match="longer than the plan's move_s"):
        StreamedArticulatedPlan(ArmPlan(move_s=3.0), 2.0)


# ---------------------------------------------------------------------------------------------- the adapter
class FakeNode:
    """Subscriptions by topic name, for the adapter without DDS."""

    def __init__(self):
        self.subs: dict[str, FakeSub] = {}

    def subscription(self, name, msg_type, qos=None):
        return self.subs.setdefault(name, FakeSub(name))


class ArmPolicy:
    """arm-reach's observation layout for 7 joints; holds the default pose."""

    control_hz = 50.0

    def __init__(self, names):
        n = len(names)
        terms = (ObsTerm("joint_pos", n), ObsTerm("position_error", 3), ObsTerm("orientation_error", 3))
        self.obs_spec = ObsSpec((*terms, ObsTerm("last_action", n)))
        self.action_spec = ActionSpec(
            "joint_position", tuple(names), ("rad",) * n, (0.0,) * n, (1.25,) * n, (-3.0,) * n, (3.0,) * n
        )

    def __call__(self, obs):
        return np.array(self.action_spec.offset)


def clock(monkeypatch, module) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(module, "time", types.SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter))
    return now


def test_the_legged_adapter_stands_up_then_streams_cmd_vel_into_the_observation(tmp_path, monkeypatch):
    import deploy.runtime.articulated as articulated

    now = clock(monkeypatch, articulated)
    section = {"source": "topic", "timeout_s": 0.3, "lost_s": 1.0, "max_lin_acc_m_s2": 100.0}
    profile = load_deploy_profile(profile_file(tmp_path, "sim_a1.yaml", reference=section))
    node, policy = FakeNode(), FakePolicy(profile.action_names)
    adapter = adapter_for(profile, policy, node)
    assert isinstance(adapter, ArticulatedAdapter) and isinstance(adapter.plan, StreamedArticulatedPlan)
    cmd_vel = node.subs["/sim2real/cmd_vel"]
    q = np.array(profile.robot.joints.default_position_rad)
    state = joint_state_msg(profile.action_names, q, np.zeros(12), None, 1)
    reading = joint_reading(JointOrder(profile.action_names), state, imu_msg(np.array([1.0, 0, 0, 0]), np.zeros(3), 1))
    assert adapter.act(reading, 1.0, True).phase == "stand"  # plan.stand_s 2 s: the scripted stand-up
    cmd_vel.put(twist(3.0, 0.1, -0.2), now[0])
    act = adapter.act(reading, 2.0, True)
    assert act.phase == "cmd_vel" and act.fault == ""
    velocity = act.obs[policy.obs_spec.slice("velocity_command")]
    np.testing.assert_allclose(velocity, [0.0, 0.0, 0.0])  # the first streamed cycle: no time to accelerate yet
    now[0] += 0.1
    cmd_vel.put(twist(3.0, 0.1, -0.2), now[0])
    act = adapter.act(reading, 2.1, True)
    np.testing.assert_allclose(act.obs[policy.obs_spec.slice("velocity_command")], [1.0, 0.1, -0.2], atol=1e-6)
    now[0] += 1.2  # silence
    act = adapter.act(reading, 3.3, True)
    assert "lost" in act.fault and act.action is not None
    adapter.idle()
    assert adapter.stream is None


def test_the_arm_adapter_starts_at_the_measured_pose_and_follows_targets(monkeypatch):
    import deploy.runtime.articulated as articulated

    now = clock(monkeypatch, articulated)
    franka = load_deploy_profile(LAUNCH / "sim_franka.yaml")
    names = franka.action_names
    node, policy = FakeNode(), ArmPolicy(names)
    adapter = ArticulatedAdapter(
        policy,
        node,
        franka.transport,
        names,
        np.array(franka.robot.joints.default_position_rad),
        "arm",
        ArmPlan(move_s=1.0),
        reference=ArmReference(max_speed_m_s=0.2),
        base_frame="panda_link0",
    )
    state = joint_state_msg(names, np.array(franka.robot.joints.default_position_rad), np.zeros(7), None, 1)
    ee = pose_msg(np.array([0.31, 0.0, 0.49]), DOWN_WXYZ, 1, "panda_link0")
    reading = joint_reading(JointOrder(names), state, ee)
    act = adapter.act(reading, 1.0, True)
    assert act.phase == "target"
    np.testing.assert_allclose(act.obs[policy.obs_spec.slice("position_error")], 0.0, atol=1e-12)  # holds
    node.subs["/sim2real/reference/target"].put(target((0.5, 0.0, 0.49), frame="panda_link0"), now[0])
    now[0] += 0.1
    act = adapter.act(reading, 1.1, True)
    error = act.obs[policy.obs_spec.slice("position_error")] / policy.obs_spec.term("position_error").scale
    np.testing.assert_allclose(error, [0.02, 0.0, 0.0], atol=1e-6)  # 0.2 m/s for 0.1 s
    assert adapter.act(reading, 700.0, True).phase == "hold"  # past duration_s: the target holds


# ---------------------------------------------------------------------------------------------- over DDS
def stream(runtime, publish, phase: str, seconds: float, period_s: float = 0.02) -> threading.Event:
    """Publish ``publish()`` every ``period_s`` from now on until ``seconds`` after the runtime entered
    ``phase``, then fall silent (a background thread); set the returned event to stop earlier."""
    stop = threading.Event()

    def run() -> None:
        entered = None
        while not stop.is_set():
            if entered is None and runtime.phase == phase:
                entered = time.monotonic()
            if entered is not None and time.monotonic() - entered > seconds:
                return
            publish()
            time.sleep(period_s)

    threading.Thread(target=run, daemon=True).start()
    return stop


def streamed_runtime(node, policy, profile, plan, config, recorder):
    # a 1 s watchdog, as tests/deploy/test_runtime_articulated_sil.py: the simulator shares two busy cores
    safety = replace(profile.safety, common=replace(profile.safety.common, max_state_age_s=1.0))
    adapter = ArticulatedAdapter(
        policy,
        node,
        profile.transport,
        profile.action_names,
        np.array(profile.robot.joints.default_position_rad),
        profile.robot_class,
        plan,
        fallback_hold_s=1.0,
        reference=config,
        base_frame=profile.robot.bodies.base,
    )
    runtime = Runtime(adapter, policy, node, profile.transport, SafetyLayer(safety), recorder)
    assert adapter.joints_sub.wait_for_publishers(1, timeout_s=60.0), "the simulated robot did not come up"
    return runtime


def assert_lost_fallback(runtime) -> float:
    """The run: arming, active, the lost stream's fallback, disarmed after the fallback's hold; its time."""
    transitions = runtime.safety.transitions
    assert [t.to_state for t in transitions] == [
        SafetyState.ARMING,
        SafetyState.ACTIVE,
        SafetyState.FALLBACK,
        SafetyState.DISARMED,
    ], [str(t) for t in transitions]
    assert transitions[2].check == "runtime.reference" and "lost" in transitions[2].reason, str(transitions[2])
    return transitions[2].time_s


def test_legged_cmd_vel_reaches_the_policy_observation_and_a_lost_stream_falls_back(
    legged_sil, articulated_policies, tmp_path
):
    """The simulated A1 stands up (1.5 s), then cmd_vel asks for 2 m/s forward, 0.2 m/s left, -1 rad/s for 1.5 s
    and falls silent: the observation carries the command clipped into the trained ranges (1.0, 0.2, -0.5) and
    slewed at 2 m/s^2 and 2 rad/s^2, back to zero once stale (0.3 s), and the lost stream (1 s) falls back to
    damping."""
    policy = load_policy(articulated_policies["legged-walk"]["zero"])
    profile = load_deploy_profile(LAUNCH / "sim_a1.yaml")
    config = LeggedReference(timeout_s=0.3, lost_s=1.0, max_lin_acc_m_s2=2.0, max_yaw_acc_rad_s2=2.0, duration_s=60)
    with (
        Ros2Node("deploy", domain_id=legged_sil, config=LOOPBACK_CONFIG) as node,
        FlightRecorder(tmp_path / "run.mcap", topics=profile.transport) as rec,
    ):
        runtime = streamed_runtime(node, policy, profile, LeggedPlan(stand_s=1.5), config, rec)
        topic = profile.transport.topic("cmd_vel")
        assert topic.name == "/sim2real/cmd_vel"
        pub = node.publisher(topic.name, Twist, topic.qos)
        assert pub.wait_for_subscribers(1, timeout_s=10.0)
        stop = stream(runtime, lambda: pub.publish(twist(2.0, 0.2, -1.0)), "cmd_vel", 1.5)
        try:
            runtime.run(timeout_s=30.0)
        finally:
            stop.set()
    fallback_s = assert_lost_fallback(runtime)
    assert runtime.summary()["tracking"]["cmd_vel_velocity_error_m_s"] is not None  # the base twist is published

    log = read_log(tmp_path / "run.mcap")
    obs = log.topic("/sim2real/policy/observation")
    command = np.array([m.msg.data[policy.obs_spec.slice("velocity_command")] for m in obs])
    t = np.array([m.log_time_ns for m in obs]) * 1e-9
    assert len(command) >= 50, len(command)  # 2.5 s of streamed phase at 50 Hz, fewer on a busy computer
    np.testing.assert_allclose(command.max(axis=0)[:2], [1.0, 0.2], atol=1e-6)  # clipped at 1 m/s; 0.2 m/s as asked
    assert command[:, 2].min() == pytest.approx(-0.5, abs=1e-6)  # clipped at -0.5 rad/s
    assert np.all(command[:, 0] <= 1.0 + 1e-6) and np.all(command[:, 2] >= -0.5 - 1e-6)
    dt = np.diff(t)
    assert np.all(np.linalg.norm(np.diff(command[:, :2], axis=0), axis=1) <= 2.0 * dt + 0.01)  # the slew limits,
    assert np.all(np.abs(np.diff(command[:, 2])) <= 2.0 * dt + 0.01)  # on the logged (ROS) clock
    np.testing.assert_allclose(command[-1], 0.0, atol=1e-6)  # stale: back to zero before the stream was lost

    since = (fallback_s + ros_minus_monotonic_ns() * 1e-9) * 1e9
    damping = [m.msg for m in log.topic("/sim2real/command/joints") if m.log_time_ns > since and m.msg.mode != "stop"]
    assert len(damping) >= 10 and all(c.mode == "fallback" and not any(c.kp) for c in damping)
    assert np.allclose(damping[0].kd, profile.safety.legged.damping_kd_nm_s_per_rad)


class ReachPolicy:
    """Reaches the observed end-effector target by damped least squares on the Franka's kinematics (MuJoCo, the
    simulator's model): each step moves the joint targets of the first four joints by ``gain`` x J+ (target - end
    effector), position only; the targets stay within 80 % of each joint's torque limit of the measured position
    (kp x offset). Speaks arm-reach's observation layout (``exported``: the exported policy it takes its specs
    from)."""

    def __init__(self, exported, gain: float = 0.1, damping: float = 0.05, max_step_rad: float = 0.02):
        import mujoco

        from sim.articulated.profile import load_profile
        from sim.articulated.robots import joint_dof_addresses, joint_qpos_addresses, load_model

        self.obs_spec, self.action_spec, self.control_hz = exported.obs_spec, exported.action_spec, exported.control_hz
        profile = load_profile("franka")
        self.mujoco, self.model = mujoco, load_model(profile)
        self.data = mujoco.MjData(self.model)
        names = tuple(self.action_spec.names)
        self.qadr, self.dofs = joint_qpos_addresses(self.model, names), joint_dof_addresses(self.model, names)[:4]
        j = profile.joints
        self.window = 0.8 * np.broadcast_to(j.effort_limit_nm, (j.dim,)) / np.broadcast_to(j.kp_nm_per_rad, (j.dim,))
        self.ee = self.model.body(profile.bodies.end_effector).id
        self.default = np.array(profile.joints.default_position_rad)
        self.gain, self.damping, self.max_step = gain, damping, max_step_rad
        self.targets: np.ndarray | None = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        spec = self.obs_spec
        q = self.default + obs[spec.slice("joint_pos")] / spec.term("joint_pos").scale
        error = obs[spec.slice("position_error")] / spec.term("position_error").scale
        if self.targets is None:
            self.targets = q.copy()
        self.data.qpos[self.qadr] = q
        self.mujoco.mj_kinematics(self.model, self.data)
        self.mujoco.mj_comPos(self.model, self.data)
        jacp = np.zeros((3, self.model.nv))
        self.mujoco.mj_jacBody(self.model, self.data, jacp, None, self.ee)
        jac = jacp[:, self.dofs]
        step = jac.T @ np.linalg.solve(jac @ jac.T + self.damping**2 * np.eye(3), self.gain * error)
        self.targets[:4] += np.clip(step, -self.max_step, self.max_step)  # integral: no gravity sag
        self.targets = np.clip(self.targets, q - self.window, q + self.window)
        self.targets = np.clip(self.targets, self.action_spec.low, self.action_spec.high)
        return self.targets.copy()


def test_arm_target_stream_moves_the_end_effector_and_a_lost_stream_falls_back(arm_sil, articulated_policies, tmp_path):
    """The simulated Franka moves to its default pose (1 s), then reference/target asks for x 0.8 m (clipped to
    the workspace's 0.55 m) for 2.5 s and falls silent: the end effector closes on the clipped target, never
    beyond the workspace, and the lost stream (1 s) falls back to holding."""
    exported = load_policy(articulated_policies["arm-reach"]["zero"])
    policy = ReachPolicy(exported)
    profile = load_deploy_profile(LAUNCH / "sim_franka.yaml")
    config = ArmReference(timeout_s=0.3, lost_s=1.0, max_speed_m_s=0.25, duration_s=60)
    asked, clipped = (0.8, 0.1, 0.45), np.array([0.55, 0.1, 0.45])
    with (
        Ros2Node("deploy", domain_id=arm_sil, config=LOOPBACK_CONFIG) as node,
        FlightRecorder(tmp_path / "run.mcap", topics=profile.transport) as rec,
    ):
        runtime = streamed_runtime(node, policy, profile, ArmPlan(move_s=1.0), config, rec)
        topic = profile.transport.topic("target")
        assert topic.name == "/sim2real/reference/target"
        pub = node.publisher(topic.name, PoseStamped, topic.qos)
        assert pub.wait_for_subscribers(1, timeout_s=10.0)
        stop = stream(runtime, lambda: pub.publish(target(asked, frame="panda_link0")), "target", 2.5)
        try:
            runtime.run(timeout_s=30.0)
        finally:
            stop.set()
    fallback_s = assert_lost_fallback(runtime)

    log = read_log(tmp_path / "run.mcap")
    to_log = ros_minus_monotonic_ns() * 1e-9
    start = (runtime.plan_start_s + 1.0 + to_log) * 1e9  # the end of the move: the streamed phase begins
    since = (fallback_s + to_log) * 1e9
    poses = [(m.log_time_ns, m.msg.pose.position) for m in log.topic("/sim2real/state/pose")]
    ee = np.array([(p.x, p.y, p.z) for t, p in poses if start <= t <= since])
    errors = np.linalg.norm(ee - clipped, axis=1)
    assert len(ee) >= 40, len(ee)
    assert errors[0] > 0.25 and errors[-1] < 0.02, (errors[0], errors[-1])  # 1 mm at full rate, 2.5 s after
    assert ee[:, 0].max() < 0.55 + 0.02  # the workspace's edge, not the 0.8 m asked for
    # the policy saw a reference moving at 0.25 m/s from where the arm was, never the 0.29 m jump to the target
    obs = [m.msg.data for m in log.topic("/sim2real/policy/observation")]
    spec = policy.obs_spec
    seen = np.array([o[spec.slice("position_error")] for o in obs]) / spec.term("position_error").scale
    assert np.linalg.norm(seen[0]) < 0.01 and np.linalg.norm(seen, axis=1).max() < 0.15
    held = [m.msg for m in log.topic("/sim2real/command/joints") if m.log_time_ns > since and m.msg.mode != "stop"]
    assert len(held) >= 10 and all(c.mode == "fallback" for c in held)
    assert np.allclose(held[0].kp, profile.safety.joints.kp_nm_per_rad)  # hold with the profile's stiffness
