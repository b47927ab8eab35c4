"""The simulated quadrotor dressed as hardware, for software-in-the-loop.

A separate process runs one quadrotor of the batched simulator in real time, with its own randomized
parameters, sensor noise and actuator latency, publishes its state on the ROS 2 topics a real robot's driver
would (``pose``, ``twist`` and ``odom`` of the transport table, the twist in the body frame by ROS convention
(deploy/state_wire.py), header stamps in ROS time, the system clock,
as a ROS 2 driver's), a draining ``battery`` at 10 Hz, and applies the ``motor_command`` (RPM) it receives,
or with ``--interface ctbr`` the ``rate_command`` (collective thrust N, body rates rad/s) through the simulator's
rate loop, as an autopilot would. Like the firmware, it idles the motors when commands stop for
``command_timeout_s``. The simulator has no ground, so this wrapper adds one:
the vehicle rests on z = 0 instead of falling through.

    python -m drivers.sim_robot --seconds 30 [--seed 0] [--rate 100] [--start-height 0] [--interface rpm|ctbr]
        [--randomization launch/randomization/crazyflie2_base.yaml]

This is the only place where the deploy side imports the simulator (and torch).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from deploy.loop import FixedRateLoop
from deploy.msgs import BatteryState, MotorCommand, RateThrustCommand, String
from deploy.state_wire import state_messages
from deploy.transport import Ros2Node, TransportConfig
from drivers.vehicle import PhysicsClock, VehicleFilter, default_vehicle_id
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv
from sim.randomization import RandomizationSpec

log = logging.getLogger("sim2real.sim_robot")
MAX_CATCH_UP = 10  # control steps run back to back after a late call; a longer stall is given up


class SimulatedQuadrotor:
    """One simulated quadrotor behind the robot's wire protocol. Call :meth:`step` once per control period."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        cfg: QuadrotorTaskCfg | None = None,
        seed: int = 0,
        start_height_m: float = 0.0,
        command_timeout_s: float = 0.5,
        battery_start: float = 0.95,
        battery_drain_per_s: float = 1.0 / 420.0,  # a Crazyflie flies about 7 minutes
        vehicle_id: str | None = None,
    ):
        cfg = cfg or QuadrotorTaskCfg()
        self.vehicle = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        cfg.episode_s = 1e6  # a robot has no episodes
        cfg.init = InitCfg(0.0, 0.0, 0.0, 0.0)
        cfg.termination.floor_m = -math.inf  # the ground is handled here
        cfg.termination.position_m = 1e3
        self.cfg = cfg
        # the native kernel where it computes the config (0.09 ms a step); the robot never reads the observation groups,
        # so they stay plain dicts and tensordict (2 s of CPU at every start: it imports torch._dynamo) stays unloaded
        self.env = QuadrotorEnv(cfg, 1, seed=seed, tensordict_observations=False)
        self.env.set_state_rows("position", torch.tensor([[0.0, 0.0, start_height_m]]))
        rpm = 0.0 if start_height_m <= 0 else self.env.state_rows("rotor_rpm")[0, 0].item()
        self.env.set_state_rows("rotor_rpm", torch.full((1, 4), rpm))
        self.spec = self.env.action_spec
        self.command_timeout_s = command_timeout_s
        self.ctbr = self.spec.interface == "ctbr"
        idle = [self.spec.low[0], 0.0, 0.0, 0.0] if self.ctbr else [self.spec.low[0]] * 4  # rates 0 in ctbr
        self._idle = np.asarray(idle, dtype=np.float32)
        self._command, self._command_time = self._idle, -math.inf
        pose, twist, odom = transport.topic("pose"), transport.topic("twist"), transport.topic("odom")
        motors = transport.topic("rate_command" if self.ctbr else "motor_command")
        self.pose_pub = node.publisher(pose.name, pose.msg_type, pose.qos)
        self.twist_pub = node.publisher(twist.name, twist.msg_type, twist.qos)
        self.odom_pub = node.publisher(odom.name, odom.msg_type, odom.qos)
        battery = transport.topic("battery")
        self.battery_pub = node.publisher(battery.name, BatteryState, battery.qos)
        self.battery_fraction = battery_start
        self.battery_drain_per_s = battery_drain_per_s
        status = transport.topic("status")
        self.status_pub = node.publisher(status.name, status.msg_type, status.qos)
        self.command_sub = node.subscription(motors.name, motors.msg_type, motors.qos, callback=self._on_command)
        self._noise = torch.Generator().manual_seed(seed + 1)
        self.steps = 0
        self.clock = PhysicsClock(cfg.control_dt, MAX_CATCH_UP)

    def _on_command(self, msg: MotorCommand | RateThrustCommand) -> None:
        if not self.vehicle.accepts(msg):
            return
        if self.ctbr:
            r = msg.body_rate
            values = np.asarray([msg.thrust, r.x, r.y, r.z], dtype=np.float32)
        else:
            values = np.asarray(msg.rpm, dtype=np.float32)
        if values.shape != (4,) or not np.isfinite(values).all():
            log.warning("ignoring a command with %s values (expected 4 finite numbers)", values.shape)
            return
        self._command, self._command_time = values, time.monotonic()

    def step(self, now: float | None = None) -> None:
        """Bring the simulation up to ``now`` (monotonic s) and publish the new state, stamped with its physics time
        (:class:`drivers.vehicle.PhysicsClock`: a late call runs the due steps on the held command)."""
        now = time.monotonic() if now is None else now
        dt = self.cfg.control_dt
        fresh = now - self._command_time <= self.command_timeout_s
        command = self._command if fresh else self._idle
        action = self.spec.to_normalized(torch.as_tensor(command, dtype=torch.float32))[None]

        def one_step() -> None:
            self.env.step(action)
            self._ground()
            self.steps += 1
            self.battery_fraction = max(0.0, self.battery_fraction - self.battery_drain_per_s * dt)

        self.clock.advance(now, self.steps, one_step)
        self._publish(self.clock.stamp_ns(self.steps))

    def _ground(self) -> None:
        pos = self.env.state_rows("position")
        if pos[0, 2] < 0.0:  # resting on the ground: no penetration, friction stops it
            self.env.set_state_rows("position", torch.tensor([[pos[0, 0], pos[0, 1], 0.0]]))
            self.env.set_state_rows("velocity", torch.zeros(1, 3))
            self.env.set_state_rows("angular_velocity", torch.zeros(1, 3))

    def _publish(self, stamp_ns: int) -> None:
        spec = self.env.obs_spec

        def noisy(name: str, term: str) -> list[float]:
            value = self.env.state_rows(name)[0]
            std = spec.term(term).noise_std
            return (value + std * torch.randn(3, generator=self._noise)).tolist()

        q = self.env.state_rows("quaternion")[0].tolist()  # w, x, y, z
        # the velocity noise is drawn in the world frame, as the simulator's observation noise, then rotated
        pose, twist, odom = state_messages(
            stamp_ns,
            noisy("position", "position_error"),
            q,
            noisy("velocity", "linear_velocity"),
            noisy("angular_velocity", "angular_velocity"),
        )
        self.pose_pub.publish(pose)
        self.twist_pub.publish(twist)
        self.odom_pub.publish(odom)
        if self.steps % 10 == 1:  # 10 Hz at 100 Hz control
            battery = BatteryState(
                pose.header, voltage=3.0 + 1.2 * self.battery_fraction, percentage=self.battery_fraction, present=True
            )
            self.battery_pub.publish(battery)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.sim_robot", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=100.0, help="control rate, Hz (the simulator's control step)")
    ap.add_argument("--start-height", type=float, default=0.0, help="m; 0 = resting on the ground, motors off")
    ap.add_argument("--namespace", default=None, help="ROS 2 namespace of the topics (default: the transport table's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this vehicle (default: the namespace)")
    ap.add_argument("--interface", choices=("rpm", "ctbr"), default="rpm", help="the command it takes")
    ap.add_argument(
        "--randomization",
        type=Path,
        default=None,
        help="the vehicle's randomization spec YAML "
        "(default: the task's, imperfections included; launch/randomization/crazyflie2_base.yaml is the ideal vehicle)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    transport = TransportConfig.from_mapping({"namespace": args.namespace} if args.namespace else None)
    cfg = QuadrotorTaskCfg(control_hz=args.rate, action_interface=args.interface)
    if args.randomization is not None:
        cfg.randomization = RandomizationSpec.from_yaml(args.randomization)
    with Ros2Node("sim_robot", namespace=transport.namespace) as node:
        robot = SimulatedQuadrotor(
            node, transport, cfg, seed=args.seed, start_height_m=args.start_height, vehicle_id=args.vehicle_id
        )
        robot.status_pub.publish(String("sim_robot ready"))
        log.info(
            "simulated quadrotor on domain %d, %g Hz, for %g s, vehicle drawn from %r", node.domain_id, args.rate,
            args.seconds, cfg.randomization.name,
        )  # fmt: skip
        stats = FixedRateLoop(args.rate).run(robot.step, duration_s=args.seconds)
        log.info("done: %s", stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
