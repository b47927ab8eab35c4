"""The deploy runtime of articulated robots (legged, arm): one control cycle = newest joint state (+ IMU or
end-effector pose) -> observation -> policy -> safety layer -> joint command on the wire -> log. Torch-free.

Wire format: :mod:`deploy.articulated_wire`. The policy is anything with ``obs_spec``, ``action_spec``,
``control_hz`` and ``__call__(obs (D,)) -> (A,)`` joint position targets in rad (the exported ONNX policy is one:
its output is ``clip(default pose + action_scale * clip(a, -1, 1), joint limits)``, the simulator's
``ArticulatedEnv.joint_targets`` with the nominal default pose); a policy with ``run(obs) -> (targets, action)``
also hands over its normalized action, which becomes the next ``last_action`` as in the simulator.

Plans (:mod:`deploy.articulated_plan`; what the operator would do with a joystick):

    legged  stand: joint targets move from the measured pose to the default pose (no policy), then the policy
            holds with a zero velocity command, walks with ``velocity_command`` for ``walk_s``, stops (zero
            command), then disarms.
    arm     move: joint targets move from the measured pose to the default pose (no policy), then the policy
            reaches each end-effector target for its ``hold_s``, then disarms.

The scripted phases' targets go through the safety layer like the policy's.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from deploy.articulated_plan import ArmPlan, ArmTarget, LeggedPlan, PlanStep
from deploy.articulated_wire import JointOrder, JointStateError, joint_command_msg, quat_wxyz
from deploy.loop import FixedRateLoop, LoopStats
from deploy.msgs import Imu, JointState, PoseStamped, TwistStamped, time_to_ns
from deploy.observation import JointContext, JointObservationBuilder, base_velocity
from deploy.recording import FlightRecorder
from deploy.runtime import Policy
from deploy.safety import SafetyLayer, SafetyState, StateSample
from deploy.transport import Ros2Node, TransportConfig
from drivers.robot import RobotState

log = logging.getLogger("sim2real.runtime")

__all__ = ["ArmPlan", "ArmTarget", "ArticulatedRuntime", "JointReading", "LeggedPlan", "PlanStep", "joint_reading"]


@dataclass
class JointReading:
    """One measured state of an articulated robot, with the messages it came from (recorded with the cycle)."""

    state: RobotState
    torque_nm: np.ndarray | None
    messages: tuple


def joint_reading(
    order: JointOrder, joints: JointState, other: Imu | PoseStamped, twist: TwistStamped | None = None
) -> JointReading:
    """The state of an articulated robot from its messages: the JointState (any joint order) and, for a legged
    robot, the base IMU (orientation, gyro) and optionally the base twist, for an arm the end-effector pose.
    Stamped with the older of the two main messages. Raises :class:`JointStateError` for missing joints."""
    q, qd, tau = order.state(joints)
    stamp_s = min(time_to_ns(joints.header.stamp), time_to_ns(other.header.stamp)) * 1e-9
    if isinstance(other, Imu):
        gyro = other.angular_velocity
        state = RobotState(
            stamp_s,
            quaternion=quat_wxyz(other.orientation),
            angular_velocity=np.array([gyro.x, gyro.y, gyro.z]),
            joint_position=q,
            joint_velocity=qd,
        )
        if twist is None:
            return JointReading(state, tau, (joints, other))
        v = twist.twist.linear  # world frame; in the state as linear_velocity
        return JointReading(replace(state, linear_velocity=np.array([v.x, v.y, v.z])), tau, (joints, other, twist))
    p = other.pose.position
    state = RobotState(
        stamp_s,
        position=np.array([p.x, p.y, p.z]),
        quaternion=quat_wxyz(other.pose.orientation),
        joint_position=q,
        joint_velocity=qd,
    )
    return JointReading(state, tau, (joints, other))


class ArticulatedRuntime:
    """Wires a policy to an articulated robot over ROS 2 topics behind the safety layer; call :meth:`cycle` at
    the policy rate. ``default_pose``: (J,) rad the policy's joint positions are measured from (the robot
    profile's), ``robot_class``: ``legged`` | ``arm``."""

    def __init__(
        self,
        policy: Policy,
        node: Ros2Node,
        transport: TransportConfig,
        safety: SafetyLayer,
        default_pose: np.ndarray,
        robot_class: str,
        recorder: FlightRecorder | None = None,
        plan: LeggedPlan | ArmPlan | None = None,
        realtime_priority: int | None = None,
        fallback_hold_s: float = 2.0,
    ):
        if robot_class not in ("legged", "arm"):
            raise ValueError(f"robot_class: expected 'legged' or 'arm', got {robot_class!r}")
        joints = safety.profile.joints
        if joints is None:
            raise ValueError("the safety profile has no joints section: it is not an articulated robot's")
        self.names = tuple(joints.names)
        if tuple(policy.action_spec.names) != self.names:
            raise ValueError(
                f"the policy commands joints {list(policy.action_spec.names)}, the robot has {list(self.names)}: "
                "the policy was trained for another robot (or another joint order)"
            )
        self.policy, self.safety, self.recorder = policy, safety, recorder
        self.robot_class, self.legged = robot_class, robot_class == "legged"
        self.plan = plan or (LeggedPlan() if self.legged else ArmPlan())
        self.default_pose = np.asarray(default_pose, dtype=float)
        self.realtime_priority, self.fallback_hold_s = realtime_priority, fallback_hold_s
        self.builder = JointObservationBuilder(policy.obs_spec, len(self.names))
        self.needs_twist = "base_lin_vel_estimate" in policy.obs_spec.names  # the state estimator's base velocity
        if self.needs_twist and robot_class != "legged":
            raise ValueError("the policy observes a base velocity estimate: it needs a legged robot's state/twist")
        self.order = JointOrder(self.names)
        topic = transport.topic
        self.joints_sub = node.subscription(topic("joint_states").name, JointState, topic("joint_states").qos)
        if self.legged:
            self.imu_sub = node.subscription(topic("imu").name, Imu, topic("imu").qos)
            self.twist_sub = node.subscription(topic("twist").name, TwistStamped, topic("twist").qos)
        else:
            self.pose_sub = node.subscription(topic("pose").name, PoseStamped, topic("pose").qos)
        cmd = topic("joint_command")
        self.command_pub = node.publisher(cmd.name, cmd.msg_type, cmd.qos)
        self.last_action = np.zeros(len(self.names), dtype=np.float32)
        self.start_pose: np.ndarray | None = None
        self.plan_start_s: float | None = None
        self.phase = "disarmed"
        self._logged_transitions = 0
        self._bad_state = ""  # the last malformed joint state's error, logged once
        self._recorded: dict[type, object] = {}  # the last state message written to the log, per type
        self.tracking: list[tuple[float, str, float]] = []  # (plan time s, phase, error) per active policy cycle
        self.joint_errors: list[float] = []  # |target - measured| RMS over joints (rad), per active cycle

    # ------------------------------------------------------------------ state
    def read_state(self, strict: bool = True) -> JointReading | None:
        """The newest state, or None until every needed stream has delivered. A JointState that lacks profile
        joints raises :class:`JointStateError` when ``strict`` (before arming), else is logged and ignored."""
        joints = self.joints_sub.latest()
        other = self.imu_sub.latest() if self.legged else self.pose_sub.latest()
        twist = self.twist_sub.latest() if self.legged else None
        if joints is None or other is None or (self.needs_twist and twist is None):
            return None
        try:
            return joint_reading(self.order, joints, other, twist)
        except JointStateError as exc:
            if strict:
                raise
            if str(exc) != self._bad_state:  # once per kind of bad message, not at the control rate
                log.error("joint state ignored (the state goes stale): %s", exc)
                self._bad_state = str(exc)
            return None

    def _sample(self, r: JointReading) -> StateSample:
        s = r.state
        legged = self.legged
        return StateSample(
            s.stamp_s,
            quat_wxyz=s.quaternion if legged else None,
            body_rates_rad_s=s.angular_velocity if legged else None,
            joint_pos_rad=s.joint_position,
            joint_vel_rad_s=s.joint_velocity,
            joint_torque_nm=r.torque_nm,
        )

    # ------------------------------------------------------------------ the cycle
    def _infer(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(A,) joint targets rad, (A,) normalized action, inference time s."""
        t0 = time.perf_counter()
        if hasattr(self.policy, "run"):
            targets, action = self.policy.run(obs)
        else:
            targets = self.policy(obs)
            action = None
        inference = time.perf_counter() - t0
        targets = np.asarray(targets, dtype=float)
        if action is None:
            action = self.policy.action_spec.to_normalized(targets)
        return targets, np.asarray(action, dtype=np.float32), inference

    def cycle(self, now: float) -> float | None:
        """One control period. Returns the inference time (s) when the policy ran."""
        reading = self.read_state(strict=False)
        if reading is not None:
            self.safety.on_state(self._sample(reading), now)
        self.safety.heartbeat(now)  # the operator is this process (software-in-the-loop / scripted run)
        action, inference = None, None
        running = self.safety.state in (SafetyState.ARMING, SafetyState.ACTIVE)
        if not running:
            self.last_action[:] = 0.0  # the simulator's episode start
        stamp = round(now * 1e9)
        if reading is not None and running:
            q = reading.state.joint_position
            if self.safety.state is SafetyState.ARMING:
                action, self.phase = q.copy(), "arming"  # the layer holds the measured pose while arming
            else:
                if self.plan_start_s is None:
                    self.plan_start_s, self.start_pose = now, q.copy()
                t = now - self.plan_start_s
                step = self.plan.at(t)
                self.phase = step.phase
                if step.blend is not None:
                    action = self.start_pose + step.blend * (self.default_pose - self.start_pose)
                    normalized = self.policy.action_spec.to_normalized(action)
                    self.last_action = np.clip(normalized, -1.0, 1.0).astype(np.float32)
                else:
                    context = JointContext(
                        self.default_pose,
                        self.last_action,
                        step.velocity_command,
                        step.target_position,
                        step.target_quat,
                    )
                    obs = self.builder.build(reading.state, context)
                    action, normalized, inference = self._infer(obs)
                    self.last_action = np.clip(normalized, -1.0, 1.0).astype(np.float32)
                    self._track(t, step, reading)
                    if self.recorder is not None:
                        self.recorder.write_observation(obs.tolist(), stamp)
                        self.recorder.write_action(self.last_action.tolist(), stamp)
                self.joint_errors.append(float(np.sqrt(np.mean((action - q) ** 2))))
        if reading is not None and self.recorder is not None:
            for msg in reading.messages:  # each state message once, in every safety state (fallbacks included)
                if msg is not self._recorded.get(type(msg)):
                    self.recorder.write_state(msg, stamp)
                    self._recorded[type(msg)] = msg
        command = self.safety.filter(action, now, inference)
        zeros = np.zeros(len(self.names))
        kp = zeros if command.kp_nm_per_rad is None else command.kp_nm_per_rad
        kd = zeros if command.kd_nm_s_per_rad is None else command.kd_nm_s_per_rad
        msg = joint_command_msg(self.names, command.values, kp, kd, command.mode.value, stamp)
        self.command_pub.publish(msg)
        if self.recorder is not None:
            self.recorder.write_command(msg, stamp)
            self._logged_transitions = self.recorder.write_safety_transitions(
                self.safety.transitions, self._logged_transitions
            )
        return inference

    def _track(self, t: float, step: PlanStep, reading: JointReading) -> None:
        """Task tracking error of an active policy cycle: legged, |commanded - measured| planar base velocity
        (m/s, base frame; where the base twist is published); arm, end-effector distance to the target (m)."""
        if self.safety.state is not SafetyState.ACTIVE:
            return
        s = reading.state
        if self.legged:
            if s.linear_velocity.size != 3:  # no base twist published
                return
            v = base_velocity(s)  # world -> base frame, with the IMU orientation
            error = float(np.linalg.norm(step.velocity_command[:2] - v[:2]))
        else:
            error = float(np.linalg.norm(step.target_position - s.position))
        self.tracking.append((t, step.phase, error))

    # ------------------------------------------------------------------ a run
    def _arm_step(self, now: float, deadline: float) -> bool:
        """One cycle of waiting to arm: True once armed. Raises :class:`JointStateError` for a joint state
        without the profile's joints, RuntimeError past ``deadline``."""
        reading = self.read_state(strict=True)
        self.cycle(now)
        if reading is not None and self.safety.arm(now):
            return True
        if now > deadline:
            why = "no state from the robot" if reading is None else self.safety.last_verdicts
            raise RuntimeError(f"could not arm: {why}")
        return False

    def wait_and_arm(self, timeout_s: float = 5.0) -> None:
        """Cycle until the state streams are healthy and the layer arms (see :meth:`_arm_step`)."""
        deadline = time.monotonic() + timeout_s
        while not self._arm_step(time.monotonic(), deadline):
            time.sleep(1.0 / self.policy.control_hz)

    def run(self, timeout_s: float = 5.0) -> LoopStats:
        """Arm (within ``timeout_s``), run the plan at the policy rate, disarm; all in the fixed-rate loop. After a
        fallback the fallback command (damping for a legged robot, hold for an arm) goes on for
        ``fallback_hold_s`` before the disarm."""
        loop = FixedRateLoop(self.policy.control_hz, realtime_priority=self.realtime_priority)
        end, armed, arm_deadline = math.inf, False, None

        def step(now: float):
            nonlocal end, armed, arm_deadline
            if not armed:
                arm_deadline = now + timeout_s if arm_deadline is None else arm_deadline
                armed = self._arm_step(now, arm_deadline)
                return None
            inference = self.cycle(now)
            state = self.safety.state
            if end == math.inf:
                if self.plan_start_s is not None and now - self.plan_start_s > self.plan.duration_s:
                    self.safety.disarm(now, "plan complete")
                    end = now + 0.2
                elif state is SafetyState.FALLBACK:
                    end = now + self.fallback_hold_s
                elif state in (SafetyState.DISARMED, SafetyState.ESTOP):
                    end = now + 0.2
            elif now > end:
                if state is SafetyState.FALLBACK:
                    self.safety.disarm(now, f"fallback held {self.fallback_hold_s} s")
                    self.cycle(now)
                return False
            return inference

        return loop.run(step, duration_s=timeout_s + self.plan.duration_s + self.fallback_hold_s + 10.0)

    def summary(self) -> dict:
        """Tracking numbers of the run: legged, velocity error while walking (m/s); arm, end-effector error at
        the end of each target (m); both, joint target tracking RMS (rad)."""
        out: dict = {"phase": self.phase}
        if self.joint_errors:
            out["joint_tracking_rms_rad"] = float(np.sqrt(np.mean(np.square(self.joint_errors))))
        if self.legged:
            walk = [e for t, p, e in self.tracking if p == "walk" and self.plan.walking(t - 1.0)]  # 1 s to speed up
            out["walk_velocity_error_m_s"] = float(np.mean(walk)) if walk else None
        else:
            last: dict[str, float] = {}
            for _t, p, e in self.tracking:
                last[p] = e
            out["final_ee_error_m"] = last
            out["mean_final_ee_error_m"] = float(np.mean(list(last.values()))) if last else None
        return out
