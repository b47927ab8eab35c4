"""``arm-reach``: an arm (Franka Panda by default) brings its end effector to random poses with joint targets.

Targets: position uniform in a box in front of the robot (base frame = world, metres), orientation = the
default "pointing down" orientation turned about world z by a uniform yaw and tilted about a random horizontal
axis. Success: position error < 2 cm and orientation error < 0.1 rad at some step of the episode.

Joint speeds and torques stay inside the deploy safety envelope (the robot profile's ``velocity_limit_rad_s`` and
``effort_limit_nm``, the numbers ``ArticulatedProfile.safety_section`` hands the safety layer): joint targets are
slewed as the safety layer slews them (``JointLimits.target_max_rate_rad_s``; the deploy profile sets it to
:meth:`ArmReachEnv.target_rate`, as benchmarks/arm_reach_ros2_control.py does), and an episode whose joint speed or
torque exceeds its limit at a control step ends as a failure with a penalty, as the deployed run would end in
FALLBACK (the layer checks each state it receives; the SIL arm publishes one per control step). Measured with
random target jumps held 0.5 s (256 envs, randomized): slewed at 0.6 of the velocity limits alone, 25 % of the
jumps overshot a wrist joint's speed limit (PD overshoot at low Kd draws); with the wrist's slew also bounded by
0.75 x torque limit / Kd, 8 %; the policy learns to avoid the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from sim.articulated import terms
from sim.articulated.env import ArticulatedCfg, ArticulatedEnv, uniform, yaw_quaternion
from sim.articulated.profile import ArticulatedProfile, load_profile
from sim.articulated.randomization import arm_randomization
from sim.obs_spec import ObsSpec, ObsTerm
from sim.randomization import RandomizationSpec


def reach_randomization() -> RandomizationSpec:
    """``arm_randomization`` with motor strength x U(0.9, 1.0) instead of U(0.9, 1.1): a torque-controlled arm (the
    Franka: joint torque sensors, its controller's own torque limits) never applies more than its rated torque. With
    strength above 1 the simulated wrist read 12.4 N m against its 12 N m limit (SIL robot seed 3) and tripped the
    deploy safety layer's torque check, which a real Franka would not."""
    spec = arm_randomization()
    capped = spec.replace(motor_strength=replace(spec.get("motor_strength"), high=1.0))
    return RandomizationSpec(capped.terms, name="arm-reach")


@dataclass
class TargetCfg:
    """End-effector targets (world frame; the arm's base sits at the origin)."""

    x_m: tuple[float, float] = (0.3, 0.55)
    y_m: tuple[float, float] = (-0.2, 0.2)
    z_m: tuple[float, float] = (0.3, 0.6)
    yaw_rad: tuple[float, float] = (-0.5, 0.5)  # about world z, from the default orientation
    tilt_rad: float = 0.2  # max tilt about a random horizontal axis
    # Reachable with joint targets within 1.12 rad of the Panda's default pose (damped least-squares IK at the
    # box corners x yaw x tilt extremes); a box reaching x 0.65 m, z 0.2 m needs 1.5 rad, beyond the action range.
    resample_s: float = 4.0  # a new target this often within an episode


@dataclass
class ArmRewardCfg:
    """Weights per control step. Positive = reward."""

    position: float = -1.0  # per m of distance
    position_coarse: float = 1.0  # 1 - tanh(d / 0.1 m)
    position_fine: float = 1.0  # 1 - tanh(d / 0.02 m)
    orientation: float = -1.0  # per rad
    orientation_coarse: float = 0.5  # 1 - tanh(angle / 0.3 rad)
    orientation_fine: float = 1.0  # 1 - tanh(angle / 0.1 rad)
    action_rate: float = -0.05
    joint_vel: float = -0.005  # per (rad/s)^2
    joint_limits: float = -1.0  # per rad beyond the limits
    joint_vel_limits: float = -5.0  # per rad/s above soft_fraction of the velocity limits (the layer trips at 100 %)
    joint_vel_violation: float = -20.0  # once, at the step a joint's speed or torque exceeds its limit (it ends)
    joint_torque_limits: float = -1.0  # per N m above soft_fraction of the torque limits


@dataclass
class JointSpeedCfg:
    """The deploy safety layer's joint limits, as fractions of the profile's velocity (rad/s) and torque (N m)
    limits."""

    target_rate_fraction: float = 0.6  # target slew <= this x the velocity limit (rad/s) ...
    torque_rate_fraction: float = 0.75  # ... and <= this x torque limit / Kd: the PD's torque to reach that speed
    soft_fraction: float = 0.8  # the joint_vel_limits and joint_torque_limits penalties start here
    terminate_fraction: float = 1.0  # a speed or torque above this x limit ends the episode (layer: FALLBACK at 1.0)


@dataclass
class SuccessCfg:
    position_m: float = 0.02
    orientation_rad: float = 0.1


@dataclass
class ArmReachCfg(ArticulatedCfg):
    params: ArticulatedProfile = field(default_factory=lambda: load_profile("franka"))
    randomization: RandomizationSpec = field(default_factory=reach_randomization)
    episode_s: float = 4.0
    target: TargetCfg = field(default_factory=TargetCfg)
    reward: ArmRewardCfg = field(default_factory=ArmRewardCfg)
    success: SuccessCfg = field(default_factory=SuccessCfg)
    joint_speed: JointSpeedCfg = field(default_factory=JointSpeedCfg)
    init_joint_pos_rad: float = 0.2  # uniform offset from the default pose at reset, per joint
    target_orientation: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.0)  # w-first: gripper pointing down


