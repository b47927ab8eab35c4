"""Checks run before arming: the log path can be created, written, and has room for the run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from deploy.recording.errors import RecorderError

#: Default minimum free space on the log's file system, bytes. A 500 Hz run writes ~1-3 MB per minute.
DEFAULT_MIN_FREE_BYTES = 50 * 1024 * 1024


def preflight(
    path: str | os.PathLike[str], *, min_free_bytes: int = DEFAULT_MIN_FREE_BYTES, overwrite: bool = False
) -> Path:
    """Check that ``path`` can be recorded to; return it as an absolute Path. Raises RecorderError.

    Creates missing parent directories. Refuses an existing file unless ``overwrite``, and a file system
    with less than ``min_free_bytes`` bytes free. Does not create the file (the recorder does, exclusively).
    """
    target = Path(path).expanduser().absolute()
    if target.suffix != ".mcap":
        raise RecorderError(f"log path {str(target)!r} must end in '.mcap' (readers pick the format by suffix)")
    if target.is_dir():
        raise RecorderError(f"log path {str(target)!r} is a directory; give a file name such as run.mcap")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise RecorderError(
            f"log file {str(target)!r} already exists; choose a new path (runs are never overwritten silently) "
            "or pass overwrite=True"
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RecorderError(
            f"cannot create the log directory {str(parent)!r}: {err.strerror or err}. "
            "Choose a log path in a writable directory."
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecorderError(
            f"log directory {str(parent)!r} is not writable by this user; choose another path or fix its permissions"
        )
    free = shutil.disk_usage(parent).free
    if free < min_free_bytes:
        raise RecorderError(
            f"only {free / 1e6:.1f} MB free on the file system of {str(parent)!r}; the recorder needs at least "
            f"{min_free_bytes / 1e6:.1f} MB before arming. Free space or choose another disk."
        )
    return target
