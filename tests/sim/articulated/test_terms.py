"""Articulated task terms against hand-computed values (no simulator)."""

from __future__ import annotations

import math

import pytest
import torch

from sim.articulated import terms as T

NAN = float("nan")


def _q_about(axis: tuple[float, float, float], angle: float) -> torch.Tensor:
    return T.quat_from_axis_angle(torch.tensor([axis]), torch.tensor([angle]))


def test_quaternion_rotation_by_hand() -> None:
    q = _q_about((0.0, 0.0, 1.0), math.pi / 2)  # 90 deg yaw
    assert torch.allclose(q, torch.tensor([[math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)]]))
    v = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.allclose(T.quat_rotate(q, v), torch.tensor([[0.0, 1.0, 0.0]]), atol=1e-6)
    assert torch.allclose(T.quat_rotate_inverse(q, v), torch.tensor([[0.0, -1.0, 0.0]]), atol=1e-6)
    twice = T.quat_multiply(q, q)  # 180 deg yaw
    assert torch.allclose(twice, torch.tensor([[0.0, 0.0, 0.0, 1.0]]), atol=1e-6)


def test_projected_gravity_and_tilt() -> None:
    level = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(T.projected_gravity(level), torch.tensor([[0.0, 0.0, -1.0]]))
    rolled = _q_about((1.0, 0.0, 0.0), math.radians(30))
    g = T.projected_gravity(rolled)  # gravity in a body rolled +30 deg about x: (0, -sin 30, -cos 30)
    assert torch.allclose(g, torch.tensor([[0.0, -0.5, -math.cos(math.radians(30))]]), atol=1e-6)
    assert T.gravity_xy_l2(g).item() == pytest.approx(0.25, abs=1e-6)
    assert not T.tilt_exceeds(g, math.radians(31)).item()
    assert T.tilt_exceeds(g, math.radians(29)).item()
    assert T.tilt_exceeds(torch.tensor([[NAN, NAN, NAN]]), 1.0).item()


def test_orientation_errors() -> None:
    a = _q_about((0.0, 1.0, 0.0), 0.3)
    b = _q_about((0.0, 1.0, 0.0), -0.2)
    assert T.orientation_error_angle(a, b).item() == pytest.approx(0.5, abs=1e-5)
    assert T.orientation_error_angle(a, -b).item() == pytest.approx(0.5, abs=1e-5)  # sign of q does not matter
    vec = T.rotation_error_vector(a, b)
    assert torch.allclose(vec, torch.tensor([[0.0, -0.5, 0.0]]), atol=1e-5)
    assert torch.allclose(T.rotation_error_vector(a, a), torch.zeros(1, 3), atol=1e-6)
    assert T.orientation_error_tanh(a, a, 0.1).item() == pytest.approx(1.0)
    assert T.orientation_error_tanh(a, b, 0.5).item() == pytest.approx(1 - math.tanh(1.0), abs=1e-5)


def test_velocity_tracking_terms() -> None:
    cmd = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    vel = torch.tensor([[0.5, 0.0], [0.5, 0.5]])
    assert torch.allclose(T.lin_vel_xy_exp(cmd, vel, 0.25), torch.tensor([math.exp(-1.0), 1.0]))
    assert T.ang_vel_z_exp(torch.tensor([1.0]), torch.tensor([0.0]), 0.5).item() == pytest.approx(math.exp(-2.0))
    assert T.lin_vel_z_l2(torch.tensor([-2.0])).item() == 4.0
    assert T.ang_vel_xy_l2(torch.tensor([[1.0, -2.0]])).item() == 5.0
    assert T.base_height_l2(torch.tensor([0.2]), 0.3).item() == pytest.approx(0.01)
    assert torch.isnan(T.lin_vel_xy_exp(torch.tensor([[NAN, 0.0]]), vel[:1], 0.25)).all()


