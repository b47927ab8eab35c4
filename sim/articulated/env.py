"""The batched articulated-robot env shared by the arm and legged tasks (rsl_rl ``VecEnv``).

One control step: normalized actions (N, J) -> joint targets ``default + offset + scale * a`` -> per physics step
:class:`~sim.articulated.actuators.JointActuators` (latency, PD, motor envelope) -> ``engine.step`` -> task
rewards and terminations -> resets of finished envs -> interval draws (pushes) -> observations. Observation
groups: ``policy`` (what the robot measures: noise, latency), ``critic`` (true state, task-defined),
``privileged`` (the randomized parameters). Tasks subclass :class:`ArticulatedEnv` and implement the hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sim.action_spec import ActionSpec
from sim.articulated import terms
from sim.articulated.actuators import DelayLine, JointActuators
from sim.articulated.engine import make_engine
from sim.articulated.profile import ArticulatedProfile
from sim.articulated.randomization import MODEL_PARAMS, ModelParamWriter, check_randomization, nominal_values
from sim.articulated.robots import joint_dof_addresses, joint_qpos_addresses, load_model
from sim.env import BatchedEnv
from sim.obs_spec import ObsSpec, ObsTerm, split_history
from sim.randomization import RandomizationSpec
from sim.sampling import sample_params

if TYPE_CHECKING:
    from tensordict import TensorDict


@dataclass
class ArticulatedCfg:
    """Settings every articulated task has. ``params`` is the robot profile (the name matches the quadrotor's
    config, so training, export and evaluation read the robot profile the same way for every task)."""

    params: ArticulatedProfile
    randomization: RandomizationSpec
    episode_s: float = 20.0  # s
    engine: str = "mujoco"  # "mujoco" (CPU) | "mujoco_warp" (GPU)
    action_interface: str = "joint_position"

    @property
    def control_hz(self) -> float:
        return self.params.control_hz

    @property
    def control_dt(self) -> float:
        return self.params.control_dt

    @property
    def max_episode_length(self) -> int:
        return round(self.episode_s * self.control_hz)


def privileged_spec(joints: int) -> ObsSpec:
    """The randomized parameters the critic sees (ratios to nominal where the nominal is not zero)."""
    return ObsSpec(
        (
            ObsTerm("ground_friction", 1),
            ObsTerm("added_base_mass", 1, 1.0, 0.0, "kg"),
            ObsTerm("base_com", 3, 10.0, 0.0, "m"),
            ObsTerm("motor_strength", joints),
            ObsTerm("kp_factor", joints),
            ObsTerm("kd_factor", joints),
            ObsTerm("default_pose_offset", joints, 10.0, 0.0, "rad"),
            ObsTerm("latency", 2, 0.1, 0.0, "steps", "action (physics steps), observation (control steps)"),
        )
    )


class ArticulatedEnv(BatchedEnv):
    """Base of the articulated tasks. ``engine``: override ``cfg.engine``; ``compile`` is accepted for the
    registry's uniform signature and unused (the physics runs in MuJoCo)."""

    obs_spec: ObsSpec
    critic_spec: ObsSpec

    def __init__(
        self,
        cfg: ArticulatedCfg,
        num_envs: int,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
        seed: int = 0,
        compile: bool | None = None,
        engine: str | None = None,
        tensordict_observations: bool = True,
    ):
        profile = cfg.params
        super().__init__(num_envs, profile.joints.dim, cfg.max_episode_length, device, cfg, tensordict_observations)
        self.generator = generator if generator is not None else torch.Generator(self.device).manual_seed(seed)
        self.profile = profile
        self.model = load_model(profile)
        self.engine = make_engine(self.model, self.num_envs, engine or cfg.engine, self.device)
        self._resolve_names()
        dev, n, j = self.device, self.num_envs, profile.joints
        self.qadr = torch.as_tensor(joint_qpos_addresses(self.model, j.names), device=dev)
        self.dadr = torch.as_tensor(joint_dof_addresses(self.model, j.names), device=dev)
        self.default_pose = torch.tensor(j.default_position_rad, device=dev)
        self.joint_low = torch.tensor(j.position_min_rad, device=dev)
        self.joint_high = torch.tensor(j.position_max_rad, device=dev)
        self.action_spec = ActionSpec(
            "joint_position", j.names, ("rad",) * j.dim, j.default_position_rad,
            (profile.action_scale_rad,) * j.dim, j.position_min_rad, j.position_max_rad,
        )  # fmt: skip
        self.obs_spec = self.policy_obs_spec()
        self.base_obs_spec, self.history_steps = split_history(self.obs_spec)
        if self.base_obs_spec.names[-1] != "last_action":
            raise ValueError(
                f"the policy spec must end with 'last_action' (then, optionally, the observation history), got "
                f"{self.obs_spec.names}"
            )
        self.sensor_spec = ObsSpec(self.base_obs_spec.terms[:-1])
        self.critic_spec = self.critic_obs_spec()
        self.privileged_spec = privileged_spec(j.dim)

        nominal = nominal_values(profile, self.model)
        check_randomization(cfg, self.model)  # unknown parameters, physically impossible draws
        self.nominal = {k: torch.tensor(v, dtype=torch.float32, device=dev) for k, v in nominal.items()}
        self.params = {k: v.expand(n, -1).clone() for k, v in self.nominal.items()}
        self.param_writer = ModelParamWriter(self.engine, profile)
        max_latency = {k: int(cfg.randomization.get(k).bounds()[1]) if k in cfg.randomization else 0
                       for k in ("action_latency", "obs_latency")}  # fmt: skip
        a = profile.actuator
        self.actuators = JointActuators(
            j.kp_nm_per_rad, j.kd_nm_s_per_rad, j.effort_limit_nm, n, dev, model=a.model,
            stall_torque=a.stall_torque_nm, max_velocity=a.max_velocity_rad_s, max_delay=max_latency["action_latency"],
        )  # fmt: skip
        self.obs_line = DelayLine(n, self.sensor_spec.dim, max_latency["obs_latency"], dev)
        self.intervals = sorted(
            {(max(1, round(d.interval_s * cfg.control_hz)), k) for k, d in cfg.randomization.terms.items()
             if d.when == "interval"}
        )  # fmt: skip
        self.counter = 0
        self.action = torch.zeros(n, j.dim, device=dev)
        self.last_action = torch.zeros(n, j.dim, device=dev)
        self.torque = torch.zeros(n, j.dim, device=dev)
        self.episode_return = torch.zeros(n, device=dev)
        self.episode_terms: dict[str, Tensor] = {}
        self._history = torch.zeros(n, self.history_steps * self.base_obs_spec.dim, device=dev)  # newest first
        self._fresh = torch.ones(n, dtype=torch.bool, device=dev)  # reset since the last observation
        self._draw(torch.arange(n, device=dev), ("startup",))
        self.reset()

    # ------------------------------------------------------------------ hooks for tasks
    def policy_obs_spec(self) -> ObsSpec:
        raise NotImplementedError

    def critic_obs_spec(self) -> ObsSpec:
        raise NotImplementedError

    def _resolve_names(self) -> None:
        """Resolve the task's body/sensor names to ids once, right after the model is built."""

    def _initial_state(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """(n, nq), (n, nv) state of envs ``ids`` at the start of an episode."""
        raise NotImplementedError

    def _reset_task(self, ids: Tensor) -> None:
        """Commands / targets of the fresh episodes of envs ``ids`` (after the state is set)."""

    def _after_physics(self) -> None:
        """Update task bookkeeping once per control step after the physics (before rewards)."""

    def _rewards(self) -> dict[str, Tensor]:
        """Weighted reward terms name -> (N,), summed into the reward."""
        raise NotImplementedError

    def _total_reward(self, parts: dict[str, Tensor]) -> Tensor:
        """(N,) reward of this step from the weighted terms: their sum."""
        return torch.stack(list(parts.values())).sum(0)

    def _failed(self) -> Tensor:
        """(N,) bool task failures (non-finite states are added by the base)."""
        raise NotImplementedError

    def _sensor_values(self) -> dict[str, Tensor]:
        """Policy terms but ``last_action``: name -> (N, size), physical units, noise-free."""
        raise NotImplementedError

    def _critic_values(self) -> dict[str, Tensor]:
        raise NotImplementedError

    # ------------------------------------------------------------------ state helpers
    @property
    def joint_pos(self) -> Tensor:
        """(N, J) rad, profile order."""
        return self.engine.qpos[:, self.qadr].float()

    @property
    def joint_vel(self) -> Tensor:
        """(N, J) rad/s, profile order."""
        return self.engine.qvel[:, self.dadr].float()

    def joint_targets(self, action: Tensor) -> Tensor:
        """(N, J) normalized actions in [-1, 1] -> PD targets, rad (default pose + calibration offset + scale a)."""
        return self.default_pose + self.params["default_pose_offset"] + self.profile.action_scale_rad * action

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> tuple[TensorDict, dict]:
        with self._serial_torch():
            self._reset_idx(torch.arange(self.num_envs, device=self.device))
            return self._compute_obs(), {}

    def step(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict]:
        with self._serial_torch():
            return self._step(actions)

    @contextmanager
    def _serial_torch(self) -> Iterator[None]:
        """Run the env's own torch ops on one thread (CPU only). They are small (N x J) ops between MuJoCo batch
        steps; with torch's intra-op pool on, its threads wait on the batch's pool threads for the same cores, and
        on 2 cores a 512-env step took 3.5x longer (250 vs 71 ms, measured). The batch keeps its own threads."""
        if self.device.type != "cpu":
            yield
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _step(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict]:
        a = torch.nan_to_num(self.check_actions(actions), nan=0.0).clamp(-1.0, 1.0)
        self.last_action, self.action = self.action, a
        self.run_physics(self.joint_targets(a))
        self.episode_length_buf += 1
        self._after_physics()
        parts = self._rewards()
        reward = self._total_reward(parts)
        state = (self.engine.qpos, self.engine.qvel)
        terminated = self._failed() | terms.state_nonfinite(*state)
        timeout = (self.episode_length_buf >= self.max_episode_length) & ~terminated
        reward = torch.nan_to_num(reward, nan=0.0, posinf=0.0, neginf=0.0)
        self.episode_return += reward
        for name, value in parts.items():
            self.episode_terms.setdefault(name, torch.zeros_like(reward)).add_(torch.nan_to_num(value))
        done = terminated | timeout
        extras: dict = {"time_outs": timeout}
        done_ids = done.nonzero().squeeze(-1)
        if done_ids.numel():
            log = {
                "/episode/return": self.episode_return[done_ids].mean(),
                "/episode/length_s": self.episode_length_buf[done_ids].float().mean() * self.cfg.control_dt,
                "/episode/crash_rate": terminated[done_ids].float().mean(),
            }
            for name, total in self.episode_terms.items():
                log[f"/reward/{name}"] = total[done_ids].mean()
            log.update(self._episode_log(done_ids, terminated))
            extras["log"] = log
            self._reset_idx(done_ids)
        self.counter += 1
        self._interval_draws()
        return self._compute_obs(), reward, done, extras

    def run_physics(self, target: Tensor) -> None:
        """One control period of physics toward PD targets ``target`` (N, J) rad: the actuator model at every physics
        step, the derived fields computed at the new state after the last (the PD reads only qpos and qvel)."""
        last = self.profile.substeps - 1
        for k in range(self.profile.substeps):
            self.torque = self.actuators.torque(target, self.joint_pos, self.joint_vel)
            self.engine.step(self.torque.to(self.engine.dtype), 1, derive=k == last)

    def _episode_log(self, ids: Tensor, terminated: Tensor) -> dict[str, Tensor]:
        """Task metrics of the episodes of envs ``ids`` that just ended (before their reset)."""
        return {}

    # ------------------------------------------------------------------ randomization
    def _draw(self, ids: Tensor, when: tuple[str, ...]) -> None:
        spec = self.cfg.randomization
        self._apply(ids, sample_params(spec, self.nominal, ids.numel(), self.generator, when=when))

    def _apply(self, ids: Tensor, draws: dict[str, Tensor], push: bool = False) -> None:
        """Store draws (name -> (n, C)) for envs ``ids`` and write them where they act; ``push``: apply a drawn
        push velocity now (interval draws; at a reset the fresh state replaces it anyway)."""
        if not draws:
            return
        for name, value in draws.items():
            self.params[name][ids] = value.to(self.device, torch.float32)
        names = set(draws)
        self.param_writer.write(self.params, ids, names & set(MODEL_PARAMS))
        act = self.actuators
        act.kp_scale[ids] = self.params["kp_factor"][ids]
        act.kd_scale[ids] = self.params["kd_factor"][ids]
        act.strength[ids] = self.params["motor_strength"][ids]
        act.set_delay(self.params["action_latency"][ids, 0].round(), ids)
        self.obs_line.set_delay(self.params["obs_latency"][ids, 0].round(), ids)
        if push and "push_velocity" in names and self.profile.floating_base:
            self._push(ids, self.params["push_velocity"][ids])

    def _push(self, ids: Tensor, velocity_xy: Tensor) -> None:
        """Add ``velocity_xy`` (n, 2) m/s to the base's world velocity (a shove)."""
        qpos, qvel = self.engine.qpos[ids].clone(), self.engine.qvel[ids].clone()
        qvel[:, :2] += velocity_xy.to(qvel)
        self.engine.set_state(ids, qpos, qvel)

    def _interval_draws(self) -> None:
        for period, name in self.intervals:
            due = ((self.episode_length_buf % period) == 0) & (self.episode_length_buf > 0)
            ids = due.nonzero().squeeze(-1)
            if ids.numel():
                self._draw_one(ids, name)

    def _draw_one(self, ids: Tensor, name: str) -> None:
        spec = RandomizationSpec({name: self.cfg.randomization.terms[name]})
        nominal = {name: self.nominal[name]}
        self._apply(ids, sample_params(spec, nominal, ids.numel(), self.generator, when=("interval",)), push=True)

    # ------------------------------------------------------------------ resets and observations
    def _reset_idx(self, ids: Tensor) -> None:
        self._draw(ids, ("reset", "interval"))
        qpos, qvel = self._initial_state(ids)
        self.engine.set_state(ids, qpos.to(self.engine.dtype), qvel.to(self.engine.dtype))
        self.actuators.reset(ids, self.joint_pos[ids])
        self.action[ids] = 0.0
        self.last_action[ids] = 0.0
        self.torque[ids] = 0.0
        self.episode_length_buf[ids] = 0
        self.episode_return[ids] = 0.0
        for total in self.episode_terms.values():
            total[ids] = 0.0
        self._reset_task(ids)
        self.obs_line.reset(ids, self._sense()[ids])
        self._fresh[ids] = True

    def _sense(self) -> Tensor:
        """(N, Ds) noisy, scaled sensor columns (no latency yet)."""
        values = self._sensor_values()
        noise = torch.randn(self.num_envs, self.sensor_spec.dim, generator=self.generator, device=self.device)
        std = torch.tensor(self.sensor_spec.noise_stds(), device=self.device) * self.params["obs_noise_scale"]
        clean = self.sensor_spec.assemble(values)
        return clean + noise * std * torch.tensor(self.sensor_spec.scales(), device=self.device)

    def _compute_obs(self) -> TensorDict:
        sensed = self.obs_line.push(self._sense())
        last = self.base_obs_spec.term("last_action")
        policy = self._with_history(torch.cat([sensed, self.action * last.scale], dim=-1))
        critic = self.critic_spec.assemble(self._critic_values())
        latency = torch.cat([self.params["action_latency"], self.params["obs_latency"]], dim=-1)
        privileged = self.privileged_spec.assemble(
            {k: self.params[k] for k in self.privileged_spec.names if k != "latency"} | {"latency": latency}
        )
        # policy_now: the newest observation without the history (a view), for a critic that has no use for the
        # actor's history (the Go2 variant's obs_groups; the history would widen the critic's first layer 6x)
        policy_now = policy[:, : self.base_obs_spec.dim]
        self._obs = self._groups(
            {"policy": policy, "policy_now": policy_now, "critic": critic, "privileged": privileged}
        )
        return self._obs

    def _with_history(self, base: Tensor) -> Tensor:
        """(N, D0) policy observation -> (N, D0 * (1 + K)) with the K previous ones as the policy received them,
        newest first (``sim.obs_spec.with_history``). An env reset since the last observation starts with K copies
        of its first one, as ``deploy.observation.JointObservationBuilder`` does when a run's policy starts."""
        if not self.history_steps:
            return base
        k, fresh = self.history_steps, self._fresh
        previous = torch.where(fresh[:, None], base.repeat(1, k), self._history)
        self._history = torch.cat([base, previous[:, : (k - 1) * base.shape[1]]], dim=-1)
        fresh.zero_()
        return torch.cat([base, previous], dim=-1)


def uniform(generator: Tensor | torch.Generator, n: int, low, high, device) -> Tensor:
    """(n, len(low)) uniform draws in [low, high] (sequences or floats, broadcast) from ``generator``."""
    low = torch.as_tensor(low, dtype=torch.float32, device=device).reshape(1, -1)
    high = torch.as_tensor(high, dtype=torch.float32, device=device).reshape(1, -1)
    size = max(low.shape[1], high.shape[1])
    return low + (high - low) * torch.rand(n, size, generator=generator, device=device)


def yaw_quaternion(yaw: Tensor) -> Tensor:
    """(n,) rad -> (n, 4) w-first rotations about world z."""
    return torch.stack([torch.cos(yaw / 2), 0 * yaw, 0 * yaw, torch.sin(yaw / 2)], dim=-1)
