"""``python -m drivers.foreign_sil --sim rotorpy|drone_models``: a foreign quadrotor on the topic table."""

from __future__ import annotations

import argparse
import logging
import math

import numpy as np

from drivers.foreign_sil import SIMULATORS, make_vehicle
from drivers.foreign_sil.common import DEFAULT_ROBOT, ForeignSilNode, Measure

log = logging.getLogger("sim2real.foreign_sil")

#: Motion-capture noise densities of RotorPy's ``MotionCapture`` sensor defaults (position m/sqrt(Hz), velocity
#: m/s/sqrt(Hz), attitude rad/sqrt(Hz), rates rad/s/sqrt(Hz)); the std at a sampling rate f is density * sqrt(f/2).
MOCAP_DENSITY = (0.0005, 0.005, 0.0005, 0.0005)


def measure_for(noise: str, rate_hz: float, delay_steps: int, seed: int) -> Measure:
    scale = math.sqrt(rate_hz / 2) if noise == "mocap" else 0.0
    stds = [d * scale for d in MOCAP_DENSITY]
    return Measure(np.random.default_rng(seed), *stds, delay_steps=delay_steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.foreign_sil", description=__doc__.splitlines()[0])
    ap.add_argument("--sim", choices=sorted(SIMULATORS), required=True, help="the foreign simulator")
    ap.add_argument("--model", default=None, help="drone_models: the vehicle (default cf21B_500)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0, help="seed of the measurement noise")
    ap.add_argument("--rate", type=float, default=100.0, help="control rate, Hz (one simulator step per period)")
    ap.add_argument("--start-height", type=float, default=0.0, help="m; 0 = resting on the ground, motors off")
    ap.add_argument("--namespace", default=None, help="ROS 2 namespace of the topics (default: the transport table's)")
    ap.add_argument("--vehicle-id", default=None, help="obey only commands for this vehicle (default: the namespace)")
    ap.add_argument("--robot", default=str(DEFAULT_ROBOT), help="robot profile whose layout: the commands follow")
    ap.add_argument("--noise", choices=("mocap", "none"), default="mocap", help="measurement noise (RotorPy's mocap)")
    ap.add_argument("--delay-steps", type=int, default=1, help="measurement latency, control periods")
    ap.add_argument("--interface", choices=("rpm", "ctbr"), default="rpm", help="the command it takes (rpm only)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.interface != "rpm":
        ap.error("the foreign robots take command/motors (rpm) only; a ctbr policy needs a rate loop they lack")
    from deploy.loop import FixedRateLoop
    from deploy.msgs import String
    from deploy.transport import Ros2Node, TransportConfig

    vehicle = make_vehicle(args.sim, **({"model": args.model} if args.model else {}))
    transport = TransportConfig.from_mapping({"namespace": args.namespace} if args.namespace else None)
    dt = 1.0 / args.rate
    with Ros2Node("foreign_sil", namespace=transport.namespace) as node:
        robot = ForeignSilNode(
            node,
            transport,
            vehicle,
            measure_for(args.noise, args.rate, args.delay_steps, args.seed),
            robot_file=args.robot,
            start_height_m=args.start_height,
            vehicle_id=args.vehicle_id,
        )
        status = transport.topic("status")
        node.publisher(status.name, status.msg_type, status.qos).publish(String(f"foreign_sil {args.sim} ready"))
        log.info(
            "%s quadrotor (%.1f g, hover %.0f RPM, motors %s, body turned %.0f deg) on domain %d, %g Hz, %g s",
            args.sim,
            vehicle.mass_kg * 1e3,
            vehicle.hover_rpm(),
            robot.match.order,
            math.degrees(robot.match.yaw_rad),
            node.domain_id,
            args.rate,
            args.seconds,
        )

        def tick(now: float) -> None:
            robot.step(dt, now)

        stats = FixedRateLoop(args.rate).run(tick, duration_s=args.seconds)
        log.info("done: %s", stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
