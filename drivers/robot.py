"""The one interface every hardware family implements (and the simulated robot, for software-in-the-loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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


class Robot(Protocol):
    """What the deploy runtime needs from a robot. Implementations speak the robot's real protocol."""

    def read_state(self) -> RobotState | None:
        """The newest state, or None if none has arrived yet. Never blocks for long."""

    def send_command(self, command: np.ndarray) -> None:
        """Send a command that has passed the safety layer (physical units of the action spec)."""

    def arm(self) -> None: ...

    def disarm(self) -> None: ...

    def fallback(self) -> None:
        """Hand control to the robot's own fallback (e.g. firmware land / damping), if it has one."""
