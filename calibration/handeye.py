"""Hand-eye calibration: AX = XB with the five classic methods, compared side by side.

Conventions follow ``cv2.calibrateHandEye`` (FACTS.md: methods TSAI, PARK, HORAUD, ANDREFF, DANIILIDIS):
inputs are the flange (gripper) pose in the robot base, T_base<-flange, and the board (target) pose in the
camera, T_camera<-board, one pair per robot stop. Eye-in-hand returns T_flange<-camera ("cam2gripper");
eye-to-hand returns T_base<-camera (inputs are inverted flange poses, as OpenCV documents).

OpenCV's own ``calibrateHandEye`` is used when the installed build exposes it; some builds (opencv-python
5.0 wheels) expose the method constants but not the function, so every method is also implemented here
from its paper: Tsai & Lenz 1989, Park & Martin 1994, Horaud & Dornaika 1995, Andreff et al. 1999,
Daniilidis 1999. Poses are 4x4 homogeneous matrices in metres.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from calibration.errors import CalibrationError, NotEnoughViewsError

log = logging.getLogger(__name__)

METHODS = ("tsai", "park", "horaud", "andreff", "daniilidis")
MODES = ("eye_in_hand", "eye_to_hand")


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4)."""
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, np.ravel(t)
    return T


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform."""
    R, t = T[:3, :3], T[:3, 3]
    return make_transform(R.T, -R.T @ t)


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def _project_rotation(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    return U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt


def _quat_wxyz(R: np.ndarray) -> np.ndarray:
    x, y, z, w = Rotation.from_matrix(R).as_quat()
    q = np.array([w, x, y, z])
    return q if w >= 0 else -q


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [
            a[0] * b[0] - a[1:] @ b[1:],
            *(a[0] * b[1:] + b[0] * a[1:] + np.cross(a[1:], b[1:])),
        ]
    )


def _motions(flange: Sequence[np.ndarray], board: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Relative motions (A, B) over all pairs i < j: A = F_j^-1 F_i (flange), B = C_j C_i^-1 (camera)."""
    out = []
    for i in range(len(flange)):
        for j in range(i + 1, len(flange)):
            A = invert(flange[j]) @ flange[i]
            B = board[j] @ invert(board[i])
            if Rotation.from_matrix(A[:3, :3]).magnitude() > np.deg2rad(
                1.0
            ):  # pure translations carry no rotation info
                out.append((A, B))
    return out


def _translation(motions, R_x: np.ndarray) -> np.ndarray:
    """Least squares (R_A - I) t_X = R_X t_B - t_A."""
    M = np.concatenate([A[:3, :3] - np.eye(3) for A, _ in motions])
    b = np.concatenate([R_x @ B[:3, 3] - A[:3, 3] for A, B in motions])
    return np.linalg.lstsq(M, b, rcond=None)[0]


def _tsai(motions) -> np.ndarray:
    def mrp(R):  # modified Rodrigues vector 2 sin(theta/2) n
        rv = Rotation.from_matrix(R).as_rotvec()
        th = np.linalg.norm(rv)
        return rv * (2 * np.sin(th / 2) / th) if th > 1e-12 else rv

    lhs = np.concatenate([_skew(mrp(A[:3, :3]) + mrp(B[:3, :3])) for A, B in motions])
    rhs = np.concatenate([mrp(B[:3, :3]) - mrp(A[:3, :3]) for A, B in motions])
    p_prime = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    p = 2 * p_prime / np.sqrt(1 + p_prime @ p_prime)
    n2 = p @ p
    R = (1 - n2 / 2) * np.eye(3) + 0.5 * (np.outer(p, p) + np.sqrt(4 - n2) * _skew(p))
    return _project_rotation(R)


def _park(motions) -> np.ndarray:
    M = sum(
        np.outer(Rotation.from_matrix(B[:3, :3]).as_rotvec(), Rotation.from_matrix(A[:3, :3]).as_rotvec())
        for A, B in motions
    )
    w, V = np.linalg.eigh(M.T @ M)
    return _project_rotation(V @ np.diag(1 / np.sqrt(w)) @ V.T @ M.T)


def _qmat_left(q):
    w, x, y, z = q
    return np.array([[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]])


