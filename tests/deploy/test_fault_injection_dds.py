"""Fault injection over real DDS between processes: `sim2real deploy --sil` flies the exported hover policy
(tests/data/hover_policy.onnx) against the simulated robot while another process attacks it, or the deploy
process itself is killed, starved of disk or told to stop. Every case asserts its outcome in numbers."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from deploy.recording import read_log
from deploy.transport import LOOPBACK_CONFIG
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "data" / "hover_policy.onnx"
HISTORY_POLICY = ROOT / "tests" / "data" / "hover_policy_history.onnx"
GEOFENCE_M = 2.0  # the crazyflie preset's radius


def write_profile(tmp_path: Path, namespace: str, **plan) -> Path:
    profile = {
        "name": f"fault_{namespace.strip('/')}",
        "robot_class": "quadrotor",
        "control_hz": 100,
        "robot": str(ROOT / "launch" / "robots" / "crazyflie2.yaml"),
        "action": {"interface": "rpm", "names": ["m1", "m2", "m3", "m4"]},
        "transport": {"namespace": namespace},
        "safety": {"preset": "crazyflie", "common": {"max_state_age_s": 0.25}},
        "plan": {"height_m": 0.6, "climb_rate_m_s": 0.6, "hover_s": 3.0, "descent_rate_m_s": 0.5, **plan},
        "recording": {"directory": str(tmp_path)},
        "sil": {"seed": 3, "start_height_m": 0.0},
    }
    path = tmp_path / f"{namespace.strip('/')}.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def dds_env(domain: int) -> dict[str, str]:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG, PYTHONUNBUFFERED="1")


def deploy(profile: Path, log: Path, env: dict, *extra: str, preexec=None, policy: Path = POLICY) -> subprocess.Popen:
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(profile), "--policy", str(policy)]
    cmd += ["--sil", "--log", str(log), *extra]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec
    )


def finish(proc: subprocess.Popen, timeout: float = 90.0) -> tuple[int, dict, str]:
    """The deploy's exit status, JSON summary and stderr; its transitions, end and stderr's tail are printed (shown
    whole by pytest when the test fails: an assertion message of the summary is cut short)."""
    out, err = proc.communicate(timeout=timeout)
    summary = json.loads(out[out.index("{") :]) if "{" in out else {}
    print("exit", proc.returncode, *summary.get("transitions", []), summary.get("end"), sep="\n")
    print(err[-4000:], file=sys.stderr)
    return proc.returncode, summary, err


def spoof(mode: str, namespace: str, env: dict, delay_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.deploy._spoofer", mode, namespace, str(delay_s)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def injected_at(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return float(out.split("injected ")[1].split()[0])


def poses(log_path: Path, namespace: str) -> np.ndarray:
    """(n, 4) recorded state poses: log time (ROS time) on this computer's monotonic clock s, x, y, z."""
    from deploy.runtime.clock import ros_minus_monotonic_ns

    log, offset_ns = read_log(log_path), ros_minus_monotonic_ns()
    rows = [
        ((m.log_time_ns - offset_ns) * 1e-9, m.msg.pose.position.x, m.msg.pose.position.y, m.msg.pose.position.z)
        for m in log.messages
        if m.topic == f"{namespace}/state/pose"
    ]
    return np.array(rows)


