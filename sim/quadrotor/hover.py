"""``quadrotor-hover``: stabilize and hold a point from random, possibly tumbling, initial states.

Reference: the fixed point (0, 0, ``termination.reference_height_m``). The reward terms below are exactly the ones
the native CPU kernel implements (``sim.quadrotor.native.KERNEL_REWARD_TERMS``): with them (any weights) hover on
CPU runs on the kernel; with a term added, removed or reordered it runs on the torch step.
"""

from __future__ import annotations

from sim.quadrotor.task import QuadrotorTask

HOVER = QuadrotorTask(
    name="hover",
    description="stabilize and hold a point from random, possibly tumbling, initial states",
    reward=(
        ("position", 5.0),  # per m of distance to the reference (not squared: see terms.position_error_norm)
        ("velocity", 0.1),  # per (m/s)^2
        # per (rad/s)^2; 0.1 (was 0.02) damps the body-rate oscillation that made policies fall in the slow-motor,
        # 2-step-delay corner: 8 of 10 trainings crashed no more often than the PID, 0 of 2 before
        # (docs/training.md, "Crashes")
        ("angular_velocity", 0.1),
        ("tilt", 0.5),  # per (1 - cos tilt)
        ("action", 0.05),  # per squared normalized action (deviation from hover)
        ("action_rate", 0.05),  # per squared change of normalized action
    ),
    reference="fixed",
)
