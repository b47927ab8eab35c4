"""Streamed references of the articulated robots (deploy/runtime/reference_articulated.py): a legged robot's
cmd_vel and an arm's end-effector target, clipped into what the policy was trained with and rate-limited; a
stale stream stands the robot up / holds the arm, a lost one falls back. Unit tests without DDS, then one run
per class over DDS against the simulated robot."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.articulated_plan import ArmPlan, LeggedPlan, StreamedArticulatedPlan
from deploy.msgs import Point, Pose, PoseStamped, Quaternion, Twist, Vector3, make_header
from deploy.profile import DeployProfileError, load_deploy_profile
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
