"""The vehicle's imperfections (motor spread, thrust curve, battery sag, ground effect, centre-of-mass offset): each
one's law against a hand computation, their default ranges, and the refusal of impossible draws."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sim.quadrotor.config import QuadrotorTaskCfg, base_randomization, default_randomization
from sim.quadrotor.dynamics import GROUND_MIN_H, Imperfections, physics_step, step_coeffs
from sim.quadrotor.env import QuadrotorEnv
from sim.quadrotor.params import GRAVITY, QuadrotorParams
from sim.randomization import ParamDistribution as D
from sim.randomization import RandomizationSpec, RandomizationSpecError
from tests.sim.quadrotor.test_dynamics import body, params

P = QuadrotorParams()
DT = 0.002


def imperfections(n: int = 1, **override) -> Imperfections:
    def full(v: float) -> torch.Tensor:
        return torch.full((n,), float(v), dtype=torch.float64)

    values = dict(kf_scale=(1.0,) * 4, tau_scale=(1.0,) * 4, thrust_curve=0.0, battery_sag=0.0, ground_effect=0.0)
    values.update(com_x=0.0, com_y=0.0)
    values.update(override)
    return Imperfections(
        tuple(full(v) for v in values["kf_scale"]), tuple(full(v) for v in values["tau_scale"]),
        full(values["thrust_curve"]), P.max_rpm, full(values["battery_sag"]), full(values["ground_effect"]), 0.0,
        full(values["com_x"]), full(values["com_y"]),
    )  # fmt: skip


def one_step(imp: Imperfections | None, rpm: float = P.hover_rpm, pz: float = 1.0, cmd=None):
    """One physics step from rest at ``rpm`` on every rotor; returns the new body and the start body."""
    b0 = body(1, rpm=rpm, pz=pz)
    p = params(1)
    zero = torch.zeros(1, dtype=torch.float64)
    cmd = tuple(torch.full((1,), float(c), dtype=torch.float64) for c in (cmd or (rpm,) * 4))
    b = physics_step(b0, cmd, p, step_coeffs(p, DT, imp), (zero,) * 3, (zero,) * 3, DT, imp)
    return b, b0


def test_ideal_imperfections_change_nothing():
    ideal, bare = (
        one_step(imperfections(), cmd=(15000, 14000, 13000, 16000)),
        one_step(None, cmd=(15000, 14000, 13000, 16000)),
    )
    for f in ideal[0]._fields:
        torch.testing.assert_close(getattr(ideal[0], f), getattr(bare[0], f), rtol=1e-14, atol=1e-14)


def test_com_offset_pitches_the_heavy_side_down():
    """At hover thrust T an offset c gives the body rates dw/dt = (-c_y T / Jx, c_x T / Jy) in one step."""
    thrust = 4 * P.kf * P.hover_rpm**2
    b, _ = one_step(imperfections(com_x=0.002, com_y=-0.001))
    assert b.wy.item() == pytest.approx(0.002 * thrust / P.inertia[1] * DT, rel=1e-6)
    assert b.wx.item() == pytest.approx(0.001 * thrust / P.inertia[0] * DT, rel=1e-6)
    assert b.wz.item() == pytest.approx(0.0, abs=1e-12)
    # +x forward: a nose-heavy vehicle rotates about +y, which carries +x towards -z (nose down)
    assert b.wy.item() > 0


def test_motor_spread_rolls_towards_the_weak_rotors():
    """Rotor kf factors (1.05, 1, 1, 0.95) at equal speeds: the thrust differences through the X mixer."""
    b, _ = one_step(imperfections(kf_scale=(1.05, 1.0, 1.0, 0.95)))
    f = [P.kf * P.hover_rpm**2 * s for s in (1.05, 1.0, 1.0, 0.95)]
    a = P.arm_length / math.sqrt(2)
    tx, ty = a * (-f[0] - f[1] + f[2] + f[3]), a * (-f[0] + f[1] + f[2] - f[3])
    tz = P.km * (f[0] - f[1] + f[2] - f[3])
    assert b.wx.item() == pytest.approx(tx / P.inertia[0] * DT, rel=1e-6)
    assert ty == pytest.approx(0.0, abs=1e-12)  # the diagonal pair balances in pitch ...
    assert abs(b.wy.item()) < 1e-3 * abs(b.wx.item())  # ... but for the gyroscopic coupling of the new rates
    assert b.wz.item() == pytest.approx(tz / P.inertia[2] * DT, rel=1e-6)


def test_motor_time_constant_spread_is_per_rotor():
    b, b0 = one_step(imperfections(tau_scale=(0.5, 1.0, 2.0, 1.0)), rpm=10000.0, cmd=(20000,) * 4)
    rises = [(getattr(b, r) - getattr(b0, r)).item() for r in ("r1", "r2", "r3", "r4")]
    expected = [10000.0 * -math.expm1(-DT / (P.motor_tau_up * s)) for s in (0.5, 1.0, 2.0, 1.0)]
    assert rises == pytest.approx(expected, rel=1e-9)
    assert rises[0] > rises[1] > rises[2]


@pytest.mark.parametrize("c", [-0.15, 0.05])
def test_thrust_curve_is_anchored_at_max_rpm_and_bends_below(c):
    """f = kf ((1 - c) r^2 + c r R): equal to kf R^2 at R (max RPM); at hover speed (r / R ~ 0.67) a c < 0 vehicle
    (drone-models' Crazyflies) makes less thrust, so it sinks."""
    at_max, _ = one_step(imperfections(thrust_curve=c), rpm=P.max_rpm, pz=5.0)
    ideal_max, _ = one_step(None, rpm=P.max_rpm, pz=5.0)
    assert at_max.vz.item() == pytest.approx(ideal_max.vz.item(), rel=1e-9)
    hover, _ = one_step(imperfections(thrust_curve=c))
    r = P.hover_rpm
    factor = (1 - c) + c * P.max_rpm / r
    assert hover.vz.item() == pytest.approx((factor - 1.0) * GRAVITY * DT, rel=1e-6)
    assert (hover.vz.item() < 0) == (c < 0)


def test_thrust_curve_never_pulls():
    b, _ = one_step(imperfections(thrust_curve=-0.5), rpm=1000.0, cmd=(1000,) * 4)  # (1 - c) r + c R < 0 here
    assert b.vz.item() == pytest.approx(-GRAVITY * DT, rel=1e-9)


def test_battery_sag_lowers_the_rotor_speeds_reached():
    p = params(1)
    imp = imperfections(battery_sag=0.08)
    b = body(1, rpm=0.0, pz=1.0)
    zero = torch.zeros(1, dtype=torch.float64)
    cmd = (torch.full((1,), 15000.0, dtype=torch.float64),) * 4
    coeffs = step_coeffs(p, DT, imp)
    for _ in range(2000):  # 4 s: many time constants
        b = physics_step(b, cmd, p, coeffs, (zero,) * 3, (zero,) * 3, DT, imp)
    assert b.r1.item() == pytest.approx(15000.0 * 0.92, rel=1e-6)


@pytest.mark.parametrize("height", [0.05, 0.2, 0.01])
def test_ground_effect_adds_thrust_near_the_ground(height):
    g = 0.0061  # gym-pybullet-drones' cf2x
    b, _ = one_step(imperfections(ground_effect=g), pz=height)
    h = max(height, GROUND_MIN_H)
    assert b.vz.item() == pytest.approx(g / (16 * h * h) * GRAVITY * DT, rel=1e-6)
    far, _ = one_step(imperfections(ground_effect=g), pz=1.0)
    assert far.vz.item() < 0.0011 * GRAVITY * DT  # < 0.05 % of the weight at 1 m


@pytest.mark.parametrize("imperfect", [False, True])
def test_the_default_draws_the_imperfections_within_their_ranges_and_the_base_spec_none(imperfect):
    spec = default_randomization() if imperfect else base_randomization()
    env = QuadrotorEnv(QuadrotorTaskCfg(task="hover", randomization=spec), 2048, seed=3, compile=False)
    ranges = {
        "motor_kf_scale": (0.95, 1.05), "motor_tau_scale": (0.9, 1.1), "thrust_curve": (-0.15, 0.05),
        "battery_sag": (0.0, 0.08), "ground_effect": (0.0, 0.0122), "com_offset": (-0.001, 0.001),
        "action_latency_substeps": (0, 4),
    }  # fmt: skip
    for name, (lo, hi) in ranges.items():
        v = env.param(name)
        if not imperfect:
            assert torch.equal(v, env.nominal[name][None].expand(2048, -1)), f"{name} drawn by the base spec"
            continue
        assert v.min() >= lo and v.max() <= hi, name
        assert v.min() < lo + 0.1 * (hi - lo) and v.max() > hi - 0.1 * (hi - lo), f"{name}: not spread over its range"
    if imperfect:
        for name in ("motor_tau_scale", "motor_kf_scale"):
            v = env.param(name)
            assert (v[:, 0] != v[:, 1]).all()  # each rotor its own draw


def test_the_base_spec_file_is_the_function_and_the_default_is_it_plus_the_imperfections():
    path = Path(__file__).resolve().parents[3] / "launch" / "randomization" / "crazyflie2_base.yaml"
    assert RandomizationSpec.from_yaml(path).to_dict() == base_randomization().to_dict()
    base, default = base_randomization().terms, default_randomization().terms
    assert {k: v for k, v in default.items() if k in base} == base
    assert len(default) - len(base) == 7


def test_impossible_imperfections_are_refused_with_the_range():
    spec = default_randomization().replace(battery_sag=D("uniform", low=0.0, high=1.0, operation="absolute"))
    with pytest.raises(RandomizationSpecError, match=r"'battery_sag'.*\[0, 0.9\]"):
        QuadrotorEnv(QuadrotorTaskCfg(task="hover", randomization=spec), 4, compile=False)
    spec = default_randomization().replace(motor_kf_scale=D("uniform", low=0.0, high=1.1))
    with pytest.raises(RandomizationSpecError, match=r"'motor_kf_scale'.*> 0"):
        QuadrotorEnv(QuadrotorTaskCfg(task="hover", randomization=spec), 4, compile=False)


@pytest.mark.parametrize("native", [False, True])
def test_substep_latency_holds_the_previous_command_for_its_substeps(native):
    """Envs with 0..4 substeps of latency step from the hover command to full speed: rotor i runs k substeps
    towards the old command, then 5 - k towards the new one (each motor's exact first-order step)."""
    spec = default_randomization().replace(
        action_latency=D("int_uniform", low=0, high=0, operation="absolute"),
        action_latency_substeps=D("int_uniform", low=0, high=4, operation="absolute"),
    )
    env = QuadrotorEnv(QuadrotorTaskCfg(task="hover", randomization=spec), 64, seed=2, compile=False, native=native)
    assert env.backend == ("native" if native else "eager")
    for name in ("battery_sag", "motor_tau_scale", "ground_effect", "com_offset"):
        env.set_param(name, env.nominal[name][None].expand(64, -1))
    env.step(torch.zeros(64, 4))  # the hover command is now "previous"
    r0 = env.state_rows("rotor_rpm").clone()
    env.step(torch.ones(64, 4))  # full speed
    late = env.param("action_latency_substeps")[:, 0]
    assert set(late.int().tolist()) == {0, 1, 2, 3, 4}
    spec_a, dt = env.action_spec, env.cfg.physics_dt
    up = -torch.expm1(-dt / env.param("motor_tau_up")[:, 0])
    down = -torch.expm1(-dt / env.param("motor_tau_down")[:, 0])
    r, prompt = r0.double(), r0.double()  # with this latency; with none
    full = env.param("max_rpm").double()
    for sub in range(env.cfg.physics_substeps):
        cmd = torch.where(late[:, None] > sub, torch.tensor(spec_a.offset).double(), full)
        r = r + (cmd - r) * torch.where(cmd > r, up[:, None], down[:, None]).double()
        prompt = prompt + (full - prompt) * up[:, None].double()
    got = env.state_rows("rotor_rpm").double()
    torch.testing.assert_close(got, r, rtol=2e-5, atol=0.5)
    torch.testing.assert_close(got[late == 0], prompt[late == 0], rtol=2e-5, atol=0.5)
    assert (got[late > 0] < prompt[late > 0] - 100.0).all()  # a late command: slower rotors at the step's end


def test_substep_latency_must_stay_inside_the_control_step():
    spec = default_randomization().replace(
        action_latency_substeps=D("int_uniform", low=0, high=5, operation="absolute")
    )  # 5 substeps per control step: 5 would be a whole step (use action_latency)
    with pytest.raises(RandomizationSpecError, match=r"'action_latency_substeps'.*\[0, 4\]"):
        QuadrotorEnv(QuadrotorTaskCfg(task="hover", randomization=spec), 4, compile=False)
