from __future__ import annotations

import numpy as np
import pytest

from calibration.boards import BoardSpec
from calibration.camera_model import CameraModel
from calibration.synthetic_camera import synthetic_views

# true camera of the synthetic tests: 640x480, ~64 deg horizontal FOV, strong barrel distortion
PINHOLE = CameraModel(
    np.array([[520.0, 0, 323.5], [0, 524.0, 236.0], [0, 0, 1]]), [-0.28, 0.09, 0.0008, -0.0006, 0.0], 640, 480
)
CHARUCO = BoardSpec("charuco", 9, 6, 0.03, 0.022)
CHESS = BoardSpec("chessboard", 9, 6, 0.03)


@pytest.fixture(scope="session")
def charuco_views() -> list[np.ndarray]:
    return synthetic_views(CHARUCO, PINHOLE, 12, seed=1)


@pytest.fixture(scope="session")
def chess_views() -> list[np.ndarray]:
    return synthetic_views(CHESS, PINHOLE, 10, seed=2)
