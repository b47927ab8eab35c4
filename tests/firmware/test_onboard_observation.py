"""The on-board observation builder (firmware/crazyflie/src/sim2real_cf.c) equals deploy/observation.py's.

An observation mismatch is the first sim-to-real bug to rule out: the same states go through the C step (built for
the host) and through ObservationBuilder + onnxruntime + the runtime's last_action, step by step, history and
integral included. With the Crazyflie's quarter turn, the Python side gets the state turned into the policy's frames
by hand (numpy), and the motor map is checked against the two mixers' torques.
"""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest
import torch

from deploy.observation import STATEFUL_TERMS, TERMS, Context, ObservationBuilder, quat_multiply
from drivers.robot import RobotState
from firmware.layout import C_TERMS, LayoutError, layout_source, write_layout
from policies.onnx_policy import load_policy
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec, ObsTerm
from sim.quadrotor.dynamics import mixer_torques
from tests.firmware.conftest import build_host_step

OBS_ATOL = 1e-5  # float32 C against float64 numpy, over 30 steps of integral and fed-back last action
THRUST_MAX = 0.12  # N per motor, what host_step passes (Crazyflie 2.1+ propellers)


def zquat(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def rz(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def flight(steps: int = 30, seed: int = 5) -> np.ndarray:
    """(steps, 19) float32: position, velocity, quaternion (w, x, y, z), gyro, reference position, velocity. Tilted,
    yawed 0.7 rad and 3 m off in x, so that the integral reaches its clamp."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(steps):
        tilt = np.array([np.cos(0.05), np.sin(0.05) * np.cos(0.3 * k), np.sin(0.05) * np.sin(0.3 * k), 0.0])
        q = quat_multiply(zquat(0.7 + 0.01 * k), tilt)
        pos = np.array([3.0, -0.4, 0.2]) + 0.01 * k + rng.normal(0, 0.01, 3)
        ref = np.array([0.0, 0.0, 0.5 * min(k * 0.01, 0.3)])
        rows.append(np.concatenate([pos, rng.normal(0, 0.3, 3), q, rng.normal(0, 1.0, 3), ref, [0, 0, 0.5]]))
    return np.asarray(rows, dtype=np.float32)


def run_host(exe, mode: str, rows: np.ndarray, tmp_path, *extra: str) -> np.ndarray:
    rows.astype(np.float32).tofile(tmp_path / "in.bin")
    subprocess.run([str(exe), mode, str(tmp_path / "in.bin"), str(tmp_path / "out.bin"), str(len(rows)), *extra],
                   check=True)  # fmt: skip
    return np.fromfile(tmp_path / "out.bin", dtype=np.float32).reshape(len(rows), -1)


def python_flight(policy, rows: np.ndarray, quarter_turns: int, align: bool) -> tuple[np.ndarray, np.ndarray]:
    """deploy's builder and runtime on the states turned into the policy's frames: (obs (K, D), commands (K, 4))."""
    builder = ObservationBuilder(policy.obs_spec, 1.0 / policy.control_hz)
    psi_b = quarter_turns * np.pi / 2
    yaw0 = 0.0
    if align:
        r0 = np.asarray(rotation(rows[0, 6:10].astype(np.float64)))
        yaw0 = np.arctan2(r0[1, 0], r0[0, 0])
    psi_w = yaw0 + psi_b
    world, body = rz(-psi_w), rz(-psi_b)
    last = np.zeros(4, dtype=np.float32)
    obs_all, cmd_all = [], []
    for row in rows.astype(np.float64):
        q = quat_multiply(quat_multiply(zquat(-psi_w), row[6:10]), zquat(psi_b))
        state = RobotState(0.0, world @ row[0:3], q, world @ row[3:6], body @ row[10:13])
        obs = builder.build(state, Context(world @ row[13:16], world @ row[16:19], last))
        cmd = policy(obs)
        last = np.clip(policy.action_spec.to_normalized(cmd), -1.0, 1.0).astype(np.float32)
        obs_all.append(obs)
        cmd_all.append(cmd)
    return np.asarray(obs_all), np.asarray(cmd_all)


def rotation(q: np.ndarray) -> np.ndarray:
    from deploy.observation import rotation_matrix

    return rotation_matrix(q).reshape(3, 3)


@pytest.mark.parametrize(("quarter_turns", "align"), [(0, False), (-1, True), (1, False)])
def test_c_observations_equal_the_deploy_builder(host_cc, exported, tmp_path, quarter_turns, align):
    policy = load_policy(exported / "policy.onnx")
    exe = build_host_step(host_cc, exported, tmp_path, quarter_turns)
    rows = flight()
    out = run_host(exe, "steps", rows, tmp_path, "1" if align else "0")
    d = policy.obs_spec.dim
    c_obs, c_cmd = out[:, :d], out[:, d : d + 4]
    py_obs, py_cmd = python_flight(policy, rows, quarter_turns, align)
    err = np.abs(c_obs - py_obs)
    worst = np.unravel_index(err.argmax(), err.shape)
    assert err.max() <= OBS_ATOL, f"step {worst[0]}, column {worst[1]}: C {c_obs[worst]} vs deploy {py_obs[worst]}"
    scale = np.asarray(policy.action_spec.scale)
    assert np.abs(c_cmd - py_cmd).max() / scale.min() <= 1e-5
    # the flight exercised what it should: the integral clamped, the history moving, the frames turned
    integral = policy.obs_spec.slice("position_error_integral").start
    assert np.abs(c_obs[-1, integral : integral + 3]).max() == pytest.approx(0.5)
    assert not np.allclose(c_obs[5, 25:50], c_obs[5, :25]) and np.allclose(c_obs[0, 25:50], c_obs[0, :25])
    if align:  # the heading at engage is the policy's yaw 0: the first rotation matrix is the tilt only
        np.testing.assert_allclose(c_obs[0, 3:12].reshape(3, 3)[2, 2], np.cos(0.05) ** 2 - np.sin(0.05) ** 2,
                                   atol=1e-6)  # fmt: skip
        assert abs(c_obs[0, 3:12].reshape(3, 3)[1, 0]) < 0.1


def test_motor_map_makes_the_crazyflie_produce_the_torques_the_policy_expects(host_cc, exported, tmp_path):
    """Simulator: M1 front-right clockwise, yaw torque km (f1 - f2 + f3 - f4) (sim/quadrotor/dynamics.py).
    Crazyflie: M1 front-right counter-clockwise; its force-torque mixer (power_distribution_quadrotor.c) gives
    roll a(-F1 - F2 + F3 + F4), pitch a(-F1 + F2 + F3 - F4), yaw km(-F1 + F2 - F3 + F4)."""
    policy = load_policy(exported / "policy.onnx")
    kf = policy.profile["kf"]
    rng = np.random.default_rng(1)
    rpm = rng.uniform(0.0, 21702.0, (64, 4)).astype(np.float32)
    rpm[0] = [25000.0, -5.0, float("nan"), 0.0]  # above THRUST_MAX, negative, NaN, zero
    arm, km = 0.0397, 0.0251

    def crazyflie_torque(f):
        return np.stack(
            [arm / np.sqrt(2) * (-f[:, 0] - f[:, 1] + f[:, 2] + f[:, 3]),
             arm / np.sqrt(2) * (-f[:, 0] + f[:, 1] + f[:, 2] - f[:, 3]),
             km * (-f[:, 0] + f[:, 1] - f[:, 2] + f[:, 3])], axis=1)  # fmt: skip

    for quarter_turns in (-1, 0):
        exe = build_host_step(host_cc, exported, tmp_path, quarter_turns)
        forces = run_host(exe, "motors", rpm, tmp_path)
        assert forces[0].tolist() == [1.0, 0.0, 0.0, 0.0] if quarter_turns == 0 else forces[0, 1] == 1.0
        thrust = np.minimum(kf * rpm[1:].astype(np.float64) ** 2, THRUST_MAX)  # N, policy order
        perm = [(k - quarter_turns) % 4 for k in range(4)]
        np.testing.assert_allclose(forces[1:, perm] * THRUST_MAX, thrust, rtol=1e-6)
        f_sim = torch.from_numpy(thrust)
        tau_policy = torch.stack(mixer_torques(*f_sim.T, torch.tensor(arm), torch.tensor(km)), 1).numpy()
        tau_crazyflie = crazyflie_torque(forces[1:].astype(np.float64) * THRUST_MAX)
        turned = tau_policy @ rz(quarter_turns * np.pi / 2).T  # the policy's body torque in the Crazyflie's body
        if quarter_turns == -1:
            np.testing.assert_allclose(tau_crazyflie, turned, atol=1e-9)
        else:  # no turn: roll and pitch agree, yaw has the wrong sign (the spin directions differ)
            np.testing.assert_allclose(tau_crazyflie[:, :2], turned[:, :2], atol=1e-9)
            np.testing.assert_allclose(tau_crazyflie[:, 2], -turned[:, 2], atol=1e-9)


def test_layout_covers_every_term_of_the_deploy_builder():
    assert set(C_TERMS) == set(TERMS) | set(STATEFUL_TERMS)


def test_layout_refuses_policies_the_controller_cannot_fly(exported, tmp_path):
    policy = load_policy(exported / "policy.onnx")
    ctbr = ActionSpec("ctbr", ("t", "p", "q", "r"), ("N", "rad/s", "rad/s", "rad/s"), (0.3,) * 4, (0.1,) * 4,
                      (0.0,) * 4, (1.0,) * 4)  # fmt: skip
    with pytest.raises(LayoutError, match="action interface 'rpm'"):
        layout_source(dataclasses.replace(policy, action_spec=ctbr))
    legged = ObsSpec((ObsTerm("joint_pos", 12), ObsTerm("last_action", 4)))
    with pytest.raises(LayoutError, match=r"cannot build the observation terms \['joint_pos'\]"):
        layout_source(dataclasses.replace(policy, obs_spec=legged))
    with pytest.raises(LayoutError, match=r"30\.0 Hz does not divide"):
        layout_source(dataclasses.replace(policy, control_hz=30.0))
    header = tmp_path / "policy.h"
    text = (exported / "policy.h").read_text()
    assert '\\"angular_velocity\\"' in text  # inside the C string SIM2REAL_POLICY_OBS_SPEC
    header.write_text(text.replace('\\"angular_velocity\\"', '\\"angular_rate\\"'))
    with pytest.raises(LayoutError, match="different exports"):
        write_layout(exported / "policy.onnx", tmp_path / "out", header)
    text = layout_source(policy)
    assert "{SIM2REAL_TERM_ANGULAR_VELOCITY, 3, 0.10000000149011612f}" in text
    assert "#define SIM2REAL_LAYOUT_HISTORY_STEPS 3" in text and "#define SIM2REAL_LAYOUT_BASE_DIM 25" in text


def test_policy_h_rebuilt_from_the_onnx_file_is_the_exported_one(exported, tmp_path):
    """`python -m firmware.layout` on an ONNX file without policy.h beside it writes the same header."""
    from firmware.layout import header_from_onnx

    policy = load_policy(exported / "policy.onnx")
    assert header_from_onnx(policy) == (exported / "policy.h").read_text()
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "policy.onnx").write_bytes((exported / "policy.onnx").read_bytes())
    paths = write_layout(alone / "policy.onnx", tmp_path / "out")
    assert paths["header"].read_text() == (exported / "policy.h").read_text()
