"""The one-pass C++ CPU kernel of the quadrotor step (``native_step.cpp``): what it computes, and driving it.

On CPU, torch.compile splits the step into several loop nests with ~100 (N,) intermediates between them, and at
65536 envs the step is bound by memory traffic; this kernel computes physics substeps, rewards, terminations and
observations for 16 envs (AVX-512) or 8 (AVX2) at a time in registers (see docs/ARCHITECTURE.md, "Simulator").
The torch step (``torch_step.py``) stays the reference (and the CUDA path); ``tests/sim/quadrotor/test_native.py``
checks they agree. Building and loading: :mod:`~sim.quadrotor.native_build`; the argument structs and buffer
layout: :mod:`~sim.quadrotor.native_args`; the observation history: :mod:`~sim.quadrotor.native_history`.

The kernel computes a fixed reward: ``alive * exp(-sum(weight * term))`` over :data:`KERNEL_REWARD_TERMS`, in that
order (the weights are arguments). :meth:`NativeStep.supports` refuses any other reward list (the env then runs
the torch step and logs why).
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

import torch
from torch import Tensor

from sim.obs_terms import POSITION_ERROR_INTEGRAL_LIMIT
from sim.quadrotor.config import SUBSTEP_LATENCY
from sim.quadrotor.native_args import MAX_DUE, MAX_SLOTS, SENSED, Args, ResetArgs, _ptr, padded_empty, padded_stride
from sim.quadrotor.native_build import load_kernel, widest
from sim.quadrotor.native_history import HistoryRing

__all__ = ["KERNEL_REWARD_TERMS", "NativeStep", "load_kernel", "padded_empty", "padded_stride", "widest"]

#: The penalty terms ``native_step.cpp`` computes (names of ``sim.quadrotor.rewards.PENALTY_TERMS``), in its order
#: of summation: position_error_norm, lin_vel_l2 of the velocity error, ang_vel_l2, tilt_cos, action_l2,
#: action_rate_l2. A config whose ``reward.terms`` lists exactly these (any weights) runs on the kernel.
KERNEL_REWARD_TERMS = ("position", "velocity", "angular_velocity", "tilt", "action", "action_rate")
SENSOR_LAYOUT = (("position_error", 3), ("rotation_matrix", 9), ("linear_velocity", 3), ("angular_velocity", 3))
CRITIC_LAYOUT = (
    ("true_position_error", 3),
    ("true_rotation_matrix", 9),
    ("true_linear_velocity", 3),
    ("true_angular_velocity", 3),
    ("rotor_speed", 4),
)


class NativeStep(HistoryRing):
    """Drives the kernel for one env; buffers are the env's own tensors (state rows are views of ``state``).

    state: (17, N); params: (P, N); act_slots: max(S, 2) (4, N) buffers (slot 0 = the last action, the last one
    is recycled for the new action); obs_slots: the observation latency's bound + 1 (18, N) buffers (the last one is
    recycled for the new sensed values).
    Outputs: the policy group (base observation and its K-step history) is a view of one of two history rings
    (:meth:`advance_outputs`), the critic rows, rewards and flags alternate between two buffers. The env's own
    buffers (params, episode length and return) are re-read at every call: rsl_rl reassigns ``episode_length_buf``.
    ``lib`` may be swapped for the kernel of the other width (``load_kernel(8)``) between calls: both compute the
    same function on the same buffers.
    """

    def __init__(self, lib: ctypes.CDLL, env, state: Tensor, act_slots: list[Tensor], obs_slots: list[Tensor]):
        cfg, r = env.cfg, env.param_rows
        self.lib, self.env = lib, env
        self.state, self.act_slots, self.obs_slots = state, act_slots, obs_slots
        # Row views of the delay-line buffers, made once and rotated with them (views cost ~1 us each).
        self.act_views = [tuple(s) for s in act_slots]
        self.obs_views = [tuple(s) for s in obs_slots]
        a = Args()
        a.n, a.substeps, a.max_len = env.num_envs, cfg.physics_substeps, env.max_episode_length
        a.stride = padded_stride(env.num_envs)
        for t in (state, *act_slots, *obs_slots):
            if t.stride() != (a.stride, 1):
                raise ValueError(f"native buffers need row stride {a.stride} (padded_empty), got {t.stride()}")
        a.act_slots, a.obs_slots = env.latency_slots, len(obs_slots)
        from sim import rng

        a.table_rows, a.env_stride, a.step_stride = env.noise_table.shape[0], rng._ENV_STRIDE, rng._STEP_STRIDE
        for field, name, k in (
            ("row_mass", "mass", 0), ("row_jx", "inertia", 0), ("row_jy", "inertia", 1), ("row_jz", "inertia", 2),
            ("row_kf", "kf", 0), ("row_km", "km", 0), ("row_tau_up", "motor_tau_up", 0),
            ("row_tau_down", "motor_tau_down", 0), ("row_dx", "drag", 0), ("row_dy", "drag", 1),
            ("row_dz", "drag", 2), ("row_max_rpm", "max_rpm", 0), ("row_act_lat", "action_latency", 0),
            ("row_obs_lat", "obs_latency", 0), ("row_noise_scale", "obs_noise_scale", 0),
            ("row_fx", "disturbance_force", 0), ("row_fy", "disturbance_force", 1),
            ("row_fz", "disturbance_force", 2), ("row_tx", "disturbance_torque", 0),
            ("row_ty", "disturbance_torque", 1), ("row_tz", "disturbance_torque", 2),
            ("row_ks1", "motor_kf_scale", 0), ("row_ks2", "motor_kf_scale", 1), ("row_ks3", "motor_kf_scale", 2),
            ("row_ks4", "motor_kf_scale", 3), ("row_ts1", "motor_tau_scale", 0), ("row_ts2", "motor_tau_scale", 1),
            ("row_ts3", "motor_tau_scale", 2), ("row_ts4", "motor_tau_scale", 3), ("row_curve", "thrust_curve", 0),
            ("row_sag", "battery_sag", 0), ("row_ground", "ground_effect", 0), ("row_comx", "com_offset", 0),
            ("row_comy", "com_offset", 1), ("row_sub_lat", SUBSTEP_LATENCY, 0),
        ):  # fmt: skip
            setattr(a, field, r[name].start + k)
        j = 0
        for name, size in SENSOR_LAYOUT:
            for _ in range(size):
                a.row_std[j] = r[f"obs_noise.{name}"].start
                j += 1
        a.n_due = len(env._interval_groups)
        for d, (period, _) in enumerate(env._interval_groups):
            a.due_period[d] = period
        from sim.quadrotor.params import GRAVITY

        a.dt, a.arm, a.gravity, a.control_dt = cfg.physics_dt, cfg.params.arm_length, GRAVITY, cfg.control_dt
        a.ref_height, a.nominal_max_rpm = cfg.termination.reference_height_m, cfg.params.max_rpm
        spec = env.action_spec
        for m in range(4):
            a.offset[m], a.scale[m], a.low[m] = spec.offset[m], spec.scale[m], spec.low[m]
        w, t = cfg.reward.terms, cfg.termination
        a.w_alive, a.w_term = cfg.reward.alive, cfg.reward.termination
        a.w_pos, a.w_vel, a.w_ang, a.w_tilt = w["position"], w["velocity"], w["angular_velocity"], w["tilt"]
        a.w_act, a.w_rate = w["action"], w["action_rate"]
        a.lim_pos, a.lim_speed, a.lim_rate, a.floor = t.position_m, t.speed_m_s, t.angular_velocity_rad_s, t.floor_m
        for j, s in enumerate(env.base_obs_spec.scales()):
            a.policy_scale[j] = s
        # position_error_integral: double-buffered (3, N); integral[0] is the state after the last completed step.
        a.n_integral = 3 if "position_error_integral" in env.base_obs_spec.names else 0
        a.integral_limit = POSITION_ERROR_INTEGRAL_LIMIT
        self.integral = [padded_empty(3, env.num_envs).zero_() for _ in range(2)]
        self._init_history(env, a)  # the policy group's rings (native_history)
        for j, s in enumerate(env.critic_spec.scales()[:SENSED]):
            a.critic_scale[j] = s
        # In-pass resets (step_and_reset): fixed scratch and report buffers, bound once.
        n = env.num_envs
        self.chunk_count = torch.zeros(-(-n // lib.quad_chunk_envs()), dtype=torch.long)
        self.counts = (ctypes.c_int64 * (2 + MAX_DUE))()
        self.done_ids, self.done_len = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
        self.done_return, self.done_term = torch.empty(n), torch.empty(n, dtype=torch.bool)
        a.chunk_count, a.counts = _ptr(self.chunk_count), ctypes.addressof(self.counts)
        a.done_ids, a.done_len = _ptr(self.done_ids), _ptr(self.done_len)
        a.done_return, a.done_term = _ptr(self.done_return), _ptr(self.done_term)
        a.n_act_buf = len(act_slots)
        for k, buf in enumerate(act_slots):
            a.act_buf[k] = _ptr(buf)
        # The kernel's own timers: wall seconds of the physics and of the observation pass, summed over every step.
        self.pass_seconds = (ctypes.c_double * 2)()
        a.pass_seconds = ctypes.addressof(self.pass_seconds)
        self.args = a
        self.inline_resets = True  # False: the earlier path (eager resets, then re-observe), kept as a reference
        self.threads = 0  # the kernel's OpenMP threads (0: torch.get_num_threads(); see serial_torch)
        self._outputs = [self._new_outputs() for _ in range(2)]
        self._flip = 0
        self._bound: tuple = ()
        self.advance_outputs()

    def pass_times(self) -> tuple[float, float]:
        """Wall seconds of the kernel's physics pass (delayed action, substeps, rewards, terminations) and of its
        observation pass (noise, delay, observation groups, in-pass resets), each summed over every step so far:
        where a step's time goes (the rest of :meth:`QuadrotorEnv.step` is Python and eager torch ops)."""
        return self.pass_seconds[0], self.pass_seconds[1]

    def bytes_per_env(self) -> int:
        """Bytes one env's step moves at the least: every buffer the kernel reads or writes, once per pass that
        touches it (the noise row as its 72 bytes; no read for ownership, no cache line shared with other envs). Over
        the host's memory bandwidth, the step's memory floor (``benchmarks/sim_throughput.py``)."""
        a, env = self.args, self.env
        act_slots, obs_slots, d = int(a.act_slots), int(a.obs_slots), env.base_obs_spec.dim
        std_rows = len(set(a.row_std)) + 2  # the noise stds, their scale and the observation latency
        observed = ("row_std", "row_obs_lat", "row_noise_scale")
        param_rows = sum(f.startswith("row_") and f not in observed for f, _ in Args._fields_)  # the physics' rows
        # state read and written, parameters, action, its delay line, the clean action, episode length (int64) and
        # return read and written, reward
        physics = 2 * 17 + param_rows + 4 + 4 * (act_slots - 1) + 4 + 2 * 2 + 2 + 1
        # state, noise row, noise stds, newest action, observation delay line, sensed values, episode length,
        # position-error integral read and written
        observe = 17 + SENSED + std_rows + 4 + SENSED * (obs_slots - 1) + SENSED + 2 + 2 * int(a.n_integral)
        outputs = d * (2 if self.history else 1) + env.critic_spec.dim  # base observation (and mirror), critic
        flags = 3 + int(a.n_due)  # bytes: terminated, timeout, done, one per interval group
        return 4 * (physics + observe + outputs) + flags

    @contextlib.contextmanager
    def serial_torch(self) -> Iterator[None]:
        """Run the step's eager torch ops (reset-pool draws, interval draws, episode logs) on one thread; the kernel
        keeps the caller's thread count. Each of those small ops is a parallel region that waits for torch's second
        worker to be scheduled: with the other core busy (another process, a vCPU the hypervisor runs late) a
        32768-reset pool draw took 390 ms instead of 8 ms on one thread (2 vCPUs, measured)."""
        threads = self.threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            self.threads = 0
            if threads > 1:
                torch.set_num_threads(threads)

    @staticmethod
    def supports(env) -> str | None:
        """None if the kernel computes this env's step, else the reason it does not."""
        cfg = env.cfg
        if env.device.type != "cpu":
            return f"device {env.device} (the kernel is for CPU)"
        if cfg.task_def.reference != "fixed" or cfg.action_interface != "rpm":
            return (
                f"task {cfg.task!r} ({cfg.task_def.reference} reference) with {cfg.action_interface!r} actions "
                "(the kernel does a fixed reference with rpm)"
            )
        if tuple(cfg.reward.terms) != KERNEL_REWARD_TERMS:
            return (
                f"reward terms {list(cfg.reward.terms)} (the kernel computes exactly {list(KERNEL_REWARD_TERMS)}, "
                "in this order, with any weights)"
            )
        if env.latency_slots > MAX_SLOTS or len(env._interval_groups) > MAX_DUE:
            return f"more than {MAX_SLOTS - 1} latency steps or {MAX_DUE} interval groups"
        sensors = tuple((t.name, t.size) for t in env.sensor_terms)
        computed = tuple(t.name for t in env.base_obs_spec.terms[len(sensors) :])
        if sensors != SENSOR_LAYOUT or computed not in (("last_action",), ("last_action", "position_error_integral")):
            return f"policy observation layout {env.base_obs_spec.names}"
        if tuple((t.name, t.size) for t in env.critic_spec.terms) != CRITIC_LAYOUT:
            return f"critic observation layout {env.critic_spec.names}"
        if env.params.dtype != torch.float32 or env.noise_table.shape[1] != SENSED:
            return "parameter or noise table layout"
        return None

    def _common(self, counter: int) -> None:
        a, env = self.args, self.env
        if env.episode_length_buf.dtype != torch.long or not env.episode_length_buf.is_contiguous():
            env.episode_length_buf = env.episode_length_buf.to(torch.long).contiguous()
        if env.params.stride(1) != 1:
            raise ValueError("env.params must keep unit stride along envs (write into it in place)")
        a.pstride = env.params.stride(0)
        for name in ("episode_return", "noise_table"):
            if not getattr(env, name).is_contiguous():
                raise ValueError(f"env.{name} must stay a contiguous tensor (write into it in place)")
        a.state, a.params, a.noise_table = _ptr(self.state), _ptr(env.params), _ptr(env.noise_table)
        a.ep_len, a.ep_return = _ptr(env.episode_length_buf), _ptr(env.episode_return)
        a.num_threads = self.threads or torch.get_num_threads()
        a.counter = counter
        a.obs_out, a.critic_out = _ptr(self.window), _ptr(self.critic)
        a.obs_mirror = _ptr(self.mirror) if self.history else None
        for k, slot in enumerate(self.obs_slots[:-1]):
            a.obs_slot[k] = _ptr(slot)
        a.obs_new = _ptr(self.obs_slots[-1])  # the oldest slot is recycled for this step's sensed values
        a.integral_prev, a.integral_new = _ptr(self.integral[0]), _ptr(self.integral[1])

    def _new_outputs(self) -> tuple[Tensor, Tensor, Tensor]:
        n = self.env.num_envs
        critic = padded_empty(self.env.critic_spec.dim, n)
        return critic, torch.empty(n), torch.empty(3 + self.args.n_due, n, dtype=torch.bool)

    def _launch(self, actions: Tensor, counter: int, reward: Tensor, flags: Tensor) -> None:
        a = self.args
        self._common(counter)
        a.prev_done = None if self._prev_done is None else _ptr(self._prev_done)
        self._prev_done = flags[2]  # the done flags; the buffer is rewritten two steps later
        a.actions = _ptr(actions)
        for k, slot in enumerate(self.act_slots[: a.act_slots - 1]):
            a.act_slot[k] = _ptr(slot)
        a.act_prev, a.act_new = _ptr(self.act_slots[0]), _ptr(self.act_slots[-1])
        a.reward, a.terminated, a.timeout, a.done = _ptr(reward), _ptr(flags[0]), _ptr(flags[1]), _ptr(flags[2])
        for d in range(a.n_due):
            a.due[d] = _ptr(flags[3 + d])
        self.lib.quad_step(ctypes.byref(a))
        self.act_slots.insert(0, self.act_slots.pop())
        self.act_views.insert(0, self.act_views.pop())

    def step(self, actions: Tensor, counter: int) -> tuple[Tensor, ...]:
        """Advance one control step. actions: (N, 4) float32 contiguous. Returns (reward, terminated, timeout, done,
        due (G, N) bool); the observations are :attr:`groups`. Resets are the caller's (:meth:`reset`, then
        :meth:`observe` and :meth:`fill_history` of the reset envs); call :meth:`rotate` after."""
        reward, flags = self.advance_outputs()
        self.args.reset_inline = 0
        self._launch(actions, counter, reward, flags)
        return reward, flags[0], flags[1], flags[2], flags[3:]

    def step_and_reset(
        self,
        actions: Tensor,
        counter: int,
        pool: tuple[Tensor, Tensor, int],
        rows: Tensor,
        privileged: tuple[Tensor, Tensor, Tensor, Tensor] | None,
    ) -> tuple[Tensor, ...]:
        """One control step in which the kernel also resets the envs that finished (as :meth:`reset` would with the
        next pool draws, in ascending env order) and writes their new episodes' first observations.

        pool: (parameter draws (len(rows), P), state offsets (13, P), index of the next unused draw); rows: the
        drawn parameter rows (int64); privileged: as in :meth:`reset`, or None (the caller refreshes it).
        Returns (reward, terminated, timeout, done, due) as :meth:`step` (the tensors of a step stay valid through
        the next step); :attr:`groups` are the policy (with its history) and critic views of this step's
        observations. Then read :attr:`counts`: [0] envs finished, [1] 1 if
        they were reset (0: the pool was short; refill it and call :meth:`reset_finished`), [2 + d] envs due in
        interval group d. :meth:`finished` gives the finished envs' ids and episode statistics."""
        reward, flags = self.advance_outputs()
        self._bind_pool(pool, rows, privileged)
        self.args.reset_inline = 1
        self._launch(actions, counter, reward, flags)
        return reward, flags[0], flags[1], flags[2], flags[3:]

    def reset_finished(self, pool: tuple[Tensor, Tensor, int]) -> None:
        """Reset the envs that finished in the last :meth:`step_and_reset` from ``pool`` (after it reported a short
        pool and the caller drew a new one)."""
        self._bind_pool(pool, *self._bound[2:])
        self.lib.quad_reset_done(ctypes.byref(self.args))

    def finished(self, count: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The last step's finished envs (ascending) and, before their reset, their episode return, length (steps)
        and failure flag; views of buffers the next step rewrites."""
        return self.done_ids[:count], self.done_return[:count], self.done_len[:count], self.done_term[:count]

    def _bind_pool(self, pool: tuple[Tensor, Tensor, int], rows: Tensor, privileged) -> None:
        a = self.args
        params, offsets, first = pool
        if len(self._bound) and all(x is y for x, y in zip(self._bound, (params, offsets, rows, privileged))):
            a.pool_next, a.pool_left = first, offsets.shape[1] - first  # same buffers as the last step
            return
        for t in (params, offsets):
            if t.dtype != torch.float32 or (t.numel() and t.stride(-1) != 1):
                raise ValueError("the reset pool must be float32 with unit stride along draws")
        if rows.dtype != torch.long or not rows.is_contiguous() or rows.numel() != params.shape[0]:
            raise ValueError(f"reset rows must be contiguous int64, one per pool row ({params.shape[0]})")
        a.pool_next, a.pool_left = first, offsets.shape[1] - first
        a.pool_state, a.pool_sstride = _ptr(offsets), offsets.stride(0)
        a.nprow, a.prow = rows.numel(), _ptr(rows)
        a.pool_params = _ptr(params) if rows.numel() else None
        a.pool_pstride = params.stride(0) if rows.numel() else 0
        if privileged is None:
            a.priv, a.npriv = None, 0
        else:
            out, prow, div, mul = privileged
            if not out.is_contiguous() or out.dtype != torch.float32:
                raise ValueError("the privileged buffer must be a contiguous float32 (N, C) tensor")
            a.priv, a.npriv = _ptr(out), out.shape[1]
            a.priv_row, a.priv_div, a.priv_mul = _ptr(prow), _ptr(div), _ptr(mul)
        self._bound = (params, offsets, rows, privileged)  # the kernel reads them: keep them alive

    def observe(self, counter: int, ids: Tensor | None = None) -> None:
        """Write the observations (and this step's sensed values) of every env, or of ``ids`` (int64), into the
        current outputs (the newest block of :attr:`window` and the critic rows)."""
        a = self.args
        self._common(counter)
        a.act_new = _ptr(self.act_slots[0])  # observations carry the newest action
        if ids is None:
            self.lib.quad_observe(ctypes.byref(a), None, 0)
        elif ids.numel():
            ids = ids.contiguous()
            self.lib.quad_observe(ctypes.byref(a), _ptr(ids), ids.numel())

    def reset(
        self,
        ids: Tensor,
        rows: Tensor,
        values: Tensor,
        offsets: Tensor,
        privileged: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    ) -> None:
        """New episodes for ``ids`` (int64): parameter ``rows`` (int64) get ``values`` (len(rows), n), the state the
        hover reference plus ``offsets`` (13, n: position, velocity, quaternion, body rates) and rotors at hover
        speed; action delay lines and episode buffers are zeroed. Same result as the torch path of _reset_idx.
        privileged: (out (N, C) contiguous, rows (C,) int64, div (C,), mul (C,) float32): also write
        ``out[e, c] = params[rows[c], e] / div[c] * mul[c]`` (QuadrotorEnv._refresh_privileged)."""
        n = ids.numel()
        if n == 0:
            return
        for t in (values, offsets):
            if t.stride(-1) != 1 or t.dtype != torch.float32:
                raise ValueError("reset values must be float32 with unit stride along envs")
        ids, rows = ids.contiguous(), rows.contiguous()
        self._common(0)  # refresh the env's buffer pointers
        r = ResetArgs()
        r.count, r.nprow, r.nact = n, rows.numel(), len(self.act_slots)
        r.pv_stride, r.sv_stride = values.stride(0) if values.dim() == 2 and rows.numel() else 0, offsets.stride(0)
        r.ids, r.prow, r.svals = _ptr(ids), _ptr(rows), _ptr(offsets)
        r.pvals = _ptr(values) if rows.numel() else None
        for k, buf in enumerate(self.act_slots):
            r.act[k] = _ptr(buf)
        if privileged is not None:
            out, prow, div, mul = privileged
            if not out.is_contiguous() or out.dtype != torch.float32:
                raise ValueError("the privileged buffer must be a contiguous float32 (N, C) tensor")
            r.priv, r.npriv = _ptr(out), out.shape[1]
            r.priv_row, r.priv_div, r.priv_mul = _ptr(prow), _ptr(div), _ptr(mul)
        self.lib.quad_reset(ctypes.byref(self.args), ctypes.byref(r))

    def rotate(self) -> None:
        """Make this step's sensed values the newest slot of the observation delay line (and its integral the
        current one)."""
        self.integral.reverse()
        self.obs_slots.insert(0, self.obs_slots.pop())
        self.obs_views.insert(0, self.obs_views.pop())
