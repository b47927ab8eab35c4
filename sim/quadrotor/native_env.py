"""The native backend of the quadrotor env: the C++ CPU kernel (:mod:`sim.quadrotor.native`) drives the step.

Chosen at construction (:meth:`NativeBackend._make_native`) where the kernel computes this env's step
(``NativeStep.supports``: CPU, fixed reference, rpm actions, the kernel's observation layout and reward terms); any
other config runs the torch step, with one INFO line saying why. The state, delay lines and parameter table move
into kernel-owned padded buffers; the env's tensors become views of them, so the public API is the same on both
backends. A part of :class:`sim.quadrotor.env.QuadrotorEnv`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from tensordict import TensorDict

from sim.quadrotor.dynamics import STATE_DIM, Body
from sim.quadrotor.native import NativeStep, load_kernel, padded_empty

log = logging.getLogger(__name__)


class NativeBackend:
    """Native-backend methods of :class:`~sim.quadrotor.env.QuadrotorEnv`."""

    def _make_native(self, native: bool | None, compile: bool | None) -> NativeStep | None:
        """Set up the C++ step (state, action and observation delay lines in kernel-owned buffers) if requested."""
        if native is False or (native is None and compile is False):
            return None
        reason = NativeStep.supports(self)
        if reason is not None:
            if native:
                raise ValueError(f"native=True, but the native kernel does not support {reason}; pass native=None")
            if self.device.type == "cpu":
                log.info("quadrotor %s: the torch step runs, not the native kernel: %s", self.cfg.task, reason)
            return None
        lib = load_kernel()
        if lib is None:
            return None
        n = self.num_envs
        state = padded_empty(STATE_DIM, n).zero_()
        self.body = Body(*state)  # views: resets and set_state_rows write the kernel's state in place
        act = [padded_empty(4, n).zero_() for _ in range(max(self.latency_slots, 2))]
        obs = [padded_empty(self.sensor_dim, n).zero_() for _ in range(self.obs_latency_slots)]
        params = padded_empty(self.params.shape[0], n)
        params.copy_(self.params)
        self.params = params
        kernel = NativeStep(lib, self, state, act, obs)
        self._native_views(kernel)
        return kernel

    def _native_views(self, kernel: NativeStep) -> None:
        self.action_slots = kernel.act_views[: self.latency_slots]
        self.last_action = kernel.act_views[0]
        self.obs_slots = list(kernel.obs_views)
        self.error_integral = kernel.integral[0]

    def _step_native(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict]:
        """The same step as the torch path, computed by the C++ kernel, which also resets the envs that finished
        (from the reset pool, as :meth:`_reset_idx`) and writes their first observations in the same pass. Interval
        draws stay eager (they use the env's generator); envs whose draws touch observation parameters are
        re-observed. The returned tensors are rewritten two steps later (rsl_rl copies them before that)."""
        kernel = self._native
        if not kernel.inline_resets:
            return self._step_native_separate(actions)
        counter = int(self.counter)
        pool = (self._pool["params"], self._pool["state"], self._pool_next)
        reward, _, timeout, done, due = kernel.step_and_reset(
            self.check_actions(actions).contiguous(), counter, pool, self._reset_row_ids, self._kernel_privileged
        )
        extras: dict = {"time_outs": timeout}
        finished, reset_done, *due_counts = kernel.counts[: 2 + len(self._interval_groups)]
        if finished:
            if not reset_done:  # the pool is short: a new one, as _take_reset_draws
                self._new_pool(finished)
                kernel.reset_finished((self._pool["params"], self._pool["state"], 0))
            self._pool_next += finished
            ids, ret, length, failed = kernel.finished(finished)
            extras["log"] = {
                "/episode/return": ret.mean(),
                "/episode/length_s": length.float().mean() * self.cfg.control_dt,
                "/episode/crash_rate": failed.float().mean(),
            }
            if self._kernel_privileged is None:
                self._refresh_privileged(ids)
        if any(due_counts):
            self._resample_intervals(due)
            if self._interval_observed:
                self._native.observe(counter, due.any(0).nonzero().squeeze(-1))
        kernel.rotate()
        self._native_views(kernel)
        self._obs = self._native_obs()
        self.counter += 1
        return self._obs, reward, done, extras

    def _step_native_separate(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict]:
        """The native step with eager resets (``_native.inline_resets = False``): the kernel steps every env, the
        finished ones are reset by :meth:`_reset_idx`, then their observations are recomputed. The reference of
        the in-pass resets (tests) and the baseline of their benchmark."""
        counter = int(self.counter)
        reward, terminated, timeout, done, due = self._native.step(self.check_actions(actions).contiguous(), counter)
        self._native_views(self._native)
        extras: dict = {"time_outs": timeout}
        done_ids = self._end_episodes(done, terminated, extras)
        self._resample_intervals(due)
        stale = done_ids
        if self._interval_observed:
            stale = torch.cat([done_ids, due.any(0).nonzero().squeeze(-1)])
        self._native.observe(counter, stale)
        self._native.fill_history(done_ids)
        self._native.rotate()
        self._native_views(self._native)
        self._obs = self._native_obs()
        self.counter += 1
        return self._obs, reward, done, extras

    def _native_obs(self) -> TensorDict:
        policy, critic = self._native.groups  # policy: base observation and history, a view of the kernel's ring
        groups = {"policy": policy, "critic": critic, "privileged": self.privileged}
        return self._groups(groups)
