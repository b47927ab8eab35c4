"""``sim2real operator``: the human operator in the loop of the deploy runtime, as a separate process.

It publishes on the robot's namespace (topic keys of deploy/transport/topics.py, docs/operator.md):

- ``operator_heartbeat`` (``operator/heartbeat``, std_msgs/Header, sensor_data) at ``--rate`` Hz (20): stamp = the
  operator's wall clock, frame_id = the operator id (``user@host:pid``). The runtime's dead-man check falls back
  when heartbeats stop arriving (``max_heartbeat_age_s``, 0.5 s by default);
- ``operator_command`` (``operator/command``, std_msgs/String, default = RELIABLE): ``arm|disarm|reset|land``;
- ``estop`` (``safety/estop``, std_msgs/Bool, RELIABLE): a burst of 5 ``true`` over 50 ms when pressed, then ``true``
  again at the heartbeat rate while the e-stop is held. The operator releases it only with ``reset``.

Heartbeat QoS, sensor_data (BEST_EFFORT): a heartbeat says "the operator is alive *now*"; a retransmitted old one
is worth nothing, and a RELIABLE writer may block (up to 0.1 s) or queue stale samples when the link is bad. A lossy
link then shows as missing heartbeats, and the runtime falls back, which is what a lossy operator link should cause.

Inputs: the keyboard (single keys, terminal in cbreak mode, restored on exit), a gamepad (pygame, optional), or a
script (``--script "arm@1,land@8"``) for software-in-the-loop and tests. The runtime side reads all three topics
with :class:`OperatorLink`. Torch-free: imports deploy.msgs, deploy.transport, the standard library and yaml.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.msgs import Bool, Header, String, make_header
from deploy.transport import Ros2Node, TransportConfig, TransportError

log = logging.getLogger("sim2real.operator")

#: Commands on the ``operator_command`` topic.
COMMANDS = ("arm", "disarm", "reset", "land")
#: Actions of the operator's inputs: the commands, plus the e-stop and quitting this process.
ACTIONS = (*COMMANDS, "estop", "quit")
#: Scripted-only actions: stop the heartbeat (a lost operator).
SCRIPT_ACTIONS = (*ACTIONS, "heartbeat_stop")

#: Keyboard: one key, no Enter.
KEYS: dict[str, str] = {"a": "arm", "d": "disarm", " ": "estop", "e": "estop", "r": "reset", "l": "land", "q": "quit"}

#: Gamepad: action -> button index as SDL2/pygame numbers an Xbox-layout pad on Linux (A=0 B=1 X=2 Y=3 LB=4 RB=5
#: Back=6 Start=7). B is the e-stop; quitting is keyboard-only unless mapped (``--gamepad-map quit=8``).
GAMEPAD_MAP: dict[str, int] = {"arm": 7, "disarm": 6, "estop": 1, "reset": 2, "land": 3}

ESTOP_BURST = 5  # messages
ESTOP_BURST_SPACING_S = 0.01  # 5 messages over 50 ms


class OperatorError(Exception):
    """A bad flag, script or gamepad map; the message says what was expected."""


# ------------------------------------------------------------------------------------------------ runtime side


@dataclass(frozen=True)
class OperatorInputs:
    """What the operator sent since the previous :meth:`OperatorLink.poll`.

    heartbeat_s: monotonic ARRIVAL time (the link's clock, seconds) of the newest heartbeat so far, None if none ever
    arrived; heartbeat_age_s: ``now - heartbeat_s`` at the poll (inf if none); estop: a ``true`` arrived on the
    e-stop topic since the previous poll (from any writer); commands: commands that arrived since the previous poll,
    oldest first, each one of :data:`COMMANDS`; operator_id: frame_id of the newest heartbeat ("" if none).
    """

    heartbeat_s: float | None
    heartbeat_age_s: float
    estop: bool
    commands: list[str]
    operator_id: str = ""


class OperatorLink:
    """The runtime's end of the operator link: subscribes to ``operator_heartbeat``, ``operator_command`` and
    ``estop`` of ``config`` on ``node``.

    Contract:

    - :meth:`poll` never blocks and loses nothing between polls: each sample is queued by a DDS-thread callback
      (under a lock) the moment it arrives, and handed out by exactly one poll.
    - Heartbeat time is the arrival time on this computer's ``clock`` (default ``time.monotonic``, the runtime's
      clock), not the sender's stamp: the two computers' clocks need not agree. Pass it to
      ``SafetyLayer.heartbeat(inputs.heartbeat_s)`` when it changed.
    - ``estop`` is True if any ``true`` arrived since the previous poll, from any writer (operator, a hardware
      button node, ``ros2 topic pub``); ``false`` releases nothing: the runtime's e-stop is reset with a command.
    - Unknown command strings are dropped with a warning, never passed on.
    """

    def __init__(self, node: Ros2Node, config: TransportConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._heartbeat_s: float | None = None
        self._operator_id = ""
        self._estop = False
        self._commands: list[str] = []
        hb, cmd, estop = (config.topic(k) for k in ("operator_heartbeat", "operator_command", "estop"))
        self.heartbeat_sub = node.subscription(hb.name, hb.msg_type, hb.qos, callback=self._on_heartbeat)
        self.command_sub = node.subscription(cmd.name, cmd.msg_type, cmd.qos, callback=self._on_command)
        self.estop_sub = node.subscription(estop.name, estop.msg_type, estop.qos, callback=self._on_estop)

    def _on_heartbeat(self, msg: Header) -> None:
        arrived = self._clock()
        with self._lock:
            if self._heartbeat_s is None or arrived >= self._heartbeat_s:
                self._heartbeat_s, self._operator_id = arrived, msg.frame_id

    def _on_command(self, msg: String) -> None:
        if msg.data not in COMMANDS:
            log.warning("ignoring unknown operator command %r; expected one of %s", msg.data, ", ".join(COMMANDS))
            return
        with self._lock:
            self._commands.append(msg.data)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            with self._lock:
                self._estop = True

    def poll(self, now_monotonic: float) -> OperatorInputs:
        """Everything since the previous poll; ``now_monotonic``: the runtime's time now (for the age), s."""
        with self._lock:
            hb, operator_id, estop, commands = self._heartbeat_s, self._operator_id, self._estop, self._commands
            self._estop, self._commands = False, []
        age = float("inf") if hb is None else now_monotonic - hb
        return OperatorInputs(hb, age, estop, commands, operator_id)


