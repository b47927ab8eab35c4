"""`sim2real operator` over real DDS between processes (loopback, a random domain per test), OperatorLink's poll
contract, the keyboard through a pseudo-terminal, the gamepad mapping with a fake button source."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from deploy.msgs import Bool, Header, String, time_to_ns
from deploy.operator import (
    GAMEPAD_MAP,
    GamepadMapper,
    GamepadSource,
    Operator,
    OperatorError,
    OperatorLink,
    main,
    parse_gamepad_map,
    parse_script,
    transport_config,
)
from deploy.operator.cli import _loop
from deploy.transport import DEFAULT_TOPICS, LOOPBACK_CONFIG, Ros2Node, TransportConfig
from tests.domains import random_domain

ROOT = Path(__file__).resolve().parents[2]
CONFIG = TransportConfig()


@pytest.fixture
def domain_id() -> int:
    return random_domain()


@pytest.fixture
def node(domain_id: int):
    with Ros2Node("runtime", namespace=CONFIG.namespace, domain_id=domain_id, config=LOOPBACK_CONFIG) as n:
        yield n


class Recorder:
    """Every message of the three operator topics with its arrival time (monotonic s, wall ns)."""

    def __init__(self, node: Ros2Node) -> None:
        self.lock = threading.Lock()
        self.got: dict[str, list[tuple[float, int, object]]] = {"hb": [], "cmd": [], "estop": []}
        for key, short in (("operator_heartbeat", "hb"), ("operator_command", "cmd"), ("estop", "estop")):
            t = CONFIG.topic(key)
            node.subscription(t.name, t.msg_type, t.qos, callback=lambda m, s=short: self._add(s, m))

    def _add(self, short: str, msg: object) -> None:
        with self.lock:
            self.got[short].append((time.monotonic(), time.time_ns(), msg))

    def __getitem__(self, short: str) -> list[tuple[float, int, object]]:
        with self.lock:
            return list(self.got[short])

    def wait(self, predicate, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.005)
        return False


def start_operator(domain_id: int, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    popen.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(
        [sys.executable, "-m", "deploy.operator", *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, **popen
    )


def test_topics_in_the_table() -> None:
    hb, cmd = CONFIG.topic("operator_heartbeat"), CONFIG.topic("operator_command")
    assert (hb.name, hb.msg_type, hb.qos.reliability) == ("/sim2real/operator/heartbeat", Header, "best_effort")
    assert (cmd.name, cmd.msg_type, cmd.qos.reliability) == ("/sim2real/operator/command", String, "reliable")
    assert DEFAULT_TOPICS["estop"].msg_type is Bool and CONFIG.topic("estop").qos.reliability == "reliable"


def test_scripted_operator_process(node: Ros2Node, domain_id: int) -> None:
    """Heartbeat at 20 Hz stamped with the wall clock, commands in order at their times, the e-stop burst and its
    repeats while held (until reset), and the heartbeat stopping at --heartbeat-stop-at."""
    rec = Recorder(node)
    link = OperatorLink(node, CONFIG)
    script = "arm@0.6,land@0.9,reset@1.6"
    proc = start_operator(
        domain_id, "--script", script, "--estop-at", "1.2", "--heartbeat-stop-at", "1.4", "--seconds", "2.0",
        "--operator-id", "tester@box:1",
    )  # fmt: skip
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "falls back" in err
    hb, cmd, estop = rec["hb"], rec["cmd"], rec["estop"]
    assert [m.data for _, _, m in cmd] == ["arm", "land", "reset"]
    # the first heartbeat is sent at t=0 (some may precede discovery): script times relative to the first one seen
    t0 = hb[0][0]
    arm_t, land_t, reset_t = (t - t0 for t, _, _ in cmd)
    assert 0.35 < arm_t < 0.7 and land_t - arm_t == pytest.approx(0.3, abs=0.06)
    assert reset_t - arm_t == pytest.approx(1.0, abs=0.06)
    # heartbeat: ~20 Hz until it stops 0.8 s after arm, stamps are the sender's wall clock, frame_id its id
    periods = sorted(b[0] - a[0] for a, b in itertools.pairwise(hb))
    assert periods[len(periods) // 2] == pytest.approx(0.05, abs=0.01)
    assert hb[-1][0] - arm_t - t0 == pytest.approx(0.8, abs=0.08)
    assert all(m.frame_id == "tester@box:1" and abs(wall - time_to_ns(m.stamp)) < 50e6 for _, wall, m in hb)
    # e-stop: 5 within ~50 ms at 1.2 s, then true at ~20 Hz while held, none after the reset
    assert all(m.data for _, _, m in estop)
    burst = [t for t, _, _ in estop[:5]]
    assert burst[0] - arm_t - t0 == pytest.approx(0.6, abs=0.06) and burst[-1] - burst[0] < 0.08
    repeats = [t for t, _, _ in estop[5:]]
    assert 6 <= len(repeats) <= 10 and all(t < reset_t + t0 + 0.01 for t in repeats)
    inputs = link.poll(time.monotonic())
    assert inputs.commands == ["arm", "land", "reset"] and inputs.estop and inputs.operator_id == "tester@box:1"
    assert inputs.heartbeat_s == pytest.approx(hb[-1][0], abs=0.01) and inputs.heartbeat_age_s > 0.5


def test_link_poll_loses_nothing_and_sees_any_estop_writer(node: Ros2Node, domain_id: int) -> None:
    times = iter([100.0, 101.0, 102.0])
    link = OperatorLink(node, CONFIG, clock=lambda: next(times))
    assert link.poll(0.0) == link.poll(0.0)  # nothing yet
    first = link.poll(5.0)
    assert (first.heartbeat_s, first.heartbeat_age_s, first.estop, first.commands) == (None, float("inf"), False, [])
    with Ros2Node("other", namespace=CONFIG.namespace, domain_id=domain_id) as other:  # domain configured by node
        cmd = other.publisher(CONFIG.topic("operator_command").name, String)
        hb = other.publisher(CONFIG.topic("operator_heartbeat").name, Header, "sensor_data")
        assert cmd.wait_for_subscribers(1, 5.0) and hb.wait_for_subscribers(1, 5.0)
        sent, got = [], []
        for _ in range(40):  # polled at random moments: each command handed out once, in order
            sent.append(random.choice(["arm", "disarm", "reset", "land"]))
            cmd.publish(String(sent[-1]))
            if random.random() < 0.3:
                got += link.poll(0.0).commands
            time.sleep(0.001)
        cmd.publish(String("self-destruct"))  # unknown: dropped with a warning
        deadline = time.monotonic() + 3.0
        while len(got) < len(sent) and time.monotonic() < deadline:
            got += link.poll(0.0).commands
            time.sleep(0.01)
        assert got == sent and link.poll(0.0).commands == []
        hb.publish(Header(frame_id="a@b:1"))
        assert link.heartbeat_sub.wait(3.0)
        inputs = link.poll(100.25)
        assert inputs.heartbeat_s == 100.0 and inputs.heartbeat_age_s == 0.25 and inputs.operator_id == "a@b:1"
    # an e-stop from another process (not the operator): seen once, a false releases nothing
    code = (
        "import sys, time\nfrom deploy.msgs import Bool\nfrom deploy.transport import Ros2Node\n"
        "with Ros2Node('button', namespace='/sim2real') as n:\n"
        "    p = n.publisher('safety/estop', Bool)\n"
        "    assert p.wait_for_subscribers(1, 10.0)\n"
        "    p.publish(Bool(False)); p.publish(Bool(True)); p.publish(Bool(False)); time.sleep(0.3)\n"
    )
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=15)
    assert out.returncode == 0, out.stderr
    assert link.estop_sub.received_count == 3
    assert link.poll(0.0).estop and not link.poll(0.0).estop


@pytest.fixture
def pty_pair():
    """(master, slave) of a pseudo-terminal: the test types on master, the operator reads slave as its stdin."""
    master, slave = os.openpty()
    yield master, slave


def _wait(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_keyboard_through_a_pseudo_terminal(node: Ros2Node, domain_id: int, pty_pair: tuple[int, int]) -> None:
    rec = Recorder(node)
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    proc = start_operator(domain_id, "--operator-id", "kb@pty:1", stdin=slave)
    try:
        assert rec.wait(lambda r: len(r["hb"]) >= 1), "no heartbeat from the keyboard operator"
        assert not termios.tcgetattr(slave)[3] & (termios.ICANON | termios.ECHO), "not in cbreak mode"
        os.write(master, b"a")
        assert rec.wait(lambda r: len(r["cmd"]) == 1)
        os.write(master, b"xd ")  # x: no action; d: disarm; space: e-stop
        assert rec.wait(lambda r: len(r["estop"]) >= 5 and len(r["cmd"]) == 2)
        os.write(master, b"rle")  # reset, land, e: e-stop again
        assert rec.wait(lambda r: len(r["estop"]) >= 10 and len(r["cmd"]) == 4)
        os.write(master, b"q")
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [m.data for _, _, m in rec["cmd"]] == ["arm", "disarm", "reset", "land"]
    assert "operator stopped (quit)" in err and "falls back" in err and "stays latched" in err
    assert termios.tcgetattr(slave) == before, "terminal settings not restored"
    n = len(rec["hb"])
    time.sleep(0.2)
    assert len(rec["hb"]) == n, "heartbeat continued after quit"


def test_sigterm_restores_the_terminal(node: Ros2Node, domain_id: int, pty_pair: tuple[int, int]) -> None:
    rec = Recorder(node)
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    proc = start_operator(domain_id, stdin=slave)
    try:
        assert rec.wait(lambda r: len(r["hb"]) >= 1)
        assert termios.tcgetattr(slave) != before
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "operator stopped (interrupted)" in err, err
    assert termios.tcgetattr(slave) == before


def test_gamepad_mapping_with_a_fake_pad(node: Ros2Node, domain_id: int) -> None:
    """Button presses (rising edges) -> actions through the default map; published over DDS like the keyboard."""
    mapping = parse_gamepad_map("quit=8,land=4")
    assert mapping == {**GAMEPAD_MAP, "land": 4, "quit": 8}
    mapper = GamepadMapper(mapping)
    pad = [False] * 11

    def press(*buttons: int) -> list[bool]:
        return [i in buttons for i in range(len(pad))]

    # held buttons act once; two at once act in button order
    assert [mapper.update(s) for s in (press(7), press(7), press(), press(1, 2), press(2))] == [
        ["arm"], [], [], ["estop", "reset"], []
    ]  # fmt: skip
    link = OperatorLink(node, CONFIG)
    with Ros2Node("pad", namespace=CONFIG.namespace, domain_id=domain_id) as pad_node:
        operator = Operator(pad_node, CONFIG, "pad@test:1")
        assert operator._cmd.wait_for_subscribers(1, 5.0) and operator._estop.wait_for_subscribers(1, 5.0)
        frames = iter([press(), press(7), press(7), press(), press(6), press(1), press(), press(2), press(4), press(8)])
        source = GamepadSource(lambda: next(frames), GamepadMapper(mapping))
        assert _loop(operator, [source], time.monotonic(), 0.05, 5.0, lambda: None) == "quit"
        assert _wait(lambda: link.command_sub.received_count == 4)
    inputs = link.poll(time.monotonic())
    assert inputs.commands == ["arm", "disarm", "reset", "land"] and inputs.estop
    assert not operator.estop_held  # released by the reset button


def test_gamepad_missing_exits_2_with_what_to_install(tmp_path: Path, domain_id: int) -> None:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), CYCLONEDDS_URI=LOOPBACK_CONFIG)
    no_pygame = (
        "import sys; sys.modules['pygame'] = None; from deploy.operator import main; sys.exit(main(['--gamepad']))"
    )
    out = subprocess.run([sys.executable, "-c", no_pygame], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "pip install pygame" in out.stderr, out.stderr
    fake = tmp_path / "pygame"  # a pygame that sees no joystick, as on this machine
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "def init():\n    pass\n\n\nclass joystick:\n    init = staticmethod(lambda: None)\n"
        "    get_count = staticmethod(lambda: 0)\n"
    )
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    out = subprocess.run(
        [sys.executable, "-m", "deploy.operator", "--gamepad"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 2 and "no joystick 0 found (pygame sees 0)" in out.stderr, out.stderr


def test_no_terminal_and_no_script_exits_2(domain_id: int) -> None:
    proc = start_operator(domain_id)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and "stdin is not a terminal" in err


def test_parse_script() -> None:
    assert parse_script("arm@1.0, disarm@20\nland@0.5 # comment\n\nestop@3,quit@30") == [
        (0.5, "land"), (1.0, "arm"), (3.0, "estop"), (20.0, "disarm"), (30.0, "quit")
    ]  # fmt: skip
    for bad in ("fly@1", "arm", "arm@-1", "arm@soon", "arm@inf"):
        with pytest.raises(OperatorError, match="expected ACTION@SECONDS"):
            parse_script(bad)
    with pytest.raises(OperatorError, match="ACTION=BUTTON"):
        parse_gamepad_map("arm=start")
    assert main(["--script", "arm@x"]) == 2


def test_transport_from_a_profile(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: x\ntransport:\n  namespace: /cf1\n  domain_id: 7\n  topics:\n    operator_command: /cf1/op/cmd\n"
    )

    class Args:
        namespace = None
        domain_id = None

    args = Args()
    args.profile = profile
    config = transport_config(args)
    assert (config.domain_id, config.topic("operator_heartbeat").name) == (7, "/cf1/operator/heartbeat")
    assert config.topic("operator_command").name == "/cf1/op/cmd"
    args.namespace, args.domain_id = "/cf2", 9
    config = transport_config(args)
    assert (config.domain_id, config.topic("estop").name) == (9, "/cf2/safety/estop")
    args.profile = tmp_path / "missing.yaml"
    with pytest.raises(OperatorError, match="cannot read deploy profile"):
        transport_config(args)


def test_torch_free_and_light() -> None:
    """The robot computer has no torch; the operator imports only deploy.msgs and deploy.transport of the project."""
    code = (
        "import sys; sys.modules['torch'] = None; import deploy.operator; "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('deploy.')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['msgs', 'operator', 'transport']"
