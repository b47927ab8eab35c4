"""IMU: log readers (MCAP through two independent readers, rosbag2 folder, CSV) and noise/bias recovery."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.allan import allan_deviation, read_noise
from calibration.errors import CalibrationFileError, NotEnoughViewsError
from calibration.imu import (
    AccelCalibration,
    imu_noise,
    multi_position_accel,
    static_biases,
    synthetic_multi_position_log,
    synthetic_static_log,
)
from calibration.imu_io import ImuLog, read_imu_log, write_imu_csv, write_imu_mcap
from calibration.imu_outputs import imu_randomization_spec, kalibr_dict, write_kalibr_yaml
from sim.randomization import RandomizationSpec

TRUE = {"gyro_noise_density": 0.005, "gyro_random_walk": 5e-4, "accel_noise_density": 0.02, "accel_random_walk": 2e-3}


@pytest.fixture(scope="module")
def long_log() -> ImuLog:
    # 1 hour at 100 Hz: the +1/2 slope shows from ~20 s (gyro) / ~20 s (accel) to 400 s
    return synthetic_static_log(3600, 100.0, np.random.default_rng(0), **TRUE)


@pytest.fixture
def short_log() -> ImuLog:
    return synthetic_static_log(20, 200.0, np.random.default_rng(1), **TRUE)


def test_mcap_roundtrip_two_readers(tmp_path, short_log):
    path = write_imu_mcap(short_log, tmp_path / "imu.mcap")
    for reader in ("auto", "rosbags"):  # mcap-ros2-support and rosbags' AnyReader
        back = read_imu_log(path, reader=reader)
        assert back.topic == "/imu"
        np.testing.assert_allclose(back.time, short_log.time, atol=1e-9)
        np.testing.assert_array_equal(back.gyro, short_log.gyro)
        np.testing.assert_array_equal(back.accel, short_log.accel)


def test_rosbag2_folder(tmp_path, short_log):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Imu, Header, Time = (
        ts.types["sensor_msgs/msg/Imu"],
        ts.types["std_msgs/msg/Header"],
        ts.types["builtin_interfaces/msg/Time"],
    )
    Vector3, Quaternion = ts.types["geometry_msgs/msg/Vector3"], ts.types["geometry_msgs/msg/Quaternion"]
    bag = tmp_path / "bag"
    with Writer(bag, version=8) as writer:
        conn = writer.add_connection("/robot/imu", Imu.__msgtype__, typestore=ts)
        writer.add_connection("/robot/imu2", Imu.__msgtype__, typestore=ts)
        for t, g, a in zip(short_log.time[:500], short_log.gyro, short_log.accel):
            ns = round(float(t) * 1e9)
            msg = Imu(
                Header(Time(ns // 10**9, ns % 10**9), "imu"), Quaternion(0.0, 0.0, 0.0, 1.0), np.zeros(9),
                Vector3(*g), np.zeros(9), Vector3(*a), np.zeros(9),
            )  # fmt: skip
            writer.write(conn, ns, ts.serialize_cdr(msg, Imu.__msgtype__))
    with pytest.raises(CalibrationFileError, match="--topic"):
        read_imu_log(bag)
    back = read_imu_log(bag, topic="/robot/imu")
    np.testing.assert_array_equal(back.gyro, short_log.gyro[:500])
    assert back.rate_hz == pytest.approx(200.0, rel=1e-6)


def test_csv_roundtrip_and_errors(tmp_path, short_log):
    back = read_imu_log(write_imu_csv(short_log, tmp_path / "imu.csv"))
    np.testing.assert_allclose(back.accel, short_log.accel, rtol=1e-8)
    bad = tmp_path / "bad.csv"
    bad.write_text("t,wx,wy,wz\n0,0,0,0\n")
    with pytest.raises(CalibrationFileError, match="gyro_x"):
        read_imu_log(bad)
    with pytest.raises(CalibrationFileError, match="does not exist"):
        read_imu_log(tmp_path / "nope.mcap")


def test_static_biases(short_log):
    b = static_biases(short_log)
    # 20 s at 200 Hz: white-noise std of the mean ~ N / sqrt(T) plus the random walk drift ~ K sqrt(T)
    np.testing.assert_allclose(b.gyro_bias, [0.01, -0.02, 0.005], atol=0.004)
    np.testing.assert_allclose(b.accel_bias, [0.05, -0.08, 0.1], atol=0.015)
    np.testing.assert_allclose(b.gyro_std, 0.005 * np.sqrt(200), rtol=0.1)


def test_allan_recovers_noise(long_log):
    noise = imu_noise(long_log)
    assert noise.noise_density("gyro") == pytest.approx(TRUE["gyro_noise_density"], rel=0.05)
    assert noise.noise_density("accel") == pytest.approx(TRUE["accel_noise_density"], rel=0.05)
    rw_g, seen_g = noise.random_walk("gyro")
    rw_a, seen_a = noise.random_walk("accel")
    assert seen_g and seen_a
    assert rw_g == pytest.approx(TRUE["gyro_random_walk"], rel=0.3)
    assert rw_a == pytest.approx(TRUE["accel_random_walk"], rel=0.3)


def test_allan_white_noise_only_reads_density():
    rng = np.random.default_rng(5)
    taus, adev = allan_deviation(rng.normal(0, 0.1 * np.sqrt(50.0), 50 * 600), 50.0)
    n = read_noise(taus, adev)
    assert n.noise_density == pytest.approx(0.1, rel=0.05)
    assert n.random_walk is None  # no +1/2 slope in pure white noise


def test_kalibr_yaml_and_randomization_spec(tmp_path, long_log):
    noise = imu_noise(long_log)
    path = write_kalibr_yaml(noise, "/imu0", tmp_path / "imu.yaml")
    import yaml

    data = yaml.safe_load(path.read_text())
    assert set(data) == {
        "accelerometer_noise_density", "accelerometer_random_walk", "gyroscope_noise_density",
        "gyroscope_random_walk", "rostopic", "update_rate",
    }  # fmt: skip
    assert data["update_rate"] == pytest.approx(100.0) and data["rostopic"] == "/imu0"
    assert data == kalibr_dict(noise, "/imu0")
    spec = imu_randomization_spec(noise, static_biases(long_log), noise_spread=0.5)
    spec.to_yaml(tmp_path / "spec.yaml")
    back = RandomizationSpec.from_yaml(tmp_path / "spec.yaml")
    gyro = back.terms["obs_noise.angular_velocity"]
    sigma = TRUE["gyro_noise_density"] * np.sqrt(100.0)
    assert gyro.distribution == "uniform" and gyro.operation == "absolute" and gyro.unit == "rad/s"
    assert (gyro.low + gyro.high) / 2 == pytest.approx(sigma, rel=0.05)
    assert gyro.low == pytest.approx(0.5 * (gyro.low + gyro.high) / 2, rel=1e-9)  # spread 0.5 -> [0.5, 1.5] x measured
    acc = back.terms["obs_noise.linear_acceleration"]
    assert acc.unit == "m/s^2" and (acc.low + acc.high) / 2 == pytest.approx(0.02 * 10, rel=0.05)
    for key in ("imu_gyro_bias", "imu_accel_bias"):
        term = back.terms[key]
        assert term.distribution == "normal" and term.per_component and term.operation == "absolute" and term.std > 0


def test_multi_position_recovers_scale_misalignment_bias():
    true = AccelCalibration(
        np.array([1.02, 0.98, 1.01]), np.array([0.01, -0.005, 0.008]), np.array([0.1, -0.15, 0.2]), 0, 0, 0
    )
    log = synthetic_multi_position_log(true, 18, np.random.default_rng(2))
    cal = multi_position_accel(log)
    assert cal.poses == 18
    np.testing.assert_allclose(cal.scale, true.scale, atol=1e-3)
    np.testing.assert_allclose(cal.misalignment_rad, true.misalignment_rad, atol=1e-3)
    np.testing.assert_allclose(cal.bias, true.bias, atol=0.01)
    assert cal.residual_rms < 0.01 < cal.raw_residual_rms


def test_multi_position_needs_poses():
    true = AccelCalibration(np.ones(3), np.zeros(3), np.zeros(3), 0, 0, 0)
    with pytest.raises(NotEnoughViewsError, match="static poses"):
        multi_position_accel(synthetic_multi_position_log(true, 5, np.random.default_rng(3)))


def test_imu_log_validation():
    with pytest.raises(CalibrationFileError, match="increasing"):
        ImuLog(np.array([0.0, 0.0]), np.zeros((2, 3)), np.zeros((2, 3)))
