"""SIGINT / SIGTERM during a run: the runtime lands on the first and e-stops on the second (deploy/runtime/core.py);
these install its handler for the run and put the previous ones back after it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def install_signal_handler(handler: Callable[[int], None]) -> dict | None:
    """``handler(signum)`` for SIGINT and SIGTERM (main thread only; elsewhere None); returns the previous
    handlers for :func:`restore_signal_handlers`."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {sig: signal.signal(sig, lambda signum, frame: handler(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore_signal_handlers(previous: dict | None) -> None:
    for sig, old in (previous or {}).items():
        signal.signal(sig, old)
