"""The bundled Go2 policy (tests/data/go2_walk_policy.onnx) in the simulator: evaluated on its own observation layout,
and at rest at a zero command by the deploy runtime's own test (else every plan ends in FALLBACK "not at rest")."""

from __future__ import annotations

from pathlib import Path

import torch

from policies.evaluate import load_source, rest_at_zero_command, source_cfg
from sim.obs_spec import split_history
from sim.tasks import make_env, task_cfg

POLICY = Path(__file__).resolve().parents[1] / "data" / "go2_walk_policy.onnx"


def test_a_policy_is_evaluated_with_the_history_it_was_trained_with() -> None:
    source = load_source(POLICY)
    assert split_history(source.obs_spec)[1] == 0  # trained before the variant had a history
    assert task_cfg("legged-walk", "go2").observation_history == 2  # the variant's setting now
    cfg = source_cfg(source)
    assert cfg.observation_history == 0
    make_env("legged-walk", 2, seed=0, cfg=cfg).obs_spec.check_same_layout(source.obs_spec)
    assert source_cfg(source, "go2").observation_history == 0  # --robot keeps the policy's layout too


def test_the_bundled_go2_policy_comes_to_rest_at_a_zero_command() -> None:
    source = load_source(POLICY)
    rate = rest_at_zero_command(source_cfg(source), source.controllers[0].act)
    # measured 0.91 for this policy; the history variant's policies of session 25, which step in place, 0.0
    assert rate >= 0.5, f"only {rate:.0%} of the robots came to rest at a zero command"


def test_the_rest_test_tells_a_robot_that_keeps_moving_from_one_that_stands() -> None:
    """The check eval runs (and warns on): random joint targets never rest, holding the default pose does."""
    cfg = task_cfg("legged-walk", "go2")
    g = torch.Generator().manual_seed(0)
    # the runtime's test is one sample (a plan ends at the first step at rest): random targets pass it now and then
    moving = rest_at_zero_command(cfg, lambda obs: torch.rand(obs.shape[0], 12, generator=g) * 2 - 1, envs=16)
    standing = rest_at_zero_command(cfg, lambda obs: torch.zeros(obs.shape[0], 12), envs=16)
    assert moving <= 0.25 and standing >= 0.75, (moving, standing)
