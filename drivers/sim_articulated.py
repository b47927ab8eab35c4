"""A simulated arm or legged robot dressed as hardware, for software-in-the-loop (in-process; on the wire:
:mod:`drivers.sim_articulated_node`).

One env of an articulated task (``arm-reach`` or ``legged-walk``: its robot profile, model, randomized
parameters, actuator latency and motor envelope) behind ``read_state`` / ``send_command`` / ``arm`` / ``disarm`` (its node, :mod:`drivers.sim_articulated_node`,
puts it on the topic table). Commands are
joint position targets (rad, profile joint order) with the PD gains of each command, as joint-level motor drivers
take them (Unitree low-level commands: q, kp, kd; Franka's joint impedance controller): the
:class:`deploy.safety.SafeCommand` of the safety layer maps onto :meth:`send_command` directly, so its damping
(kp 0, kd 8) and hold fallbacks act on the simulated robot as they would on hardware. Disarmed, the motors give
zero torque. Time is simulated: :meth:`step` advances one control period and ``stamp_s`` is simulation time.

Like :mod:`drivers.sim_robot` this module imports the simulator (and torch); the rest of the runtime does not.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from drivers.robot import RobotState
from sim.articulated.profile import ArticulatedProfile
from sim.randomization import RandomizationSpec
from sim.tasks import make_env, task_entry


class SimulatedArticulatedRobot:
    """One simulated articulated robot. ``randomization``: the task's default when None (the robot has its own
    randomized parameters, drawn from ``seed``); pass ``RandomizationSpec({})`` for the nominal robot.
    ``profile``: the robot (an :class:`~sim.articulated.profile.ArticulatedProfile`); the task's when None."""

    def __init__(
        self,
        task: str = "legged-walk",
        seed: int = 0,
        randomization: RandomizationSpec | None = None,
        profile: ArticulatedProfile | None = None,
        cfg: Any = None,
    ):
        """``cfg``: the task's env config to start from (default: the task's defaults); copied, not changed."""
        cfg = copy.deepcopy(cfg) if cfg is not None else task_entry(task).make_cfg()
        if randomization is not None:
            cfg.randomization = randomization
        if profile is not None:
            cfg.params = profile
        cfg.episode_s = 1e6  # the robot does not reset itself
        self.env = make_env(task, 1, seed=seed, cfg=cfg, tensordict_observations=False)  # no tensordict (sim/env.py)
        self.profile = self.env.profile
        j = self.profile.joints
        self._kp_nominal = torch.tensor(j.kp_nm_per_rad)
        self._kd_nominal = torch.tensor(j.kd_nm_s_per_rad)
        self._target = self.env.joint_pos.clone()
        self._armed = False
        self.time_s = 0.0
        self._damping = self.env.engine.get_params("dof_damping")  # (1, nv), this robot's randomized values
        self._implicit_kd = torch.zeros(j.dim)  # damping-mode gains applied as joint damping (see _set_gains)
        self._set_gains(np.zeros(j.dim), np.zeros(j.dim))  # disarmed: zero torque

    # ------------------------------------------------------------------ the robot's side
    def read_state(self) -> RobotState:
        e = self.env.engine
        state = {
            "joint_position": self.env.joint_pos[0].numpy().astype(float),
            "joint_velocity": self.env.joint_vel[0].numpy().astype(float),
        }
        if self.profile.floating_base:
            state |= {
                "position": e.qpos[0, 0:3].numpy().copy(),
                "quaternion": e.qpos[0, 3:7].numpy().copy(),
                "linear_velocity": e.qvel[0, 0:3].numpy().copy(),
                "angular_velocity": e.qvel[0, 3:6].numpy().copy(),
            }
        elif hasattr(self.env, "ee_pos"):  # an arm reports its end-effector pose in the base frame (Franka O_T_EE)
            state |= {
                "position": self.env.ee_pos[0].numpy().astype(float),
                "quaternion": self.env.ee_quat[0].numpy().astype(float),
            }
        return RobotState(stamp_s=self.time_s, **state)

    def joint_torque(self) -> np.ndarray:
        """(J,) N m the motors apply in the last physics step: the PD/motor model's torque plus the damping-mode
        torque (-kd qd, applied as joint damping; see :meth:`_set_gains`)."""
        qd = self.env.joint_vel[0].double()
        return (self.env.torque[0].double() - self._implicit_kd.double() * qd).numpy()

    def send_command(self, command: np.ndarray, kp: np.ndarray | None = None, kd: np.ndarray | None = None) -> None:
        """Joint targets (J,) rad with per-joint gains (N m/rad, N m s/rad; the profile's when None). Ignored
        while disarmed. A non-finite target is refused (the previous target stays), as motor drivers do."""
        if not self._armed:
            return
        command = np.asarray(command, dtype=float).reshape(-1)
        if command.shape != (self.profile.joints.dim,):
            raise ValueError(f"expected {self.profile.joints.dim} joint targets, got shape {command.shape}")
        if np.all(np.isfinite(command)):
            self._target = torch.from_numpy(command).float()[None]
        self._set_gains(
            self._kp_nominal.numpy() if kp is None else np.asarray(kp, dtype=float),
            self._kd_nominal.numpy() if kd is None else np.asarray(kd, dtype=float),
        )

    def arm(self) -> None:
        self._armed = True
        self._target = self.env.joint_pos.clone()  # hold where it is until the first command
        self._set_gains(self._kp_nominal.numpy(), self._kd_nominal.numpy())

    def disarm(self) -> None:
        self._armed = False
        self._set_gains(np.zeros(self.profile.joints.dim), np.zeros(self.profile.joints.dim))

    def fallback(self) -> None:
        """The robot's own fallback: damping (kp 0, kd from the profile's safety section) for a legged robot,
        hold the current position for an arm."""
        if self.profile.robot_class == "legged":
            kd = np.full(self.profile.joints.dim, self.profile.safety.damping_kd_nm_s_per_rad)
            self._set_gains(np.zeros(self.profile.joints.dim), kd)
        else:
            self._target = self.env.joint_pos.clone()
            self._set_gains(self._kp_nominal.numpy(), self._kd_nominal.numpy())

    # ------------------------------------------------------------------ simulation
    def reset(self) -> None:
        """Start again: a fresh initial state of the task (a legged robot dropped standing), disarmed."""
        self.env.reset()
        self.disarm()
        self._target = self.env.joint_pos.clone()

    def tip_over(self, angle_rad: float = 1.75) -> None:
        """A disturbance for tests of the safety layer: roll a floating base by ``angle_rad`` about its own x
        axis, in place, at rest."""
        if not self.profile.floating_base:
            raise ValueError(f"{self.profile.name} has no floating base to tip over")
        e = self.env.engine
        qpos, qvel = e.qpos[:1].clone(), torch.zeros_like(e.qvel[:1])
        w, x, y, z = qpos[0, 3:7].tolist()
        c, s = np.cos(angle_rad / 2), np.sin(angle_rad / 2)  # q * (c, s, 0, 0)
        qpos[0, 3:7] = torch.tensor([w * c - x * s, x * c + w * s, y * c + z * s, z * c - y * s], dtype=qpos.dtype)
        qpos[0, 2] = max(float(qpos[0, 2]), self.profile.initial_base_height_m)
        e.set_state(torch.tensor([0]), qpos, qvel)

    def displace_joint(self, name: str, position_rad: float) -> None:
        """A disturbance for tests of the safety layer: put joint ``name`` at ``position_rad`` (it may be outside
        its limits; the joint limit pushes it back over the next steps), velocities unchanged."""
        e, i = self.env.engine, self.profile.joints.names.index(name)
        qpos = e.qpos[:1].clone()
        qpos[0, self.env.qadr[i]] = position_rad
        e.set_state(torch.tensor([0]), qpos, e.qvel[:1].clone())

    def step(self) -> None:
        """Advance one control period holding the last command (PD at the physics rate)."""
        self.env.run_physics(self._target)
        self.time_s += self.profile.control_dt

    def _set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        """Gains as factors on the nominal ones, times this robot's randomized gain factors (the actuator model
        keeps its randomized strength and latency too); a joint with a zero nominal gain keeps zero.

        A pure damping command (kp = 0, kd > 0: Unitree's damping mode) is applied as MuJoCo joint damping, which
        the integrator treats implicitly: the motor drivers damp at kHz rates, and kd 8 N m s/rad integrated
        explicitly at the 200 Hz physics rate is unstable on light links (A1 calf: kd dt / I ~ 4 > 2)."""
        env, kp, kd = self.env, torch.as_tensor(kp).float(), torch.as_tensor(kd).float()
        implicit = (kp == 0) & (kd > 0)
        damping = self._damping.clone()
        self._implicit_kd = torch.where(implicit, kd, 0.0)
        damping[0, env.dadr] += self._implicit_kd.double()
        env.engine.set_params("dof_damping", damping, torch.tensor([0]))
        kd = torch.where(implicit, 0.0, kd)
        kp_ratio = torch.where(self._kp_nominal > 0, kp / self._kp_nominal.clamp_min(1e-9), 0.0)
        kd_ratio = torch.where(self._kd_nominal > 0, kd / self._kd_nominal.clamp_min(1e-9), 0.0)
        env.actuators.kp_scale[0] = kp_ratio * env.params["kp_factor"][0]
        env.actuators.kd_scale[0] = kd_ratio * env.params["kd_factor"][0]
