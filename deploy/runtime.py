"""The quadrotor deploy runtime: one control cycle = newest state -> observation -> policy -> safety layer ->
motor command on the wire -> log. Torch-free.

The policy is anything with ``obs_spec``, ``action_spec``, ``control_hz`` and ``__call__(obs (D,)) -> (A,)``
physical command (the exported ONNX policy is one). The runtime flies a plan (take off to a height above the
start point, hover, descend to the start height, disarm) by moving the reference the policy tracks.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from deploy.loop import FixedRateLoop, LoopStats
from deploy.msgs import BatteryState, MotorCommand, PoseStamped, TwistStamped, make_header, time_to_ns
from deploy.observation import Context, ObservationBuilder
from deploy.recording import FlightRecorder
from deploy.safety import SafetyLayer, SafetyState, StateSample
from deploy.transport import Ros2Node, TransportConfig
from drivers.robot import RobotState
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec

log = logging.getLogger("sim2real.runtime")


class Policy(Protocol):
    obs_spec: ObsSpec
    action_spec: ActionSpec
    control_hz: float

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FlightPlan:
    """Reference relative to the start position: climb, hover, descend. Times in s, rates in m/s."""

    height_m: float = 1.0
    climb_rate_m_s: float = 0.5
    hover_s: float = 10.0
    descent_rate_m_s: float = 0.3

    @property
    def climb_s(self) -> float:
        return self.height_m / self.climb_rate_m_s

    @property
    def duration_s(self) -> float:
        return self.climb_s + self.hover_s + self.height_m / self.descent_rate_m_s

    def reference(self, t: float) -> tuple[float, float]:
        """(height above start m, vertical speed m/s) at ``t`` seconds after the start of the plan."""
        if t < 0:
            return 0.0, 0.0
        if t < self.climb_s:
            return self.climb_rate_m_s * t, self.climb_rate_m_s
        t -= self.climb_s
        if t < self.hover_s:
            return self.height_m, 0.0
        t -= self.hover_s
        return max(
            0.0, self.height_m - self.descent_rate_m_s * t
        ), -self.descent_rate_m_s if t * self.descent_rate_m_s < self.height_m else 0.0


class QuadrotorRuntime:
    """Wires a policy to a robot over ROS 2 topics behind the safety layer; call :meth:`cycle` at the policy rate."""

    def __init__(
        self,
        policy: Policy,
        node: Ros2Node,
        transport: TransportConfig,
        safety: SafetyLayer,
        recorder: FlightRecorder | None = None,
        plan: FlightPlan | None = None,
        realtime_priority: int | None = None,
    ):
        self.policy, self.safety, self.recorder = policy, safety, recorder
        self.realtime_priority = realtime_priority  # SCHED_FIFO priority of the control loop (deploy.loop)
        self.plan = plan or FlightPlan()
        self.builder = ObservationBuilder(policy.obs_spec, 1.0 / policy.control_hz)
        pose, twist, cmd = transport.topic("pose"), transport.topic("twist"), transport.topic("motor_command")
        self.pose_sub = node.subscription(pose.name, PoseStamped, pose.qos)
        self.twist_sub = node.subscription(twist.name, TwistStamped, twist.qos)
        battery = transport.topic("battery")
        self.battery_sub = node.subscription(battery.name, BatteryState, battery.qos)
        self.command_pub = node.publisher(cmd.name, MotorCommand, cmd.qos)
        self.last_action = np.zeros(policy.action_spec.dim, dtype=np.float32)
        self.start_position: np.ndarray | None = None
        self.plan_start_s: float | None = None
        self._logged_transitions = 0
        self._state_msgs: tuple[PoseStamped, TwistStamped] | tuple[()] = ()
        self.errors: list[tuple[float, float]] = []  # (plan time s, |position - reference| m) per active cycle

    def read_state(self) -> RobotState | None:
        pose, twist = self.pose_sub.latest(), self.twist_sub.latest()
        if pose is None or twist is None:
            return None
        self._state_msgs = (pose, twist)  # recorded with the cycle that uses them (replay, sysid)
        p, q = pose.pose.position, pose.pose.orientation
        v, w = twist.twist.linear, twist.twist.angular
        stamp = min(time_to_ns(pose.header.stamp), time_to_ns(twist.header.stamp)) * 1e-9
        battery = self.battery_sub.latest()
        return RobotState(
            stamp,
            np.array([p.x, p.y, p.z]),
            np.array([q.w, q.x, q.y, q.z]),
            np.array([v.x, v.y, v.z]),
            np.array([w.x, w.y, w.z]),
            battery_fraction=None if battery is None else float(battery.percentage),
        )

    def cycle(self, now: float) -> float | None:
        """One control period. Returns the inference time (s) when the policy ran."""
        state = self.read_state()
        if state is not None:
            sample = StateSample(
                state.stamp_s,
                state.position,
                state.linear_velocity,
                state.quaternion,
                state.angular_velocity,
                state.battery_fraction,
            )
            self.safety.on_state(sample, now)
        self.safety.heartbeat(now)  # the operator is this process (software-in-the-loop / scripted flight)
        action, inference = None, None
        flying = self.safety.state in (SafetyState.ARMING, SafetyState.ACTIVE)
        if not flying:
            self.builder.reset()  # stateful observation terms start again at the next arming
        if state is not None and flying:
            if self.start_position is None:
                self.start_position = state.position.copy()
            if self.plan_start_s is None and self.safety.state is SafetyState.ACTIVE:
                self.plan_start_s = now
            t = -1.0 if self.plan_start_s is None else now - self.plan_start_s
            dz, vz = self.plan.reference(t)
            ref_pos = self.start_position + np.array([0.0, 0.0, dz])
            context = Context(ref_pos, np.array([0.0, 0.0, vz]), self.last_action)
            obs = self.builder.build(state, context)
            t0 = time.perf_counter()
            action = np.asarray(self.policy(obs), dtype=np.float32)
            inference = time.perf_counter() - t0
            self.last_action = np.clip(self.policy.action_spec.to_normalized(action), -1.0, 1.0).astype(np.float32)
            if self.safety.state is SafetyState.ACTIVE:
                self.errors.append((t, float(np.linalg.norm(state.position - ref_pos))))
            if self.recorder is not None:
                stamp = round(now * 1e9)
                for msg in self._state_msgs:
                    self.recorder.write_state(msg, stamp)
                self.recorder.write_observation(obs.tolist(), stamp)
                self.recorder.write_action(self.last_action.tolist(), stamp)
        command = self.safety.filter(action, now, inference)
        stamp_ns = round(now * 1e9)
        msg = MotorCommand(make_header(stamp_ns), [float(v) for v in command.values])
        self.command_pub.publish(msg)
        if self.recorder is not None:
            self.recorder.write_command(msg, stamp_ns)
            self._logged_transitions = self.recorder.write_safety_transitions(
                self.safety.transitions, self._logged_transitions
            )
        return inference

    def fly(self, timeout_s: float = 5.0) -> LoopStats:
        """Wait for a healthy state stream, arm, fly the plan at the policy rate, disarm. Raises if it cannot arm."""
        loop = FixedRateLoop(self.policy.control_hz, realtime_priority=self.realtime_priority)
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            self.cycle(now)
            if self.read_state() is not None and self.safety.arm(now):
                break
            if now > deadline:
                raise RuntimeError(f"could not arm within {timeout_s} s: {self.safety.last_verdicts}")
            time.sleep(1.0 / self.policy.control_hz)
        end = math.inf

        def step(now: float):
            nonlocal end
            inference = self.cycle(now)
            if self.plan_start_s is not None and now - self.plan_start_s > self.plan.duration_s and end == math.inf:
                self.safety.disarm(now, "flight plan complete")
                end = now + 0.2
            if now > end or self.safety.state is SafetyState.ESTOP:
                return False
            if self.safety.state is SafetyState.DISARMED and end == math.inf:  # a fallback landed and disarmed
                end = now + 0.2
            return inference

        return loop.run(step, duration_s=self.plan.duration_s + 10.0)
