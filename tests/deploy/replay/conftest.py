"""Logs for the replay tests: flown in simulation with the reference exported hover policy (tests/data), through
the deploy observation builder, and written with the real flight recorder (calibration.sysid.synthetic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.sysid.synthetic import SyntheticFlight, fly

ROOT = Path(__file__).resolve().parents[3]
POLICY = ROOT / "tests" / "data" / "hover_policy.onnx"


def _deg_per_s(obs: np.ndarray) -> np.ndarray:
    """A wrong observation pipeline: gyro term in deg/s instead of rad/s."""
    out = obs.copy()
    out[15:18] *= 180.0 / np.pi
    return out


@pytest.fixture(scope="session")
def policy():
    from policies.onnx_policy import load_policy

    return load_policy(POLICY)


@pytest.fixture(scope="session")
def logs(tmp_path_factory, policy) -> dict[str, Path]:
    """name -> MCAP: 'good' (as the runtime logs), 'late' (actions logged one cycle late), 'gyro_deg' (the
    policy was fed the gyro in deg/s)."""
    out = tmp_path_factory.mktemp("replay_logs")
    # fed a gyro 57x too large, the policy loses the vehicle after 1.35 s (as a real one would): 1.2 s of it
    variants = {"good": {}, "late": {"action_shift": 1}, "gyro_deg": {"obs_transform": _deg_per_s, "seconds": 1.2}}
    paths = {}
    for name, kw in variants.items():
        paths[name] = out / f"{name}.mcap"
        kw = {"seconds": 4.0, **kw}
        flight = SyntheticFlight(excitation=0.0, setpoint_m=0.3, setpoint_s=1.0, seed=3, **kw)
        fly(paths[name], flight, policy)
    return paths
