from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from sim.obs_spec import HISTORY_TERM, ObsSpec, ObsSpecError, ObsTerm, split_history, with_history

SPEC = ObsSpec((ObsTerm("a", 2, 2.0, 0.1, "m"), ObsTerm("b", 3), ObsTerm("c", 1, 0.5)))


def test_layout_and_slices():
    assert SPEC.dim == 6
    assert SPEC.names == ("a", "b", "c")
    assert SPEC.slice("b") == slice(2, 5)
    assert SPEC.scales() == [2.0, 2.0, 1.0, 1.0, 1.0, 0.5]
    assert SPEC.noise_stds() == [0.1, 0.1, 0.0, 0.0, 0.0, 0.0]


def test_assemble_numpy_and_torch_agree_and_scale():
    vals = {"a": np.array([[1.0, 2.0]]), "b": np.array([[3.0, 4.0, 5.0]]), "c": np.array([[6.0]])}
    out = SPEC.assemble(vals)
    np.testing.assert_allclose(out, [[2.0, 4.0, 3.0, 4.0, 5.0, 3.0]])
    out_t = SPEC.assemble({k: torch.tensor(v) for k, v in vals.items()})
    np.testing.assert_allclose(out_t.numpy(), out)
    # The component-major form used by the batched simulator gives the same vector.
    cols = SPEC.columns({k: torch.tensor(v.T) for k, v in vals.items()})
    np.testing.assert_allclose(torch.stack(cols, -1).numpy(), out)


def test_order_is_the_declared_order_not_the_dict_order():
    vals = {"c": np.array([6.0]), "b": np.array([3.0, 4.0, 5.0]), "a": np.array([1.0, 2.0])}
    np.testing.assert_allclose(SPEC.assemble(vals), [2.0, 4.0, 3.0, 4.0, 5.0, 3.0])


@pytest.mark.parametrize(
    "vals, message",
    [
        ({"a": np.zeros(2), "b": np.zeros(3)}, "missing \\['c'\\]"),
        ({"a": np.zeros(2), "b": np.zeros(3), "c": np.zeros(1), "d": np.zeros(1)}, "unexpected \\['d'\\]"),
        ({"a": np.zeros(3), "b": np.zeros(3), "c": np.zeros(1)}, "term 'a': expected last dimension 2"),
    ],
)
def test_bad_values_are_refused_with_names(vals, message):
    with pytest.raises(ObsSpecError, match=message):
        SPEC.assemble(vals)


def test_json_round_trip_and_digest():
    back = ObsSpec.from_json(SPEC.to_json())
    assert back == SPEC
    assert back.digest() == SPEC.digest()
    rescaled = ObsSpec((ObsTerm("a", 2, 3.0), ObsTerm("b", 3), ObsTerm("c", 1, 0.5)))
    assert rescaled.digest() != SPEC.digest()
    with pytest.raises(ObsSpecError, match=r"term #0 field 'scale': expected 2\.0, found 3\.0"):
        SPEC.check_same_layout(rescaled)
    with pytest.raises(ObsSpecError, match="not valid JSON"):
        ObsSpec.from_json("{nope")


def test_malformed_terms_are_refused():
    with pytest.raises(ObsSpecError, match="unique"):
        ObsSpec((ObsTerm("a", 1), ObsTerm("a", 2)))
    with pytest.raises(ObsSpecError, match="positive integer"):
        ObsTerm("a", 0)
    with pytest.raises(ObsSpecError, match="must have 'name' and 'size'"):
        ObsSpec.from_dict({"terms": [{"name": "x"}]})


def test_specs_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from sim.obs_spec import ObsSpec, ObsTerm\n"
        "from sim.randomization import RandomizationSpec\n"
        "from sim.action_spec import ActionSpec\n"
        "from sim.quadrotor.params import QuadrotorParams\n"
        "import numpy as np\n"
        "s = ObsSpec((ObsTerm('x', 2, 2.0),))\n"
        "print(s.assemble({'x': np.ones(2)}).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[2.0, 2.0]"


def test_history_round_trip_and_bad_layouts_are_refused():
    base = ObsSpec((ObsTerm("a", 2, 0.5), ObsTerm("b", 3)))
    spec = with_history(base, 4)
    assert spec.names == ("a", "b", HISTORY_TERM) and spec.dim == 5 * 5
    assert split_history(spec) == (base, 4)
    assert split_history(ObsSpec.from_json(spec.to_json())) == (base, 4)  # survives the exported file
    assert with_history(base, 0) is base and split_history(base) == (base, 0)
    with pytest.raises(ObsSpecError, match="whole number of control steps"):
        with_history(base, 1.5)
    with pytest.raises(ObsSpecError, match="already has"):
        with_history(spec, 1)
    with pytest.raises(ObsSpecError, match="must be the last term"):
        split_history(ObsSpec((ObsTerm(HISTORY_TERM, 5), *base.terms)))
    with pytest.raises(ObsSpecError, match="not a whole number of 5-column"):
        split_history(ObsSpec((*base.terms, ObsTerm(HISTORY_TERM, 7))))
