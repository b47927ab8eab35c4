"""The observation history of the native step: two rings of base-observation blocks, no copy per step.

A step's policy group is the view of K + 1 consecutive (D, N) blocks of one ring, newest first: the kernel writes
the newest block (in both rings) and the history costs no copy (appending it with torch.cat took twice the kernel's
time, see docs/ARCHITECTURE.md). Two rings, used by steps in turn, because a reset env's older blocks are
rewritten, and in one ring those blocks belong to the last step's window too, which the caller may still read.
A part of :class:`sim.quadrotor.native.NativeStep`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sim.quadrotor.native_args import _ptr, padded_empty

HISTORY_WINDOWS = 3  # the history ring holds this many observation windows (see HistoryRing.advance_outputs)


class HistoryRing:
    """History-ring methods of :class:`~sim.quadrotor.native.NativeStep` (its env, args, lib, threads, critic and
    reward/flag buffers)."""

    def _init_history(self, env, a) -> None:
        """Two rings of HISTORY_WINDOWS (K + 1) blocks of D rows each, zeroed."""
        self.base_dim, self.history = env.base_obs_spec.dim, env.history_steps
        self.ring_blocks = HISTORY_WINDOWS * (self.history + 1)
        rows = self.ring_blocks * self.base_dim
        ring = padded_empty(2 * rows, env.num_envs).zero_()
        self.rings = (ring[:rows], ring[rows:])
        self._block = self.ring_blocks - self.history  # newest block of the current window
        self._ring = 1  # the current window's ring
        self._prev_done: Tensor | None = None  # the last step's done flags (its resets' history is due in this ring)
        a.n_hist = self.history

    def advance_outputs(self) -> tuple[Tensor, Tensor]:
        """Move to the next step's outputs and return its (reward, flags) buffers: the next block of the history ring
        (the window, :attr:`window`, is that block and the K after it, which hold the previous steps' base
        observations) in the other ring than the last step's, and the other of two critic, reward and flag buffers.
        A ring holds HISTORY_WINDOWS windows; when the newest block would pass its start, the newest K blocks are
        copied to its end (one copy every 2K + 2 steps), never into the last step's window: a step's outputs stay
        valid through the next step."""
        self._block -= 1
        k, d = self.history, self.base_dim
        if self._block < 0:  # in the kernel library: on the kernel's threads, with streaming stores
            n, stride, threads = self.env.num_envs, self.args.stride, self.threads or torch.get_num_threads()
            for ring in self.rings:
                end = ring[(self.ring_blocks - k) * d :]
                self.lib.quad_copy_rows(_ptr(end), _ptr(ring), k * d, n, stride, threads)
            self._block = self.ring_blocks - k - 1
        self._ring ^= 1
        rows = slice(self._block * d, (self._block + k + 1) * d)
        self.window, self.mirror = self.rings[self._ring][rows], self.rings[self._ring ^ 1][rows][:d]  # ((K + 1) D, N)
        self.critic, reward, flags = self._outputs[self._flip]
        self._flip ^= 1
        return reward, flags

    @property
    def groups(self) -> tuple[Tensor, Tensor]:
        """(N, (K + 1) D) policy (base observation and its history) and (N, C) critic views of the current outputs."""
        return self.window.T, self.critic.T

    def fill_history(self, ids: Tensor | None = None) -> None:
        """Give envs ``ids`` (int64; every env, in both rings, when None) their newest base observation in all K older
        blocks of the window: a new episode has no older measurement (as QuadrotorEnv._append_history). The kernel
        does this itself for the envs it resets in the pass, and for the other ring at the next step."""
        if self.history == 0:
            return
        shape = (self.history + 1, self.base_dim)
        if ids is None:
            rows = slice(self._block * self.base_dim, (self._block + self.history + 1) * self.base_dim)
            for ring in self.rings:
                blocks = ring[rows].unflatten(0, shape)
                blocks[1:] = blocks[:1]
            self._prev_done = None  # nothing left for the next step to fill
        elif ids.numel():
            blocks = self.window.unflatten(0, shape)
            blocks[1:, :, ids] = blocks[:1, :, ids]
