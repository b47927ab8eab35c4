"""State-in to command-out latency through the MAVLink bridge, on one machine.

    .venv/bin/python benchmarks/mavlink_latency.py [--seconds 20] [--autopilots px4 ardupilot]

Per autopilot: drivers.fake_mavlink (the simulator behind a MAVLink link; PX4: ODOMETRY, boot clock 5000 s off;
ArduPilot: ATTITUDE_QUATERNION + LOCAL_POSITION_NED) and drivers.mavlink_bridge (with launch/mavlink_<autopilot>_
bridge.yaml), each a process; the link between them, MAVLink 2 over UDP loopback, runs through a relay in this
process, which stamps every datagram on arrival (CLOCK_MONOTONIC) where the flight controller's serial port would
be, forwards it at once, then parses it. This process also stands in for the runtime on one random ROS_DOMAIN_ID
(loopback Cyclone DDS): for every ``state/pose`` it computes a RateThrustCommand at once (height PD -> thrust,
attitude -> rates; no sampling phase: the runtime's 100 Hz cycle adds 0-10 ms to state_to_out, see
benchmarks/bridge_latency.py) and publishes it. Arming as the runtime does (``arming`` for 2 s), a 1 s climb to
0.5 m, ``--seconds`` of hover (``hover_rms_m``: height error after 2 s), ``fallback``. What is measured, per command while the stand-in flies (``policy``):

- ``state_to_out``: arrival at the relay of the SET_ATTITUDE_TARGET minus arrival at the relay of the state message
  its command was computed from (ODOMETRY, or LOCAL_POSITION_NED, which the bridge publishes on): the latency the
  bridge puts between the autopilot's state and its setpoint, with a zero-time runtime.
  = bridge_state_forward + standin_compute + bridge_command_forward.
- ``bridge_state_forward``: arrival of ``state/pose`` at the stand-in minus the relay arrival of its state message
  (matched by position, NED -> ENU): UDP in, parse, convert, DDS out and in.
- ``bridge_command_forward``: relay arrival of SET_ATTITUDE_TARGET minus the stand-in's publish of the
  RateThrustCommand (matched by value: thrust N -> normalized): DDS in, convert, MAVLink out, UDP.
- ``standin_compute``: publish minus pose arrival, this process's own share.

All stamps come from this process (relay thread and DDS callback thread), which shares the 2 CPUs with the fake's
simulator and the bridge: its own scheduling is in the tails. One JSON line per autopilot and quantity (ms).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bridge_latency import MACHINE, dds_env, stats_ms  # noqa: E402
from deploy.msgs import PoseStamped, RateThrustCommand, TwistStamped, Vector3, make_header  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from drivers.mavlink_convert import attitude_target  # noqa: E402
from drivers.mavlink_wire import mavlink  # noqa: E402
from drivers.px4_convert import ThrottleCurve  # noqa: E402

RPM_MAX, KF, MASS, G = 21702.0, 3.16e-10, 0.027, 9.81  # the Crazyflie, launch/mavlink_*_bridge.yaml
STATE_IN = {"px4": "ODOMETRY", "ardupilot": "LOCAL_POSITION_NED"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """UDP between the fake (udpout to ``fake_port``) and the bridge (udpin on ``bridge_port``): forwards each
    datagram, then stamps and parses it. ``state``: (arrival ns, ENU position) of each state-in message;
    ``setpoints``: (arrival ns, float32 thrust) of each SET_ATTITUDE_TARGET."""

    def __init__(self, fake_port: int, bridge_port: int, state_in: str) -> None:
        self.a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.a.bind(("127.0.0.1", fake_port))
        self.b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.bridge = ("127.0.0.1", bridge_port)
        self.fake_addr = None
        self.state_in = state_in
        self.state: list[tuple[int, tuple[float, float, float]]] = []
        self.setpoints: list[tuple[int, np.float32]] = []
        self._up, self._down = mavlink.MAVLink(None), mavlink.MAVLink(None)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.a, self.b], [], [], 0.1)
            for sock in ready:
                data, addr = sock.recvfrom(65536)
                t = time.monotonic_ns()
                if sock is self.a:
                    self.fake_addr = addr
                    self.b.sendto(data, self.bridge)
                    for msg in self._up.parse_buffer(data) or ():
                        if msg.get_type() == self.state_in:
                            self.state.append((t, (float(msg.y), float(msg.x), -float(msg.z))))
                else:
                    if self.fake_addr is not None:
                        self.a.sendto(data, self.fake_addr)
                    for msg in self._down.parse_buffer(data) or ():
                        if msg.get_type() == "SET_ATTITUDE_TARGET":
                            self.setpoints.append((t, np.float32(msg.thrust)))

    def close(self) -> None:
        self._stop.set()
        self.thread.join(1.0)
        self.a.close()
        self.b.close()


class StandIn:
    """The runtime, reduced to its reaction: a command for every pose, at once, from the pose's callback."""

    def __init__(self, node: Ros2Node, transport: TransportConfig) -> None:
        t_pose, t_twist, t_cmd = (transport.topic(k) for k in ("pose", "twist", "rate_command"))
        self.twists = node.subscription(t_twist.name, TwistStamped, t_twist.qos)
        self.pub = node.publisher(t_cmd.name, RateThrustCommand, t_cmd.qos)
        self.mode, self.start, self.curve = "idle", 0.0, ThrottleCurve(RPM_MAX)
        self.records: list[tuple[int, int, tuple[float, float, float], np.float32, float]] = []  # (.., t s)
        node.subscription(t_pose.name, PoseStamped, t_pose.qos, callback=self._on_pose)

    def send(self, mode: str, thrust: float = 0.01, rates=(0.0, 0.0, 0.0)) -> None:
        self.pub.publish(RateThrustCommand(make_header(time.time_ns()), thrust, Vector3(*rates), "bench", mode))

    def _on_pose(self, msg: PoseStamped) -> None:
        arrival = time.monotonic_ns()
        twist = self.twists.latest()
        if self.mode != "policy" or twist is None:
            return
        p, o, v = msg.pose.position, msg.pose.orientation, twist.twist.linear
        t = time.monotonic() - self.start
        z_ref, vz_ref = (0.5 * t, 0.5) if t < 1.0 else (0.5, 0.0)
        thrust = MASS * (G + 25.0 * (z_ref - p.z) + 10.0 * (vz_ref - v.z))
        roll = math.atan2(2 * (o.w * o.x + o.y * o.z), 1 - 2 * (o.x * o.x + o.y * o.y))
        pitch = math.asin(max(-1.0, min(1.0, 2 * (o.w * o.y - o.z * o.x))))
        rates = (-8.0 * roll - 0.05 * v.y, -8.0 * pitch + 0.05 * v.x, 0.0)
        self.send("policy", thrust, rates)
        sent = time.monotonic_ns()
        u = np.float32(attitude_target(float(np.float32(thrust)), rates, KF, self.curve)[1])
        self.records.append((arrival, sent, (p.x, p.y, p.z), u, t))


