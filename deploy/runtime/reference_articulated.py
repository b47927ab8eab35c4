"""Streamed references of the articulated robots: a legged robot's velocity command from ``cmd_vel``, an arm's
end-effector target from ``reference/target``, limited before the policy sees them. The profile section, the
staleness rules and the quadrotor's setpoints: deploy/runtime/reference.py. Torch-free.

    reference:                      # a legged robot's deploy profile (robot_class: legged)
      source: topic                 # transport key cmd_vel: geometry_msgs/Twist, body frame
      timeout_s: 0.5                # older than this: the command ramps to zero (the robot stands), at WARNING
      lost_s: 2.0                   # older than this (or none within lost_s of the stand-up's end): FALLBACK
      lin_vel_x_m_s: [-0.5, 1.0]    # clipped into the ranges the policy was trained with (see below)
      lin_vel_y_m_s: [-0.3, 0.3]
      yaw_rate_rad_s: [-0.5, 0.5]
      max_lin_acc_m_s2: 1.0         # the command changes at most this fast (planar, by its norm)
      max_yaw_acc_rad_s2: 2.0
      duration_s: 600               # the longest run, from the first ACTIVE cycle; then the command ramps to zero

    reference:                      # an arm's deploy profile (robot_class: arm)
      source: topic                 # transport key target: geometry_msgs/PoseStamped, robot base frame
      timeout_s: 0.5                # older than this: the target stops where it is (the arm holds), at WARNING
      lost_s: 2.0                   # older than this (or none within lost_s of the move's end): FALLBACK (hold)
      workspace_x_m: [0.3, 0.55]    # requested positions are clipped into this box (base frame, m)
      workspace_y_m: [-0.2, 0.2]
      workspace_z_m: [0.3, 0.6]
      yaw_rad: [-0.5, 0.5]          # orientations: gripper down, turned about z by at most this ...
      tilt_rad: 0.2                 # ... and tilted by at most this
      max_speed_m_s: 0.25           # the target moves towards the requested pose at most this fast
      max_angular_speed_rad_s: 1.0
      frame_ids: null               # accepted frame_ids; null: '', base, base_link and the robot's base body
      duration_s: 600               # the longest run; then the target holds and the run ends at rest

Where the limits come from: the exported policy's metadata (policies/export.py) carries the task name, the
observation and action specs, the robot profile and the randomization, not the command ranges or the target box,
and the robot profiles hold neither. The defaults above are the training tasks' own: ``legged-walk``'s
``CommandCfg`` and ``arm-reach``'s ``TargetCfg`` (sim/articulated/tasks; tests check that they agree). A policy
trained with other ranges needs them written here.

Legged (:class:`CmdVelReference`): ``linear.x`` forward and ``linear.y`` left (m/s), ``angular.z`` yaw rate
(rad/s), as ROS's ``cmd_vel``; ``linear.z``, ``angular.x/y`` are ignored (WARNING once when not zero). The
stand-up of the plan (``plan.stand_s``) runs first; then the command follows the stream.

Arm (:class:`TargetReference`): the target starts at the end-effector pose measured when the move to the
default pose ends, so the arm holds until a target arrives. A requested orientation is kept within the
training's: the rotation from "gripper pointing down" split into a turn about the base z axis (clipped into
``yaw_rad``) and a tilt about a horizontal axis (clipped to ``tilt_rad``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deploy.observation import quat_multiply
from deploy.runtime.reference import ReferenceConfigError, StreamWatch, parse_section, positive

BASE_FRAMES = ("", "base", "base_link")
DOWN_WXYZ = np.array([0.0, 1.0, 0.0, 0.0])  # arm-reach's default target orientation: gripper pointing down


def _range(name: str, value: object, contains_zero: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ReferenceConfigError(f"reference.{name}: expected [low, high], found {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ReferenceConfigError(f"reference.{name}: expected finite low < high, found {value!r}")
    if contains_zero and not low <= 0.0 <= high:
        raise ReferenceConfigError(
            f"reference.{name}: {value!r} does not contain 0; a stale stream stops the robot (command 0)"
        )
    return low, high


def _check_times(config) -> None:
    for name in ("timeout_s", "lost_s", "duration_s"):
        positive(name, getattr(config, name))
    if config.lost_s < config.timeout_s:
        raise ReferenceConfigError(
            f"reference.lost_s ({config.lost_s}) < timeout_s ({config.timeout_s}): the stream is lost only after it "
            "went stale; raise lost_s"
        )


@dataclass(frozen=True)
class LeggedReference:
    """A legged robot's velocity command streamed on ``cmd_vel`` (the module docstring). Ranges [low, high]."""

    timeout_s: float = 0.5
    lost_s: float = 2.0
    lin_vel_x_m_s: tuple[float, float] = (-0.5, 1.0)
    lin_vel_y_m_s: tuple[float, float] = (-0.3, 0.3)
    yaw_rate_rad_s: tuple[float, float] = (-0.5, 0.5)
    max_lin_acc_m_s2: float = 1.0
    max_yaw_acc_rad_s2: float = 2.0
    duration_s: float = 600.0

    def __post_init__(self) -> None:
        _check_times(self)
        for name in ("lin_vel_x_m_s", "lin_vel_y_m_s", "yaw_rate_rad_s"):
            object.__setattr__(self, name, _range(name, getattr(self, name), contains_zero=True))
        for name in ("max_lin_acc_m_s2", "max_yaw_acc_rad_s2"):
            positive(name, getattr(self, name))

    @property
    def low(self) -> np.ndarray:
        return np.array([self.lin_vel_x_m_s[0], self.lin_vel_y_m_s[0], self.yaw_rate_rad_s[0]])

    @property
    def high(self) -> np.ndarray:
        return np.array([self.lin_vel_x_m_s[1], self.lin_vel_y_m_s[1], self.yaw_rate_rad_s[1]])


