"""The torch step of the quadrotor env: the reference of every other backend, and the CUDA path.

One control step is two functions, each compiled into one loop nest where torch.compile is on (``compile``):
:meth:`TorchStep._advance_impl` (delayed action, physics substeps, rewards, terminations) and
:meth:`TorchStep._observe_impl` (noisy, delayed policy observations and the privileged critic state). Both work on
component-major (N,) rows. A part of :class:`sim.quadrotor.env.QuadrotorEnv`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sim.obs_terms import integrate_position_error
from sim.quadrotor import terms
from sim.quadrotor.actions import ctbr_rate_loop
from sim.quadrotor.config import SUBSTEP_LATENCY
from sim.quadrotor.dynamics import physics_step, rotation_rows, step_coeffs
from sim.quadrotor.rewards import penalty_sum
from sim.quadrotor.trajectory import reference
from sim.rng import table_normal


class TorchStep:
    """Step methods of :class:`~sim.quadrotor.env.QuadrotorEnv` (read its cfg, parameter rows, specs and interval
    groups; the state arrives as arguments)."""

    def _advance_impl(self, b, params, traj, raw_actions, older_actions, last_action, episode_len, episode_return):
        cfg, r, spec = self.cfg, self.param_rows, self.action_spec
        actions = clean_action(raw_actions)  # (4, N)
        line, latency = [tuple(actions), *older_actions], params[r["action_latency"]][0]
        applied = delay_select(line, latency)
        # the first `late` substeps still run the previous step's command (latency between whole steps)
        previous, late = delay_select(line, latency + 1), params[r[SUBSTEP_LATENCY]][0]
        phys, imp = self.phys_params(params), self.imperfections(params)
        coeffs = step_coeffs(phys, cfg.physics_dt, imp)
        force = tuple(params[r["disturbance_force"]].unbind(0))
        torque = tuple(params[r["disturbance_torque"]].unbind(0))
        if cfg.action_interface == "rpm":
            now, before = (
                [(spec.offset[i] + spec.scale[i] * a[i]).clamp(min=spec.low[i]).minimum(phys.max_rpm) for i in range(4)]
                for a in (applied, previous)
            )
        for sub in range(cfg.physics_substeps):
            held = late > sub
            if cfg.action_interface == "rpm":
                cmd = [torch.where(held, old, new) for old, new in zip(before, now)]
            else:
                a = [torch.where(held, old, new) for old, new in zip(previous, applied)]
                thrust = spec.offset[0] + spec.scale[0] * a[0]
                rates = tuple(spec.scale[i] * a[i] for i in (1, 2, 3))
                cmd = [
                    c.minimum(phys.max_rpm)
                    for c in ctbr_rate_loop(thrust, rates, (b.wx, b.wy, b.wz), cfg.params, cfg.rate_gains)
                ]
            b = physics_step(b, tuple(cmd), phys, coeffs, force, torque, cfg.physics_dt, imp)
        episode_len = episode_len + 1
        ref_pos, ref_vel = self._reference(traj, episode_len)
        pos, vel = torch.stack([b.px, b.py, b.pz]), torch.stack([b.vx, b.vy, b.vz])
        ang = torch.stack([b.wx, b.wy, b.wz])
        rot_zz = 1.0 - 2.0 * (b.qx * b.qx + b.qy * b.qy)
        w = cfg.reward
        quantities = {
            "position": pos,
            "reference_position": ref_pos,
            "velocity_error": vel - ref_vel,
            "angular_velocity": ang,
            "rot_zz": rot_zz,
            "action": actions,
            "last_action": torch.stack(last_action),
        }
        penalty = penalty_sum(w.terms, quantities)  # the declared terms, in order
        reward = terms.alive_exp(penalty, w.alive)
        t = cfg.termination
        limits = (t.position_m, t.speed_m_s, t.angular_velocity_rad_s, t.floor_m)
        terminated = terms.failure_any(pos - ref_pos, vel, ang, b.pz, limits)
        timeout = (episode_len >= self.max_episode_length) & ~terminated
        reward = torch.where(terminated, -w.termination, torch.nan_to_num(reward, nan=0.0)) * cfg.control_dt
        due = tuple((episode_len % steps == 0) & ~(terminated | timeout) for steps, _ in self._interval_groups)
        return (
            tuple(b),
            tuple(actions.unbind(0)),
            episode_len,
            episode_return + reward,
            reward,
            terminated,
            timeout,
            due,
        )

    def _observe_impl(self, b, params, traj, older_slots, last_action, episode_len, noise_table, counter, integral):
        cfg, r = self.cfg, self.param_rows
        n = b.px.shape[0]
        ref_pos, ref_vel = self._reference(traj, episode_len)
        true = {
            "position_error": (b.px - ref_pos[0], b.py - ref_pos[1], b.pz - ref_pos[2]),
            "rotation_matrix": rotation_rows(b.qw, b.qx, b.qy, b.qz),
            "linear_velocity": (b.vx, b.vy, b.vz),
            "angular_velocity": (b.wx, b.wy, b.wz),
        }
        if "reference_velocity" in self.base_obs_spec.names:
            true["reference_velocity"] = tuple(ref_vel.unbind(0))
        noise = table_normal(noise_table, counter, n)  # (N, D)
        scale = params[r["obs_noise_scale"]][0]
        sensed, j = [], 0
        for t in self.sensor_terms:
            std = params[r[f"obs_noise.{t.name}"]][0] * scale
            sensed.extend(v + noise[:, j + k] * std for k, v in enumerate(true[t.name]))
            j += t.size
        delay = torch.minimum(params[r["obs_latency"]][0], episode_len.float())
        delayed = delay_select([tuple(sensed), *older_slots], delay)
        values, j = {}, 0
        for t in self.sensor_terms:
            values[t.name], j = delayed[j : j + t.size], j + t.size
        values["last_action"] = last_action
        if "position_error_integral" in self.base_obs_spec.names:
            integral = integrate_position_error(integral, torch.stack(values["position_error"]), cfg.control_dt)
            values["position_error_integral"] = tuple(integral.unbind(0))
        columns = self.base_obs_spec.columns(values)
        critic_values = {
            "true_position_error": true["position_error"],
            "true_rotation_matrix": true["rotation_matrix"],
            "true_linear_velocity": true["linear_velocity"],
            "true_angular_velocity": true["angular_velocity"],
            "rotor_speed": tuple(x / cfg.params.max_rpm for x in (b.r1, b.r2, b.r3, b.r4)),
        }
        # One (policy + critic, N) buffer written in one vectorised pass; the groups are (N, D) transposed views of
        # it (a strided write of (N, D) costs several times more, and matmul reads transposed inputs natively).
        both = torch.stack(columns + self.critic_spec.columns(critic_values))
        return both, tuple(sensed), integral

    def _reference(self, traj: Tensor, episode_len: Tensor) -> tuple[Tensor, Tensor]:
        """(3, N) reference position and velocity; the hover reference is a constant (no trigonometry)."""
        if self.cfg.task_def.reference == "fixed":
            n = traj.shape[1]
            centre = torch.tensor([0.0, 0.0, self.cfg.termination.reference_height_m], device=traj.device)
            return centre[:, None].expand(3, n), torch.zeros(3, n, device=traj.device)
        return reference(traj, episode_len.float() * self.cfg.control_dt, self.cfg.termination.reference_height_m)


def _transpose(x: Tensor) -> Tensor:
    return x.T.contiguous()


def clean_action(a: Tensor) -> Tensor:
    """Non-finite actions become 0 (the hover command), the rest is clipped to [-1, 1]."""
    return torch.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0).clamp(-1.0, 1.0)


def delay_select(slots: list[Tensor], delay: Tensor) -> Tensor:
    """Per-env pick from a delay line: slots[k] holds the D (N,) components of k steps ago; delay (N,) whole
    steps (float or int). Returns D (N,) tensors."""
    out = list(slots[-1])
    for k in range(len(slots) - 2, -1, -1):
        pick = delay == k
        out = [torch.where(pick, new, old) for new, old in zip(slots[k], out)]
    return out
