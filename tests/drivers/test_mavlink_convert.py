"""The MAVLink bridge's conversions with hand-computed values: ODOMETRY and ATTITUDE_QUATERNION + LOCAL_POSITION_NED
(NED / FRD) -> ENU / FLU, RateThrustCommand -> SET_ATTITUDE_TARGET (rates FLU -> FRD, newtons -> normalized and
back), battery messages, the two autopilots' custom_mode encodings, the options file, the autopilot's identity from
its HEARTBEAT, and the refusal of rpm policies."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import yaml

from deploy.profile import check_policy, load_deploy_profile
from drivers.mavlink_bridge import main as bridge_main
from drivers.mavlink_convert import (
    BootClock,
    attitude_target,
    battery_from_status,
    battery_from_sys_status,
    state_from_attitude_position,
    state_from_odometry,
    thrust_newtons,
)
from drivers.mavlink_link import AutopilotLink
from drivers.mavlink_wire import (
    ARDUPILOT,
    PX4,
    MavlinkOptions,
    add_mavlink_arguments,
    load_options,
    mavlink,
    px4_custom_mode,
    px4_main_sub,
    rpm_refusal,
)
from drivers.px4_convert import FrameError, ThrottleCurve
from sim.quadrotor.actions import action_spec
from sim.quadrotor.config import QuadrotorTaskCfg
from tests.drivers._px4_client import ROOT

S = math.sqrt(0.5)
KF, RPM_MAX, MASS = 3.16e-10, 21702.0, 0.027
CURVE = ThrottleCurve(RPM_MAX, 2.0)
NAN21 = [math.nan] * 21


def odometry(q, v=(1.0, 0.0, 0.0), frame=1, child=12, rates=(0.1, 0.2, 0.3)):
    return mavlink.MAVLink_odometry_message(
        123, frame, child, 1.0, 2.0, -3.0, list(q), *v, *rates, NAN21, NAN21, 0, 0, 0
    )


def test_odometry_ned_frd_to_enu_flu():
    # nose east (yaw +90 deg about NED z down) is the project's identity attitude (nose along ENU x = east)
    state = state_from_odometry(odometry((S, 0.0, 0.0, S)))
    np.testing.assert_allclose(state.position, [2.0, 1.0, 3.0])  # (n, e, d) -> (e, n, -d)
    np.testing.assert_allclose(state.quat, [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(state.velocity, [1.0, 0.0, 0.0], atol=1e-12)  # 1 m/s forward = east
    np.testing.assert_allclose(state.rates, [0.1, -0.2, -0.3])  # FRD -> FLU
    # nose north, level: ENU yaw +90 deg; forward body velocity = north = ENU y
    state = state_from_odometry(odometry((1.0, 0.0, 0.0, 0.0)))
    np.testing.assert_allclose(state.quat, [S, 0.0, 0.0, S], atol=1e-12)
    np.testing.assert_allclose(state.velocity, [0.0, 1.0, 0.0], atol=1e-12)
    # velocity already in the local frame (child_frame_id LOCAL_NED): converted like a position
    state = state_from_odometry(odometry((1.0, 0.0, 0.0, 0.0), v=(1.0, 2.0, 3.0), child=1))
    np.testing.assert_allclose(state.velocity, [2.0, 1.0, -3.0])
    # no estimate yet: NaN / zero quaternion -> not finite, nothing is published
    assert not state_from_odometry(odometry((0.0, 0.0, 0.0, 0.0))).pose_finite


@pytest.mark.parametrize(("frame", "child"), [(8, 12), (1, 0), (12, 12)])
def test_odometry_in_an_unknown_frame_is_refused(frame, child):
    with pytest.raises(FrameError, match="ODOMETRY"):
        state_from_odometry(odometry((1.0, 0.0, 0.0, 0.0), frame=frame, child=child))


def test_attitude_quaternion_and_local_position_ned_to_enu_flu():
    att = mavlink.MAVLink_attitude_quaternion_message(10, S, 0.0, 0.0, S, 0.1, 0.2, 0.3, [0.0] * 4)
    pos = mavlink.MAVLink_local_position_ned_message(10, 1.0, 2.0, -3.0, 4.0, 5.0, -6.0)
    state = state_from_attitude_position(att, pos)
    np.testing.assert_allclose(state.position, [2.0, 1.0, 3.0])
    np.testing.assert_allclose(state.velocity, [5.0, 4.0, 6.0])
    np.testing.assert_allclose(state.quat, [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(state.rates, [0.1, -0.2, -0.3])


def test_set_attitude_target_rates_frd_and_thrust_normalized_through_the_curve():
    hover_n = MASS * 9.81
    rates, u = attitude_target(hover_n, (0.1, 0.2, 0.3), KF, CURVE)
    assert rates == pytest.approx((0.1, -0.2, -0.3))  # FLU -> FRD
    assert u == pytest.approx(hover_n / (4 * KF * RPM_MAX**2), rel=1e-9)  # exponent 2: fraction of full thrust
    assert u == pytest.approx(0.4449, abs=1e-4)
    assert thrust_newtons(u, KF, CURVE) == pytest.approx(hover_n, rel=1e-9)  # and back
    # exponent 1 (ESC speed linear in the command): u = rpm / rpm_max at rpm = sqrt(T / (4 kf))
    _, u1 = attitude_target(hover_n, (0.0, 0.0, 0.0), KF, ThrottleCurve(RPM_MAX, 1.0))
    assert u1 == pytest.approx(math.sqrt(hover_n / (4 * KF)) / RPM_MAX, rel=1e-9)
    assert attitude_target(-1.0, (0, 0, 0), KF, CURVE)[1] == 0.0  # no negative thrust
    assert attitude_target(10.0, (0, 0, 0), KF, CURVE)[1] == 1.0  # clamped at full
    assert thrust_newtons(1.5, KF, CURVE) == pytest.approx(4 * KF * RPM_MAX**2)


def test_px4_and_ardupilot_custom_mode_encodings():
    assert px4_custom_mode(6) == 0x00060000 == PX4.offboard_mode  # OFFBOARD: main 6 in bits 16-23
    assert px4_custom_mode(4, 6) == 0x06040000 == PX4.land_mode  # AUTO_LAND: main 4, sub 6 in bits 24-31
    assert px4_main_sub(0x06040000) == (4, 6) and px4_main_sub(0x00030000) == (3, 0)
    assert PX4.mode_name(0x00060000) == "OFFBOARD" and PX4.mode_name(0x06040000) == "AUTO_LAND"
    assert PX4.set_mode_params(PX4.land_mode) == (1.0, 4.0, 6.0)
    assert PX4.set_mode_params(PX4.offboard_mode) == (1.0, 6.0, 0.0)
    assert PX4.mode_of_params(4.0, 6.0) == PX4.land_mode
    assert ARDUPILOT.offboard_mode == 20 and ARDUPILOT.land_mode == 9 and 4 in ARDUPILOT.offboard_modes
    assert ARDUPILOT.mode_name(20) == "GUIDED_NOGPS" and ARDUPILOT.mode_name(9) == "LAND"
    assert ARDUPILOT.set_mode_params(20) == (1.0, 20.0, 0.0) and ARDUPILOT.mode_of_params(9.0, 0.0) == 9
    assert (PX4.mav_autopilot, ARDUPILOT.mav_autopilot) == (12, 3)
    assert ARDUPILOT.mode_name(77) == "custom_mode 77"


def test_battery_messages():
    msg = mavlink.MAVLink_battery_status_message(
        0, 0, 0, 2500, [4100, 4000] + [65535] * 8, 150, -1, -1, -1, 0, 0, [0, 0, 0, 0], 0, 0
    )
    volts, amps, remaining, cells = battery_from_status(msg)
    assert volts == pytest.approx(8.1) and cells == pytest.approx([4.1, 4.0]) and amps == pytest.approx(1.5)
    assert math.isnan(remaining)  # -1: unknown
    sys_status = mavlink.MAVLink_sys_status_message(0, 0, 0, 0, 11100, -1, 87, 0, 0, 0, 0, 0, 0)
    volts, amps, remaining, cells = battery_from_sys_status(sys_status)
    assert volts == pytest.approx(11.1) and math.isnan(amps) and remaining == pytest.approx(0.87) and cells == []
    unknown = mavlink.MAVLink_sys_status_message(0, 0, 0, 0, 65535, -1, -1, 0, 0, 0, 0, 0, 0)
    assert all(math.isnan(v) for v in battery_from_sys_status(unknown)[:3])


def test_a_boot_clock_that_goes_back_is_a_reboot():
    clock = BootClock(reboot_s=1.0)
    assert not clock.rebooted(5_000_000) and not clock.rebooted(5_010_000)
    assert not clock.rebooted(4_500_000)  # reordered by 0.5 s: not a reboot
    assert clock.rebooted(1_000)  # back to the start
    assert not clock.rebooted(11_000)


def parse(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    add_mavlink_arguments(ap)
    return ap.parse_args(argv)


def test_options_files_and_command_line():
    px4 = load_options(parse("--config", str(ROOT / "launch" / "mavlink_px4_bridge.yaml")))
    assert px4.autopilot == "px4" and px4.connection == "udpin:0.0.0.0:14540" and px4.kf == KF
    assert px4.curve == CURVE and px4.source_component == 191 and px4.setpoint_hz >= 10
    ardu = load_options(parse("--config", str(ROOT / "launch" / "mavlink_ardupilot_bridge.yaml"), "--kf", "1e-9"))
    assert ardu.autopilot == "ardupilot" and ardu.connection == "udpin:0.0.0.0:14550" and ardu.kf == 1e-9
    assert load_options(parse("--rpm-max", "20000", "--autopilot", "ardupilot")).connection.endswith(":14550")


def test_options_errors_say_what_is_expected(tmp_path):
    with pytest.raises(ValueError, match="rpm_max is required"):
        load_options(parse())
    bad = tmp_path / "bad.yaml"
    bad.write_text("mavlink: {rpm_max: 20000, motor_map: [1, 2, 3, 4]}\n")
    with pytest.raises(ValueError, match=r"unknown keys \['motor_map'\]"):
        load_options(parse("--config", str(bad)))
    bad.write_text("mavlink: {rpm_max: 20000, setpoint_hz: 2}\n")
    with pytest.raises(ValueError, match="setpoint_hz: expected >= 10 Hz"):
        load_options(parse("--config", str(bad)))
    with pytest.raises(ValueError, match="kf: expected N/RPM"):
        load_options(parse("--rpm-max", "20000", "--kf", "-1"))


def heartbeat(autopilot: int, custom_mode: int, armed: bool = False):
    base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (mavlink.MAV_MODE_FLAG_SAFETY_ARMED if armed else 0)
    return mavlink.MAVLink_heartbeat_message(2, autopilot, base, custom_mode, 3, 3)


def options(autopilot: str) -> MavlinkOptions:
    return MavlinkOptions(autopilot, "udpin:127.0.0.1:1", CURVE, KF)


def test_the_heartbeat_names_the_autopilot_and_must_agree_with_the_configured_one(caplog):
    auto = AutopilotLink(None, options("auto"))
    auto.handle(mavlink.MAVLink_heartbeat_message(18, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3))  # a companion
    assert auto.autopilot is None and not auto.usable
    auto.handle(heartbeat(3, 20, armed=True))
    assert auto.autopilot is ARDUPILOT and auto.engaged  # GUIDED_NOGPS, armed
    wrong = AutopilotLink(None, options("px4"))
    wrong.handle(heartbeat(3, 0))
    assert wrong.mismatch and not wrong.usable
    assert "HEARTBEAT says MAV_AUTOPILOT 3 (ardupilot), but the bridge is set for px4" in caplog.text


def test_an_accepted_command_counts_before_the_next_heartbeat():
    class Mav:
        def command_long_send(self, *args):
            self.sent = args

    conn = type("Conn", (), {"mav": Mav()})()
    link = AutopilotLink(conn, options("px4"))
    link.handle(heartbeat(12, px4_custom_mode(3)))
    link.command(mavlink.MAV_CMD_DO_SET_MODE, 1.0, 6.0, expect_mode=PX4.offboard_mode)
    assert conn.mav.sent[:3] == (1, 1, mavlink.MAV_CMD_DO_SET_MODE) and conn.mav.sent[4:6] == (1.0, 6.0)
    link.handle(mavlink.MAVLink_command_ack_message(mavlink.MAV_CMD_DO_SET_MODE, 0))
    assert link.mode == PX4.offboard_mode and not link.engaged
    link.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0)
    link.handle(mavlink.MAVLink_command_ack_message(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 2))  # DENIED
    assert not link.armed
    link.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0)
    link.handle(mavlink.MAVLink_command_ack_message(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0))
    assert link.engaged
    link.handle(heartbeat(12, px4_custom_mode(4, 6), armed=True))  # the HEARTBEAT is the truth
    assert link.mode == PX4.land_mode and not link.engaged


def test_rpm_policies_are_refused_with_what_to_do(capsys):
    text = rpm_refusal("MotorCommand")
    for part in ("PX4 removed direct actuator control over MAVLink", "~v1.14", "ArduPilot has none", "ctbr"):
        assert part in text
    assert "drivers.px4_bridge" in text  # the way for an rpm policy on PX4
    with pytest.raises(SystemExit) as exit_info:
        bridge_main(["--profile", str(ROOT / "launch" / "px4_quadrotor.yaml"), "--rpm-max", "21702"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "px4_quadrotor.yaml (action interface rpm): an rpm policy (per-motor speeds) cannot fly over MAVLink" in err


@pytest.mark.parametrize("autopilot", ["px4", "ardupilot"])
def test_the_mavlink_profiles_take_a_ctbr_policy_and_their_bridge_options_fit_the_robot(autopilot):
    profile = load_deploy_profile(ROOT / "launch" / f"mavlink_{autopilot}.yaml")
    assert profile.action_interface == "ctbr" and profile.safety.quadrotor.interface == "ctbr"
    assert profile.transport.topic("rate_command").name.endswith("/command/rates")
    cfg = QuadrotorTaskCfg(action_interface="ctbr")

    class CtbrPolicy:
        obs_spec, action_spec, control_hz = cfg.policy_obs_spec(), action_spec("ctbr", cfg.params), 100.0

    check_policy(profile, CtbrPolicy(), policy_robot_hash=profile.robot_hash)  # raises on a mismatch
    bridge = yaml.safe_load((ROOT / "launch" / f"mavlink_{autopilot}_bridge.yaml").read_text())["mavlink"]
    assert bridge["autopilot"] == autopilot
    assert bridge["kf"] == pytest.approx(profile.robot.kf) and bridge["rpm_max"] == pytest.approx(profile.robot.max_rpm)
