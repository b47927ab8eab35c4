"""Actuator models against hand-computed values (no simulator), including NaN/inf inputs."""

from __future__ import annotations

import math

import pytest
import torch

from sim.articulated.actuators import (
    DelayLine,
    JointActuators,
    dc_motor_limits,
    dc_motor_torque,
    ideal_pd_torque,
    pd_torque,
)

NAN, INF = math.nan, math.inf


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_pd_torque_hand_computed():
    # kp=20, kd=0.5: 20 * (0.3 - 0.1) - 0.5 * 2.0 = 3.0; 20 * (-0.2 - 0) - 0.5 * (-4) = -2.0
    tau = pd_torque(t([0.3, -0.2]), t([0.1, 0.0]), t([2.0, -4.0]), 20.0, 0.5)
    torch.testing.assert_close(tau, t([3.0, -2.0]))


def test_ideal_pd_clips_and_handles_non_finite():
    q_target = t([1.0, -1.0, NAN, INF, -INF, 0.0])
    q = torch.zeros(1, 6)
    qd = t([0.0, 0.0, 0.0, 0.0, 0.0, NAN])
    tau = ideal_pd_torque(q_target, q, qd, kp=20.0, kd=0.5, effort_limit=10.0)
    # 20 > 10 -> clipped; -20 -> -10; NaN target -> 0; +inf -> +limit; -inf -> -limit; NaN velocity -> 0
    torch.testing.assert_close(tau, t([10.0, -10.0, 0.0, 10.0, -10.0, 0.0]))
    assert torch.isfinite(tau).all()


def test_ideal_pd_per_joint_limits_broadcast():
    tau = ideal_pd_torque(t([1.0, 1.0]), t([0.0, 0.0]), t([0.0, 0.0]), t([5.0, 50.0]), 0.0, t([3.0, 33.5]))
    torch.testing.assert_close(tau, t([3.0, 33.5]))


def test_dc_motor_envelope_hand_computed():
    # A1 motor: stall 33.5 N m, 21 rad/s, limit 33.5 N m
    qd = t([0.0, 10.5, 21.0, 30.0, -10.5])
    low, high = dc_motor_limits(qd, 33.5, 21.0, 33.5)
    # high = 33.5 (1 - qd/21) clipped to [0, 33.5]: 33.5, 16.75, 0, 0 (negative clipped), 33.5 * 1.5 -> 33.5
    torch.testing.assert_close(high, t([33.5, 16.75, 0.0, 0.0, 33.5]))
    # low = 33.5 (-1 - qd/21) clipped to [-33.5, 0]: -33.5, -50.25 -> -33.5, -67 -> -33.5, -80.4 -> -33.5, -16.75
    torch.testing.assert_close(low, t([-33.5, -33.5, -33.5, -33.5, -16.75]))


def test_dc_motor_torque_clips_desired_torque():
    tau = dc_motor_torque(t([30.0, 30.0, -30.0, NAN, INF]), t([0.0, 10.5, -10.5, 0.0, 0.0]), 33.5, 21.0, 25.0)
    # at rest the continuous limit 25 binds; at 10.5 rad/s high = 16.75; at -10.5 rad/s low = -16.75;
    # NaN desired -> 0; +inf -> 25
    torch.testing.assert_close(tau, t([25.0, 16.75, -16.75, 0.0, 25.0]))


def test_dc_motor_nan_or_infinite_velocity():
    tau = dc_motor_torque(t([5.0, 5.0, -5.0]), t([NAN, INF, -INF]), 33.5, 21.0, 33.5)
    # NaN velocity: no torque; +inf velocity: can only brake (high = 0); -inf: can only push forward (low = 0)
    torch.testing.assert_close(tau, t([0.0, 0.0, 0.0]))
    tau = dc_motor_torque(t([-5.0, 5.0]), t([INF, -INF]), 33.5, 21.0, 33.5)
    torch.testing.assert_close(tau, t([-5.0, 5.0]))


