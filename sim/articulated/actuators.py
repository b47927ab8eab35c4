"""Actuator models: joint torques from position targets, as the motor drivers of real robots produce them.

Pure torch functions (any leading batch shape; gains and limits broadcast against the joints axis) plus
:class:`JointActuators`, which holds per-env gain and strength factors and a per-env latency line, for a task that
computes torques at every physics step and sends them to the engine (motor actuators with gear 1)::

    act = JointActuators(kp, kd, effort_limit, num_envs, device, model="dc_motor", stall_torque=33.5,
                         max_velocity=21.0, max_delay=6)
    for _ in range(decimation):
        engine.step(act.torque(q_target, q, qd), substeps=1)

Non-finite inputs: a NaN in a target, position or velocity gives zero torque on that joint (a motor driver
rejecting a corrupt command), +-inf saturates at the torque limit with its sign. Units: rad, rad/s, N m.
"""

from __future__ import annotations

import torch

ACTUATOR_MODELS = ("ideal_pd", "dc_motor")


def _saturate(tau: torch.Tensor, low: torch.Tensor | float, high: torch.Tensor | float) -> torch.Tensor:
    """Clip to [low, high] with NaN -> 0 (then clipped) and +-inf -> the bound of its sign."""
    return torch.clamp(torch.nan_to_num(tau, nan=0.0), low, high)


def pd_torque(
    q_target: torch.Tensor, q: torch.Tensor, qd: torch.Tensor, kp: torch.Tensor | float, kd: torch.Tensor | float
) -> torch.Tensor:
    """Unclipped PD torque kp (q_target - q) - kd qd. q_target, q: (..., J) rad; qd: (..., J) rad/s;
    kp: N m/rad, kd: N m s/rad, broadcast to (..., J). Returns (..., J) N m (NaN/inf pass through)."""
    return kp * (q_target - q) - kd * qd


def ideal_pd_torque(
    q_target: torch.Tensor,
    q: torch.Tensor,
    qd: torch.Tensor,
    kp: torch.Tensor | float,
    kd: torch.Tensor | float,
    effort_limit: torch.Tensor | float,
) -> torch.Tensor:
    """PD torque clipped to +-effort_limit (N m, broadcast to (..., J)). Returns (..., J) N m, always finite."""
    limit = torch.as_tensor(effort_limit, dtype=q.dtype, device=q.device)
    return _saturate(pd_torque(q_target, q, qd, kp, kd), -limit, limit)