def fly(autopilot: str, seconds: float) -> dict:
    domain, fake_port, bridge_port = random.randint(1, 230), free_udp_port(), free_udp_port()
    namespace = f"/mavlat{domain}"
    env, py = dds_env(domain), sys.executable
    relay = Relay(fake_port, bridge_port, STATE_IN[autopilot])
    config = ROOT / "launch" / f"mavlink_{autopilot}_bridge.yaml"
    life = str(seconds + 60)
    fake = [py, "-m", "drivers.fake_mavlink", "--autopilot", autopilot, "--connection", f"udpout:127.0.0.1:{fake_port}"]
    fake += ["--config", str(config), "--seconds", life, "--seed", "3", "--clock-offset-s", "5000"]
    bridge = [py, "-m", "drivers.mavlink_bridge", "--namespace", namespace, "--vehicle-id", "bench", "--config"]
    bridge += [str(config), "--connection", f"udpin:127.0.0.1:{bridge_port}", "--seconds", life]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL) for cmd in (fake, bridge)]
    try:
        with Ros2Node("bench", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            standin = StandIn(node, TransportConfig.from_mapping({"namespace": namespace}))
            if not standin.pub.wait_for_subscribers(1, 30.0):
                raise RuntimeError("the bridge did not come up")
            time.sleep(3.0)  # the fake's simulator starts, the state flows
            for mode, duration in (("arming", 2.0), ("policy", 1.0 + seconds), ("fallback", 4.0)):
                standin.mode, standin.start = mode, time.monotonic()
                while time.monotonic() - standin.start < duration:
                    if mode != "policy":
                        standin.send(mode, MASS * G if mode == "fallback" else 0.01)
                    time.sleep(0.01)
            records = list(standin.records)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        relay.close()
    return measure(autopilot, seconds, relay, records)


def measure(autopilot: str, seconds: float, relay: Relay, records) -> dict:
    state_at = {}
    for t, pos in relay.state:
        state_at.setdefault(pos, t)
    setpoint_at = {}
    for t, u in relay.setpoints:
        setpoint_at.setdefault(u, []).append(t)
    state_fwd, cmd_fwd, compute, to_out, unmatched = [], [], [], [], 0
    for arrival, sent, pos, u, _ in records:
        t_state = state_at.get(pos)
        t_out = next((t for t in setpoint_at.get(u, ()) if t >= sent), None)
        if t_state is None or t_out is None:
            unmatched += 1
            continue
        state_fwd.append(arrival - t_state)
        compute.append(sent - arrival)
        cmd_fwd.append(t_out - sent)
        to_out.append(t_out - t_state)
    hover = np.array([pos[2] - 0.5 for _, _, pos, _, t in records if t > 2.0])
    rms = round(float(np.sqrt(np.mean(hover**2))), 4) if hover.size else None
    base = {"autopilot": autopilot, "seconds": seconds, "hover_rms_m": rms, "commands": len(records)}
    base["unmatched"] = unmatched
    base["state_in"], base["command_out"] = STATE_IN[autopilot], "SET_ATTITUDE_TARGET"
    return {
        what: {**base, "what": what, **stats_ms(values)}
        for what, values in (
            ("state_to_out", to_out),
            ("bridge_state_forward", state_fwd),
            ("standin_compute", compute),
            ("bridge_command_forward", cmd_fwd),
        )
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="hover time of each flight, s")
    ap.add_argument("--autopilots", nargs="+", default=["px4", "ardupilot"], choices=["px4", "ardupilot"])
    args = ap.parse_args()
    for autopilot in args.autopilots:
        for line in fly(autopilot, args.seconds).values():
            print(json.dumps({**line, "machine": MACHINE}), flush=True)


if __name__ == "__main__":
    main()
