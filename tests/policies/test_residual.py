"""The bounded residual actor (policies/residual.py): it starts at its prior, only the residual learns, its reach is
bounded, and a trained one exports as one network whose ONNX and C header compute prior + scale tanh(residual)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rsl_rl.modules import MLP

from policies.actor import CheckpointError, weights_from_state_dict
from policies.residual import BoundedResidual, wrap_in_residual
from tests.policies.test_export import C_RTOL, PARITY_ATOL, command_range, random_observations

pytestmark = pytest.mark.usefixtures("one_thread")


def _mlp(seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP(6, 2, [16, 16], "tanh")


def test_it_starts_at_the_prior_only_the_residual_learns_and_its_reach_is_bounded():
    prior = _mlp(0)
    module = BoundedResidual(_mlp(0), _mlp(1), scale=0.3)
    x = torch.randn(512, 6, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        start = (module(x) - prior(x)).abs().max()
    assert 0 < start <= 0.01 * 0.3  # the residual's last layer starts at 1 % of its reach
    module(x).square().sum().backward()
    assert all(p.grad is None for p in module.prior.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.residual.parameters())
    with torch.no_grad():  # however large the residual grows, the action stays within scale of the prior's
        for p in module.residual.parameters():
            p.mul_(1000.0)
        reach = (module(x) - prior(x)).abs()
    assert 0.29 < reach.max() <= 0.3
    assert torch.equal(module.state_dict()["scale"], torch.tensor(0.3))
    with pytest.raises(ValueError, match="positive reach"):
        BoundedResidual(_mlp(0), _mlp(1), scale=0.0)


def _trained_residual(tmp_path, scale: float = 0.35):
    """Hover PPO whose actor is wrapped before the first rollout; the residual's last layer is then set to its
    full size so that its share of the action is large enough for the parity checks below to see."""
    from policies.train import train
    from tests.policies.conftest import small_cfg

    cfg = small_cfg("quadrotor-hover", seed=0, iterations=2, envs=16)
    cfg.save_interval = 1

    def start(runner) -> None:
        residual = wrap_in_residual(runner, scale).residual
        with torch.no_grad():
            last = [m for m in residual.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.mul_(100.0)
            last.bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(3))

    return train(cfg, tmp_path / "run", progress=False, on_start=start)


def test_a_trained_residual_exports_as_one_network(tmp_path):
    import onnx

    from policies.actor import TorchActor, load_checkpoint
    from policies.c_export import c_compiler, run_header
    from policies.export import export
    from policies.onnx_policy import load_policy

    result = _trained_residual(tmp_path)
    env, actor = result.runner.env, result.runner.alg.actor
    assert isinstance(actor.mlp, BoundedResidual)
    ck = load_checkpoint(tmp_path / "run")
    assert (
        len(ck.weights.layers) == 3 and len(ck.weights.residual) == 3 and ck.weights.residual_scale == np.float32(0.35)
    )
    obs = random_observations(env.obs_spec.dim, 256)
    actor.eval()
    with torch.no_grad():
        ref = actor.mlp(actor.obs_normalizer(torch.from_numpy(obs))).numpy()
        prior = actor.mlp.prior(actor.obs_normalizer(torch.from_numpy(obs))).numpy()
    assert np.abs(ref - prior).max() > 0.1  # the residual moves the action: parity below checks its path
    np.testing.assert_allclose(TorchActor(ck.weights)(torch.from_numpy(obs)).numpy(), ref, atol=PARITY_ATOL)
    paths = export(tmp_path / "run")
    policy = load_policy(paths["onnx"])
    meta = {p.key: p.value for p in onnx.load(str(paths["onnx"])).metadata_props}
    assert meta["sim2real.residual_scale"] == "0.3499999940395355"  # the float32 buffer, as the network uses it
    command, action = policy.run(obs)
    assert np.abs(action - ref).max() <= PARITY_ATOL
    if c_compiler() is None:
        pytest.fail("no C compiler: the header's parity needs cc or gcc (apt-get install gcc)")
    c = run_header(paths["header"], obs, repeats=1)
    assert np.all(np.abs(c.commands - command) <= C_RTOL * command_range(policy.action_spec))


def test_a_residual_state_dict_without_its_parts_is_refused():
    module = BoundedResidual(_mlp(0), _mlp(1), scale=0.3)
    state = {f"mlp.{k}": v for k, v in module.state_dict().items()}
    w = weights_from_state_dict(state, "tanh", obs_normalization=False)
    assert len(w.layers) == len(w.residual) == 3 and w.residual_scale == pytest.approx(0.3)
    for missing in ("mlp.scale", "mlp.residual.", "mlp.prior."):
        broken = {k: v for k, v in state.items() if not k.startswith(missing)}
        with pytest.raises(CheckpointError, match="residual actor's state dict needs"):
            weights_from_state_dict(broken, "tanh", obs_normalization=False)
    state["mlp.residual.4.weight"] = torch.zeros(3, 16)  # 3 actions where the prior has 2
    state["mlp.residual.4.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="must match"):
        weights_from_state_dict(state, "tanh", obs_normalization=False)
