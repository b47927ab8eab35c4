"""Fault response of the deploy runtime: for each injected fault, the time from the injection to the first safe
command, in control periods, over repeated flights; and the processes left behind.

Each run is a fresh `sim2real deploy --sil` flight of tests/data/hover_policy.onnx (the simulated Crazyflie in its
own process, real DDS on loopback, a random ROS_DOMAIN_ID) with a short plan; this process is the operator (20 Hz
heartbeat, then `arm`), and injects one fault while the vehicle climbs:

    estop          `true` x5 on safety/estop from another process (tests/deploy/_spoofer.py)  -> ESTOP
    spoof_far      a second writer's burst of poses 1000 m away (the spoofer)                  -> FALLBACK
    spoof_offset   a second writer republishing the true pose 0.5 m lower (the spoofer)       -> FALLBACK
    operator_lost  this process stops its heartbeat                                             -> FALLBACK
    sigterm        SIGTERM to the deploy process                                                -> FALLBACK (land)

Latency = the safety transition's time (the runtime's CLOCK_MONOTONIC, printed in its summary) minus the
injection time (CLOCK_MONOTONIC of the injecting process, same machine). The command of the cycle in which the
transition happens is already the safe one (the layer's filter returns it in that cycle), so this is the time to
the first safe command. For the spoofers the runtime sees the second writer at DDS discovery, which can come before
the first fake sample: a negative latency means "refused before the first fake arrived". For operator_lost the
design bound is the profile's max_heartbeat_age_s (0.5 s for the Crazyflie preset): reported as is and as the
excess over that bound.
Left behind: processes whose command line names the run's namespace after the deploy process ended.

    python benchmarks/fault_response.py [--runs 3] [--faults estop spoof_far ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.msgs import String, make_header  # noqa: E402
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig  # noqa: E402
from tests.deploy.test_fault_injection_dds import POLICY, left_behind, write_profile  # noqa: E402

FAULTS = ("estop", "spoof_far", "spoof_offset", "operator_lost", "sigterm")
PERIOD_S = 0.01  # the SIL profile's 100 Hz
EXPECTED = {"estop": "ESTOP", **dict.fromkeys(FAULTS[1:], "FALLBACK")}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class Operator:
    """This process as the operator: a heartbeat at 20 Hz, an `arm` once the runtime listens."""

    def __init__(self, node: Ros2Node, transport: TransportConfig):
        hb, cmd = transport.topic("operator_heartbeat"), transport.topic("operator_command")
        self.heartbeat = node.publisher(hb.name, hb.msg_type, hb.qos)
        self.command = node.publisher(cmd.name, cmd.msg_type, cmd.qos)
        self.beating, self.armed_sent = True, False

    def tick(self) -> None:
        if self.beating:
            self.heartbeat.publish(make_header(time.time_ns(), "benchmark"))
        if not self.armed_sent and self.command.matched_count > 0:
            self.command.publish(String("arm"))
            self.armed_sent = True


def heartbeat_limit_s(tmp: Path) -> float:
    """The profile's operator heartbeat limit (what operator_lost's latency is bounded by, by design)."""
    from deploy.profile import load_deploy_profile

    return load_deploy_profile(write_profile(tmp, "/limit")).safety.common.max_heartbeat_age_s


def one_run(fault: str, tmp: Path) -> dict:
    namespace, domain = f"/fr{random.randint(0, 10**6)}", random.randint(1, 230)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG, PYTHONUNBUFFERED="1")
    profile = write_profile(tmp, namespace, hover_s=3.0)
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(profile), "--policy", str(POLICY), "--sil"]
    cmd += ["--operator", "external", "--log", str(tmp / f"{namespace.strip('/')}.mcap")]
    deploy = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    transport = TransportConfig.from_mapping({"namespace": namespace})
    spoofer = None
    if fault in ("estop", "spoof_far", "spoof_offset"):
        mode = {"estop": "estop", "spoof_far": "far", "spoof_offset": "offset"}[fault]
        spoofer = subprocess.Popen(
            [sys.executable, "-m", "tests.deploy._spoofer", mode, namespace, "2.0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
    injected = None
    with Ros2Node("benchmark", namespace=namespace, domain_id=domain, config=LOOPBACK_CONFIG) as node:
        operator = Operator(node, transport)
        motors = transport.topic("motor_command")
        armed = node.subscription(motors.name, motors.msg_type, motors.qos)  # its writer appears at arming
        armed_at = None
        while deploy.poll() is None:
            operator.tick()
            now = time.monotonic()
            if armed_at is None and armed.matched_count > 0:
                armed_at = now
            if injected is None and armed_at is not None and now - armed_at > 2.0:
                if fault == "operator_lost":
                    operator.beating, injected = False, time.monotonic()
                elif fault == "sigterm":
                    deploy.send_signal(signal.SIGTERM)
                    injected = time.monotonic()
            time.sleep(0.05)
    out, _ = deploy.communicate(timeout=60)
    if spoofer is not None:
        text, _ = spoofer.communicate(timeout=30)
        injected = float(text.split("injected ")[1].split()[0]) if "injected " in text else None
    summary = json.loads(out[out.index("{") :]) if "{" in out else {"transitions": []}
    to = EXPECTED[fault]
    hit = [t for t in summary["transitions"] if f"-> {to}" in t]
    transition = float(hit[0].split("t=")[1].split("s")[0]) if hit else None
    time.sleep(1.0)  # children get SIGTERM when the deploy process ends; give them a moment
    return {
        "fault": fault,
        "latency_periods": None if transition is None or injected is None else (transition - injected) / PERIOD_S,
        "transition": hit[0] if hit else None,
        "left_behind": len(left_behind(namespace)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="flights per fault")
    ap.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    args = ap.parse_args(argv)
    cpu, totals = cpu_model(), []
    with TemporaryDirectory() as tmp:
        for fault in args.faults:
            runs = [one_run(fault, Path(tmp)) for _ in range(args.runs)]
            lat = np.array([r["latency_periods"] for r in runs if r["latency_periods"] is not None])
            line = {
                "fault": fault,
                "cpu": cpu,
                "runs": args.runs,
                "detected": int(lat.size),
                "p50_periods": float(np.percentile(lat, 50)) if lat.size else None,
                "p99_periods": float(np.percentile(lat, 99)) if lat.size else None,
                "max_periods": float(lat.max()) if lat.size else None,
                "left_behind": sum(r["left_behind"] for r in runs),
                "first_transition": next((r["transition"] for r in runs if r["transition"]), None),
            }
            if fault == "operator_lost" and lat.size:
                limit = heartbeat_limit_s(Path(tmp))
                line["heartbeat_limit_s"] = limit
                line["max_beyond_heartbeat_limit_periods"] = float(lat.max() - limit / PERIOD_S)
            print(json.dumps(line), flush=True)
            totals.append(line)
    worst = max((t["max_periods"] for t in totals if t["max_periods"] is not None and t["fault"] != "operator_lost"),
                default=None)  # fmt: skip
    print(json.dumps({"cpu": cpu, "worst_max_periods_except_operator_lost": worst,
                      "left_behind": sum(t["left_behind"] for t in totals),
                      "undetected": sum(t["runs"] - t["detected"] for t in totals)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