# ------------------------------------------------------------------------------------------------ operator side


class Operator:
    """Publishes the heartbeat, commands and the e-stop of ``operator_id``; ``wall_ns``: heartbeat stamps, ns."""

    def __init__(
        self,
        node: Ros2Node,
        config: TransportConfig,
        operator_id: str,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.operator_id, self._wall_ns = operator_id, wall_ns
        hb, cmd, estop = (config.topic(k) for k in ("operator_heartbeat", "operator_command", "estop"))
        self._hb = node.publisher(hb.name, hb.msg_type, hb.qos)
        self._cmd = node.publisher(cmd.name, cmd.msg_type, cmd.qos)
        self._estop = node.publisher(estop.name, estop.msg_type, estop.qos)
        self.heartbeats = 0
        self.heartbeat_on = True
        self.estop_held = False
        self.last = "-"

    def tick(self) -> None:
        """Once per heartbeat period: the heartbeat (unless stopped), and ``true`` again while the e-stop is held."""
        if self.heartbeat_on:
            self._hb.publish(make_header(self._wall_ns(), self.operator_id))
            self.heartbeats += 1
        if self.estop_held:
            self._estop.publish(Bool(True))

    def act(self, action: str) -> None:
        """One operator action (a command, ``estop`` or ``heartbeat_stop``; ``quit`` is the caller's)."""
        if action == "estop":
            if not self.estop_held:
                log.warning("E-STOP: sending true on %s; held until reset", self._estop.topic)
            self.estop_held = True
            for i in range(ESTOP_BURST):
                self._estop.publish(Bool(True))
                if i < ESTOP_BURST - 1:
                    time.sleep(ESTOP_BURST_SPACING_S)
        elif action == "heartbeat_stop":
            self.heartbeat_on = False
            log.warning("heartbeat stopped (scripted): the runtime will fall back")
        elif action in COMMANDS:
            if action == "arm" and self.estop_held:
                log.warning("not arming: the e-stop is held; reset first")
                return
            if action == "reset" and self.estop_held:
                self.estop_held = False
                log.warning("e-stop released by the operator (reset)")
            if self._cmd.matched_count == 0:
                log.warning("no runtime subscribes to %s; %r sent anyway", self._cmd.topic, action)
            self._cmd.publish(String(action))
            log.info("sent %s", action)
        else:
            raise OperatorError(f"unknown operator action {action!r}; expected one of {', '.join(SCRIPT_ACTIONS)}")
        self.last = action

    def status(self) -> str:
        estop = "E-STOP HELD" if self.estop_held else "e-stop off"
        hb = f"heartbeat {self.heartbeats}" + ("" if self.heartbeat_on else " (stopped)")
        return f"{hb} | last: {self.last} | {estop} | a arm d disarm space e-stop r reset l land q quit"


# ------------------------------------------------------------------------------------------------ inputs


def parse_script(text: str) -> list[tuple[float, str]]:
    """``"arm@1.0,disarm@20"`` (commas or new lines, ``#`` comments) -> [(1.0, "arm"), (20.0, "disarm")], by time."""
    items: list[tuple[float, str]] = []
    for line in text.splitlines():
        for item in line.split("#", 1)[0].split(","):
            item = item.strip()
            if not item:
                continue
            action, sep, at = item.partition("@")
            action = action.strip()
            try:
                t = float(at) if sep else float("nan")
            except ValueError:
                t = float("nan")
            if action not in SCRIPT_ACTIONS or not t >= 0.0 or t == float("inf"):
                raise OperatorError(
                    f"bad script item {item!r}: expected ACTION@SECONDS (seconds >= 0 after start), "
                    f"ACTION one of {', '.join(SCRIPT_ACTIONS)}"
                )
            items.append((t, action))
    return sorted(items, key=lambda x: x[0])


class ScriptSource:
    """Actions at fixed times after ``start`` (monotonic seconds)."""

    def __init__(self, schedule: Sequence[tuple[float, str]], start: float) -> None:
        self._pending = sorted(schedule, key=lambda x: x[0])
        self._start = start

    def read(self, timeout_s: float) -> list[str]:
        if self._pending:
            wait = self._start + self._pending[0][0] - time.monotonic()
            timeout_s = min(timeout_s, max(wait, 0.0))
        time.sleep(max(timeout_s, 0.0))
        now = time.monotonic() - self._start
        due = [a for t, a in self._pending if t <= now]
        self._pending = self._pending[len(due) :]
        return due


class KeyboardSource:
    """Single keys from terminal ``fd`` (put in cbreak mode by :func:`cbreak`); end of input is ``quit``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, timeout_s: float) -> list[str]:
        ready, _, _ = select.select([self._fd], [], [], max(timeout_s, 0.0))
        if not ready:
            return []
        data = os.read(self._fd, 64)
        if not data:
            return ["quit"]
        return [KEYS[k] for k in data.decode(errors="replace").lower() if k in KEYS]


@contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Terminal ``fd`` in cbreak mode (keys without Enter, no echo; Ctrl-C still interrupts), restored on exit."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def parse_gamepad_map(text: str | None) -> dict[str, int]:
    """``"arm=7,estop=1"`` -> the default map with those entries replaced (``ACTION=BUTTON``)."""
    mapping = dict(GAMEPAD_MAP)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        action, _, button = item.partition("=")
        action = action.strip()
        if action not in ACTIONS or not button.strip().isdigit():
            raise OperatorError(
                f"bad --gamepad-map item {item!r}: expected ACTION=BUTTON, ACTION one of {', '.join(ACTIONS)}, "
                "BUTTON a button index (0, 1, ...)"
            )
        mapping[action] = int(button)
    return mapping


class GamepadMapper:
    """Button states -> actions on presses (rising edges). ``buttons``: one bool per button, index = button."""

    def __init__(self, mapping: dict[str, int]) -> None:
        self._by_button: dict[int, list[str]] = {}
        for action, button in mapping.items():
            self._by_button.setdefault(button, []).append(action)
        self._previous: Sequence[bool] = ()

    def update(self, buttons: Sequence[bool]) -> list[str]:
        pressed = [i for i, down in enumerate(buttons) if down and not (i < len(self._previous) and self._previous[i])]
        self._previous = list(buttons)
        return [a for i in pressed for a in self._by_button.get(i, [])]


class GamepadSource:
    """Actions from ``buttons()`` (a callable returning the current button states) through a :class:`GamepadMapper`.

    The states are polled every 10 ms at most; a press shorter than that can be missed, a real one is 50+ ms.
    """

    POLL_S = 0.01

    def __init__(self, buttons: Callable[[], Sequence[bool]], mapper: GamepadMapper) -> None:
        self._buttons, self._mapper = buttons, mapper

    def read(self, timeout_s: float) -> list[str]:
        time.sleep(min(max(timeout_s, 0.0), self.POLL_S))
        return self._mapper.update(self._buttons())


def open_pygame_joystick(index: int = 0) -> tuple[str, Callable[[], Sequence[bool]]]:
    """(name, button-state function) of joystick ``index`` through pygame (SDL2, headless); OperatorError if none."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        raise OperatorError(
            "--gamepad needs pygame (SDL2 joystick support), which is not installed: pip install pygame"
        ) from None
    pygame.init()
    pygame.joystick.init()
    count = pygame.joystick.get_count()
    if count <= index:
        raise OperatorError(
            f"--gamepad: no joystick {index} found (pygame sees {count}); plug one in, check it appears under "
            "/dev/input/js* and that this user may read it, or use the keyboard"
        )
    stick = pygame.joystick.Joystick(index)
    stick.init()

    def buttons() -> list[bool]:
        pygame.event.pump()
        return [bool(stick.get_button(i)) for i in range(stick.get_numbuttons())]

    return stick.get_name(), buttons


