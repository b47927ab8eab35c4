"""``KEY=VALUE`` overrides of typed configs from the command line (``--set ppo.num_learning_epochs=3``).

The implementation lives in :mod:`sim.overrides` (torch-free), which also applies the ``env:`` and ``train:``
sections of robot variants (``launch/tasks/<task>/<robot>.yaml``); this module keeps the command line's import path.
"""

from __future__ import annotations

from sim.overrides import OverrideError, apply_overrides, apply_values

__all__ = ["OverrideError", "apply_overrides", "apply_values"]
