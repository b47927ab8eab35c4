"""The SIL articulated robot is the robot the policy was trained on: its task variant's env overrides apply."""

from __future__ import annotations

from pathlib import Path

from drivers.sim_articulated_node import _robot_cfg

ROBOTS = Path(__file__).resolve().parents[2] / "launch" / "robots"


def test_a_robot_with_a_variant_gets_its_overrides_and_one_without_gets_its_profile(tmp_path):
    go2 = _robot_cfg("legged-walk", str(ROBOTS / "go2.yaml"))
    assert go2.params.name == "go2" and not go2.observe_base_velocity  # launch/tasks/legged-walk/go2.yaml
    robots = tmp_path / "robots"
    robots.mkdir()
    text = (ROBOTS / "a1.yaml").read_text().replace("name: a1", "name: lone_dog")
    (robots / "lone_dog.yaml").write_text(text)
    lone = _robot_cfg("legged-walk", str(robots / "lone_dog.yaml"))  # no tasks/legged-walk/lone_dog.yaml
    assert lone.params.name == "lone_dog" and lone.observe_base_velocity  # the task's default
    assert _robot_cfg("legged-walk", None) is None
