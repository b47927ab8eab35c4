"""The robot computer installs no torch: every runtime module imports and runs with torch unavailable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CODE = """
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
import numpy as np
import deploy.loop, deploy.observation, deploy.safety, deploy.transport, deploy.recording, deploy.msgs, drivers.robot
import deploy.runtime, deploy.profile
profile = deploy.profile.load_deploy_profile("launch/sim_quadrotor.yaml")
from deploy.loop import FixedRateLoop
from deploy.observation import Context, ObservationBuilder
from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsTerm
spec = ObsSpec((ObsTerm("position_error", 3), ObsTerm("rotation_matrix", 9), ObsTerm("last_action", 4, 2.0)))
b = ObservationBuilder(spec)
s = RobotState(0.0, np.array([1.0, 2.0, 3.0]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))
obs = b.build(s, Context(np.array([1.0, 2.0, 2.0]), np.zeros(3), np.ones(4)))
stats = FixedRateLoop(500.0).run(lambda now: None, cycles=5)  # a busy computer may skip cycles
print(obs.tolist(), 0 < stats.cycles <= 5, "torch" in sys.modules and sys.modules["torch"] is not None)
"""


def test_runtime_imports_and_runs_without_torch():
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.strip()
        == str([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0]) + " True False"
    )
