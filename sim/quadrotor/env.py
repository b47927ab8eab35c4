"""The batched quadrotor env: one class for every quadrotor task, with domain randomization, noise and latency.

A task (``hover.py``, ``track.py``; ``QuadrotorTaskCfg.task`` names it) is data: its reward terms, its reference
("fixed" or "trajectory") and the observations it adds. The env reads those, never the task's name. Everything
is structure-of-arrays: per-env parameters live in one (P, N) table whose rows are named in ``param_rows``
(:mod:`~sim.quadrotor.param_table`); the state is (17, N) (see ``dynamics.STATE_ROWS``). Observation groups:
"policy" (what the robot measures, with its history), "critic" (true state and rotor speeds) and "privileged"
(randomized parameters and disturbances, refreshed only when they are re-drawn).

Backends (:attr:`QuadrotorEnv.backend`): "native" (the C++ CPU kernel, :mod:`~sim.quadrotor.native_env`, chosen
where it computes this config's step), "compiled" or "eager" (the torch step, :mod:`~sim.quadrotor.torch_step`,
the reference of the others). One control step = the step (delayed action, physics substeps, rewards,
terminations), the resets of the envs that finished (:mod:`~sim.quadrotor.reset_pool`) and the observations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from tensordict import TensorDict

from sim.env import BatchedEnv
from sim.obs_spec import split_history
from sim.quadrotor.actions import action_spec
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.quadrotor.dynamics import STATE_DIM, STATE_ROWS, Body
from sim.quadrotor.native_env import NativeBackend
from sim.quadrotor.param_table import ParamTable, nominal_values
from sim.quadrotor.reset_pool import Resets
from sim.quadrotor.rewards import check_terms
from sim.quadrotor.torch_step import TorchStep, _transpose, clean_action, delay_select
from sim.quadrotor.trajectory import TRAJ_ROWS, reference
from sim.rng import make_noise_table

__all__ = ["QuadrotorEnv", "clean_action", "delay_select", "nominal_values", "reference"]


class QuadrotorEnv(ParamTable, Resets, TorchStep, NativeBackend, BatchedEnv):
    """Batched quadrotor task (``cfg.task``: a name of ``sim.quadrotor.config.TASKS``). All tensors live on
    ``device``.

    compile: torch.compile the torch step (default: on CUDA and from 4096 envs); False is the eager reference.
    native: run the step with the C++ CPU kernel (:mod:`sim.quadrotor.native`). Default: on CPU when the kernel
    computes this config's step (fixed reference, rpm actions, the kernel's reward terms; otherwise an INFO line says
    why not) and ``compile`` is not False; True requires such a config. If the kernel cannot be built, a warning is
    logged and the torch step runs.
    """

    def __init__(
        self,
        cfg: QuadrotorTaskCfg,
        num_envs: int,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
        seed: int = 0,
        compile: bool | None = None,
        native: bool | None = None,
        tensordict_observations: bool = True,
    ):
        check_terms(cfg.reward.terms)
        super().__init__(num_envs, 4, cfg.max_episode_length, device, cfg, tensordict_observations)
        self.generator = generator if generator is not None else torch.Generator(self.device).manual_seed(seed)
        if self.generator.device != self.device:
            raise ValueError(
                f"generator is on {self.generator.device}, env on {self.device}: pass one for the env's device"
            )
        self.action_spec = action_spec(cfg.action_interface, cfg.params, cfg.max_body_rate_rad_s)
        self.obs_spec = cfg.policy_obs_spec()
        # The step computes the base observation; the history of it is appended afterwards (_append_history).
        self.base_obs_spec, self.history_steps = split_history(self.obs_spec)
        self.critic_spec = cfg.critic_obs_spec()
        self.privileged_spec = cfg.privileged_obs_spec()
        self._init_params(cfg)  # the (P, N) parameter table, latency depth, interval groups
        n, dev = self.num_envs, self.device
        # Structure of arrays throughout: every state row, action and sensor component is its own (N,) tensor, so a
        # compiled step has a single iteration space and fuses into one loop.
        self.body = Body(*torch.zeros(STATE_DIM, n, device=dev))
        self.traj = torch.zeros(TRAJ_ROWS, n, device=dev)
        self.last_action = tuple(torch.zeros(4, n, device=dev))
        self.episode_return = torch.zeros(n, device=dev)
        self.error_integral = torch.zeros(3, n, device=dev)  # position_error_integral (when observed), m s
        self.counter = torch.zeros((), dtype=torch.long, device=dev)
        # Delay lines: slot k holds what was produced k control steps ago (slot 0 = newest), D (N,) tensors each.
        self.action_slots = [tuple(torch.zeros(4, n, device=dev)) for _ in range(self.latency_slots)]
        # Terms the policy computes itself (not measured: no noise or delay of their own).
        self.sensor_terms = tuple(
            t for t in self.base_obs_spec.terms if t.name not in ("last_action", "position_error_integral")
        )
        self.sensor_dim = sum(t.size for t in self.sensor_terms)
        self.obs_slots = [tuple(torch.zeros(self.sensor_dim, n, device=dev)) for _ in range(self.obs_latency_slots)]
        self.noise_table = make_noise_table(self.sensor_dim, self.generator)  # (K, D)
        self.privileged = torch.zeros(n, self.privileged_spec.dim, device=dev)
        self._native = self._make_native(native, compile)
        use_compile = compile if compile is not None else (self.device.type == "cuda" or num_envs >= 4096)
        self._compiled = bool(use_compile) and self._native is None
        if self._compiled:
            # Compiled code is cached per code object; every env instance (size, config) adds an entry, and past
            # the default limit of 8 dynamo silently falls back to eager. Tests and sweeps build many envs.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        self._advance = torch.compile(self._advance_impl, dynamic=False) if self._compiled else self._advance_impl
        self._observe = torch.compile(self._observe_impl, dynamic=False) if self._compiled else self._observe_impl
        self._transpose = torch.compile(_transpose, dynamic=False) if self._compiled else _transpose
        self._reset_names = sorted(k for k, d in cfg.randomization.terms.items() if d.when in ("reset", "interval"))
        rows = [torch.arange(self.param_rows[k].start, self.param_rows[k].stop) for k in self._reset_names]
        self._reset_rows = (torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)).to(dev)[:, None]
        self._reset_row_ids = self._reset_rows[:, 0].contiguous()  # (R,) for the kernel
        self._pool: dict[str, Tensor] = {}
        self._pool_size = self._pool_next = 0
        self.init_scale = 1.0  # curriculum: fraction of cfg.init's ranges used by resets
        self._privileged = self._privileged_columns()
        self._privileged_flat: tuple[Tensor, ...] | None = None
        all_ids = torch.arange(n, device=dev)
        self._sample_params(all_ids, ("startup",))
        self.reset()

    @property
    def backend(self) -> str:
        """ "native" (C++ CPU kernel), "compiled" (torch.compile) or "eager" (the torch reference)."""
        if self._native is not None:
            return "native"
        return "compiled" if self._compiled else "eager"

    # ------------------------------------------------------------------ public API
    def reset(self) -> tuple[TensorDict, dict]:
        """Reset every env; returns (observations, extras)."""
        self._reset_idx(torch.arange(self.num_envs, device=self.device))
        self._compute_obs()
        return self._append_history(None), {}

    def step(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict]:
        _, reward, done, extras = self._step(actions)
        return self._append_history(done), reward, done, extras

    def _append_history(self, done: Tensor | None) -> TensorDict:
        """Append the ``observation_history`` to the base policy observation just computed (``self._obs``).

        Row i of the result is [base_t, base_t-1, ..., base_t-K]; an env that was just reset (``done``, or every
        env when None) starts with K copies of its first observation, as the deploy runtime's builder does.
        """
        k = self.history_steps
        if k == 0 or self._native is not None:  # the native step keeps the history in its ring (NativeStep)
            return self._obs
        base = self._obs["policy"]
        if done is None:
            full = base.repeat(1, k + 1)
        else:
            full = torch.cat([base, self._policy_obs[:, : k * base.shape[1]]], 1)
            ids = done.nonzero().squeeze(-1)
            if ids.numel():
                full[ids] = base[ids].repeat(1, k + 1)
        self._policy_obs = full
        self._obs["policy"] = full
        return self._obs

    def _step(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict]:
        if self._native is not None:
            with self._native.serial_torch():
                return self._step_native(actions)
        # Component-major copy of the actions (a separate compiled transpose: reading (N, 4) with stride 4 inside
        # the step would turn its loops scalar).
        actions = self._transpose(self.check_actions(actions))
        out = self._advance(
            self.body, self.params, self.traj, actions, self.action_slots[:-1], self.last_action,
            self.episode_length_buf, self.episode_return,
        )  # fmt: skip
        body, self.last_action, self.episode_length_buf, self.episode_return, reward, terminated, timeout, due = out
        self.body = Body(*body)
        self.action_slots = [self.last_action, *self.action_slots[:-1]]
        done = terminated | timeout
        extras: dict = {"time_outs": timeout}
        self._end_episodes(done, terminated, extras)
        self._resample_intervals(due)
        obs = self._compute_obs()
        self.counter += 1
        return obs, reward, done, extras

    def _end_episodes(self, done: Tensor, terminated: Tensor, extras: dict) -> Tensor:
        """Log the episodes that just ended into ``extras["log"]`` and reset those envs; returns their ids."""
        done_ids = done.nonzero().squeeze(-1)
        if done_ids.numel() > 0:
            extras["log"] = {
                "/episode/return": self.episode_return[done_ids].mean(),
                "/episode/length_s": self.episode_length_buf[done_ids].float().mean() * self.cfg.control_dt,
                "/episode/crash_rate": terminated[done_ids].float().mean(),
            }
            self._reset_idx(done_ids)
        return done_ids

    def _compute_obs(self) -> TensorDict:
        if self._native is not None:
            self._native.advance_outputs()
            self._native.observe(int(self.counter))
            self._native.fill_history()  # every env starts a history here
            self._native.rotate()
            self._native_views(self._native)
            self._obs = self._native_obs()
            return self._obs
        both, sensed, self.error_integral = self._observe(
            self.body, self.params, self.traj, self.obs_slots[:-1], self.last_action, self.episode_length_buf,
            self.noise_table, self.counter, self.error_integral,
        )  # fmt: skip
        self.obs_slots = [sensed, *self.obs_slots[:-1]]
        self._obs = self._obs_groups(both)
        return self._obs

    def _obs_groups(self, both: Tensor) -> TensorDict:
        policy, critic = (x.T for x in both.split([self.base_obs_spec.dim, self.critic_spec.dim]))
        groups = {"policy": policy, "critic": critic, "privileged": self.privileged}
        return self._groups(groups)

    # ------------------------------------------------------------------ views
    def state_rows(self, name: str) -> Tensor:
        """(N, k) copy of a named state block (see dynamics.STATE_ROWS)."""
        lo, hi = STATE_ROWS[name]
        return torch.stack(self.body[lo:hi], -1)

    def set_state_rows(self, name: str, values: Tensor, env_ids: Tensor | None = None) -> None:
        """Overwrite a named state block: values (n, k) for ``env_ids`` (all envs when None)."""
        lo, hi = STATE_ROWS[name]
        ids = slice(None) if env_ids is None else env_ids
        for k, row in enumerate(self.body[lo:hi]):
            row[ids] = values[..., k]

    def reference_now(self) -> tuple[Tensor, Tensor]:
        """Current reference position and velocity, (N, 3) each."""
        t = self.episode_length_buf.float() * self.cfg.control_dt
        pos, vel = reference(self.traj, t, self.cfg.termination.reference_height_m)
        return pos.T, vel.T
