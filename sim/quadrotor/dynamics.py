"""Batched 6-DoF quadrotor dynamics in structure-of-arrays form.

State is a (17, N) tensor whose rows are named in :data:`STATE_ROWS`; every function here takes and returns
per-component (N,) tensors so that ``torch.compile`` fuses a whole step into one vectorised loop.
Integration per physics step ``dt``:
- motors: first-order lag with separate rise/fall time constants, discretised exactly (alpha = 1 - exp(-dt/tau));
- with :class:`Imperfections` (what a real vehicle adds to the ideal model, drawn per env): per-rotor thrust
  and time-constant factors, a thrust curve with a linear term, battery sag, ground effect and a centre-of-mass
  offset (docs/quadrotor_model.md gives each law and its source);
- translation: trapezoidal position update (exact for constant acceleration);
- rotation: midpoint (RK2) for the Euler equations; the quaternion is rotated by the mean body rate through the
  exponential map (cos/sin of the half angle to 4th order: |w| dt / 2 < 0.04 at the 35 rad/s termination limit
  and 500 Hz, so the truncation is < 1e-7), then renormalised.
Conventions (frames, motor layout, spin directions) are in :mod:`sim.quadrotor.params`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from sim.quadrotor.params import GRAVITY

STATE_ROWS = {
    "position": (0, 3),  # m, world
    "velocity": (3, 6),  # m/s, world
    "quaternion": (6, 10),  # (w, x, y, z) body -> world
    "angular_velocity": (10, 13),  # rad/s, body
    "rotor_rpm": (13, 17),  # RPM, M1..M4
}
STATE_DIM = 17
RPM_TO_RAD_S = 2.0 * math.pi / 60.0


class Body(NamedTuple):
    """The state's rows as (N,) tensors."""

    px: Tensor
    py: Tensor
    pz: Tensor
    vx: Tensor
    vy: Tensor
    vz: Tensor
    qw: Tensor
    qx: Tensor
    qy: Tensor
    qz: Tensor
    wx: Tensor
    wy: Tensor
    wz: Tensor
    r1: Tensor
    r2: Tensor
    r3: Tensor
    r4: Tensor


class PhysParams(NamedTuple):
    """Per-env physical parameters, each (N,) (the inertia and drag split per axis)."""

    mass: Tensor
    jx: Tensor
    jy: Tensor
    jz: Tensor
    kf: Tensor
    km: Tensor
    tau_up: Tensor
    tau_down: Tensor
    dx: Tensor
    dy: Tensor
    dz: Tensor
    max_rpm: Tensor
    arm: Tensor


class Imperfections(NamedTuple):
    """Per-env departures of a real vehicle from the ideal model, each (N,) (or a float for every env).

    - ``kf_scale``, ``tau_scale``: 4 per-rotor factors on kf and on both motor time constants (motor spread);
    - ``thrust_curve`` c: rotor thrust ``kf ((1 - c) r^2 + c r curve_rpm)`` (a linear term; equal to kf r^2 at
      ``curve_rpm``, the profile's max RPM);
    - ``battery_sag``: the rotors reach ``(1 - sag)`` of their commanded speed (a lower supply voltage);
    - ``ground_effect`` G (m^2): thrust x ``1 + G / (4 h)^2`` at height h above ``floor`` (h >= ``GROUND_MIN_H``);
    - ``com_x``, ``com_y`` (m, body): the centre of mass off the rotor plane's centre; the thrust's lever arm about
      it gives the torque ``(-com_y T, com_x T, 0)``.
    """

    kf_scale: tuple[Tensor, Tensor, Tensor, Tensor]
    tau_scale: tuple[Tensor, Tensor, Tensor, Tensor]
    thrust_curve: Tensor
    curve_rpm: float
    battery_sag: Tensor
    ground_effect: Tensor
    floor: float
    com_x: Tensor
    com_y: Tensor


GROUND_MIN_H = 0.03  # m: the ground effect's height floor (its factor stays finite on the ground)


def unpack(state: Tensor) -> Body:
    """(17, N) -> Body of (N,) views."""
    return Body(*state.unbind(0))


def pack(body: Body) -> Tensor:
    return torch.stack(tuple(body), 0)


