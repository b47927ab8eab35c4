"""Where the reference a policy tracks comes from: the profile's built-in plan (the default), or a ROS topic
a user's planner, joystick or ground station publishes, limited by the runtime before the policy sees it.

    reference:                  # deploy profile; absent = the built-in plan
      source: topic             # the transport table's topic: quadrotor ``setpoint`` (reference/setpoint,
                                # geometry_msgs/PoseStamped); rename it under transport.topics
      timeout_s: 0.5            # older than this: the reference stops where it is (hover there), at WARNING
      lost_s: 2.0               # older than this (or none within lost_s of arming): FALLBACK, the robot lands
      max_speed_m_s: 0.5        # the reference moves towards the requested point at most this fast
      margin_m: 0.3             # requested points are kept this far inside the geofence and below the ceiling
      duration_s: 600           # the longest run; the operator normally lands before (then the robot lands)

Quadrotor (:class:`SetpointReference`): position setpoints in the world frame (frame_id ``world``, ``map``,
``odom`` or empty; others are refused at WARNING, once). A requested point is clipped into the envelope (inside
the geofence by ``margin_m``, between the take-off height and ``margin_m`` below the altitude ceiling), then
the reference moves towards it at ``max_speed_m_s`` (its velocity is the policy's velocity reference): a
setpoint 10 m away is a slow walk to the edge of the fence, never a jump. Staleness is measured on this
computer's clock from the setpoint's arrival, so the sender's clock does not matter.

Legged robots (``cmd_vel``, geometry_msgs/Twist) and arms (``reference/target``, PoseStamped in the base frame)
read the same section with their own limits: deploy/runtime/reference_articulated.py. Their staleness is
:class:`StreamWatch`'s (a refused sample, e.g. in another frame, is skipped; the age runs on from the last
usable one).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

log = logging.getLogger("sim2real.runtime")

WORLD_FRAMES = ("world", "map", "odom", "")


class ReferenceConfigError(ValueError):
    """A deploy profile's reference section that cannot be used."""


@dataclass(frozen=True)
class TopicReference:
    """A reference streamed on a topic (see the module docstring). Times in s, speeds in m/s, distances in m."""

    timeout_s: float = 0.5
    lost_s: float = 2.0
    max_speed_m_s: float = 0.5
    margin_m: float = 0.3
    duration_s: float = 600.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (
                isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
            ):
                raise ReferenceConfigError(f"reference.{f.name}: expected a positive number, found {value!r}")
        if self.lost_s < self.timeout_s:
            raise ReferenceConfigError(
                f"reference.lost_s ({self.lost_s}) < timeout_s ({self.timeout_s}): the stream is lost only after it "
                "went stale; raise lost_s"
            )

    @classmethod
    def from_profile(cls, data: Mapping[str, Any] | None) -> TopicReference | None:
        """The ``reference:`` section of a deploy profile; None for the built-in plan."""
        return parse_section(cls, data)


