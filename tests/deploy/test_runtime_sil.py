"""Software-in-the-loop: the deploy runtime flies the simulated quadrotor (another process) over real DDS.

The stand-in policy is the classical baseline wrapped as a physical-command policy (the exported ONNX policy
plugs into the same place); the runtime itself is torch-free.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from deploy.recording import read_log
from deploy.recording.recorder import FlightRecorder
from deploy.replay import load_flight
from deploy.runtime import FlightPlan
from deploy.runtime.clock import ros_minus_monotonic_ns
from deploy.safety import SafetyLayer, SafetyState, crazyflie_profile
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from policies.baselines.pid import QuadrotorPID
from sim.quadrotor.actions import action_spec
from sim.quadrotor.config import QuadrotorTaskCfg
from tests.deploy.runtimes import quadrotor_runtime
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]


class PIDPolicy:
    """The batched PID as a single-robot policy: observation (D,) -> per-motor RPM (4,)."""

    def __init__(self):
        cfg = QuadrotorTaskCfg()
        self.obs_spec, self.action_spec, self.control_hz = (
            cfg.policy_obs_spec(),
            action_spec("rpm", cfg.params),
            cfg.control_hz,
        )
        self.pid = QuadrotorPID(self.obs_spec, self.action_spec, cfg.params, cfg.control_dt, 1)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.pid.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0]
        return self.action_spec.to_physical(a).numpy()


def _sim_robot(*extra: str):
    domain = random_domain()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    cmd = [sys.executable, "-m", "drivers.sim_robot", "--seconds", "40", "--seed", "7", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    yield domain, proc
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def sim_robot():
    """The simulated vehicle drawn from the default randomization (its imperfections included)."""
    yield from _sim_robot()


@pytest.fixture
def ideal_sim_robot():
    """The ideal vehicle (base spec), for the PID: it cannot hold the default's imperfect one at 100 Hz."""
    yield from _sim_robot("--randomization", str(ROOT / "launch" / "randomization" / "crazyflie2_base.yaml"))


def test_runtime_takes_off_hovers_lands_and_logs(ideal_sim_robot, tmp_path):
    domain, _ = ideal_sim_robot
    transport = TransportConfig.from_mapping(None)
    plan = FlightPlan(height_m=1.0, climb_rate_m_s=0.5, hover_s=4.0, descent_rate_m_s=0.5)
    with (
        Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node,
        FlightRecorder(tmp_path / "run.mcap") as rec,
    ):
        runtime = quadrotor_runtime(PIDPolicy(), node, transport, SafetyLayer(crazyflie_profile()), rec, plan)
        assert runtime.adapter.pose_sub.wait_for_publishers(1, timeout_s=30.0)
        stats = runtime.run(timeout_s=20.0)
    states = [(t.from_state, t.to_state) for t in runtime.safety.transitions]
    assert states == [
        (SafetyState.DISARMED, SafetyState.ARMING),
        (SafetyState.ARMING, SafetyState.ACTIVE),
        (SafetyState.ACTIVE, SafetyState.DISARMED),
    ]
    t, err = np.array(runtime.adapter.errors).T
    hovering = (t > plan.climb_s + 1.0) & (t < plan.climb_s + plan.hover_s)
    rms = np.sqrt(np.mean(err[hovering] ** 2))
    assert hovering.sum() > 200 and rms < 0.1, f"hover RMS {rms:.3f} m over {hovering.sum()} cycles"
    assert err.max() < 0.5
    # the loop keeps its rate; latency itself is benchmarks/deploy_latency.py's job. On a busy 2-vCPU VM (host steal)
    # 91 of 781 cycles missed once (12 %) while the flight itself was fine: allow 20 %.
    assert stats.summary()["deadline_misses"] <= 0.20 * stats.cycles
    log = read_log(tmp_path / "run.mcap")
    assert log.complete
    transitions = [m.msg.to_state for m in log.messages if m.topic.endswith("safety/transition")]
    assert transitions == ["ARMING", "ACTIVE", "DISARMED"]
    # the plan's end disarmed on the ground (touchdown), not at the end of the descent's timer
    disarm = runtime.safety.transitions[-1]
    assert disarm.reason == "plan complete, robot at rest"
    z_at_disarm = [m.msg.pose.position.z for m in log.messages if m.topic.endswith("state/pose")][-1]
    assert z_at_disarm < 0.05 and disarm.time_s - runtime.plan_start_s > plan.duration_s
    # a command in every cycle from the arming on (none before: a runtime that never armed commands nothing)
    armed_at = runtime.safety.transitions[0].time_s
    assert sum(m.topic.endswith("command/motors") for m in log.messages) >= sum(s >= armed_at for s in stats.starts)


