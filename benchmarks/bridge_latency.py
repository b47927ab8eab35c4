"""State-in to command-out latency through the PX4 bridge, against the plain runtime, on one machine.

    .venv/bin/python benchmarks/bridge_latency.py [--seconds 20] [--configs plain bridge] [--policy policy.onnx]

Each configuration is a `sim2real deploy` runtime flying the exported hover policy (take-off, ``--seconds`` of
hover, landing) with an external operator that arms at once, every part a process on one random ROS_DOMAIN_ID
over the loopback Cyclone DDS configuration, as tests/drivers/test_px4_sil.py runs them:

- ``plain``: the runtime against the project's SIL robot (drivers.sim_robot): state in = ``state/pose``,
  command out = ``command/motors`` (MotorCommand).
- ``bridge``: the runtime + drivers.px4_bridge + drivers.fake_px4 (PX4 boot clock 5000 s off): state in =
  ``/fmu/out/vehicle_odometry``, command out = ``/fmu/in/actuator_motors`` (what PX4 would apply).

This process subscribes to the state-in and command-out topics (and, for ``bridge``, to the runtime's
``command/motors`` and the bridge's ``state/pose``) and stamps every sample on arrival with CLOCK_MONOTONIC
(``time.monotonic_ns`` in the node's callback thread). Both ends are seen through one DDS hop to this process, so
that hop's delay cancels to first order. What is measured, per command-out sample while the runtime flies the
policy (MotorCommand mode ``policy``):

- ``state_to_out`` (the state-in to command-out latency): arrival of the command-out sample minus the arrival of
  the state-in sample its cycle computed from. The runtime's MotorCommand header stamp is its cycle time
  (CLOCK_MONOTONIC), when it took the newest state on ``state/pose``; that state is taken as the newest
  ``state/pose`` arrival here before the stamp, and for ``bridge`` traced back to the VehicleOdometry it was
  converted from. ``plain``: sampling_phase + cycle_to_out; ``bridge``: bridge_state_forward + sampling_phase +
  cycle_to_out (which includes bridge_forward).
- ``state_age``: arrival of the command-out sample minus arrival of the newest state-in sample before it = the
  age of the newest state when the command reaches the vehicle. A state that arrived after the cycle but before
  the command makes it small: it is not the state the command came from.
- ``sampling_phase``: the cycle stamp minus the arrival of the newest ``state/pose`` before it: how long the
  state waited for the runtime's cycle. The runtime's loop runs at 100 Hz and samples the newest state at each
  cycle, unsynchronised with the robot's 100 Hz loop, so this is 0-10 ms and most of state_to_out. The two loops
  run on one clock, so the phase stays nearly fixed within a flight and differs from flight to flight.
- ``cycle_to_out``: arrival of the command-out sample minus the cycle stamp: the cycle's compute, the publish,
  the path out (and for ``bridge`` the bridge's forwarding), independent of the phase.
- ``bridge_forward`` (bridge only): ActuatorMotors arrival minus the arrival of the MotorCommand it was made
  from (matched by value: RPM -> throttle curve -> motor map), the bridge's own cost on the command path.
- ``bridge_state_forward`` (bridge only): ``state/pose`` arrival minus the arrival of the VehicleOdometry it was
  converted from (matched by position, NED -> ENU), the bridge's own cost on the state path.
- ``extra_cost``: bridge minus plain, p50 and p99 of state_to_out, state_age and cycle_to_out, the two
  configurations run one after the other in one invocation. The state_to_out and state_age differences are
  mostly the two flights' different sampling phases; the cycle_to_out difference (command path) plus
  bridge_state_forward (state path) is the bridge's true extra cost.

The arrival stamps are taken on one callback thread of this process: two samples taken in one wake-up can be
stamped out of order, by up to about a millisecond when this process is descheduled (hence a negative minimum
of bridge_state_forward).

One JSON line per configuration and quantity (ms), then the extra cost; each names the machine (CPU model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.msgs import MotorCommand, PoseStamped, time_to_ns  # noqa: E402
from deploy.msgs.px4 import ActuatorMotors, VehicleOdometry  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from drivers.px4_convert import ThrottleCurve, to_px4_controls  # noqa: E402
from drivers.px4_wire import DEFAULT_MOTOR_MAP, PX4_QOS  # noqa: E402

POLICY = ROOT / "tests" / "data" / "hover_policy.onnx"
RPM_MAX = 21702.0  # the Crazyflie's, the simulator's default vehicle
VEHICLE = "bench"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


MACHINE = f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs, Python {platform.python_version()}"


def dds_env(domain: int) -> dict[str, str]:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG, PYTHONUNBUFFERED="1")


def write_profile(tmp: Path, namespace: str, hover_s: float) -> Path:
    """The SIL profile of tests/drivers/test_px4_sil.py, for both configurations."""
    profile = {
        "name": "bridge_latency",
        "robot_class": "quadrotor",
        "control_hz": 100,
        "robot": str(ROOT / "launch" / "robots" / "crazyflie2.yaml"),
        "action": {"interface": "rpm", "names": ["m1", "m2", "m3", "m4"]},
        "transport": {"namespace": namespace},
        "vehicle_id": VEHICLE,
        "safety": {"preset": "crazyflie", "common": {"max_state_age_s": 0.25, "arming_duration_s": 2.0}},
        "plan": {"height_m": 0.6, "climb_rate_m_s": 0.6, "hover_s": hover_s, "descent_rate_m_s": 0.5},
        "recording": {"directory": str(tmp)},
    }
    path = tmp / f"{namespace.strip('/')}.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


class Recorder:
    """Arrival times (CLOCK_MONOTONIC ns) and samples of the subscribed topics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, list[tuple[int, object]]] = {}

    def callback(self, key: str):
        self.seen[key] = []

        def on(msg) -> None:
            t = time.monotonic_ns()
            with self.lock:
                self.seen[key].append((t, msg))

        return on