# ------------------------------------------------------------------------------------------------ command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=Path, default=None, help="deploy profile YAML: namespace/domain/topics from it")
    p.add_argument("--namespace", default=None, help="robot namespace (default /sim2real, or the profile's)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS 2 domain (default: profile's, or ROS_DOMAIN_ID)")
    p.add_argument("--rate", type=float, default=20.0, help="heartbeat rate, Hz")
    p.add_argument("--operator-id", default=None, help="heartbeat frame_id (default user@host:pid)")
    p.add_argument("--gamepad", action="store_true", help="read a gamepad through pygame (pip install pygame)")
    p.add_argument("--gamepad-index", type=int, default=0, help="which joystick, 0-based")
    p.add_argument("--gamepad-map", default=None, help="ACTION=BUTTON,... over the default arm=7,disarm=6,estop=1,...")
    p.add_argument("--script", default=None, help='scripted operator: "arm@1.0,land@8,disarm@12" (s after start)')
    p.add_argument("--script-file", type=Path, default=None, help="the same, from a file (commas or lines)")
    p.add_argument("--estop-at", type=float, default=None, help="scripted e-stop at this time, s after start")
    p.add_argument("--heartbeat-stop-at", type=float, default=None, help="stop the heartbeat at this time, s")
    p.add_argument("--seconds", type=float, default=None, help="quit after this many seconds (default: run until q)")


