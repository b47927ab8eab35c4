"""Profiles: presets, loading from a dict / YAML ``safety:`` section, and errors that say what to do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploy.safety import PRESETS, ProfileError, RobotClass, load_profile, profile_from_dict


def test_presets_build_and_cite_facts():
    cf = PRESETS["crazyflie"]()
    assert cf.common.max_heartbeat_age_s == 0.5  # PX4 COM_RC_LOSS_T
    assert cf.quadrotor.envelope.max_tilt_rad == pytest.approx(math.radians(60))  # PX4 FD_FAIL_R/P
    assert cf.quadrotor.envelope.max_tilt_duration_s == 0.3
    assert (cf.quadrotor.envelope.battery_low_fraction, cf.quadrotor.envelope.battery_critical_fraction) == (0.15, 0.07)
    assert cf.quadrotor.fallback.blind_timeout_s == 2.0  # Crazyflie supervisor
    a1 = PRESETS["a1"]()
    assert a1.legged.damping_kd_nm_s_per_rad == 8.0 and a1.joints.torque_max_nm[0] == 33.5
    assert a1.command_size == 12
    fr = PRESETS["franka"]()
    assert fr.command_size == 7 and fr.robot_class is RobotClass.ARM
    for p in (cf, a1, fr):
        assert np.all(p.command_low() < p.command_high()) and np.all(p.command_max_rate_per_s() > 0)
    assert cf.common.inference_deadline_s == cf.common.control_period_s


def test_override_on_preset_and_defaults():
    p = profile_from_dict({"preset": "crazyflie", "quadrotor": {"envelope": {"geofence_radius_m": 3}}})
    assert p.quadrotor.envelope.geofence_radius_m == 3.0
    assert p.quadrotor.envelope.altitude_ceiling_m == 2.0  # untouched default
    p = profile_from_dict({"preset": "a1", "common": {"control_period_s": 0.01}})
    assert p.common.inference_deadline_s == 0.01  # derived from the new period, not the preset's
    p = profile_from_dict({"preset": "a1", "joints": {"torque_max_nm": 20}})
    assert p.joints.torque_max_nm == (20.0,) * 12  # a scalar broadcasts over the joints


def test_custom_arm_from_scratch():
    p = profile_from_dict(
        {
            "robot_class": "arm",
            "joints": {
                "names": ["j1", "j2"],
                "position_min_rad": [-1, -2],
                "position_max_rad": [1, 2],
                "velocity_max_rad_s": 2.0,
                "torque_max_nm": [10, 5],
                "kp_nm_per_rad": 50,
                "kd_nm_s_per_rad": 2,
            },
        }
    )
    assert p.command_size == 2 and p.joints.target_max_rate_rad_s == (2.0, 2.0)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"robot_class": "quadrotor", "common": {"max_state_age_ms": 100}}, "expected 'max_state_age_s'"),
        ({"preset": "a1", "legged": {"max_base_tilt_deg": 75}}, "x pi/180"),
        ({"preset": "a1", "legged": {"max_base_tilt_rad": 75}}, "probably in degrees"),
        ({"preset": "crazyflie", "quadrotor": {"envelope": {"battery_low_fraction": 15}}}, "not percent"),
        ({"preset": "franka", "joints": {"torque_max_nm": [1, 2]}}, "7 values, one per joint"),
        ({"robot_class": "arm"}, "joints section"),
        ({"robot_class": "quadrotor", "common": {"control_period_s": "10 ms"}}, "not '500 ms'"),
        ({"robot_class": "quadrotor", "commn": {}}, "Did you mean \\['common'\\]"),
        ({"robot_class": "boat"}, "expected one of"),
        ({"preset": "nope"}, "expected one of"),
        ({}, "missing 'robot_class'"),
        ({"preset": "a1", "robot_class": "arm"}, "drop one of them"),
        ({"robot_class": "quadrotor", "quadrotor": {"body": {"max_rpm": 1000}}}, "min_rpm < max_rpm"),
        ({"robot_class": "quadrotor", "quadrotor": {"body": {"mass_kg": 1.0}}}, "above the hover speed"),
        ({"robot_class": "quadrotor", "common": {"max_state_age_s": -1}}, "> 0"),
        ({"robot_class": "quadrotor", "common": {"max_state_age_s": math.nan}}, "finite"),
        ({"robot_class": "quadrotor", "common": {"max_consecutive_overruns": 2.5}}, "integer"),
        ({"preset": "a1", "joints": {"names": ["a"] * 12}}, "unique joint names"),
        ({"robot_class": "quadrotor", "joints": {}}, "missing required keys"),
    ],
)
def test_bad_profiles_are_refused_clearly(section, message):
    with pytest.raises(ProfileError, match=message):
        profile_from_dict(section)


def test_load_yaml(tmp_path):
    path = tmp_path / "robot.yaml"
    path.write_text("name: cf\nsafety:\n  preset: crazyflie\n  common:\n    max_heartbeat_age_s: 0.25\n")
    p = load_profile(path)
    assert p.common.max_heartbeat_age_s == 0.25 and p.robot_class is RobotClass.QUADROTOR
    (tmp_path / "no.yaml").write_text("name: x\n")
    with pytest.raises(ProfileError, match="no top-level 'safety:'"):
        load_profile(tmp_path / "no.yaml")
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "missing.yaml")


def test_consistency_and_level_descent_keys():
    p = profile_from_dict(
        {
            "preset": "crazyflie",
            "common": {"attitude_jump_rad": 0.2, "consistency_max_rejections": 5},
            "quadrotor": {
                "consistency": {"position_jump_m": 0.05, "max_accel_m_s2": 40},
                "level_descent": {"descent_rate_m_s": 0.3},
                "touchdown": {"height_m": 0.15},
            },
        }
    )
    assert p.common.attitude_jump_rad == 0.2 and p.common.consistency_max_rejections == 5
    assert p.quadrotor.consistency.position_jump_m == 0.05 and p.quadrotor.consistency.max_accel_m_s2 == 40.0
    assert p.quadrotor.level_descent_max_s() == pytest.approx(2.0 / 0.3 + 3.0)
    assert p.quadrotor.touchdown.height_m == 0.15
    a1 = profile_from_dict({"preset": "a1", "joints": {"position_jump_rad": 0.2}})
    assert a1.joints.position_jump_rad == (0.2,) * 12
    with pytest.raises(ProfileError, match="expected 'attitude_jump_rad'"):
        profile_from_dict({"preset": "crazyflie", "common": {"attitude_jump_deg": 6}})
    with pytest.raises(ProfileError, match="probably in degrees"):
        profile_from_dict({"preset": "crazyflie", "common": {"attitude_jump_rad": 6}})
    with pytest.raises(ProfileError, match="max_thrust_fraction"):
        profile_from_dict({"preset": "crazyflie", "quadrotor": {"level_descent": {"max_thrust_fraction": 0.9}}})