def _qmat_right(q):
    w, x, y, z = q
    return np.array([[w, -x, -y, -z], [x, w, z, -y], [y, -z, w, x], [z, y, -x, w]])


def _horaud(motions) -> np.ndarray:
    S = np.zeros((4, 4))
    for A, B in motions:
        D = _qmat_left(_quat_wxyz(A[:3, :3])) - _qmat_right(_quat_wxyz(B[:3, :3]))
        S += D.T @ D
    q = np.linalg.eigh(S)[1][:, 0]
    return Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()


def _andreff(motions) -> np.ndarray:
    # row-major vec: vec(R_A X) = (R_A kron I) vec X, vec(X R_B) = (I kron R_B^T) vec X
    L = np.concatenate([np.kron(A[:3, :3], np.eye(3)) - np.kron(np.eye(3), B[:3, :3].T) for A, B in motions])
    v = np.linalg.svd(L)[2][-1].reshape(3, 3)
    v *= np.sign(np.linalg.det(v)) / abs(np.linalg.det(v)) ** (1 / 3)
    return _project_rotation(v)


def _daniilidis(motions) -> np.ndarray:
    def dual(T, q):
        return q, 0.5 * _qmul(np.concatenate([[0.0], T[:3, 3]]), q)

    # The screw congruence a0 = b0 needs consistently signed quaternions; w >= 0 is ambiguous near 180 deg
    # motions with noise, so pick b's sign to agree with a rotation-only first guess (Park & Martin).
    r0 = _park(motions)
    rows = []
    for A, B in motions:
        qa, qb = _quat_wxyz(A[:3, :3]), _quat_wxyz(B[:3, :3])
        if qa[1:] @ (r0 @ qb[1:]) < 0:
            qb = -qb
        (a, ad), (b, bd) = dual(A, qa), dual(B, qb)
        top = np.hstack([(a[1:] - b[1:])[:, None], _skew(a[1:] + b[1:]), np.zeros((3, 4))])
        bot = np.hstack(
            [(ad[1:] - bd[1:])[:, None], _skew(ad[1:] + bd[1:]), (a[1:] - b[1:])[:, None], _skew(a[1:] + b[1:])]
        )
        rows += [top, bot]
    V = np.linalg.svd(np.concatenate(rows))[2]
    u1, v1, u2, v2 = V[-2, :4], V[-2, 4:], V[-1, :4], V[-1, 4:]
    roots = np.roots([u1 @ v1, u1 @ v2 + u2 @ v1, u2 @ v2])
    roots = roots[np.isreal(roots)].real if np.any(np.isreal(roots)) else roots.real
    vals = [s * s * (u1 @ u1) + 2 * s * (u1 @ u2) + u2 @ u2 for s in roots]
    s = roots[int(np.argmax(vals))]
    l2 = 1 / np.sqrt(max(vals))
    q = s * l2 * u1 + l2 * u2
    return Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()


_SOLVERS = {"tsai": _tsai, "park": _park, "horaud": _horaud, "andreff": _andreff, "daniilidis": _daniilidis}


def _opencv_hand_eye(method: str, flange, board) -> np.ndarray | None:
    import cv2

    fn = getattr(cv2, "calibrateHandEye", None)
    if fn is None:
        return None
    R, t = fn(
        [F[:3, :3] for F in flange],
        [F[:3, 3] for F in flange],
        [C[:3, :3] for C in board],
        [C[:3, 3] for C in board],
        method=getattr(cv2, f"CALIB_HAND_EYE_{method.upper()}"),
    )
    return make_transform(R, t)


@dataclass(frozen=True)
class HandEyeResult:
    """One method's estimate. transform: (4, 4) T_flange<-camera (eye-in-hand) or T_base<-camera (eye-to-hand).

    rotation_residual_deg / translation_residual_m: RMS spread of the implied fixed transform (board in base for
    eye-in-hand, board in flange for eye-to-hand) over all poses: 0 for perfect data.
    """

    method: str
    transform: np.ndarray
    rotation_residual_deg: float
    translation_residual_m: float
    backend: str

    def summary(self) -> dict:
        rv = Rotation.from_matrix(self.transform[:3, :3])
        return {
            "method": self.method,
            "backend": self.backend,
            "translation_m": [float(x) for x in self.transform[:3, 3]],
            "quaternion_xyzw": [float(x) for x in rv.as_quat()],
            "rotation_residual_deg": self.rotation_residual_deg,
            "translation_residual_m": self.translation_residual_m,
        }


