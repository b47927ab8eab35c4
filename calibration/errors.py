"""Exceptions raised by the calibration package.

Every message says what was expected, what was found, and what to do about it.
"""

from __future__ import annotations


class CalibrationError(ValueError):
    """Base class: calibration input or result is unusable."""


class BoardNotFoundError(CalibrationError):
    """No calibration board could be detected in the given image(s)."""


class NotEnoughViewsError(CalibrationError):
    """Fewer usable views / poses / segments than the method needs."""


class ImageSizeMismatchError(CalibrationError):
    """Calibration images do not all have the same size."""


class CalibrationFileError(CalibrationError):
    """A calibration file (YAML, CSV, bag) is missing or malformed."""
