"""State-in to command-out latency through the Crazyflie bridge, on one machine.

    .venv/bin/python benchmarks/crazyflie_latency.py [--seconds 20]

drivers.fake_crazyflie (the simulator behind CRTP over UDP, ``--port 0``, boot clock 7000 s off) and
drivers.crazyflie_bridge (cflib's own UDP driver, ``udp://127.0.0.1:PORT``), both with launch/crazyflie_bridge.yaml,
each a process, as tests/drivers/test_crazyflie_sil.py starts them. The radio link between them (one CRTP packet
per datagram) runs through a relay in this process, which stamps every datagram on arrival (CLOCK_MONOTONIC) where
the Crazyradio would be, forwards it at once, then parses it with drivers/crazyflie_wire.py: log data (port 5,
channel 2) of the 22-byte state block (crazyflie_convert.STATE_VARIABLES) is the state in, the RPYT setpoint
(port 3, channel 0) is the command out. This process also stands in for the runtime on one random ROS_DOMAIN_ID
(loopback Cyclone DDS): for every ``state/pose`` it computes a RateThrustCommand at once (the controller of
benchmarks/mavlink_latency.py; no sampling phase: the runtime's 100 Hz cycle adds 0-10 ms to state_to_out, see
benchmarks/bridge_latency.py) and publishes it. Arming as the runtime does (``arming``, minimum thrust, for 2 s),
a 1 s climb to 0.5 m, ``--seconds`` of hover (``hover_rms_m``: height error after 2 s), ``fallback`` (the
Crazyflie's own land). Per command while the stand-in flies (``policy``):

- ``state_to_out``: relay arrival of the RPYT setpoint minus relay arrival of the log packet its command was
  computed from: the latency the bridge and cflib put between the Crazyflie's state and its setpoint, with a
  zero-time runtime. = bridge_state_forward + standin_compute + bridge_command_forward.
- ``bridge_state_forward``: arrival of ``state/pose`` at the stand-in minus the relay arrival of its log packet:
  UDP in, cflib's receive thread and queue, log decode, conversion, DDS out and in.
- ``bridge_command_forward``: relay arrival of the setpoint minus the stand-in's publish of the RateThrustCommand:
  DDS in, newtons -> PWM, cflib ``send_setpoint``, UDP.
- ``standin_compute``: publish minus pose arrival, this process's own share.

Matching. A pose is traced to its log packet by value: the position in mm (int16 on the wire; the pose's metres
times 1000, rounded) and the decompressed quaternion (the bridge's own crazyflie_wire.quat_decompress, so the
doubles are equal), taking the latest such packet that arrived before the pose. A command is traced to its
setpoint by its bytes: the stand-in packs what the bridge must send (float32 thrust -> thrust_to_command,
rates_to_rpyt, cflib's ``<fffH`` with pitch negated) and takes the first setpoint with those bytes that arrived
after its publish. The bridge repeats the last setpoint every 0.1 s as a keep-alive while no new command comes:
a setpoint whose bytes equal the previous setpoint's is such a repeat (as are arming's identical setpoints), counted
(``setpoint_repeats``) and left out of the matching; a setpoint more than 0.1 s after the publish is not taken.
A command whose bytes equal the one before it (quantized state, steady hover) goes out as a "repeat": it counts
as ``unmatched_setpoint``; a pose without its log packet as ``unmatched_state``. Both are left out.

All stamps come from this process (relay thread and DDS callback thread), which shares the CPUs with the fake's
simulator and the bridge: its own scheduling is in the tails. One JSON line per quantity (ms).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bridge_latency import MACHINE, dds_env, stats_ms  # noqa: E402
from deploy.msgs import PoseStamped, RateThrustCommand, TwistStamped, Vector3, make_header  # noqa: E402
from deploy.state_wire import world_velocity  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from drivers import crazyflie_wire as wire  # noqa: E402
from drivers.crazyflie_convert import load_thrust_curve, rates_to_rpyt, thrust_to_command  # noqa: E402

MASS, G = 0.027, 9.81  # the Crazyflie 2.0 of launch/robots/crazyflie2.yaml
KEEPALIVE_NS = 100_000_000  # the bridge's keep-alive period
OPTIONS = ROOT / "launch" / "crazyflie_bridge.yaml"
STATE_BLOCK = struct.Struct("<hhhhhhIhhh")  # STATE_VARIABLES as on the wire, 22 bytes
CURVE = load_thrust_curve(OPTIONS)


def state_key(x_mm: int, y_mm: int, z_mm: int, q_xyzw) -> tuple:
    return (x_mm, y_mm, z_mm, *(float(v) for v in q_xyzw))


class Relay:
    """UDP between the bridge (cflib, connected to this relay's ``port``) and the fake on ``fake_port``: forwards
    each datagram, then stamps and parses it. ``state``: state key -> arrival ns of each state-block packet;
    ``setpoints``: RPYT data bytes -> arrival ns, repeats left out (``repeats`` counts them)."""

    def __init__(self, fake_port: int) -> None:
        self.a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.a.bind(("127.0.0.1", 0))
        self.port = self.a.getsockname()[1]
        self.b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.b.bind(("127.0.0.1", 0))
        self.fake, self.bridge_addr = ("127.0.0.1", fake_port), None
        self.state: dict[tuple, list[int]] = {}
        self.setpoints: dict[bytes, list[int]] = {}
        self.repeats, self._last = 0, None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.a, self.b], [], [], 0.1)
            for sock in ready:
                raw, addr = sock.recvfrom(256)
                t = time.monotonic_ns()
                if not raw:
                    continue
                port, channel = wire.split_header(raw[0])
                if sock is self.b:  # Crazyflie -> bridge
                    if self.bridge_addr is not None:
                        self.a.sendto(raw, self.bridge_addr)
                    if port == wire.PORT_LOG and channel == wire.LOG_CH_DATA:
                        _, _, payload = wire.decode_log_data(raw[1:])
                        if len(payload) == STATE_BLOCK.size:
                            x, y, z, _, _, _, quat, _, _, _ = STATE_BLOCK.unpack(payload)
                            key = state_key(x, y, z, wire.quat_decompress(quat))
                            self.state.setdefault(key, []).append(t)
                else:  # bridge -> Crazyflie
                    self.bridge_addr = addr
                    self.b.sendto(raw, self.fake)
                    if port == wire.PORT_SETPOINT and channel == 0:
                        data = bytes(raw[1:])
                        if data == self._last:
                            self.repeats += 1
                        else:
                            self.setpoints.setdefault(data, []).append(t)
                        self._last = data

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
        self.mode, self.start, self.poses = "idle", 0.0, 0
        self.records: list[tuple[int, int, tuple, bytes, float, float]] = []  # (.., z m, t s)
        node.subscription(t_pose.name, PoseStamped, t_pose.qos, callback=self._on_pose)

    def send(self, mode: str, thrust: float = 0.11, rates=(0.0, 0.0, 0.0)) -> None:
        self.pub.publish(RateThrustCommand(make_header(time.time_ns()), thrust, Vector3(*rates), "bench", mode))

    def _on_pose(self, msg: PoseStamped) -> None:
        arrival = time.monotonic_ns()
        self.poses += 1
        twist = self.twists.latest()
        if self.mode != "policy" or twist is None:
            return
        p, o = msg.pose.position, msg.pose.orientation
        v = Vector3(*world_velocity(np.array([o.w, o.x, o.y, o.z]), twist)[0])  # the twist is in the body frame
        t = time.monotonic() - self.start
        z_ref, vz_ref = (0.5 * t, 0.5) if t < 1.0 else (0.5, 0.0)
        thrust = MASS * (G + 25.0 * (z_ref - p.z) + 10.0 * (vz_ref - v.z))
        roll = math.atan2(2 * (o.w * o.x + o.y * o.z), 1 - 2 * (o.x * o.x + o.y * o.y))
        pitch = math.asin(max(-1.0, min(1.0, 2 * (o.w * o.y - o.z * o.x))))
        rates = (-8.0 * roll - 0.05 * v.y, -8.0 * pitch + 0.05 * v.x, 0.0)
        self.send("policy", thrust, rates)
        sent = time.monotonic_ns()
        r, q, y = rates_to_rpyt(rates)
        setpoint = wire.RPYT.pack(r, -q, y, thrust_to_command(float(np.float32(thrust)), CURVE))
        key = state_key(*(round(c * 1000.0) for c in (p.x, p.y, p.z)), (o.x, o.y, o.z, o.w))
        self.records.append((arrival, sent, key, setpoint, p.z, t))


def start_fake(env: dict, life: str) -> tuple[subprocess.Popen, int]:
    """The fake Crazyflie on a free port; returns it and the port it logged (its log drained by a thread)."""
    cmd = [sys.executable, "-m", "drivers.fake_crazyflie", "--port", "0", "--config", str(OPTIONS)]
    cmd += ["--seconds", life, "--seed", "3", "--clock-offset-s", "7000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    while (line := proc.stderr.readline()) or proc.poll() is None:
        lines.append(line)
        if "fake Crazyflie on udp://127.0.0.1:" in line:
            threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()
            return proc, int(line.split("udp://127.0.0.1:")[1].split(",")[0])
    raise RuntimeError(f"the fake Crazyflie did not start: {''.join(lines)[-2000:]}")


def fly(seconds: float) -> dict:
    domain = random.randint(1, 230)
    namespace, env, life = f"/cflat{domain}", dds_env(domain), str(seconds + 90)
    fake, fake_port = start_fake(env, life)
    relay = Relay(fake_port)
    bridge_log = tempfile.TemporaryFile("w+")
    cmd = [sys.executable, "-m", "drivers.crazyflie_bridge", "--uri", f"udp://127.0.0.1:{relay.port}"]
    cmd += ["--namespace", namespace, "--vehicle-id", "bench", "--config", str(OPTIONS), "--seconds", life]
    bridge = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=bridge_log, text=True)
    try:
        with Ros2Node("bench", domain_id=domain, config=LOOPBACK_CONFIG) as node:
            standin = StandIn(node, TransportConfig.from_mapping({"namespace": namespace}))
            deadline = time.monotonic() + 60.0
            while standin.poses < 100 or standin.twists.latest() is None:  # connected, the state flows
                if time.monotonic() > deadline or bridge.poll() is not None:
                    bridge_log.seek(0)
                    raise RuntimeError(f"the bridge did not come up: {bridge_log.read()[-2000:]}")
                time.sleep(0.1)
            for mode, duration in (("arming", 2.0), ("policy", 1.0 + seconds), ("fallback", 4.0)):
                standin.mode, standin.start = mode, time.monotonic()
                while time.monotonic() - standin.start < duration:
                    if mode != "policy":
                        standin.send(mode, MASS * G if mode == "fallback" else 0.11)
                    time.sleep(0.01)
            records = list(standin.records)
    finally:
        for p in (bridge, fake):  # the bridge first: it restores the parameters through the link
            p.terminate()
            p.wait(15)
        relay.close()
        bridge_log.close()
    return measure(seconds, relay, records)


def measure(seconds: float, relay: Relay, records) -> dict:
    state_fwd, cmd_fwd, compute, to_out, unmatched = [], [], [], [], [0, 0]
    for arrival, sent, key, setpoint, _, _ in records:
        t_state = max((t for t in relay.state.get(key, ()) if t <= arrival), default=None)
        t_out = next((t for t in relay.setpoints.get(setpoint, ()) if 0 <= t - sent < KEEPALIVE_NS), None)
        if t_state is None or t_out is None:
            unmatched[0 if t_state is None else 1] += 1
            continue
        state_fwd.append(arrival - t_state)
        compute.append(sent - arrival)
        cmd_fwd.append(t_out - sent)
        to_out.append(t_out - t_state)
    hover = np.array([z - 0.5 for *_, z, t in records if t > 2.0])
    rms = round(float(np.sqrt(np.mean(hover**2))), 4) if hover.size else None
    base = {"bridge": "crazyflie", "seconds": seconds, "hover_rms_m": rms, "commands": len(records)}
    base.update(unmatched_state=unmatched[0], unmatched_setpoint=unmatched[1], setpoint_repeats=relay.repeats)
    base.update(state_in="log data, state block (port 5 ch 2)", command_out="RPYT setpoint (port 3 ch 0)")
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
    ap.add_argument("--seconds", type=float, default=20.0, help="hover time of the flight, s")
    args = ap.parse_args()
    for line in fly(args.seconds).values():
        print(json.dumps({**line, "machine": MACHINE}), flush=True)


if __name__ == "__main__":
    main()
