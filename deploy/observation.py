"""The runtime's observation builder: robot state -> the exact vector the policy saw in simulation.

The layout (order, sizes, scales) is the exported model's observation spec, applied by
:meth:`sim.obs_spec.ObsSpec.assemble`: there is no second copy of it here. This module only knows how to
compute each named term from a measured state; a term it cannot compute is refused before arming.
Torch-free: it runs on the robot computer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsSpecError, split_history
from sim.obs_terms import integrate_position_error


def rotation_matrix(q: np.ndarray) -> np.ndarray:
    """(4,) quaternion w, x, y, z -> (9,) rotation matrix body -> world, row-major (as the simulator)."""
    w, x, y, z = q
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    return np.array(
        [1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
         2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
         2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)]
    )  # fmt: skip


class Context:
    """What a term may use besides the state: the reference and the runtime's own last action."""

    def __init__(self, reference_position: np.ndarray, reference_velocity: np.ndarray, last_action: np.ndarray):
        self.reference_position = reference_position
        self.reference_velocity = reference_velocity
        self.last_action = last_action


TERMS: dict[str, Callable[[RobotState, Context], np.ndarray]] = {
    "position_error": lambda s, c: s.position - c.reference_position,
    "rotation_matrix": lambda s, c: rotation_matrix(s.quaternion),
    "linear_velocity": lambda s, c: s.linear_velocity,
    "angular_velocity": lambda s, c: s.angular_velocity,
    "reference_velocity": lambda s, c: c.reference_velocity,
    "last_action": lambda s, c: c.last_action,
}


# Computed from the history of builds (sim.obs_terms). The observation_history term is not a base term: build()
# appends it (sim.obs_spec.split_history).
STATEFUL_TERMS = ("position_error_integral",)


class ObservationBuilder:
    """Builds policy observations for ``spec``; refuses, at construction, specs with terms it cannot build.

    Stateful terms (``position_error_integral``, ``observation_history``) advance once per :meth:`build`, so call
    it once per control period of ``control_dt`` seconds (the policy's control rate), and :meth:`reset` it when a
    flight starts.
    """

    def __init__(self, spec: ObsSpec, control_dt: float | None = None):
        self.base_spec, self.history_steps = split_history(spec)
        self.history: list[np.ndarray] = []  # previous base observations, newest first
        stateful = [name for name in self.base_spec.names if name in STATEFUL_TERMS]
        if stateful and not (control_dt is not None and control_dt > 0):
            raise ValueError(f"the observation terms {stateful} integrate over time: pass control_dt (s) > 0")
        self.control_dt = control_dt
        self.integral = np.zeros(3)
        unknown = [name for name in self.base_spec.names if name not in TERMS and name not in STATEFUL_TERMS]
        if unknown:
            raise ObsSpecError(
                f"the policy's observation needs terms {unknown} that the runtime cannot build from a robot state; "
                f"it can build {sorted(TERMS)}. Export the policy from a task whose observations the robot measures."
            )
        self.spec = spec

    def reset(self) -> None:
        """Start a new flight: stateful terms back to zero (the simulator's episode start)."""
        self.integral = np.zeros(3)
        self.history = []

    def build(self, state: RobotState, context: Context) -> np.ndarray:
        """(D,) float32 observation."""
        base = self._build_base(state, context)
        if not self.history_steps:
            return base
        previous = self.history or [base] * self.history_steps  # a flight starts with copies of its first one
        self.history = [base, *previous[:-1]]
        return np.concatenate([base, *previous])

    def _build_base(self, state: RobotState, context: Context) -> np.ndarray:
        names = self.base_spec.names
        values = {name: np.asarray(TERMS[name](state, context), dtype=np.float64) for name in names if name in TERMS}
        if "position_error_integral" in names:
            error = np.asarray(TERMS["position_error"](state, context), dtype=np.float64)
            # float32 like the simulator, so the two integrals round alike
            self.integral = integrate_position_error(
                self.integral.astype(np.float32), error.astype(np.float32), np.float32(self.control_dt)
            ).astype(np.float64)
            values["position_error_integral"] = self.integral
        return self.base_spec.assemble(values).astype(np.float32)


# ----------------------------------------------------------------------------------------------- articulated robots
def projected_gravity(q: np.ndarray) -> np.ndarray:
    """(4,) base orientation w, x, y, z (body -> world) -> (3,) unit gravity direction in the body frame
    ((0, 0, -1) when level): minus the last row of the rotation matrix, as sim.articulated.terms computes it."""
    return -rotation_matrix(np.asarray(q, dtype=float) / np.linalg.norm(q))[6:9]


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (4,) w-first quaternions (rotation b, then a)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [aw * bw - ax * bx - ay * by - az * bz,
         aw * bx + ax * bw + ay * bz - az * by,
         aw * by - ax * bz + ay * bw + az * bx,
         aw * bz + ax * by - ay * bx + az * bw]
    )  # fmt: skip


