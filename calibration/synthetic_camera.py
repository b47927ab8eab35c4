"""Synthetic calibration images: a board rendered through a known camera (tests, benchmarks, demos).

Each output pixel is undistorted to a ray through the known camera model, the ray is intersected with the
board plane (a homography, since the board is planar) and the printed board image is sampled there. The
rays depend only on the camera, so they are computed once for all views.
"""

from __future__ import annotations

import cv2
import numpy as np

from calibration.boards import BoardSpec
from calibration.camera_model import CameraModel


def random_board_poses(
    board: BoardSpec, camera: CameraModel, n: int, rng: np.random.Generator, distance: tuple[float, float] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` board poses (rvec (3,), tvec (3,) metres; board -> camera) that keep the whole board in view.

    The board centre is placed on a ray through a random image point, at a random distance (default: the board
    spans 40-70 % of the image width), tilted up to ~40 deg.
    """
    if distance is None:
        width_m = board.squares_x * board.square_size
        distance = (camera.fx * width_m / (0.7 * camera.width), camera.fx * width_m / (0.4 * camera.width))
    centre = np.array([board.squares_x, board.squares_y, 0.0]) * board.square_size / 2
    corners = (
        np.array(
            [[0, 0, 0], [board.squares_x, 0, 0], [board.squares_x, board.squares_y, 0], [0, board.squares_y, 0]], float
        )
        * board.square_size
    )
    poses: list[tuple[np.ndarray, np.ndarray]] = []
    tries = 0
    while len(poses) < n:
        tries += 1
        if tries > 200 * n:
            raise RuntimeError("could not place the board in view; use a smaller board or a wider camera")
        u = rng.uniform(0.1, 0.9) * camera.width
        v = rng.uniform(0.1, 0.9) * camera.height
        ray = np.append(camera.undistort_to_rays(np.array([[u, v]]))[0], 1.0)
        z = rng.uniform(*distance)
        tilt = np.deg2rad(rng.uniform(-40, 40, size=2))
        R = cv2.Rodrigues(np.array([tilt[0], tilt[1], rng.uniform(-0.4, 0.4)]))[0]
        t = ray * z - R @ centre
        cam_pts = corners @ R.T + t
        if np.any(cam_pts[:, 2] < 0.05):
            continue
        px = camera.project(cam_pts)
        margin = 10
        if np.all(
            (px[:, 0] > margin)
            & (px[:, 0] < camera.width - margin)
            & (px[:, 1] > margin)
            & (px[:, 1] < camera.height - margin)
        ):
            poses.append((cv2.Rodrigues(R)[0].ravel(), t))
    return poses


class BoardRenderer:
    """Renders ``board`` as seen by ``camera`` from any pose, with blur and pixel noise."""

    def __init__(self, board: BoardSpec, camera: CameraModel, px_per_square: int = 60, supersample: int = 2) -> None:
        self.board, self.camera, self.ss = board, camera, supersample
        self.texture, self.ppm, self.margin = board.render(px_per_square=px_per_square, margin_px=px_per_square // 2)
        # the texture is drawn with a white frame around the board; sampling outside it gives grey background.
        # Rays of a supersample x finer grid (pixel centres of the final image at integer coordinates), averaged
        # back down with INTER_AREA: approximates the pixel's area integral, avoiding aliasing bias in corners.
        s = supersample
        grid_u = (np.arange(camera.width * s, dtype=np.float64) + 0.5) / s - 0.5
        grid_v = (np.arange(camera.height * s, dtype=np.float64) + 0.5) / s - 0.5
        u, v = np.meshgrid(grid_u, grid_v)
        rays = camera.undistort_to_rays(np.stack([u.ravel(), v.ravel()], axis=1))
        self._rays = np.concatenate([rays, np.ones((rays.shape[0], 1))], axis=1)  # (H*W, 3)

    def render(
        self,
        rvec: np.ndarray,
        tvec: np.ndarray,
        rng: np.random.Generator | None = None,
        noise_std: float = 2.0,
        blur: float = 0.7,
    ) -> np.ndarray:
        """Image (H, W) uint8 of the board at pose (rvec, tvec) (board -> camera)."""
        R = cv2.Rodrigues(np.asarray(rvec, float))[0]
        H = np.column_stack([R[:, 0], R[:, 1], np.asarray(tvec, float)])  # board (X, Y, 1) -> ray
        board_xy = self._rays @ np.linalg.inv(H).T
        with np.errstate(divide="ignore", invalid="ignore"):
            bx = board_xy[:, 0] / board_xy[:, 2]
            by = board_xy[:, 1] / board_xy[:, 2]
        behind = board_xy[:, 2] <= 0
        map_x = (self.margin - 0.5 + bx * self.ppm).astype(np.float32)
        map_y = (self.margin - 0.5 + by * self.ppm).astype(np.float32)
        map_x[behind] = -1.0
        shape = (self.camera.height * self.ss, self.camera.width * self.ss)
        img = cv2.remap(
            self.texture,
            map_x.reshape(shape),
            map_y.reshape(shape),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=128,
        )
        if blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur * self.ss)
        if self.ss > 1:
            img = cv2.resize(img, (self.camera.width, self.camera.height), interpolation=cv2.INTER_AREA)
        if rng is not None and noise_std > 0:
            img = np.clip(img.astype(np.float32) + rng.normal(0, noise_std, img.shape), 0, 255).astype(np.uint8)
        return img


def synthetic_views(
    board: BoardSpec, camera: CameraModel, n: int, seed: int = 0, noise_std: float = 2.0
) -> list[np.ndarray]:
    """``n`` rendered images of ``board`` through ``camera`` from random poses (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    renderer = BoardRenderer(board, camera)
    poses = random_board_poses(board, camera, n, rng)
    return [renderer.render(r, t, rng, noise_std=noise_std) for r, t in poses]


def reprojection_difference_px(true: CameraModel, estimate: CameraModel, region: float = 0.6, n: int = 25) -> float:
    """Largest pixel distance between where ``true`` and ``estimate`` image the same rays.

    The rays are those of an n x n pixel grid covering the central ``region`` fraction of the true image
    (where calibration views put corners). This compares whole models (K and distortion together), which is
    what matters downstream; individual high-order coefficients trade off against each other.
    """
    m = (1 - region) / 2
    u, v = np.meshgrid(np.linspace(m, 1 - m, n) * true.width, np.linspace(m, 1 - m, n) * true.height)
    px = np.stack([u.ravel(), v.ravel()], axis=1)
    rays = np.concatenate([true.undistort_to_rays(px), np.ones((px.shape[0], 1))], axis=1)
    return float(np.max(np.linalg.norm(estimate.project(rays) - px, axis=1)))
