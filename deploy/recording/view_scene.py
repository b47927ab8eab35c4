"""The MuJoCo scene of ``sim2real view``: a grid floor, the vehicle at the current time and, faded, at a few
instants of the run, the pose track (red) and the reference (green).

The vehicle is drawn as a marker, not the robot's model: an X frame with four rotors and a nose on +x (body
FLU), scaled to the run (at least a tenth of the track's extent) so that a 9 cm Crazyflie stays visible over
metres of flight. An arm's log has the end effector's pose in the arm's base frame; the base is drawn at the
world origin.

Rendering: offscreen through :class:`mujoco.Renderer` (no display needed: with no ``DISPLAY`` and no
``MUJOCO_GL`` set, EGL is chosen before mujoco is imported; ``MUJOCO_GL=osmesa`` works too), or in the
interactive viewer (:func:`mujoco.viewer.launch_passive`). Both add the tracks as user geoms after the scene
update.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from typing import Any

import numpy as np

from deploy.recording.view_data import LogView

TRACK_RGBA = np.array([0.85, 0.10, 0.10, 1.0], dtype=np.float32)
REFERENCE_RGBA = np.array([0.10, 0.65, 0.20, 1.0], dtype=np.float32)
MAX_SEGMENTS = 400  # per track; longer tracks are subsampled


def choose_gl() -> None:
    """Pick a headless OpenGL for mujoco when there is no display (must run before mujoco is imported)."""
    if "mujoco" in sys.modules or os.environ.get("MUJOCO_GL"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["MUJOCO_GL"] = "egl"


def marker_size(view: LogView) -> float:
    """Half-span of the drawn vehicle, m: a tenth of the run's extent, at least 0.1 m."""
    pts = np.concatenate([view.positions, view.reference]) if len(view.reference) else view.positions
    extent = float(np.ptp(pts, axis=0).max()) if len(pts) else 1.0
    return max(0.1, 0.1 * extent)


def _vehicle(name: str, s: float, alpha: float) -> str:
    arm = f'type="box" size="{s:.4f} {0.08 * s:.4f} {0.04 * s:.4f}" rgba=".25 .25 .3 {alpha}"'
    geoms = [
        f'<geom {arm} euler="0 0 45"/>',
        f'<geom {arm} euler="0 0 -45"/>',
        f'<geom type="sphere" size="{0.18 * s:.4f}" pos="{0.75 * s:.4f} 0 0" rgba=".9 .2 .2 {alpha}"/>',
    ]
    r = s / math.sqrt(2.0)
    for x, y in ((r, r), (r, -r), (-r, r), (-r, -r)):
        geoms.append(
            f'<geom type="cylinder" size="{0.45 * s:.4f} {0.02 * s:.4f}" pos="{x:.4f} {y:.4f} {0.06 * s:.4f}" '
            f'rgba=".3 .5 .9 {0.6 * alpha:.3f}"/>'
        )
    return f'<body name="{name}" mocap="true">{"".join(geoms)}</body>'


def scene_xml(view: LogView, n_ghosts: int, width: int, height: int) -> str:
    """MJCF of the scene: floor, the vehicle and ``n_ghosts`` faded copies (mocap bodies, no collisions)."""
    s = marker_size(view)
    pts = np.concatenate([view.positions, view.reference]) if len(view.reference) else view.positions
    half = max(2.0, float(np.abs(pts[:, :2]).max()) * 1.5 + 1.0) if len(pts) else 2.0
    bodies = [_vehicle("vehicle", s, 1.0)] + [_vehicle(f"ghost{i}", s, 0.3) for i in range(n_ghosts)]
    return f"""<mujoco model="sim2real view">
  <visual>
    <global offwidth="{max(width, 640)}" offheight="{max(height, 480)}"/>
    <headlight ambient=".45 .45 .45" diffuse=".6 .6 .6" specular="0 0 0"/>
  </visual>
  <default><geom contype="0" conaffinity="0"/></default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".93 .93 .93" rgb2=".86 .86 .86" width="512"
             height="512" mark="edge" markrgb=".7 .7 .7"/>
    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true"/>
    <texture name="sky" type="skybox" builtin="gradient" rgb1=".78 .85 .93" rgb2="1 1 1" width="32" height="512"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="{half:.2f} {half:.2f} 0.05" material="grid"/>
    {"".join(bodies)}
  </worldbody>
</mujoco>"""


def ghost_times(view: LogView, n: int) -> np.ndarray:
    """``n`` instants spread over the pose track (first to last pose)."""
    if not len(view.times) or n <= 0:
        return np.zeros(0)
    return np.linspace(view.times[0], view.times[-1], n)


