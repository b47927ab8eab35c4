"""Sampling of randomization specs: pure functions of (spec, uniforms) or (spec, generator).

Every distribution is a transform of uniform(0, 1) draws, so the same code serves the eager path (draws from a
``torch.Generator``) and the compiled per-step path (draws from :mod:`sim.rng`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from sim.randomization import ParamDistribution, RandomizationSpec

_EPS = 1e-7


def transform_uniform(dist: ParamDistribution, u: torch.Tensor) -> torch.Tensor:
    """Map uniform(0, 1) draws ``u`` (any shape) to draws of ``dist`` (same shape)."""
    kind = dist.distribution
    if kind == "uniform":
        return dist.low + (dist.high - dist.low) * u
    if kind == "log_uniform":
        lo, hi = math.log(dist.low), math.log(dist.high)
        return torch.exp(lo + (hi - lo) * u)
    if kind == "int_uniform":
        n = dist.high - dist.low + 1
        return torch.clamp(torch.floor(dist.low + n * u), dist.low, dist.high)
    if kind == "normal":
        z = math.sqrt(2.0) * torch.erfinv(2.0 * u.clamp(_EPS, 1.0 - _EPS) - 1.0)
        x = dist.mean + dist.std * z
        lo, hi = dist.bounds()
        return x.clamp(lo, hi) if math.isfinite(lo) or math.isfinite(hi) else x
    if kind == "constant":
        return torch.full_like(u, float(dist.mean))
    raise ValueError(f"unknown distribution {kind!r}")


def apply_operation(dist: ParamDistribution, nominal: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """Combine a draw with the nominal value: scale, offset or absolute."""
    if dist.operation == "scale":
        return nominal * sample
    if dist.operation == "offset":
        return nominal + sample
    return sample.expand(torch.broadcast_shapes(sample.shape, nominal.shape)).clone()


def components(dist: ParamDistribution, size: int) -> int:
    """How many independent draws one env needs for a parameter of ``size`` components."""
    return size if dist.per_component else 1


def sample_param(
    dist: ParamDistribution, nominal: torch.Tensor, num_envs: int, generator: torch.Generator
) -> torch.Tensor:
    """Draw one parameter for ``num_envs`` envs.

    nominal: (C,) nominal value. Returns (num_envs, C). Pure function of (dist, nominal, generator state).
    """
    size = nominal.shape[-1]
    u = torch.rand(num_envs, components(dist, size), generator=generator, device=nominal.device, dtype=nominal.dtype)
    return apply_operation(dist, nominal, transform_uniform(dist, u))


def sample_params(
    spec: RandomizationSpec,
    nominal: Mapping[str, torch.Tensor],
    num_envs: int,
    generator: torch.Generator,
    when: Iterable[str] = ("startup", "reset", "interval"),
) -> dict[str, torch.Tensor]:
    """Draw every parameter of ``spec`` whose ``when`` is in ``when``, in sorted name order.

    nominal: name -> (C,) nominal values; parameters without a term keep their nominal value (not returned).
    Returns name -> (num_envs, C). The order of terms in the spec does not change the draws.
    """
    spec.check_params(set(nominal))
    when = set(when)
    out = {}
    for name in sorted(spec.terms):
        dist = spec.terms[name]
        if dist.when in when:
            out[name] = sample_param(dist, nominal[name], num_envs, generator)
    return out
