"""Camera intrinsics calibration from board images: detection, calibration, outlier views, reports.

Models: "pinhole" (ROS plumb_bob, k1 k2 p1 p2 k3), "rational" (ROS rational_polynomial, 8 coefficients,
``cv2.CALIB_RATIONAL_MODEL``) and "fisheye" (``cv2.fisheye``, equidistant k1..k4).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from calibration.boards import BoardDetector, BoardSpec, Detection
from calibration.camera_model import CameraModel
from calibration.errors import BoardNotFoundError, CalibrationError, ImageSizeMismatchError, NotEnoughViewsError

log = logging.getLogger(__name__)

MIN_VIEWS = {"pinhole": 3, "rational": 6, "fisheye": 3}


@dataclass
class CameraCalibrationResult:
    """Result of :func:`calibrate_camera`. rms_px: overall RMS reprojection error (pixels) of the kept views."""

    camera: CameraModel
    rms_px: float
    per_view_rms_px: dict[str, float]
    rejected_views: dict[str, float] = field(default_factory=dict)
    no_board: list[str] = field(default_factory=list)
    image_points: list[np.ndarray] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-friendly summary (pixels)."""
        return {
            "model": self.camera.model,
            "width": self.camera.width,
            "height": self.camera.height,
            "fx": self.camera.fx,
            "fy": self.camera.fy,
            "cx": self.camera.cx,
            "cy": self.camera.cy,
            "distortion": [float(x) for x in self.camera.D],
            "rms_px": self.rms_px,
            "views_used": len(self.per_view_rms_px),
            "per_view_rms_px": self.per_view_rms_px,
            "rejected_views_rms_px": self.rejected_views,
            "views_without_board": self.no_board,
        }


def detect_views(
    images: Sequence[np.ndarray], board: BoardSpec, names: Sequence[str] | None = None
) -> tuple[dict[str, Detection], list[str], tuple[int, int]]:
    """Detect the board in every image. Returns (detections by name, names without a board, (width, height)).

    Raises ImageSizeMismatchError when images differ in size, BoardNotFoundError when no image shows the board.
    """
    names = list(names) if names is not None else [f"view{i:03d}" for i in range(len(images))]
    if len(images) == 0:
        raise NotEnoughViewsError("no calibration images given; pass image files showing the board")
    sizes: dict[tuple[int, int], list[str]] = {}
    for name, img in zip(names, images):
        sizes.setdefault((img.shape[1], img.shape[0]), []).append(name)
    if len(sizes) > 1:
        detail = "; ".join(f"{w}x{h}: {len(n)} image(s), e.g. {n[0]}" for (w, h), n in sizes.items())
        raise ImageSizeMismatchError(
            f"calibration images must all have the same size; found {detail}. Calibrate each camera/resolution separately."
        )
    (size,) = sizes
    detector = BoardDetector(board)
    found: dict[str, Detection] = {}
    missing: list[str] = []
    from rich.progress import track

    for name, img in track(
        list(zip(names, images)), description="detecting board", transient=True, disable=len(images) < 20
    ):
        det = detector.detect(img)
        if det is None:
            missing.append(name)
        else:
            found[name] = det
    if missing:
        log.warning("board not found in %d of %d images: %s", len(missing), len(images), ", ".join(missing[:10]))
    if not found:
        raise BoardNotFoundError(
            f"no {board.kind} board with {board.squares_x}x{board.squares_y} squares found in any of {len(images)} images; "
            "check --board, --squares (squares, not inner corners), the ArUco dictionary, focus and lighting"
        )
    return found, missing, size


def _run_opencv(model: str, obj: list[np.ndarray], img: list[np.ndarray], size: tuple[int, int]):
    """One OpenCV calibration. Returns (K, D, rvecs, tvecs)."""
    if model == "fisheye":
        # OpenCV 4 keeps fisheye flags in cv2.fisheye; OpenCV 5 merged them into the main namespace
        ns = cv2.fisheye if hasattr(cv2.fisheye, "CALIB_RECOMPUTE_EXTRINSIC") else cv2
        flags = ns.CALIB_RECOMPUTE_EXTRINSIC | ns.CALIB_FIX_SKEW
        crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
        _, K, D, rvecs, tvecs = cv2.fisheye.calibrate(
            [o.reshape(1, -1, 3).astype(np.float64) for o in obj],
            [i.reshape(1, -1, 2).astype(np.float64) for i in img],
            size,
            np.eye(3),
            np.zeros(4),
            flags=flags,
            criteria=crit,
        )
    else:
        flags = cv2.CALIB_RATIONAL_MODEL if model == "rational" else 0
        _, K, D, rvecs, tvecs = cv2.calibrateCamera(obj, img, size, None, None, flags=flags)
    return K, D.ravel(), rvecs, tvecs


