"""Observation, reward and termination terms of the articulated tasks: pure functions of tensors.

Named ``<quantity>_<kernel>``; batched over envs on the first axis: vectors (N, 3), quaternions (N, 4) w-first
(MuJoCo's convention), joint vectors (N, J). Rewards return (N,) and are weighted by the task config.
Non-finite inputs propagate to the output (the env terminates such envs through :func:`state_nonfinite`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


# ----------------------------------------------------------------------------------------------- rotations
def quat_conjugate(q: Tensor) -> Tensor:
    """(N, 4) w-first -> (N, 4); the inverse of a unit quaternion."""
    return torch.cat([q[:, :1], -q[:, 1:]], dim=-1)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of (N, 4) w-first quaternions (rotation b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate (N, 3) vectors by (N, 4) unit quaternions (body -> world for a body orientation)."""
    w, xyz = q[:, :1], q[:, 1:]
    t = 2.0 * torch.linalg.cross(xyz, v, dim=-1)
    return v + w * t + torch.linalg.cross(xyz, t, dim=-1)


def quat_rotate_inverse(q: Tensor, v: Tensor) -> Tensor:
    """Rotate (N, 3) vectors by the inverse of (N, 4) unit quaternions (world -> body)."""
    return quat_rotate(quat_conjugate(q), v)


def quat_from_axis_angle(axis: Tensor, angle: Tensor) -> Tensor:
    """(N, 3) unit axes, (N,) angles in rad -> (N, 4) w-first."""
    half = 0.5 * angle[:, None]
    return torch.cat([torch.cos(half), axis * torch.sin(half)], dim=-1)


def rotation_error_vector(q: Tensor, target: Tensor) -> Tensor:
    """Rotation vector (axis * angle, rad, world frame) that turns orientation ``q`` into ``target``. (N, 3).

    Uses the shortest rotation (angle in [0, pi]) whatever the signs of the quaternions."""
    d = quat_multiply(target, quat_conjugate(q))
    d = torch.where(d[:, :1] < 0, -d, d)
    sin_half = d[:, 1:].norm(dim=-1)
    angle = 2.0 * torch.atan2(sin_half, d[:, 0])
    scale = torch.where(sin_half > 1e-9, angle / sin_half.clamp_min(1e-9), torch.full_like(angle, 2.0))
    return d[:, 1:] * scale[:, None]


def orientation_error_angle(q: Tensor, target: Tensor) -> Tensor:
    """Angle (rad, [0, pi]) of the rotation between (N, 4) orientations. (N,)."""
    dot = (q * target).sum(-1).abs().clamp(max=1.0)
    return 2.0 * torch.acos(dot)


def projected_gravity(q: Tensor) -> Tensor:
    """The unit gravity direction in the body frame of (N, 4) base orientations: (0, 0, -1) when level. (N, 3)."""
    down = torch.zeros(q.shape[0], 3, dtype=q.dtype, device=q.device)
    down[:, 2] = -1.0
    return quat_rotate_inverse(q, down)


# ----------------------------------------------------------------------------------------------- legged rewards
def lin_vel_xy_exp(command_xy: Tensor, vel_xy: Tensor, sigma: float) -> Tensor:
    """exp(-|command - velocity|^2 / sigma): tracking of the commanded planar velocity. (N, 2) m/s -> (N,)."""
    return torch.exp(-(command_xy - vel_xy).square().sum(-1) / sigma)


def ang_vel_z_exp(command_yaw: Tensor, yaw_rate: Tensor, sigma: float) -> Tensor:
    """exp(-(command - yaw rate)^2 / sigma). (N,) rad/s -> (N,)."""
    return torch.exp(-(command_yaw - yaw_rate).square() / sigma)


def lin_vel_z_l2(vel_z: Tensor) -> Tensor:
    """Squared vertical base velocity. (N,) m/s -> (N,)."""
    return vel_z.square()


def ang_vel_xy_l2(ang_vel_xy: Tensor) -> Tensor:
    """Squared roll and pitch rates. (N, 2) rad/s -> (N,)."""
    return ang_vel_xy.square().sum(-1)


def gravity_xy_l2(gravity_body: Tensor) -> Tensor:
    """Squared horizontal components of the projected gravity: 0 level, sin^2(tilt) tilted. (N, 3) -> (N,)."""
    return gravity_body[:, :2].square().sum(-1)


def base_height_l2(height: Tensor, target: float) -> Tensor:
    """Squared deviation of the base height from ``target``. (N,) m -> (N,) m^2."""
    return (height - target).square()


def joint_torque_l2(torque: Tensor) -> Tensor:
    """Squared joint torques. (N, J) N m -> (N,)."""
    return torque.square().sum(-1)


def joint_acc_l2(vel: Tensor, previous_vel: Tensor, dt: float) -> Tensor:
    """Squared joint accelerations by finite difference over ``dt`` s. (N, J) rad/s -> (N,) (rad/s^2)^2."""
    return ((vel - previous_vel) / dt).square().sum(-1)


