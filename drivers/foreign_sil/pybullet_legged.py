"""A legged robot in pybullet, dressed as hardware: the foreign software-in-the-loop robot for legged profiles.

MuJoCo -> pybullet is the usual sim-to-sim check: the robot profile's own description (A1: pybullet_data
``a1/a1.urdf``; Go2: ``launch/robots/go2_description/go2.urdf``) in another engine, with its own contact model
(Bullet's sequential-impulse solver, its default friction and restitution, its base damping), none of the
project's randomization and none of its actuator code. What comes from the profile is what the hardware would
bring: the joint names (matched by NAME to the URDF's joints), the motor torque limit (and the DC-motor
torque-speed line of a ``dc_motor`` profile), the damping gain of the Unitree damping mode.

Motors. pybullet's default per-joint velocity motors are switched off first (velocity control with force 0), then
every physics step (the profile's ``physics_hz``) applies the torque a Unitree motor driver computes from the last
command, ``tau = tau_ff + kp (q* - q) + kd (dq* - dq)``, saturated, in torque control.

Wire: the topics of ``drivers/sim_articulated_node.py``: ``command/joints`` (JointCommand, any joint order) in;
``state/joints`` (JointState with the applied torques as effort), ``state/imu`` (orientation, gyro in the base
frame), ``state/pose`` (world) and ``state/twist`` (base frame, ROS convention, from pybullet's base velocity)
out, stamped in ROS time. Same conventions: before its first command the robot lies in the start pose with the
motors limp; all gains zero -> limp; no command for ``command_timeout_s`` -> damping.

    python -m drivers.foreign_sil.pybullet_legged --robot launch/robots/a1.yaml --seconds 60 \
        [--start-pose q1,...,q12 --start-height 0.1] [--namespace /sim2real] [--vehicle-id ID]

Frames: world z up; the base frame is the URDF base link's frame (pybullet reports its inertial frame; the
offset is removed here). Quaternions (w, x, y, z) body -> world; pybullet's are (x, y, z, w).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np

from deploy.observation import rotation_matrix
from sim.articulated.profile import ArticulatedProfile, load_profile

log = logging.getLogger("sim2real.foreign_sil.pybullet")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROBOT = ROOT / "launch" / "robots" / "a1.yaml"


def pd_torque(q_target, dq_target, tau_ff, kp, kd, q, dq) -> np.ndarray:
    """A motor driver's law: tau_ff + kp (q* - q) + kd (dq* - dq). All (J,): rad, rad/s, N m, N m/rad, N m s/rad."""
    return tau_ff + kp * (q_target - q) + kd * (dq_target - dq)


def saturate(tau: np.ndarray, dq: np.ndarray, effort: np.ndarray, stall: np.ndarray | None, dq_max) -> np.ndarray:
    """Clip (J,) torques to +-effort N m; with a DC motor (stall N m, dq_max rad/s) also to its torque-speed line
    tau in [-stall (1 + dq/dq_max), stall (1 - dq/dq_max)] (FACTS.md, as Isaac Lab's DCMotor)."""
    low, high = -effort, effort
    if stall is not None:
        high = np.minimum(high, np.maximum(stall * (1.0 - dq / dq_max), 0.0))
        low = np.maximum(low, np.minimum(-stall * (1.0 + dq / dq_max), 0.0))
    return np.clip(tau, low, high)