def rotation_error_vector(q: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3,) rotation vector (axis * angle, rad, world frame) turning orientation ``q`` into ``target`` (both
    (4,) w-first); the shortest rotation whatever the quaternion signs (sim.articulated.terms, in numpy)."""
    d = quat_multiply(np.asarray(target, dtype=float), np.asarray(q, dtype=float) * np.array([1.0, -1, -1, -1]))
    if d[0] < 0:
        d = -d
    sin_half = float(np.linalg.norm(d[1:]))
    angle = 2.0 * np.arctan2(sin_half, d[0])
    return d[1:] * (angle / sin_half if sin_half > 1e-9 else 2.0)


class JointContext:
    """What an articulated robot's terms use besides the state: the default pose the joint positions are
    measured from (J,) rad, the last normalized action (J,), and the task's command: the velocity command
    (3,) (vx, vy m/s in the heading frame, yaw rate rad/s; legged) or the end-effector target (arm: position
    (3,) m and orientation (4,) w, x, y, z in the base frame)."""

    def __init__(
        self,
        default_pose: np.ndarray,
        last_action: np.ndarray,
        velocity_command: np.ndarray | None = None,
        target_position: np.ndarray | None = None,
        target_quat: np.ndarray | None = None,
    ):
        self.default_pose = default_pose
        self.last_action = last_action
        self.velocity_command = velocity_command
        self.target_position = target_position
        self.target_quat = target_quat


def base_velocity(state: RobotState) -> np.ndarray:
    """(3,) base linear velocity in the base frame, R^T v, from the state's world-frame velocity (the state
    estimator's, ``state/twist``) and orientation. Raises ValueError when the state carries no velocity."""
    if state.linear_velocity.size != 3:
        raise ValueError(
            "the policy observes the base velocity estimate (base_lin_vel_estimate) but the robot state has none: "
            "publish the state estimator's base twist (geometry_msgs/TwistStamped, state/twist)"
        )
    return rotation_matrix(state.quaternion).reshape(3, 3).T @ state.linear_velocity


#: Terms of the articulated tasks (sim/articulated/tasks: legged-walk, arm-reach), from a RobotState whose
#: quaternion / angular_velocity are the base's IMU (legged) and whose position / quaternion are the end
#: effector's pose in the base frame (arm). ``position_error`` here is the arm's target minus end effector; the
#: quadrotor's (TERMS) is position minus reference: each table follows its own tasks' specs.
JOINT_TERMS: dict[str, Callable[[RobotState, JointContext], np.ndarray]] = {
    "base_lin_vel_estimate": lambda s, c: base_velocity(s),
    "base_ang_vel": lambda s, c: s.angular_velocity,
    "projected_gravity": lambda s, c: projected_gravity(s.quaternion),
    "velocity_command": lambda s, c: c.velocity_command,
    "joint_pos": lambda s, c: s.joint_position - c.default_pose,
    "joint_vel": lambda s, c: s.joint_velocity,
    "position_error": lambda s, c: c.target_position - s.position,
    "orientation_error": lambda s, c: rotation_error_vector(s.quaternion, c.target_quat),
    "last_action": lambda s, c: c.last_action,
}

#: terms whose size is the robot's joint count
JOINT_SIZED_TERMS = ("joint_pos", "joint_vel", "last_action")


#: terms computed from the state estimator's base twist (``state/twist``), which not every robot publishes: a
#: Unitree Go2 in low-level mode measures only its IMU and joints (its sport-mode velocity estimate stops)
TWIST_TERMS = ("base_lin_vel_estimate",)


class JointObservationBuilder:
    """Builds policy observations of an articulated robot for ``spec``; refuses, at construction, specs with
    terms it cannot build, joint terms whose size is not the robot's joint count ``joints``, and (``twist``
    False: the robot publishes no ``state/twist``) terms computed from the base twist.

    An ``observation_history`` term (``sim.obs_spec.with_history``) is rebuilt from the builder's previous
    observations: call :meth:`build` once per control period while the policy runs and :meth:`reset` when it
    starts (the simulator's episode start: the first observation fills every history slot)."""

    def __init__(self, spec: ObsSpec, joints: int, twist: bool = True):
        self.base_spec, self.history_steps = split_history(spec)
        unknown = [name for name in self.base_spec.names if name not in JOINT_TERMS]
        if unknown:
            raise ObsSpecError(
                f"the policy's observation needs terms {unknown} that the runtime cannot build from an articulated "
                f"robot's state; it can build {sorted(JOINT_TERMS)}. Export the policy from a task whose "
                f"observations the robot measures"
            )
        base = self.base_spec
        for name in JOINT_SIZED_TERMS:
            if name in base.names and base.term(name).size != joints:
                raise ObsSpecError(
                    f"the policy's observation term {name!r} has {base.term(name).size} values, the robot has "
                    f"{joints} joints: the policy was trained for another robot"
                )
        needs_twist = [name for name in base.names if name in TWIST_TERMS]
        if needs_twist and not twist:
            raise ObsSpecError(
                f"the policy observes {needs_twist} (the state estimator's base velocity, state/twist), which this "
                "robot does not publish (e.g. a Unitree Go2 in low-level mode: IMU and joints only). Deploy a policy "
                "trained without it (legged-walk with observe_base_velocity: false, e.g. "
                "launch/tasks/legged-walk/go2.yaml), or publish a base velocity estimate on state/twist"
            )
        self.spec = spec
        self.history: list[np.ndarray] = []  # previous base observations, newest first

    def reset(self) -> None:
        """The policy starts (again): the next observation fills the history."""
        self.history = []

    def build(self, state: RobotState, context: JointContext) -> np.ndarray:
        """(D,) float32 observation."""
        names = self.base_spec.names
        values = {name: np.asarray(JOINT_TERMS[name](state, context), dtype=np.float64) for name in names}
        base = self.base_spec.assemble(values).astype(np.float32)
        if not self.history_steps:
            return base
        previous = self.history or [base] * self.history_steps  # the first observation fills the history
        self.history = [base, *previous[:-1]]
        return np.concatenate([base, *previous])