class ArmReachEnv(ArticulatedEnv):
    """End-effector pose reaching. Extra state: target position (N, 3) m and orientation (N, 4)."""

    cfg: ArmReachCfg

    def __init__(self, cfg: ArmReachCfg, num_envs: int, device: str | torch.device = "cpu", **kwargs):
        if cfg.params.robot_class != "arm":
            raise ValueError(f"arm-reach needs an arm profile, got {cfg.params.name!r} ({cfg.params.robot_class})")
        n = num_envs
        self.target_pos = torch.zeros(n, 3, device=device)
        self.target_quat = torch.zeros(n, 4, device=device)
        self.target_quat[:, 0] = 1.0
        self.reached = torch.zeros(n, dtype=torch.bool, device=device)
        self.min_pos_error = torch.zeros(n, device=device)
        self.max_speed_ratio = torch.zeros(n, device=device)  # peak |joint speed| / limit of the episode
        self.slewed_target: Tensor | None = None  # (N, J) rad, the last joint targets sent to the actuators
        super().__init__(cfg, num_envs, device, **kwargs)

    def _resolve_names(self) -> None:
        self.ee_id = self.model.body(self.cfg.params.bodies.end_effector).id
        self.joint_vel_max = torch.tensor(self.cfg.params.joints.velocity_limit_rad_s, device=self.device)
        self.joint_torque_max = torch.tensor(self.cfg.params.joints.effort_limit_nm, device=self.device)

    def joint_targets(self, action: Tensor) -> Tensor:
        """(N, J) normalized actions -> PD targets (rad) inside the joint limits (as the exported policy clips them
        and the safety layer clamps them), moved from the last targets by at most ``target_rate_fraction`` x velocity
        limit x control period per joint, as the safety layer's slew does."""
        wanted = torch.maximum(torch.minimum(super().joint_targets(action), self.joint_high), self.joint_low)
        if self.slewed_target is None:
            self.slewed_target = wanted.clone()
        step = self.target_rate(self.cfg.joint_speed, self.cfg.params).to(self.device) * self.cfg.control_dt
        prev = self.slewed_target
        self.slewed_target = prev + torch.maximum(torch.minimum(wanted - prev, step), -step)
        return self.slewed_target

    @staticmethod
    def target_rate(speed: JointSpeedCfg, profile: ArticulatedProfile) -> Tensor:
        """(J,) rad/s the joint targets may move (the deploy profile's ``target_max_rate_rad_s``): the smaller of
        ``target_rate_fraction`` x the velocity limit and ``torque_rate_fraction`` x torque limit / Kd (a PD whose
        target starts moving at v pushes ~Kd v to bring the joint up to speed)."""
        j = profile.joints
        vel = torch.tensor(j.velocity_limit_rad_s) * speed.target_rate_fraction
        torque = torch.tensor(j.effort_limit_nm) / torch.tensor(j.kd_nm_s_per_rad) * speed.torque_rate_fraction
        return torch.minimum(vel, torque)

    def speed_ratio(self) -> Tensor:
        """(N,) the fastest joint's |speed| / its velocity limit (1.0 = the safety layer's trip point)."""
        return (self.joint_vel.abs() / self.joint_vel_max).amax(-1)

    def torque_ratio(self) -> Tensor:
        """(N,) the largest |torque| / torque limit over the joints, last physics step (1.0 = the layer's trip)."""
        return (self.torque.abs() / self.joint_torque_max).amax(-1)

    # ------------------------------------------------------------------ specs
    def policy_obs_spec(self) -> ObsSpec:
        """Encoders and the end-effector pose error (Franka's state carries the end-effector pose, O_T_EE)."""
        j = self.cfg.params.joints.dim
        return ObsSpec(
            (
                ObsTerm("joint_pos", j, 1.0, 0.005, "rad", "joint position minus default pose"),
                ObsTerm("joint_vel", j, 0.1, 0.05, "rad/s"),
                ObsTerm("position_error", 3, 5.0, 0.002, "m", "target minus end-effector position, base frame"),
                ObsTerm("orientation_error", 3, 1.0, 0.01, "rad", "rotation vector end effector -> target, base"),
                ObsTerm("last_action", j, 1.0, 0.0, "", "previous normalized action"),
            )
        )

    def critic_obs_spec(self) -> ObsSpec:
        j = self.cfg.params.joints.dim
        return ObsSpec(
            (
                ObsTerm("true_joint_pos", j, 1.0, 0.0, "rad"),
                ObsTerm("true_joint_vel", j, 0.1, 0.0, "rad/s"),
                ObsTerm("ee_position", 3, 1.0, 0.0, "m"),
                ObsTerm("ee_orientation", 4),
                ObsTerm("true_position_error", 3, 5.0, 0.0, "m"),
                ObsTerm("true_orientation_error", 3, 1.0, 0.0, "rad"),
            )
        )

    # ------------------------------------------------------------------ state
    @property
    def ee_pos(self) -> Tensor:
        """(N, 3) m, world."""
        return self.engine.xpos[:, self.ee_id].float()

    @property
    def ee_quat(self) -> Tensor:
        """(N, 4) w-first, world."""
        return self.engine.xquat[:, self.ee_id].float()

    def errors(self) -> tuple[Tensor, Tensor]:
        """(N,) position error m, (N,) orientation error rad."""
        return (
            terms.position_error_l2(self.ee_pos, self.target_pos),
            terms.orientation_error_angle(self.ee_quat, self.target_quat),
        )

    # ------------------------------------------------------------------ hooks
    def _initial_state(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        n, r, j = ids.numel(), self.cfg.init_joint_pos_rad, self.num_actions
        qpos = torch.zeros(n, self.engine.nq, device=self.device)
        q = self.default_pose + uniform(self.generator, n, [-r] * j, [r] * j, self.device)
        qpos[:, self.qadr] = q.clamp(self.joint_low, self.joint_high)
        return qpos, torch.zeros(n, self.engine.nv, device=self.device)

    def _reset_task(self, ids: Tensor) -> None:
        self._sample_targets(ids)
        self.reached[ids] = False
        self.min_pos_error[ids] = math.inf
        self.max_speed_ratio[ids] = 0.0
        if self.slewed_target is None:
            self.slewed_target = self.joint_pos.clone()
        self.slewed_target[ids] = self.joint_pos[ids]  # at rest: the actuators hold the start pose

    def _sample_targets(self, ids: Tensor) -> None:
        t, n, g, dev = self.cfg.target, ids.numel(), self.generator, self.device
        self.target_pos[ids] = uniform(g, n, [t.x_m[0], t.y_m[0], t.z_m[0]], [t.x_m[1], t.y_m[1], t.z_m[1]], dev)
        yaw = yaw_quaternion(uniform(g, n, t.yaw_rad[0], t.yaw_rad[1], dev)[:, 0])
        heading = uniform(g, n, -math.pi, math.pi, dev)[:, 0]
        axis = torch.stack([torch.cos(heading), torch.sin(heading), torch.zeros_like(heading)], -1)
        tilt = terms.quat_from_axis_angle(axis, uniform(g, n, 0.0, t.tilt_rad, dev)[:, 0])
        base = torch.tensor(self.cfg.target_orientation, device=dev).expand(n, 4)
        self.target_quat[ids] = terms.quat_multiply(tilt, terms.quat_multiply(yaw, base))

    def _after_physics(self) -> None:
        period = max(1, round(self.cfg.target.resample_s * self.cfg.control_hz))
        due = ((self.episode_length_buf % period) == 0).nonzero().squeeze(-1)
        if due.numel():
            self._sample_targets(due)
        pos_err, ang_err = self.errors()
        s = self.cfg.success
        self.reached |= (pos_err < s.position_m) & (ang_err < s.orientation_rad)
        self.min_pos_error = torch.minimum(self.min_pos_error, torch.nan_to_num(pos_err, nan=math.inf))
        self.max_speed_ratio = torch.maximum(self.max_speed_ratio, torch.nan_to_num(self.speed_ratio(), nan=math.inf))

    def _rewards(self) -> dict[str, Tensor]:
        w = self.cfg.reward
        pos_err, ang_err = self.errors()
        return {
            "position": w.position * pos_err,
            "position_coarse": w.position_coarse * terms.position_error_tanh(self.ee_pos, self.target_pos, 0.1),
            "position_fine": w.position_fine * terms.position_error_tanh(self.ee_pos, self.target_pos, 0.02),
            "orientation": w.orientation * ang_err,
            "orientation_coarse": w.orientation_coarse
            * terms.orientation_error_tanh(self.ee_quat, self.target_quat, 0.3),
            "orientation_fine": w.orientation_fine * terms.orientation_error_tanh(self.ee_quat, self.target_quat, 0.1),
            "action_rate": w.action_rate * terms.action_rate_l2(self.action, self.last_action),
            "joint_vel": w.joint_vel * terms.joint_vel_l2(self.joint_vel),
            "joint_limits": w.joint_limits
            * terms.joint_pos_limit_excess(self.joint_pos, self.joint_low, self.joint_high),
            "joint_vel_limits": w.joint_vel_limits
            * terms.joint_vel_limit_excess(self.joint_vel, self.joint_vel_max, self.cfg.joint_speed.soft_fraction),
            "joint_torque_limits": w.joint_torque_limits
            * (self.torque.abs() - self.cfg.joint_speed.soft_fraction * self.joint_torque_max).clamp_min(0.0).sum(-1),
            "joint_vel_violation": w.joint_vel_violation * self._outside_envelope().float(),
        }

    def _outside_envelope(self) -> Tensor:
        """(N,) bool: a joint's speed or torque is above ``terminate_fraction`` of its limit."""
        limit = self.cfg.joint_speed.terminate_fraction
        return (self.speed_ratio() > limit) | (self.torque_ratio() > limit)

    def _failed(self) -> Tensor:
        return self._outside_envelope()

    def _episode_log(self, ids: Tensor, terminated: Tensor) -> dict[str, Tensor]:
        return {
            "/metrics/success_rate": self.reached[ids].float().mean(),
            "/metrics/min_position_error_m": self.min_pos_error[ids].mean(),
            "/metrics/max_joint_speed_ratio": self.max_speed_ratio[ids].max(),
        }

    def _sensor_values(self) -> dict[str, Tensor]:
        return {
            "joint_pos": self.joint_pos - self.default_pose,
            "joint_vel": self.joint_vel,
            "position_error": self.target_pos - self.ee_pos,
            "orientation_error": terms.rotation_error_vector(self.ee_quat, self.target_quat),
        }

    def _critic_values(self) -> dict[str, Tensor]:
        return {
            "true_joint_pos": self.joint_pos - self.default_pose,
            "true_joint_vel": self.joint_vel,
            "ee_position": self.ee_pos,
            "ee_orientation": self.ee_quat,
            "true_position_error": self.target_pos - self.ee_pos,
            "true_orientation_error": terms.rotation_error_vector(self.ee_quat, self.target_quat),
        }
