"""Action interfaces of the quadrotor: per-motor RPM, or collective thrust + body rates (CTBR).

CTBR runs a rate loop inside the simulator at the physics rate, as flight firmware does, using the *nominal*
parameters (the firmware does not know the randomized truth).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sim.action_spec import ActionSpec, uniform_spec
from sim.quadrotor.params import GRAVITY, QuadrotorParams

MOTOR_NAMES = ("m1", "m2", "m3", "m4")
INTERFACES = ("rpm", "ctbr")


def action_spec(interface: str, params: QuadrotorParams, max_body_rate: float = 12.0) -> ActionSpec:
    """The action semantics of ``interface`` for the nominal ``params``.

    rpm: a=0 is the nominal hover speed, a=+1 max_rpm; ctbr: a[0]=0 is the nominal hover thrust, a[0]=+1 max
    thrust; a[1:4] * max_body_rate (rad/s) are the body-rate setpoints.
    """
    if interface == "rpm":
        hover = params.hover_rpm
        return uniform_spec("rpm", MOTOR_NAMES, "rpm", hover, params.max_rpm - hover, params.min_rpm, params.max_rpm)
    if interface == "ctbr":
        hover = params.mass * GRAVITY
        top = params.max_thrust
        return ActionSpec(
            "ctbr",
            ("collective_thrust", "roll_rate", "pitch_rate", "yaw_rate"),
            ("N", "rad/s", "rad/s", "rad/s"),
            (hover, 0.0, 0.0, 0.0),
            (top - hover, max_body_rate, max_body_rate, max_body_rate),
            (4.0 * params.kf * params.min_rpm**2, -max_body_rate, -max_body_rate, -max_body_rate),
            (top, max_body_rate, max_body_rate, max_body_rate),
        )
    raise ValueError(f"unknown quadrotor action interface {interface!r}; expected one of {INTERFACES}")


def mixer_inverse(
    thrust: Tensor, tx: Tensor, ty: Tensor, tz: Tensor, arm: float, km: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rotor thrusts (N) that produce collective thrust (N) and body torques (N m); inverse of
    :func:`sim.quadrotor.dynamics.mixer_torques`."""
    a4 = 4.0 * arm / math.sqrt(2.0)
    t, x, y, z = 0.25 * thrust, tx / a4, ty / a4, tz / (4.0 * km)
    return t - x - y + z, t - x + y - z, t + x + y + z, t + x - y - z


def thrusts_to_rpm(forces: tuple[Tensor, ...], kf: float, min_rpm: float, max_rpm: float) -> tuple[Tensor, ...]:
    """Rotor thrusts (N) -> rotor speed commands (RPM) clipped to the motor's range."""
    return tuple(torch.sqrt(f.clamp_min(0.0) / kf).clamp(min_rpm, max_rpm) for f in forces)


def ctbr_rate_loop(
    thrust: Tensor,
    rate_cmd: tuple[Tensor, Tensor, Tensor],
    rate: tuple[Tensor, Tensor, Tensor],
    params: QuadrotorParams,
    gains: tuple[float, float, float],
) -> tuple[Tensor, ...]:
    """Rate controller + mixer: torques J * K * (w_cmd - w) + w x Jw, then per-motor RPM commands."""
    jx, jy, jz = params.inertia
    ex, ey, ez = rate_cmd[0] - rate[0], rate_cmd[1] - rate[1], rate_cmd[2] - rate[2]
    wx, wy, wz = rate
    tx = jx * gains[0] * ex + (wy * jz * wz - wz * jy * wy)
    ty = jy * gains[1] * ey + (wz * jx * wx - wx * jz * wz)
    tz = jz * gains[2] * ez + (wx * jy * wy - wy * jx * wx)
    forces = mixer_inverse(thrust, tx, ty, tz, params.arm_length, params.km)
    return thrusts_to_rpm(forces, params.kf, params.min_rpm, params.max_rpm)
