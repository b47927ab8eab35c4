"""``sim2real operator``: the human operator in the loop of the deploy runtime, as a separate process.

:class:`Operator` publishes the heartbeat, commands and the e-stop; :func:`run` reads the inputs
(deploy/operator/inputs.py) and drives it at the heartbeat rate.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.msgs import Bool, String, make_header
from deploy.operator.inputs import (
    SCRIPT_ACTIONS,
    GamepadMapper,
    GamepadSource,
    KeyboardSource,
    OperatorError,
    ScriptSource,
    cbreak,
    open_pygame_joystick,
    parse_gamepad_map,
    parse_script,
)
from deploy.operator.link import COMMANDS
from deploy.transport import Ros2Node, TransportConfig, TransportError

log = logging.getLogger("sim2real.operator")

ESTOP_BURST = 5  # messages
ESTOP_BURST_SPACING_S = 0.01  # 5 messages over 50 ms


class Operator:
    """Publishes the heartbeat, commands and the e-stop of ``operator_id``; ``wall_ns``: heartbeat stamps, ns."""

    def __init__(
        self,
        node: Ros2Node,
        config: TransportConfig,
        operator_id: str,
        wall_ns: Callable[[], int] = time.time_ns,
        hold_until_runtime: bool = False,
    ) -> None:
        self.operator_id, self._wall_ns = operator_id, wall_ns
        # scripted operators: a command sent before any runtime subscribes would be lost (volatile QoS), so it
        # waits, in order, until one does; a person at the keyboard sees the warning and presses again
        self.hold_until_runtime = hold_until_runtime
        self.pending: list[str] = []
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
        if self.pending and self._cmd.matched_count > 0:
            pending, self.pending = self.pending, []
            for action in pending:
                self._cmd.publish(String(action))
                log.info("sent %s (held until a runtime subscribed)", action)

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
            if self._cmd.matched_count == 0 or self.pending:
                if self.hold_until_runtime:
                    log.info("no runtime subscribes to %s yet; %r waits for one", self._cmd.topic, action)
                    self.pending.append(action)
                    self.last = action
                    return
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
    scripted = bool(args.script or args.script_file)
    operator = Operator(node, config, args.operator_id or default_operator_id(), hold_until_runtime=scripted)
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
