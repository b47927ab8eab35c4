"""Exceptions of the flight recorder."""

from __future__ import annotations


class RecorderError(RuntimeError):
    """The log cannot be written: raised before arming (preflight) or when a write fails during the run."""
