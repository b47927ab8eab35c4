"""Deploy runtime latency: ONNX inference, control-loop jitter and deadline misses at 500 Hz and 1 kHz, DDS RTT.

The loop runs the runtime's real per-cycle work: observation from a robot state, onnxruntime inference, the
safety layer (armed, ACTIVE), a MotorCommand written to DDS and the MCAP recorder (observation, action and
command, as the runtime records them); each phase is timed on its own ("phases": p50, p99, max and the number
of cycles that spent more than 1 ms in it, to tell where a slow cycle went). The state is synthesised in
process (fresh every cycle) so that the measurement is the runtime's, not the simulator's.

    python benchmarks/deploy_latency.py [--policy policy.onnx] [--seconds 60] [--rates 500 1000]

Without --policy a freshly initialised hover actor is exported (inference cost does not depend on training).
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
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.loop import FixedRateLoop, sleep_until  # noqa: E402
from deploy.msgs import MotorCommand, make_header  # noqa: E402
from deploy.observation import Context, ObservationBuilder  # noqa: E402
from deploy.recording import FlightRecorder  # noqa: E402
from deploy.safety import CommonLimits, SafetyLayer, SafetyProfile, StateSample, crazyflie_profile  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from drivers.robot import RobotState  # noqa: E402
from policies.onnx_policy import load_policy  # noqa: E402


def fresh_policy(tmp: Path) -> Path:
    import torch

    from policies.export import export
    from policies.train import train
    from policies.train_cfg import train_cfg

    torch.set_num_threads(1)
    cfg = train_cfg("quadrotor-hover")
    cfg.num_envs, cfg.max_iterations, cfg.save_interval = 64, 1, 1
    train(cfg, tmp / "run", progress=False)
    return export(tmp / "run")["onnx"]


def inference(policy, n: int = 20000) -> dict:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, policy.obs_spec.dim)).astype(np.float32)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        policy(obs[i])
        times[i] = time.perf_counter() - t0
    return {
        "what": "inference",
        "calls": n,
        "p50_us": np.percentile(times, 50) * 1e6,
        "p99_us": np.percentile(times, 99) * 1e6,
        "max_us": times.max() * 1e6,
    }


#: Parts of one cycle, timed separately: where a slow cycle spent its time.
PHASES = ("state_safety_in", "observation", "inference", "safety_filter", "publish", "record")


def phase_summary(phases: dict[str, list[float]], slow_s: float) -> dict[str, dict[str, float]]:
    """Per phase: p50, p99, max (us) and how many cycles spent more than ``slow_s`` in it."""
    out = {}
    for name, values in phases.items():
        v = np.asarray(values)
        out[name] = {
            "p50_us": round(float(np.percentile(v, 50)) * 1e6, 1),
            "p99_us": round(float(np.percentile(v, 99)) * 1e6, 1),
            "max_us": round(float(v.max()) * 1e6, 1),
            f"over_{slow_s * 1e3:g}ms": int((v > slow_s).sum()),
        }
    return out


def miss_causes(stats) -> dict[str, int]:
    """Overrunning cycles by cause: started late (woken after the deadline by more than the cycle then took) or
    computed too long."""
    jitter, compute = np.asarray(stats.jitter), np.asarray(stats.compute)
    over = jitter + compute > stats.period_s
    return {
        "overruns_late_start": int((over & (jitter > compute)).sum()),
        "overruns_long_compute": int((over & (jitter <= compute)).sum()),
    }


def steal_ms() -> float:
    """CPU time the hypervisor gave to others while this VM's CPUs wanted to run (all CPUs, /proc/stat), ms."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


#: Cyclone DDS's own threads (receive, timed events, delivery, garbage collection, leases).
DDS_THREADS = ("recv", "recvUC", "recvMC", "tev", "dq.builtins", "dq.user", "gc", "lease")


def dds_config(priority: int | None) -> str:
    """The loopback Cyclone DDS XML; with ``priority``, its threads run under SCHED_FIFO at that priority."""
    if priority is None:
        return LOOPBACK_CONFIG
    threads = "".join(
        f'<Thread name="{name}"><Scheduling><Class>realtime</Class><Priority>{priority}</Priority></Scheduling>'
        "</Thread>"
        for name in DDS_THREADS
    )
    return LOOPBACK_CONFIG.replace("</Domain>", f"<Threads>{threads}</Threads></Domain>")