def stats_ms(values_ns) -> dict[str, float]:
    v = np.asarray(values_ns, dtype=float) / 1e6
    if v.size == 0:
        return {"count": 0}
    return {
        "count": int(v.size),
        "p50_ms": round(float(np.percentile(v, 50)), 3),
        "p90_ms": round(float(np.percentile(v, 90)), 3),
        "p99_ms": round(float(np.percentile(v, 99)), 3),
        "max_ms": round(float(v.max()), 3),
        "min_ms": round(float(v.min()), 3),
    }


def state_ages(state_t: list[int], out_t: list[int]) -> list[int]:
    """For each output arrival, its time minus the newest state arrival before it."""
    tin = np.asarray(state_t, dtype=np.int64)
    ages = []
    for t in out_t:
        i = int(np.searchsorted(tin, t, side="right")) - 1
        if i >= 0:
            ages.append(t - int(tin[i]))
    return ages


def stamp_ns(msg: MotorCommand) -> int:
    """The runtime's command stamp: the cycle time (CLOCK_MONOTONIC) at which it sampled the newest state."""
    return time_to_ns(msg.header.stamp)


def state_to_out(state_t: list[int], cycles: list[tuple[int, int]], origin_t: list[int] | None = None) -> list[int]:
    """For each (output arrival, cycle stamp): the output arrival minus the arrival of the newest runtime-side state
    (``state_t``) before the cycle stamp, the state that cycle computed its command from; with ``origin_t``
    (parallel to ``state_t``), minus the arrival of what that state was made from (the bridge's odometry)."""
    tin = np.asarray(state_t, dtype=np.int64)
    origin = tin if origin_t is None else np.asarray(origin_t, dtype=np.int64)
    out = []
    for t, c in cycles:
        i = int(np.searchsorted(tin, c, side="right")) - 1
        if i >= 0:
            out.append(t - int(origin[i]))
    return out


def controls_of(cmd: MotorCommand, curve: ThrottleCurve) -> np.ndarray:
    return np.asarray(to_px4_controls(curve.normalized(cmd.rpm), DEFAULT_MOTOR_MAP)[:4], dtype=np.float32)


def match_commands(commands, actuators, curve: ThrottleCurve):
    """(ActuatorMotors arrival, its MotorCommand's arrival, mode) for each ActuatorMotors whose values equal one
    of the 8 latest MotorCommands received before it (newest first)."""
    cmd_t = np.asarray([t for t, _ in commands], dtype=np.int64)
    cmd_controls = [controls_of(m, curve) for _, m in commands]
    pairs, unmatched = [], 0
    for t, msg in actuators:
        control = np.asarray(msg.control[:4], dtype=np.float32)
        i = int(np.searchsorted(cmd_t, t, side="right")) - 1
        for j in range(i, max(i - 8, -1), -1):
            if np.allclose(cmd_controls[j], control, rtol=1e-5, atol=1e-7):
                pairs.append((t, int(cmd_t[j]), commands[j][1].mode))
                break
        else:
            unmatched += 1
    return pairs, unmatched


