"""The operator's inputs: the keyboard (a terminal in cbreak mode), a gamepad (pygame, optional) and a script of
timed actions; each source's ``read(timeout_s)`` returns the actions that arrived."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from deploy.operator.link import COMMANDS

#: Actions of the operator's inputs: the commands, plus the e-stop and quitting this process.
ACTIONS = (*COMMANDS, "estop", "quit")
#: Scripted-only actions: stop the heartbeat (a lost operator).
SCRIPT_ACTIONS = (*ACTIONS, "heartbeat_stop")

#: Keyboard: one key, no Enter.
KEYS: dict[str, str] = {"a": "arm", "d": "disarm", " ": "estop", "e": "estop", "r": "reset", "l": "land", "q": "quit"}

#: Gamepad: action -> button index as SDL2/pygame numbers an Xbox-layout pad on Linux (A=0 B=1 X=2 Y=3 LB=4 RB=5
#: Back=6 Start=7). B is the e-stop; quitting is keyboard-only unless mapped (``--gamepad-map quit=8``).
GAMEPAD_MAP: dict[str, int] = {"arm": 7, "disarm": 6, "estop": 1, "reset": 2, "land": 3}


class OperatorError(Exception):
    """A bad flag, script or gamepad map; the message says what was expected."""


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
