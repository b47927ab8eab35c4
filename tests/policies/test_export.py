"""Export: ONNX parity with the trained rsl_rl actor, metadata, the torch-free loader, and the C header."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from policies.export import OPSET, build_onnx, metadata_of
from policies.onnx_policy import FORMAT_VERSION, PolicyFileError, load_policy, profile_hash
from sim.quadrotor.config import QuadrotorTaskCfg, default_randomization
from sim.tasks import make_env

pytestmark = pytest.mark.usefixtures("one_thread")

PARITY_ATOL = 1e-5  # normalized action units (contract 4)
C_RTOL = 1e-4  # of each command's range (high - low), C vs onnxruntime


def reference(trained_run, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trained rsl_rl actor (deterministic mean, its own normalizer) and the action spec's scaling in torch."""
    actor = trained_run.runner.alg.get_policy()
    actor.eval()
    env = trained_run.runner.env
    with torch.no_grad():
        action = actor({"policy": torch.from_numpy(obs)})
        physical = env.action_spec.to_physical(action)
    return action.numpy(), physical.numpy()


def env_observations(trained_run, n: int = 64, steps: int = 40) -> np.ndarray:
    """Real observations: the trained policy flying fresh envs (noise, latency, resets included)."""
    env = make_env("quadrotor-hover", n, seed=11)
    actor = trained_run.runner.alg.get_policy()
    obs, _ = env.reset()
    collected = []
    with torch.no_grad():
        for _ in range(steps):
            collected.append(obs["policy"].clone())
            obs, *_ = env.step(actor({"policy": obs["policy"]}))
    return torch.cat(collected).numpy()


def random_observations(dim: int, n: int = 512) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, dim)) * rng.choice([0.1, 1.0, 5.0], size=(n, 1))).astype(np.float32)


def command_range(spec) -> np.ndarray:
    return np.asarray(spec.high) - np.asarray(spec.low)


def test_onnx_file_is_valid_with_pinned_opset_and_full_metadata(trained_run):
    model = onnx.load(str(trained_run.paths["onnx"]))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    props = {p.key: p.value for p in model.metadata_props}
    env = trained_run.runner.env
    assert props["sim2real.format_version"] == FORMAT_VERSION
    assert props["sim2real.task"] == "quadrotor-hover"
    assert props["sim2real.obs_spec"] == env.obs_spec.to_json()
    assert props["sim2real.action_spec"] == env.action_spec.to_json()
    assert float(props["sim2real.control_hz"]) == 100.0
    assert json.loads(props["sim2real.profile"]) == QuadrotorTaskCfg().params.to_dict()
    assert props["sim2real.profile_hash"] == profile_hash(QuadrotorTaskCfg().params.to_dict())
    assert props["sim2real.randomization_digest"] == default_randomization().digest()
    assert props["sim2real.git_commit"] and props["sim2real.git_commit"] != "unknown"
    # only the actor: the graph's weights are the actor's (obs 4 x 25 -> 64 -> 64 -> 4), nothing of the critic
    shapes = sorted(tuple(i.dims) for i in model.graph.initializer if len(i.dims) == 2)
    assert shapes == [(64, 4), (64, 64), (100, 64)]


def test_loader_reads_typed_metadata(trained_run):
    policy = load_policy(trained_run.paths["onnx"])
    env = trained_run.runner.env
    assert policy.obs_spec == env.obs_spec
    assert policy.action_spec == env.action_spec
    assert policy.control_hz == 100.0 and policy.task == "quadrotor-hover"
    assert policy.profile["mass"] == pytest.approx(0.027)
    assert policy.randomization_digest == default_randomization().digest()


@pytest.mark.parametrize("source", ["random", "env"])
def test_onnxruntime_matches_torch_actor_normalizer_and_scaling(trained_run, source):
    policy = load_policy(trained_run.paths["onnx"])
    obs = random_observations(policy.obs_spec.dim) if source == "random" else env_observations(trained_run)
    ref_action, ref_command = reference(trained_run, obs)
    command, action = policy.run(obs)
    assert command.shape == (obs.shape[0], 4) and command.dtype == np.float32
    assert np.abs(action - ref_action).max() <= PARITY_ATOL
    # physical: 1e-5 of the command range (RPM: 1e-5 * 21702 = 0.22 RPM); float32 at 2e4 RPM resolves 0.002 RPM
    assert np.all(np.abs(command - ref_command) <= PARITY_ATOL * command_range(policy.action_spec))
    low, high = np.asarray(policy.action_spec.low), np.asarray(policy.action_spec.high)
    assert np.all(command >= low) and np.all(command <= high)
    # a single observation gives the same as the batch row
    np.testing.assert_array_equal(policy(obs[3]), command[3])
    if source == "env":
        assert np.isfinite(obs).all() and np.abs(obs).max() > 0.1  # real, varied observations


def test_loader_rejects_wrong_observation_shape(trained_run):
    policy = load_policy(trained_run.paths["onnx"])
    with pytest.raises(PolicyFileError, match=r"expected observations of shape \(100,\)"):
        policy(np.zeros(21, dtype=np.float32))