def loop(
    policy,
    rate: float,
    seconds: float,
    tmp: Path,
    realtime: int | None = None,
    slow_ms: float = 1.0,
    cpu: int | None = None,
    spin_s: float = 2e-4,
    dds_priority: int | None = None,
) -> dict:
    base = crazyflie_profile()
    profile = SafetyProfile(base.robot_class, CommonLimits(control_period_s=1.0 / rate), quadrotor=base.quadrotor)
    layer = SafetyLayer(profile)
    builder = ObservationBuilder(policy.obs_spec, 1.0 / policy.control_hz)
    transport = TransportConfig.from_mapping(None)
    domain = random.randint(1, 230)
    hover = np.full(4, 14468.0)

    def state(now: float) -> RobotState:
        return RobotState(
            now,
            np.array([0.0, 0.0, 1.0]),
            np.array([1.0, 0.0, 0.0, 0.0]),
            np.zeros(3),
            np.zeros(3),
            battery_fraction=0.9,
        )

    with (
        Ros2Node("bench", domain_id=domain, config=dds_config(dds_priority)) as node,
        FlightRecorder(tmp / f"loop{int(rate)}.mcap") as rec,
    ):
        topic = transport.topic("motor_command")
        pub = node.publisher(topic.name, MotorCommand, topic.qos)
        now = time.monotonic()
        s = state(now)
        layer.on_state(
            StateSample(s.stamp_s, s.position, s.linear_velocity, s.quaternion, s.angular_velocity, s.battery_fraction),
            now,
        )
        layer.heartbeat(now)
        assert layer.arm(now), layer.last_verdicts
        last = np.zeros(4, dtype=np.float32)

        phases = {name: [] for name in PHASES}
        clock = time.perf_counter

        def cycle(now: float) -> float:
            nonlocal last
            t0 = clock()
            s = state(now)
            layer.on_state(
                StateSample(
                    s.stamp_s, s.position, s.linear_velocity, s.quaternion, s.angular_velocity, s.battery_fraction
                ),
                now,
            )
            layer.heartbeat(now)
            t1 = clock()
            obs = builder.build(s, Context(np.array([0.0, 0.0, 1.0]), np.zeros(3), last))
            t2 = clock()
            action = policy(obs)
            t3 = clock()
            last = np.clip(policy.action_spec.to_normalized(action), -1, 1).astype(np.float32)
            cmd = layer.filter(np.clip(action, 0, None) if np.isfinite(action).all() else hover, now, t3 - t2)
            stamp = round(now * 1e9)
            msg = MotorCommand(make_header(stamp), [float(v) for v in cmd.values])
            t4 = clock()
            pub.publish(msg)
            t5 = clock()
            rec.write_observation(obs.tolist(), stamp)
            rec.write_action(last.tolist(), stamp)
            rec.write_command(msg, stamp)
            t6 = clock()
            for name, a, b in zip(PHASES, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6)):
                phases[name].append(b - a)
            return t3 - t2

        pin = {} if cpu is None else {"cpu": cpu}
        wait = {} if spin_s == 2e-4 else {"wait_until": lambda deadline: sleep_until(deadline, spin_s=spin_s)}
        steal = steal_ms()
        stats = FixedRateLoop(rate, realtime_priority=realtime, **pin, **wait).run(cycle, duration_s=seconds)
        steal = steal_ms() - steal
    s = stats.summary()
    keys = (
        "cycles",
        "jitter_p50_us",
        "jitter_p99_us",
        "jitter_max_us",
        "compute_p50_us",
        "compute_p99_us",
        "inference_p99_us",
        "deadline_misses",
        "skipped_cycles",
    )
    return {
        "what": "control_loop",
        "rate_hz": rate,
        "sched_fifo_priority": realtime,
        "cpu": cpu,
        "seconds": seconds,
        **{k: s[k] for k in keys},
        "spin_us": spin_s * 1e6,
        **miss_causes(stats),
        "steal_ms": steal,
        "dds_threads_fifo_priority": dds_priority,
        "final_state": layer.state.name,
        "phases": phase_summary(phases, slow_s=slow_ms * 1e-3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rates", type=float, nargs="+", default=[500.0, 1000.0])
    ap.add_argument("--realtime-priority", type=int, default=50, help="SCHED_FIFO priority of the loop; 0 = normal")
    ap.add_argument("--cpu", type=int, default=None, help="pin the loop's thread to this CPU")
    ap.add_argument(
        "--spin-us", type=float, default=200.0, help="busy-wait this long before each deadline instead of sleeping"
    )
    ap.add_argument(
        "--dds-priority", type=int, default=None, help="run Cyclone DDS's threads under SCHED_FIFO at this priority"
    )
    args = ap.parse_args()
    machine = f"{platform.machine()}, {platform.python_version()}"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        policy = load_policy(args.policy or fresh_policy(tmp))
        realtime = args.realtime_priority or None
        lines = [inference(policy)] + [
            loop(
                policy,
                r,
                args.seconds,
                tmp,
                realtime,
                cpu=args.cpu,
                spin_s=args.spin_us * 1e-6,
                dds_priority=args.dds_priority,
            )
            for r in args.rates
        ]
        rtt = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "dds_roundtrip.py")], capture_output=True, text=True, cwd=ROOT
        )
        for line in lines:
            print(
                json.dumps(
                    {k: round(v, 1) if isinstance(v, float) else v for k, v in {**line, "machine": machine}.items()}
                ),
                flush=True,
            )
        print(rtt.stdout.strip() or json.dumps({"what": "dds_roundtrip", "error": rtt.stderr[-300:]}), flush=True)


if __name__ == "__main__":
    main()
