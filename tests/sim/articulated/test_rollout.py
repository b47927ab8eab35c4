"""Metrics of articulated rollouts, by hand on a synthetic record."""

from __future__ import annotations

import pytest
import torch

from sim.articulated.rollout import ArticulatedRollout


def _record(error: torch.Tensor, alive: torch.Tensor, failed: torch.Tensor) -> ArticulatedRollout:
    t, n = error.shape
    command = torch.zeros(t, n, 3)
    command[..., 0] = 0.5  # 0.5 m/s forward
    return ArticulatedRollout(
        task="legged-walk",
        dt=0.02,
        alive=alive,
        failed=failed,
        command=command,
        measured=torch.zeros(t, n, 3),
        error=error,
        angle_error=torch.zeros(t, n),
        action=torch.zeros(t, n, 12),
    )


def test_mean_velocity_error_counts_the_steps_after_a_fall_at_the_commanded_speed() -> None:
    t = 10
    error = torch.stack([torch.full((t,), 0.05), torch.full((t,), 0.1)], -1)
    alive = torch.ones(t, 2, dtype=torch.bool)
    alive[5:, 1] = False  # env 1 fell after 5 steps
    failed = torch.tensor([False, True])
    m = _record(error, alive, failed).metrics()
    # env 0: 0.05 throughout; env 1: 0.1 for 5 steps, then 0.5 (standing still against 0.5 m/s) for 5
    assert m["velocity_error_mean_m_s"] == pytest.approx((0.05 + (5 * 0.1 + 5 * 0.5) / 10) / 2)
    assert m["velocity_error_rms_m_s"] == pytest.approx((0.05 + 0.1) / 2)  # over the steps each env was up
    assert m["crash_rate"] == 0.5
    # its parts: the first second (50 steps at 0.02 s: all 10 here), the fall, the walk after the first second
    assert m["velocity_error_start_part_m_s"] == pytest.approx((0.05 * 10 + 0.1 * 5) / 20)
    assert m["velocity_error_falls_part_m_s"] == pytest.approx(0.5 * 5 / 20)
    assert m["velocity_error_walk_part_m_s"] == 0.0


def test_the_parts_of_the_mean_velocity_error_add_up_to_it() -> None:
    g = torch.Generator().manual_seed(0)
    t, n = 120, 6
    error = torch.rand(t, n, generator=g)
    alive = torch.ones(t, n, dtype=torch.bool)
    alive[30:, 1] = alive[80:, 4] = False  # one fall in the first second (50 steps), one after it
    failed = torch.tensor([False, True, False, False, True, False])
    m = _record(error, alive, failed).metrics()
    parts = [m[f"velocity_error_{k}_part_m_s"] for k in ("start", "falls", "walk")]
    assert sum(parts) == pytest.approx(m["velocity_error_mean_m_s"], rel=1e-6)
    assert parts[0] == pytest.approx((error[:50] * alive[:50]).sum().item() / (t * n), rel=1e-6)
    assert parts[1] == pytest.approx(0.5 * (90 + 40) / (t * n), rel=1e-6)


def test_mean_velocity_error_of_a_time_out_is_the_plain_mean() -> None:
    error = torch.tensor([[0.0], [0.2], [0.1], [0.1]])
    m = _record(error, torch.ones(4, 1, dtype=torch.bool), torch.tensor([False])).metrics()
    assert m["velocity_error_mean_m_s"] == pytest.approx(0.1)
    assert m["velocity_error_rms_m_s"] == pytest.approx((0.06 / 4) ** 0.5)


def test_arm_success_counts_a_reach_at_any_time_and_the_end_criterion_only_the_last_step() -> None:
    error = torch.tensor([[0.05, 0.05, 0.05], [0.01, 0.03, 0.01], [0.02, 0.02, 0.01], [0.03, 0.015, 0.0]])
    alive = torch.ones(4, 3, dtype=torch.bool)
    alive[3:, 2] = False  # env 2 ended early (a failure): its last counted step is step 2
    t, n = error.shape
    m = ArticulatedRollout(
        task="arm-reach", dt=0.02, alive=alive, failed=torch.tensor([False, False, True]),
        command=torch.zeros(t, n, 3), measured=torch.zeros(t, n, 3), error=error,
        angle_error=torch.zeros(t, n), action=torch.zeros(t, n, 7),
    ).metrics()  # fmt: skip
    assert m["success_rate"] == 1.0  # every env was within 2 cm at some step (env 2 before it failed)
    assert m["final_within_radius_rate"] == pytest.approx(1 / 3)  # env 0 ended at 3 cm, env 2 failed
    assert m["final_position_error_median_m"] == pytest.approx(0.015)  # 0.03, 0.015, 0.01
