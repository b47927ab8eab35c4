"""Errors of log reading and replay: each names the file, and where it applies the topic and the position."""

from __future__ import annotations


class ReplayError(ValueError):
    """A log cannot be used for replay or identification; the message says what was expected and what to do."""


class LogReadError(ReplayError):
    """A log file is unreadable, or part of it is (corrupt, truncated, unknown message type)."""


class TopicMapError(ReplayError):
    """The topic-mapping config is malformed or does not fit the log."""