def rotation_rows(qw: Tensor, qx: Tensor, qy: Tensor, qz: Tensor) -> tuple[Tensor, ...]:
    """Rotation matrix body -> world from a unit quaternion, as 9 (N,) tensors in row-major order."""
    xx, yy, zz = qx * qx, qy * qy, qz * qz
    xy, xz, yz = qx * qy, qx * qz, qy * qz
    wx, wy, wz = qw * qx, qw * qy, qw * qz
    return (
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    )  # fmt: skip


def mixer_torques(
    f1: Tensor, f2: Tensor, f3: Tensor, f4: Tensor, arm: Tensor, km: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Body torques (N m) from rotor thrusts (N) for the X layout of :mod:`sim.quadrotor.params`."""
    a = arm * (1.0 / math.sqrt(2.0))
    tx = a * (-f1 - f2 + f3 + f4)
    ty = a * (-f1 + f2 + f3 - f4)
    tz = km * (f1 - f2 + f3 - f4)
    return tx, ty, tz


def motor_step(rpm: Tensor, cmd: Tensor, alpha_up: Tensor, alpha_down: Tensor) -> Tensor:
    """One exact first-order step of a rotor towards its command."""
    return rpm + (cmd - rpm) * torch.where(cmd > rpm, alpha_up, alpha_down)


def _euler_rate(wx, wy, wz, tx, ty, tz, p: PhysParams, c: StepCoeffs):
    hx, hy, hz = p.jx * wx, p.jy * wy, p.jz * wz
    return (
        (tx - (wy * hz - wz * hy)) * c.inv_jx,
        (ty - (wz * hx - wx * hz)) * c.inv_jy,
        (tz - (wx * hy - wy * hx)) * c.inv_jz,
    )


class StepCoeffs(NamedTuple):
    """Per-env factors that depend only on the parameters and dt; computed once per control step."""

    alpha_up: tuple[Tensor, Tensor, Tensor, Tensor]  # per rotor: exact first-order step factor when speeding up
    alpha_down: tuple[Tensor, Tensor, Tensor, Tensor]
    inv_mass: Tensor
    inv_jx: Tensor
    inv_jy: Tensor
    inv_jz: Tensor


def step_coeffs(p: PhysParams, dt: float, imp: Imperfections | None = None) -> StepCoeffs:
    if imp is None:
        up, down = -torch.expm1(-dt / p.tau_up), -torch.expm1(-dt / p.tau_down)
        alpha_up, alpha_down = (up, up, up, up), (down, down, down, down)
    else:
        alpha_up = tuple(-torch.expm1(-dt / (p.tau_up * s)) for s in imp.tau_scale)
        alpha_down = tuple(-torch.expm1(-dt / (p.tau_down * s)) for s in imp.tau_scale)
    return StepCoeffs(alpha_up, alpha_down, 1.0 / p.mass, 1.0 / p.jx, 1.0 / p.jy, 1.0 / p.jz)  # type: ignore[arg-type]


def rotor_thrusts(
    r: tuple[Tensor, Tensor, Tensor, Tensor], kf: Tensor, pz: Tensor, imp: Imperfections | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Thrust of each rotor (N) at speeds ``r`` (RPM), with the vehicle's imperfections where given."""
    if imp is None:
        return tuple(kf * x * x for x in r)  # type: ignore[return-value]
    c = imp.thrust_curve
    h = (pz - imp.floor).clamp(min=GROUND_MIN_H)
    k = kf * (1.0 + imp.ground_effect / (16.0 * h * h))
    thrusts = (k * s * x * ((1.0 - c) * x + c * imp.curve_rpm) for s, x in zip(imp.kf_scale, r))
    return tuple(f.clamp(min=0.0) for f in thrusts)  # type: ignore[return-value]  # c < 0 would pull at low speed


def physics_step(
    b: Body,
    rpm_cmd: tuple[Tensor, Tensor, Tensor, Tensor],
    p: PhysParams,
    coeffs: StepCoeffs,
    force_w: tuple[Tensor, Tensor, Tensor],
    torque_b: tuple[Tensor, Tensor, Tensor],
    dt: float,
    imp: Imperfections | None = None,
) -> Body:
    """Advance every env by ``dt`` seconds.

    rpm_cmd: 4 (N,) commanded rotor speeds (RPM), already within [min_rpm, max_rpm].
    coeffs: :func:`step_coeffs` for this ``dt`` (hoisted: they change only with the parameters).
    force_w: external force (N, world frame); torque_b: external torque (N m, body frame).
    imp: the vehicle's :class:`Imperfections` (None: the ideal model).
    """
    up, down = coeffs.alpha_up, coeffs.alpha_down
    cmd = rpm_cmd if imp is None else tuple(c * (1.0 - imp.battery_sag) for c in rpm_cmd)
    r1 = motor_step(b.r1, cmd[0], up[0], down[0])
    r2 = motor_step(b.r2, cmd[1], up[1], down[1])
    r3 = motor_step(b.r3, cmd[2], up[2], down[2])
    r4 = motor_step(b.r4, cmd[3], up[3], down[3])
    f1, f2, f3, f4 = rotor_thrusts((r1, r2, r3, r4), p.kf, b.pz, imp)
    thrust = f1 + f2 + f3 + f4
    tx, ty, tz = mixer_torques(f1, f2, f3, f4, p.arm, p.km)
    if imp is not None:  # the thrust's lever arm about an offset centre of mass: -(c x (0, 0, T))
        tx, ty = tx - imp.com_y * thrust, ty + imp.com_x * thrust

    R = rotation_rows(b.qw, b.qx, b.qy, b.qz)
    # Rotor drag, body frame: -d * (sum of rotor speeds in rad/s) * v_body.
    vbx = R[0] * b.vx + R[3] * b.vy + R[6] * b.vz
    vby = R[1] * b.vx + R[4] * b.vy + R[7] * b.vz
    vbz = R[2] * b.vx + R[5] * b.vy + R[8] * b.vz
    spin = (r1 + r2 + r3 + r4) * RPM_TO_RAD_S
    fbx, fby, fbz = -p.dx * spin * vbx, -p.dy * spin * vby, thrust - p.dz * spin * vbz
    inv_m = coeffs.inv_mass
    ax = (R[0] * fbx + R[1] * fby + R[2] * fbz + force_w[0]) * inv_m
    ay = (R[3] * fbx + R[4] * fby + R[5] * fbz + force_w[1]) * inv_m
    az = (R[6] * fbx + R[7] * fby + R[8] * fbz + force_w[2]) * inv_m - GRAVITY
    vx, vy, vz = b.vx + ax * dt, b.vy + ay * dt, b.vz + az * dt
    px = b.px + 0.5 * (b.vx + vx) * dt
    py = b.py + 0.5 * (b.vy + vy) * dt
    pz = b.pz + 0.5 * (b.vz + vz) * dt

    tx, ty, tz = tx + torque_b[0], ty + torque_b[1], tz + torque_b[2]
    k1 = _euler_rate(b.wx, b.wy, b.wz, tx, ty, tz, p, coeffs)
    h = 0.5 * dt
    k2 = _euler_rate(b.wx + h * k1[0], b.wy + h * k1[1], b.wz + h * k1[2], tx, ty, tz, p, coeffs)
    wx, wy, wz = b.wx + dt * k2[0], b.wy + dt * k2[1], b.wz + dt * k2[2]

    # Exact rotation by the mean body rate over the step: q <- q * exp(0.5 * w * dt).
    mx, my, mz = 0.5 * (b.wx + wx), 0.5 * (b.wy + wy), 0.5 * (b.wz + wz)
    h2 = (0.25 * dt * dt) * (mx * mx + my * my + mz * mz)  # squared half angle
    c = 1.0 - h2 * (0.5 - h2 * (1.0 / 24.0))  # cos(h)
    s = (0.5 * dt) * (1.0 - h2 * (1.0 / 6.0 - h2 * (1.0 / 120.0)))  # sin(h) / |w|
    ex, ey, ez = s * mx, s * my, s * mz
    qw = b.qw * c - b.qx * ex - b.qy * ey - b.qz * ez
    qx = b.qw * ex + b.qx * c + b.qy * ez - b.qz * ey
    qy = b.qw * ey - b.qx * ez + b.qy * c + b.qz * ex
    qz = b.qw * ez + b.qx * ey - b.qy * ex + b.qz * c
    inv_n = torch.rsqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    return Body(px, py, pz, vx, vy, vz, qw * inv_n, qx * inv_n, qy * inv_n, qz * inv_n, wx, wy, wz, r1, r2, r3, r4)
