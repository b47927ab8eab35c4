"""``sim2real view LOG [--png out.png]``: look at a deploy log without Foxglove.

Without ``--png`` the run plays in MuJoCo's interactive viewer (``mujoco.viewer``, needs a display): the vehicle
moves along its recorded poses in real time (``--speed``), over its whole track (red) and the reference (green),
with faded copies at a few instants. With ``--png`` nothing opens: one image with the same 3D scene rendered
offscreen (EGL or OSMesa, no display needed) beside strip charts of position vs reference, the command, and the
safety state. Where MuJoCo cannot render at all (no OpenGL library), the scene panel is drawn with matplotlib.

Why MuJoCo: it is already a dependency (the simulators use it), installs from PyPI as one wheel on Linux x86-64
and arm64, macOS and Windows, and renders offscreen without a display, so the PNG path is tested headless. rerun
and viser would add a viewer process (rerun's native app) or a browser (viser) and cannot render an image
without one.

LOG: a ``.mcap`` written by the flight recorder (a crashed run's too: read up to its last complete chunk), or a
directory of them (its newest log).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from deploy.recording.view_data import LogView, load_view
from deploy.recording.view_scene import REFERENCE_RGBA, TRACK_RGBA, Scene, ghost_times

log = logging.getLogger("sim2real.view")
STATE_COLORS = {
    "DISARMED": "#bbbbbb",
    "ARMING": "#f2c14e",
    "ACTIVE": "#5cb85c",
    "FALLBACK": "#f0883e",
    "ESTOP": "#d9534f",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", type=Path, help="deploy log (.mcap) or a directory of them (its newest log)")
    p.add_argument("--png", type=Path, default=None, help="write one image here instead of opening the viewer")
    p.add_argument("--size", type=int, nargs=2, default=(1280, 800), metavar=("W", "H"), help="PNG size, pixels")
    p.add_argument("--instants", type=int, default=5, help="faded copies of the vehicle along the run")
    p.add_argument("--speed", type=float, default=1.0, help="viewer playback speed (1 = real time)")


def run(args: argparse.Namespace) -> int:
    width, height = args.size
    for bad, why in (
        (width < 320 or height < 240, f"--size: expected at least 320 x 240 pixels, got {width} x {height}"),
        (args.instants < 0, f"--instants: expected a count >= 0, got {args.instants}"),
        (args.speed <= 0, f"--speed: expected a factor > 0, got {args.speed}"),
    ):
        if bad:
            log.error("%s", why)
            return 2
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's start-up notes
    view = load_view(args.log)
    if view.problem:
        log.warning("%s", view.problem)
    if not len(view.times):
        log.warning("%s has no pose topic: the 3D scene stays empty", view.path)
    if args.png is not None:
        out = render_png(view, args.png, width, height, args.instants)
        log.info("wrote %s (%d x %d)", out, width, height)
        return 0
    return interactive(view, args.instants, args.speed)


# ---------------------------------------------------------------------------------------------- PNG


def render_png(view: LogView, out: str | Path, width: int = 1280, height: int = 800, instants: int = 5) -> Path:
    """One image of the run: the 3D scene (left half) and strip charts (right half); ``width`` x ``height`` px."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    scene_w = width // 2
    try:
        image, _ = Scene(view, instants, scene_w, height).render(scene_w, height)
        ax = fig.add_axes((0.0, 0.0, 0.5, 1.0))
        ax.imshow(image, aspect="auto", interpolation="nearest")
        ax.set_axis_off()
    except Exception as exc:  # no OpenGL at all: still give the picture, drawn with matplotlib
        log.warning("MuJoCo could not render offscreen (%s); the scene is drawn with matplotlib", exc)
        _matplotlib_scene(fig, view, instants)
    fig.text(0.01, 0.985, f"{view.path.name}  ({view.frame} frame, red: pose track, green: reference)", va="top")
    _charts(fig, view)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _matplotlib_scene(fig, view: LogView, instants: int) -> None:
    ax = fig.add_axes((0.02, 0.02, 0.46, 0.92), projection="3d")
    if len(view.positions):
        ax.plot(*view.positions.T, color=TRACK_RGBA[:3], lw=2)
    if len(view.reference):
        ax.plot(*view.reference.T, color=REFERENCE_RGBA[:3], lw=1.5)
    for t in ghost_times(view, instants):
        p, q = view.pose_at(t)
        forward = _rotate(q, np.array([1.0, 0.0, 0.0]))
        ax.quiver(*p, *forward, length=0.2, color="k")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v rotated by the unit quaternion q (x, y, z, w)."""
    u, w = q[:3], q[3]
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def _charts(fig, view: LogView) -> None:
    left, w = 0.56, 0.42
    ax_pos = fig.add_axes((left, 0.60, w, 0.33))
    ax_cmd = fig.add_axes((left, 0.25, w, 0.26), sharex=ax_pos)
    ax_state = fig.add_axes((left, 0.08, w, 0.06), sharex=ax_pos)
    for i, axis in enumerate("xyz"):
        color = f"C{i}"
        if len(view.times):
            ax_pos.plot(view.times, view.positions[:, i], color=color, lw=1.2, label=axis)
        if len(view.reference):
            ax_pos.plot(view.reference_times, view.reference[:, i], "--", color=color, lw=1.0, label=f"{axis} ref")
    ax_pos.set_title(f"position (solid) and reference (dashed), m, {view.frame}", fontsize=9)
    if ax_pos.lines:
        ax_pos.legend(fontsize=7, ncol=6, loc="upper left")
    for i, label in enumerate(view.command_labels):
        ax_cmd.plot(view.command_times, view.command[:, i], lw=1.0, label=label)
    ax_cmd.set_title(view.command_title or "no command in this log", fontsize=9)
    if view.command_labels:
        ax_cmd.legend(fontsize=7, ncol=4, loc="upper left")
    _state_strip(ax_state, view)
    ax_state.set_xlabel("time (s)")


def _state_strip(ax, view: LogView) -> None:
    ax.set_yticks([])
    ax.set_title("safety state", fontsize=9)
    end = max(view.end_s, view.transitions[-1][0] if view.transitions else 0.0)
    for i, (t, state) in enumerate(view.transitions):
        t_next = view.transitions[i + 1][0] if i + 1 < len(view.transitions) else end
        ax.axvspan(t, max(t_next, t + 1e-3), color=STATE_COLORS.get(state, "#888888"))
        ax.text(t, 0.5, f" {state}", va="center", fontsize=7, transform=ax.get_xaxis_transform())


# ---------------------------------------------------------------------------------------------- viewer


def interactive(view: LogView, instants: int, speed: float) -> int:
    """Play the run in MuJoCo's viewer until its window is closed; the playback loops."""
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
        log.error("no display to open the viewer on; write an image instead: sim2real view LOG --png run.png")
        return 2
    scene = Scene(view, instants)
    import mujoco.viewer

    start, stop = (view.times[0], view.times[-1]) if len(view.times) else (0.0, 0.0)
    with mujoco.viewer.launch_passive(scene.model, scene.data) as viewer:
        cam = scene.camera()
        viewer.cam.lookat[:], viewer.cam.distance = cam.lookat, cam.distance
        viewer.cam.azimuth, viewer.cam.elevation = cam.azimuth, cam.elevation
        with viewer.lock():
            viewer.user_scn.ngeom = 0
            scene.add_tracks(viewer.user_scn)
        wall0 = time.monotonic()
        while viewer.is_running():
            t = start + ((time.monotonic() - wall0) * speed) % max(stop - start, 1e-9)
            with viewer.lock():
                scene.place(t)
            viewer.sync()
            time.sleep(1.0 / 60.0)
    return 0