def consistency_residual(
    flange: Sequence[np.ndarray], board: Sequence[np.ndarray], X: np.ndarray
) -> tuple[float, float]:
    """RMS rotation (deg) and translation (m) spread of F_i X C_i over poses (the transform that must be fixed)."""
    chain = np.stack([F @ X @ C for F, C in zip(flange, board)])
    R_mean = _project_rotation(chain[:, :3, :3].sum(0))
    ang = [Rotation.from_matrix(R_mean.T @ T[:3, :3]).magnitude() for T in chain]
    t = chain[:, :3, 3]
    return float(np.degrees(np.sqrt(np.mean(np.square(ang))))), float(np.sqrt(np.mean(np.sum((t - t.mean(0)) ** 2, 1))))


def calibrate_hand_eye(
    flange_in_base: Sequence[np.ndarray],
    board_in_camera: Sequence[np.ndarray],
    mode: str = "eye_in_hand",
    methods: Sequence[str] = METHODS,
    use_opencv: bool = True,
) -> dict[str, HandEyeResult]:
    """Run each method on the pose pairs. flange_in_base, board_in_camera: N (4, 4) transforms, metres."""
    if mode not in MODES:
        raise CalibrationError(f"hand-eye mode {mode!r} unknown; expected one of {MODES}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CalibrationError(f"hand-eye methods {unknown} unknown; expected some of {METHODS}")
    if len(flange_in_base) != len(board_in_camera):
        raise CalibrationError(
            f"need one board pose per flange pose; got {len(flange_in_base)} flange and {len(board_in_camera)} board poses"
        )
    flange = [np.asarray(F, float) for F in flange_in_base]
    if mode == "eye_to_hand":
        flange = [invert(F) for F in flange]
    board = [np.asarray(C, float) for C in board_in_camera]
    motions = _motions(flange, board)
    if len(flange) < 3 or len(motions) < 2:
        raise NotEnoughViewsError(
            f"hand-eye needs at least 3 poses with rotations about at least two different axes; got {len(flange)} poses, "
            f"{len(motions)} usable motions. Move the robot through more varied orientations (10-20 poses is typical)."
        )
    results: dict[str, HandEyeResult] = {}
    for method in methods:
        X = _opencv_hand_eye(method, flange, board) if use_opencv else None
        backend = "opencv"
        if X is None:
            R = _SOLVERS[method](motions)
            X, backend = make_transform(R, _translation(motions, R)), "numpy"
        rot, trans = consistency_residual(flange, board, X)
        results[method] = HandEyeResult(method, X, rot, trans, backend)
    return results


def synthetic_hand_eye(
    X: np.ndarray,
    n: int,
    rng: np.random.Generator,
    rot_noise_deg: float = 0.0,
    trans_noise_m: float = 0.0,
    mode: str = "eye_in_hand",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Flange poses and noisy board-in-camera poses generated from a known hand-eye transform ``X``.

    Eye-in-hand: board fixed in the base; eye-to-hand: board fixed on the flange, X = T_base<-camera.
    """
    fixed = make_transform(Rotation.from_rotvec(rng.normal(0, 0.3, 3)).as_matrix(), [0.6, 0.1, 0.0])
    flange, board = [], []
    for _ in range(n):
        R = Rotation.from_euler(
            "xyz", rng.uniform([-0.6, -0.6, -np.pi], [0.6, 0.6, np.pi]) + np.array([np.pi, 0, 0])
        ).as_matrix()
        F = make_transform(R, rng.uniform([0.3, -0.3, 0.3], [0.7, 0.3, 0.6]))
        C = invert(X) @ invert(F) @ fixed if mode == "eye_in_hand" else invert(X) @ F @ fixed
        noise = make_transform(
            Rotation.from_rotvec(rng.normal(0, np.deg2rad(rot_noise_deg), 3)).as_matrix(),
            rng.normal(0, trans_noise_m, 3),
        )
        flange.append(F)
        board.append(C @ noise)
    return flange, board
