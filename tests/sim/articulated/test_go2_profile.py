"""The Go2 profile and its bundled description: loads cleanly, compiles in MuJoCo without a warning, carries
go2_description's masses, limits and axes, and loads in pybullet (the second engine of the sim-to-sim check)."""

from __future__ import annotations

import warnings

import mujoco
import numpy as np
import pytest

from sim.articulated.profile import load_profile
from sim.articulated.robots import joint_qpos_addresses, load_model

UNITREE_ORDER = [f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")]


def test_go2_profile_numbers_from_unitree() -> None:
    p = load_profile("go2")
    assert list(p.joints.names) == UNITREE_ORDER
    assert p.joints.default_position_rad == (-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5)
    assert set(p.joints.kp_nm_per_rad) == {20.0} and set(p.joints.kd_nm_s_per_rad) == {0.5}
    assert set(p.joints.effort_limit_nm) == {23.5} and set(p.joints.velocity_limit_rad_s) == {30.0}
    assert p.bodies.feet == ("FR_foot", "FL_foot", "RR_foot", "RL_foot")
    assert (p.substeps, p.action_scale_rad) == (4, 0.25)


def test_go2_model_masses_limits_axes() -> None:
    p = load_profile("go2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(p)
    assert model.nu == 12 and model.nq == 19
    base = model.body("base")
    assert model.body_mass[base.id] == pytest.approx(6.921)
    assert model.body_subtreemass[base.id] == pytest.approx(6.921 + 4 * (0.678 + 1.152 + 0.154 + 0.04))
    assert model.body_mass[model.body("RL_thigh").id] == pytest.approx(1.152)
    front, rear = model.joint("FL_thigh_joint"), model.joint("RR_thigh_joint")
    np.testing.assert_allclose(model.jnt_range[front.id], [-1.5708, 3.4907])
    np.testing.assert_allclose(model.jnt_range[rear.id], [-0.5236, 4.5379])
    np.testing.assert_allclose(model.jnt_range[model.joint("FR_calf_joint").id], [-2.7227, -0.83776])
    np.testing.assert_allclose(model.jnt_axis[model.joint("FR_hip_joint").id], [1, 0, 0])
    np.testing.assert_allclose(model.actuator_ctrlrange[0], [-23.5, 23.5])
    # default pose: the feet 0.29-0.30 m below the base origin, so the reset height 0.33 m drops the robot < 2 cm
    data = mujoco.MjData(model)
    data.qpos[joint_qpos_addresses(model, p.joints.names)] = p.joints.default_position_rad
    mujoco.mj_forward(model, data)
    foot_z = np.array([data.xpos[model.body(f).id][2] for f in p.bodies.feet]) - 0.022
    assert np.all(foot_z > 0.0) and np.all(foot_z < 0.02)


def test_go2_description_loads_in_pybullet() -> None:
    pybullet = pytest.importorskip("pybullet")
    client = pybullet.connect(pybullet.DIRECT)
    try:
        robot = pybullet.loadURDF(str(load_profile("go2").description_path()), physicsClientId=client)
        n = pybullet.getNumJoints(robot, physicsClientId=client)
        infos = [pybullet.getJointInfo(robot, i, physicsClientId=client) for i in range(n)]
        revolute = [i[1].decode() for i in infos if i[2] == pybullet.JOINT_REVOLUTE]
        assert revolute == UNITREE_ORDER
        mass = sum(pybullet.getDynamicsInfo(robot, i, physicsClientId=client)[0] for i in range(-1, n))
        assert mass == pytest.approx(15.017)
    finally:
        pybullet.disconnect(client)
