"""Physically impossible randomization is refused from the task's config, without building a simulator
(``QuadrotorTaskCfg.check_randomization``, ``sim.articulated.randomization.check_randomization``): a mass scale
<= 0, a negative time constant or noise std, a latency below 0 or as long as an episode. Values by hand."""

from __future__ import annotations

import math

import pytest

from sim.articulated.randomization import check_randomization
from sim.articulated.tasks.arm_reach import ArmReachCfg
from sim.articulated.tasks.legged_walk import LeggedWalkCfg
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv, nominal_values
from sim.randomization import ParamDistribution as D
from sim.randomization import RandomizationSpec, RandomizationSpecError


def test_value_range_applies_the_operation_to_the_nominal_values():
    s = RandomizationSpec(
        {
            "mass": D("uniform", low=0.5, high=2.0),
            "inertia": D("normal", mean=1.0, std=0.1),
            "drag": D("uniform", low=-0.2, high=0.1, operation="offset"),
            "latency": D("int_uniform", low=1, high=3, operation="absolute"),
        }
    )
    assert s.value_range("mass", [0.03]) == pytest.approx((0.015, 0.06))
    assert s.value_range("mass", [-1.0, 2.0]) == pytest.approx((-2.0, 4.0))  # signs of the nominal count
    assert s.value_range("inertia", [1.0]) == (-math.inf, math.inf)  # an unclipped normal reaches anything
    assert s.value_range("drag", [0.1, 0.3]) == pytest.approx((-0.1, 0.4))
    assert s.value_range("latency", [0.0]) == (1.0, 3.0)
    assert s.value_range("unrandomized", [2.0, 5.0]) == (2.0, 5.0)


def test_check_physical_bounds_and_latency_limits():
    nominal = {"mass": [0.03], "drag": [0.0], "latency": [0.0]}
    ok = RandomizationSpec(
        {"mass": D("uniform", low=0.5, high=2.0), "drag": D("uniform", low=0.0, high=1.0, operation="offset")}
    )
    ok.check_physical(nominal, positive=("mass",), nonnegative=("drag",), max_steps={"latency": 10})
    zero_mass = RandomizationSpec({"mass": D("uniform", low=0.0, high=2.0)})
    with pytest.raises(RandomizationSpecError, match="'mass': its values must be > 0, but it can reach 0"):
        zero_mass.check_physical(nominal, positive=("mass",))
    zero_mass.check_physical(nominal, nonnegative=("mass",))  # >= 0 allows it
    for low, high, message in (
        (-1, 2, "steps >= 0, but it can reach -1"),
        (0, 10, "up to 10 steps, but an episode has 10"),
    ):
        latency = RandomizationSpec({"latency": D("int_uniform", low=low, high=high, operation="absolute")})
        with pytest.raises(RandomizationSpecError, match=message):
            latency.check_physical(nominal, max_steps={"latency": 10})
    RandomizationSpec({"latency": D("int_uniform", low=0, high=9, operation="absolute")}).check_physical(
        nominal, max_steps={"latency": 10}
    )


def quad_cfg(task: str = "hover", **terms: D) -> QuadrotorTaskCfg:
    cfg = QuadrotorTaskCfg(task=task)
    cfg.randomization = cfg.randomization.replace(**terms)
    return cfg


@pytest.mark.parametrize("task", ["hover", "track"])
def test_the_default_quadrotor_randomization_is_physical(task):
    cfg = quad_cfg(task)
    cfg.check_randomization(nominal_values(cfg))


QUAD_IMPOSSIBLE = [
    ({"mass": D("uniform", low=0.0, high=1.2)}, "'mass': its values must be > 0, but it can reach 0"),
    ({"kf": D("normal", mean=1.0, std=0.1)}, "'kf': its values must be > 0, but it can reach -inf"),
    ({"motor_tau_up": D("uniform", low=-0.01, high=0.02, operation="absolute")}, "'motor_tau_up'.*-0.01"),
    ({"max_rpm": D("uniform", low=-30000.0, high=0.0, operation="offset")}, "'max_rpm'.*> 0"),
    ({"drag": D("uniform", low=-1.0, high=1.0)}, "'drag': its values must be >= 0"),
    ({"obs_noise.angular_velocity": D("constant", mean=-0.005, operation="absolute")}, "angular_velocity'.*>= 0"),
    ({"action_latency": D("int_uniform", low=0, high=500, operation="absolute")}, "up to 500 steps.*has 500"),
    ({"obs_latency": D("int_uniform", low=-1, high=0, operation="absolute")}, "'obs_latency'.*reach -1"),
    ({"wingspan": D("uniform", low=0.9, high=1.1)}, "unknown parameters \\['wingspan'\\]"),
]


@pytest.mark.parametrize(("terms", "message"), QUAD_IMPOSSIBLE)
def test_impossible_quadrotor_draws_are_refused_by_the_config_and_by_the_env(terms, message):
    cfg = quad_cfg(**terms)
    with pytest.raises(RandomizationSpecError, match=message):
        cfg.check_randomization(nominal_values(cfg))
    with pytest.raises(RandomizationSpecError):  # the env refuses it too, for callers that skip the config check
        QuadrotorEnv(cfg, 2, compile=False, native=False)


def test_a_zero_noise_and_zero_drag_are_physical():
    cfg = quad_cfg(
        obs_noise_scale=D("constant", mean=0.0, operation="absolute"),
        drag=D("constant", mean=0.0, operation="absolute"),
    )
    cfg.check_randomization(nominal_values(cfg))


@pytest.mark.parametrize("make_cfg", [LeggedWalkCfg, ArmReachCfg])
def test_the_default_articulated_randomizations_are_physical(make_cfg):
    check_randomization(make_cfg())


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"link_mass": D("uniform", low=0.0, high=1.1)}, "'link_mass': its values must be > 0, but it can reach 0"),
        ({"motor_strength": D("uniform", low=-0.1, high=1.1)}, "'motor_strength'.*> 0"),
        ({"joint_damping": D("uniform", low=-0.1, high=0.1, operation="absolute")}, "'joint_damping'.*>= 0"),
        ({"added_base_mass": D("uniform", low=-10.0, high=0.0, operation="offset")}, "the base 'trunk'.*can weigh -"),
        # action latency counts physics steps: a 20 s episode at 50 Hz control and 200 Hz physics has 4000
        ({"action_latency": D("int_uniform", low=0, high=4000, operation="absolute")}, "up to 4000 steps.*has 4000"),
        ({"obs_latency": D("int_uniform", low=0, high=1000, operation="absolute")}, "up to 1000 steps.*has 1000"),
    ],
)
def test_impossible_legged_draws_are_refused(terms, message):
    cfg = LeggedWalkCfg()
    cfg.randomization = cfg.randomization.replace(**terms)
    with pytest.raises(RandomizationSpecError, match=message):
        check_randomization(cfg)


def test_a_base_mass_offset_within_the_base_mass_is_physical():
    cfg = LeggedWalkCfg()
    cfg.randomization = cfg.randomization.replace(added_base_mass=D("uniform", low=-3.0, high=3.0, operation="offset"))
    check_randomization(cfg)
