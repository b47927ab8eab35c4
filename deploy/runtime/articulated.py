"""The articulated robots' part of the deploy runtime (legged, arm; the contract: deploy/runtime/core.py).
Torch-free.

State: ``joint_states`` (sensor_msgs/JointState, any joint order) and, for a legged robot, the base ``imu`` (and
the base ``twist`` where the policy observes a base velocity estimate), for an arm the end-effector ``pose``.
Command: ``joint_command`` (sim2real_msgs/JointCommand: targets, gains, mode, vehicle id; joints by name).
Wire format: :mod:`deploy.articulated_wire`. The policy is anything with ``obs_spec``, ``action_spec``,
``control_hz`` and ``__call__(obs (D,)) -> (A,)`` joint position targets in rad (the exported ONNX policy is one:
its output is ``clip(default pose + action_scale * clip(a, -1, 1), joint limits)``, the simulator's
``ArticulatedEnv.joint_targets`` with the nominal default pose); a policy with ``run(obs) -> (targets, action)``
also hands over its normalized action, which becomes the next ``last_action`` as in the simulator.

Plans (:mod:`deploy.articulated_plan`; what the operator would do with a joystick):

    legged  stand: joint targets move from the measured pose to the default pose (no policy), then the policy
            holds with a zero velocity command, walks with ``velocity_command`` for ``walk_s``, stops (zero
            command); the run disarms once the robot stands still.
    arm     move: joint targets move from the measured pose to the default pose (no policy), then the policy
            reaches each end-effector target for its ``hold_s``; the run disarms once the arm is at rest.

With a streamed reference (profile ``reference: {source: topic}``, deploy/runtime/reference_articulated.py)
the scripted start runs as above, then the policy follows the stream (a legged robot's ``cmd_vel``, phase
``cmd_vel``; an arm's ``reference/target``, phase ``target``) until the reference's ``duration_s``, then the
command ramps to zero (``stop``) or the target holds (``hold``) and the run disarms at rest. A lost stream is a
fault (``Act.fault``): FALLBACK.

The scripted phases' targets go through the safety layer like the policy's. FALLBACK (damping for a legged
robot, hold for an arm) goes on for ``fallback_hold_s`` before the runtime disarms.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from deploy.articulated_plan import ArmPlan, ArmTarget, LeggedPlan, PlanStep, StreamedArticulatedPlan
from deploy.articulated_wire import JointOrder, JointStateError, joint_command_msg, quat_wxyz
from deploy.msgs import Imu, JointState, PoseStamped, Twist, TwistStamped, time_to_ns
from deploy.observation import JointContext, JointObservationBuilder, base_velocity
from deploy.runtime.clock import InputClocks
from deploy.runtime.contract import Act, Policy, Reading
from deploy.runtime.reference_articulated import ArmReference, CmdVelReference, LeggedReference, TargetReference
from deploy.safety import SafeCommand, StateSample
from deploy.state_wire import TwistFrameError, is_world_frame, world_velocity
from deploy.transport import Ros2Node, TransportConfig
from drivers.robot import RobotState

log = logging.getLogger("sim2real.runtime")

__all__ = ["ArmPlan", "ArmTarget", "ArticulatedAdapter", "LeggedPlan", "PlanStep", "joint_reading"]

#: at rest: every joint slower than this (rad/s) and, legged, the base turning slower than REST_GYRO_RAD_S
REST_JOINT_SPEED_RAD_S = 0.2
REST_GYRO_RAD_S = 0.2


def joint_reading(
    order: JointOrder,
    joints: JointState,
    other: Imu | PoseStamped,
    twist: TwistStamped | None = None,
    stamp_s: float | None = None,
    part_stamps_s: tuple[float, float] | None = None,
) -> Reading:
    """The state of an articulated robot from its messages: the JointState (any joint order) and, for a legged
    robot, the base IMU (orientation, gyro) and optionally the base twist, for an arm the end-effector pose.
    Stamped ``stamp_s`` (the runtime's clock), by default the older of the two main messages' header stamps; the
    safety sample also carries each message's own stamp (``part_stamps_s``: joints, IMU; by default the headers'),
    so that the consistency gate predicts the joints over the JointState's own time step.
    Raises :class:`JointStateError` for missing joints, :class:`TwistFrameError` for a twist not in the base frame."""
    q, qd, tau = order.state(joints)
    if part_stamps_s is None:
        headers = (time_to_ns(joints.header.stamp) * 1e-9, time_to_ns(other.header.stamp) * 1e-9)
        part_stamps_s = headers if stamp_s is None else (stamp_s, stamp_s)
    stamp_s = min(part_stamps_s) if stamp_s is None else stamp_s
    joints_s, other_s = part_stamps_s
    if isinstance(other, Imu):
        gyro = other.angular_velocity
        state = RobotState(
            stamp_s,
            quaternion=quat_wxyz(other.orientation),
            angular_velocity=np.array([gyro.x, gyro.y, gyro.z]),
            joint_position=q,
            joint_velocity=qd,
        )
        messages: tuple = (joints, other)
        if twist is not None:  # base frame on the wire; world frame in the state, rotated with the IMU attitude
            state = replace(state, linear_velocity=world_velocity(state.quaternion, twist)[0])
            messages = (joints, other, twist)
        sample = StateSample(
            stamp_s,
            quat_wxyz=state.quaternion,
            body_rates_rad_s=state.angular_velocity,
            joint_pos_rad=q,
            joint_vel_rad_s=qd,
            joint_torque_nm=tau,
            joint_stamp_s=joints_s,
            attitude_stamp_s=other_s,
        )
        return Reading(state, sample, messages, tau)
    p = other.pose.position
    state = RobotState(
        stamp_s,
        position=np.array([p.x, p.y, p.z]),
        quaternion=quat_wxyz(other.pose.orientation),
        joint_position=q,
        joint_velocity=qd,
    )
    sample = StateSample(stamp_s, joint_pos_rad=q, joint_vel_rad_s=qd, joint_torque_nm=tau, joint_stamp_s=joints_s)
    return Reading(state, sample, (joints, other), tau)


class ArticulatedAdapter:
    """A legged robot or an arm. ``default_pose``: (J,) rad the policy's joint positions are measured from (the
    robot profile's); ``robot_class``: ``legged`` | ``arm``; ``joint_names``: the safety profile's joints;
    ``reference``: a streamed command instead of the plan's (None: the plan's); ``base_frame``: the robot
    profile's base body, a frame_id an arm's targets may carry."""

    command_key = "joint_command"

    def __init__(
        self,
        policy: Policy,
        node: Ros2Node,
        transport: TransportConfig,
        joint_names: tuple[str, ...],
        default_pose: np.ndarray,
        robot_class: str,
        plan: LeggedPlan | ArmPlan | None = None,
        fallback_hold_s: float = 2.0,
        reference: LeggedReference | ArmReference | None = None,
        base_frame: str = "",
    ):
        if robot_class not in ("legged", "arm"):
            raise ValueError(f"robot_class: expected 'legged' or 'arm', got {robot_class!r}")
        self.names = tuple(joint_names)
        if tuple(policy.action_spec.names) != self.names:
            raise ValueError(
                f"the policy commands joints {list(policy.action_spec.names)}, the robot has {list(self.names)}: "
                "the policy was trained for another robot (or another joint order)"
            )
        self.policy, self.robot_class, self.legged = policy, robot_class, robot_class == "legged"
        self.plan = plan or (LeggedPlan() if self.legged else ArmPlan())
        self.default_pose = np.asarray(default_pose, dtype=float)
        self.fallback_hold_s = fallback_hold_s
        self.builder = JointObservationBuilder(policy.obs_spec, len(self.names))
        self.needs_twist = "base_lin_vel_estimate" in policy.obs_spec.names  # the state estimator's base velocity
        if self.needs_twist and not self.legged:
            raise ValueError("the policy observes a base velocity estimate: it needs a legged robot's state/twist")
        self.order = JointOrder(self.names)
        topic = transport.topic
        self.joints_sub = node.subscription(topic("joint_states").name, JointState, topic("joint_states").qos)
        self.inputs = {"joint_states": self.joints_sub}
        if self.legged:
            self.imu_sub = node.subscription(topic("imu").name, Imu, topic("imu").qos)
            self.twist_sub = node.subscription(topic("twist").name, TwistStamped, topic("twist").qos)
            self.inputs.update(imu=self.imu_sub, twist=self.twist_sub)
        else:
            self.pose_sub = node.subscription(topic("pose").name, PoseStamped, topic("pose").qos)
            self.inputs["pose"] = self.pose_sub
        self.reference, self.base_frame = reference, base_frame
        self.stream: CmdVelReference | TargetReference | None = None
        if reference is not None:
            self._stream_input(node, transport, reference)
        self.last_action = np.zeros(len(self.names), dtype=np.float32)
        self.start_pose: np.ndarray | None = None
        self._bad_state = ""  # the last malformed joint state's error, logged once
        self.tracking: list[tuple[float, str, float]] = []  # (plan time s, phase, error) per active policy cycle
        self.joint_errors: list[float] = []  # |target - measured| RMS over joints (rad), per active cycle
        self.estimate_errors: list[float] = []  # legged: |estimated - published| planar base velocity (m/s)
        self.clocks = InputClocks(self.inputs)

    def _stream_input(self, node: Ros2Node, transport: TransportConfig, reference) -> None:
        """The streamed reference's subscription and plan (the built-in plan's scripted start, then the stream)."""
        expected = LeggedReference if self.legged else ArmReference
        if not isinstance(reference, expected):
            raise ValueError(f"a {self.robot_class} robot takes a {expected.__name__}, got {type(reference).__name__}")
        key, msg_type, phases = (
            ("cmd_vel", Twist, ("cmd_vel", "stop")) if self.legged else ("target", PoseStamped, ("target", "hold"))
        )
        topic = transport.topic(key)
        self.reference_sub = node.subscription(topic.name, msg_type, topic.qos)  # not a state input: not pinned
        self.plan = StreamedArticulatedPlan(self.plan, reference.duration_s, *phases)

    # ------------------------------------------------------------------ state
    def read(self, strict: bool = False) -> Reading | None:
        """The newest state, or None until every needed stream has delivered. A JointState that lacks profile
        joints raises :class:`JointStateError` when ``strict``, else is logged (once) and ignored."""
        joints, joints_t = self.clocks.latest("joint_states", self.joints_sub)
        other, other_t = self.clocks.latest(*(("imu", self.imu_sub) if self.legged else ("pose", self.pose_sub)))
        twist = self.twist_sub.latest() if self.legged else None
        if twist is not None and not self.needs_twist and is_world_frame(twist.header.frame_id):
            twist = None  # an old-convention twist the policy does not need: left out rather than refused
        if joints is None or other is None or (self.needs_twist and twist is None):
            return None
        if joints_t is None or other_t is None:  # a stamp the clock could not reconcile (logged): no new state
            return None
        try:
            return joint_reading(self.order, joints, other, twist, min(joints_t, other_t), (joints_t, other_t))
        except (JointStateError, TwistFrameError) as exc:
            if strict:
                raise
            if str(exc) != self._bad_state:  # once per kind of bad message, not at the control rate
                log.error("state ignored (the state goes stale): %s", exc)
                self._bad_state = str(exc)
            return None

    def arm_refusal(self, reading: Reading | None) -> str:
        """A malformed joint state refuses arming with its reason ('' if the state is usable)."""
        try:
            self.read(strict=True)
        except (JointStateError, TwistFrameError) as exc:
            return str(exc)
        return ""

    # ------------------------------------------------------------------ the cycle
    def idle(self) -> None:
        self.last_action[:] = 0.0  # the simulator's episode start
        self.builder.reset()
        self.start_pose = None
        self.stream = None

    def _infer(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(A,) joint targets rad, (A,) normalized action, inference time s."""
        t0 = time.perf_counter()
        if hasattr(self.policy, "run"):
            targets, action = self.policy.run(obs)
        else:
            targets, action = self.policy(obs), None
        inference = time.perf_counter() - t0
        targets = np.asarray(targets, dtype=float)
        if action is None:
            action = self.policy.action_spec.to_normalized(targets)
        return targets, np.asarray(action, dtype=np.float32), inference

    def act(self, reading: Reading, now: float, t: float | None, active: bool) -> Act:
        q = reading.state.joint_position
        if t is None:
            return Act(q.copy(), phase="arming")  # the layer holds the measured pose while arming
        if self.start_pose is None:
            self.start_pose = q.copy()
        step, fault = self.plan.at(t), ""
        if self.reference is not None and step.blend is None:
            step, fault = self._streamed(now, step, reading)
        if step.blend is not None:
            self.builder.reset()  # the policy's observation history starts when the policy does
            action = self.start_pose + step.blend * (self.default_pose - self.start_pose)
            normalized = self.policy.action_spec.to_normalized(action)
            self.last_action = np.clip(normalized, -1.0, 1.0).astype(np.float32)
            self.joint_errors.append(float(np.sqrt(np.mean((action - q) ** 2))))
            return Act(action, phase=step.phase)
        context = JointContext(
            self.default_pose, self.last_action, step.velocity_command, step.target_position, step.target_quat
        )
        obs = self.builder.build(reading.state, context)
        action, normalized, inference = self._infer(obs)
        self.last_action = np.clip(normalized, -1.0, 1.0).astype(np.float32)
        if active:
            self._track(t, step, reading)
        self.joint_errors.append(float(np.sqrt(np.mean((action - q) ** 2))))
        return Act(action, obs, self.last_action.copy(), inference, step.phase, fault)

    def _streamed(self, now: float, step: PlanStep, reading: Reading) -> tuple[PlanStep, str]:
        """``step`` with the streamed command filled in, and a fault ('' if none). The stream is read from the
        end of the scripted start on; an arm's target starts at the end-effector pose measured then."""
        if self.stream is None:
            if self.legged:
                self.stream = CmdVelReference(self.reference, self.reference_sub)
            else:
                frames = self.reference.frames(self.base_frame)
                s = reading.state
                self.stream = TargetReference(self.reference, self.reference_sub, frames, s.position, s.quaternion)
        fault = self.stream.update(now, stop=step.phase == self.plan.end)
        if isinstance(self.stream, CmdVelReference):
            return replace(step, velocity_command=self.stream.command.copy()), fault
        return replace(step, target_position=self.stream.position.copy(), target_quat=self.stream.quat.copy()), fault

    def _track(self, t: float, step: PlanStep, reading: Reading) -> None:
        """Task tracking error of an active policy cycle: legged, |commanded - measured| planar base velocity
        (m/s, base frame; where the base twist is published); arm, end-effector distance to the target (m)."""
        s = reading.state
        if self.legged:
            if s.linear_velocity.size != 3:  # no base twist published
                return
            v = base_velocity(s)  # world -> base frame, with the IMU orientation
            error = float(np.linalg.norm(step.velocity_command[:2] - v[:2]))
            estimate = getattr(self.policy, "last_estimate", None)  # the policy's own estimator (policies.estimator)
            if estimate is not None and (self.policy.estimator or {}).get("target") == "base_lin_vel":
                self.estimate_errors.append(float(np.linalg.norm(estimate[:2] - v[:2])))
        else:
            error = float(np.linalg.norm(step.target_position - s.position))
        self.tracking.append((t, step.phase, error))

    def command_message(self, command: SafeCommand, stamp_ns: int, vehicle_id: str):
        zeros = np.zeros(len(self.names))
        kp = zeros if command.kp_nm_per_rad is None else command.kp_nm_per_rad
        kd = zeros if command.kd_nm_s_per_rad is None else command.kd_nm_s_per_rad
        msg = joint_command_msg(self.names, command.values, kp, kd, command.mode.value, stamp_ns)
        msg.vehicle_id = vehicle_id
        return msg

    def at_rest(self, reading: Reading | None, command: SafeCommand) -> bool:
        """Every joint slower than REST_JOINT_SPEED_RAD_S and (legged) the base turning slower than
        REST_GYRO_RAD_S: standing still, lying, or an arm holding its pose."""
        if reading is None:
            return False
        s = reading.state
        still = s.joint_velocity.size > 0 and float(np.max(np.abs(s.joint_velocity))) < REST_JOINT_SPEED_RAD_S
        if self.legged and s.angular_velocity.size == 3:
            still = still and float(np.linalg.norm(s.angular_velocity)) < REST_GYRO_RAD_S
        return bool(still)

    def summary(self) -> dict:
        """Tracking numbers of the run: legged, velocity error while walking or following cmd_vel (m/s); arm,
        end-effector error at the end of each target (m); both, joint target tracking RMS (rad)."""
        out: dict = {}
        if self.joint_errors:
            out["joint_tracking_rms_rad"] = float(np.sqrt(np.mean(np.square(self.joint_errors))))
        if self.estimate_errors:  # the policy's velocity estimate against the published twist (SIL: the truth)
            out["velocity_estimate_error_m_s"] = float(np.mean(self.estimate_errors))
        if self.legged:
            if self.reference is not None:  # the command is slewed: no time to speed up to leave out
                streamed = [e for _t, p, e in self.tracking if p == "cmd_vel"]
                out["cmd_vel_velocity_error_m_s"] = float(np.mean(streamed)) if streamed else None
            else:
                walk = [e for t, p, e in self.tracking if p == "walk" and self.plan.settled(t)]  # 1 s to speed up
                out["walk_velocity_error_m_s"] = float(np.mean(walk)) if walk else None
        else:
            last: dict[str, float] = {}
            for _t, p, e in self.tracking:
                last[p] = e
            out["final_ee_error_m"] = last
            out["mean_final_ee_error_m"] = float(np.mean(list(last.values()))) if last else None
        return out
