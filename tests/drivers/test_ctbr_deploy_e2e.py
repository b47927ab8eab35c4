"""A trained ctbr policy (tests/data/hover_policy_ctbr.onnx: `sim2real train quadrotor-hover --interface ctbr
--seed 4 --iterations 300`, 241 s on this 2-vCPU VM; `sim2real eval`: success 99.2 %, crash 0.4 %, RMSE 1.4 cm over
256 episodes) flown by `sim2real deploy` itself: in SIL (the simulated robot's rate loop), and through the MAVLink
bridge to the fake PX4 (SET_ATTITUDE_TARGET, OFFBOARD, arming, landing), each a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.domains import random_domain
from tests.drivers._mavlink_client import free_udp_port, start_bridge, start_fake
from tests.drivers._px4_client import dds_env

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "data" / "hover_policy_ctbr.onnx"


def summary_of(run: subprocess.CompletedProcess) -> dict:
    out = run.stdout
    return json.loads(out[out.index("{") :]) if "{" in out else {}


def test_deploy_flies_a_trained_ctbr_policy_in_sil(tmp_path):
    domain = random_domain()
    profile = yaml.safe_load((ROOT / "launch" / "sim_quadrotor_ctbr.yaml").read_text())
    profile["robot"] = str(ROOT / "launch" / "robots" / "crazyflie2.yaml")
    profile["transport"] = {"namespace": f"/ctbr{domain}"}
    profile["plan"]["hover_s"] = 4.0
    path = tmp_path / "ctbr.yaml"
    path.write_text(yaml.safe_dump(profile))
    cmd = [sys.executable, "sim2real.py", "deploy", "--sil", "--profile", str(path), "--policy", str(POLICY)]
    run = subprocess.run(
        [*cmd, "--log", str(tmp_path / "run.mcap")],
        cwd=ROOT,
        env=dds_env(domain),
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = summary_of(run)
    assert run.returncode == 0 and summary.get("end") == "plan complete", (
        summary.get("transitions"),
        run.stderr[-2000:],
    )
    # the SIL vehicle of seed 0 is drawn from the default randomization, imperfections included since session 17 (the
    # policy predates them): hover RMS 3.1-3.7 cm measured on a quiet 2-vCPU host, 3.7-4.8 cm beside two busy
    # nice-19 processes as in `make test`, and 5.46 cm once on a host running 2x slow; a broken rate loop or frame
    # convention does not hover within 10 cm
    assert summary["tracking"]["hover_rms_m"] < 0.065, summary["tracking"]
    # the log holds the ctbr commands, in newtons and rad/s, and no motor speeds
    from deploy.recording import read_log

    messages = read_log(tmp_path / "run.mcap").messages
    rates = [m.msg for m in messages if m.topic.endswith("command/rates")]
    assert rates and not any(m.topic.endswith("command/motors") for m in messages)
    thrust = sorted(m.thrust for m in rates if m.mode == "policy")
    # the median: about the weight of the simulated vehicle, drawn from the default randomization with the profile's
    # SIL seed as drivers/sim_robot.py draws it (seed 0: 31.4 g, not the nominal 27 g: a 1.3x bound on the nominal
    # weight sat on the median's 1.30 and failed about every other run)
    from sim.quadrotor.config import QuadrotorTaskCfg
    from sim.quadrotor.env import QuadrotorEnv

    cfg = QuadrotorTaskCfg(control_hz=profile["control_hz"], action_interface="ctbr")
    vehicle = QuadrotorEnv(cfg, 1, seed=profile["sil"]["seed"])
    hover_n = float(vehicle.param("mass").flatten()[0]) * 9.81
    assert 0.7 * hover_n < thrust[len(thrust) // 2] < 1.3 * hover_n
    assert max(abs(m.body_rate.x) for m in rates) <= 12.0  # inside the safety layer's rate limits


def deploy_through_a_bridge(tmp_path, launch: str, namespace: str, vehicle_id: str, domain: int, **plan):
    """`sim2real deploy --operator external` with launch/<launch>'s profile on ``namespace`` (relaxed for three
    processes on a busy 2-core machine), a scripted operator that arms at once; returns the finished run."""
    profile = yaml.safe_load((ROOT / "launch" / launch).read_text())
    profile["robot"] = str(ROOT / "launch" / "robots" / "crazyflie2.yaml")
    profile["transport"], profile["vehicle_id"] = {"namespace": namespace}, vehicle_id
    profile["plan"] = {**profile["plan"], **plan}
    profile["safety"]["common"]["max_state_age_s"] = 0.25
    profile.pop("realtime_priority", None)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    operator = subprocess.Popen(
        [sys.executable, "-m", "deploy.operator", "--namespace", namespace, "--script", "arm@0"],
        cwd=ROOT,
        env=dds_env(domain),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cmd = [sys.executable, "sim2real.py", "deploy", "--profile", str(path), "--policy", str(POLICY)]
    cmd += ["--operator", "external", "--log", str(tmp_path / "run.mcap")]
    try:
        return subprocess.run(cmd, cwd=ROOT, env=dds_env(domain), capture_output=True, text=True, timeout=120)
    finally:
        operator.terminate()
        operator.wait(10)


def test_deploy_flies_a_trained_ctbr_policy_through_mavlink_to_px4(tmp_path):
    domain, port = random_domain(), free_udp_port()
    namespace = f"/mavdeploy{domain}"
    fake = start_fake("px4", port, "--seed", "3", seconds=90.0, domain=domain)
    bridge = start_bridge("px4", port, domain, namespace, "mav_e2e")
    plan = {"height_m": 0.6, "climb_rate_m_s": 0.5, "hover_s": 3.0, "descent_rate_m_s": 0.4}
    try:
        run = deploy_through_a_bridge(tmp_path, "mavlink_px4.yaml", namespace, "mav_e2e", domain, **plan)
    finally:
        bridge.stop()
        fake.stop()
    summary = summary_of(run)
    context = (summary.get("transitions"), run.stderr[-2000:], bridge.log[-1500:], fake.log[-1500:])
    assert run.returncode == 0 and summary.get("end") == "plan complete", context
    assert summary["tracking"]["hover_rms_m"] < 0.1, context
    # through PX4's protocol: OFFBOARD, armed, the plan flown on SET_ATTITUDE_TARGET, landed, disarmed
    assert fake.seen("mode OFFBOARD") and fake.seen("armed (arm command)") and fake.seen("disarmed"), context


def test_deploy_flies_a_trained_ctbr_policy_through_the_crazyflie_bridge(tmp_path):
    """cflib on the bridge's side, the fake Crazyflie's firmware rules on the other (thrust lock, rate mode,
    supervisor, high-level land), the runtime unchanged."""
    import threading

    from tests.drivers.test_crazyflie_sil import OPTIONS, start_fake

    domain = random_domain()
    namespace = f"/cfdeploy{domain}"
    fake, port = start_fake(domain, "--seconds", "90", "--seed", "5")
    fake_log: list[str] = []
    threading.Thread(target=lambda: fake_log.extend(fake.stderr), daemon=True).start()  # never let the pipe fill
    bridge_cmd = [sys.executable, "-m", "drivers.crazyflie_bridge", "--uri", f"udp://127.0.0.1:{port}"]
    bridge_cmd += ["--namespace", namespace, "--vehicle-id", "cf_e2e", "--config", OPTIONS, "--seconds", "90"]
    bridge = subprocess.Popen(bridge_cmd, cwd=ROOT, env=dds_env(domain), stderr=subprocess.PIPE, text=True)
    bridge_log: list[str] = []
    threading.Thread(target=lambda: bridge_log.extend(bridge.stderr), daemon=True).start()
    try:
        run = deploy_through_a_bridge(tmp_path, "crazyflie_ctbr.yaml", namespace, "cf_e2e", domain, hover_s=3.0)
    finally:
        for p in (bridge, fake):
            p.terminate()
            p.wait(10)
    summary = summary_of(run)
    context = (summary.get("transitions"), run.stderr[-2000:], "".join(bridge_log)[-1500:], "".join(fake_log)[-1500:])
    assert run.returncode == 0 and summary.get("end") == "plan complete", context
    assert summary["tracking"]["hover_rms_m"] < 0.1, context
