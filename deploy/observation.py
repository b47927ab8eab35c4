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
from sim.obs_terms import integrate_position_error


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


STATEFUL_TERMS = ("position_error_integral",)  # computed from the history of builds (sim.obs_terms)


class ObservationBuilder:
    """Builds policy observations for ``spec``; refuses, at construction, specs with terms it cannot build.

    Stateful terms (``position_error_integral``) advance once per :meth:`build`, so call it once per control
    period of ``control_dt`` seconds (the policy's control rate), and :meth:`reset` it when a flight starts.
    """

    def __init__(self, spec: ObsSpec, control_dt: float | None = None):
        stateful = [name for name in spec.names if name in STATEFUL_TERMS]
        if stateful and not (control_dt is not None and control_dt > 0):
            raise ValueError(f"the observation terms {stateful} integrate over time: pass control_dt (s) > 0")
        self.control_dt = control_dt
        self.integral = np.zeros(3)
        unknown = [name for name in spec.names if name not in TERMS and name not in STATEFUL_TERMS]
        if unknown:
            raise ObsSpecError(
                f"the policy's observation needs terms {unknown} that the runtime cannot build from a robot state; "
                f"it can build {sorted(TERMS)}. Export the policy from a task whose observations the robot measures."
            )
        self.spec = spec

    def reset(self) -> None:
        """Start a new flight: stateful terms back to zero (the simulator's episode start)."""
        self.integral = np.zeros(3)

    def build(self, state: RobotState, context: Context) -> np.ndarray:
        """(D,) float32 observation."""
        names = self.spec.names
        values = {name: np.asarray(TERMS[name](state, context), dtype=np.float64) for name in names if name in TERMS}
        if "position_error_integral" in names:
            error = np.asarray(TERMS["position_error"](state, context), dtype=np.float64)
            # float32 like the simulator, so the two integrals round alike
            self.integral = integrate_position_error(
                self.integral.astype(np.float32), error.astype(np.float32), np.float32(self.control_dt)
            ).astype(np.float64)
            values["position_error_integral"] = self.integral
        return self.spec.assemble(values).astype(np.float32)