class Scene:
    """A MuJoCo model of the view and the data that poses it. ``place(t)`` moves the vehicle to the pose at
    ``t`` s; the ghosts stand at :func:`ghost_times`."""

    def __init__(self, view: LogView, n_ghosts: int = 5, width: int = 640, height: int = 480) -> None:
        choose_gl()
        import mujoco

        self.mujoco, self.view = mujoco, view
        self.model = mujoco.MjModel.from_xml_string(scene_xml(view, n_ghosts, width, height))
        self.data = mujoco.MjData(self.model)
        self.n_ghosts = n_ghosts
        for i, t in enumerate(ghost_times(view, n_ghosts)):
            self._pose(i + 1, t)
        self.place(view.times[-1] if len(view.times) else 0.0)

    def _pose(self, mocap: int, t: float) -> None:
        if not len(self.view.times):
            self.data.mocap_pos[mocap] = (0.0, 0.0, -100.0)  # no pose in the log: out of sight
            return
        p, q = self.view.pose_at(t)
        self.data.mocap_pos[mocap] = p
        self.data.mocap_quat[mocap] = (q[3], q[0], q[1], q[2]) if np.linalg.norm(q) > 0 else (1.0, 0, 0, 0)

    def place(self, t: float) -> None:
        self._pose(0, t)
        self.mujoco.mj_kinematics(self.model, self.data)

    def camera(self) -> Any:
        """A free camera on the run: looking at the middle of the tracks from the south-west, 30 deg down."""
        cam = self.mujoco.MjvCamera()
        cam.type = self.mujoco.mjtCamera.mjCAMERA_FREE
        view = self.view
        pts = np.concatenate([view.positions, view.reference]) if len(view.reference) else view.positions
        if len(pts):
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            cam.lookat[:] = (lo + hi) / 2.0
            extent = float(np.linalg.norm(hi - lo))
        else:
            extent = 1.0
        cam.distance = 1.6 * max(extent, 4.0 * marker_size(view)) + 0.5
        cam.azimuth, cam.elevation = 135.0, -30.0
        return cam

    def add_tracks(self, scn: Any) -> None:
        """The pose track and the reference as capsules in ``scn`` (an mjvScene after its update)."""
        width = 0.15 * marker_size(self.view)
        self._polyline(scn, self.view.positions, TRACK_RGBA, width)
        self._polyline(scn, self.view.reference, REFERENCE_RGBA, 0.7 * width)
        if len(self.view.reference):
            self._sphere(scn, self.view.reference[-1], REFERENCE_RGBA, 1.5 * width)

    def _polyline(self, scn: Any, points: np.ndarray, rgba: np.ndarray, width: float) -> None:
        mj = self.mujoco
        if len(points) < 2:
            return
        step = max(1, math.ceil((len(points) - 1) / MAX_SEGMENTS))
        pts = np.concatenate([points[::step], points[-1:]]).astype(np.float64)
        for a, b in itertools.pairwise(pts):
            if scn.ngeom >= scn.maxgeom or np.allclose(a, b):
                continue
            geom = scn.geoms[scn.ngeom]
            mj.mjv_initGeom(geom, mj.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3), np.eye(3).ravel(), rgba)
            mj.mjv_connector(geom, mj.mjtGeom.mjGEOM_CAPSULE, width, a, b)
            scn.ngeom += 1

    def _sphere(self, scn: Any, at: np.ndarray, rgba: np.ndarray, radius: float) -> None:
        mj = self.mujoco
        if scn.ngeom >= scn.maxgeom:
            return
        size = np.array([radius, 0.0, 0.0])
        mj.mjv_initGeom(
            scn.geoms[scn.ngeom], mj.mjtGeom.mjGEOM_SPHERE, size, at.astype(np.float64), np.eye(3).ravel(), rgba
        )
        scn.ngeom += 1

    def render(self, width: int, height: int, tracks: bool = True) -> tuple[np.ndarray, Any]:
        """(image (height, width, 3) uint8, the mjvScene's camera) rendered offscreen."""
        renderer = self.mujoco.Renderer(self.model, height, width)
        try:
            renderer.update_scene(self.data, self.camera())
            if tracks:
                self.add_tracks(renderer.scene)
            image = renderer.render().copy()
            # mono rendering draws from the average of the two eyes' cameras (mjr_render)
            gl_camera = self.mujoco.mjv_averageCamera(renderer.scene.camera[0], renderer.scene.camera[1])
            camera = {k: np.array(getattr(gl_camera, k), dtype=float) for k in ("pos", "forward", "up")}
            for k in ("frustum_center", "frustum_width", "frustum_bottom", "frustum_top", "frustum_near"):
                camera[k] = float(getattr(gl_camera, k))
        finally:
            renderer.close()
        return image, camera


def project(camera: dict[str, Any], points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel (column, row) of world points (N, 3) in an image rendered with ``camera`` (see :meth:`Scene.render`);
    row 0 is the top."""
    right = np.cross(camera["forward"], camera["up"])
    d = np.asarray(points, dtype=float) - camera["pos"]
    depth = d @ camera["forward"]
    x = (d @ right) * camera["frustum_near"] / depth
    y = (d @ camera["up"]) * camera["frustum_near"] / depth
    top, bottom = camera["frustum_top"], camera["frustum_bottom"]
    half_width = camera["frustum_width"] or 0.5 * (top - bottom) * width / height  # 0: from the aspect ratio
    col = (x - camera["frustum_center"] + half_width) / (2.0 * half_width) * width
    row = (top - y) / (top - bottom) * height
    return np.stack([col, row], axis=-1)