def test_runtime_falls_back_when_the_robot_goes_silent(ideal_sim_robot):
    domain, proc = ideal_sim_robot
    transport = TransportConfig.from_mapping(None)
    profile = crazyflie_profile()
    with Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node:
        runtime = quadrotor_runtime(PIDPolicy(), node, transport, SafetyLayer(profile), None, FlightPlan(hover_s=30.0))
        assert runtime.adapter.pose_sub.wait_for_publishers(1, timeout_s=30.0)
        killed_at = None
        deadline = time.monotonic() + 20.0
        armed = False
        while time.monotonic() < deadline:
            now = time.monotonic()
            runtime.cycle(now)
            if not armed:
                armed = runtime.adapter.read() is not None and runtime.safety.arm(now)
            if killed_at is None and runtime.plan_start_s is not None and now - runtime.plan_start_s > 2.0:
                proc.kill()
                killed_at = time.monotonic()
            if runtime.safety.state is SafetyState.FALLBACK:
                break
            time.sleep(0.01)
    assert killed_at is not None, "never reached the flight phase"
    fallback = [t for t in runtime.safety.transitions if t.to_state is SafetyState.FALLBACK]
    assert fallback, [str(t) for t in runtime.safety.transitions]
    # The last state was published just before the kill: stale after max_state_age_s, then within one period.
    assert fallback[0].time_s - killed_at <= profile.common.max_state_age_s + 2 * profile.common.control_period_s + 0.02
    assert "stale" in fallback[0].reason or fallback[0].check == "state_watchdog"


@pytest.mark.parametrize("file", ["hover_policy_history.onnx"])
def test_exported_hover_policy_flies_in_sil(sim_robot, tmp_path, file):
    """A policy trained with `sim2real train quadrotor-hover` and exported with `sim2real export`, stored in
    tests/data: hover_policy_history.onnx (`--iterations 250 --seed 0 --threads 2`, 33 s, 100 inputs: the runtime
    builds the observation history) still loads (the format is stable), fits the SIL profile, and flies take-off,
    5 s of hover and landing with < 0.1 m RMS and no safety transition, reading the state from nav_msgs/Odometry
    (profile ``state: {input: odometry}``; the other flights read pose + twist): the body-frame twist rotated back
    is the world velocity the policy was trained on. (tests/data/hover_policy.onnx, session 1,
    22 inputs, is flown by `sim2real deploy` in tests/deploy/test_fault_injection_dds.py and
    tests/drivers/test_px4_sil.py with the same RMS bound.)"""
    from deploy.profile import check_policy, load_deploy_profile
    from policies.onnx_policy import load_policy

    domain, _ = sim_robot
    policy = load_policy(ROOT / "tests" / "data" / file)
    assert policy.obs_spec.dim == (100 if "history" in file else 22)
    profile = load_deploy_profile(ROOT / "launch" / "sim_quadrotor.yaml")
    check_policy(profile, policy, policy.profile_hash)
    profile.plan = replace(profile.plan, hover_s=5.0)  # the profile's 10 s: 5 s shows the same in half the time
    with (
        Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node,
        FlightRecorder(tmp_path / "run.mcap") as rec,
    ):
        runtime = quadrotor_runtime(
            policy, node, profile.transport, SafetyLayer(profile.safety), rec, profile.plan, state_input="odometry"
        )
        assert runtime.adapter.odom_sub.wait_for_publishers(1, timeout_s=30.0)
        runtime.run(timeout_s=20.0)
    flight = load_flight(tmp_path / "run.mcap", needed=("pose", "twist"))  # the log holds state/odom only
    assert flight.topics["pose"] == flight.topics["twist"] == "/sim2real/state/odom" and len(flight.velocity) > 500
    states = [t.to_state for t in runtime.safety.transitions]
    assert states == [SafetyState.ARMING, SafetyState.ACTIVE, SafetyState.DISARMED], [
        str(t) for t in runtime.safety.transitions
    ]
    t, err = np.array(runtime.adapter.errors).T
    plan = profile.plan
    hovering = (t > plan.climb_s + 1.0) & (t < plan.climb_s + plan.hover_s)
    assert hovering.sum() >= 350  # >= 3.5 s of the 5 s hover at 100 Hz after settling
    rms = np.sqrt(np.mean(err[hovering] ** 2))
    assert rms < 0.1, f"hover RMS {rms:.3f} m"