def match_poses(odometry, poses):
    """(pose arrival, its VehicleOdometry's arrival) matched by position: NED (n, e, d) -> ENU (e, n, -d)."""
    by_position = {}
    for t, msg in odometry:
        n, e, d = (float(v) for v in msg.position)
        by_position.setdefault((e, n, -d), t)
    pairs = []
    for t, msg in poses:
        p = msg.pose.position
        t_odo = by_position.get((p.x, p.y, p.z))
        if t_odo is not None:
            pairs.append((t, t_odo))
    return pairs


def run_config(kind: str, seconds: float, policy: Path, tmp: Path) -> dict:
    domain = random.randint(1, 230)
    namespace = f"/lat{kind}{domain}"
    env = dds_env(domain)
    transport = TransportConfig.from_mapping({"namespace": namespace})
    rec = Recorder()
    procs: list[subprocess.Popen] = []
    py = sys.executable
    with Ros2Node("bench", domain_id=domain, config=LOOPBACK_CONFIG) as node:
        cmd_t, pose_t = transport.topic("motor_command"), transport.topic("pose")
        node.subscription(cmd_t.name, MotorCommand, cmd_t.qos, callback=rec.callback("command"))
        node.subscription(pose_t.name, PoseStamped, pose_t.qos, callback=rec.callback("pose"))
        if kind == "bridge":
            node.subscription("/fmu/out/vehicle_odometry", VehicleOdometry, PX4_QOS, callback=rec.callback("odometry"))
            node.subscription("/fmu/in/actuator_motors", ActuatorMotors, PX4_QOS, callback=rec.callback("actuators"))
        life = str(seconds + 120)
        try:
            if kind == "bridge":
                px4 = [py, "-m", "drivers.fake_px4", "--seconds", life, "--rpm-max", str(RPM_MAX)]
                procs.append(subprocess.Popen([*px4, "--clock-offset-s", "5000", "--seed", "3"], cwd=ROOT, env=env))
                bridge = [py, "-m", "drivers.px4_bridge", "--namespace", namespace, "--vehicle-id", VEHICLE]
                procs.append(
                    subprocess.Popen([*bridge, "--rpm-max", str(RPM_MAX), "--seconds", life], cwd=ROOT, env=env)
                )
            else:
                robot = [py, "-m", "drivers.sim_robot", "--seconds", life, "--namespace", namespace]
                procs.append(subprocess.Popen([*robot, "--vehicle-id", VEHICLE, "--seed", "3"], cwd=ROOT, env=env))
            operator = [py, "-m", "deploy.operator", "--namespace", namespace, "--script", "arm@0"]
            procs.append(
                subprocess.Popen(operator, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            deploy = [py, "sim2real.py", "deploy", "--profile", str(write_profile(tmp, namespace, seconds))]
            deploy += ["--policy", str(policy), "--operator", "external", "--log", str(tmp / f"{kind}.mcap")]
            run = subprocess.run(deploy, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120)
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        time.sleep(0.2)
        with rec.lock:
            seen = {k: list(v) for k, v in rec.seen.items()}
    out = run.stdout
    summary = json.loads(out[out.index("{") :]) if "{" in out else {}
    base = {
        "config": kind,
        "seconds": seconds,
        "flight": summary.get("end"),
        "hover_rms_m": round(summary.get("tracking", {}).get("hover_rms_m", float("nan")), 4),
        "loop_deadline_misses": summary.get("loop", {}).get("deadline_misses"),
    }
    if run.returncode != 0 or summary.get("end") != "plan complete":
        base["error"] = (run.stderr or "")[-500:]
    lines = []
    if kind == "plain":
        state = [t for t, _ in seen["pose"]]
        out_t = [t for t, m in seen["command"] if m.mode == "policy"]
        lines.append(
            {
                **base,
                "what": "state_age",
                "state_in": "state/pose",
                "command_out": "command/motors",
                **stats_ms(state_ages(state, out_t)),
            }
        )
        cycles = [(t, stamp_ns(m)) for t, m in seen["command"] if m.mode == "policy"]
        lines.insert(
            0,
            {
                **base,
                "what": "state_to_out",
                "state_in": "state/pose",
                "command_out": "command/motors",
                **stats_ms(state_to_out(state, cycles)),
            },
        )
        lines.append(
            {**base, "what": "cycle_to_out", "command_out": "command/motors", **stats_ms([t - c for t, c in cycles])}
        )
        lines.append(
            {
                **base,
                "what": "sampling_phase",
                "state_in": "state/pose",
                **stats_ms(state_ages(state, [c for _, c in cycles])),
            }
        )
    else:
        pairs, unmatched = match_commands(seen["command"], seen["actuators"], ThrottleCurve(RPM_MAX, 2.0))
        policy_pairs = [(t_act, t_cmd) for t_act, t_cmd, mode in pairs if mode == "policy"]
        state = [t for t, _ in seen["odometry"]]
        pose_pairs = match_poses(seen["odometry"], seen["pose"])  # in pose arrival order
        pose_t, odo_t = [p for p, _ in pose_pairs], [o for _, o in pose_pairs]
        lines.append(
            {
                **base,
                "what": "state_age",
                "state_in": "/fmu/out/vehicle_odometry",
                "command_out": "/fmu/in/actuator_motors",
                **stats_ms(state_ages(state, [t for t, _ in policy_pairs])),
            }
        )
        lines.append(
            {
                **base,
                "what": "bridge_forward",
                "from": "command/motors",
                "to": "/fmu/in/actuator_motors",
                "unmatched": unmatched,
                **stats_ms([a - c for a, c in policy_pairs]),
            }
        )
        stamps = {t: stamp_ns(m) for t, m in seen["command"]}
        lines.insert(
            0,
            {
                **base,
                "what": "state_to_out",
                "state_in": "/fmu/out/vehicle_odometry",
                "command_out": "/fmu/in/actuator_motors",
                **stats_ms(state_to_out(pose_t, [(t_act, stamps[t_cmd]) for t_act, t_cmd in policy_pairs], odo_t)),
            },
        )
        lines.append(
            {
                **base,
                "what": "cycle_to_out",
                "command_out": "/fmu/in/actuator_motors",
                **stats_ms([t_act - stamps[t_cmd] for t_act, t_cmd in policy_pairs]),
            }
        )
        lines.append(
            {
                **base,
                "what": "sampling_phase",
                "state_in": "state/pose",
                **stats_ms(state_ages(pose_t, [stamps[t_cmd] for _, t_cmd in policy_pairs])),
            }
        )
        lines.append(
            {
                **base,
                "what": "bridge_state_forward",
                "from": "/fmu/out/vehicle_odometry",
                "to": "state/pose",
                "unmatched": len(seen["pose"]) - len(pose_pairs),
                **stats_ms([p - o for p, o in pose_pairs]),
            }
        )
    return {"lines": lines}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="hover time of each flight, s")
    ap.add_argument("--configs", nargs="+", default=["plain", "bridge"], choices=["plain", "bridge"])
    ap.add_argument("--policy", type=Path, default=POLICY)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for kind in args.configs:
            results[kind] = run_config(kind, args.seconds, args.policy, Path(d))
            for line in results[kind]["lines"]:
                print(json.dumps({**line, "machine": MACHINE}), flush=True)
    if {"plain", "bridge"} <= results.keys():
        plain = {line["what"]: line for line in results["plain"]["lines"]}
        fwd = {line["what"]: line for line in results["bridge"]["lines"]}
        extra = {"what": "extra_cost", "of": "bridge minus plain"}
        for what in ("state_to_out", "state_age", "cycle_to_out"):
            for k in ("p50_ms", "p99_ms"):
                if k in plain[what] and k in fwd[what]:
                    extra[f"{what}_{k}"] = round(fwd[what][k] - plain[what][k], 3)
        if "p50_ms" in fwd.get("bridge_forward", {}) and "p50_ms" in fwd.get("bridge_state_forward", {}):
            extra["bridge_forwarding_p50_ms"] = round(
                fwd["bridge_forward"]["p50_ms"] + fwd["bridge_state_forward"]["p50_ms"], 3
            )
        print(json.dumps({**extra, "machine": MACHINE}), flush=True)


if __name__ == "__main__":
    main()
