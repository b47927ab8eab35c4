"""Fault response of the deploy runtime: for each injected fault, the time from the injection to the first safe
command, in control periods, over repeated flights; and the processes left behind.

Each run is a fresh `sim2real deploy --sil` flight of tests/data/hover_policy.onnx (the simulated Crazyflie in its
own process, real DDS on loopback, a random ROS_DOMAIN_ID) with a short plan (tests/deploy's write_profile), and
one fault injected about 2 s after arming:

    estop          `true` x5 on safety/estop from another process (tests/deploy/_spoofer.py estop)  -> ESTOP
    spoof_far      a second writer's burst of poses 1000 m away (the spoofer's far)                   -> FALLBACK
    spoof_offset   a second writer republishing the true pose 0.5 m lower (the spoofer's offset)     -> FALLBACK
    operator_lost  the operator process (`python -m deploy.operator --script arm@0 --heartbeat-stop-at T`,
                   the deploy run with `--operator external`) stops its heartbeat                      -> FALLBACK
    sigterm        SIGTERM to the deploy process                                                       -> FALLBACK

Latency = the runtime's first safety transition into ESTOP or FALLBACK (its CLOCK_MONOTONIC time, in the summary
JSON the deploy prints) minus the injection time (CLOCK_MONOTONIC of the injecting process, same machine), in
control periods (100 Hz: 10 ms). The command of the cycle in which the transition happens is already the safe one
(the safety layer's filter returns it in that cycle), so this is the time to the first safe command.

- Spoofers: the injection is the spoofer's first fake sample (it prints `injected <t>`). The runtime sees the
  second writer at DDS discovery, which can come before the first fake sample arrives: a negative latency means
  the runtime fell back before the first fake sample reached it.
- sigterm: the injection is taken just before os.kill in this process.
- operator_lost: the operator ticks its heartbeat at start + k/20 s and stops it at start + T, T = 4.025 s, i.e.
  25 ms after its last heartbeat. This process receives every heartbeat (stamped by the operator with its wall
  clock, mapped to CLOCK_MONOTONIC here), so the stop is estimated as the last heartbeat's send time + 25 ms
  (uncertainty: the operator's scheduling delay, a few ms on a busy machine; 1-2 tenths of a period). By design
  this fault is bounded by the profile's max_heartbeat_age_s (0.5 s = 50 periods for the Crazyflie preset),
  counted from the last heartbeat's arrival, so it is also reported as `beyond_limit`: transition time - (last
  heartbeat's arrival here + max_heartbeat_age_s), the runtime's own detection delay (target <= 1 period).
- Left behind: processes whose command line names the run's namespace, 1 s after the deploy process ended and
  this process reaped its own injectors (the deploy's SIL robot and scripted operator must be gone).

One JSON line per fault (naming the CPU model), then a summary line.

    .venv/bin/python benchmarks/fault_response.py [--runs 5] [--faults estop spoof_far ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bridge_latency import cpu_model  # noqa: E402
from deploy.msgs import Header, PoseStamped, time_to_ns  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from tests.deploy.test_fault_injection_dds import POLICY, dds_env, left_behind, write_profile  # noqa: E402

FAULTS = ("estop", "spoof_far", "spoof_offset", "operator_lost", "sigterm")
PERIOD_S = 0.01  # the SIL profile's 100 Hz
EXPECTED = {
    "estop": "-> ESTOP [operator",
    "spoof_far": "-> FALLBACK [input_integrity]",
    "spoof_offset": "-> FALLBACK [input_integrity]",
    "operator_lost": "-> FALLBACK [heartbeat]",
    "sigterm": "-> FALLBACK [runtime.signal]",
}
SPOOFER_MODE = {"estop": "estop", "spoof_far": "far", "spoof_offset": "offset"}
INJECT_AFTER_ARMING_S = 2.0
HEARTBEAT_HZ = 20.0  # deploy.operator's default rate
HEARTBEAT_STOP_S = 4.025  # operator start -> heartbeat stop: between two heartbeats, ~2 s after arming


def heartbeat_limit_s(tmp: Path) -> float:
    """The profile's operator heartbeat limit (what operator_lost's latency is bounded by, by design)."""
    from deploy.profile import load_deploy_profile

    return load_deploy_profile(write_profile(tmp, "/limit")).safety.common.max_heartbeat_age_s


def transition_time(text: str) -> float:
    return float(text.split("t=")[1].split("s")[0])


class Heartbeats:
    """Every operator heartbeat heard here: (arrival, send time from its stamp), both CLOCK_MONOTONIC seconds."""

    def __init__(self) -> None:
        self.lock, self.seen = threading.Lock(), []

    def __call__(self, msg: Header) -> None:
        arrived_ns, wall_ns = time.monotonic_ns(), time.time_ns()  # wall - monotonic offset, read together
        sent_ns = time_to_ns(msg.stamp) - (wall_ns - arrived_ns)
        with self.lock:
            self.seen.append((arrived_ns * 1e-9, sent_ns * 1e-9))

    def last(self) -> tuple[float, float] | None:
        with self.lock:
            return self.seen[-1] if self.seen else None


def one_run(fault: str, tmp: Path, limit_s: float) -> dict:
    namespace, domain = f"/fr{random.randint(0, 10**6)}", random.randint(1, 230)
    env = dds_env(domain)
    hover_s = 8.0 if fault == "operator_lost" else 3.0
    profile = write_profile(tmp, namespace, hover_s=hover_s)
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(profile), "--policy", str(POLICY), "--sil"]
    cmd += ["--log", str(tmp / f"{namespace.strip('/')}.mcap")]
    if fault == "operator_lost":
        cmd += ["--operator", "external"]
    out_path, err_path = tmp / f"{namespace.strip('/')}.out", tmp / f"{namespace.strip('/')}.err"
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        deploy = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out_f, stderr=err_f, text=True)
    injectors: list[subprocess.Popen] = []
    spoofer = None
    if fault in SPOOFER_MODE:
        spoofer = subprocess.Popen(
            [sys.executable, "-m", "tests.deploy._spoofer", SPOOFER_MODE[fault], namespace, str(INJECT_AFTER_ARMING_S)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        injectors.append(spoofer)
    injected, heartbeats = None, Heartbeats()
    transport = TransportConfig.from_mapping({"namespace": namespace})
    with Ros2Node("benchmark", namespace=namespace, domain_id=domain, config=LOOPBACK_CONFIG) as node:
        motors, pose, hb = (transport.topic(k) for k in ("motor_command", "pose", "operator_heartbeat"))
        armed = node.subscription(motors.name, motors.msg_type, motors.qos)  # its writer appears at arming
        robot = node.subscription(pose.name, PoseStamped, pose.qos)  # the SIL robot's writer: the deploy is up
        node.subscription(hb.name, Header, hb.qos, callback=heartbeats)
        armed_at = None
        while deploy.poll() is None:
            now = time.monotonic()
            if fault == "operator_lost" and not injectors and robot.matched_count > 0:
                operator = [sys.executable, "-m", "deploy.operator", "--namespace", namespace, "--script", "arm@0"]
                operator += ["--heartbeat-stop-at", str(HEARTBEAT_STOP_S), "--seconds", "60"]
                injectors.append(
                    subprocess.Popen(operator, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
            if armed_at is None and armed.matched_count > 0:
                armed_at = now
            if fault == "sigterm" and injected is None and armed_at is not None and now - armed_at > 2.0:
                injected = time.monotonic()
                os.kill(deploy.pid, signal.SIGTERM)
            time.sleep(0.01)
    summary_text = out_path.read_text()
    summary = json.loads(summary_text[summary_text.index("{") :]) if "{" in summary_text else {"transitions": []}
    if spoofer is not None:
        try:
            text, _ = spoofer.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # it never saw the runtime arm
            spoofer.kill()
            text, _ = spoofer.communicate()
        injected = float(text.split("injected ")[1].split()[0]) if "injected " in text else None
    for proc in injectors:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
    last_hb = heartbeats.last()
    if fault == "operator_lost" and last_hb is not None:
        # the stop is scheduled at start + T; the last heartbeat at start + floor(T * rate) / rate
        injected = last_hb[1] + (HEARTBEAT_STOP_S - math.floor(HEARTBEAT_STOP_S * HEARTBEAT_HZ) / HEARTBEAT_HZ)
    safe = [t for t in summary["transitions"] if "-> ESTOP" in t or "-> FALLBACK" in t]
    first = safe[0] if safe else None
    t_safe = transition_time(first) if first else None
    time.sleep(1.0)  # the deploy's children get SIGTERM when it ends: a moment to go
    result = {
        "fault": fault,
        "latency_periods": None if t_safe is None or injected is None else (t_safe - injected) / PERIOD_S,
        "transition": first,
        "expected": first is not None and EXPECTED[fault] in first,
        "exit_code": deploy.returncode,
        "left_behind": len(left_behind(namespace)),
    }
    if fault == "operator_lost":
        result["beyond_limit_periods"] = (
            None if t_safe is None or last_hb is None else (t_safe - last_hb[0] - limit_s) / PERIOD_S
        )
    if first is None:
        result["stderr_tail"] = err_path.read_text()[-1500:]
    return result


def stats(values: list[float | None]) -> dict:
    v = np.array([x for x in values if x is not None], dtype=float)
    if not v.size:
        return {"p50": None, "p99": None, "max": None, "min": None}
    return {
        "p50": round(float(np.percentile(v, 50)), 2),
        "p99": round(float(np.percentile(v, 99)), 2),
        "max": round(float(v.max()), 2),
        "min": round(float(v.min()), 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="flights per fault")
    ap.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    args = ap.parse_args(argv)
    cpu, lines = cpu_model(), []
    with TemporaryDirectory() as tmp:
        limit_s = heartbeat_limit_s(Path(tmp))
        for fault in args.faults:
            runs = [one_run(fault, Path(tmp), limit_s) for _ in range(args.runs)]
            lat = stats([r["latency_periods"] for r in runs])
            line = {
                "fault": fault,
                "cpu": cpu,
                "cpus": os.cpu_count(),
                "runs": args.runs,
                "detected": sum(r["latency_periods"] is not None for r in runs),
                "expected_transition": sum(r["expected"] for r in runs),
                **{f"{k}_periods": v for k, v in lat.items()},
                "left_behind": sum(r["left_behind"] for r in runs),
                "latencies_periods": [
                    None if r["latency_periods"] is None else round(r["latency_periods"], 2) for r in runs
                ],
                "exit_codes": [r["exit_code"] for r in runs],
                "transitions": sorted(
                    {r["transition"].split(": ")[0].split("s ", 1)[1] for r in runs if r["transition"]}
                ),
            }
            if fault == "operator_lost":
                line["heartbeat_limit_s"] = limit_s
                line.update(
                    {
                        f"beyond_limit_{k}_periods": v
                        for k, v in stats([r["beyond_limit_periods"] for r in runs]).items()
                    }
                )
            unexpected = [r for r in runs if not r["expected"]]
            if unexpected:
                line["unexpected"] = [
                    {k: r.get(k) for k in ("transition", "exit_code", "stderr_tail")} for r in unexpected
                ]
            print(json.dumps(line), flush=True)
            lines.append(line)
    bounded = [x["max_periods"] for x in lines if x["fault"] != "operator_lost" and x["max_periods"] is not None]
    hb = [x["beyond_limit_max_periods"] for x in lines if x["fault"] == "operator_lost"]
    print(
        json.dumps(
            {
                "summary": True,
                "cpu": cpu,
                "cpus": os.cpu_count(),
                "runs_per_fault": args.runs,
                "worst_max_periods_except_operator_lost": max(bounded, default=None),
                "operator_lost_max_beyond_heartbeat_limit_periods": hb[0] if hb else None,
                "left_behind": sum(x["left_behind"] for x in lines),
                "undetected": sum(x["runs"] - x["detected"] for x in lines),
                "unexpected_transition": sum(x["runs"] - x["expected_transition"] for x in lines),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