def test_joint_and_action_terms() -> None:
    tau = torch.tensor([[1.0, 2.0, -2.0]])
    assert T.joint_torque_l2(tau).item() == 9.0
    assert T.joint_acc_l2(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), 0.02).item() == pytest.approx(2500)
    assert T.joint_vel_l2(torch.tensor([[3.0, 4.0]])).item() == 25.0
    assert T.action_rate_l2(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]])).item() == 1.0
    low, high = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])
    assert T.joint_pos_limit_excess(torch.tensor([[1.5, -1.25]]), low, high).item() == pytest.approx(0.75)
    assert T.joint_pos_limit_excess(torch.tensor([[0.5, 0.0]]), low, high).item() == 0.0
    limit = torch.tensor([2.0, 10.0])
    assert T.joint_vel_limit_excess(torch.tensor([[-2.0, 5.0]]), limit).item() == pytest.approx(0.2)  # 2 - 0.9*2
    assert T.joint_vel_limit_excess(torch.tensor([[1.0, -9.0]]), limit).item() == 0.0


def test_feet_air_time() -> None:
    air = torch.tensor([[0.7, 0.3, 0.0, 0.0]])
    touchdown = torch.tensor([[True, True, False, False]])
    value = T.feet_air_time_reward(air, touchdown, 0.5, torch.tensor([True]))
    assert value.item() == pytest.approx((0.7 - 0.5) + (0.3 - 0.5))
    assert T.feet_air_time_reward(air, touchdown, 0.5, torch.tensor([False])).item() == 0.0


def test_arm_position_terms() -> None:
    pos, target = torch.tensor([[0.3, 0.0, 0.4]]), torch.tensor([[0.3, 0.04, 0.43]])
    assert T.position_error_l2(pos, target).item() == pytest.approx(0.05)
    assert T.position_error_tanh(pos, target, 0.1).item() == pytest.approx(1 - math.tanh(0.5))


def test_contacts_and_nonfinite() -> None:
    sensor = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.1, 0.0, -30.0]])
    assert T.contact_found(sensor).tolist() == [False, True]
    a = torch.tensor([[0.0, 1.0], [NAN, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0], [0.0], [float("inf")]])
    assert T.state_nonfinite(a, b).tolist() == [False, True, True]


def test_trot_contact_pattern() -> None:
    """Feet FR, FL, RR, RL; diagonals FR-RL and FL-RR. Only a trot's pattern scores 1, four feet down scores 0."""
    pairs = ((0, 3), (1, 2))
    c = torch.tensor(
        [
            [1, 0, 0, 1],  # trot, FR-RL down
            [0, 1, 1, 0],  # trot, FL-RR down
            [1, 1, 1, 1],  # standing: diagonals agree but do not alternate
            [1, 0, 1, 0],  # pace-like: FR-RL disagree, FL-RR disagree
            [1, 0, 1, 1],  # FR-RL agree (down), FL-RR disagree, diagonals alternate: half
            [0, 0, 0, 0],  # all in the air
        ],
        dtype=torch.bool,
    )
    moving = torch.ones(6, dtype=torch.bool)
    assert T.trot_contact_pattern(c, pairs, moving).tolist() == [1.0, 1.0, 0.0, 0.0, 0.5, 0.0]
    assert T.trot_contact_pattern(c, pairs, ~moving).tolist() == [0.0] * 6


def test_joint_deviation_counts_only_while_standing_and_propagates_nan() -> None:
    default = torch.tensor([0.0, 0.8, -1.5])
    q = torch.tensor([[0.1, 0.6, -1.5], [0.1, 0.6, -1.5], [NAN, 0.8, -1.5]])
    standing = torch.tensor([True, False, True])
    out = T.joint_deviation_l1(q, default, standing)
    assert out[0].item() == pytest.approx(0.1 + 0.2)  # |0.1| + |-0.2| + 0
    assert out[1].item() == 0.0  # commanded to move: no penalty
    assert math.isnan(out[2].item())  # a NaN state is not hidden
