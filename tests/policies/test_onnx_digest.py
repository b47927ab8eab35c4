"""The exported policy's digest (policies/onnx_digest.py): a file whose network or metadata was edited after
export is refused at load, naming what changed. The issue's case: obs_spec with two terms of one size swapped, and
one scale changed, were accepted and flown (0.55 m error, a geofence exit)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from policies.onnx_digest import DigestError, graph_bytes, stamp_file
from policies.onnx_policy import PREFIX, PolicyFileError, load_policy

ORIGINAL = Path(__file__).resolve().parents[1] / "data" / "hover_policy.onnx"


def edited(tmp_path: Path, edit) -> Path:
    model = onnx.load(str(ORIGINAL))
    edit(model)
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    return path


def set_meta(model, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == PREFIX + key:
            prop.value = value
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = PREFIX + key, value


def meta(model, key: str) -> str:
    return next(p.value for p in model.metadata_props if p.key == PREFIX + key)


def swap_linear_and_angular_velocity(model) -> None:
    spec = json.loads(meta(model, "obs_spec"))
    names = [t["name"] for t in spec["terms"]]
    i, j = names.index("linear_velocity"), names.index("angular_velocity")
    assert spec["terms"][i]["size"] == spec["terms"][j]["size"] == 3
    spec["terms"][i], spec["terms"][j] = spec["terms"][j], spec["terms"][i]
    set_meta(model, "obs_spec", json.dumps(spec, sort_keys=True, separators=(",", ":")))


def scale_position_error(model) -> None:
    spec = json.loads(meta(model, "obs_spec"))
    spec["terms"][0]["scale"] = 2.0
    set_meta(model, "obs_spec", json.dumps(spec, sort_keys=True, separators=(",", ":")))


def raise_max_rpm(model) -> None:
    spec = json.loads(meta(model, "action_spec"))
    spec["high"] = [30000.0] * 4
    set_meta(model, "action_spec", json.dumps(spec, sort_keys=True, separators=(",", ":")))


def nudge_a_weight(model) -> None:
    init = model.graph.initializer[0]
    values = numpy_helper.to_array(init).copy()
    values.flat[0] += 1e-3
    init.CopyFrom(numpy_helper.from_array(values, init.name))


def drop_digest(model) -> None:
    kept = [p for p in model.metadata_props if p.key not in (PREFIX + "digest", PREFIX + "digests")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)


def test_the_untouched_export_loads_with_its_digest():
    policy = load_policy(ORIGINAL)
    assert len(policy.digest) == 64
    assert policy(np.zeros(policy.obs_spec.dim, dtype=np.float32)).shape == (4,)


def test_a_resave_without_changes_still_loads(tmp_path):
    assert load_policy(edited(tmp_path, lambda m: None)).digest == load_policy(ORIGINAL).digest


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (swap_linear_and_angular_velocity, "sim2real.obs_spec (edited after export)"),
        (scale_position_error, "sim2real.obs_spec (edited after export)"),
        (raise_max_rpm, "sim2real.action_spec (edited after export)"),
        (lambda m: set_meta(m, "control_hz", "50.0"), "sim2real.control_hz (edited after export)"),
        (lambda m: set_meta(m, "extra", "1"), "sim2real.extra (added after export)"),
        (nudge_a_weight, "the network (edited after export)"),
    ],
)
def test_an_edit_after_export_is_refused_naming_the_field(tmp_path, edit, named):
    with pytest.raises(PolicyFileError, match="does not match its digest") as err:
        load_policy(edited(tmp_path, edit))
    assert named in str(err.value) and "re-export" in str(err.value)


def test_a_file_without_a_digest_is_refused_with_the_way_out(tmp_path):
    with pytest.raises(PolicyFileError, match=r"carries no digest.*sim2real export RUN_DIR"):
        load_policy(edited(tmp_path, drop_digest))


def test_a_truncated_or_foreign_file_is_refused_in_one_line(tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(ORIGINAL.read_bytes()[:-200])
    with pytest.raises(PolicyFileError):
        load_policy(cut)
    with pytest.raises(DigestError, match="truncated"):
        graph_bytes(ORIGINAL.read_bytes()[:30])
    text = tmp_path / "policy.onnx"
    shutil.copy(Path(__file__), text)
    with pytest.raises(PolicyFileError, match="not a loadable ONNX model"):
        load_policy(text)


def test_graph_bytes_are_the_graph_onnx_serializes():
    model = onnx.load(str(ORIGINAL))
    assert graph_bytes(ORIGINAL.read_bytes()) == model.graph.SerializeToString()


@pytest.mark.parametrize("name", ["hover_policy.onnx", "hover_policy_history.onnx"])
def test_the_test_data_carry_the_current_digest_and_stamping_is_idempotent(tmp_path, name):
    source = ORIGINAL.parent / name
    copy = tmp_path / name
    shutil.copy(source, copy)
    digest = stamp_file(copy, PREFIX)
    assert copy.read_bytes() == source.read_bytes() and load_policy(source).digest == digest


def test_a_deliberate_edit_stamped_again_loads_with_a_new_digest(tmp_path):
    """What the fixtures that change a weight on purpose do: the edited file is a new, consistent model."""
    path = edited(tmp_path, nudge_a_weight)
    with pytest.raises(PolicyFileError, match="the network"):
        load_policy(path)
    assert stamp_file(path, PREFIX) == load_policy(path).digest != load_policy(ORIGINAL).digest