def test_delay_line_per_env_delays_and_reset():
    line = DelayLine(num_envs=3, dim=1, max_delay=2, device="cpu")
    line.set_delay(torch.tensor([0, 1, 2]))
    outs = [line.push(torch.full((3, 1), float(k))).squeeze(-1) for k in (1, 2, 3, 4)]
    # env 0 sees its input now, env 1 one push late, env 2 two pushes late (history starts at zeros)
    torch.testing.assert_close(outs[0], t(1.0, 0.0, 0.0))
    torch.testing.assert_close(outs[1], t(2.0, 1.0, 0.0))
    torch.testing.assert_close(outs[3], t(4.0, 3.0, 2.0))
    line.reset(torch.tensor([2]), torch.tensor([[-7.0]]))
    torch.testing.assert_close(line.push(torch.full((3, 1), 5.0)).squeeze(-1), t(5.0, 4.0, -7.0))


def test_delay_line_rejects_bad_delays_and_shapes():
    line = DelayLine(num_envs=2, dim=3, max_delay=1, device="cpu")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        line.set_delay(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"expected a signal of shape \(2, 3\)"):
        line.push(torch.zeros(2, 4))


def test_joint_actuators_scales_latency_and_motor():
    act = JointActuators(
        kp=[20.0, 20.0],
        kd=0.5,
        effort_limit=33.5,
        num_envs=2,
        device="cpu",
        model="dc_motor",
        stall_torque=33.5,
        max_velocity=21.0,
        max_delay=1,
    )
    act.kp_scale[1] = 1.5
    act.strength[1, 1] = 0.5
    act.set_delay(torch.tensor([0, 1]))
    act.reset(torch.tensor([0, 1]), torch.zeros(2, 2))
    q, qd = torch.zeros(2, 2), t([0.0, 10.5], [0.0, 10.5])
    tau = act.torque(t([0.5, 0.5], [0.5, 0.5]), q, qd)
    # env 0: 20 * 0.5 = 10; joint 1: 10 - 0.5 * 10.5 = 4.75 (below the 16.75 envelope)
    # env 1 reads the reset target (0) this push: joint 0 -> 0, joint 1 -> -5.25, within [-33.5 * 0.5, ...]
    torch.testing.assert_close(tau, t([10.0, 4.75], [0.0, -5.25]))
    tau = act.torque(t([2.0, 2.0], [2.0, 2.0]), q, qd)
    # env 1 now sees 0.5: kp 30 -> 15 on joint 0; joint 1: 15 - 5.25 = 9.75 > high = 16.75 * 0.5 = 8.375
    torch.testing.assert_close(tau[1], t(15.0, 8.375))


def test_joint_actuators_errors_speak():
    with pytest.raises(ValueError, match="unknown actuator model"):
        JointActuators([1.0], [0.1], [1.0], 1, "cpu", model="servo")
    with pytest.raises(ValueError, match="stall_torque"):
        JointActuators([1.0], [0.1], [1.0], 1, "cpu", model="dc_motor")
    with pytest.raises(ValueError, match=r"one per joint \(2\), got 3"):
        JointActuators([1.0, 1.0], [0.1, 0.1, 0.1], [1.0], 1, "cpu")


def test_a_stronger_motor_stops_at_its_rated_torque():
    act = JointActuators(kp=100.0, kd=0.0, effort_limit=23.5, num_envs=2, device="cpu", model="dc_motor",
                         stall_torque=23.5, max_velocity=30.0)  # fmt: skip
    act.strength[:] = torch.tensor([[1.1], [0.9]])
    act.reset(torch.tensor([0, 1]), torch.zeros(2, 1))
    tau = act.torque(torch.ones(2, 1), torch.zeros(2, 1), torch.zeros(2, 1))  # kp * 1 rad = 100 N m asked
    # strength 1.1: the envelope's 25.85 N m is cut at the rated 23.5; strength 0.9: 21.15
    torch.testing.assert_close(tau, torch.tensor([[23.5], [21.15]]))
