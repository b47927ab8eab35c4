"""PX4 <-> project conversions with hand-computed values: frames, the clock offset, the throttle curve, collective
thrust and body-rate setpoints; the options the bridge and the fake PX4 share."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from deploy.msgs.px4 import OffboardControlMode
from drivers.px4_convert import (
    ClockOffset,
    FrameError,
    ThrottleCurve,
    check_motor_map,
    frd_to_flu,
    from_px4_controls,
    ned_to_enu,
    normalized_to_thrust,
    position_to_enu,
    quat_enu_flu_to_ned_frd,
    quat_ned_frd_to_enu_flu,
    quat_rotate,
    thrust_to_normalized,
    to_px4_controls,
    to_px4_rates,
    velocity_to_enu,
)
from drivers.px4_wire import add_shared_arguments, control_mode, motor_options_from_args

C = math.sqrt(0.5)


def test_position_and_velocity_ned_to_enu():
    # 1 m north, 2 m east, 3 m down -> 2 m east (x), 1 m north (y), -3 m up
    np.testing.assert_array_equal(ned_to_enu([1.0, 2.0, 3.0]), [2.0, 1.0, -3.0])
    np.testing.assert_array_equal(position_to_enu([1.0, 2.0, -0.5], 1), [2.0, 1.0, 0.5])
    np.testing.assert_array_equal(position_to_enu([1.0, 2.0, -0.5], 2), [2.0, 1.0, 0.5])  # FRD world: z down too
    np.testing.assert_array_equal(velocity_to_enu([0.0, 0.0, -1.0], 1, [1, 0, 0, 0]), [0.0, 0.0, 1.0])  # climbing


def test_body_rates_frd_to_flu():
    # roll right (+p FRD) is roll right (+p FLU about x forward); pitch up is +q FRD, -q FLU; yaw right is +r FRD
    # (z down), i.e. clockwise seen from above: -r FLU
    np.testing.assert_array_equal(frd_to_flu([0.1, 0.2, 0.3]), [0.1, -0.2, -0.3])


def test_attitude_hand_values():
    # level, nose north: in ENU the nose points along +y -> yaw +90 deg about z up
    np.testing.assert_allclose(quat_ned_frd_to_enu_flu([1, 0, 0, 0]), [C, 0, 0, C], atol=1e-12)
    # level, nose east (NED yaw +90 deg about z down) -> ENU yaw 0: identity
    np.testing.assert_allclose(quat_ned_frd_to_enu_flu([C, 0, 0, C]), [1, 0, 0, 0], atol=1e-12)
    # nose north, pitched up 30 deg (FRD: +30 deg about y right): nose (north, up) = ENU (0, cos30, sin30)
    q = quat_ned_frd_to_enu_flu([math.cos(math.radians(15)), 0, math.sin(math.radians(15)), 0])
    np.testing.assert_allclose(quat_rotate(q, [1, 0, 0]), [0, math.cos(math.radians(30)), 0.5], atol=1e-12)
    # body up (FLU +z) of a level vehicle is world up
    np.testing.assert_allclose(quat_rotate(q, [0, 0, 1]), [0, -0.5, math.cos(math.radians(30))], atol=1e-12)


def test_attitude_round_trip_and_consistency_with_vectors():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q_ned = rng.normal(size=4)
        q_ned /= np.linalg.norm(q_ned)
        q_enu = quat_ned_frd_to_enu_flu(q_ned)
        back = quat_enu_flu_to_ned_frd(q_enu)
        np.testing.assert_allclose(back, q_ned * np.sign(q_ned[0]), atol=1e-12)
        v_frd = rng.normal(size=3)  # a body vector, both ways into the world
        np.testing.assert_allclose(quat_rotate(q_enu, frd_to_flu(v_frd)), ned_to_enu(quat_rotate(q_ned, v_frd)))


def test_body_frd_velocity_is_rotated_into_the_world():
    # nose east (NED yaw 90 deg), 1 m/s forward in the body -> 1 m/s east = ENU +x
    np.testing.assert_allclose(velocity_to_enu([1.0, 0.0, 0.0], 3, [C, 0, 0, C]), [1.0, 0.0, 0.0], atol=1e-12)
    with pytest.raises(FrameError, match="velocity_frame 0"):
        velocity_to_enu([1.0, 0.0, 0.0], 0, [1, 0, 0, 0])
    with pytest.raises(FrameError, match="pose_frame 0"):
        position_to_enu([0.0, 0.0, 0.0], 0)


def test_clock_offset_with_simulated_offset_and_jitter():
    """PX4 on another computer: its boot clock is 1234.5 s behind ours; latency 2 ms + jitter up to 8 ms, one
    sample in ten arrives within 0.1 ms of the fastest. The estimate is the true offset + the smallest latency,
    and no mapped stamp is in the future."""
    rng = np.random.default_rng(1)
    true_offset_ns = 1_234_500_000_000
    clock = ClockOffset(window_s=5.0)
    for i in range(500):  # 100 Hz for 5 s
        px4_us = 10_000_000 + i * 10_000
        latency_ns = 2_000_000 + (int(rng.uniform(0, 100_000)) if i % 10 == 0 else int(rng.uniform(0, 8e6)))
        arrival = px4_us * 1000 + true_offset_ns + latency_ns
        clock.observe(px4_us, arrival)
        assert clock.to_monotonic_ns(px4_us) <= arrival
    assert 2_000_000 <= clock.offset_ns - true_offset_ns <= 2_100_000
    assert clock.to_px4_us(clock.to_monotonic_ns(12_345_678)) == 12_345_678


def test_clock_offset_window_follows_a_step():
    clock = ClockOffset(window_s=1.0)
    clock.observe(0, 1_000)  # offset 1000 ns
    assert clock.offset_ns == 1_000
    clock.observe(1_000, 500_000_000 + 5_000)  # larger latency: the minimum stays
    assert clock.offset_ns == 1_000
    clock.observe(2_000_000, 2_000_000_000 + 9_000)  # 2 s later: the old minimum left the window
    assert clock.offset_ns == 9_000
    with pytest.raises(RuntimeError, match="no sample"):
        _ = ClockOffset().offset_ns


def test_throttle_curve_power_law_and_table():
    curve = ThrottleCurve(rpm_max=20_000.0, exponent=2.0)
    np.testing.assert_allclose(curve.normalized([0.0, 10_000.0, 20_000.0, 30_000.0, -5.0]), [0, 0.25, 1, 1, 0])
    np.testing.assert_allclose(curve.rpm([0.25, 1.0]), [10_000.0, 20_000.0])
    assert np.isnan(curve.normalized([math.nan]))[0]
    table = ThrottleCurve(rpm_max=20_000.0, table=((2_000.0, 0.0), (12_000.0, 0.5), (20_000.0, 1.0)))
    np.testing.assert_allclose(table.normalized([1_000.0, 7_000.0, 16_000.0]), [0.0, 0.25, 0.75])
    np.testing.assert_allclose(table.rpm([0.25, 0.75]), [7_000.0, 16_000.0])
    with pytest.raises(ValueError, match="rpm_max"):
        ThrottleCurve(rpm_max=0.0)
    with pytest.raises(ValueError, match="increasing"):
        ThrottleCurve(rpm_max=1.0, table=((2.0, 0.5), (1.0, 0.6)))


def test_motor_map_places_project_motors_in_px4_slots():
    motor_map = check_motor_map([1, 4, 2, 3])  # M1 FR -> 1, M2 BR -> 4, M3 BL -> 2, M4 FL -> 3 (PX4 quad X)
    controls = to_px4_controls([0.1, 0.2, 0.3, 0.4], motor_map)
    assert controls[:4] == pytest.approx([0.1, 0.3, 0.4, 0.2]) and all(math.isnan(c) for c in controls[4:])
    np.testing.assert_allclose(from_px4_controls(controls, motor_map), [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="distinct"):
        check_motor_map([1, 1, 2, 3])


def test_collective_thrust_to_normalized_hand_values_and_round_trip():
    # kf 1e-9 N/RPM^2, rpm_max 20000: 4 rotors at full speed give 4 * 1e-9 * 20000^2 = 1.6 N
    kf, square = 1e-9, ThrottleCurve(rpm_max=20_000.0, exponent=2.0)
    assert thrust_to_normalized(0.4, kf, square) == pytest.approx(0.25)  # exponent 2: thrust / 1.6 N
    assert thrust_to_normalized(1.6, kf, square) == pytest.approx(1.0)
    assert thrust_to_normalized(2.0, kf, square) == 1.0 and thrust_to_normalized(-1.0, kf, square) == 0.0
    assert math.isnan(thrust_to_normalized(math.nan, kf, square))
    linear = ThrottleCurve(rpm_max=20_000.0, exponent=1.0)
    assert thrust_to_normalized(0.4, kf, linear) == pytest.approx(0.5)  # 0.1 N per rotor = 10000 RPM
    table = ThrottleCurve(rpm_max=20_000.0, table=((2_000.0, 0.0), (12_000.0, 0.5), (20_000.0, 1.0)))
    assert thrust_to_normalized(4 * kf * 7_000.0**2, kf, table) == pytest.approx(0.25)
    for curve in (square, linear, table):
        for thrust in (0.05, 0.265, 0.9, 1.55):
            u = thrust_to_normalized(thrust, kf, curve)
            assert normalized_to_thrust(u, kf, curve) == pytest.approx(thrust, rel=1e-9)
    assert normalized_to_thrust(1.5, kf, square) == pytest.approx(1.6)  # clamped to full thrust
    with pytest.raises(ValueError, match="kf"):
        thrust_to_normalized(0.3, 0.0, square)


def test_rate_setpoint_flu_to_frd_and_thrust_down_negative():
    # FLU +x roll rate = right side down = FRD +x; FLU +y pitch rate (about left) = nose down = FRD -y; FLU -z yaw
    # rate (about up, clockwise seen from above) = nose right = FRD +z (about down)
    rates, thrust_body = to_px4_rates(0.4, [0.1, 0.2, -0.3], 1e-9, ThrottleCurve(rpm_max=20_000.0))
    np.testing.assert_allclose(rates, [0.1, -0.2, 0.3])
    np.testing.assert_allclose(thrust_body, [0.0, 0.0, -0.25])  # body z down: upward thrust is negative


def test_control_mode_is_the_highest_true_flag():
    assert control_mode(OffboardControlMode(direct_actuator=True)) == "direct_actuator"
    assert control_mode(OffboardControlMode(body_rate=True, direct_actuator=True)) == "body_rate"
    assert control_mode(OffboardControlMode(position=True, body_rate=True)) == "position"
    assert control_mode(OffboardControlMode()) is None


def test_options_kf_from_yaml_and_command_line(tmp_path):
    ap = argparse.ArgumentParser()
    add_shared_arguments(ap)
    config = tmp_path / "px4.yaml"
    config.write_text("px4: {rpm_max: 20000, kf: 3.16e-10, motor_map: [1, 4, 2, 3]}\n")
    assert motor_options_from_args(ap.parse_args(["--config", str(config)])).kf == 3.16e-10
    assert motor_options_from_args(ap.parse_args(["--config", str(config), "--kf", "2e-10"])).kf == 2e-10
    assert motor_options_from_args(ap.parse_args(["--rpm-max", "20000"])).kf is None  # rpm policies need none
    with pytest.raises(ValueError, match="kf"):
        motor_options_from_args(ap.parse_args(["--rpm-max", "20000", "--kf", "-1"]))
    config.write_text("px4: {rpm_max: 20000, kf_typo: 1}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        motor_options_from_args(ap.parse_args(["--config", str(config)]))
