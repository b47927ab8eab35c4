"""The simulated Unitree Go2 on Unitree's own topics (``rt/lowcmd`` in, ``rt/lowstate`` out), for
software-in-the-loop tests of drivers.unitree_bridge.

    python -m drivers.sim_unitree [--robot go2] [--rate 500] [--seconds 60] [--seed 0] [--domain-id 0]
        [--start-pose q0,...,q11 --start-height 0.1] [--no-bridge | --bridge launch/unitree_go2_bridge.yaml
        --namespace /sim2real --vehicle-id sim2real] [--truth-twist]

By default it also starts drivers.unitree_bridge (options ``--bridge``) on the same domain as a child process, so
that the pair is the robot as the runtime sees it (the module ``sim2real deploy --sil`` can start for a Go2 profile);
``--no-bridge`` leaves only Unitree's topics (the tests start the bridge themselves, to read its counters).

The robot is one env of ``legged-walk`` with the robot profile's model and this seed's randomized parameters
(:class:`drivers.sim_articulated.SimulatedArticulatedRobot`), real time. The motor slots are the profile's joints
in its order (launch/robots/go2.yaml keeps Unitree's motor order); slots past them have no motor and are ignored.

- Every LowCmd_'s CRC is checked (drivers/unitree_crc.py) and a LowCmd_ with a wrong one is dropped, counted and
  logged: the Go2's firmware does the same, while Unitree's own MuJoCo bridge (unitree_mujoco) applies any
  LowCmd, so there a CRC bug would show only on the robot.
- Each motor applies its PD law at the physics rate, as the motor drivers do (mode 0x01; mode 0x00: no torque):
  tau = kp (q* - q) + kd (dq* - dq) + tau_ff, clipped to the profile's motor envelope; q* = PosStopF (2.146e9)
  turns the position term off, dq* = VelStopF (16000) the velocity term. The -kd dq part is MuJoCo joint damping,
  which the integrator treats implicitly (the motors damp at kHz; kd 8 integrated explicitly at 200 Hz is
  unstable on the light calves: drivers/sim_articulated.py), so it is not clipped.
- ``--truth-twist``: the simulator's own base velocity also goes out as ``state/twist`` (ROS convention, base
  frame, 50 Hz) on the runtime's namespace, as the project's SIL robots publish it. A Go2 has no such topic in
  low-level mode and its policy does not observe one; the runtime only scores the walk with it
  (``walk_velocity_error_m_s``), so the walk through the bridge can be measured (``sim2real deploy --sil
  --sil-robot unitree`` turns it on).
- A LowCmd_ holds until the next one (no timeout here: the bridge's own timeout is what is tested).
- LowState_ at ``--rate`` (500 Hz, the Go2's): motors' q, dq, tau_est (the applied torque), IMU quaternion (w, x,
  y, z), gyroscope (rad/s, body), accelerometer (specific force, m/s^2, body; from the base velocity's change over
  the last physics step), rpy, tick (ms since start), head 0xFE 0xEF, and its CRC.

At exit (``--seconds`` or SIGTERM) it logs and prints one JSON line of counters on stdout (``lowcmd_received``,
``lowcmd_dropped_crc``, ``lowcmd_applied``, ``lowstate_sent``, ``base_height_m`` now and ``base_height_max_m`` since
the first good LowCmd). Like drivers/sim_articulated_node.py this module imports the simulator (and torch).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import math
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import torch
from cyclonedds.core import Listener
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from deploy.loop import FixedRateLoop
from deploy.msgs.unitree import NUM_MOTORS, IMUState_, LowCmd_, LowState_, MotorState_
from deploy.observation import rotation_matrix
from deploy.transport import resolve_domain_id
from drivers.sim_articulated import SimulatedArticulatedRobot
from drivers.unitree_bridge import READER_QOS, WRITER_QOS
from drivers.unitree_convert import HEAD, MODE_SERVO
from drivers.unitree_crc import crc, with_crc
from sim.articulated.actuators import dc_motor_torque
from sim.articulated.profile import load_profile

log = logging.getLogger("sim2real.sim_unitree")
TRUTH_HZ = 50.0  # --truth-twist rate: the runtime's control rate
GRAVITY = np.array([0.0, 0.0, 9.81])  # m/s^2, up: an accelerometer at rest reads +g along its up axis


class SimGo2:
    """One simulated Go2 behind rt/lowcmd / rt/lowstate. Call :meth:`step` at the LowState rate."""

    def __init__(
        self,
        participant: DomainParticipant,
        robot: SimulatedArticulatedRobot,
        start_pose: np.ndarray | None = None,
        start_height_m: float | None = None,
        lowcmd_topic: str = "rt/lowcmd",
        lowstate_topic: str = "rt/lowstate",
    ):
        self.robot, self.env, self.profile = robot, robot.env, robot.profile
        self.joints = self.profile.joints.dim
        if self.joints > NUM_MOTORS:
            raise ValueError(f"{self.profile.name} has {self.joints} joints; a LowCmd_ has {NUM_MOTORS} motor slots")
        self._lock = threading.Lock()
        self._command: np.ndarray | None = None  # (6, J): mode, q, dq, tau, kp, kd of the newest good LowCmd_
        self.counts = dict.fromkeys(("lowcmd_received", "lowcmd_dropped_crc", "lowcmd_applied", "lowstate_sent"), 0)
        self.physics_steps, self.time_s = 0, 0.0
        self.base_height_max_m = 0.0  # the highest the base got once commanded (did it stand up?)
        self._kd_implicit = np.zeros(self.joints)
        self._place(start_pose, start_height_m)
        self._v_prev = self.env.engine.qvel[0, 0:3].numpy().copy()
        self._accel = GRAVITY.copy()
        self._tau = np.zeros(self.joints)
        self.writer = DataWriter(participant, Topic(participant, lowstate_topic, LowState_), WRITER_QOS)
        topic = Topic(participant, lowcmd_topic, LowCmd_)
        self.reader = DataReader(participant, topic, READER_QOS, listener=Listener(on_data_available=self._on_lowcmd))

    def _place(self, pose: np.ndarray | None, height_m: float | None) -> None:
        """Launch state: the task's standing start, or ``pose`` (J,) rad at ``height_m``, at rest; motors off."""
        self.robot.reset()
        e = self.env.engine
        if pose is not None:
            qpos, qvel = e.qpos[:1].clone(), torch.zeros_like(e.qvel[:1])
            qpos[0, self.env.qadr] = torch.as_tensor(pose, dtype=qpos.dtype)
            if height_m is not None:
                qpos[0, 2] = height_m
            e.set_state(torch.tensor([0]), qpos, qvel)
        self.robot.disarm()  # the task's own PD off: this node applies the motors' law itself
        self._damping0 = self.env.engine.get_params("dof_damping").clone()  # (1, nv) this robot's own damping
        self._kd_implicit = np.zeros(self.joints)

    # ------------------------------------------------------------------ rt/lowcmd (a DDS thread)
    def _on_lowcmd(self, reader: DataReader) -> None:
        for msg in reader.take(8):
            if not isinstance(msg, LowCmd_):
                continue
            self.counts["lowcmd_received"] += 1
            expected = crc(msg)
            if int(msg.crc) != expected:
                n = self.counts["lowcmd_dropped_crc"] = self.counts["lowcmd_dropped_crc"] + 1
                if n <= 3 or n % 100 == 0:
                    log.error("LowCmd dropped: CRC %#010x, expected %#010x (%d dropped so far)", msg.crc, expected, n)
                continue
            motors = msg.motor_cmd[: self.joints]
            command = np.array([[m.mode, m.q, m.dq, m.tau, m.kp, m.kd] for m in motors], dtype=float).T
            with self._lock:
                self._command = command
            self.counts["lowcmd_applied"] += 1

    # ------------------------------------------------------------------ physics
    def _set_damping(self, kd: np.ndarray) -> None:
        if np.array_equal(kd, self._kd_implicit):
            return
        self._kd_implicit = kd.copy()
        damping = self._damping0.clone()
        damping[0, self.env.dadr] += torch.as_tensor(kd, dtype=damping.dtype)
        self.env.engine.set_params("dof_damping", damping, torch.tensor([0]))

    def _physics_step(self, command: np.ndarray | None) -> None:
        """One physics step under the motors' PD law for ``command`` (6, J) (None: motors off)."""
        e, act = self.env.engine, self.env.actuators
        q, qd = e.qpos[0, self.env.qadr].numpy(), e.qvel[0, self.env.dadr].numpy()
        if command is None:
            tau, kd = np.zeros(self.joints), np.zeros(self.joints)
        else:
            mode, q_t, dq_t, tau_ff, kp, kd = command
            on = mode == MODE_SERVO
            pos_on, vel_on = on & (np.abs(q_t) < 1e9), on & (np.abs(dq_t) < 1e4)  # PosStopF / VelStopF: loop off
            tau = np.where(pos_on, kp * (np.where(pos_on, q_t, 0.0) - q), 0.0)
            tau += np.where(vel_on, kd * np.where(vel_on, dq_t, 0.0), 0.0) + np.where(on, tau_ff, 0.0)
            kd = np.where(vel_on, kd, 0.0)  # -kd dq: implicit joint damping
        limit = (act.effort_limit * act.strength[0]).double()
        tau_t, qd_t = torch.from_numpy(tau), torch.from_numpy(qd.copy())
        if act.model == "dc_motor":
            tau_t = dc_motor_torque(tau_t, qd_t, (act.stall_torque * act.strength[0]).double(), act.max_velocity.double(),
                                    limit)  # fmt: skip
        else:
            tau_t = torch.clamp(torch.nan_to_num(tau_t), -limit, limit)
        self._set_damping(kd)
        ctrl = torch.zeros_like(self.env.torque, dtype=e.dtype)
        ctrl[0] = tau_t
        e.step(ctrl, 1)
        self._tau = tau_t.numpy() - kd * e.qvel[0, self.env.dadr].numpy()
        v = e.qvel[0, 0:3].numpy().copy()
        dt = self.profile.control_dt / self.profile.substeps
        r = rotation_matrix(e.qpos[0, 3:7].numpy()).reshape(3, 3)
        self._accel = r.T @ ((v - self._v_prev) / dt + GRAVITY)
        self._v_prev = v
        self.physics_steps += 1

    def step(self, elapsed_s: float) -> None:
        """Advance the physics to ``elapsed_s`` (s since start, wall clock) and publish one LowState_."""
        dt = self.profile.control_dt / self.profile.substeps
        due = int(elapsed_s / dt) - self.physics_steps
        with self._lock:
            command = self._command
        for _ in range(min(max(due, 0), 20)):  # after a stall, catch up at most 0.1 s (the robot does not jump)
            self._physics_step(command)
        if due > 20:
            self.physics_steps += due - 20
        self.time_s = elapsed_s
        if command is not None:
            self.base_height_max_m = max(self.base_height_max_m, self.base_height_m())
        self.writer.write(self.lowstate())
        self.counts["lowstate_sent"] += 1

    def lowstate(self) -> LowState_:
        e = self.env.engine
        q, qd = e.qpos[0, self.env.qadr].numpy(), e.qvel[0, self.env.dadr].numpy()
        quat = e.qpos[0, 3:7].numpy()
        with self._lock:
            modes = self._command[0] if self._command is not None else np.zeros(self.joints)
        motors = [
            MotorState_(mode=int(modes[i]), q=float(q[i]), dq=float(qd[i]), tau_est=float(self._tau[i]),
                        q_raw=float(q[i]), dq_raw=float(qd[i]), temperature=30)
            for i in range(self.joints)
        ]  # fmt: skip
        motors += [MotorState_() for _ in range(NUM_MOTORS - self.joints)]
        w, x, y, z = quat
        rpy = [math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y)), math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x)))),
               math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))]  # fmt: skip
        imu = IMUState_(
            quaternion=[float(v) for v in quat],
            gyroscope=[float(v) for v in e.qvel[0, 3:6].numpy()],
            accelerometer=[float(v) for v in self._accel],
            rpy=rpy,
            temperature=35,
        )
        msg = LowState_(
            head=list(HEAD), level_flag=0xFF, imu_state=imu, motor_state=motors, tick=int(self.time_s * 1e3)
        )
        msg.bms_state.soc = 100
        msg.power_v = 28.0
        return with_crc(msg)

    def base_height_m(self) -> float:
        return float(self.env.engine.qpos[0, 2])

    def truth_twist(self, stamp_ns: int):
        """The simulator's base velocity as a ROS ``TwistStamped`` (base frame): the scoring truth of --truth-twist."""
        from deploy.articulated_wire import twist_msg

        e = self.env.engine
        return twist_msg(e.qpos[0, 3:7].numpy(), e.qvel[0, 0:3].numpy(), e.qvel[0, 3:6].numpy(), stamp_ns)


