from __future__ import annotations

import math

import pytest
import torch

from sim.randomization import ParamDistribution, RandomizationSpec, RandomizationSpecError
from sim.sampling import sample_param, sample_params

D = ParamDistribution


def spec() -> RandomizationSpec:
    return RandomizationSpec(
        {
            "mass": D("uniform", low=0.9, high=1.2),
            "inertia": D("log_uniform", low=0.5, high=2.0, per_component=True),
            "latency": D("int_uniform", low=0, high=3, operation="absolute"),
            "force": D(
                "normal",
                mean=0.0,
                std=0.01,
                low=-0.02,
                high=0.02,
                operation="absolute",
                when="interval",
                interval_s=1.0,
            ),
            "offset": D("uniform", low=-0.1, high=0.1, operation="offset", when="startup"),
        },
        name="test",
    )


NOMINAL = {
    "mass": torch.tensor([0.03]),
    "inertia": torch.tensor([1.0, 2.0, 3.0]),
    "latency": torch.tensor([0.0]),
    "force": torch.zeros(3),
    "offset": torch.tensor([5.0]),
}


def test_yaml_round_trip(tmp_path):
    s = spec()
    path = tmp_path / "r.yaml"
    s.to_yaml(path)
    back = RandomizationSpec.from_yaml(path)
    assert back.terms == s.terms and back.name == "test"
    assert back.digest() == s.digest()


def test_digest_ignores_term_order_and_sees_values():
    s = spec()
    reordered = RandomizationSpec(dict(reversed(list(s.terms.items()))))
    assert reordered.digest() == s.digest()
    assert s.replace(mass=D("uniform", low=0.9, high=1.3)).digest() != s.digest()


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"distribution": "gamma", "low": 0, "high": 1}, "unknown distribution 'gamma'"),
        ({"distribution": "uniform", "low": 2, "high": 1}, "low <= high"),
        ({"distribution": "log_uniform", "low": 0, "high": 1}, "low > 0"),
        ({"distribution": "uniform", "low": 0}, "needs 'low' and 'high'"),
        ({"distribution": "normal", "mean": 0}, "'mean' and 'std'"),
        ({"distribution": "uniform", "low": 0, "high": 1, "when": "sometimes"}, "unknown 'when'"),
        ({"distribution": "uniform", "low": 0, "high": 1, "when": "interval"}, "interval_s > 0"),
        ({"distribution": "uniform", "low": 0, "high": 1, "scale": 2}, "unknown keys \\['scale'\\]"),
        ({"distribution": "int_uniform", "low": 0.5, "high": 2}, "integer bounds"),
    ],
)
def test_malformed_terms_give_clear_errors(raw, message):
    with pytest.raises(RandomizationSpecError, match=message):
        RandomizationSpec.from_dict({"terms": {"mass": raw}})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(RandomizationSpecError, match="does not exist"):
        RandomizationSpec.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("terms: [unclosed")
    with pytest.raises(RandomizationSpecError, match="not valid YAML"):
        RandomizationSpec.from_yaml(bad)


def test_unknown_parameters_are_refused():
    with pytest.raises(RandomizationSpecError, match="unknown parameters \\['wingspan'\\]"):
        RandomizationSpec({"wingspan": D("uniform", low=1, high=2)}).check_params({"mass"})


def test_samples_stay_in_bounds_and_follow_the_operation(gen):
    s = spec()
    out = sample_params(s, NOMINAL, 20000, gen)
    mass = out["mass"] / 0.03
    assert mass.min() >= 0.9 and mass.max() <= 1.2
    assert abs(mass.mean().item() - 1.05) < 0.005
    inertia = out["inertia"] / NOMINAL["inertia"]
    assert inertia.min() >= 0.5 - 1e-6 and inertia.max() <= 2.0 + 1e-6
    # log-uniform: log of the factor is uniform, so its mean is the log-midpoint (0 here)
    assert abs(inertia.log().mean().item()) < 0.01
    # per_component: the three axes are drawn independently
    assert abs(torch.corrcoef(inertia.T.log())[0, 1].item()) < 0.05
    latency = out["latency"]
    assert set(latency.unique().tolist()) == {0.0, 1.0, 2.0, 3.0}
    force = out["force"]
    assert force.shape == (20000, 3) and force.abs().max() <= 0.02
    assert abs(force.std().item() - 0.01) < 0.001  # clipping at 2 sigma trims the std a little
    offset = out["offset"]
    assert offset.min() >= 4.9 and offset.max() <= 5.1


def test_same_seed_same_samples_different_seed_different():
    s = spec()
    a = sample_params(s, NOMINAL, 64, torch.Generator().manual_seed(7))
    b = sample_params(s, NOMINAL, 64, torch.Generator().manual_seed(7))
    c = sample_params(s, NOMINAL, 64, torch.Generator().manual_seed(8))
    for k in a:
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["mass"], c["mass"])


def test_term_order_does_not_change_draws():
    s = spec()
    reordered = RandomizationSpec(dict(reversed(list(s.terms.items()))))
    a = sample_params(s, NOMINAL, 32, torch.Generator().manual_seed(3))
    b = sample_params(reordered, NOMINAL, 32, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_when_filter_and_normal_statistics(gen):
    only_startup = sample_params(spec(), NOMINAL, 10, gen, when=("startup",))
    assert set(only_startup) == {"offset"}
    x = sample_param(D("normal", mean=1.0, std=0.1), torch.tensor([1.0]), 50000, gen)
    assert abs(x.mean().item() - 1.0) < 0.003 and abs(x.std().item() - 0.1) < 0.003
    assert math.isclose(sample_param(D("constant", mean=2.5), torch.tensor([1.0]), 3, gen)[0, 0].item(), 2.5)
