"""The quadrotor's part of the deploy runtime (see deploy/runtime/core.py for the contract). Torch-free.

State (ROS convention, :mod:`deploy.state_wire`): ``pose`` (PoseStamped, world) + ``twist`` (TwistStamped, linear and
angular in the body frame), or with ``state_input="odometry"`` (profile ``state: {input: odometry}``) ``odom``
(nav_msgs/Odometry: pose in the world, twist in the child body frame); optional ``battery``. Command, by the policy's action
interface: ``motor_command`` (sim2real_msgs/MotorCommand, RPM in the robot profile's motor order) for rpm
policies, ``rate_command`` (sim2real_msgs/RateThrustCommand, collective thrust N and body rates FLU rad/s) for
ctbr policies, whose rate loop runs in the autopilot; both carry the vehicle id. The plan moves the
reference the policy tracks: climb to a height above the start point, hover, descend to the start height, then
keep descending below it at the same rate (``sink_m`` at most) so that the policy presses the vehicle onto
the ground: touchdown (:func:`deploy.safety.touched_down`: low height, low speed, low thrust, held for the
safety profile's ``quadrotor.touchdown.hold_s``) is what lets the plan disarm.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from deploy.msgs import (
    BatteryState,
    MotorCommand,
    Odometry,
    PoseStamped,
    RateThrustCommand,
    TwistStamped,
    Vector3,
    make_header,
)
from deploy.observation import Context, ObservationBuilder
from deploy.runtime.battery import BatteryGauge
from deploy.runtime.clock import InputClocks
from deploy.runtime.contract import Act, Policy, Reading
from deploy.runtime.excitation import Excitation, ExcitationError, ExcitationRun
from deploy.runtime.reference import SetpointReference, StreamedPlan, TopicReference
from deploy.runtime.spool_down import SpoolDown
from deploy.safety import QuadrotorLimits, SafeCommand, StateSample, crazyflie_profile, touched_down
from deploy.safety.checks_robot import tilt_rad
from deploy.safety.quadrotor_control import on_floor
from deploy.state_wire import TwistFrameError, odometry_state, world_velocity
from deploy.transport import Ros2Node, TransportConfig
from drivers.robot import RobotState

log = logging.getLogger("sim2real.runtime")

#: the quadrotor's state inputs: ``pose_twist`` (state/pose + state/twist) or ``odometry`` (state/odom)
STATE_INPUTS = ("pose_twist", "odometry")


class PlanError(ValueError):
    """A plan that cannot be flown safely (negative durations or rates, outside the envelope)."""


@dataclass(frozen=True)
class FlightPlan:
    """Reference relative to the start position: climb, hover, descend. Times in s, rates in m/s, height m."""

    height_m: float = 1.0
    climb_rate_m_s: float = 0.5
    hover_s: float = 10.0
    descent_rate_m_s: float = 0.3
    excitation: Excitation | None = None  # doublets during the hover (deploy.runtime.excitation), a mapping in YAML

    def __post_init__(self) -> None:
        if isinstance(self.excitation, dict):
            try:
                object.__setattr__(self, "excitation", Excitation.from_dict(self.excitation))
            except (TypeError, ExcitationError) as exc:
                raise PlanError(str(exc)) from None
        elif self.excitation is not None and not isinstance(self.excitation, Excitation):
            raise PlanError(f"plan.excitation: expected a mapping, got {type(self.excitation).__name__}")
        for name in ("height_m", "climb_rate_m_s", "descent_rate_m_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise PlanError(f"plan.{name}: expected a positive finite number, got {value!r}")
        if not (isinstance(self.hover_s, int | float) and math.isfinite(self.hover_s) and self.hover_s >= 0):
            raise PlanError(f"plan.hover_s: expected seconds >= 0, got {self.hover_s!r}")
        if self.excitation is not None and self.excitation.duration_s > self.hover_s:
            raise PlanError(
                f"plan.hover_s {self.hover_s:g} s is too short for plan.excitation ({self.excitation.doublets} "
                f"doublets of {self.excitation.slot_s:g} s from {self.excitation.start_s:g} s into the hover): "
                f"raise plan.hover_s to >= {self.excitation.duration_s:g} or fly fewer doublets"
            )

    @property
    def climb_s(self) -> float:
        return self.height_m / self.climb_rate_m_s

    @property
    def duration_s(self) -> float:
        return self.climb_s + self.hover_s + self.height_m / self.descent_rate_m_s

    def reference(self, t: float, sink_m: float = 0.0) -> tuple[float, float]:
        """(height above start m, vertical speed m/s) at ``t`` seconds after the start of the plan; after the
        descent the reference goes on down to ``-sink_m`` (pressing the vehicle onto the ground)."""
        if t < 0:
            return 0.0, 0.0
        if t < self.climb_s:
            return self.climb_rate_m_s * t, self.climb_rate_m_s
        t -= self.climb_s
        if t < self.hover_s:
            return self.height_m, 0.0
        t -= self.hover_s
        z = self.height_m - self.descent_rate_m_s * t
        if z > -sink_m:
            return z, -self.descent_rate_m_s
        return -sink_m, 0.0

    def check_envelope(self, ceiling_m: float, start_height_m: float = 0.0) -> None:
        """Refuse a plan whose top is above the altitude ceiling (from the start height, m)."""
        if start_height_m + self.height_m > ceiling_m:
            raise PlanError(
                f"the plan climbs to {start_height_m + self.height_m:.2f} m (start {start_height_m:.2f} m + height "
                f"{self.height_m:.2f} m), above the altitude ceiling {ceiling_m:.2f} m: lower plan.height_m"
            )


class QuadrotorAdapter:
    """The quadrotor: reads pose/twist/battery, runs the policy on the plan's reference, sends MotorCommand (rpm
    policies) or RateThrustCommand (ctbr policies). ``limits.interface`` must be the policy's."""

    fallback_hold_s = None  # the layer's fallback lands and disarms by itself

    def __init__(
        self,
        policy: Policy,
        node: Ros2Node,
        transport: TransportConfig,
        plan: FlightPlan | None = None,
        limits: QuadrotorLimits | None = None,
        sink_m: float = 0.3,
        battery: BatteryGauge | None = None,
        reference: TopicReference | None = None,
        state_input: str = "pose_twist",
    ):
        if state_input not in STATE_INPUTS:
            raise ValueError(f"state_input: expected one of {STATE_INPUTS}, got {state_input!r}")
        self.policy = policy
        self.plan = StreamedPlan(reference.duration_s) if reference is not None else plan or FlightPlan()
        excitation = getattr(self.plan, "excitation", None)
        self.excitation = (
            None
            if excitation is None
            else ExcitationRun(excitation, policy.action_spec.interface, 1.0 / policy.control_hz)
        )
        self.limits = limits or crazyflie_profile().quadrotor
        interface = policy.action_spec.interface
        if interface != self.limits.interface:
            raise ValueError(
                f"the policy acts through {interface!r}, the safety limits are for {self.limits.interface!r}: "
                "load the deploy profile with the policy's action interface"
            )
        self.command_key = "rate_command" if interface == "ctbr" else "motor_command"
        self.ceiling_m, self.sink_m = self.limits.envelope.altitude_ceiling_m, sink_m
        self.builder = ObservationBuilder(policy.obs_spec, 1.0 / policy.control_hz)
        topic = transport.topic
        self.battery_sub = node.subscription(topic("battery").name, BatteryState, topic("battery").qos)
        if state_input == "odometry":
            self.odom_sub = node.subscription(topic("odom").name, Odometry, topic("odom").qos)
            self.inputs = {"odom": self.odom_sub, "battery": self.battery_sub}
            self.clocks = InputClocks(("odom",))
        else:
            self.pose_sub = node.subscription(topic("pose").name, PoseStamped, topic("pose").qos)
            self.twist_sub = node.subscription(topic("twist").name, TwistStamped, topic("twist").qos)
            self.inputs = {"pose": self.pose_sub, "twist": self.twist_sub, "battery": self.battery_sub}
            self.clocks = InputClocks(("pose", "twist"))
        for name in self.clocks.clocks:  # the log gets every state sample, not only those a cycle used
            self.inputs[name].keep_all()
        self.state_input = state_input
        self._bad_twist = ""  # the last refused twist's reason, logged once
        self.reference_config = reference
        self.setpoint_sub = (
            None if reference is None else node.subscription(topic("setpoint").name, PoseStamped, topic("setpoint").qos)
        )
        self.setpoints: SetpointReference | None = None
        self.battery = battery or BatteryGauge()
        self.last_action = np.zeros(policy.action_spec.dim, dtype=np.float32)
        self.start_position: np.ndarray | None = None
        self.errors: list[tuple[float, float]] = []  # (plan time s, |position - reference| m) per active cycle
        self._rest_since: float | None = None
        self.spool_down = SpoolDown(self.limits.touchdown.spool_down_s, interface)

    def read(self) -> Reading | None:
        """The newest state (velocity rotated into the world frame), or None: nothing yet, a stamp the clock could
        not reconcile, or a twist not in the body frame (logged once): no new state, the state goes stale."""
        try:
            found = self._odometry() if self.state_input == "odometry" else self._pose_twist()
        except TwistFrameError as exc:
            if str(exc) != self._bad_twist:
                log.error("state ignored (the state goes stale): %s", exc)
                self._bad_twist = str(exc)
            return None
        if found is None:
            return None
        stamp, (position, quat, velocity, rates), messages = found
        battery = self.battery_sub.latest()
        state = RobotState(
            stamp,
            position,
            quat,
            velocity,
            rates,
            battery_fraction=None if battery is None else self.battery.fraction(battery),
        )
        sample = StateSample(
            state.stamp_s,
            state.position,
            state.linear_velocity,
            state.quaternion,
            state.angular_velocity,
            state.battery_fraction,
        )
        # every state sample that arrived since the last reading, then the ones this reading used (recorded once)
        arrived = [m for name in self.clocks.clocks for m in self.inputs[name].drain()]
        used = [m for m in messages if not any(m is a for a in arrived)]
        messages = (*arrived, *used) if battery is None else (*arrived, *used, battery)
        return Reading(state, sample, messages)

    def _pose_twist(self) -> tuple[float, tuple, tuple] | None:
        pose, pose_t = self.clocks.latest("pose", self.pose_sub)
        twist, twist_t = self.clocks.latest("twist", self.twist_sub)
        if pose is None or twist is None or pose_t is None or twist_t is None:
            return None
        p, q = pose.pose.position, pose.pose.orientation
        quat = np.array([q.w, q.x, q.y, q.z])
        velocity, rates = world_velocity(quat, twist)  # the pose's attitude rotates the body-frame twist
        return min(pose_t, twist_t), (np.array([p.x, p.y, p.z]), quat, velocity, rates), (pose, twist)

    def _odometry(self) -> tuple[float, tuple, tuple] | None:
        odom, odom_t = self.clocks.latest("odom", self.odom_sub)
        if odom is None or odom_t is None:
            return None
        return odom_t, odometry_state(odom), (odom,)

    def arm_refusal(self, reading: Reading | None) -> str:
        """Why the plan may not be flown from here ('' if it may)."""
        if reading is None or self.reference_config is not None:  # streamed setpoints are clipped into the envelope
            return ""
        try:
            self.plan.check_envelope(self.ceiling_m, float(reading.state.position[2]))
        except PlanError as exc:
            return str(exc)
        return ""

    def idle(self) -> None:
        self.builder.reset()  # stateful observation terms start again at the next arming
        self.last_action[:] = 0.0
        self.start_position = None
        self._rest_since = None
        self.setpoints = None
        self.spool_down.reset()

    def act(self, reading: Reading, now: float, t: float | None, active: bool) -> Act:
        state = reading.state
        if self.start_position is None:
            self.start_position = state.position.copy()
        fault = ""
        if self.reference_config is not None:
            ref_pos, ref_vel, fault = self._streamed(now, t)
        else:
            dz, vz = self.plan.reference(-1.0 if t is None else t, self.sink_m)
            ref_pos, ref_vel = self.start_position + np.array([0.0, 0.0, dz]), np.array([0.0, 0.0, vz])
        obs = self.builder.build(state, Context(ref_pos, ref_vel, self.last_action))
        t0 = time.perf_counter()
        action = np.asarray(self.policy(obs), dtype=np.float32)
        inference = time.perf_counter() - t0
        self.last_action = np.clip(self.policy.action_spec.to_normalized(action), -1.0, 1.0).astype(np.float32)
        if active and t is not None:
            self.errors.append((t, float(np.linalg.norm(state.position - ref_pos))))
        phase = "arming" if t is None else self._phase(t)
        excitation = self._excitation(state, t) if active and phase == "hover" else None
        if excitation is not None:  # added to the command only: the policy's own action stays its last action
            spec = self.policy.action_spec
            action = np.asarray(spec.to_physical(np.clip(self.last_action + excitation, -1.0, 1.0)), np.float32)
        if active and phase == "land":  # on the floor the runtime takes the thrust away, whatever the policy does
            floor_z = float(self.start_position[2])
            floor = on_floor(state.position, state.linear_velocity, self.limits.touchdown, floor_z)
            action = self.spool_down.apply(t, action, floor)
        return Act(action, obs, self.last_action.copy(), inference, phase, fault, ref_pos, excitation)

    def _excitation(self, state: RobotState, t: float) -> np.ndarray | None:
        if self.excitation is None:
            return None
        rate = float(np.linalg.norm(state.angular_velocity))
        tilt = tilt_rad(state.quaternion)
        return None if tilt is None else self.excitation.delta(t - self.plan.climb_s, tilt, rate)

    def _streamed(self, now: float, t: float | None) -> tuple[np.ndarray, np.ndarray, str]:
        """(reference position, velocity, fault) from the setpoint stream; it holds the take-off point while
        arming and starts following at ACTIVE."""
        if self.setpoints is None:
            self.setpoints = SetpointReference(
                self.reference_config, self.setpoint_sub, self.limits.envelope, self.start_position
            )
        fault = "" if t is None else self.setpoints.update(now)
        return self.setpoints.position.copy(), self.setpoints.velocity.copy(), fault

    def _phase(self, t: float) -> str:
        if self.reference_config is not None:
            return "setpoint" if t < self.plan.duration_s else "land"
        p = self.plan
        if t < p.climb_s:
            return "climb"
        if t < p.climb_s + p.hover_s:
            return "hover"
        return "descend" if t < p.duration_s else "land"

    def command_message(self, command: SafeCommand, stamp_ns: int, vehicle_id: str) -> MotorCommand | RateThrustCommand:
        values = [float(v) for v in command.values]
        if self.command_key == "rate_command":
            return RateThrustCommand(
                make_header(stamp_ns), values[0], Vector3(*values[1:]), vehicle_id, command.mode.value
            )
        return MotorCommand(make_header(stamp_ns), values, vehicle_id, command.mode.value)

    def at_rest(self, reading: Reading | None, command: SafeCommand) -> bool:
        """Touchdown above the start point, held for ``limits.touchdown.hold_s`` of measurement time."""
        if reading is None or self.start_position is None:
            return False
        s = reading.state
        if not touched_down(reading.sample, command, self.limits, floor_z_m=float(self.start_position[2])):
            self._rest_since = None
            return False
        if self._rest_since is None:
            self._rest_since = s.stamp_s
        return s.stamp_s - self._rest_since >= self.limits.touchdown.hold_s

    def hover_rms(self) -> float | None:
        if self.reference_config is not None:
            return None
        p = self.plan
        errors = [e for t, e in self.errors if p.climb_s + 1.0 < t < p.climb_s + p.hover_s]
        return (sum(e * e for e in errors) / len(errors)) ** 0.5 if errors else None

    def tracking_rms(self) -> float | None:
        """RMS distance to the reference over every active cycle after the first second, m."""
        errors = [e for t, e in self.errors if t > 1.0]
        return (sum(e * e for e in errors) / len(errors)) ** 0.5 if errors else None

    def summary(self) -> dict:
        out = {"hover_rms_m": self.hover_rms(), "tracking_rms_m": self.tracking_rms(), **self.spool_down.summary()}
        if self.excitation is not None:
            out["excitation"] = self.excitation.summary()
        return out