def transport_config(args: argparse.Namespace) -> TransportConfig:
    """The profile's transport section (if any) with --namespace / --domain-id applied."""
    section: dict = {}
    if args.profile is not None:
        import yaml

        try:
            data = yaml.safe_load(Path(args.profile).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise OperatorError(f"cannot read deploy profile {args.profile}: {exc}") from exc
        section = dict((data.get("transport") if isinstance(data, dict) else None) or {})
    if args.namespace is not None:
        section["namespace"] = args.namespace
    if args.domain_id is not None:
        section["domain_id"] = args.domain_id
    return TransportConfig.from_mapping(section)


def default_operator_id() -> str:
    """``user@host:pid`` (user ``operator`` where the system has no name for this uid)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "operator"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def _schedule(args: argparse.Namespace) -> list[tuple[float, str]] | None:
    """The scripted actions of --script, --script-file, --estop-at, --heartbeat-stop-at; None: not scripted."""
    if all(v is None for v in (args.script, args.script_file, args.estop_at, args.heartbeat_stop_at)):
        return None
    text = ",".join(
        [args.script or ""]
        + [
            f"{a}@{v}"
            for v, a in ((args.estop_at, "estop"), (args.heartbeat_stop_at, "heartbeat_stop"))
            if v is not None
        ]
    )
    if args.script_file is not None:
        try:
            text += "\n" + Path(args.script_file).read_text()
        except OSError as exc:
            raise OperatorError(f"cannot read --script-file {args.script_file}: {exc}") from exc
    return parse_script(text)


def _sources(
    args: argparse.Namespace, schedule: list[tuple[float, str]] | None, start: float
) -> tuple[list, int | None]:
    """Input sources (the last one may block) and the terminal fd to put in cbreak mode (None: no keyboard)."""
    sources: list = []
    if args.gamepad:
        mapping = parse_gamepad_map(args.gamepad_map)
        name, buttons = open_pygame_joystick(args.gamepad_index)
        log.info("gamepad %r: %s", name, ", ".join(f"{a}=button {b}" for a, b in mapping.items()))
        sources.append(GamepadSource(buttons, GamepadMapper(mapping)))
    tty_fd = None
    if schedule is None and sys.stdin.isatty():
        tty_fd = sys.stdin.fileno()
        log.info("keys: a arm, d disarm, space/e e-stop, r reset, l land, q quit (stops the heartbeat)")
        sources.append(KeyboardSource(tty_fd))
    if schedule is not None:
        sources.append(ScriptSource(schedule, start))
    if not sources:
        raise OperatorError("stdin is not a terminal: give --script/--script-file (scripted operator) or --gamepad")
    return sources, tty_fd


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def run(args: argparse.Namespace) -> int:
    if not args.rate > 0:
        log.error("--rate must be > 0 Hz, got %s", args.rate)
        return 2
    try:
        config = transport_config(args)
        parse_gamepad_map(args.gamepad_map)
        schedule = _schedule(args)
        node = Ros2Node("operator", namespace=config.namespace, domain_id=config.domain_id)
    except (OperatorError, TransportError) as exc:
        log.error("%s", exc)
        return 2
    operator = Operator(node, config, args.operator_id or default_operator_id())
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers: main thread only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        start = time.monotonic()
        try:
            sources, tty_fd = _sources(args, schedule, start)
        except OperatorError as exc:
            log.error("%s", exc)
            return 2
        log.info(
            "operator %s on domain %d: heartbeat %s Hz on %s, commands on %s, e-stop on %s",
            operator.operator_id,
            node.domain_id,
            args.rate,
            config.topic("operator_heartbeat").name,
            config.topic("operator_command").name,
            config.topic("estop").name,
        )
        with cbreak(tty_fd) if tty_fd is not None else _nothing(), _status_line(operator, tty_fd is not None) as show:
            reason = _loop(operator, sources, start, 1.0 / args.rate, args.seconds, show)
    except (KeyboardInterrupt, _Terminated):
        reason = "interrupted"
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        node.close()
    log.warning(
        "operator stopped (%s) after %d heartbeats: no more heartbeats, the runtime falls back (lands or holds) "
        "within its max_heartbeat_age_s.%s",
        reason,
        operator.heartbeats,
        " The e-stop stays latched on the robot until a reset." if operator.estop_held else "",
    )
    return 0


def _loop(operator: Operator, sources: list, start: float, period_s: float, seconds: float | None, show) -> str:
    next_tick = start
    end = float("inf") if seconds is None else start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            return f"--seconds {seconds}"
        if now >= next_tick:
            operator.tick()
            next_tick += period_s
            if next_tick < now:  # fell behind (suspended, overloaded): resynchronize, no burst of heartbeats
                next_tick = now + period_s
            show()
        timeout = min(next_tick, end) - time.monotonic()
        if len(sources) > 1:  # the others are polled once per wait: keep the wait short
            timeout = min(timeout, GamepadSource.POLL_S)
        for i, source in enumerate(sources):
            for action in source.read(timeout if i == len(sources) - 1 else 0.0):
                if action == "quit":
                    return "quit"
                operator.act(action)
                show()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _status_line(operator: Operator, interactive: bool) -> Iterator[Callable[[], None]]:
    """A one-line rich status at the bottom of an interactive terminal; log lines print above it."""
    if not (interactive and sys.stdout.isatty()):
        yield lambda: None
        return
    from rich.live import Live
    from rich.text import Text

    def line() -> Text:
        return Text(
            operator.status(), style="bold red" if operator.estop_held else "", no_wrap=True, overflow="ellipsis"
        )

    with Live(line(), refresh_per_second=10, transient=True, redirect_stderr=True) as live:
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
        streams = [h.setStream(sys.stderr) for h in handlers]  # the live display's proxy: logs above the line
        try:
            yield lambda: live.update(line())
        finally:
            for h, s in zip(handlers, streams, strict=True):
                h.setStream(s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.operator", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
