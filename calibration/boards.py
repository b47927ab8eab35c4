"""Calibration boards: ChArUco (OpenCV >= 4.7 API) and plain chessboards.

Board frame: origin at the top-left corner of the board (outer edge of the first square), x to the right
along ``squares_x``, y down along ``squares_y``, z into the board; metres. This is the frame of
``cv2.aruco.CharucoBoard.getChessboardCorners()`` since OpenCV 4.6 (FACTS.md: ChArUco is in the main
module in OpenCV >= 4.7, ``cv2.aruco.CharucoBoard`` and ``CharucoDetector.detectBoard``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.errors import CalibrationError

DICTIONARIES = {name[5:]: getattr(cv2.aruco, name) for name in dir(cv2.aruco) if name.startswith("DICT_")}


@dataclass(frozen=True)
class BoardSpec:
    """A printed board. squares_x, squares_y: number of squares (not inner corners); sizes in metres."""

    kind: str
    squares_x: int
    squares_y: int
    square_size: float
    marker_size: float | None = None
    dictionary: str = "5X5_100"

    def __post_init__(self) -> None:
        if self.kind not in ("charuco", "chessboard"):
            raise CalibrationError(f"board kind {self.kind!r} unknown; expected 'charuco' or 'chessboard'")
        if self.squares_x < 3 or self.squares_y < 3:
            raise CalibrationError(f"board needs at least 3x3 squares, got {self.squares_x}x{self.squares_y}")
        if not self.square_size > 0:
            raise CalibrationError(f"square size must be > 0 metres, got {self.square_size}")
        if self.kind == "charuco":
            if self.marker_size is None or not 0 < self.marker_size < self.square_size:
                raise CalibrationError(
                    f"a ChArUco board needs 0 < --marker-size < --square-size ({self.square_size} m), got {self.marker_size}"
                )
            if self.dictionary.upper() not in DICTIONARIES:
                raise CalibrationError(
                    f"ArUco dictionary {self.dictionary!r} unknown; choose one of {sorted(DICTIONARIES)}"
                )

    @property
    def inner_corners(self) -> tuple[int, int]:
        return self.squares_x - 1, self.squares_y - 1

    def corner_points(self) -> np.ndarray:
        """All inner corners in the board frame, (Nc, 3) metres, row-major (x fastest), id = index."""
        nx, ny = self.inner_corners
        xs, ys = np.meshgrid(np.arange(1, nx + 1), np.arange(1, ny + 1))
        pts = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], axis=1) * self.square_size
        return pts.astype(np.float64)

    def charuco_board(self) -> cv2.aruco.CharucoBoard:
        dictionary = cv2.aruco.getPredefinedDictionary(DICTIONARIES[self.dictionary.upper()])
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_size, self.marker_size, dictionary)

    def render(self, px_per_square: int = 80, margin_px: int = 40) -> tuple[np.ndarray, float, float]:
        """A printable image of the board, uint8 gray (H, W).

        Returns (image, pixels per metre, margin in pixels): board point (X, Y) metres lies at pixel
        (margin + X * ppm, margin + Y * ppm).
        """
        w = self.squares_x * px_per_square + 2 * margin_px
        h = self.squares_y * px_per_square + 2 * margin_px
        if self.kind == "charuco":
            img = self.charuco_board().generateImage((w, h), marginSize=margin_px, borderBits=1)
        else:
            img = np.full((h, w), 255, np.uint8)
            for j in range(self.squares_y):
                for i in range(self.squares_x):
                    if (i + j) % 2 == 0:
                        y0, x0 = margin_px + j * px_per_square, margin_px + i * px_per_square
                        img[y0 : y0 + px_per_square, x0 : x0 + px_per_square] = 0
        return img, px_per_square / self.square_size, float(margin_px)


@dataclass(frozen=True)
class Detection:
    """Board corners found in one image. object_points: (N, 3) metres; image_points: (N, 2) pixels; ids: (N,)."""

    object_points: np.ndarray
    image_points: np.ndarray
    ids: np.ndarray


class BoardDetector:
    """Finds a board's inner corners with sub-pixel refinement."""

    def __init__(self, board: BoardSpec, min_corners: int = 6) -> None:
        self.board = board
        self.min_corners = max(min_corners, 6)
        self._points = board.corner_points()
        if board.kind == "charuco":
            self._charuco = board.charuco_board()
            self._detector = cv2.aruco.CharucoDetector(self._charuco)

    def detect(self, image: np.ndarray) -> Detection | None:
        """Detect the board in a uint8 gray or BGR image; None when not found (or too few corners)."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.board.kind == "charuco":
            corners, ids, _, _ = self._detector.detectBoard(gray)
            if ids is None or len(ids) < self.min_corners:
                return None
            ids = ids.ravel().astype(int)
            img_pts = corners.reshape(-1, 2).astype(np.float64)
        else:
            pattern = self.board.inner_corners
            flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
            found, corners = cv2.findChessboardCorners(gray, pattern, flags=flags)
            if not found:
                return None
            crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
            corners = cv2.cornerSubPix(gray, corners.astype(np.float32), (5, 5), (-1, -1), crit)
            img_pts = corners.reshape(-1, 2).astype(np.float64)
            ids = np.arange(len(img_pts))
        return Detection(self._points[ids], img_pts, ids)
