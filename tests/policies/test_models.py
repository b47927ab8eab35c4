"""The PPO model: rsl_rl's MLPModel with a cheaper normalizer update that must compute the same statistics."""

from __future__ import annotations

import torch
from rsl_rl.modules import EmpiricalNormalization
from rsl_rl.utils import resolve_callable
from tensordict import TensorDict

from policies.actor import batch_moments
from policies.models import MLPModel, RunningNormalization
from policies.train_cfg import MODEL_CLASS, quadrotor_hover


def test_batch_moments_match_torch_var_with_a_large_offset() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 7, generator=g) * torch.tensor([1e-3, 1e-2, 0.1, 1.0, 10.0, 1.0, 1.0]) + 100.0
    mean, var = batch_moments(x)
    assert mean.shape == var.shape == (1, 7)
    torch.testing.assert_close(mean, x.mean(0, keepdim=True))
    # the rotation-matrix case: values near 1 with a small spread; the two-pass variance keeps its digits
    torch.testing.assert_close(var, x.double().var(0, unbiased=False, keepdim=True).float(), rtol=1e-3, atol=0)
    x0 = x.clone()
    batch_moments(x)
    assert torch.equal(x, x0)  # centring works on a copy: the rollout storage is not touched


def test_running_normalization_tracks_rsl_rl_empirical_normalization() -> None:
    g = torch.Generator().manual_seed(1)
    ours, theirs = RunningNormalization(5), EmpiricalNormalization(5)
    for i in range(6):  # batches whose mean and spread drift, as a policy's observations do
        x = torch.randn(300 + 50 * i, 5, generator=g) * (1 + i) + i * torch.arange(5.0)
        ours.update(x)
        theirs.update(x)
    assert int(ours.count) == int(theirs.count) == sum(300 + 50 * i for i in range(6))
    for name in ("_mean", "_var", "_std"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), rtol=1e-5, atol=1e-6)
    x = torch.randn(8, 5, generator=g)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.eval()
    before = ours._mean.clone()
    ours.update(x + 100)  # evaluation mode: statistics frozen
    assert torch.equal(ours._mean, before)


def test_the_configured_model_is_rsl_rl_mlp_with_the_running_normalizer() -> None:
    cfg = quadrotor_hover()
    assert cfg.rsl_rl_dict()["actor"]["class_name"] == MODEL_CLASS
    cls = resolve_callable(MODEL_CLASS)
    assert cls is MLPModel
    obs = TensorDict({"policy": torch.zeros(4, 10)}, batch_size=[4])
    model = cls(obs, {"actor": ["policy"]}, "actor", 4, hidden_dims=[8], activation="tanh", obs_normalization=True)
    assert isinstance(model.obs_normalizer, RunningNormalization)
    keys = set(model.state_dict())
    assert {"obs_normalizer._mean", "obs_normalizer._std", "obs_normalizer.count", "mlp.0.weight"} <= keys


def test_without_normalization_the_model_keeps_the_identity() -> None:
    obs = TensorDict({"policy": torch.zeros(2, 3)}, batch_size=[2])
    model = MLPModel(obs, {"a": ["policy"]}, "a", 1, hidden_dims=[4], activation="elu", obs_normalization=False)
    assert isinstance(model.obs_normalizer, torch.nn.Identity)


def test_bf16_update_keeps_keys_float32_rollouts_and_close_gradients() -> None:
    """The mixed-precision MLP: same parameters and keys; without gradients (rollouts, export) exactly rsl_rl's
    float32 forward; with them a float32 output within bfloat16's rounding and gradients close to float32's."""
    from rsl_rl.modules import MLP

    from policies.models import MixedPrecisionMLP, set_update_precision

    torch.manual_seed(0)
    obs = TensorDict({"policy": torch.zeros(2, 30)}, batch_size=[2])
    model = MLPModel(obs, {"a": ["policy"]}, "a", 4, hidden_dims=[64, 32], activation="elu", obs_normalization=False)
    reference = MLP(30, 4, [64, 32], "elu")
    reference.load_state_dict(model.mlp.state_dict())
    keys = set(model.state_dict())
    assert set_update_precision([model], "bf16", torch.device("cpu")) == "bf16"
    assert type(model.mlp) is MixedPrecisionMLP and set(model.state_dict()) == keys
    x = torch.randn(512, 30)
    with torch.no_grad():
        assert torch.equal(model.mlp(x), reference(x))  # rollouts and export: float32, bit for bit
    y, y_ref = model.mlp(x), reference(x)
    assert y.dtype == torch.float32 and not torch.equal(y, y_ref)  # bfloat16 arithmetic did run
    torch.testing.assert_close(y, y_ref, rtol=0.05, atol=0.02)
    y.square().mean().backward()
    y_ref.square().mean().backward()
    for (name, p), q in zip(model.mlp.named_parameters(), reference.parameters(), strict=True):
        assert p.grad.dtype == torch.float32, name
        cos = torch.nn.functional.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0)
        assert cos > 0.99, f"{name}: gradient direction off float32's (cosine {cos:.4f})"
    assert set_update_precision([model], "fp32", torch.device("cpu")) == "fp32" and type(model.mlp) is MLP


def test_auto_update_precision_uses_bf16_only_where_the_cpu_has_it(monkeypatch) -> None:
    import pytest

    from policies import models
    from policies.train_cfg import TrainConfigError

    for amx, avx512 in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512: v)
        expected = "bf16" if amx or avx512 else "fp32"
        assert models.resolve_update_precision("auto", torch.device("cpu")) == expected
        assert models.resolve_update_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match=r"update_precision.*'fp16'"):
        models.resolve_update_precision("fp16", torch.device("cpu"))
    cfg = quadrotor_hover()
    cfg.update_precision = "half"
    with pytest.raises(TrainConfigError, match="update_precision: expected one of"):
        cfg.check()
