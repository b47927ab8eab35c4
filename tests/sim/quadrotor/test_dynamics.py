"""Physics checks of the batched quadrotor against analytic cases and the float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sim.quadrotor import reference as ref
from sim.quadrotor.dynamics import Body, PhysParams, physics_step, rotation_rows, step_coeffs
from sim.quadrotor.params import GRAVITY, ProfileError, QuadrotorParams

P = QuadrotorParams()
DT = 0.002


def params(n: int, p: QuadrotorParams = P, **override) -> PhysParams:
    values = dict(
        mass=p.mass, jx=p.inertia[0], jy=p.inertia[1], jz=p.inertia[2], kf=p.kf, km=p.km, tau_up=p.motor_tau_up,
        tau_down=p.motor_tau_down, dx=p.drag[0], dy=p.drag[1], dz=p.drag[2], max_rpm=p.max_rpm, arm=p.arm_length,
    )  # fmt: skip
    values.update(override)
    return PhysParams(**{k: torch.full((n,), float(v), dtype=torch.float64) for k, v in values.items()})


def body(n: int, rpm: float = 0.0, **rows) -> Body:
    values = {f: torch.zeros(n, dtype=torch.float64) for f in Body._fields}
    values["qw"] = torch.ones(n, dtype=torch.float64)
    for r in ("r1", "r2", "r3", "r4"):
        values[r] = torch.full((n,), rpm, dtype=torch.float64)
    for k, v in rows.items():
        values[k] = torch.as_tensor(v, dtype=torch.float64).expand(n).clone()
    return Body(**values)


def run(b: Body, cmd, p: PhysParams, steps: int, dt: float = DT) -> Body:
    zero = torch.zeros_like(b.px)
    coeffs = step_coeffs(p, dt)
    cmd = tuple(torch.as_tensor(c, dtype=torch.float64).expand_as(zero) for c in cmd)
    for _ in range(steps):
        b = physics_step(b, cmd, p, coeffs, (zero, zero, zero), (zero, zero, zero), dt)
    return b


def test_analytic_hover_rpm_holds_altitude():
    h = P.hover_rpm
    assert math.isclose(4 * P.kf * h * h, P.mass * GRAVITY, rel_tol=1e-12)
    b = run(body(1, rpm=h, pz=1.0), (h, h, h, h), params(1), steps=500)  # 1 s
    assert abs(b.pz.item() - 1.0) < 1e-3
    assert abs(b.px.item()) < 1e-9 and abs(b.py.item()) < 1e-9


def test_free_fall_matches_g():
    b = run(body(1, pz=10.0), (0.0, 0.0, 0.0, 0.0), params(1), steps=500)
    assert b.vz.item() == pytest.approx(-GRAVITY * 1.0, rel=1e-9)
    assert b.pz.item() == pytest.approx(10.0 - 0.5 * GRAVITY, rel=1e-9)


def test_yaw_torque_spins_the_right_way():
    # M1 and M3 spin clockwise: their reaction torque turns the body counter-clockwise (+z).
    h, d = P.hover_rpm, 2000.0
    b = run(body(1, rpm=h), (h + d, h - d, h + d, h - d), params(1), steps=100)
    assert b.wz.item() > 1.0
    assert abs(b.wx.item()) < 1e-6 and abs(b.wy.item()) < 1e-6


def _motor_world_height(b: Body, motor: int) -> float:
    R = torch.stack(rotation_rows(b.qw, b.qx, b.qy, b.qz), -1).reshape(3, 3)
    r = torch.tensor(ref.rotor_positions(P.arm_length)[motor])
    return (R @ r)[2].item()


def test_single_motor_step_tilts_the_right_way():
    h = P.hover_rpm
    b = run(body(1, rpm=h), (h + 3000.0, h, h, h), params(1), steps=50)
    # Front-right motor (M1) pushes harder: its corner rises, the opposite corner (M3) sinks.
    assert _motor_world_height(b, 0) > 1e-4
    assert _motor_world_height(b, 2) < -1e-4
    assert b.wx.item() < 0 and b.wy.item() < 0


def test_quaternion_stays_normalized_under_fast_random_rotation():
    g = torch.Generator().manual_seed(0)
    n = 64
    b = body(n, rpm=P.hover_rpm)
    b = b._replace(
        wx=torch.randn(n, generator=g, dtype=torch.float64) * 20,
        wz=torch.randn(n, generator=g, dtype=torch.float64) * 20,
    )
    p = params(n)
    coeffs = step_coeffs(p, DT)
    zero = torch.zeros(n, dtype=torch.float64)
    for _ in range(1000):  # 2 s of commands redrawn every physics step
        cmd = tuple(P.hover_rpm + 4000.0 * (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) for _ in range(4))
        b = physics_step(b, cmd, p, coeffs, (zero, zero, zero), (zero, zero, zero), DT)
    norm = torch.sqrt(b.qw**2 + b.qx**2 + b.qy**2 + b.qz**2)
    assert torch.isfinite(norm).all()
    assert (norm - 1).abs().max().item() < 1e-12


def test_torque_free_spin_conserves_energy_and_momentum():
    jx, jy, jz = 1.4e-5, 1.9e-5, 2.9e-5  # asymmetric: the spin precesses
    p = params(1, jx=jx, jy=jy, jz=jz, dx=0.0, dy=0.0, dz=0.0)
    b = body(1, wx=3.0, wy=0.2, wz=5.0)
    J = torch.tensor([jx, jy, jz], dtype=torch.float64)

    def invariants(b):
        w = torch.cat([b.wx, b.wy, b.wz])
        R = torch.stack(rotation_rows(b.qw, b.qx, b.qy, b.qz), -1).reshape(3, 3)
        return 0.5 * (J * w * w).sum().item(), R @ (J * w)  # energy, world-frame angular momentum

    e0, h0 = invariants(b)
    b = run(b, (0.0, 0.0, 0.0, 0.0), p, steps=500)
    e1, h1 = invariants(b)
    assert abs(b.wy.item() - 0.2) > 1e-3  # it did precess
    assert abs(e1 - e0) / e0 < 1e-4
    assert (h1 - h0).norm().item() / h0.norm().item() < 1e-3


def test_batched_equals_single_env_reference():
    """Four envs with different parameters and commands against the independent float64 reference."""
    g = torch.Generator().manual_seed(5)
    n, steps = 4, 250
    variants = [
        P.replace(
            mass=P.mass * (0.9 + 0.1 * i), inertia=tuple(j * (1 + 0.2 * i) for j in P.inertia), km=P.km * (1 - 0.2 * i)
        )
        for i in range(n)
    ]
    p = PhysParams(
        *[
            torch.tensor([getattr(vp, f) if f in ("mass", "kf", "km") else 0.0 for vp in variants], dtype=torch.float64)
            for f in PhysParams._fields
        ]
    )
    p = p._replace(
        jx=torch.tensor([v.inertia[0] for v in variants], dtype=torch.float64),
        jy=torch.tensor([v.inertia[1] for v in variants], dtype=torch.float64),
        jz=torch.tensor([v.inertia[2] for v in variants], dtype=torch.float64),
        tau_up=torch.full((n,), P.motor_tau_up, dtype=torch.float64),
        tau_down=torch.full((n,), P.motor_tau_down, dtype=torch.float64),
        dx=torch.full((n,), P.drag[0], dtype=torch.float64),
        dy=torch.full((n,), P.drag[1], dtype=torch.float64),
        dz=torch.full((n,), P.drag[2], dtype=torch.float64),
        max_rpm=torch.full((n,), P.max_rpm, dtype=torch.float64),
        arm=torch.full((n,), P.arm_length, dtype=torch.float64),
    )
    b = body(n, rpm=P.hover_rpm)
    b = b._replace(
        vx=torch.randn(n, generator=g, dtype=torch.float64), wy=torch.randn(n, generator=g, dtype=torch.float64)
    )
    refs = [
        ref.RefState(
            np.zeros(3),
            np.array([b.vx[i].item(), 0, 0]),
            np.array([1.0, 0, 0, 0]),
            np.array([0, b.wy[i].item(), 0]),
            np.full(4, P.hover_rpm),
        )
        for i in range(n)
    ]
    coeffs = step_coeffs(p, DT)
    zero = torch.zeros(n, dtype=torch.float64)
    for k in range(steps):
        cmd = P.hover_rpm + 3000.0 * torch.sin(
            torch.arange(4, dtype=torch.float64)[:, None] + 0.05 * k + torch.arange(n)[None]
        )
        b = physics_step(b, tuple(cmd), p, coeffs, (zero, zero, zero), (zero, zero, zero), DT)
        refs = [ref.step(s, cmd[:, i].numpy(), variants[i], DT) for i, s in enumerate(refs)]
    for i, s in enumerate(refs):
        got = np.array([b.px[i], b.py[i], b.pz[i], b.vx[i], b.vy[i], b.vz[i], b.wx[i], b.wy[i], b.wz[i]])
        want = np.concatenate([s.position, s.velocity, s.angular_velocity])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
        q = np.array([b.qw[i], b.qx[i], b.qy[i], b.qz[i]])
        assert min(np.abs(q - s.quaternion).max(), np.abs(q + s.quaternion).max()) < 1e-8


def test_profile_validation():
    with pytest.raises(ProfileError, match="cannot hover"):
        QuadrotorParams(kf=1.0e-10)
    with pytest.raises(ProfileError, match="'inertia' needs 3 values"):
        QuadrotorParams.from_dict({"inertia": [1e-5, 1e-5]})
    with pytest.raises(ProfileError, match="unknown fields \\['wingspan'\\]"):
        QuadrotorParams.from_dict({"wingspan": 1.0})


def test_profile_yaml_matches_defaults():
    from pathlib import Path

    loaded = QuadrotorParams.from_yaml(Path(__file__).parents[3] / "launch" / "robots" / "crazyflie2.yaml")
    assert loaded == QuadrotorParams()
