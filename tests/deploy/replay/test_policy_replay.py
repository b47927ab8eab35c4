"""Open-loop replay of the exported hover policy on logged observations, and the diagnosis of mismatches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from deploy.replay import load_flight
from deploy.replay.policy_replay import MATCH_TOL, replay_policy
from policies.onnx_policy import load_policy

ROOT = Path(__file__).resolve().parents[3]


def _edited_policy(src: Path, dst: Path, name: str, change) -> Path:
    """Another model, as if exported so: the weights changed and the digest stamped again."""
    from policies.onnx_digest import stamp
    from policies.onnx_policy import PREFIX

    model = onnx.load(src)
    for init in model.graph.initializer:
        if init.name == name:
            init.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(init)), name))
    stamp(model, PREFIX)
    onnx.save(model, dst)
    return dst


def test_same_policy_reproduces_every_logged_action(logs, policy):
    r = replay_policy(load_flight(logs["good"]), policy)
    assert r.verdict == "match"
    assert len(r.t) == 400 and r.max_abs_diff < 1e-6
    assert max(r.obs_term_diff.values()) < 1e-5  # the observation is rebuilt from the logged state exactly
    assert r.rms_by_shift[0] < 1e-6 < 0.01 < min(v for k, v in r.rms_by_shift.items() if k != 0)


def test_one_cycle_shift_is_diagnosed_as_timing(logs, policy):
    r = replay_policy(load_flight(logs["late"]), policy)
    assert r.verdict == "timing"
    assert r.rms_by_shift[1] < MATCH_TOL < r.rms_by_shift[0]
    assert "1 cycle(s) earlier" in r.explanation


def test_rebuilt_observation_mismatch_is_diagnosed_as_observation_pipeline(logs, policy):
    r = replay_policy(load_flight(logs["gyro_deg"]), policy)
    assert r.verdict == "observation pipeline"
    assert r.max_abs_diff < 1e-6  # the model is right: it reproduces the actions from what it was fed
    assert r.obs_term_diff["angular_velocity"] > 1.0
    assert r.obs_term_diff["linear_velocity"] < 1e-5 and r.obs_term_diff["rotation_matrix"] < 1e-5
    assert "angular_velocity" in r.explanation


def test_other_weights_are_diagnosed_as_different_model(logs, policy, tmp_path):
    rng = np.random.default_rng(0)
    other = _edited_policy(
        policy.path, tmp_path / "other.onnx", "w1", lambda w: w + rng.normal(0, 0.3, w.shape).astype(w.dtype)
    )
    r = replay_policy(load_flight(logs["good"]), load_policy(other))
    assert r.verdict == "different model"
    assert r.mismatch_fraction > 0.9
    assert min(r.rms_by_shift.values()) > MATCH_TOL


def test_constant_offset_is_diagnosed_as_different_scaling(logs, policy, tmp_path):
    other = _edited_policy(policy.path, tmp_path / "offset.onnx", "action_offset", lambda o: o + np.float32(300.0))
    r = replay_policy(load_flight(logs["good"]), load_policy(other))
    assert r.verdict == "different model" and "offset" in r.explanation
    np.testing.assert_allclose(r.mean_offset, 300.0 / policy.action_spec.scale[0], rtol=0.05)


def test_replay_command_writes_report_plots_and_json(logs, tmp_path, capsys):
    import sim2real

    out = tmp_path / "report"
    code = sim2real.main(["replay", str(logs["good"]), "--policy", str(policy_path()), "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["policy_replay"]["verdict"] == "match"
    assert [h["horizon_s"] for h in summary["resimulation"]["horizons"]] == [0.1, 0.5, 1.0]
    assert summary["timing"]["median_ms"] == pytest.approx(10.0, abs=1e-6)
    for name in ("report.md", "states.png", "actions.png", "safety.png", "timing.png", "replay.json"):
        assert (out / name).stat().st_size > 1000 or name == "replay.json"
    assert "**match**" in (out / "report.md").read_text()


def test_replay_command_refuses_a_log_without_state(tmp_path, caplog):
    import sim2real

    bogus = tmp_path / "x.mcap"
    bogus.write_bytes(b"\x89MCAP0\r\n")
    assert sim2real.main(["replay", str(bogus), "--no-resim"]) == 2


def policy_path() -> Path:
    return ROOT / "tests" / "data" / "hover_policy.onnx"


def test_reading_and_policy_replay_import_without_torch(logs):
    code = f"""
import sys
sys.modules["torch"] = None
from deploy.replay import load_flight
from deploy.replay.policy_replay import replay_policy
from policies.onnx_policy import load_policy
r = replay_policy(load_flight({str(logs["good"])!r}), load_policy({str(policy_path())!r}))
print(r.verdict, "torch" in sys.modules and sys.modules["torch"] is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "match False"


def test_state_pairing_follows_what_each_cycle_recorded():
    from deploy.replay.policy_replay import _used

    # cycles at 0, 10, 20 ms; the pose stamped 8 ms arrived after the 10 ms cycle read its state (transport
    # delay): that cycle recorded the 0 ms pose again, the 20 ms cycle recorded the 8 ms one
    log_t = np.array([0.0, 0.010, 0.020])
    stamps = np.array([0.0, 0.0, 0.008])
    cycles = np.array([0.0, 0.010, 0.020])
    np.testing.assert_array_equal(_used(log_t, stamps, cycles), [0, 1, 2])
    assert stamps[_used(log_t, stamps, cycles)][1] == 0.0  # by stamps alone, 10 ms would pair with 8 ms
    # a log from elsewhere: no state recorded at the cycle times -> the last measurement before each cycle
    np.testing.assert_array_equal(_used(np.array([0.003, 0.013]), np.array([0.002, 0.012]), cycles), [0, 0, 1])


def test_replay_without_policy_uses_the_logged_path_or_names_it(caplog):
    """No --policy: the policy file the log's metadata names is used when it exists from here; otherwise the
    warning names that path and the flag to pass."""
    import argparse
    import types

    from deploy.replay.cli import _policy

    def flight(named: str):
        return types.SimpleNamespace(metadata={"sim2real": {"policy": named}})

    found = _policy(argparse.Namespace(policy=None), flight(str(policy_path())))
    assert found is not None and found.action_spec.dim == 4
    with caplog.at_level("WARNING"):
        assert _policy(argparse.Namespace(policy=None), flight("runs/gone/policy.onnx")) is None
    assert "runs/gone/policy.onnx" in caplog.text and "--policy" in caplog.text
