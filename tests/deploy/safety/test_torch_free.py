"""deploy.safety imports and runs where torch cannot be imported (the robot computer installs `.[deploy]`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the torch block did not work")
    import numpy as np
    from deploy.safety import SafetyLayer, StateSample, crazyflie_profile
    layer = SafetyLayer(crazyflie_profile())
    for k in range(60):
        t = 0.01 * k
        layer.heartbeat(t)
        layer.on_state(StateSample(t, np.array([0, 0, 1.0]), np.zeros(3), np.array([1.0, 0, 0, 0]), np.zeros(3), 0.9), t)
        if k == 0:
            assert layer.arm(t)
        cmd = layer.filter(np.full(4, 14000.0), t, 0.001)
    assert layer.state.name == "ACTIVE", layer.transitions
    assert "torch" not in [m for m, v in sys.modules.items() if v is not None]
    print("ok", cmd.mode.name)
    """
)


def test_imports_and_runs_without_torch():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok POLICY"