def _write_variant(trained_run, tmp_path: Path, name: str, change) -> Path:
    from policies.actor import load_checkpoint

    ck = load_checkpoint(trained_run.run_dir)
    meta = metadata_of(ck)
    change(meta)
    path = tmp_path / name
    onnx.save(build_onnx(ck.weights, ck.action_spec, meta), str(path))
    return path


def test_loader_rejects_files_without_metadata_naming_what_is_missing(trained_run, tmp_path):
    bare = _write_variant(trained_run, tmp_path, "bare.onnx", lambda m: m.clear())
    with pytest.raises(PolicyFileError, match=r"sim2real\.obs_spec.*sim2real export"):
        load_policy(bare)
    partial = _write_variant(trained_run, tmp_path, "partial.onnx", lambda m: m.pop("profile_hash"))
    with pytest.raises(PolicyFileError, match=r"lack \['sim2real\.profile_hash'\]"):
        load_policy(partial)


def test_loader_rejects_unknown_format_version_and_edited_profile(trained_run, tmp_path):
    future = _write_variant(trained_run, tmp_path, "v99.onnx", lambda m: m.update(format_version="99"))
    with pytest.raises(PolicyFileError, match="unknown policy format version '99'"):
        load_policy(future)

    def edit(m):
        m["profile"] = m["profile"].replace('"mass":0.027', '"mass":0.03')

    edited = _write_variant(trained_run, tmp_path, "edited.onnx", edit)
    with pytest.raises(PolicyFileError, match="profile hash mismatch"):
        load_policy(edited)
    with pytest.raises(PolicyFileError, match="does not exist"):
        load_policy(tmp_path / "missing.onnx")


def test_loader_imports_neither_torch_nor_the_simulator(trained_run):
    code = (
        "import sys; from policies.onnx_policy import load_policy; import numpy as np; "
        f"p = load_policy({str(trained_run.paths['onnx'])!r}); p(np.zeros(100, dtype=np.float32)); "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('sim.quadrotor')]; "
        "assert not bad, bad; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_c_header_compiles_and_matches_onnxruntime(trained_run):
    from policies.actor import load_checkpoint
    from policies.c_export import c_compiler, run_header

    if c_compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) on this machine: policy.h cannot be built")
    policy = load_policy(trained_run.paths["onnx"])
    obs = np.concatenate([env_observations(trained_run, n=16, steps=16), random_observations(100, 256)])
    result = run_header(trained_run.paths["header"], obs, repeats=50)
    expected = policy(obs)
    assert result.commands.shape == expected.shape
    assert np.all(np.abs(result.commands - expected) <= C_RTOL * command_range(policy.action_spec))
    num_params = load_checkpoint(trained_run.run_dir).weights.num_params + 4 * 4
    assert result.param_bytes == 4 * num_params  # sizeof the const arrays: 100*2 + 100*64+64 + 64*64+64 + 64*4+4 + 16
    assert 0 < result.ns_per_inference < 1e6
    text = trained_run.paths["header"].read_text()
    assert "malloc" not in text and "sim2real_policy(const float obs[SIM2REAL_POLICY_OBS_DIM]" in text
    print(f"policy.h: {result.param_bytes} bytes of weights, {result.ns_per_inference / 1000:.2f} us per inference")


@pytest.mark.parametrize(
    ("task", "interface", "activation"),
    [("quadrotor-track", "rpm", "tanh"), ("quadrotor-hover", "ctbr", "elu")],
)
def test_every_task_interface_and_activation_exports_with_parity(tmp_path, task, interface, activation):
    """Per-element scaling (CTBR: thrust in N, rates in rad/s), the ELU path in ONNX and C, the track layout."""
    from policies.c_export import c_compiler, run_header
    from policies.export import export
    from policies.train import train
    from tests.policies.conftest import small_cfg

    cfg = small_cfg(task, iterations=2, envs=32)
    cfg.env.action_interface = interface
    cfg.actor.activation = activation
    result = train(cfg, tmp_path / "run", progress=False)
    paths = export(tmp_path / "run")
    policy = load_policy(paths["onnx"])
    env = result.runner.env
    assert policy.obs_spec == env.obs_spec and policy.action_spec.interface == interface
    obs = random_observations(env.obs_spec.dim, 256)
    actor = result.runner.alg.get_policy()
    actor.eval()
    with torch.no_grad():
        ref_action = actor({"policy": torch.from_numpy(obs)})
        ref_command = env.action_spec.to_physical(ref_action).numpy()
    command, action = policy.run(obs)
    assert np.abs(action - ref_action.numpy()).max() <= PARITY_ATOL
    assert np.all(np.abs(command - ref_command) <= PARITY_ATOL * command_range(policy.action_spec))
    if c_compiler() is not None:
        c = run_header(paths["header"], obs, repeats=1)
        assert np.all(np.abs(c.commands - command) <= C_RTOL * command_range(policy.action_spec))
