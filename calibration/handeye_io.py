"""Hand-eye pose files.

POSES.yaml::

    mode: eye_in_hand            # or eye_to_hand
    poses:                       # one entry per robot stop
      - flange: {translation: [x, y, z], quaternion: [qx, qy, qz, qw]}   # T_base<-flange, metres
        board:  {translation: [x, y, z], quaternion: [qx, qy, qz, qw]}   # T_camera<-board, metres

A pose may give ``rotation_vector`` [rad] (OpenCV rvec) or a 4x4 ``matrix`` instead of ``quaternion``
(ROS order x, y, z, w).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from calibration.errors import CalibrationFileError
from calibration.handeye import MODES, HandEyeResult, make_transform


def _pose(raw: Any, where: str) -> np.ndarray:
    if not isinstance(raw, dict):
        raise CalibrationFileError(
            f"{where}: expected a mapping with translation + quaternion/rotation_vector, or matrix; got {raw!r}"
        )
    if "matrix" in raw:
        T = np.asarray(raw["matrix"], float)
        if T.shape != (4, 4):
            raise CalibrationFileError(f"{where}: 'matrix' must be 4x4, got shape {T.shape}")
        return T
    t = np.asarray(raw.get("translation", []), float)
    if t.shape != (3,):
        raise CalibrationFileError(f"{where}: 'translation' must be 3 numbers (metres), got {raw.get('translation')!r}")
    if "quaternion" in raw:
        q = np.asarray(raw["quaternion"], float)
        if q.shape != (4,) or not np.isclose(np.linalg.norm(q), 1.0, atol=1e-3):
            raise CalibrationFileError(
                f"{where}: 'quaternion' must be 4 numbers [x, y, z, w] of unit norm, got {raw['quaternion']!r}"
            )
        R = Rotation.from_quat(q).as_matrix()
    elif "rotation_vector" in raw:
        R = Rotation.from_rotvec(np.asarray(raw["rotation_vector"], float)).as_matrix()
    else:
        raise CalibrationFileError(
            f"{where}: give the rotation as 'quaternion' [x, y, z, w] or 'rotation_vector' [rad]"
        )
    return make_transform(R, t)


def pose_dict(T: np.ndarray) -> dict:
    """(4, 4) -> {translation, quaternion [x, y, z, w]}."""
    return {
        "translation": [float(x) for x in T[:3, 3]],
        "quaternion": [float(x) for x in Rotation.from_matrix(T[:3, :3]).as_quat()],
    }


def read_poses_yaml(path: str | Path) -> tuple[str, list[np.ndarray], list[np.ndarray]]:
    """Returns (mode, flange poses T_base<-flange, board poses T_camera<-board)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationFileError(f"hand-eye pose file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("poses"), list):
        raise CalibrationFileError(
            f"{path}: expected a mapping with 'mode' and a 'poses' list (see calibration/handeye_io.py)"
        )
    mode = data.get("mode", "eye_in_hand")
    if mode not in MODES:
        raise CalibrationFileError(f"{path}: mode {mode!r} unknown; expected one of {MODES}")
    flange, board = [], []
    for i, entry in enumerate(data["poses"]):
        if not isinstance(entry, dict) or "flange" not in entry or "board" not in entry:
            raise CalibrationFileError(f"{path}: poses[{i}] needs 'flange' and 'board' entries")
        flange.append(_pose(entry["flange"], f"{path}: poses[{i}].flange"))
        board.append(_pose(entry["board"], f"{path}: poses[{i}].board"))
    return mode, flange, board


def write_poses_yaml(path: str | Path, mode: str, flange: list[np.ndarray], board: list[np.ndarray]) -> Path:
    path = Path(path)
    poses = [{"flange": pose_dict(F), "board": pose_dict(C)} for F, C in zip(flange, board)]
    path.write_text(yaml.safe_dump({"mode": mode, "poses": poses}, sort_keys=False, default_flow_style=None))
    return path


def write_result_yaml(path: str | Path, mode: str, results: dict[str, HandEyeResult]) -> Path:
    """All methods side by side; ``best`` is the one with the smallest translation residual."""
    best = min(results.values(), key=lambda r: (r.translation_residual_m, r.rotation_residual_deg))
    frame = "T_flange<-camera" if mode == "eye_in_hand" else "T_base<-camera"
    out = {
        "mode": mode,
        "transform": frame,
        "best_method": best.method,
        "best": pose_dict(best.transform),
        "methods": {m: r.summary() for m, r in results.items()},
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(out, sort_keys=False, default_flow_style=None))
    return path
