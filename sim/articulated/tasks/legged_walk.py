"""``legged-walk``: a quadruped (Unitree A1 by default; the Go2 variant: launch/tasks/legged-walk/go2.yaml) tracks
a commanded base velocity on flat ground.

Command (vx, vy in the base's heading frame, m/s; yaw rate, rad/s) drawn per episode and every ``resample_s``;
legged_gym-style rewards (weights per second, multiplied by the control period), terminations on a base
contact with the ground or a tilt beyond the profile's safety limit, pushes from the randomization spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sim.articulated import terms
from sim.articulated.env import ArticulatedCfg, ArticulatedEnv, uniform, yaw_quaternion
from sim.articulated.profile import ArticulatedProfile, load_profile
from sim.articulated.randomization import legged_randomization
from sim.articulated.robots import contact_sensor_name
from sim.obs_spec import ObsSpec, ObsTerm, with_history
from sim.randomization import RandomizationSpec


@dataclass
class CommandCfg:
    """Uniform command ranges; a ``standing_fraction`` of draws are zero (stand still).

    Narrower than legged_gym's +-1 m/s, +-1 m/s, +-1 rad/s: a first flat-ground gait, forward-leaning (backwards to
    0.5 m/s, forwards to 1 m/s). Measured with the trot term on this CPU (docs/articulated.md, "Walking on this CPU").
    """

    lin_vel_x_m_s: tuple[float, float] = (-0.5, 1.0)
    lin_vel_y_m_s: tuple[float, float] = (-0.3, 0.3)
    yaw_rate_rad_s: tuple[float, float] = (-0.5, 0.5)
    resample_s: float = 10.0
    standing_fraction: float = 0.1
    moving_threshold_m_s: float = 0.1  # below this planar speed the command counts as "stand" (air-time reward off)
    turning_threshold_rad_s: float = 0.1  # standing (the stand_still term) also needs a yaw rate below this


@dataclass
class LeggedRewardCfg:
    """Weights per second (legged_gym's A1 scales; multiplied by the control period). Positive = reward."""

    lin_vel_xy: float = 1.0  # exp(-err^2 / tracking_sigma)
    ang_vel_z: float = 0.5
    tracking_sigma: float = 0.25  # (m/s)^2
    # a second, narrow tracking kernel exp(-err^2 / fine_tracking_sigma): the wide one is nearly flat within 0.1 m/s
    # (1 - err^2 / 0.25), so the shaping terms outweighed the last 0.1 m/s and training plateaued at 0.13-0.15 m/s
    # mean error; with this term the benchmark reached < 0.1 (docs/articulated.md, "Walking on this CPU")
    lin_vel_xy_fine: float = 1.0
    fine_tracking_sigma: float = 0.02  # (m/s)^2
    lin_vel_z: float = -2.0  # per (m/s)^2
    ang_vel_xy: float = -0.05  # per (rad/s)^2
    orientation: float = -1.0  # per sin^2(tilt)
    torque: float = -2e-4  # per (N m)^2
    joint_acc: float = -2.5e-7  # per (rad/s^2)^2
    action_rate: float = -0.01
    feet_air_time: float = 1.0  # per s of air time beyond air_time_s at touchdown
    air_time_s: float = 0.5
    # per s with the diagonal feet together and the diagonals alternating (terms.trot_contact_pattern): with the
    # narrower commands, walking began after ~50 iterations instead of ~90 (one run each; docs/articulated.md)
    trot: float = 1.0
    diagonal_pairs: tuple[tuple[int, int], tuple[int, int]] = ((0, 3), (1, 2))  # indices into bodies.feet
    joint_limits: float = -10.0  # per rad beyond the limits
    stand_still: float = 0.0  # per rad of summed joint deviation from the default pose while commanded to stand
    termination: float = 0.0  # one-off reward at a failure (not scaled by the control period); legged_gym: 0
    # legged_gym's only_positive_rewards: a step's total below zero counts as zero. Without it the penalties of an
    # early, clumsy gait outweigh the tracking terms, a long episode is worth less than a short one, and falling pays.
    only_positive: bool = True


@dataclass
class LeggedInitCfg:
    joint_pos_rad: float = 0.1  # uniform offset from the default pose, per joint
    base_lin_vel_m_s: float = 0.5  # uniform, per horizontal axis
    base_ang_vel_rad_s: float = 0.5  # uniform, per axis


@dataclass
class LeggedWalkCfg(ArticulatedCfg):
    params: ArticulatedProfile = field(default_factory=lambda: load_profile("a1"))
    randomization: RandomizationSpec = field(default_factory=legged_randomization)
    episode_s: float = 20.0
    command: CommandCfg = field(default_factory=CommandCfg)
    reward: LeggedRewardCfg = field(default_factory=LeggedRewardCfg)
    init: LeggedInitCfg = field(default_factory=LeggedInitCfg)
    max_tilt_rad: float | None = None  # None: the profile's safety.max_base_tilt_rad
    # The actor observes the base's linear velocity as a state estimator gives it (leg odometry + IMU; on the robot
    # the runtime reads it from state/twist). Without it a blind policy cannot tell how fast it goes under the
    # randomized friction, masses and gains (docs/articulated.md, "Walking on this CPU").
    observe_base_velocity: bool = True
    base_velocity_noise_m_s: float = 0.1  # std of the estimate's noise (legged_gym's lin_vel noise)
    # Control steps of observation history (sim.obs_spec.with_history): the actor also sees its K previous
    # observations, newest first; the deploy runtime rebuilds them. With observe_base_velocity off this is how the
    # policy infers its speed from the IMU and joint states alone (a Go2 in low-level mode; docs/articulated.md, "Go2").
    observation_history: int = 0


class LeggedWalkEnv(ArticulatedEnv):
    """Velocity tracking on flat ground. Extra state: command (N, 3), feet air time and contacts (N, F)."""

    cfg: LeggedWalkCfg

    def __init__(self, cfg: LeggedWalkCfg, num_envs: int, device: str | torch.device = "cpu", **kwargs):
        if cfg.params.robot_class != "legged":
            raise ValueError(
                f"legged-walk needs a legged robot profile, got {cfg.params.name!r} ({cfg.params.robot_class})"
            )
        n, feet = num_envs, len(cfg.params.bodies.feet)
        pairs = cfg.reward.diagonal_pairs
        if len(pairs) != 2 or any(len(p) != 2 or not all(0 <= i < feet for i in p) for p in pairs):
            raise ValueError(
                f"reward.diagonal_pairs must be two pairs of foot indices into {list(cfg.params.bodies.feet)}, "
                f"got {pairs!r} (for the trot term; e.g. ((0, 3), (1, 2)) for FR-RL and FL-RR)"
            )
        self.command = torch.zeros(n, 3, device=device)
        self.air_time = torch.zeros(n, feet, device=device)
        self.contact = torch.zeros(n, feet, dtype=torch.bool, device=device)
        self.first_contact = torch.zeros(n, feet, dtype=torch.bool, device=device)
        self.touchdown_air_time = torch.zeros(n, feet, device=device)
        self.prev_joint_vel = torch.zeros(n, cfg.params.joints.dim, device=device)
        self.vel_error_sum = torch.zeros(n, device=device)
        super().__init__(cfg, num_envs, device, **kwargs)

    # ------------------------------------------------------------------ specs
    def policy_obs_spec(self) -> ObsSpec:
        """What a quadruped measures: IMU (gyro, gravity direction), encoders, its command and last action, with
        ``observe_base_velocity`` the state estimator's base velocity, then ``observation_history`` previous
        observations. Noise stds: legged_gym (lin vel 0.1, ang vel 0.2, gravity 0.05, joint pos 0.01, joint vel 1.5)."""
        j = self.cfg.params.joints.dim
        velocity = ObsTerm(
            "base_lin_vel_estimate", 3, 2.0, self.cfg.base_velocity_noise_m_s, "m/s", "state estimate, base frame"
        )
        base = ObsSpec(
            (velocity,) * self.cfg.observe_base_velocity
            + (
                ObsTerm("base_ang_vel", 3, 0.25, 0.2, "rad/s", "gyro, base frame"),
                ObsTerm("projected_gravity", 3, 1.0, 0.05, "", "unit gravity direction, base frame"),
                ObsTerm("velocity_command", 3, 1.0, 0.0, "m/s, m/s, rad/s", "vx, vy (heading frame), yaw rate"),
                ObsTerm("joint_pos", j, 1.0, 0.01, "rad", "joint position minus default pose"),
                ObsTerm("joint_vel", j, 0.05, 1.5, "rad/s"),
                ObsTerm("last_action", j, 1.0, 0.0, "", "previous normalized action"),
            )
        )
        return with_history(base, self.cfg.observation_history)

    def critic_obs_spec(self) -> ObsSpec:
        j, f = self.cfg.params.joints.dim, len(self.cfg.params.bodies.feet)
        return ObsSpec(
            (
                ObsTerm("base_lin_vel", 3, 2.0, 0.0, "m/s", "true, base frame"),
                ObsTerm("base_height", 1, 1.0, 0.0, "m"),
                ObsTerm("true_base_ang_vel", 3, 0.25, 0.0, "rad/s"),
                ObsTerm("true_projected_gravity", 3),
                ObsTerm("true_joint_pos", j, 1.0, 0.0, "rad"),
                ObsTerm("true_joint_vel", j, 0.05, 0.0, "rad/s"),
                ObsTerm("foot_contact", f, 1.0, 0.0, "", "1 in contact"),
                ObsTerm("feet_air_time", f, 1.0, 0.0, "s"),
            )
        )

    # ------------------------------------------------------------------ state
    @property
    def base_quat(self) -> Tensor:
        return self.engine.qpos[:, 3:7].float()

    @property
    def base_lin_vel(self) -> Tensor:
        """(N, 3) m/s, base frame."""
        return terms.quat_rotate_inverse(self.base_quat, self.engine.qvel[:, 0:3].float())

    @property
    def base_ang_vel(self) -> Tensor:
        """(N, 3) rad/s, base frame (a free joint's angular velocity is in the body frame)."""
        return self.engine.qvel[:, 3:6].float()

    def _foot_contacts(self) -> Tensor:
        return torch.stack(
            [terms.contact_found(self.engine.sensor(contact_sensor_name(f))) for f in self.cfg.params.bodies.feet], -1
        )

    # ------------------------------------------------------------------ hooks
    def _initial_state(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        n, dev, g, init = ids.numel(), self.device, self.generator, self.cfg.init
        qpos = torch.zeros(n, self.engine.nq, device=dev)
        qpos[:, 2] = self.cfg.params.initial_base_height_m
        qpos[:, 3:7] = yaw_quaternion(uniform(g, n, -math.pi, math.pi, dev)[:, 0])
        r = init.joint_pos_rad
        q = self.default_pose + uniform(g, n, [-r] * self.num_actions, [r] * self.num_actions, dev)
        qpos[:, self.qadr] = q.clamp(self.joint_low, self.joint_high)
        qvel = torch.zeros(n, self.engine.nv, device=dev)
        v, w = init.base_lin_vel_m_s, init.base_ang_vel_rad_s
        qvel[:, 0:2] = uniform(g, n, [-v, -v], [v, v], dev)
        qvel[:, 3:6] = uniform(g, n, [-w] * 3, [w] * 3, dev)
        return qpos, qvel

    def _reset_task(self, ids: Tensor) -> None:
        self._sample_commands(ids)
        self.air_time[ids] = 0.0
        self.contact[ids] = False
        self.prev_joint_vel[ids] = self.joint_vel[ids]
        self.vel_error_sum[ids] = 0.0

    def _sample_commands(self, ids: Tensor) -> None:
        c, n = self.cfg.command, ids.numel()
        low = [c.lin_vel_x_m_s[0], c.lin_vel_y_m_s[0], c.yaw_rate_rad_s[0]]
        high = [c.lin_vel_x_m_s[1], c.lin_vel_y_m_s[1], c.yaw_rate_rad_s[1]]
        cmd = uniform(self.generator, n, low, high, self.device)
        stand = torch.rand(n, generator=self.generator, device=self.device) < c.standing_fraction
        self.command[ids] = torch.where(stand[:, None], torch.zeros_like(cmd), cmd)

    def _after_physics(self) -> None:
        period = max(1, round(self.cfg.command.resample_s * self.cfg.control_hz))
        due = ((self.episode_length_buf % period) == 0).nonzero().squeeze(-1)
        if due.numel():
            self._sample_commands(due)
        contact = self._foot_contacts()
        filtered = contact | self.contact
        self.first_contact = (self.air_time > 0) & filtered
        self.air_time += self.cfg.control_dt
        self.touchdown_air_time = self.air_time.clone()
        self.air_time *= ~filtered
        self.contact = contact
        err = (self.command[:, :2] - self.base_lin_vel[:, :2]).norm(dim=-1)
        self.vel_error_sum += torch.nan_to_num(err, nan=10.0)

    def _rewards(self) -> dict[str, Tensor]:
        w, dt = self.cfg.reward, self.cfg.control_dt
        v, omega, g = self.base_lin_vel, self.base_ang_vel, terms.projected_gravity(self.base_quat)
        moving = self.command[:, :2].norm(dim=-1) > self.cfg.command.moving_threshold_m_s
        jv = self.joint_vel
        parts = {
            "lin_vel_xy": w.lin_vel_xy * terms.lin_vel_xy_exp(self.command[:, :2], v[:, :2], w.tracking_sigma),
            "lin_vel_xy_fine": w.lin_vel_xy_fine
            * terms.lin_vel_xy_exp(self.command[:, :2], v[:, :2], w.fine_tracking_sigma),
            "ang_vel_z": w.ang_vel_z * terms.ang_vel_z_exp(self.command[:, 2], omega[:, 2], w.tracking_sigma),
            "lin_vel_z": w.lin_vel_z * terms.lin_vel_z_l2(v[:, 2]),
            "ang_vel_xy": w.ang_vel_xy * terms.ang_vel_xy_l2(omega[:, :2]),
            "orientation": w.orientation * terms.gravity_xy_l2(g),
            "torque": w.torque * terms.joint_torque_l2(self.torque),
            "joint_acc": w.joint_acc * terms.joint_acc_l2(jv, self.prev_joint_vel, dt),
            "action_rate": w.action_rate * terms.action_rate_l2(self.action, self.last_action),
            "feet_air_time": w.feet_air_time
            * terms.feet_air_time_reward(self.touchdown_air_time, self.first_contact, w.air_time_s, moving),
            "trot": w.trot * terms.trot_contact_pattern(self.contact, w.diagonal_pairs, moving),
            "joint_limits": w.joint_limits
            * terms.joint_pos_limit_excess(self.joint_pos, self.joint_low, self.joint_high),
        }
        if w.stand_still:
            c = self.cfg.command
            standing = ~moving & (self.command[:, 2].abs() < c.turning_threshold_rad_s)
            parts["stand_still"] = w.stand_still * terms.joint_deviation_l1(self.joint_pos, self.default_pose, standing)
        self.prev_joint_vel = jv
        parts = {k: v * dt for k, v in parts.items()}
        if w.termination:
            parts["termination"] = w.termination * self._failed().float()
        return parts

    def _total_reward(self, parts: dict[str, Tensor]) -> Tensor:
        total = super()._total_reward(parts)
        return total.clamp_min(0.0) if self.cfg.reward.only_positive else total

    def _failed(self) -> Tensor:
        limit = self.cfg.max_tilt_rad or self.cfg.params.safety.max_base_tilt_rad
        base = self.engine.sensor(contact_sensor_name(self.cfg.params.bodies.base))
        return terms.contact_found(base) | terms.tilt_exceeds(terms.projected_gravity(self.base_quat), limit)

    def _episode_log(self, ids: Tensor, terminated: Tensor) -> dict[str, Tensor]:
        steps = self.episode_length_buf[ids].clamp_min(1).float()
        return {"/metrics/velocity_error_m_s": (self.vel_error_sum[ids] / steps).mean()}

    def _sensor_values(self) -> dict[str, Tensor]:
        velocity = {"base_lin_vel_estimate": self.base_lin_vel} if self.cfg.observe_base_velocity else {}
        return {
            **velocity,
            # what the IMU reports: the truth plus the env's drawn biases (nominal 0; imu_* in the randomization)
            "base_ang_vel": self.base_ang_vel + self.params.get("imu_gyro_bias", 0.0),
            "projected_gravity": terms.projected_gravity(self.base_quat) + self.params.get("imu_gravity_bias", 0.0),
            "velocity_command": self.command,
            "joint_pos": self.joint_pos - self.default_pose,
            "joint_vel": self.joint_vel,
        }

    def _critic_values(self) -> dict[str, Tensor]:
        return {
            "base_lin_vel": self.base_lin_vel,
            "base_height": self.engine.qpos[:, 2:3].float(),
            "true_base_ang_vel": self.base_ang_vel,
            "true_projected_gravity": terms.projected_gravity(self.base_quat),
            "true_joint_pos": self.joint_pos - self.default_pose,
            "true_joint_vel": self.joint_vel,
            "foot_contact": self.contact.float(),
            "feet_air_time": self.air_time,
        }