def _floats(text: str | None) -> np.ndarray | None:
    return None if text is None else np.array([float(v) for v in text.split(",")])


def truth_publisher(stack: contextlib.ExitStack, namespace: str | None, domain_id: int):
    """A publisher of the runtime's ``state/twist`` on ``namespace`` (for --truth-twist), closed with ``stack``."""
    from deploy.transport import Ros2Node, TransportConfig

    transport = TransportConfig.from_mapping({"namespace": namespace} if namespace else None)
    node = stack.enter_context(Ros2Node("sim_unitree_truth", namespace=transport.namespace, domain_id=domain_id))
    topic = transport.topic("twist")
    return node.publisher(topic.name, topic.msg_type, topic.qos)


def start_bridge(args: argparse.Namespace, domain_id: int) -> subprocess.Popen:
    """drivers.unitree_bridge for this robot, as a child process that ends with this one (its log and JSON on
    stderr, so that this process's stdout keeps one JSON line)."""
    cmd = [sys.executable, "-m", "drivers.unitree_bridge", "--config", args.bridge, "--domain-id", str(domain_id),
           "--rate", str(args.rate), "--seconds", str(args.seconds)]  # fmt: skip
    cmd += ["--namespace", args.namespace] if args.namespace else []
    cmd += ["--vehicle-id", args.vehicle_id] if args.vehicle_id else []

    def die_with_parent() -> None:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)

    return subprocess.Popen(cmd, stdout=sys.stderr.fileno(), preexec_fn=die_with_parent)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.sim_unitree", description=__doc__.splitlines()[0])
    ap.add_argument("--robot", default="go2", help="robot profile (name or YAML); its joints are the motor slots")
    ap.add_argument("--rate", type=float, default=500.0, help="LowState writes per second (the Go2: 500)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0, help="draws this robot's randomized parameters")
    ap.add_argument("--domain-id", type=int, default=None, help="the robot's DDS domain (default: ROS_DOMAIN_ID)")
    ap.add_argument("--start-pose", default=None, help="joint positions at launch, rad, comma-separated")
    ap.add_argument("--start-height", type=float, default=None, help="base height at launch, m")
    ap.add_argument("--bridge", default="launch/unitree_go2_bridge.yaml", help="start drivers.unitree_bridge with "
                    "these options, so that this process is the robot as the runtime sees it (sim2real deploy --sil)")  # fmt: skip
    ap.add_argument("--no-bridge", action="store_true", help="Unitree's topics only; start the bridge yourself")
    ap.add_argument("--namespace", default=None, help="the bridge's: the runtime's ROS 2 namespace")
    ap.add_argument("--vehicle-id", default=None, help="the bridge's: obey only commands for this robot")
    ap.add_argument("--truth-twist", action="store_true", help="also publish the simulator's base velocity on the "
                    "namespace's state/twist (50 Hz), for the runtime's walk score; a Go2 has no such topic")  # fmt: skip
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    domain_id = resolve_domain_id(args.domain_id)
    robot = SimulatedArticulatedRobot("legged-walk", seed=args.seed, profile=load_profile(args.robot))
    start_pose = _floats(args.start_pose)
    if start_pose is not None and start_pose.shape != (robot.profile.joints.dim,):
        ap.error(f"--start-pose: expected {robot.profile.joints.dim} values, got {start_pose.size}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    participant = DomainParticipant(domain_id)
    sim = SimGo2(participant, robot, start_pose, args.start_height)
    bridge = None if args.no_bridge else start_bridge(args, domain_id)
    log.info("simulated %s on rt/lowcmd, rt/lowstate (domain %d), %g Hz, for %g s%s", robot.profile.name, domain_id,
             args.rate, args.seconds, "" if bridge is None else f", bridge {args.bridge}")  # fmt: skip
    with contextlib.ExitStack() as stack:
        truth = truth_publisher(stack, args.namespace, domain_id) if args.truth_twist else None
        every = max(1, round(args.rate / TRUTH_HZ))

        def tick(now: float) -> bool | None:
            if stop.is_set():
                return False
            sim.step(now - start)
            if truth is not None and sim.counts["lowstate_sent"] % every == 0:
                truth.publish(sim.truth_twist(time.time_ns()))
            return None

        start, cpu0, stats = time.monotonic(), time.process_time(), None
        try:
            stats = FixedRateLoop(args.rate).run(tick, duration_s=args.seconds)
        except KeyboardInterrupt:
            pass
    counts = dict(sim.counts, base_height_m=round(sim.base_height_m(), 4), physics_steps=sim.physics_steps)
    counts["base_height_max_m"] = round(sim.base_height_max_m, 4)
    counts["cpu_fraction"] = round((time.process_time() - cpu0) / max(time.monotonic() - start, 1e-9), 3)
    counts["loop"] = stats.summary() if stats is not None else None
    log.info("done: %s", counts)
    print(json.dumps(counts), flush=True)
    if bridge is not None:
        bridge.terminate()
        bridge.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