def left_behind(namespace: str) -> list[str]:
    """Processes still running whose command line names this test's namespace (SIL robot, operator)."""
    out = subprocess.run(["pgrep", "-af", namespace], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def ns() -> str:
    return f"/fi{random.randint(0, 1_000_000)}"


def test_spoof_burst_far_away_lands_inside_the_geofence(tmp_path):
    namespace, domain = ns(), random_domain()
    env = dds_env(domain)
    log = tmp_path / "run.mcap"
    proc = deploy(write_profile(tmp_path, namespace), log, env)
    spoofer = spoof("far", namespace, env, delay_s=2.0)  # after the arming: climbing
    t_inject = injected_at(spoofer)
    code, summary, err = finish(proc)
    transitions = summary["transitions"]
    assert any("FALLBACK [input_integrity]" in t and "2 writers" in t for t in transitions), (transitions, err[-2000:])
    assert "ESTOP" not in " ".join(transitions)
    assert "FALLBACK -> DISARMED [fallback]" in transitions[-1]
    track = poses(log, namespace)
    after = track[track[:, 0] > t_inject]
    assert np.hypot(after[:, 1], after[:, 2]).max() < GEOFENCE_M  # never flew towards the fake
    # the position-trusted fallback (the subscriptions are pinned at arming, so the position stays trusted) holds where
    # the fault came, in the climb, on this imperfect vehicle (thrust x1.14-1.18 of the profile's, learnt in 0.7-1 s
    # of flight; motor lead; torque observer: docs/safety.md), then descends and lands below it. Measured in 3
    # flights: lost 0.01-0.12 m in the 1 s hold, landed 0.04-0.05 m from the fault point. Before (session 19): sank
    # to the floor in 1-1.8 s and landed 0.3-0.45 m away.
    hold = after[after[:, 0] < after[0, 0] + 1.0]
    assert hold[:, 3].min() > after[0, 3] - 0.2, (after[0], hold[:, 3].min())
    assert after[-1, 3] < 0.1 and np.hypot(*(after[-1, 1:3] - after[0, 1:3])) < 0.2, (after[0], after[-1])
    # the log records the state through the FALLBACK: a state every period (100 Hz) from the fault to the landing
    # (3.1-3.2 s measured: the 1 s hold and the descent at 0.3 m/s)
    assert after[-1, 0] - after[0, 0] > 2.0 and len(after) >= 0.9 * 100 * (after[-1, 0] - after[0, 0])
    ended = [m.msg.data for m in read_log(log).messages if m.topic == f"{namespace}/status"]
    assert ended and ended[-1].startswith("run ended: fallback complete"), ended
    assert code == 1 and not left_behind(namespace)


def test_plausible_offset_spoof_is_detected_within_a_period(tmp_path):
    namespace, domain = ns(), random_domain()
    env = dds_env(domain)
    proc = deploy(write_profile(tmp_path, namespace), tmp_path / "run.mcap", env)
    t_inject = injected_at(spoof("offset", namespace, env, delay_s=2.0))
    code, summary, err = finish(proc)
    fallback = [t for t in summary["transitions"] if "-> FALLBACK" in t]
    assert fallback and "input_integrity" in fallback[0], (summary.get("transitions"), err[-2000:])
    t_detect = float(fallback[0].split("t=")[1].split("s")[0])
    # the second writer is seen at DDS discovery, before or with its first sample (benchmarks/fault_response.py:
    # max 1.22 control periods over 5 runs); 1 s bounds a discovery slowed by a busy 2-core machine
    assert t_detect - t_inject < 1.0
    assert "ESTOP" not in " ".join(summary["transitions"]) and code == 1


def test_estop_topic_reaches_estop_within_one_period(tmp_path):
    namespace, domain = ns(), random_domain()
    env = dds_env(domain)
    proc = deploy(write_profile(tmp_path, namespace), tmp_path / "run.mcap", env)
    t_inject = injected_at(spoof("estop", namespace, env, delay_s=2.0))
    code, summary, err = finish(proc)
    estop = [t for t in summary["transitions"] if "-> ESTOP" in t]
    assert estop and "operator e-stop" in estop[0], (summary.get("transitions"), err[-2000:])
    t_estop = float(estop[0].split("t=")[1].split("s")[0])
    assert 0.0 <= t_estop - t_inject <= 0.01 + 0.005  # one control period (10 ms) plus delivery
    assert code == 1 and not left_behind(namespace)


def test_disk_full_mid_flight_lands_and_leaves_a_readable_log(tmp_path):
    """The log may grow to 40 kB (RLIMIT_FSIZE; SIGXFSZ ignored, so writes fail with EFBIG as on a full disk):
    the recorder fails mid-flight, the flight goes on to its landing, the summary says so, the log is readable."""
    namespace, domain = ns(), random_domain()

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    log = tmp_path / "run.mcap"
    proc = deploy(write_profile(tmp_path, namespace), log, dds_env(domain), preexec=small_disk)
    code, summary, err = finish(proc)
    assert "recorder_error" in summary, err[-2000:]
    assert summary["end"] == "plan complete", summary
    assert [t.split(" [")[0].split(" ", 1)[1] for t in summary["transitions"]] == [
        "DISARMED -> ARMING",
        "ARMING -> ACTIVE",
        "ACTIVE -> DISARMED",
    ]
    assert code == 1
    track = poses(log, namespace)  # what reached the disk reads back (40 kB: ~1-2 s of state)
    assert len(track) > 30
    assert not left_behind(namespace)


def wait_until_hovering(namespace: str, domain: int, height_m: float = 0.5) -> float:
    """Block until the vehicle of ``namespace`` is above ``height_m`` (start-up, arming and the climb to the plan's
    0.6 m), then 0.5 s more; its height then."""
    from deploy.msgs import PoseStamped
    from deploy.transport import Ros2Node, TransportConfig

    topic = TransportConfig.from_mapping({"namespace": namespace}).topic("pose")
    with Ros2Node("watcher", namespace=namespace, domain_id=domain, config=LOOPBACK_CONFIG) as node:
        sub = node.subscription(topic.name, PoseStamped, topic.qos)
        assert sub.wait_for_publishers(1, 30.0)
        deadline = time.monotonic() + 40.0
        while time.monotonic() < deadline and (sub.latest() is None or sub.latest().pose.position.z < height_m):
            time.sleep(0.05)
        time.sleep(0.5)
        return sub.latest().pose.position.z


def test_sigterm_lands_then_stops_and_leaves_no_process(tmp_path):
    namespace, domain = ns(), random_domain()
    log = tmp_path / "run.mcap"
    proc = deploy(write_profile(tmp_path, namespace, hover_s=20.0), log, dds_env(domain))
    assert wait_until_hovering(namespace, domain) > 0.4
    proc.send_signal(signal.SIGTERM)
    code, summary, err = finish(proc)
    transitions = summary["transitions"]
    assert any("ACTIVE -> FALLBACK [runtime.signal]" in t for t in transitions), (transitions, err[-2000:])
    assert "FALLBACK -> DISARMED" in transitions[-1]
    track = poses(log, namespace)
    assert track[-1, 3] < 0.1  # on the ground
    assert code == 1 and not left_behind(namespace)


def test_sigkill_of_the_runtime_the_robot_stops_by_its_command_timeout(tmp_path):
    """The deploy process dies without a word: its children die with it (PR_SET_PDEATHSIG); a robot that is not
    its child (here: started by the test) stops its motors after its command timeout (0.5 s) and falls."""
    namespace, domain = ns(), random_domain()
    env = dds_env(domain)
    robot = subprocess.Popen(
        [sys.executable, "-m", "drivers.sim_robot", "--seconds", "60", "--namespace", namespace, "--seed", "3"],
        cwd=ROOT,
        env=env,
    )
    operator = subprocess.Popen(
        [sys.executable, "-m", "deploy.operator", "--namespace", namespace, "--script", "arm@0"], cwd=ROOT, env=env
    )
    try:
        profile = write_profile(tmp_path, namespace, hover_s=20.0)
        cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(profile), "--policy", str(POLICY)]
        proc = subprocess.Popen([*cmd, "--log", str(tmp_path / "run.mcap")], cwd=ROOT, env=env)
        from deploy.msgs import PoseStamped
        from deploy.transport import Ros2Node, TransportConfig

        topic = TransportConfig.from_mapping({"namespace": namespace}).topic("pose")
        with Ros2Node("watcher", namespace=namespace, domain_id=domain, config=LOOPBACK_CONFIG) as node:
            sub = node.subscription(topic.name, PoseStamped, topic.qos)
            assert sub.wait_for_publishers(1, 30.0)
            deadline = time.monotonic() + 40.0  # start-up, arming, climb to the plan's 0.6 m
            while time.monotonic() < deadline and (sub.latest() is None or sub.latest().pose.position.z < 0.5):
                time.sleep(0.05)
            time.sleep(0.5)  # hovering
            z_before = sub.latest().pose.position.z
            proc.kill()
            killed = time.monotonic()
            proc.wait(10)
            landed = None
            while time.monotonic() < killed + 5.0:
                msg = sub.latest()
                if landed is None and msg.pose.position.z < 0.02:
                    landed = time.monotonic()
                time.sleep(0.01)
        assert z_before > 0.3, "not flying when killed"
        assert landed is not None and landed - killed < 0.5 + 0.6, "the robot did not stop after its command timeout"
    finally:
        for p in (robot, operator):
            p.kill()
            p.wait(10)


