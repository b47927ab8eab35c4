"""``quadrotor-track``: follow a moving reference, figure-eights and random smooth trajectories (``cfg.trajectory``).

The policy also observes the reference velocity; the velocity term penalises the velocity *error*. Same terms and
weights as hover (``hover.py`` has their reasons); the native kernel does not run this task (its reference is fixed).
"""

from __future__ import annotations

from sim.obs_spec import ObsTerm
from sim.quadrotor.task import QuadrotorTask

TRACK = QuadrotorTask(
    name="track",
    description="follow a moving reference: figure-eight and random smooth trajectories",
    reward=(
        ("position", 5.0),  # per m of distance to the reference
        ("velocity", 0.1),  # per (m/s)^2 of velocity error
        ("angular_velocity", 0.1),  # per (rad/s)^2
        ("tilt", 0.5),  # per (1 - cos tilt)
        ("action", 0.05),  # per squared normalized action
        ("action_rate", 0.05),  # per squared change of normalized action
    ),
    reference="trajectory",
    observations=(ObsTerm("reference_velocity", 3, 1.0, 0.0, "m/s", "reference velocity, world frame"),),
)
