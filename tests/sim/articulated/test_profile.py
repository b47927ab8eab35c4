"""Robot profiles: the shipped profiles load, bad values are refused with the field named."""

from __future__ import annotations

import copy

import pytest
import yaml

from sim.articulated.profile import ROBOTS_DIR, ArticulatedProfile, ArticulatedProfileError, load_profile

ARTICULATED = ["a1", "franka"]


def _raw(name: str) -> dict:
    return yaml.safe_load((ROBOTS_DIR / f"{name}.yaml").read_text())["articulated"]


@pytest.mark.parametrize("name", ARTICULATED)
def test_shipped_profiles_load(name: str) -> None:
    p = load_profile(name)
    assert p.name == name
    assert p.joints.dim == len(p.joints.default_position_rad) == len(p.joints.kp_nm_per_rad)
    assert p.description_path().is_file()
    assert p.substeps * p.control_hz == pytest.approx(p.physics_hz)
    again = ArticulatedProfile.from_dict(p.to_dict())
    assert again == p and again.digest() == p.digest()


def test_a1_numbers_from_facts() -> None:
    p = load_profile("a1")
    assert p.control_hz == 50 and p.physics_hz == 200 and p.action_scale_rad == 0.25
    assert set(p.joints.kp_nm_per_rad) == {20.0} and set(p.joints.kd_nm_s_per_rad) == {0.5}
    assert p.actuator.model == "dc_motor" and set(p.actuator.stall_torque_nm) == {33.5}
    assert set(p.actuator.max_velocity_rad_s) == {21.0}


def test_safety_section_builds_a_deploy_profile() -> None:
    from deploy.safety import RobotClass, profile_from_dict

    for name, cls in (("a1", RobotClass.LEGGED), ("franka", RobotClass.ARM)):
        p = load_profile(name)
        safety = profile_from_dict(p.safety_section())
        assert safety.robot_class is cls
        assert safety.joints.names == p.joints.names
        assert safety.common.control_period_s == pytest.approx(0.02)
    assert profile_from_dict(load_profile("a1").safety_section()).legged.max_base_tilt_rad == pytest.approx(1.309)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(robot_class="humanoid"), "robot_class"),
        (lambda d: d.update(physics_hz=190), "physics_hz"),
        (lambda d: d["joints"].update(kp_nm_per_rad=[20.0] * 3), "joints.kp_nm_per_rad"),
        (lambda d: d["joints"].update(kd_nm_s_per_rad=-1.0), "joints.kd_nm_s_per_rad"),
        (lambda d: d["joints"].update(default_position_rad=[5.0] * 12), "joints.default_position_rad"),
        (lambda d: d["actuator"].update(model="hydraulic"), "actuator.model"),
        (lambda d: d["actuator"].pop("stall_torque_nm"), "actuator.stall_torque_nm"),
        (lambda d: d["bodies"].update(feet=[]), "bodies.feet"),
        (lambda d: d["safety"].update(max_base_tilt_rad=75.0), "safety.max_base_tilt_rad"),
        (lambda d: d.update(action_scale_rad="big"), "action_scale_rad"),
        (lambda d: d.pop("joints"), "joints"),
    ],
)
def test_bad_values_name_the_field(edit, field: str) -> None:
    raw = copy.deepcopy(_raw("a1"))
    edit(raw)
    with pytest.raises(ArticulatedProfileError, match=f"'{field}"):
        ArticulatedProfile.from_dict(raw)


def test_unknown_keys_and_missing_files(tmp_path) -> None:
    raw = _raw("a1")
    with pytest.raises(ArticulatedProfileError, match="unknown field 'stiffness'"):
        ArticulatedProfile.from_dict({**raw, "stiffness": 20})
    with pytest.raises(ArticulatedProfileError, match="'gain'"):
        ArticulatedProfile.from_dict({**raw, "joints": {**raw["joints"], "gain": 1}})
    with pytest.raises(ArticulatedProfileError, match="not found; profiles in launch/robots"):
        load_profile("no_such_robot")
    p = ArticulatedProfile.from_dict({**raw, "description": "missing.urdf"}, source_dir=str(tmp_path))
    with pytest.raises(ArticulatedProfileError, match="does not exist"):
        p.description_path()


@pytest.mark.parametrize("name", ARTICULATED)
def test_safety_layer_from_profile_clamps_and_falls_back(name: str) -> None:
    """The profile-derived safety layer keeps targets inside the joint limits; a tipped legged robot gets damping
    (kp 0, kd 8), an arm holds its position."""
    import numpy as np

    from deploy.safety import CommandMode, SafetyLayer, SafetyState, StateSample, profile_from_dict

    p = load_profile(name)
    layer = SafetyLayer(profile_from_dict(p.safety_section()))
    q0 = np.asarray(p.joints.default_position_rad)
    level = np.array([1.0, 0.0, 0.0, 0.0])
    tipped = np.array([np.cos(0.75), np.sin(0.75), 0.0, 0.0])  # 86 deg roll

    def sample(t: float, quat: np.ndarray = level) -> StateSample:
        zeros = np.zeros(p.joints.dim)
        return StateSample(t, quat_wxyz=quat, joint_pos_rad=q0, joint_vel_rad_s=zeros, joint_torque_nm=zeros)

    t, dt = 0.0, p.control_dt
    layer.heartbeat(t)
    layer.on_state(sample(t), t)
    assert layer.arm(t)
    far = q0 + 10.0  # far beyond every upper limit
    for _ in range(200):
        t = round(t + dt, 9)
        layer.heartbeat(t)
        layer.on_state(sample(t), t)
        cmd = layer.filter(far, t, 0.001)
        assert np.all(cmd.values <= np.asarray(p.joints.position_max_rad) + 1e-9)
    assert layer.state is SafetyState.ACTIVE and cmd.mode is CommandMode.POLICY
    t = round(t + dt, 9)
    layer.heartbeat(t)
    layer.on_state(sample(t, tipped if p.robot_class == "legged" else level), t)
    if p.robot_class == "legged":
        cmd = layer.filter(far, t, 0.001)
        assert cmd.mode is CommandMode.FALLBACK and np.all(cmd.kp_nm_per_rad == 0) and np.all(cmd.kd_nm_s_per_rad == 8)
    else:
        cmd = layer.filter(np.full(p.joints.dim, np.nan), t, 0.001)  # a NaN action -> hold position
        assert cmd.mode is CommandMode.FALLBACK and np.all(np.isfinite(cmd.values))


def test_profile_loads_without_torch_numpy_or_mujoco() -> None:
    """The robot computer reads the same profile: the module must import without the training stack."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'numpy', 'mujoco'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from sim.articulated.profile import load_profile\n"
        "print(load_profile('a1').digest())\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == load_profile("a1").digest()