@dataclass(frozen=True)
class ArmReference:
    """An arm's end-effector target streamed on ``reference/target`` (the module docstring). Box [low, high] m."""

    timeout_s: float = 0.5
    lost_s: float = 2.0
    workspace_x_m: tuple[float, float] = (0.3, 0.55)
    workspace_y_m: tuple[float, float] = (-0.2, 0.2)
    workspace_z_m: tuple[float, float] = (0.3, 0.6)
    yaw_rad: tuple[float, float] = (-0.5, 0.5)
    tilt_rad: float = 0.2
    max_speed_m_s: float = 0.25
    max_angular_speed_rad_s: float = 1.0
    frame_ids: tuple[str, ...] | None = None
    duration_s: float = 600.0

    def __post_init__(self) -> None:
        _check_times(self)
        for name in ("workspace_x_m", "workspace_y_m", "workspace_z_m"):
            object.__setattr__(self, name, _range(name, getattr(self, name), contains_zero=False))
        object.__setattr__(self, "yaw_rad", _range("yaw_rad", self.yaw_rad, contains_zero=True))
        for name in ("tilt_rad", "max_speed_m_s", "max_angular_speed_rad_s"):
            positive(name, getattr(self, name))
        if self.yaw_rad[0] < -math.pi or self.yaw_rad[1] > math.pi or self.tilt_rad > math.pi:
            raise ReferenceConfigError(
                f"reference.yaw_rad {self.yaw_rad} / tilt_rad {self.tilt_rad}: expected radians within [-pi, pi] "
                "(degrees? multiply by pi/180)"
            )
        if self.frame_ids is not None:
            if isinstance(self.frame_ids, str) or not all(isinstance(f, str) for f in self.frame_ids):
                raise ReferenceConfigError(f"reference.frame_ids: expected a list of names, found {self.frame_ids!r}")
            object.__setattr__(self, "frame_ids", tuple(self.frame_ids))

    @property
    def low(self) -> np.ndarray:
        return np.array([self.workspace_x_m[0], self.workspace_y_m[0], self.workspace_z_m[0]])

    @property
    def high(self) -> np.ndarray:
        return np.array([self.workspace_x_m[1], self.workspace_y_m[1], self.workspace_z_m[1]])

    def frames(self, base_body: str) -> tuple[str, ...]:
        """The frame_ids a target may be given in."""
        return self.frame_ids if self.frame_ids is not None else (*BASE_FRAMES, base_body)


