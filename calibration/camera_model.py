"""Camera intrinsics and the ROS camera calibration YAML format.

ROS YAML keys (FACTS.md, "Calibration formats"): image_width, image_height, camera_name,
camera_matrix{rows, cols, data}, distortion_model, distortion_coefficients, rectification_matrix,
projection_matrix. ``plumb_bob`` has 5 coefficients (k1 k2 p1 p2 k3), ``rational_polynomial`` 8
(k1 k2 p1 p2 k3 k4 k5 k6); the fisheye model is written as ``equidistant`` (k1 k2 k3 k4), the name ROS
image_pipeline uses for OpenCV's fisheye model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from calibration.errors import CalibrationFileError

# our model name -> (ROS distortion_model, number of coefficients)
MODELS: dict[str, tuple[str, int]] = {
    "pinhole": ("plumb_bob", 5),
    "rational": ("rational_polynomial", 8),
    "fisheye": ("equidistant", 4),
}
ROS_TO_MODEL = {ros: ours for ours, (ros, _) in MODELS.items()}


@dataclass(frozen=True)
class CameraModel:
    """A calibrated monocular camera.

    K: (3, 3) intrinsic matrix, pixels. D: (n,) distortion coefficients in OpenCV order for ``model``.
    width, height: pixels. model: "pinhole" (plumb_bob), "rational" (rational_polynomial) or "fisheye".
    """

    K: np.ndarray
    D: np.ndarray
    width: int
    height: int
    model: str = "pinhole"
    name: str = "camera"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise CalibrationFileError(f"unknown camera model {self.model!r}; expected one of {sorted(MODELS)}")
        K = np.asarray(self.K, dtype=float).reshape(3, 3)
        D = np.asarray(self.D, dtype=float).ravel()
        n = MODELS[self.model][1]
        if D.size < n:
            D = np.concatenate([D, np.zeros(n - D.size)])
        if np.any(D[n:] != 0):
            raise CalibrationFileError(
                f"{self.model} model takes {n} distortion coefficients, got {D.size} with non-zero extras {D[n:].tolist()}; "
                "choose the model that matches the coefficients"
            )
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", D[:n])

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Project camera-frame points. points_cam: (N, 3) metres, z > 0 -> (N, 2) pixels."""
        import cv2

        pts = np.asarray(points_cam, dtype=np.float64).reshape(-1, 1, 3)
        zero = np.zeros(3)
        if self.model == "fisheye":
            out, _ = cv2.fisheye.projectPoints(pts, zero, zero, self.K, self.D)
        else:
            out, _ = cv2.projectPoints(pts, zero, zero, self.K, self.D)
        return out.reshape(-1, 2)

    def undistort_to_rays(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> normalized undistorted image coordinates (N, 2) (x/z, y/z)."""
        import cv2

        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
        crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)
        if self.model == "fisheye":
            out = cv2.fisheye.undistortPoints(pts, self.K, self.D, criteria=crit)
        else:
            out = cv2.undistortPoints(pts, self.K, self.D, R=None, P=None, criteria=crit)
        return out.reshape(-1, 2)

    def projection_matrix(self) -> np.ndarray:
        """(3, 4) ROS projection matrix of the rectified image (new camera matrix with alpha/balance 0)."""
        import cv2

        size = (self.width, self.height)
        if self.model == "fisheye":
            new_k = cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(self.K, self.D, size, np.eye(3), balance=0.0)
        else:
            new_k, _ = cv2.getOptimalNewCameraMatrix(self.K, self.D, size, 0.0, size)
        P = np.zeros((3, 4))
        P[:, :3] = new_k
        return P

    def to_ros_dict(self) -> dict[str, Any]:
        """The ROS camera calibration YAML mapping."""

        def mat(rows: int, cols: int, data: np.ndarray) -> dict[str, Any]:
            return {"rows": rows, "cols": cols, "data": [float(x) for x in np.asarray(data).ravel()]}

        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": self.name,
            "camera_matrix": mat(3, 3, self.K),
            "distortion_model": MODELS[self.model][0],
            "distortion_coefficients": mat(1, self.D.size, self.D),
            "rectification_matrix": mat(3, 3, np.eye(3)),
            "projection_matrix": mat(3, 4, self.projection_matrix()),
        }


def write_ros_yaml(camera: CameraModel, path: str | Path) -> Path:
    """Write ``camera`` as a ROS camera calibration YAML file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(camera.to_ros_dict(), sort_keys=False, default_flow_style=None))
    return path


def _matrix(data: dict[str, Any], key: str, source: str) -> np.ndarray:
    block = data.get(key)
    if not isinstance(block, dict) or not {"rows", "cols", "data"} <= set(block):
        raise CalibrationFileError(f"{source}: '{key}' must be a mapping with rows, cols, data; found {block!r}")
    values = np.asarray(block["data"], dtype=float)
    if values.size != int(block["rows"]) * int(block["cols"]):
        raise CalibrationFileError(
            f"{source}: '{key}' declares {block['rows']}x{block['cols']} but has {values.size} values; fix the file"
        )
    return values.reshape(int(block["rows"]), int(block["cols"]))


def read_ros_yaml(path: str | Path) -> CameraModel:
    """Read a ROS camera calibration YAML file written by us, ROS camera_calibration or Kalibr tools."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationFileError(f"camera calibration file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationFileError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CalibrationFileError(f"{path}: expected a YAML mapping, found {type(data).__name__}")
    missing = [k for k in ("image_width", "image_height", "camera_matrix", "distortion_coefficients") if k not in data]
    if missing:
        raise CalibrationFileError(f"{path}: missing keys {missing}; expected a ROS camera calibration YAML")
    ros_model = data.get("distortion_model", "plumb_bob")
    if ros_model not in ROS_TO_MODEL:
        raise CalibrationFileError(
            f"{path}: distortion_model {ros_model!r} unsupported; expected one of {sorted(ROS_TO_MODEL)}"
        )
    return CameraModel(
        K=_matrix(data, "camera_matrix", str(path)),
        D=_matrix(data, "distortion_coefficients", str(path)).ravel(),
        width=int(data["image_width"]),
        height=int(data["image_height"]),
        model=ROS_TO_MODEL[ros_model],
        name=str(data.get("camera_name", "camera")),
    )