class PybulletLegged:
    """One floating-base robot of ``profile`` in its own pybullet world (DIRECT, no GUI), stepped at the profile's
    physics rate. Joint vectors (J,) are in the profile's joint order."""

    def __init__(self, profile: ArticulatedProfile, physics_hz: float | None = None):
        import pybullet
        import pybullet_data
        from pybullet_utils.bullet_client import BulletClient

        if profile.robot_class != "legged" or not profile.floating_base:
            raise ValueError(f"pybullet foreign SIL: expected a legged floating-base profile, got {profile.name!r}")
        self.profile, self.pb = profile, pybullet
        self.client = BulletClient(connection_mode=pybullet.DIRECT)
        self.physics_hz = float(physics_hz or profile.physics_hz)
        self.substeps = round(self.physics_hz / profile.control_hz)
        if self.substeps < 1 or abs(self.substeps * profile.control_hz - self.physics_hz) > 1e-6:
            raise ValueError(
                f"physics rate {self.physics_hz} Hz: expected a whole multiple of the control rate "
                f"{profile.control_hz} Hz"
            )
        c = self.client
        c.setAdditionalSearchPath(pybullet_data.getDataPath())
        c.setGravity(0.0, 0.0, -9.81)
        c.setTimeStep(1.0 / self.physics_hz)
        self.ground = c.loadURDF("plane.urdf")
        self.body = c.loadURDF(str(profile.description_path()), [0.0, 0.0, profile.initial_base_height_m])
        self.joint_ids = self._joint_ids(profile.joints.names)
        info = c.getDynamicsInfo(self.body, -1)
        self._inertial_pos, self._inertial_orn = info[3], info[4]  # base link frame -> its inertial frame
        j = profile.joints
        self.effort = np.broadcast_to(np.asarray(j.effort_limit_nm, dtype=float), (j.dim,)).copy()
        a = profile.actuator
        dc = a.model == "dc_motor"
        per_joint = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (j.dim,)).copy()  # noqa: E731
        self.stall = per_joint(a.stall_torque_nm) if dc else None
        self.dq_max = per_joint(a.max_velocity_rad_s) if dc else np.full(j.dim, math.inf)
        c.setJointMotorControlArray(self.body, self.joint_ids, pybullet.VELOCITY_CONTROL, forces=[0.0] * j.dim)
        self.time_s = 0.0
        self.tau = np.zeros(j.dim)
        self.limp()

    def _joint_ids(self, names: tuple[str, ...]) -> list[int]:
        c = self.client
        found = {c.getJointInfo(self.body, i)[1].decode(): i for i in range(c.getNumJoints(self.body))}
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(
                f"{self.profile.description}: no joints named {missing}; the robot profile's joints must be URDF "
                f"joint names. The URDF has {sorted(found)}"
            )
        return [found[n] for n in names]

    # ------------------------------------------------------------------ commands
    def command(self, q, dq, kp, kd, tau) -> None:
        """Hold this PD command (J,) each (rad, rad/s, N m/rad, N m s/rad, N m) until the next one."""
        self._cmd = tuple(np.asarray(v, dtype=float).copy() for v in (q, dq, kp, kd, tau))

    def limp(self) -> None:
        """Zero torque (all gains zero)."""
        z = np.zeros(self.profile.joints.dim)
        self.command(z, z, z, z, z)

    def damp(self) -> None:
        """The motor drivers' damping mode: kp 0, kd = the profile's damping gain."""
        z = np.zeros(self.profile.joints.dim)
        self.command(z, z, z, np.full_like(z, self.profile.safety.damping_kd_nm_s_per_rad), z)

    # ------------------------------------------------------------------ physics
    def place(self, joint_pos: np.ndarray, height_m: float, quat_wxyz=(1.0, 0.0, 0.0, 0.0)) -> None:
        """At rest at (0, 0, height_m) m (base link origin), orientation quat_wxyz, joints at joint_pos (J,) rad."""
        c, (w, x, y, z) = self.client, quat_wxyz
        pos, orn = c.multiplyTransforms([0.0, 0.0, height_m], [x, y, z, w], self._inertial_pos, self._inertial_orn)
        c.resetBasePositionAndOrientation(self.body, pos, orn)
        c.resetBaseVelocity(self.body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        for i, q in zip(self.joint_ids, joint_pos, strict=True):
            c.resetJointState(self.body, i, float(q), 0.0)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(J,) positions rad, (J,) velocities rad/s."""
        states = self.client.getJointStates(self.body, self.joint_ids)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def step(self) -> None:
        """One control period: ``substeps`` physics steps, the PD law and the motor limits at each."""
        q_t, dq_t, kp, kd, tau_ff = self._cmd
        c, torque = self.client, self.pb.TORQUE_CONTROL
        for _ in range(self.substeps):
            q, dq = self.joint_state()
            self.tau = saturate(pd_torque(q_t, dq_t, tau_ff, kp, kd, q, dq), dq, self.effort, self.stall, self.dq_max)
            c.setJointMotorControlArray(self.body, self.joint_ids, torque, forces=self.tau.tolist())
            c.stepSimulation()
        self.time_s += self.substeps / self.physics_hz

    def base_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Base link: position (3,) m world, quaternion (4,) (w, x, y, z) body -> world, linear velocity (3,) m/s
        WORLD frame, angular velocity (3,) rad/s BASE frame (the gyro)."""
        c = self.client
        com, orn = c.getBasePositionAndOrientation(self.body)
        v_com, w_world = (np.asarray(v) for v in c.getBaseVelocity(self.body))
        inv_pos, inv_orn = c.invertTransform(self._inertial_pos, self._inertial_orn)
        pos, link_orn = c.multiplyTransforms(com, orn, inv_pos, inv_orn)
        x, y, z, w = link_orn
        quat = np.array([w, x, y, z])
        pos = np.asarray(pos)
        velocity = v_com + np.cross(w_world, pos - np.asarray(com))  # of the link origin, not the centre of mass
        return pos, quat, velocity, rotation_matrix(quat).reshape(3, 3).T @ w_world


class PybulletLeggedNode:
    """:class:`PybulletLegged` behind the topics of the project's legged SIL robot. Call :meth:`step` once per
    control period."""

    def __init__(self, node, transport, robot: PybulletLegged, command_timeout_s: float = 0.5, vehicle_id=None):
        from deploy.articulated_wire import JointOrder
        from deploy.msgs import JointCommand
        from drivers.vehicle import LatestCommand, VehicleFilter, default_vehicle_id

        self.robot, self.names = robot, robot.profile.joints.names
        self.order = JointOrder(self.names)
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.command_timeout_s = command_timeout_s
        pub = {key: transport.topic(key) for key in ("joint_states", "imu", "pose", "twist", "status")}
        self.pubs = {key: node.publisher(t.name, t.msg_type, t.qos) for key, t in pub.items()}
        cmd = transport.topic("joint_command")
        self.commands = LatestCommand(self.vehicle)
        self.sub = node.subscription(cmd.name, JointCommand, cmd.qos, callback=self.commands.on_message)
        self.mode = "off"  # off (limp) | command | fallback (damping)

    def command_vectors(self, msg) -> tuple[np.ndarray, ...]:
        """q, dq, kp, kd, tau (J,) each in profile order from a JointCommand (empty velocity/effort: zeros)."""
        from deploy.articulated_wire import JointStateError

        index, n = self.order.indices(msg.name, "JointCommand"), len(msg.name)
        out = []
        for field in ("position", "velocity", "kp", "kd", "effort"):
            values = getattr(msg, field)
            if field in ("velocity", "effort") and not len(values):
                values = [0.0] * n
            if len(values) != n:
                raise JointStateError(f"JointCommand.{field} has {len(values)} values for {n} names; one per name")
            out.append(np.asarray(values, dtype=float)[index])
        return tuple(out)

    def _apply_command(self, now: float) -> None:
        from deploy.articulated_wire import JointStateError

        msg, age = self.commands.take(now)
        if msg is None:
            return
        if age > self.command_timeout_s:
            if self.mode == "command":
                log.warning("no joint command for %.2f s: damping", age)
                self.robot.damp()
                self.mode = "fallback"
            return
        try:
            q, dq, kp, kd, tau = self.command_vectors(msg)
        except JointStateError as exc:
            log.warning("ignoring a joint command: %s", exc)
            return
        if not all(np.all(np.isfinite(v)) for v in (q, dq, kp, kd, tau)) or np.any(kp < 0) or np.any(kd < 0):
            log.warning("ignoring a joint command with values that are not finite or negative gains")
            return
        self.mode = "off" if not np.any(kp) and not np.any(kd) else "command"
        self.robot.command(q, dq, kp, kd, tau)

    def step(self, now: float | None = None) -> None:
        """Apply the newest command, advance one control period, publish the state."""
        self._apply_command(time.monotonic() if now is None else now)
        self.robot.step()
        self.publish(time.time_ns())  # ROS time (the system clock), as a ROS 2 driver stamps

    def publish(self, stamp_ns: int) -> None:
        from deploy.articulated_wire import imu_msg, joint_state_msg, pose_msg, twist_msg

        q, dq = self.robot.joint_state()
        pos, quat, velocity, gyro = self.robot.base_state()
        self.pubs["joint_states"].publish(joint_state_msg(self.names, q, dq, self.robot.tau, stamp_ns))
        self.pubs["imu"].publish(imu_msg(quat, gyro, stamp_ns))
        self.pubs["pose"].publish(pose_msg(pos, quat, stamp_ns, "world"))
        self.pubs["twist"].publish(twist_msg(quat, velocity, gyro, stamp_ns))


def _floats(text: str | None) -> np.ndarray | None:
    return None if text is None else np.array([float(v) for v in text.split(",")])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m drivers.foreign_sil.pybullet_legged", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--robot", default=str(DEFAULT_ROBOT), help="legged robot profile YAML (its URDF is loaded)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0, help="accepted for the SIL robots' uniform command line; unused")
    ap.add_argument("--namespace", default=None, help="ROS 2 namespace of the topics (default: the transport table's)")
    ap.add_argument("--command-timeout", type=float, default=0.5, help="s without commands before damping")
    ap.add_argument("--start-pose", default=None, help="joint positions at launch, rad, comma-separated")
    ap.add_argument("--start-height", type=float, default=None, help="base height at launch, m")
    ap.add_argument("--physics-hz", type=float, default=None, help="default: the robot profile's physics rate")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this robot (default: the namespace)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from deploy.loop import FixedRateLoop
    from deploy.msgs import String
    from deploy.transport import Ros2Node, TransportConfig

    profile = load_profile(args.robot)
    robot = PybulletLegged(profile, args.physics_hz)
    start = _floats(args.start_pose)
    if start is None:
        start = np.asarray(profile.joints.default_position_rad)
    if start.shape != (profile.joints.dim,):
        ap.error(f"--start-pose: expected {profile.joints.dim} values, got {start.size}")
    robot.place(start, profile.initial_base_height_m if args.start_height is None else args.start_height)
    transport = TransportConfig.from_mapping({"namespace": args.namespace} if args.namespace else None)
    with Ros2Node("foreign_sil_legged", namespace=transport.namespace) as node:
        sil = PybulletLeggedNode(node, transport, robot, args.command_timeout, args.vehicle_id)
        sil.pubs["status"].publish(String(f"foreign_sil pybullet {profile.name} ready"))
        log.info(
            "pybullet legged robot %s (%d joints by name, %g Hz physics) on domain %d, %g Hz, %g s",
            profile.name,
            profile.joints.dim,
            robot.physics_hz,
            node.domain_id,
            profile.control_hz,
            args.seconds,
        )
        stats = FixedRateLoop(profile.control_hz).run(lambda now: sil.step(now), duration_s=args.seconds)
        log.info("done: %s", stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