def joint_vel_l2(vel: Tensor) -> Tensor:
    """Squared joint velocities. (N, J) rad/s -> (N,)."""
    return vel.square().sum(-1)


def action_rate_l2(action: Tensor, previous: Tensor) -> Tensor:
    """Squared change of the normalized action between control steps. (N, A) -> (N,)."""
    return (action - previous).square().sum(-1)


def joint_pos_limit_excess(pos: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Summed distance (rad) by which joint positions leave [low, high]. pos (N, J); low, high (J,) -> (N,)."""
    return ((low - pos).clamp_min(0.0) + (pos - high).clamp_min(0.0)).sum(-1)


def joint_vel_limit_excess(vel: Tensor, limit: Tensor, fraction: float = 0.9) -> Tensor:
    """Summed speed (rad/s) above ``fraction`` of the velocity limits. vel (N, J); limit (J,) rad/s -> (N,)."""
    return (vel.abs() - fraction * limit).clamp_min(0.0).sum(-1)


def feet_air_time_reward(air_time: Tensor, first_contact: Tensor, threshold_s: float, moving: Tensor) -> Tensor:
    """legged_gym's feet air time: at touchdown, reward (air time - threshold); only while commanded to move.

    air_time: (N, F) s in the air before this touchdown; first_contact: (N, F) bool (touchdown this step);
    moving: (N,) bool. -> (N,) s."""
    per_foot = (air_time - threshold_s) * first_contact.to(air_time.dtype)
    return per_foot.sum(-1) * moving.to(air_time.dtype)


def joint_deviation_l1(joint_pos: Tensor, default_pos: Tensor, standing: Tensor) -> Tensor:
    """Sum of |joint position - default pose| while commanded to stand still, else 0 (legged_gym's stand_still):
    without it a walking policy may keep stepping in place at a zero command, and a robot that never comes to rest
    cannot be disarmed at the end of a plan. joint_pos: (N, J) rad; default_pos: (J,) rad; standing: (N,) bool
    -> (N,) rad."""
    return (joint_pos - default_pos).abs().sum(-1) * standing.to(joint_pos.dtype)


def trot_contact_pattern(contact: Tensor, pairs: tuple[tuple[int, int], tuple[int, int]], moving: Tensor) -> Tensor:
    """1 while the feet keep a trot's contact pattern, else 0; only while commanded to move.

    A trot moves the diagonal feet together and the two diagonals in turn: each pair's feet agree (both down or both
    up) and the pairs disagree. Scores the fraction of pairs in agreement (0, 0.5 or 1) times whether the pairs
    alternate, so standing on four feet scores 0. No clock: the gait's frequency stays the policy's choice.
    contact: (N, F) bool; pairs: two (i, j) foot index pairs; moving: (N,) bool. -> (N,)"""
    (a, b), (c, d) = pairs
    agree = 0.5 * ((contact[:, a] == contact[:, b]).float() + (contact[:, c] == contact[:, d]).float())
    alternate = (contact[:, a] != contact[:, c]).float()
    return agree * alternate * moving.float()


# ----------------------------------------------------------------------------------------------- arm rewards
def position_error_l2(pos: Tensor, target: Tensor) -> Tensor:
    """Distance (m) to the target. (N, 3) m -> (N,) m (the norm, not its square)."""
    return (pos - target).norm(dim=-1)


def position_error_tanh(pos: Tensor, target: Tensor, std: float) -> Tensor:
    """1 - tanh(distance / std): 1 at the target, -> 0 far away. (N, 3) m -> (N,)."""
    return 1.0 - torch.tanh((pos - target).norm(dim=-1) / std)


def orientation_error_tanh(q: Tensor, target: Tensor, std: float) -> Tensor:
    """1 - tanh(angle / std). (N, 4) -> (N,)."""
    return 1.0 - torch.tanh(orientation_error_angle(q, target) / std)


# ----------------------------------------------------------------------------------------------- terminations
def tilt_exceeds(gravity_body: Tensor, max_tilt_rad: float) -> Tensor:
    """Base tilt (angle between body z and world z) above ``max_tilt_rad``; NaN counts as exceeded. (N, 3) -> (N,)."""
    cos_tilt = -gravity_body[:, 2]
    return ~(cos_tilt >= math.cos(max_tilt_rad))


def contact_found(sensor: Tensor) -> Tensor:
    """Contact-sensor rows [found, fx, fy, fz] -> (N,) bool: at least one contact."""
    return sensor[:, 0] > 0.5


def state_nonfinite(*tensors: Tensor) -> Tensor:
    """(N,) bool: any non-finite entry in any of the (N, ...) tensors."""
    bad = torch.zeros(tensors[0].shape[0], dtype=torch.bool, device=tensors[0].device)
    for t in tensors:
        bad |= ~torch.isfinite(t.reshape(t.shape[0], -1)).all(-1)
    return bad
