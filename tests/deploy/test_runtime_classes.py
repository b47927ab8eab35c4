"""The runtime's guarantees hold for every robot class: the same `Runtime.run` (in a thread, as `sim2real deploy`
runs it) for a quadrotor, a legged robot and an arm, each with a robot that publishes a resting state from its own
DDS participant and an operator (`deploy.operator.Operator`) on another one (one process: the nodes after the
first share its loopback configuration of the domain). No simulator: these are the
runtime's rules, the physics is test_fault_injection_dds.py's and the SIL tests'."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.articulated_wire import imu_msg, joint_state_msg, pose_msg
from deploy.msgs import BatteryState, Bool, Point, Pose, PoseStamped, Quaternion, Twist, TwistStamped, make_header
from deploy.operator import Operator, OperatorLink
from deploy.profile import load_deploy_profile
from deploy.runtime import Runtime, adapter_for
from deploy.safety import SafetyLayer, SafetyState
from deploy.transport import LOOPBACK_CONFIG, Ros2Node
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec, ObsTerm
from tests.domains import random_domain

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
PROFILES = {"quadrotor": "sim_quadrotor.yaml", "legged": "sim_a1.yaml", "arm": "sim_franka.yaml"}


class JointPolicy:
    """Holds the default pose; observes only joint terms (which both articulated builders make)."""

    def __init__(self, profile):
        names, default = profile.action_names, np.asarray(profile.robot.joints.default_position_rad)
        n = len(names)
        self.control_hz = profile.control_hz
        self.obs_spec = ObsSpec((ObsTerm("joint_pos", n), ObsTerm("joint_vel", n), ObsTerm("last_action", n)))
        self.action_spec = ActionSpec(
            "joint_position", tuple(names), ("rad",) * n, tuple(default), (0.25,) * n, (-3.0,) * n, (3.0,) * n
        )
        self.default = default

    def __call__(self, obs):
        return self.default.copy()


class HoverPolicy:
    """Commands the nominal hover speed whatever it observes."""

    def __init__(self, profile):
        from sim.quadrotor.actions import action_spec
        from sim.quadrotor.config import QuadrotorTaskCfg

        cfg = QuadrotorTaskCfg()
        self.control_hz, self.obs_spec = profile.control_hz, cfg.policy_obs_spec()
        self.action_spec = action_spec("rpm", profile.robot)
        self.hover = self.action_spec.to_physical(np.zeros(4))

    def __call__(self, obs):
        return np.asarray(self.hover, dtype=np.float32)


class Raising:
    """Wraps a policy; raises from its ``after``-th call on (a broken model, a spec error after arming)."""

    def __init__(self, policy, after: int):
        self.policy, self.after, self.calls = policy, after, 0
        self.control_hz, self.obs_spec, self.action_spec = policy.control_hz, policy.obs_spec, policy.action_spec

    def __call__(self, obs):
        self.calls += 1
        if self.calls >= self.after:
            raise ValueError("observation has 17 values, the model takes 22")
        return self.policy(obs)


class RestingRobot:
    """Publishes the state of a robot at rest (on the ground / standing in its default pose) from its own node."""

    def __init__(self, profile, domain: int, name: str = "robot"):
        self.profile, self.node = profile, Ros2Node(name, domain_id=domain)  # the domain's config: the runtime's
        t = profile.transport.topic
        keys = ("pose", "twist", "battery") if not profile.articulated else ("joint_states",)
        keys += ("imu",) if profile.robot_class == "legged" else ("pose",) if profile.robot_class == "arm" else ()
        self.pubs = {k: self.node.publisher(t(k).name, t(k).msg_type, t(k).qos) for k in keys}

    def publish(self) -> None:
        stamp = time.monotonic_ns()
        p = self.pubs
        if not self.profile.articulated:
            p["pose"].publish(PoseStamped(make_header(stamp, "world"), Pose(Point(0.0, 0.0, 0.0), Quaternion())))
            p["twist"].publish(TwistStamped(make_header(stamp, "base_link"), Twist()))
            p["battery"].publish(BatteryState(make_header(stamp), voltage=4.0, percentage=0.9, present=True))
            return
        names, q = self.profile.action_names, np.asarray(self.profile.robot.joints.default_position_rad)
        zeros = np.zeros(len(names))
        p["joint_states"].publish(joint_state_msg(names, q, zeros, zeros, stamp))
        if "imu" in p:
            p["imu"].publish(imu_msg(np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3), stamp))
        else:
            p["pose"].publish(pose_msg(np.array([0.45, 0.0, 0.45]), np.array([0.0, 1.0, 0.0, 0.0]), stamp, "base"))

    def close(self) -> None:
        self.node.close()


class Bench:
    """A runtime of one class in a thread, its robot and its operator; :meth:`play` drives them in real time."""

    def __init__(self, robot_class: str, wrap=None, second_writer: bool = False):
        self.profile = load_deploy_profile(LAUNCH / PROFILES[robot_class])
        self.domain = random_domain()
        policy = HoverPolicy(self.profile) if robot_class == "quadrotor" else JointPolicy(self.profile)
        self.policy = wrap(policy) if wrap else policy
        self.node = Ros2Node("deploy", domain_id=self.domain, config=LOOPBACK_CONFIG)
        self.robot = RestingRobot(self.profile, self.domain)
        self.intruder = RestingRobot(self.profile, self.domain, "intruder") if second_writer else None
        self.op_node = Ros2Node("operator", domain_id=self.domain)
        self.operator = Operator(self.op_node, self.profile.transport, "test", hold_until_runtime=True)
        t = self.profile.transport.topic("estop")
        self.estop_pub = self.op_node.publisher(t.name, Bool, t.qos)
        adapter = adapter_for(self.profile, self.policy, self.node)
        link = OperatorLink(self.node, self.profile.transport)
        self.runtime = Runtime(
            adapter, self.policy, self.node, self.profile.transport, SafetyLayer(self.profile.safety), operator=link
        )
        self.heartbeat = True
        self.error: BaseException | None = None
        assert next(iter(adapter.inputs.values())).wait_for_publishers(1, 10.0)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.runtime.run(timeout_s=2.0)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def play(self, seconds: float, until=None) -> None:
        """Robot at 100 Hz, operator heartbeat at 20 Hz, for ``seconds`` or until ``until()``."""
        if not self.thread.is_alive() and self.thread.ident is None:
            self.operator.act("arm")
            self.thread.start()
        end, k = time.monotonic() + seconds, 0
        while time.monotonic() < end and self.thread.is_alive() and not (until and until()):
            self.robot.publish()
            if self.intruder is not None:
                self.intruder.publish()
            if self.heartbeat and k % 5 == 0:
                self.operator.tick()
            k += 1
            time.sleep(0.01)

    def state(self) -> SafetyState:
        return self.runtime.safety.state

    def transitions(self) -> list:
        return list(self.runtime.safety.transitions)

    def close(self) -> None:
        self.play(15.0)  # until the run ends
        assert not self.thread.is_alive(), "the run did not end"
        for node in (self.op_node, self.node):
            node.close()
        self.robot.close()
        if self.intruder is not None:
            self.intruder.close()


@pytest.fixture(params=sorted(PROFILES))
def robot_class(request) -> str:
    return request.param


def active(bench: Bench) -> None:
    bench.play(10.0, until=lambda: bench.state() is SafetyState.ACTIVE)
    assert bench.state() is SafetyState.ACTIVE, [str(t) for t in bench.transitions()]
    bench.play(0.3)


def test_an_estop_from_another_writer_latches_within_one_period(robot_class):
    bench = Bench(robot_class)
    active(bench)
    sent = time.monotonic()
    for _ in range(3):
        bench.estop_pub.publish(Bool(True))
    bench.play(1.0, until=lambda: bench.state() is SafetyState.ESTOP)
    bench.close()
    estop = [t for t in bench.transitions() if t.to_state is SafetyState.ESTOP]
    assert estop and estop[0].reason.startswith("operator e-stop"), [str(t) for t in bench.transitions()]
    period = 1.0 / bench.profile.control_hz
    assert estop[0].time_s - sent <= period + 0.01  # the next cycle after its arrival (plus DDS delivery)
    assert bench.transitions()[-1].to_state is SafetyState.ESTOP and bench.error is None


def test_a_lost_operator_heartbeat_falls_back(robot_class):
    bench = Bench(robot_class)
    active(bench)
    bench.heartbeat = False
    stopped = time.monotonic()
    bench.play(3.0, until=lambda: bench.state() is SafetyState.FALLBACK)
    bench.close()
    fallback = [t for t in bench.transitions() if t.to_state is SafetyState.FALLBACK]
    assert fallback and fallback[0].check == "heartbeat", [str(t) for t in bench.transitions()]
    limit = bench.profile.safety.common.max_heartbeat_age_s
    assert fallback[0].time_s - stopped <= limit + 2 / bench.profile.control_hz + 0.05 + 0.05  # + one tick gap
    assert bench.transitions()[-1].to_state is SafetyState.DISARMED and bench.error is None


def test_a_policy_that_raises_in_flight_hands_over_to_the_fallback_and_the_run_ends_normally(robot_class):
    bench = Bench(robot_class, wrap=lambda p: Raising(p, after=60))
    active(bench)
    bench.play(3.0, until=lambda: bench.state() is not SafetyState.ACTIVE)
    bench.close()
    fallback = [t for t in bench.transitions() if t.to_state is SafetyState.FALLBACK]
    assert fallback and fallback[0].check == "runtime.exception", [str(t) for t in bench.transitions()]
    assert "the model takes 22" in fallback[0].reason
    assert bench.runtime.loop_error is not None and bench.error is None
    assert bench.transitions()[-1].to_state is SafetyState.DISARMED  # landed / held, then disarmed: no ESTOP


def test_a_second_writer_on_the_state_topic_refuses_arming_and_names_both(robot_class):
    bench = Bench(robot_class, second_writer=True)
    bench.play(6.0)
    bench.close()
    assert not bench.transitions(), [str(t) for t in bench.transitions()]
    assert isinstance(bench.error, RuntimeError)
    assert (
        "2 writers publish" in str(bench.error) and "'intruder'" in str(bench.error) and "'robot'" in str(bench.error)
    )
    assert bench.runtime.command_pub is None  # it never commanded anything


def test_no_heartbeat_no_arming(robot_class):
    bench = Bench(robot_class)
    bench.heartbeat = False
    bench.play(6.0)
    bench.close()
    assert not bench.transitions() and isinstance(bench.error, RuntimeError)
    assert "heartbeat" in str(bench.error)


def test_another_operators_heartbeat_does_not_keep_the_robot_alive(robot_class):
    """The heartbeat of the operator who armed is pinned: a second operator (or a stuck script) heartbeating on
    the same namespace does not hide that the first one is gone."""
    bench = Bench(robot_class)
    rogue = Operator(bench.op_node, bench.profile.transport, "rogue")
    active(bench)
    bench.heartbeat = False
    stopped = time.monotonic()
    end = stopped + 3.0
    while time.monotonic() < end and bench.state() is SafetyState.ACTIVE:
        rogue.tick()
        bench.play(0.05)
    bench.close()
    fallback = [t for t in bench.transitions() if t.to_state is SafetyState.FALLBACK]
    assert fallback and fallback[0].check == "heartbeat", [str(t) for t in bench.transitions()]
    assert fallback[0].time_s - stopped <= bench.profile.safety.common.max_heartbeat_age_s + 0.15
