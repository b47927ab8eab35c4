"""Camera intrinsics on synthetic images rendered through a known camera (real OpenCV detection + calibration)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from calibration.boards import BoardSpec
from calibration.camera import calibrate_camera, calibrate_detections, detect_views, save_coverage_png
from calibration.camera_model import CameraModel, read_ros_yaml, write_ros_yaml
from calibration.errors import (
    BoardNotFoundError,
    CalibrationError,
    CalibrationFileError,
    ImageSizeMismatchError,
    NotEnoughViewsError,
)
from calibration.synthetic_camera import reprojection_difference_px, synthetic_views

from .conftest import CHARUCO, CHESS, PINHOLE

INTRINSICS_REL_TOL = 0.005  # the 0.5 %
MODEL_TOL_PX = 1.0  # whole-model difference over the central 60 % of the image (pixels)


def assert_recovered(est: CameraModel, true: CameraModel, model_tol_px: float = MODEL_TOL_PX) -> None:
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(est, name) == pytest.approx(getattr(true, name), rel=INTRINSICS_REL_TOL), name
    assert reprojection_difference_px(true, est) < model_tol_px


def test_charuco_pinhole_recovers_intrinsics(charuco_views):
    result = calibrate_camera(charuco_views, CHARUCO)
    assert_recovered(result.camera, PINHOLE)
    assert result.camera.D[0] == pytest.approx(PINHOLE.D[0], abs=0.03)  # k1, the dominant term
    assert result.rms_px < 0.5
    assert len(result.per_view_rms_px) == 12 and not result.rejected_views


def test_chessboard_pinhole_recovers_intrinsics(chess_views):
    result = calibrate_camera(chess_views, CHESS)
    assert_recovered(result.camera, PINHOLE)
    assert result.rms_px < 0.5


def test_rational_model(charuco_views):
    result = calibrate_camera(charuco_views, CHARUCO, model="rational")
    assert result.camera.D.size == 8
    assert_recovered(result.camera, PINHOLE, model_tol_px=1.0)
    assert result.camera.to_ros_dict()["distortion_model"] == "rational_polynomial"


def test_fisheye_model():
    true = CameraModel(
        np.array([[300.0, 0, 318], [0, 302, 242], [0, 0, 1]]), [0.05, -0.01, 0.002, -0.001], 640, 480, "fisheye"
    )
    result = calibrate_camera(synthetic_views(CHARUCO, true, 14, seed=3), CHARUCO, model="fisheye")
    assert_recovered(result.camera, true)
    assert result.camera.to_ros_dict()["distortion_model"] == "equidistant"


def test_outlier_view_is_rejected(charuco_views):
    detections, _, size = detect_views(charuco_views, CHARUCO)
    bad = next(iter(detections))
    det = detections[bad]
    noisy = det.image_points + np.random.default_rng(0).normal(0, 4.0, det.image_points.shape)
    detections[bad] = type(det)(det.object_points, noisy, det.ids)
    result = calibrate_detections(detections, size)
    assert list(result.rejected_views) == [bad]
    assert result.rejected_views[bad] > 2.0
    assert_recovered(result.camera, PINHOLE)


def test_ros_yaml_roundtrip(tmp_path, charuco_views):
    cam = calibrate_camera(charuco_views[:5], CHARUCO).camera
    path = write_ros_yaml(cam, tmp_path / "cam.yaml")
    raw = yaml.safe_load(path.read_text())
    assert list(raw) == [
        "image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
        "distortion_coefficients", "rectification_matrix", "projection_matrix",
    ]  # fmt: skip
    assert raw["distortion_model"] == "plumb_bob" and raw["distortion_coefficients"]["cols"] == 5
    assert raw["projection_matrix"]["rows"] == 3 and raw["projection_matrix"]["cols"] == 4
    back = read_ros_yaml(path)
    np.testing.assert_allclose(back.K, cam.K, rtol=1e-12)
    np.testing.assert_allclose(back.D, cam.D, rtol=1e-12)
    assert (back.width, back.height, back.model) == (640, 480, "pinhole")


def test_coverage_png(tmp_path, charuco_views):
    result = calibrate_camera(charuco_views, CHARUCO)
    covered = save_coverage_png(result, tmp_path / "coverage.png")
    assert (tmp_path / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.3 < covered <= 1.0


def test_too_few_views(charuco_views):
    with pytest.raises(NotEnoughViewsError, match="at least 3 views"):
        calibrate_camera(charuco_views[:2], CHARUCO)


def test_board_not_found():
    blank = [np.full((480, 640), 128, np.uint8) for _ in range(3)]
    with pytest.raises(BoardNotFoundError, match="--squares"):
        calibrate_camera(blank, CHARUCO)


def test_wrong_board_geometry_is_not_found(chess_views):
    with pytest.raises(BoardNotFoundError):
        calibrate_camera(chess_views[:3], BoardSpec("chessboard", 7, 5, 0.03))


def test_mixed_image_sizes(charuco_views):
    images = [*charuco_views[:3], np.zeros((720, 1280), np.uint8)]
    with pytest.raises(ImageSizeMismatchError, match="1280x720"):
        calibrate_camera(images, CHARUCO)


def test_board_spec_validation():
    with pytest.raises(CalibrationError, match="marker-size"):
        BoardSpec("charuco", 9, 6, 0.03, None)
    with pytest.raises(CalibrationError, match="kind"):
        BoardSpec("circles", 9, 6, 0.03)


def test_bad_yaml_is_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "image_width: 640\nimage_height: 480\ncamera_matrix: {rows: 3, cols: 3, data: [1, 2]}\ndistortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n"
    )
    with pytest.raises(CalibrationFileError, match="3x3"):
        read_ros_yaml(path)
    with pytest.raises(CalibrationFileError, match="does not exist"):
        read_ros_yaml(tmp_path / "missing.yaml")
