"""``sim2real view LOG --png``: renders headless (MuJoCo offscreen; EGL is chosen when there is no display) an
image of the asked size whose pixels, where the pose track projects, differ from the same scene without tracks
and are the track's red. Bad arguments are refused in one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sim2real
from tests.deploy.recording.test_log_views import fly

ROOT = Path(__file__).resolve().parents[3]


def test_png_shows_the_track_where_it_projects(tmp_path: Path) -> None:
    log = tmp_path / "run.mcap"
    fly(log, n=60)  # a circle of radius 1 m climbing 0.6 m, and its reference
    out = tmp_path / "view.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL")}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.deploy.recording._render_check", str(log), str(out), "800", "500"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["size"] == [800, 500]
    assert result["left_half_std"] > 10.0  # not a blank panel
    if "no_gl" in result:
        pytest.skip(f"MuJoCo cannot render offscreen here (no EGL/OSMesa): {result['no_gl']}")
    assert result["points"] >= 50  # the track is in view
    assert result["changed"] > 0.8, result  # drawn where it projects (the vehicle markers hide a little of it)
    assert result["red"] > 0.6, result


def run(argv: list[str], caplog) -> tuple[int, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = sim2real.main(argv)
    return code, [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--size", "100", "100"], "--size: expected at least 320 x 240 pixels, got 100 x 100"),
        (["--instants", "-1"], "--instants: expected a count >= 0, got -1"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(tmp_path: Path, caplog, extra: list[str], message: str) -> None:
    code, errors = run(["view", str(tmp_path / "run.mcap"), "--png", str(tmp_path / "x.png"), *extra], caplog)
    assert code == 2 and errors == [message]
    assert not (tmp_path / "x.png").exists()


def test_a_missing_log_and_an_empty_directory_are_named(tmp_path: Path, caplog) -> None:
    code, errors = run(["view", str(tmp_path / "nothing.mcap"), "--png", str(tmp_path / "x.png")], caplog)
    assert code == 2 and len(errors) == 1 and "does not exist" in errors[0]
    code, errors = run(["view", str(tmp_path), "--png", str(tmp_path / "x.png")], caplog)
    assert code == 2 and len(errors) == 1 and "holds no .mcap log" in errors[0]
