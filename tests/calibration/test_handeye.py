"""Hand-eye: the five methods recover a known transform from synthetic poses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calibration.errors import CalibrationFileError, NotEnoughViewsError
from calibration.handeye import METHODS, MODES, calibrate_hand_eye, make_transform, synthetic_hand_eye
from calibration.handeye_io import read_poses_yaml, write_poses_yaml, write_result_yaml

X_TRUE = make_transform(Rotation.from_rotvec([0.1, -0.2, 1.3]).as_matrix(), [0.05, -0.02, 0.08])


def errors(T: np.ndarray, X: np.ndarray) -> tuple[float, float]:
    rot = np.degrees(Rotation.from_matrix(X[:3, :3].T @ T[:3, :3]).magnitude())
    return float(rot), float(np.linalg.norm(T[:3, 3] - X[:3, 3]))


@pytest.mark.parametrize("mode", MODES)
def test_exact_on_noise_free_poses(mode):
    flange, board = synthetic_hand_eye(X_TRUE, 10, np.random.default_rng(0), mode=mode)
    results = calibrate_hand_eye(flange, board, mode)
    assert set(results) == set(METHODS)
    for r in results.values():
        rot, trans = errors(r.transform, X_TRUE)
        assert rot < 1e-6 and trans < 1e-8, r.method
        assert r.rotation_residual_deg < 1e-6 and r.translation_residual_m < 1e-8


@pytest.mark.parametrize("mode", MODES)
def test_noisy_poses_within_tolerance(mode):
    # board pose noise 0.2 deg / 1 mm per axis, 15 poses -> every method within 0.6 deg and 5 mm
    flange, board = synthetic_hand_eye(X_TRUE, 15, np.random.default_rng(1), 0.2, 0.001, mode=mode)
    for r in calibrate_hand_eye(flange, board, mode).values():
        rot, trans = errors(r.transform, X_TRUE)
        assert rot < 0.6 and trans < 0.005, (r.method, rot, trans)
        assert 0.05 < r.rotation_residual_deg < 1.0  # the residual sees the noise


def test_wrong_transform_has_large_residual():
    from calibration.handeye import consistency_residual

    flange, board = synthetic_hand_eye(X_TRUE, 10, np.random.default_rng(2))
    wrong = X_TRUE @ make_transform(Rotation.from_rotvec([0, 0, 0.1]).as_matrix(), [0.01, 0, 0])
    rot, trans = consistency_residual(flange, board, wrong)
    assert rot > 2.0 and trans > 0.01


def test_too_few_poses():
    flange, board = synthetic_hand_eye(X_TRUE, 2, np.random.default_rng(3))
    with pytest.raises(NotEnoughViewsError, match="at least 3 poses"):
        calibrate_hand_eye(flange, board)


def test_pose_yaml_roundtrip(tmp_path):
    flange, board = synthetic_hand_eye(X_TRUE, 6, np.random.default_rng(4))
    path = write_poses_yaml(tmp_path / "poses.yaml", "eye_in_hand", flange, board)
    mode, f2, b2 = read_poses_yaml(path)
    assert mode == "eye_in_hand"
    np.testing.assert_allclose(np.stack(f2), np.stack(flange), atol=1e-12)
    np.testing.assert_allclose(np.stack(b2), np.stack(board), atol=1e-12)
    out = write_result_yaml(tmp_path / "he.yaml", mode, calibrate_hand_eye(f2, b2))
    assert "best_method" in out.read_text()


def test_bad_pose_file(tmp_path):
    path = tmp_path / "poses.yaml"
    path.write_text(
        "mode: eye_in_hand\nposes:\n  - flange: {translation: [0, 0], quaternion: [0, 0, 0, 1]}\n    board: {translation: [0, 0, 1], quaternion: [0, 0, 0, 1]}\n"
    )
    with pytest.raises(CalibrationFileError, match="translation"):
        read_poses_yaml(path)