def parse_section(cls: type, data: Mapping[str, Any] | None) -> Any:
    """The ``reference:`` section ``data`` of a deploy profile as the dataclass ``cls`` (its fields are the
    section's keys besides ``source``); None for the built-in plan (no section, or ``source: plan``)."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ReferenceConfigError(f"reference: expected a mapping such as {{source: topic}}, found {data!r}")
    data = dict(data)
    source = data.pop("source", "plan")
    if source == "plan":
        if data:
            raise ReferenceConfigError(f"reference: source plan takes no other keys, found {sorted(data)}")
        return None
    if source != "topic":
        raise ReferenceConfigError(f"reference.source: expected 'plan' or 'topic', found {source!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ReferenceConfigError(f"reference: unknown keys {unknown}; expected some of {sorted(known)}")
    return cls(**data)


def positive(name: str, value: object) -> float:
    """``value`` as a float when it is a positive finite number, else :class:`ReferenceConfigError` naming the
    field ``reference.<name>``."""
    if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise ReferenceConfigError(f"reference.{name}: expected a positive number, found {value!r}")
    return float(value)


@dataclass(frozen=True)
class StreamedPlan:
    """The plan of a streamed reference: only its longest duration (the runtime lands the robot after it)."""

    duration_s: float


class SetpointReference:
    """The quadrotor's reference from position setpoints (PoseStamped, world frame), limited by the envelope.

    envelope: the safety profile's QuadrotorEnvelope; start: (3,) take-off position, world m."""

    def __init__(self, config: TopicReference, subscription, envelope, start: np.ndarray) -> None:
        self.config, self.sub, self.envelope = config, subscription, envelope
        self.position = np.asarray(start, dtype=float).copy()
        self.floor_z = float(start[2])
        self.velocity = np.zeros(3)
        self.target: np.ndarray | None = None
        self._last: float | None = None
        self.watch = StreamWatch(
            subscription, config.timeout_s, config.lost_s, _setpoint_refusal, "holding the reference where it is"
        )

    def clip(self, point: np.ndarray) -> np.ndarray:
        """``point`` (3,) world m kept inside the geofence and between the floor and the ceiling, by the margin."""
        env, margin = self.envelope, self.config.margin_m
        center = np.asarray(env.geofence_center_xy_m, dtype=float)
        xy = point[:2] - center
        radius = max(env.geofence_radius_m - margin, 0.0)
        distance = float(np.hypot(*xy))
        if distance > radius:
            xy = xy * (radius / distance)
        z = min(max(float(point[2]), self.floor_z), env.altitude_ceiling_m - margin)
        return np.array([center[0] + xy[0], center[1] + xy[1], z])

    def update(self, now: float) -> str:
        """Advance the reference to ``now`` (monotonic s); returns a fault ('' if none): the stream is lost.
        Setpoints in another frame or not finite are skipped (at WARNING, once): the stream's age runs on from the
        last usable one, so a stream of bad setpoints goes stale and then lost."""
        dt = 0.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        msg, fault = self.watch.poll(now)
        self.velocity = np.zeros(3)
        if fault or msg is None:
            return fault
        p = msg.pose.position
        requested = np.array([p.x, p.y, p.z], dtype=float)
        self.target = self.clip(requested)
        if np.linalg.norm(self.target - requested) > 1e-6:
            self.watch.warn(
                "clipped", "setpoint %s outside the envelope: kept at %s", requested.round(2), self.target.round(2)
            )
        step = self.target - self.position
        max_step = self.config.max_speed_m_s * dt
        distance = float(np.linalg.norm(step))
        if distance > max_step:
            step *= max_step / distance
        self.position = self.position + step
        self.velocity = step / dt if dt > 0 else np.zeros(3)
        return ""


def _setpoint_refusal(msg) -> str:
    """Why a position setpoint is not usable ('' when it is)."""
    if msg.header.frame_id not in WORLD_FRAMES:
        return f"frame_id {msg.header.frame_id!r} is not a world frame {WORLD_FRAMES}"
    p = msg.pose.position
    return "" if all(math.isfinite(v) for v in (p.x, p.y, p.z)) else "a setpoint that is not finite"


class StreamWatch:
    """How old a streamed reference is and which of its samples are usable. Ages are measured on this
    computer's monotonic clock from each sample's arrival (``Subscription.latest_arrival()``), so the sender's
    clock does not matter. ``check(msg) -> str`` says why a sample is refused ('' when usable, e.g. a wrong
    frame or a NaN); a refused sample is skipped and the age runs on from the last usable one. Each reason is
    logged at WARNING once; the stale warning (with ``stale``, what the robot does then) again after the stream
    was fresh.

    :meth:`poll` -> (the latest usable sample while fresh, else None; a fault: '' or why the stream is lost).
    The stream is lost when its last usable sample (or, without one, the first poll) is older than ``lost_s``."""

    def __init__(self, subscription, timeout_s: float, lost_s: float, check=None, stale: str = "holding") -> None:
        self.sub, self.timeout_s, self.lost_s = subscription, timeout_s, lost_s
        self.check = check or (lambda msg: "")
        self.stale = stale  # what a stale stream does, for the warning
        self.started_at: float | None = None
        self.last: Any = None  # the latest usable sample
        self.last_arrival_s: float | None = None
        self._seen_ns: int | None = None
        self._warned: set[str] = set()

    def warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("reference %s: " + message, self.sub.topic, *args)

    def age(self, now: float) -> float:
        """Seconds since the latest usable sample arrived (inf without one)."""
        return math.inf if self.last_arrival_s is None else now - self.last_arrival_s

    def poll(self, now: float) -> tuple[Any, str]:
        if self.started_at is None:
            self.started_at = now
        msg, arrival_ns = self.sub.latest_arrival()
        if msg is not None and arrival_ns != self._seen_ns:
            self._seen_ns = arrival_ns
            why = self.check(msg)
            if why:
                self.warn(why, "%s: ignored", why)
            else:
                self.last, self.last_arrival_s = msg, arrival_ns * 1e-9
        age, since = self.age(now), now - self.started_at
        if age > self.lost_s and since > self.lost_s:
            return None, f"reference stream {self.sub.topic} lost: nothing usable for {min(age, since):.2f} s"
        if age > self.timeout_s:
            if self.last is not None:
                self.warn("stale", "nothing for %.2f s (timeout_s %.2f): %s", age, self.timeout_s, self.stale)
            return None, ""
        self._warned.discard("stale")
        return self.last, ""
