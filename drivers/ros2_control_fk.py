"""The end-effector pose from joint positions (forward kinematics), for arms whose driver publishes joints only.

An arm policy observes the end-effector pose in the base frame (Franka's O_T_EE; ``state/pose`` of the topic
table); a generic ros2_control robot (UR, a Franka through a plain position controller) publishes
``/joint_states`` only. The ros2_control bridge computes the pose from the robot profile's description with
MuJoCo's kinematics (``mj_kinematics``: the same model, bodies and frames as the simulator the policy was trained
in, so the pose is the training's ``ee_pos`` / ``ee_quat`` for the same joint positions; tested). Needs the
``mujoco`` wheel and the description on the robot computer; no torch.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.articulated.profile import ArticulatedProfile
from sim.articulated.robots import joint_qpos_addresses, load_model


def _quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


class EndEffectorFK:
    """``pose(q)``: (3,) m, (4,) w, x, y, z of ``profile.bodies.end_effector`` in ``profile.bodies.base``'s frame
    for (J,) joint positions, rad, in the profile's joint order."""

    def __init__(self, profile: ArticulatedProfile):
        if profile.floating_base:
            raise ValueError(f"{profile.name}: forward kinematics of the end effector is for fixed-base arms")
        self.profile = profile
        self.model = load_model(profile)
        self.data = mujoco.MjData(self.model)
        self.qadr = joint_qpos_addresses(self.model, profile.joints.names)
        self.ee = self.model.body(profile.bodies.end_effector).id
        self.base = self.model.body(profile.bodies.base).id

    def pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(q, dtype=float)
        if q.shape != self.qadr.shape:
            raise ValueError(f"expected {self.qadr.size} joint positions, got shape {q.shape}")
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        p_base, q_base = self.data.xpos[self.base], self.data.xquat[self.base]
        inv = _quat_conj(q_base)
        rel = np.empty(4)
        mujoco.mju_mulQuat(rel, inv, self.data.xquat[self.ee])
        offset = np.empty(3)
        mujoco.mju_rotVecQuat(offset, self.data.xpos[self.ee] - p_base, inv)
        return offset, rel / np.linalg.norm(rel)
