"""The robot state the runtime works with. The contract with a robot itself is the topic table (docs/runtime.md,
"The contract with the robot"): a robot, simulated or real, is a process that publishes the state topics and obeys
the command topic; there is no in-process robot interface."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RobotState:
    """A timestamped measurement of the robot. Frames as in the simulator: world z up, body FLU, quaternion
    (w, x, y, z) body -> world. Fields a robot does not have stay empty (size 0)."""

    stamp_s: float  # monotonic seconds of the measurement (not of its arrival)
    position: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (3,) m, world
    quaternion: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (4,) w, x, y, z
    linear_velocity: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (3,) m/s, world
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (3,) rad/s, body
    joint_position: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (J,) rad, profile joint order
    joint_velocity: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (J,) rad/s
    battery_fraction: float | None = None  # 0..1