def articulated_reference(robot_class: str, data) -> LeggedReference | ArmReference | None:
    """The ``reference:`` section of a legged or arm deploy profile; None for the built-in plan."""
    if robot_class not in ("legged", "arm"):
        raise ReferenceConfigError(f"robot_class {robot_class!r}: expected 'legged' or 'arm'")
    return parse_section(LeggedReference if robot_class == "legged" else ArmReference, data)


# ---------------------------------------------------------------------------------------------- kernels
def step_toward(current: np.ndarray, goal: np.ndarray, max_step: float) -> np.ndarray:
    """``current`` moved towards ``goal`` by at most ``max_step`` (Euclidean norm). (K,) -> (K,)."""
    delta = goal - current
    distance = float(np.linalg.norm(delta))
    if distance <= max_step:
        return goal.copy()
    return current + delta * (max_step / distance)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def axis_angle(q: np.ndarray) -> tuple[np.ndarray, float]:
    """(unit axis (3,), angle in [0, pi] rad) of the rotation ``q`` (w-first); the axis is x for no rotation."""
    q = q if q[0] >= 0 else -q
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return np.array([1.0, 0.0, 0.0]), 0.0
    return q[1:] / s, 2.0 * math.atan2(s, q[0])


def from_axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * np.asarray(axis, dtype=float)])


def clip_orientation(q: np.ndarray, yaw_rad: tuple[float, float], tilt_rad: float) -> np.ndarray:
    """``q`` (4,) w-first, base frame, kept within arm-reach's targets: tilt * yaw * DOWN with the yaw (about
    base z) in ``yaw_rad`` and the tilt (about a horizontal axis) at most ``tilt_rad``."""
    r = quat_multiply(q, quat_conjugate(DOWN_WXYZ))  # the rotation applied to DOWN
    twist = np.array([r[0], 0.0, 0.0, r[3]])
    norm = float(np.linalg.norm(twist))
    twist = twist / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0, 0.0])  # a half turn about a horizontal axis
    swing = quat_multiply(r, quat_conjugate(twist))
    yaw = math.remainder(2.0 * math.atan2(twist[3], twist[0]), 2.0 * math.pi)
    axis, tilt = axis_angle(swing)
    yaw = min(max(yaw, yaw_rad[0]), yaw_rad[1])
    limited = quat_multiply(
        from_axis_angle(axis, min(tilt, tilt_rad)), quat_multiply(from_axis_angle([0, 0, 1], yaw), DOWN_WXYZ)
    )
    return limited / np.linalg.norm(limited)


def rotate_toward(current: np.ndarray, goal: np.ndarray, max_angle: float) -> np.ndarray:
    """``current`` (4,) turned towards ``goal`` (4,) by at most ``max_angle`` rad, the short way round."""
    axis, angle = axis_angle(quat_multiply(goal, quat_conjugate(current)))
    if angle <= max_angle:
        return goal.copy()
    out = quat_multiply(from_axis_angle(axis, max_angle), current)
    return out / np.linalg.norm(out)


# ---------------------------------------------------------------------------------------------- followers
class _Follower:
    def __init__(self, watch: StreamWatch) -> None:
        self.watch = watch
        self._last: float | None = None

    def _dt(self, now: float) -> float:
        dt = 0.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        return dt


def _twist_check(msg) -> str:
    values = (msg.linear.x, msg.linear.y, msg.angular.z)
    return "" if all(math.isfinite(v) for v in values) else "a velocity command that is not finite"


