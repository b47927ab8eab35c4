"""Never worse (policies/compare.py): a retrained policy is recommended only when it is no worse than the old one on
the identified randomization, the default one and the fitted vehicle; `sim2real sysid --retrain` does it all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from policies.compare import TOLERANCES, CompareError, compare, conditions, no_worse, write_report
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.quadrotor.params import QuadrotorParams
from sim.tasks import make_env

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "data" / "hover_policy_history.onnx"  # the current hover observation layout
FOREIGN_LOG = ROOT / "tests" / "data" / "sysid_rotorpy_foreign.mcap"


def sysid_dir(tmp_path: Path, mass_ratio: float = 1.1, jx_ratio: float = 0.8) -> Path:
    """What `sim2real sysid --out` writes, by hand: the default spec and a fitted profile."""
    out = tmp_path / "sysid"
    out.mkdir()
    QuadrotorTaskCfg().randomization.to_yaml(out / "randomization.yaml")
    nominal = QuadrotorParams().to_dict()
    fitted = {**nominal, "mass": nominal["mass"] * mass_ratio}
    fitted["inertia"] = [nominal["inertia"][0] * jx_ratio, *nominal["inertia"][1:]]
    (out / "profile.yaml").write_text(yaml.safe_dump({"quadrotor": fitted}))
    return out


def metrics(success: float, crash: float, rmse: float) -> dict[str, float]:
    return {"success_rate": success, "crash_rate": crash, "position_rmse_m": rmse}


def test_no_worse_allows_evaluation_noise_and_names_what_got_worse():
    old = metrics(0.95, 0.010, 0.020)
    assert no_worse(old, metrics(0.95 - TOLERANCES["success_rate"], 0.015, 0.021))[0]
    ok, lines = no_worse(old, metrics(0.93, 0.010, 0.020))
    assert not ok and lines[0] == "success rate: 93.0 % vs 95.0 % (WORSE)" and lines[1].endswith("(no worse)")
    ok, lines = no_worse(old, metrics(0.99, 0.016, 0.010))
    assert not ok and lines[1] == "crash rate: 1.60 % vs 1.00 % (WORSE)"
    ok, lines = no_worse(old, metrics(0.99, 0.0, 0.0211))
    assert not ok and lines[2] == "position RMSE: 2.11 cm vs 2.00 cm (WORSE)"


def test_the_fitted_vehicle_is_the_fitted_profile_exactly_with_the_identified_conditions(tmp_path):
    out = sysid_dir(tmp_path, mass_ratio=1.1, jx_ratio=0.8)
    cfg = QuadrotorTaskCfg()
    found = conditions(out, cfg)
    assert list(found) == ["identified", "default", "fitted vehicle"]
    spec, params = found["fitted vehicle"]
    assert params == cfg.params  # nominal params: the policy's action spec (hover speed) is unchanged
    assert spec.get("action_latency") == found["identified"][0].get("action_latency")  # conditions kept
    cfg.randomization = spec
    env = make_env("quadrotor-hover", 64, seed=3, cfg=cfg)
    env.reset()
    nominal = QuadrotorParams()
    assert torch.allclose(env.param("mass")[:, 0], torch.full((64,), 1.1 * nominal.mass), rtol=1e-6)
    inertia = env.param("inertia")
    assert torch.allclose(inertia[:, 0], torch.full((64,), 0.8 * nominal.inertia[0]), rtol=1e-6)
    assert torch.allclose(inertia[:, 2], torch.full((64,), nominal.inertia[2]), rtol=1e-6)
    assert env.action_spec == make_env("quadrotor-hover", 1, cfg=QuadrotorTaskCfg()).action_spec


def test_a_policy_against_itself_is_recommended_with_equal_numbers(tmp_path):
    out = sysid_dir(tmp_path)
    result = compare(POLICY, POLICY, out, episodes=64, seconds=4.0)
    assert result["recommend"] and result["summary"].startswith("recommended")
    for row in result["conditions"].values():
        assert row["old"] == row["new"] and row["no_worse"]
    assert result["conditions"]["fitted vehicle"]["old"] != result["conditions"]["default"]["old"]
    report = write_report(tmp_path / "compare", result).read_text()
    assert "| fitted vehicle |" in report and "**recommended" in report
    assert json.loads((tmp_path / "compare" / "compare.json").read_text())["recommend"] is True


def test_policies_of_different_observations_or_actions_or_a_missing_identification_are_refused(tmp_path):
    with pytest.raises(CompareError, match="not the same task with the same observation"):
        compare(POLICY, ROOT / "tests" / "data" / "hover_policy.onnx", sysid_dir(tmp_path))  # no history
    with pytest.raises(CompareError, match="act through different action specs"):
        compare(POLICY, ROOT / "tests" / "data" / "hover_policy_ctbr.onnx", tmp_path)
    with pytest.raises(CompareError, match=r"expected what `sim2real sysid LOG --out DIR` writes, missing"):
        compare(POLICY, POLICY, tmp_path)


def sysid(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "sim2real.py", "sysid", str(FOREIGN_LOG), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_sysid_retrain_refuses_before_reading_the_log(tmp_path):
    run = sysid("--out", str(tmp_path / "a"), "--retrain", str(tmp_path / "nope.onnx"))
    assert run.returncode == 2 and "--retrain" in run.stderr and "no such policy" in run.stderr
    (tmp_path / "b" / "retrain").mkdir(parents=True)
    run = sysid("--out", str(tmp_path / "b"), "--retrain", str(POLICY))
    assert run.returncode == 2 and "a retraining never overwrites one" in run.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b" / "sysid.json").exists()


def test_sysid_retrain_trains_exports_compares_and_keeps_the_old_policy_when_the_new_is_worse(tmp_path):
    """Two iterations of training cannot fly: the comparison must say so on every condition."""
    out = tmp_path / "sysid"
    run = sysid("--out", str(out), "--retrain", str(POLICY), "--retrain-iterations", "2", "--compare-episodes", "32",
                "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    retrain = summary["retrain"]
    assert retrain["recommend"] is False and Path(retrain["policy"]) == out / "retrain" / "policy.onnx"
    assert retrain["summary"].startswith("not recommended: the new policy is worse on identified")
    result = json.loads((out / "compare" / "compare.json").read_text())
    assert set(result["conditions"]) == {"identified", "default", "fitted vehicle"}
    for row in result["conditions"].values():
        assert row["new"]["crash_rate"] > row["old"]["crash_rate"] + TOLERANCES["crash_rate"]
    assert (out / "retrain" / "run.json").is_file() and (out / "randomization.yaml").is_file()
