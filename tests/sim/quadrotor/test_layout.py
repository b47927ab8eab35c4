"""The robot profile's written motor layout (positions, spins, order) is the one the simulator and the safety
layer's fallback mixer use: a profile that says one thing while the code does another is how a real vehicle
gets an rpm policy with mirrored yaw."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from deploy.safety.quadrotor_control import QuadrotorMixer
from sim.quadrotor.dynamics import mixer_torques
from sim.quadrotor.params import QuadrotorParams

PROFILE = Path(__file__).resolve().parents[3] / "launch" / "robots" / "crazyflie2.yaml"


def _layout():
    data = yaml.safe_load(PROFILE.read_text())
    return data["layout"], QuadrotorParams.from_dict(data["quadrotor"])


def _torques_from_layout(motors, km: float) -> np.ndarray:
    """(3, 4): body torque of 1 N on each motor, from its written position and spin (r x F, reaction km f)."""
    out = np.zeros((3, 4))
    for i, m in enumerate(motors):
        x, y = m["x_m"], m["y_m"]
        spin = {"cw": 1.0, "ccw": -1.0}[m["spin"]]
        out[:, i] = [y, -x, km * spin]
    return out


@pytest.mark.parametrize("motor", range(4))
def test_written_layout_equals_the_simulator_mixer(motor):
    layout, params = _layout()
    motors = layout["motors"]
    assert [m["name"] for m in motors] == ["m1", "m2", "m3", "m4"]
    for m in motors:
        assert math.hypot(m["x_m"], m["y_m"]) == pytest.approx(params.arm_length, rel=1e-4)
    f = [torch.tensor(1.0 if i == motor else 0.0, dtype=torch.float64) for i in range(4)]
    sim = [t.item() for t in mixer_torques(*f, torch.tensor(params.arm_length), torch.tensor(params.km))]
    np.testing.assert_allclose(sim, _torques_from_layout(motors, params.km)[:, motor], rtol=1e-4, atol=1e-12)


def test_written_layout_equals_the_safety_mixer():
    layout, params = _layout()
    mixer = QuadrotorMixer(params.arm_length, params.km)
    np.testing.assert_allclose(mixer.allocation[1:], _torques_from_layout(layout["motors"], params.km), rtol=1e-4)
    assert layout["frames"] == {"world": "ENU", "body": "FLU"}
    assert set(layout["commands"]) == {"rpm", "ctbr"}