def test_two_vehicles_on_one_domain_fly_side_by_side_and_a_second_runtime_on_a_namespace_refuses(tmp_path):
    """Two vehicles (namespaces /a and /b) on one domain both fly their plans; a third runtime started for /a
    while /a flies (its own operator says arm) sees /a's commander and refuses to arm, and /a flies on."""
    domain = random_domain()
    env = dds_env(domain)
    a, b = ns(), ns()
    # the policy with the position-error integral: without it one flight hovered 10.8 cm RMS (limit 10) here
    first = deploy(write_profile(tmp_path, a, hover_s=4.0), tmp_path / "a.mcap", env, policy=HISTORY_POLICY)
    second = deploy(write_profile(tmp_path, b, hover_s=1.5), tmp_path / "b.mcap", env, policy=HISTORY_POLICY)
    from deploy.msgs import MotorCommand
    from deploy.transport import Ros2Node, TransportConfig

    with Ros2Node("watcher", domain_id=domain, config=LOOPBACK_CONFIG) as node:  # a command writer = armed
        for namespace in (a, b):
            topic = TransportConfig.from_mapping({"namespace": namespace}).topic("motor_command")
            assert node.subscription(topic.name, MotorCommand, topic.qos).wait_for_publishers(1, 60.0)
    (tmp_path / "x").mkdir()
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(write_profile(tmp_path / "x", a, hover_s=1.5))]
    cmd += [
        "--policy",
        str(POLICY),
        "--operator",
        "external",
        "--arm-timeout-s",
        "2",
        "--log",
        str(tmp_path / "x.mcap"),
    ]
    intruder = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    operator = subprocess.Popen(
        [sys.executable, "-m", "deploy.operator", "--namespace", a, "--script", "arm@0"], cwd=ROOT, env=env
    )
    try:
        code, _, err = finish(intruder)
    finally:
        operator.kill()
        operator.wait(10)
    assert code == 2 and "another commander publishes" in err, err[-2000:]
    for code, summary, err in (finish(first), finish(second)):
        assert code == 0, (summary.get("transitions"), err[-2000:])
        assert summary["tracking"]["hover_rms_m"] < 0.1
    assert not left_behind(a) and not left_behind(b)
