"""Calibration benchmark: time for 30 ChArUco views at 1280x720, and recovered-vs-true numbers.

Prints JSON lines (one per measurement). Run: ``.venv/bin/python benchmarks/calibration.py``
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.boards import BoardSpec
from calibration.camera import calibrate_camera, calibrate_detections, detect_views
from calibration.camera_model import CameraModel
from calibration.handeye import calibrate_hand_eye, make_transform, synthetic_hand_eye
from calibration.imu import (
    AccelCalibration,
    imu_noise,
    multi_position_accel,
    static_biases,
    synthetic_multi_position_log,
    synthetic_static_log,
)
from calibration.synthetic_camera import reprojection_difference_px, synthetic_views
from calibration.thrust import fit_thrust_stand
from calibration.thrust_report import CF_TRUTH, synthetic_stand_log


def emit(**row) -> None:
    sys.stdout.write(json.dumps(row, default=float) + "\n")
    sys.stdout.flush()


def row(quantity: str, true: float, recovered: float, unit: str = "", **extra) -> None:
    err = abs(recovered - true) / abs(true) if true else abs(recovered)
    emit(kind="recovered_vs_true", quantity=quantity, true=true, recovered=recovered, rel_error=err, unit=unit, **extra)


def camera_benchmark() -> None:
    cam = CameraModel(
        np.array([[910.0, 0, 641.5], [0, 915.0, 358.0], [0, 0, 1]]), [-0.3, 0.1, 0.0006, -0.0004, 0.0], 1280, 720
    )
    board = BoardSpec("charuco", 11, 8, 0.03, 0.022)
    t0 = time.perf_counter()
    images = synthetic_views(board, cam, 30, seed=0)
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    detections, missing, size = detect_views(images, board)
    t_detect = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = calibrate_detections(detections, size)
    t_cal = time.perf_counter() - t0
    emit(
        kind="timing",
        what="charuco pinhole calibration, 30 views 1280x720",
        views=30,
        views_without_board=len(missing),
        views_used=len(result.per_view_rms_px),
        detect_s=t_detect,
        calibrate_s=t_cal,
        total_s=t_detect + t_cal,
        render_s_not_counted=t_render,
        rms_px=result.rms_px,
        cv2=cv2.__version__,
        threads=cv2.getNumThreads(),
        cpu=platform.processor() or platform.machine(),
    )
    est = result.camera
    for q in ("fx", "fy", "cx", "cy"):
        row(f"camera charuco 1280x720x30 {q}", getattr(cam, q), getattr(est, q), "px")
    row("camera charuco 1280x720x30 k1", cam.D[0], est.D[0])
    emit(
        kind="recovered_vs_true",
        quantity="camera charuco 1280x720x30 model difference (central 60%)",
        true=0.0,
        recovered=reprojection_difference_px(cam, est),
        unit="px",
    )
    for kind, model, true in (
        (
            "chessboard",
            "pinhole",
            CameraModel(
                np.array([[520.0, 0, 323.5], [0, 524, 236], [0, 0, 1]]), [-0.28, 0.09, 0.0008, -0.0006, 0], 640, 480
            ),
        ),
        (
            "charuco",
            "fisheye",
            CameraModel(
                np.array([[300.0, 0, 318], [0, 302, 242], [0, 0, 1]]), [0.05, -0.01, 0.002, -0.001], 640, 480, "fisheye"
            ),
        ),
    ):
        b = BoardSpec(kind, 9, 6, 0.03, 0.022 if kind == "charuco" else None)
        r = calibrate_camera(synthetic_views(b, true, 14, seed=3), b, model=model).camera
        for q in ("fx", "fy", "cx", "cy"):
            row(f"camera {kind} {model} 640x480x14 {q}", getattr(true, q), getattr(r, q), "px")


def hand_eye_benchmark() -> None:
    X = make_transform(Rotation.from_rotvec([0.1, -0.2, 1.3]).as_matrix(), [0.05, -0.02, 0.08])
    flange, board = synthetic_hand_eye(X, 15, np.random.default_rng(1), 0.2, 0.001)
    for m, r in calibrate_hand_eye(flange, board).items():
        rot = float(np.degrees(Rotation.from_matrix(X[:3, :3].T @ r.transform[:3, :3]).magnitude()))
        emit(
            kind="recovered_vs_true",
            quantity=f"hand-eye {m} (15 poses, 0.2 deg/1 mm noise)",
            rotation_error_deg=rot,
            translation_error_m=float(np.linalg.norm(r.transform[:3, 3] - X[:3, 3])),
            backend=r.backend,
            residual_deg=r.rotation_residual_deg,
            residual_m=r.translation_residual_m,
        )


def imu_benchmark() -> None:
    true = {
        "gyro_noise_density": 0.005,
        "gyro_random_walk": 5e-4,
        "accel_noise_density": 0.02,
        "accel_random_walk": 2e-3,
    }
    log = synthetic_static_log(3600, 100.0, np.random.default_rng(0), **true)
    t0 = time.perf_counter()
    noise = imu_noise(log)
    emit(kind="timing", what="Allan deviation, 1 h at 100 Hz, 6 axes", seconds=time.perf_counter() - t0)
    row("imu gyroscope_noise_density", true["gyro_noise_density"], noise.noise_density("gyro"), "rad/s/sqrt(Hz)")
    row("imu gyroscope_random_walk", true["gyro_random_walk"], noise.random_walk("gyro")[0], "rad/s^2/sqrt(Hz)")
    row("imu accelerometer_noise_density", true["accel_noise_density"], noise.noise_density("accel"), "m/s^2/sqrt(Hz)")
    row("imu accelerometer_random_walk", true["accel_random_walk"], noise.random_walk("accel")[0], "m/s^3/sqrt(Hz)")
    b = static_biases(synthetic_static_log(60, 200.0, np.random.default_rng(1), **true))
    row("imu gyro bias x (60 s)", 0.01, b.gyro_bias[0], "rad/s")
    row("imu accel bias z (60 s)", 0.1, b.accel_bias[2], "m/s^2")
    cal_true = AccelCalibration(
        np.array([1.02, 0.98, 1.01]), np.array([0.01, -0.005, 0.008]), np.array([0.1, -0.15, 0.2]), 0, 0, 0
    )
    cal = multi_position_accel(synthetic_multi_position_log(cal_true, 18, np.random.default_rng(2)))
    for i, axis in enumerate("xyz"):
        row(f"imu accel scale {axis} (18 poses)", cal_true.scale[i], cal.scale[i])
    row("imu accel misalignment a_yz (18 poses)", cal_true.misalignment_rad[0], cal.misalignment_rad[0], "rad")


def thrust_benchmark() -> None:
    cal = fit_thrust_stand(synthetic_stand_log(np.random.default_rng(0)))
    row("thrust kf", CF_TRUTH["kf"], cal.kf, "N/RPM^2")
    row("thrust km", CF_TRUTH["km"], cal.km, "m")
    row("thrust command_to_rpm slope", CF_TRUTH["rpm_per_cmd"], cal.command_to_rpm[0], "RPM/PWM")
    row("thrust motor_tau_up", CF_TRUTH["motor_tau_up"], cal.motor_tau_up, "s")
    row("thrust motor_tau_down", CF_TRUTH["motor_tau_down"], cal.motor_tau_down, "s")


if __name__ == "__main__":
    camera_benchmark()
    hand_eye_benchmark()
    imu_benchmark()
    thrust_benchmark()