class NaNAfter:
    """The PID policy until ``t_nan`` seconds after its first call, then NaN motor speeds (a diverged network)."""

    def __init__(self, t_nan: float):
        self.policy, self.t_nan, self.start = PIDPolicy(), t_nan, None
        self.obs_spec, self.action_spec, self.control_hz = (
            self.policy.obs_spec,
            self.policy.action_spec,
            self.policy.control_hz,
        )

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        now = time.monotonic()
        self.start = now if self.start is None else self.start
        return np.full(4, np.nan) if now - self.start > self.t_nan else self.policy(obs)


def test_nan_during_the_descent_falls_back_and_lands_without_a_drop(ideal_sim_robot, tmp_path):
    """The policy turns to NaN halfway down: the finite check hands over to the fallback, which lands; the
    vehicle never falls faster than 1 m/s and the plan's end does not cut the motors in the air."""
    domain, _ = ideal_sim_robot
    transport = TransportConfig.from_mapping(None)
    plan = FlightPlan(height_m=1.0, climb_rate_m_s=0.5, hover_s=2.0, descent_rate_m_s=0.5)
    policy = NaNAfter(plan.climb_s + plan.hover_s + 1.0 + 0.5)  # 0.5 s of arming first: at ~0.5 m, descending
    with (
        Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node,
        FlightRecorder(tmp_path / "run.mcap") as rec,
    ):
        runtime = quadrotor_runtime(policy, node, transport, SafetyLayer(crazyflie_profile()), rec, plan)
        assert runtime.adapter.pose_sub.wait_for_publishers(1, timeout_s=30.0)
        runtime.run(timeout_s=20.0)
    states = [(t.to_state, t.check) for t in runtime.safety.transitions]
    assert states[2] == (SafetyState.FALLBACK, "finite"), [str(t) for t in runtime.safety.transitions]
    assert states[-1][0] is SafetyState.DISARMED and SafetyState.ESTOP not in [s for s, _ in states]
    fallback_at = runtime.safety.transitions[2].time_s
    log = read_log(tmp_path / "run.mcap")
    after = [m for m in log.messages if (m.log_time_ns - ros_minus_monotonic_ns()) * 1e-9 > fallback_at]
    during = np.array([m.msg.pose.position.z for m in after if m.topic.endswith("state/pose")])
    vz = [m.msg.twist.linear.z for m in after if m.topic.endswith("state/twist")]  # body z: about vertical
    assert during[0] > 0.2, "the fault did not happen in the air"
    assert len(during) > 50  # the log records the state during FALLBACK
    assert min(vz) > -1.0, f"fell at {min(vz):.2f} m/s"
    assert during[-1] < 0.1  # on the ground at the end
