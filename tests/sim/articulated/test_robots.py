"""Robot descriptions -> MuJoCo models: clean compilation, profile order, clear errors for broken files."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import pytest

from sim.articulated.profile import load_profile
from sim.articulated.robots import (
    GROUND_NAME,
    RobotModelError,
    build_spec,
    contact_sensor_name,
    joint_qpos_addresses,
    load_model,
)

URDF_TWO_LINKS = """<robot name="two">
  <link name="base"><inertial><mass value="0"/><inertia ixx="0" ixy="0" ixz="0" iyy="0" iyz="0" izz="0"/></inertial></link>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/>
    <limit effort="10" lower="-1" upper="1" velocity="1"/></joint>
  <link name="l1">
    <inertial><mass value="1"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.5"/></inertial>
    <visual><geometry><mesh filename="package://nowhere/missing.dae"/></geometry></visual>
    <collision><geometry><mesh filename="package://nowhere/missing.dae"/></geometry></collision>
  </link>
</robot>
"""


@pytest.mark.parametrize("name", ["a1", "franka"])
def test_models_compile_cleanly_in_profile_order(name: str, capfd) -> None:
    profile = load_profile(name)
    model = load_model(profile)  # a MuJoCo error or Python warning while compiling raises
    captured = capfd.readouterr()
    assert "warning" not in (captured.out + captured.err).lower()  # nor did MuJoCo print one
    assert model.nu == profile.joints.dim
    for i, joint in enumerate(profile.joints.names):
        assert model.actuator(i).name == f"{joint}_motor"
        assert model.actuator_trnid[i, 0] == model.joint(joint).id
        assert model.actuator_ctrlrange[i, 1] == pytest.approx(profile.joints.effort_limit_nm[i])
        assert model.dof_armature[model.jnt_dofadr[model.joint(joint).id]] == pytest.approx(
            profile.dynamics.armature_kg_m2[i]
        )
    assert model.opt.timestep == pytest.approx(1.0 / profile.physics_hz)
    assert model.geom(GROUND_NAME).type == mujoco.mjtGeom.mjGEOM_PLANE
    assert np.all(model.body_mass[1:] > 0)
    robot = [g for g in range(model.ngeom) if g != model.geom(GROUND_NAME).id and model.geom_contype[g]]
    assert not profile.self_collisions and all(model.geom_contype[g] == 2 for g in robot)  # ground contacts only
    data = mujoco.MjData(model)
    data.qpos[joint_qpos_addresses(model, profile.joints.names)] = profile.joints.default_position_rad
    mujoco.mj_forward(model, data)
    assert data.ncon == 0 or profile.floating_base, "an arm at its default pose must not touch anything"
    for _ in range(50):
        mujoco.mj_step(model, data)
    assert not any(w.number for w in data.warning), "MuJoCo warned while stepping"


def test_legged_model_has_free_base_and_foot_sensors() -> None:
    profile = load_profile("a1")
    model = load_model(profile)
    base = model.body(profile.bodies.base)
    assert model.jnt_type[model.body_jntadr[base.id]] == mujoco.mjtJoint.mjJNT_FREE
    assert model.nq == 7 + 12 and model.nv == 6 + 12
    for foot in profile.bodies.feet:
        assert model.sensor(contact_sensor_name(foot)).dim[0] == 4
    assert model.body_subtreemass[base.id] == pytest.approx(12.458, abs=0.01)  # a1.urdf: ~12.5 kg in total


def test_arm_welds_unactuated_joints() -> None:
    model = load_model(load_profile("franka"))
    assert model.njnt == 7  # the two finger joints are welded
    assert "panda_hand" in [model.body(i).name for i in range(model.nbody)]


def test_broken_description_is_repaired_or_refused(tmp_path, caplog) -> None:
    urdf = tmp_path / "two.urdf"
    urdf.write_text(URDF_TWO_LINKS)
    base = load_profile("franka")
    joints = dataclasses.replace(
        base.joints,
        names=("j1",),
        default_position_rad=(0.0,),
        position_min_rad=(-1.0,),
        position_max_rad=(1.0,),
        kp_nm_per_rad=(10.0,),
        kd_nm_s_per_rad=(1.0,),
        effort_limit_nm=(10.0,),
        velocity_limit_rad_s=(1.0,),
    )
    profile = dataclasses.replace(
        base,
        description=str(urdf),
        joints=joints,
        bodies=dataclasses.replace(base.bodies, base="base", end_effector="l1"),
        dynamics=type(base.dynamics)(),
    )
    with caplog.at_level("WARNING"):
        model = load_model(profile)  # missing .dae mesh dropped, zero mass and bad inertia fixed
    assert "missing.dae" in caplog.text
    inertia = model.body_inertia[model.body("l1").id]
    assert inertia.sum() - 2 * inertia.max() >= -1e-9  # triangle inequality restored
    assert model.body_mass[model.body("base").id] > 0

    wrong = dataclasses.replace(profile, joints=dataclasses.replace(joints, names=("elbow",)))
    with pytest.raises(RobotModelError, match=r"joints \['elbow'\] of the profile are not in the description"):
        load_model(wrong)
    no_ee = dataclasses.replace(profile, bodies=dataclasses.replace(profile.bodies, end_effector="gripper"))
    with pytest.raises(RobotModelError, match="no bodies \\['gripper'\\]"):
        build_spec(no_ee)
    garbage = tmp_path / "bad.urdf"
    garbage.write_text("<robot name='x'><link name=")
    with pytest.raises(RobotModelError, match="MuJoCo cannot parse"):
        load_model(dataclasses.replace(profile, description=str(garbage)))
