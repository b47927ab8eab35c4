"""A robot is data: a new legged robot (a profile and its variant of legged-walk, written into a temporary directory)
trains through the path ``sim2real train legged-walk --robot <path>`` takes, with its own gains, default pose and
overrides; the run remembers its robot for eval and export; every way of getting it wrong is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import sim.tasks
from policies.evaluate import ARTICULATED_TASKS, load_source, source_cfg
from policies.train_cfg import TRAIN_CFGS, train_cfg
from sim.articulated.profile import ROBOTS_DIR
from sim.overrides import OverrideError
from sim.robot_variants import ROBOT_PATH_ENV, RobotVariantError
from sim.tasks import TASKS, task_cfg

KP, KD = 27.0, 0.7  # A1: 20, 0.5
DEFAULT_POSE = [-0.05, 0.9, -1.6, 0.05, 0.9, -1.6, -0.05, 1.1, -1.6, 0.05, 1.1, -1.6]  # A1: thigh 0.8 / 1.0, calf -1.5
COMMAND_X = [-0.2, 0.4]  # m/s; the A1 variant: [-0.5, 1.0]


def write_mini_dog(root: Path, variant: dict | None = None, name: str = "mini_dog") -> Path:
    """``root/robots/<name>.yaml`` (the A1's URDF copied as ``<name>/<name>.urdf``, other gains and default pose)
    and ``root/tasks/legged-walk/<name>.yaml``; returns the profile's path."""
    import pybullet_data

    a1 = Path(pybullet_data.getDataPath()) / "a1"
    description = root / "robots" / name
    description.mkdir(parents=True)
    (description / f"{name}.urdf").write_text((a1 / "a1.urdf").read_text())
    (description / "meshes").symlink_to(a1 / "meshes")
    profile = yaml.safe_load((ROBOTS_DIR / "a1.yaml").read_text())
    articulated = profile["articulated"]
    articulated |= {"name": name, "description": f"{name}/{name}.urdf", "initial_base_height_m": 0.30}
    articulated["joints"] |= {"kp_nm_per_rad": KP, "kd_nm_s_per_rad": KD, "default_position_rad": DEFAULT_POSE}
    path = root / "robots" / f"{name}.yaml"
    path.write_text("# a test robot: the A1's URDF with other gains and default pose\n" + yaml.safe_dump(profile))
    if variant is None:
        variant = {
            "robot": name,
            "env": {"reward.diagonal_pairs": [[0, 3], [1, 2]], "command.lin_vel_x_m_s": COMMAND_X, "episode_s": 2.0},
            "train": {"num_envs": 8, "max_iterations": 2, "ppo.num_steps_per_env": 8, "actor.hidden_dims": [32, 32]},
        }
    (root / "tasks" / "legged-walk").mkdir(parents=True)
    (root / "tasks" / "legged-walk" / f"{name}.yaml").write_text(yaml.safe_dump(variant))
    return path


def test_the_registry_derives_every_layer_s_table():
    from deploy.cli import SIL_TASKS

    assert sorted(TRAIN_CFGS) == sorted(TASKS) == ["arm-reach", "legged-walk", "quadrotor-hover", "quadrotor-track"]
    assert ARTICULATED_TASKS == ("arm-reach", "legged-walk")
    assert SIL_TASKS == {"legged": "legged-walk", "arm": "arm-reach"}
    for name, reg in TASKS.items():
        assert reg.name == name and reg.description
        assert train_cfg(name).task == name


def test_the_default_robots_are_variants_that_restate_the_defaults():
    from sim.articulated.tasks.arm_reach import ArmReachCfg
    from sim.articulated.tasks.legged_walk import LeggedWalkCfg

    walk, reach = task_cfg("legged-walk"), task_cfg("arm-reach")
    assert walk == LeggedWalkCfg() and walk.params.name == "a1"
    assert reach == ArmReachCfg() and reach.params.name == "franka"
    assert walk.reward.diagonal_pairs == ((0, 3), (1, 2))  # tuples, as the config declares them
    cfg = train_cfg("legged-walk")
    assert (cfg.robot, cfg.num_envs, cfg.ppo.entropy_coef, cfg.ppo.init_noise_std) == ("a1", 2048, 0.01, 1.0)
    assert train_cfg("quadrotor-hover").robot is None  # the config's built-in Crazyflie


def test_a_robot_from_a_temporary_directory_trains_with_its_own_profile_and_variant(tmp_path, monkeypatch):
    import sim2real

    robot = write_mini_dog(tmp_path / "mine")
    envs = []
    make_env = sim.tasks.make_env

    def spy(*args, **kwargs):
        envs.append(make_env(*args, **kwargs))
        return envs[-1]

    monkeypatch.setattr(sim.tasks, "make_env", spy)
    run_dir = tmp_path / "run"
    argv = ["train", "legged-walk", "--robot", str(robot), "--run-dir", str(run_dir), "--no-progress"]
    assert sim2real.main([*argv, "--threads", "1", "--seed", "3"]) == 0

    (env,) = envs
    assert env.num_envs == 8 and env.profile.name == "mini_dog"
    assert torch.equal(env.actuators.kp, torch.full((12,), KP)) and torch.equal(env.actuators.kd, torch.full((12,), KD))
    assert torch.allclose(env.default_pose, torch.tensor(DEFAULT_POSE))
    assert env.cfg.command.lin_vel_x_m_s == tuple(COMMAND_X) and env.max_episode_length == 100  # 2 s at 50 Hz
    assert env.model.body("trunk").id > 0  # the copied URDF, resolved against the profile's directory

    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["robot"] == str(robot.resolve())
    assert run["config"]["num_envs"] == 8 and run["config"]["actor"]["hidden_dims"] == [32, 32]
    infos = torch.load(run_dir / "model_1.pt", weights_only=False)["infos"]
    assert infos["robot"] == str(robot.resolve()) and list(infos["profile"]["joints"]["kp_nm_per_rad"]) == [KP] * 12

    # eval rebuilds the same variant without --robot (the run remembers it), with the stored profile
    cfg = source_cfg(load_source(run_dir, with_onnx=False))
    assert cfg.params.name == "mini_dog" and cfg.command.lin_vel_x_m_s == tuple(COMMAND_X) and cfg.episode_s == 2.0
    assert cfg.params.description_path() == robot.parent / "mini_dog" / "mini_dog.urdf"

    # --robot on eval: that robot's profile and variant instead
    other = source_cfg(load_source(run_dir, with_onnx=False), "a1")
    assert other.params.name == "a1" and other.command.lin_vel_x_m_s == (-0.5, 1.0)

    # the exported policy carries it too
    from policies.export import export

    onnx = export(run_dir, header=False)["onnx"]
    assert load_source(onnx).robot == str(robot.resolve())

    # a robot that moved since: one line naming the robot and what to pass
    robot.rename(robot.with_suffix(".moved"))
    with pytest.raises(RobotVariantError, match=r"trained on robot .*mini_dog.* pass --robot"):
        source_cfg(load_source(run_dir, with_onnx=False))


def test_a_bare_name_is_found_through_the_robot_path(tmp_path, monkeypatch):
    write_mini_dog(tmp_path)
    monkeypatch.setenv(ROBOT_PATH_ENV, str(tmp_path / "robots"))
    cfg = train_cfg("legged-walk", "mini_dog")
    assert cfg.robot == "mini_dog" and cfg.env.params.joints.kp_nm_per_rad == (KP,) * 12
    assert cfg.num_envs == 8 and cfg.ppo.num_steps_per_env == 8


def test_an_unknown_robot_names_the_places_searched_and_the_robots_found():
    with pytest.raises(RobotVariantError, match=r"unknown robot 'nodog'.*known robots: .*a1.*franka"):
        task_cfg("legged-walk", "nodog")
    with pytest.raises(RobotVariantError, match=r"robot file '/no/such/dog.yaml' does not exist"):
        task_cfg("legged-walk", "/no/such/dog.yaml")


def test_the_command_line_answers_a_wrong_robot_with_one_line(caplog):
    import sim2real

    assert sim2real.main(["train", "legged-walk", "--robot", "nodog"]) == 2
    assert "unknown robot 'nodog'" in caplog.text and "Traceback" not in caplog.text


def test_a_quadrotor_variant_loads_its_profile_section_and_overrides(tmp_path):
    (tmp_path / "robots").mkdir()
    (tmp_path / "robots" / "cf.yaml").write_text((ROBOTS_DIR / "crazyflie2.yaml").read_text().replace("0.027", "0.03"))
    (tmp_path / "tasks" / "quadrotor-hover").mkdir(parents=True)
    variant = {"robot": "cf", "env": {"episode_s": 3.0}, "train": {"num_envs": 64}}
    (tmp_path / "tasks" / "quadrotor-hover" / "cf.yaml").write_text(yaml.safe_dump(variant))
    cfg = train_cfg("quadrotor-hover", tmp_path / "robots" / "cf.yaml")
    assert (cfg.env.params.mass, cfg.env.episode_s, cfg.num_envs) == (0.03, 3.0, 64)
    with pytest.raises(RobotVariantError, match=r"robot_class 'quadrotor'; task 'legged-walk'"):
        task_cfg("legged-walk", tmp_path / "robots" / "cf.yaml")


def test_a_missing_variant_says_where_it_was_expected(tmp_path):
    robot = write_mini_dog(tmp_path)
    (tmp_path / "tasks" / "legged-walk" / "mini_dog.yaml").unlink()
    expected = tmp_path / "tasks" / "legged-walk" / "mini_dog.yaml"
    with pytest.raises(RobotVariantError, match=rf"no variant of task 'legged-walk': expected '{expected}'"):
        task_cfg("legged-walk", robot)


def test_a_robot_of_another_class_is_refused_with_the_tasks_it_fits():
    with pytest.raises(RobotVariantError, match=r"robot_class 'arm'; task 'legged-walk' needs.*'legged'.*arm-reach"):
        task_cfg("legged-walk", "franka")
    with pytest.raises(RobotVariantError, match=r"robot_class 'legged'; task 'arm-reach' needs"):
        train_cfg("arm-reach", "a1")


@pytest.mark.parametrize(
    ("variant", "error", "match"),
    [
        ({"robot": "mini_dog", "env": {"reward.no_such_term": 1.0}}, OverrideError, r"env: reward has no field"),
        ({"robot": "mini_dog", "env": {"command": {"lin_vel_x_m_s": "fast"}}}, OverrideError, r"lin_vel_x_m_s: exp"),
        ({"robot": "mini_dog", "train": {"ppo.gamma": "high"}}, OverrideError, r"train: ppo.gamma: expected a number"),
        ({"robot": "mini_dog", "train": {"num_env": 8}}, OverrideError, r"has no field 'num_env'"),
        ({"robot": "a1", "env": {}}, RobotVariantError, r"says 'robot: a1'.*write 'robot: mini_dog'"),
        ({"robot": "mini_dog", "envs": {}}, RobotVariantError, r"unknown section\(s\) \['envs'\]"),
        ({"robot": "mini_dog", "env": [1, 2]}, RobotVariantError, r"'env:' expected a mapping"),
    ],
)
def test_a_malformed_variant_names_the_file_and_the_field(tmp_path, variant, error, match):
    robot = write_mini_dog(tmp_path, variant)
    with pytest.raises(error, match=match) as caught:
        train_cfg("legged-walk", robot)
    assert "mini_dog.yaml" in str(caught.value)


def test_a_nested_mapping_in_a_variant_sets_fields_one_by_one(tmp_path):
    variant = {"robot": "mini_dog", "env": {"command": {"lin_vel_x_m_s": COMMAND_X, "resample_s": 4}}}
    cfg = task_cfg("legged-walk", write_mini_dog(tmp_path, variant))
    assert cfg.command.lin_vel_x_m_s == tuple(COMMAND_X) and cfg.command.resample_s == 4.0
    assert cfg.command.lin_vel_y_m_s == (-0.3, 0.3)  # the rest kept
