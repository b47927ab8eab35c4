"""The runtime's observation builder: robot state -> the exact vector the policy saw in simulation.

The layout (order, sizes, scales) is the exported model's observation spec, applied by
:meth:`sim.obs_spec.ObsSpec.assemble`: there is no second copy of it here. This module only knows how to
compute each named term from a measured state; a term it cannot compute is refused before arming.
Torch-free: it runs on the robot computer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsSpecError


def rotation_matrix(q: np.ndarray) -> np.ndarray:
    """(4,) quaternion w, x, y, z -> (9,) rotation matrix body -> world, row-major (as the simulator)."""
    w, x, y, z = q
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    return np.array(
        [1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
         2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
         2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)]
    )  # fmt: skip


class Context:
    """What a term may use besides the state: the reference and the runtime's own last action."""

    def __init__(self, reference_position: np.ndarray, reference_velocity: np.ndarray, last_action: np.ndarray):
        self.reference_position = reference_position
        self.reference_velocity = reference_velocity
        self.last_action = last_action


TERMS: dict[str, Callable[[RobotState, Context], np.ndarray]] = {
    "position_error": lambda s, c: s.position - c.reference_position,
    "rotation_matrix": lambda s, c: rotation_matrix(s.quaternion),
    "linear_velocity": lambda s, c: s.linear_velocity,
    "angular_velocity": lambda s, c: s.angular_velocity,
    "reference_velocity": lambda s, c: c.reference_velocity,
    "last_action": lambda s, c: c.last_action,
}


class ObservationBuilder:
    """Builds policy observations for ``spec``; refuses, at construction, specs with terms it cannot build."""

    def __init__(self, spec: ObsSpec):
        unknown = [name for name in spec.names if name not in TERMS]
        if unknown:
            raise ObsSpecError(
                f"the policy's observation needs terms {unknown} that the runtime cannot build from a robot state; "
                f"it can build {sorted(TERMS)}. Export the policy from a task whose observations the robot measures."
            )
        self.spec = spec

    def build(self, state: RobotState, context: Context) -> np.ndarray:
        """(D,) float32 observation."""
        values = {name: np.asarray(TERMS[name](state, context), dtype=np.float64) for name in self.spec.names}
        return self.spec.assemble(values).astype(np.float32)
