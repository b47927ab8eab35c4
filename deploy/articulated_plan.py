"""Plans of the articulated deploy runtime (what an operator would do with a joystick): a legged robot stands
up, holds, walks at a velocity command and stops; an arm moves to its default pose and reaches end-effector targets.
With a streamed reference (:class:`StreamedArticulatedPlan`) only the scripted start runs; the command then comes
from a topic. Torch-free. :meth:`at` gives the :class:`PlanStep` at a time since the plan started (the first ACTIVE
cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class PlanStep:
    """What the plan asks for at one time. ``blend``: scripted phase, the fraction (0..1) of the way from the
    pose measured at the start to the default pose (the policy does not run); otherwise the policy runs with
    ``velocity_command`` (3,) (legged) or the end-effector target ``target_position`` (3,) m /
    ``target_quat`` (4,) w, x, y, z (arm)."""

    phase: str
    blend: float | None = None
    velocity_command: np.ndarray | None = None
    target_position: np.ndarray | None = None
    target_quat: np.ndarray | None = None


@dataclass(frozen=True)
class LeggedPlan:
    """Stand up, hold, walk, stop. Times in s; ``velocity_command``: vx, vy (m/s, heading frame), yaw rate (rad/s).

    ``speed_steps`` (an excitation for identification, issue #18): the walk as a sequence of commands, each
    ``[vx, vy, yaw_rate, seconds]``, instead of one ``velocity_command`` for ``walk_s`` (which then is their total);
    speed and turn steps show how the robot answers a change of command, a constant walk only its gait."""

    stand_s: float = 2.0
    hold_s: float = 2.0
    walk_s: float = 4.0
    velocity_command: tuple[float, float, float] = (0.5, 0.0, 0.0)
    stop_s: float = 2.0
    speed_steps: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "velocity_command", tuple(float(v) for v in self.velocity_command))
        if len(self.velocity_command) != 3:
            raise ValueError(
                f"plan.velocity_command: expected vx, vy (m/s), yaw rate (rad/s), got {self.velocity_command}"
            )
        for name in ("stand_s", "hold_s", "walk_s", "stop_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"plan.{name}: expected seconds >= 0, got {getattr(self, name)!r}")
        steps = []
        for i, step in enumerate(self.speed_steps):
            values = tuple(float(v) for v in step) if isinstance(step, list | tuple) else ()
            if len(values) != 4 or not all(np.isfinite(values)) or not values[3] > 0:
                raise ValueError(
                    f"plan.speed_steps[{i}]: expected [vx, vy, yaw_rate, seconds] with seconds > 0, got {step!r}"
                )
            steps.append(values)
        object.__setattr__(self, "speed_steps", tuple(steps))
        if steps:
            object.__setattr__(self, "walk_s", sum(step[3] for step in steps))

    @property
    def duration_s(self) -> float:
        return self.stand_s + self.hold_s + self.walk_s + self.stop_s

    def walking(self, t: float) -> bool:
        start = self.stand_s + self.hold_s
        return start <= t < start + self.walk_s

    def _walk_command(self, t_walk: float) -> tuple[np.ndarray, float]:
        """(command, seconds since it began) ``t_walk`` s into the walk."""
        if not self.speed_steps:
            return np.array(self.velocity_command), t_walk
        begin = 0.0
        for step in self.speed_steps:
            if t_walk < begin + step[3]:
                break
            begin += step[3]
        return np.array(step[:3]), t_walk - begin

    def settled(self, t: float, settle_s: float = 1.0) -> bool:
        """Walking, and at least ``settle_s`` into the current command (the time to speed up left out)."""
        return self.walking(t) and self._walk_command(t - self.stand_s - self.hold_s)[1] >= settle_s

    def at(self, t: float) -> PlanStep:
        zero = np.zeros(3)
        if t < self.stand_s:
            return PlanStep("stand", blend=_smoothstep(t / self.stand_s) if self.stand_s > 0 else 1.0)
        t -= self.stand_s
        if t < self.hold_s:
            return PlanStep("hold", velocity_command=zero)
        t -= self.hold_s
        if t < self.walk_s:
            return PlanStep("walk", velocity_command=self._walk_command(t)[0])
        return PlanStep("stop", velocity_command=zero)


@dataclass(frozen=True)
class ArmTarget:
    """An end-effector target in the base frame: position m, orientation w, x, y, z; held for ``hold_s``."""

    position_m: tuple[float, float, float]
    orientation_wxyz: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.0)  # gripper pointing down
    hold_s: float = 3.0

    def __post_init__(self) -> None:
        q = np.asarray(self.orientation_wxyz, dtype=float)
        if len(self.position_m) != 3 or q.shape != (4,) or not abs(np.linalg.norm(q) - 1.0) < 1e-3:
            raise ValueError(
                f"arm target: expected position_m (3 values, m) and a unit orientation_wxyz (w, x, y, z), "
                f"got {self.position_m}, {self.orientation_wxyz}"
            )
        object.__setattr__(self, "position_m", tuple(float(v) for v in self.position_m))
        object.__setattr__(self, "orientation_wxyz", tuple(float(v) for v in q / np.linalg.norm(q)))


def _default_targets() -> tuple[ArmTarget, ...]:
    # inside arm-reach's training box (x 0.3-0.55, y -0.2-0.2, z 0.3-0.6 m, pointing down)
    return (ArmTarget((0.45, 0.0, 0.45)), ArmTarget((0.4, 0.15, 0.35)), ArmTarget((0.5, -0.15, 0.5)))


@dataclass(frozen=True)
class ArmPlan:
    """Move to the default pose in ``move_s``, then reach ``targets`` in turn."""

    move_s: float = 2.0
    targets: tuple[ArmTarget, ...] = field(default_factory=_default_targets)

    def __post_init__(self) -> None:
        targets = tuple(t if isinstance(t, ArmTarget) else ArmTarget(**t) for t in self.targets)
        if not targets:
            raise ValueError("plan.targets: expected at least one end-effector target")
        object.__setattr__(self, "targets", targets)

    @property
    def duration_s(self) -> float:
        return self.move_s + sum(t.hold_s for t in self.targets)

    def at(self, t: float) -> PlanStep:
        if t < self.move_s:
            return PlanStep("move", blend=_smoothstep(t / self.move_s) if self.move_s > 0 else 1.0)
        t -= self.move_s
        for i, target in enumerate(self.targets):
            if t < target.hold_s or i == len(self.targets) - 1:
                return PlanStep(
                    f"target{i}",
                    target_position=np.array(target.position_m),
                    target_quat=np.array(target.orientation_wxyz),
                )
            t -= target.hold_s
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class StreamedArticulatedPlan:
    """A plan whose command comes from a topic (deploy/runtime/reference_articulated.py): the built-in plan's
    scripted start (a legged robot's stand-up, ``stand_s``; an arm's move to the default pose, ``move_s``), then
    the streamed phase ``stream`` until ``duration_s`` (s since the plan started, the longest run), then
    ``end`` (the command ramps to zero, the target holds) until the robot is at rest. The adapter fills in the
    streamed command."""

    start: LeggedPlan | ArmPlan
    duration_s: float
    stream: str = "stream"
    end: str = "end"

    @property
    def start_s(self) -> float:
        return self.start.stand_s if isinstance(self.start, LeggedPlan) else self.start.move_s

    def __post_init__(self) -> None:
        if not self.duration_s > self.start_s:
            what = "stand_s" if isinstance(self.start, LeggedPlan) else "move_s"
            raise ValueError(
                f"reference.duration_s ({self.duration_s} s) must be longer than the plan's {what} "
                f"({self.start_s} s), which runs first"
            )

    def at(self, t: float) -> PlanStep:
        if t < self.start_s:
            return self.start.at(t)
        return PlanStep(self.stream if t < self.duration_s else self.end)
