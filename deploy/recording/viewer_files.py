"""Files for the people who look at a log, written when a recording closes cleanly: a Foxglove layout beside
the log (:mod:`deploy.recording.foxglove_layout`) and, when the log's directory holds several logs, a rosbag2
``metadata.yaml`` that opens the directory as one bag (:mod:`deploy.recording.bag_metadata`).

Never raises: the log itself is complete by then, and a failure here (a read-only directory, a damaged
neighbour) must not turn a good run into an error. Failures are logged at WARNING.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from deploy.recording.bag_metadata import write_bag_metadata
from deploy.recording.foxglove_layout import write_layout

log = logging.getLogger(__name__)


def write_viewer_files(
    log_path: str | os.PathLike[str], topics: Mapping[str, str], joint_names: list[str] | None = None
) -> list[Path]:
    """Layout beside ``log_path`` (from ``topics``: {name: ROS type} of the log) and the directory's
    metadata.yaml; returns the paths written."""
    written: list[Path] = []
    try:
        written.append(write_layout(log_path, topics, joint_names))
    except (OSError, ValueError) as err:
        log.warning("no Foxglove layout written beside %s: %s", log_path, err)
    try:
        metadata = write_bag_metadata(Path(log_path).parent)
        if metadata is not None:
            written.append(metadata)
    except (OSError, ValueError) as err:
        log.warning("no rosbag2 metadata.yaml written in %s: %s", Path(log_path).parent, err)
    return written