def _per_view_rms(camera: CameraModel, obj, img, rvecs, tvecs) -> np.ndarray:
    errs = []
    for o, i, r, t in zip(obj, img, rvecs, tvecs):
        R = cv2.Rodrigues(np.asarray(r, float))[0]
        proj = camera.project(o.reshape(-1, 3) @ R.T + np.asarray(t, float).ravel())
        errs.append(np.sqrt(np.mean(np.sum((proj - i.reshape(-1, 2)) ** 2, axis=1))))
    return np.asarray(errs)


def calibrate_detections(
    detections: dict[str, Detection],
    size: tuple[int, int],
    model: str = "pinhole",
    reject_factor: float = 3.0,
    reject_min_px: float = 1.0,
    name: str = "camera",
) -> CameraCalibrationResult:
    """Calibrate from detected corners, dropping outlier views and re-calibrating until none is left.

    A view is an outlier when its RMS reprojection error exceeds max(reject_factor * median view RMS,
    reject_min_px). At most a third of the views are dropped. size: (width, height) pixels.
    """
    if model not in MIN_VIEWS:
        raise CalibrationError(f"camera model {model!r} unknown; expected one of {sorted(MIN_VIEWS)}")
    need = MIN_VIEWS[model]
    if len(detections) < need:
        raise NotEnoughViewsError(
            f"{model} calibration needs at least {need} views with the board, found {len(detections)}; "
            "take more pictures (15-30 views, board tilted, covering the whole image, is typical)"
        )
    names = list(detections)
    rejected: dict[str, float] = {}
    max_reject = len(names) // 3
    while True:
        obj = [detections[n].object_points.astype(np.float32) for n in names]
        img = [detections[n].image_points.astype(np.float32) for n in names]
        try:
            K, D, rvecs, tvecs = _run_opencv(model, obj, img, size)
        except cv2.error as exc:
            raise CalibrationError(
                f"OpenCV {model} calibration failed on {len(names)} views: {exc}. Add more varied views."
            ) from exc
        camera = CameraModel(K, D, size[0], size[1], model, name)
        errs = _per_view_rms(camera, obj, img, rvecs, tvecs)
        threshold = max(reject_factor * float(np.median(errs)), reject_min_px)
        worst = int(np.argmax(errs))
        if errs[worst] <= threshold or len(rejected) >= max_reject or len(names) - 1 < need:
            break
        log.info("rejecting view %s: RMS %.3f px > %.3f px", names[worst], errs[worst], threshold)
        rejected[names[worst]] = float(errs[worst])
        names.pop(worst)
    all_sq = sum(float(e) ** 2 * len(detections[n].ids) for n, e in zip(names, errs))
    rms = float(np.sqrt(all_sq / sum(len(detections[n].ids) for n in names)))
    return CameraCalibrationResult(
        camera=camera,
        rms_px=rms,
        per_view_rms_px={n: float(e) for n, e in zip(names, errs)},
        rejected_views=rejected,
        image_points=[detections[n].image_points for n in names],
    )


def calibrate_camera(
    images: Sequence[np.ndarray], board: BoardSpec, model: str = "pinhole", names: Sequence[str] | None = None, **kwargs
) -> CameraCalibrationResult:
    """Detect ``board`` in ``images`` (uint8, all the same size) and calibrate ``model``."""
    detections, missing, size = detect_views(images, board, names)
    result = calibrate_detections(detections, size, model, **kwargs)
    result.no_board = missing
    return result


def load_images(paths: Sequence[str | Path]) -> tuple[list[np.ndarray], list[str]]:
    """Read image files as uint8 gray. Raises CalibrationError for unreadable files."""
    images, names = [], []
    for p in paths:
        p = Path(p)
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) if p.is_file() else None
        if img is None:
            raise CalibrationError(f"cannot read image {str(p)!r}: expected an existing PNG/JPEG file")
        images.append(img)
        names.append(p.name)
    return images, names


def save_coverage_png(result: CameraCalibrationResult, path: str | Path, grid: tuple[int, int] = (8, 6)) -> float:
    """Plot where in the image the corners were (dots per view, coverage grid). Returns covered cell fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w, h = result.camera.width, result.camera.height
    pts = np.concatenate([p.reshape(-1, 2) for p in result.image_points])
    hist, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=grid, range=[[0, w], [0, h]])
    covered = float(np.mean(hist > 0))
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 0.6))
    ax.imshow(hist.T > 0, extent=(0, w, h, 0), cmap="Greens", alpha=0.25, vmin=0, vmax=1.5)
    for p in result.image_points:
        ax.plot(p[:, 0], p[:, 1], ".", ms=2)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    ax.set_title(
        f"corner coverage: {len(result.image_points)} views, {covered:.0%} of {grid[0]}x{grid[1]} cells, RMS {result.rms_px:.3f} px"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return covered