def dc_motor_limits(
    qd: torch.Tensor,
    stall_torque: torch.Tensor | float,
    max_velocity: torch.Tensor | float,
    effort_limit: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torque-speed envelope of a DC motor at joint velocity qd (..., J) rad/s.

    Upper bound tau_stall (1 - qd/qd_max) clipped to [0, effort_limit]; lower bound tau_stall (-1 - qd/qd_max)
    clipped to [-effort_limit, 0] (Isaac Lab's DCMotor envelope). At rest the motor gives +-min(stall, limit);
    driven forward at qd_max it can no longer push forward but brakes with up to the limit. A NaN velocity gives
    the bounds (0, 0): no torque until the measurement is sane. Returns (low, high), each (..., J) N m.
    """
    stall = torch.as_tensor(stall_torque, dtype=qd.dtype, device=qd.device)
    vmax = torch.as_tensor(max_velocity, dtype=qd.dtype, device=qd.device)
    limit = torch.as_tensor(effort_limit, dtype=qd.dtype, device=qd.device)
    ratio = torch.nan_to_num(qd / vmax, nan=0.0)
    sane = ~torch.isnan(qd)
    high = torch.where(sane, torch.clamp(stall * (1.0 - ratio), torch.zeros_like(limit), limit), 0.0)
    low = torch.where(sane, torch.clamp(stall * (-1.0 - ratio), -limit, torch.zeros_like(limit)), 0.0)
    return low, high


def dc_motor_torque(
    tau: torch.Tensor,
    qd: torch.Tensor,
    stall_torque: torch.Tensor | float,
    max_velocity: torch.Tensor | float,
    effort_limit: torch.Tensor | float,
) -> torch.Tensor:
    """Desired torque tau (..., J) N m clipped to the DC motor envelope at velocity qd (see :func:`dc_motor_limits`)."""
    low, high = dc_motor_limits(qd, stall_torque, max_velocity, effort_limit)
    return _saturate(tau, low, high)


class DelayLine:
    """Per-env delay of a (N, D) signal by an integer number of pushes (physics or control steps: one per push).

    delay (N,) int in [0, max_delay]. ``push(x)`` stores x and returns what each env pushed ``delay`` pushes ago.
    ``reset(env_ids, value)`` fills those envs' history with value (n, D), so a fresh episode never reads the
    previous one's commands.
    """

    def __init__(self, num_envs: int, dim: int, max_delay: int, device: str | torch.device, dtype=torch.float32):
        if int(max_delay) < 0:
            raise ValueError(f"max_delay must be >= 0 steps, got {max_delay}")
        self.max_delay = int(max_delay)
        self.buffer = torch.zeros(self.max_delay + 1, num_envs, dim, device=device, dtype=dtype)
        self.delay = torch.zeros(num_envs, dtype=torch.long, device=device)
        self._head = 0
        self._envs = torch.arange(num_envs, device=device)

    def set_delay(self, delay: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        """delay: (N,) or (n,) for env_ids, integer steps in [0, max_delay]."""
        delay = torch.as_tensor(delay, device=self.delay.device)
        if bool(((delay < 0) | (delay > self.max_delay) | (delay != torch.round(delay))).any()):
            raise ValueError(f"delays must be integers in [0, {self.max_delay}] steps, got {delay.tolist()}")
        if env_ids is None:
            self.delay.copy_(delay.to(torch.long))
        else:
            self.delay[env_ids] = delay.to(torch.long)

    def reset(self, env_ids: torch.Tensor, value: torch.Tensor) -> None:
        """Fill the history of envs env_ids (n,) with value (n, D)."""
        self.buffer[:, env_ids] = value.to(self.buffer)

    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Store x (N, D) and return the delayed signal (N, D)."""
        if x.shape != self.buffer.shape[1:]:
            raise ValueError(f"expected a signal of shape {tuple(self.buffer.shape[1:])}, got {tuple(x.shape)}")
        self._head = (self._head + 1) % self.buffer.shape[0]
        self.buffer[self._head] = x
        slot = (self._head - self.delay) % self.buffer.shape[0]
        return self.buffer[slot, self._envs]


class JointActuators:
    """Position-target actuators of J joints in N envs: delayed targets -> PD -> motor envelope -> torque.

    kp, kd, effort_limit: (J,) nominal gains (N m/rad, N m s/rad) and torque limits (N m). model "ideal_pd" clips
    at the effort limit; "dc_motor" also applies the torque-speed envelope (stall_torque N m, max_velocity rad/s).
    Per-env factors (randomized by the task): ``kp_scale``, ``kd_scale`` and ``strength`` (N, J), default 1 (scales
    the torque envelope: stall torque, and the effort limit up to its rated value, never beyond);
    ``delay``: the target's latency in pushes (calls of :meth:`torque`), set with :meth:`set_delay`.
    """

    def __init__(
        self,
        kp: torch.Tensor,
        kd: torch.Tensor,
        effort_limit: torch.Tensor,
        num_envs: int,
        device: str | torch.device,
        model: str = "ideal_pd",
        stall_torque: torch.Tensor | float | None = None,
        max_velocity: torch.Tensor | float | None = None,
        max_delay: int = 0,
    ):
        if model not in ACTUATOR_MODELS:
            raise ValueError(f"unknown actuator model {model!r}; expected one of {ACTUATOR_MODELS}")
        if model == "dc_motor" and (stall_torque is None or max_velocity is None):
            raise ValueError("actuator model 'dc_motor' needs stall_torque (N m) and max_velocity (rad/s)")
        self.device = torch.device(device)
        self.kp = torch.as_tensor(kp, dtype=torch.float32, device=self.device).reshape(-1)
        joints = self.kp.numel()
        self.kd = self._joint_vector("kd", kd, joints)
        self.effort_limit = self._joint_vector("effort_limit", effort_limit, joints)
        self.model = model
        if model == "dc_motor":
            self.stall_torque = self._joint_vector("stall_torque", stall_torque, joints)
            self.max_velocity = self._joint_vector("max_velocity", max_velocity, joints)
            if bool((self.max_velocity <= 0).any()):
                raise ValueError(f"max_velocity must be > 0 rad/s, got {self.max_velocity.tolist()}")
        ones = torch.ones(num_envs, joints, device=self.device)
        self.kp_scale, self.kd_scale, self.strength = ones.clone(), ones.clone(), ones.clone()
        self.targets = DelayLine(num_envs, joints, max_delay, self.device)

    def _joint_vector(self, what: str, value, joints: int) -> torch.Tensor:
        v = torch.as_tensor(value, dtype=torch.float32, device=self.device).reshape(-1)
        if v.numel() == 1:
            v = v.expand(joints).clone()
        if v.numel() != joints:
            raise ValueError(f"{what} must have one value or one per joint ({joints}), got {v.numel()}")
        return v

    def set_delay(self, delay: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        self.targets.set_delay(delay, env_ids)

    def reset(self, env_ids: torch.Tensor, q_target: torch.Tensor) -> None:
        """Fresh episodes for env_ids (n,): the latency line holds q_target (n, J), the pose they start from."""
        self.targets.reset(env_ids, q_target)

    def torque(self, q_target: torch.Tensor, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        """Joint torques (N, J) N m for targets q_target (N, J) rad at q (N, J) rad, qd (N, J) rad/s."""
        target = self.targets.push(q_target.to(self.kp))
        q, qd = q.to(self.kp), qd.to(self.kp)
        # a motor stronger than nominal (strength > 1: a higher torque constant) still stops at its rated torque, as the
        # drive's current limit does; the deploy safety layer trips above it (the SIL Go2 read 24.9 N m > 23.5)
        limit = self.effort_limit * self.strength.clamp(max=1.0)
        tau = pd_torque(target, q, qd, self.kp * self.kp_scale, self.kd * self.kd_scale)
        if self.model == "dc_motor":
            return dc_motor_torque(tau, qd, self.stall_torque * self.strength, self.max_velocity, limit)
        return _saturate(tau, -limit, limit)
