"""Batched cascaded geometric controller for quadrotors: the classical baseline.

Position PID -> desired acceleration -> collective thrust and desired attitude (yaw 0) -> attitude P on SO(3)
(Lee et al. 2010 error) -> body-rate setpoints (CTBR interface) or, for per-motor RPM, an inner rate/attitude
PD -> torques -> mixer with the *nominal* parameters. It reads the same noisy, delayed policy observation an
RL policy gets, by term name, and returns normalized actions, so it runs in the same env and the same deploy
runtime as a learned policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec
from sim.quadrotor.actions import mixer_inverse, thrusts_to_rpm
from sim.quadrotor.params import GRAVITY, QuadrotorParams


@dataclass
class PIDGains:
    """Acceleration-level gains (independent of mass); attitude gains per unit inertia.

    Defaults per interface (:meth:`for_interface`) come from a random search that minimised the worst
    position RMS over the corners of the default randomization (inertia x0.7/x1.4, fastest/slowest motors,
    heavy/light thrust-to-weight, one step of action and observation latency), then refined on the whole
    distribution.
    """

    kp: tuple[float, float, float] = (9.0, 9.0, 22.0)  # 1/s^2
    kd: tuple[float, float, float] = (5.0, 5.0, 9.0)  # 1/s
    ki: tuple[float, float, float] = (3.4, 3.4, 12.0)  # 1/s^3
    integral_limit_m_s: float = 0.5  # bound on each integral of position error, m s
    max_tilt_rad: float = 0.6
    k_attitude: tuple[float, float, float] = (50.0, 50.0, 11.0)  # rpm: 1/s^2; ctbr: 1/s (rate setpoint per rad)
    k_rate: tuple[float, float, float] = (15.0, 15.0, 4.5)  # 1/s, rpm only

    @classmethod
    def for_interface(cls, interface: str) -> PIDGains:
        if interface == "ctbr":
            return cls(kp=(10.2, 10.2, 16.0), kd=(3.3, 3.3, 5.6), ki=(5.4, 5.4, 9.3), k_attitude=(5.2, 5.2, 2.2))
        return cls()


class QuadrotorPID:
    """Batched controller: ``act(obs (N, D)) -> normalized actions (N, 4)``. Keeps per-env integrators."""

    def __init__(
        self,
        obs_spec: ObsSpec,
        action_spec: ActionSpec,
        params: QuadrotorParams,
        control_dt: float,
        num_envs: int,
        device: str | torch.device = "cpu",
        gains: PIDGains | None = None,
    ):
        if action_spec.interface not in ("rpm", "ctbr"):
            raise ValueError(f"the quadrotor PID drives 'rpm' or 'ctbr' actions, not {action_spec.interface!r}")
        for name in ("position_error", "rotation_matrix", "linear_velocity", "angular_velocity"):
            obs_spec.term(name)  # raises a clear error when the observation lacks what the PID needs
        self.obs_spec, self.action_spec, self.params = obs_spec, action_spec, params
        self.dt = control_dt
        self.gains = gains or PIDGains.for_interface(action_spec.interface)
        self.device = torch.device(device)
        self.integral = torch.zeros(num_envs, 3, device=self.device)
        g = self.gains
        self._kp, self._kd, self._ki = (torch.tensor(v, device=self.device) for v in (g.kp, g.kd, g.ki))
        self._katt, self._krate = (torch.tensor(v, device=self.device) for v in (g.k_attitude, g.k_rate))
        self._inertia = torch.tensor(params.inertia, device=self.device)

    def reset(self, env_ids: Tensor | None = None) -> None:
        """Clear integrators (all envs, or ``env_ids``): call on episode reset."""
        if env_ids is None:
            self.integral.zero_()
        else:
            self.integral[env_ids] = 0.0

    def _term(self, obs: Tensor, name: str) -> Tensor:
        return obs[:, self.obs_spec.slice(name)] / self.obs_spec.term(name).scale

    @torch.no_grad()
    def act(self, obs: Tensor) -> Tensor:
        """obs: (N, D) policy observation -> (N, 4) normalized actions in [-1, 1]."""
        g, p = self.gains, self.params
        e_p = self._term(obs, "position_error")
        R = self._term(obs, "rotation_matrix").reshape(-1, 3, 3)
        v = self._term(obs, "linear_velocity")
        w = self._term(obs, "angular_velocity")
        e_v = v - self._term(obs, "reference_velocity") if "reference_velocity" in self.obs_spec.names else v
        self.integral = (self.integral + e_p * self.dt).clamp(-g.integral_limit_m_s, g.integral_limit_m_s)
        acc = -self._kp * e_p - self._kd * e_v - self._ki * self.integral
        # Limit the tilt of the commanded thrust direction.
        horiz_max = (acc[:, 2] + GRAVITY).clamp_min(0.2 * GRAVITY) * torch.tan(torch.tensor(g.max_tilt_rad))
        horiz = acc[:, :2]
        factor = (horiz_max / horiz.norm(dim=-1).clamp_min(1e-9)).clamp(max=1.0)
        a_des = torch.cat([horiz * factor[:, None], (acc[:, 2:] + GRAVITY).clamp_min(0.2 * GRAVITY)], dim=-1)
        b3 = R[:, :, 2]
        thrust = p.mass * (a_des * b3).sum(-1).clamp_min(0.0)
        b3_d = a_des / a_des.norm(dim=-1, keepdim=True)
        x_c = torch.tensor([1.0, 0.0, 0.0], device=obs.device).expand_as(b3_d)
        b2_d = torch.linalg.cross(b3_d, x_c)
        b2_d = b2_d / b2_d.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        b1_d = torch.linalg.cross(b2_d, b3_d)
        R_d = torch.stack([b1_d, b2_d, b3_d], dim=-1)
        E = R_d.transpose(1, 2) @ R - R.transpose(1, 2) @ R_d
        e_R = 0.5 * torch.stack([E[:, 2, 1], E[:, 0, 2], E[:, 1, 0]], dim=-1)
        spec = self.action_spec
        offset = torch.tensor(spec.offset, device=obs.device)
        scale = torch.tensor(spec.scale, device=obs.device)
        if spec.interface == "ctbr":
            rates = -self._katt * e_R
            physical = torch.cat([thrust[:, None], rates], dim=-1)
        else:
            J = self._inertia
            torque = J * (-self._katt * e_R - self._krate * w) + torch.linalg.cross(w, J * w)
            forces = mixer_inverse(thrust, torque[:, 0], torque[:, 1], torque[:, 2], p.arm_length, p.km)
            physical = torch.stack(thrusts_to_rpm(forces, p.kf, p.min_rpm, p.max_rpm), dim=-1)
        return ((physical - offset) / scale).clamp(-1.0, 1.0)
