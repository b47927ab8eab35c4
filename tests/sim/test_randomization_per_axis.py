"""Per-component bounds of a randomization term: each axis of a vector parameter its own interval.

Checked: the YAML round trip keeps the lists; the generic sampler and the quadrotor env's draws put every
component inside its own interval (and use the whole of it); physical checks and sizes use each component;
refusals say what was expected.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.randomization import Components, ParamDistribution, RandomizationSpec, RandomizationSpecError
from sim.sampling import sample_param

LOW, HIGH = [0.9, 0.95, 1.5], [1.1, 1.05, 3.0]


def _per_axis() -> ParamDistribution:
    return ParamDistribution("uniform", low=LOW, high=HIGH, per_component=True)


def test_components_do_elementwise_arithmetic_and_broadcast_over_draws():
    lo, hi = Components(LOW), Components(HIGH)
    assert hi - lo == pytest.approx([0.2, 0.1, 1.5])
    assert isinstance(hi - lo, Components) and 2.0 * lo == pytest.approx([1.8, 1.9, 3.0])
    u = torch.tensor([[0.0, 0.5, 1.0], [1.0, 0.0, 0.5]])
    out = lo + (hi - lo) * u
    torch.testing.assert_close(out, torch.tensor([[0.9, 1.0, 3.0], [1.1, 0.95, 2.25]]))
    np.testing.assert_allclose(lo + (hi - lo) * u.numpy(), out.numpy(), rtol=1e-6)


def test_yaml_round_trip_keeps_per_axis_bounds():
    spec = RandomizationSpec({"inertia": _per_axis()}, name="t")
    text = spec.to_yaml()
    assert "- 0.95" in text  # plain YAML lists, no Python tags
    back = RandomizationSpec.from_yaml_text(text)
    assert back.terms["inertia"].low == Components(LOW) and back.terms["inertia"].high == Components(HIGH)
    assert back.digest() == spec.digest()
    assert back.terms["inertia"].bounds() == (0.9, 3.0)


def test_sampler_draws_each_component_inside_its_own_interval():
    g = torch.Generator().manual_seed(0)
    nominal = torch.tensor([1.4e-5, 1.4e-5, 2.17e-5])
    x = sample_param(_per_axis(), nominal, 4000, g) / nominal
    for i in range(3):
        assert LOW[i] - 1e-6 <= x[:, i].min() < LOW[i] + 0.02 * (HIGH[i] - LOW[i])
        assert HIGH[i] - 0.02 * (HIGH[i] - LOW[i]) < x[:, i].max() <= HIGH[i] + 1e-6
    assert abs(float(torch.corrcoef(x.T)[0, 2])) < 0.05  # independent components


def test_quadrotor_env_draws_per_axis_inertia():
    from sim.quadrotor.config import QuadrotorTaskCfg, default_randomization
    from sim.quadrotor.env import QuadrotorEnv

    spec = default_randomization().replace(inertia=_per_axis())
    cfg = QuadrotorTaskCfg(randomization=spec)
    env = QuadrotorEnv(cfg, 256, seed=0, compile=False, native=False)
    ratio = env.param("inertia").numpy() / np.asarray(cfg.params.inertia)
    assert ratio.shape == (256, 3)
    assert np.all(ratio >= np.asarray(LOW) - 1e-5) and np.all(ratio <= np.asarray(HIGH) + 1e-5)
    assert ratio[:, 2].min() > 1.49 and ratio[:, 0].max() < 1.11  # z is not drawn from x's interval
    env.reset()
    ratio = env.param("inertia").numpy() / np.asarray(cfg.params.inertia)
    assert np.all(ratio >= np.asarray(LOW) - 1e-5) and np.all(ratio <= np.asarray(HIGH) + 1e-5)


def test_physical_checks_use_each_component():
    spec = RandomizationSpec(
        {"inertia": ParamDistribution("uniform", low=[0.5, 0.5, -0.1], high=[1, 1, 1], per_component=True)}
    )
    assert spec.value_range("inertia", [1.0, 1.0, 2.0]) == (pytest.approx(-0.2), 2.0)
    with pytest.raises(RandomizationSpecError, match=r"'inertia'.*must be > 0.*-0.2"):
        spec.check_physical({"inertia": [1.0, 1.0, 2.0]}, positive=("inertia",))
    two = RandomizationSpec(
        {"inertia": ParamDistribution("uniform", low=[0.9, 0.9], high=[1.1, 1.1], per_component=True)}
    )
    with pytest.raises(RandomizationSpecError, match=r"'inertia'.*2 components, but the parameter has 3"):
        two.check_physical({"inertia": [1.0, 1.0, 2.0]}, positive=("inertia",))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"distribution": "log_uniform", "per_component": True}, "need distribution 'uniform'"),
        ({"distribution": "uniform", "per_component": False}, "per_component: true"),
        ({"distribution": "uniform", "per_component": True, "high": [1.1, 1.2]}, "lists of 3 numbers"),
        ({"distribution": "uniform", "per_component": True, "low": [1.0, 1.2, 1.0]}, "low <= high"),
    ],
)
def test_bad_per_axis_terms_are_refused_with_what_to_do(kwargs, match):
    args = {"low": [0.9, 0.9, 0.9], "high": [1.1, 1.1, 1.1], **kwargs}
    with pytest.raises(RandomizationSpecError, match=match):
        ParamDistribution(**args)


def test_a_scalar_beside_a_list_is_repeated():
    d = ParamDistribution("uniform", low=0.9, high=[1.1, 1.2, 1.3], per_component=True)
    assert d.low == Components([0.9, 0.9, 0.9]) and d.component_bounds(3)[2] == (0.9, 1.3)
