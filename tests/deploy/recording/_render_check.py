"""Run by tests/deploy/recording/test_view.py in a process of its own (MuJoCo picks its OpenGL at import, and
headless rendering needs EGL or OSMesa chosen before that): ``python -m tests.deploy.recording._render_check LOG
OUT.png W H``. Writes the PNG through the command line's own function and prints JSON: the image size, and at the
pixels where the pose track projects, whether the image differs from the same scene rendered without tracks."""

from __future__ import annotations

import json
import sys

import numpy as np


def main(log_path: str, out: str, width: int, height: int) -> None:
    from deploy.recording.view import render_png
    from deploy.recording.view_data import load_view
    from deploy.recording.view_scene import Scene, project

    view = load_view(log_path)
    render_png(view, out, width, height, instants=3)
    from PIL import Image

    png = np.asarray(Image.open(out).convert("RGB")).astype(int)
    scene_w = width // 2
    size = list(Image.open(out).size)
    try:
        blank, camera = Scene(view, 3, scene_w, height).render(scene_w, height, tracks=False)
    except Exception as exc:  # no OpenGL library: the PNG's scene was drawn with matplotlib
        print(json.dumps({"size": size, "no_gl": str(exc), "left_half_std": float(png[:, :scene_w].std())}))
        return
    cols, rows = project(camera, view.positions, scene_w, height).round().astype(int).T
    inside = (cols >= 0) & (cols < scene_w) & (rows >= 0) & (rows < height)
    cols, rows = cols[inside], rows[inside]
    track = png[rows, cols]
    changed = np.abs(track - blank[rows, cols].astype(int)).sum(axis=-1) > 60
    red = (track[:, 0] > 120) & (track[:, 0] > track[:, 1] + 60) & (track[:, 0] > track[:, 2] + 60)
    print(
        json.dumps(
            {
                "size": size,
                "points": int(inside.sum()),
                "changed": float(changed.mean()),
                "red": float(red.mean()),
                "left_half_std": float(png[:, :scene_w].std()),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