class CmdVelReference(_Follower):
    """The velocity command (3,): vx, vy m/s, yaw rate rad/s (body frame) from ``geometry_msgs/Twist``,
    clipped into the configured ranges and slewed at the acceleration limits; ``command`` is what the policy
    observes."""

    def __init__(self, config: LeggedReference, subscription) -> None:
        stale = "the command ramps to zero (the robot stands)"
        super().__init__(StreamWatch(subscription, config.timeout_s, config.lost_s, _twist_check, stale))
        self.config = config
        self.command = np.zeros(3)
        self.requested: np.ndarray | None = None  # the latest usable command, clipped

    def clip(self, command: np.ndarray) -> np.ndarray:
        return np.clip(command, self.config.low, self.config.high)

    def update(self, now: float, stop: bool = False) -> str:
        """Advance to ``now`` (monotonic s); returns a fault ('' if none): the stream is lost. ``stop``: ramp to
        zero whatever the stream says (the run's end)."""
        dt = self._dt(now)
        goal, fault = np.zeros(3), ""
        if not stop:
            msg, fault = self.watch.poll(now)
            if msg is not None:
                requested = np.array([msg.linear.x, msg.linear.y, msg.angular.z], dtype=float)
                goal = self.requested = self.clip(requested)
                if np.any(goal != requested):
                    self.watch.warn("clip", "command %s outside the trained ranges: kept at %s", requested, goal)
                if msg.linear.z or msg.angular.x or msg.angular.y:
                    self.watch.warn("axes", "linear.z, angular.x and angular.y are ignored (a legged robot's cmd_vel)")
        c = self.config
        planar = step_toward(self.command[:2], goal[:2], c.max_lin_acc_m_s2 * dt)
        yaw = step_toward(self.command[2:], goal[2:], c.max_yaw_acc_rad_s2 * dt)
        self.command = np.concatenate([planar, yaw])
        return fault


class TargetReference(_Follower):
    """The end-effector target: ``position`` (3,) m and ``quat`` (4,) w-first in the base frame, from
    ``geometry_msgs/PoseStamped``, clipped into the workspace and the trained orientations and moved towards the
    requested pose at the speed limits. ``frames``: accepted frame_ids; ``position``, ``quat``: the start."""

    def __init__(
        self, config: ArmReference, subscription, frames: tuple[str, ...], position: np.ndarray, quat: np.ndarray
    ) -> None:
        self.frames = tuple(frames)
        stale = "the target stops where it is (the arm holds)"
        super().__init__(StreamWatch(subscription, config.timeout_s, config.lost_s, self._check, stale))
        self.config = config
        self.position = np.asarray(position, dtype=float).copy()
        norm = float(np.linalg.norm(quat))
        self.quat = np.asarray(quat, dtype=float) / norm if norm > 0.5 else DOWN_WXYZ.copy()
        self.target: np.ndarray | None = None  # the latest usable target, clipped
        self.target_quat: np.ndarray | None = None

    def _check(self, msg) -> str:
        if msg.header.frame_id not in self.frames:
            return f"frame_id {msg.header.frame_id!r} is not the robot base frame {list(self.frames)}"
        p, q = msg.pose.position, msg.pose.orientation
        values = np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z])
        if not np.all(np.isfinite(values)):
            return "a target that is not finite"
        if abs(float(np.linalg.norm(values[3:])) - 1.0) > 0.1:
            return "a target orientation that is not a unit quaternion"
        return ""

    def clip(self, position: np.ndarray) -> np.ndarray:
        return np.clip(position, self.config.low, self.config.high)

    def update(self, now: float, stop: bool = False) -> str:
        """Advance to ``now`` (monotonic s); returns a fault ('' if none): the stream is lost. ``stop``: hold
        (the run's end)."""
        dt = self._dt(now)
        if stop:
            return ""
        msg, fault = self.watch.poll(now)
        if msg is None:
            return fault  # stale or lost: the target stops where it is
        p, o = msg.pose.position, msg.pose.orientation
        requested = np.array([p.x, p.y, p.z], dtype=float)
        quat = np.array([o.w, o.x, o.y, o.z], dtype=float)
        quat /= np.linalg.norm(quat)
        self.target = self.clip(requested)
        self.target_quat = clip_orientation(quat, self.config.yaw_rad, self.config.tilt_rad)
        if np.any(self.target != requested):
            self.watch.warn("clip", "target %s outside the workspace: kept at %s", requested, self.target)
        if abs(float(np.dot(self.target_quat, quat))) < 1.0 - 1e-9:
            self.watch.warn("turn", "orientation %s outside the trained ones: kept at %s", quat, self.target_quat)
        self.position = step_toward(self.position, self.target, self.config.max_speed_m_s * dt)
        self.quat = rotate_toward(self.quat, self.target_quat, self.config.max_angular_speed_rad_s * dt)
        return ""
