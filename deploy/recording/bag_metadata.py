"""A rosbag2 ``metadata.yaml`` for a directory of deploy logs, so ``ros2 bag info/play DIR`` and
``rosbags.rosbag2.Reader(DIR)`` open every run in it as one bag (the runs follow one another in time).

Format: version 9, as rosbag2 in ROS 2 Jazzy writes it for MCAP storage (``rosbag2_storage``'s ``yaml.hpp`` and
``qos.cpp``): QoS policies spelled as strings (``keep_last``, ``reliable``, ...; versions up to 8 wrote rmw's enum
integers), ``offered_qos_profiles`` a list, ``type_description_hash`` per topic (left empty: the MCAP files carry
the full definitions), ``custom_data`` and ``ros_distro``. Compression fields are empty: the MCAP files compress
their own chunks, which is not rosbag2's file or message compression.

Counts, times and QoS come from each file's summary section (statistics, channels, schemas): a log whose run
did not close it (no summary, see :func:`deploy.recording.read_log`) is left out with a warning; ``mcap recover``
repairs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mcap.exceptions import McapError
from mcap.reader import make_reader

log = logging.getLogger(__name__)

VERSION = 9
ROS_DISTRO = "jazzy"  # the distribution whose rosbag2 writes this format version
METADATA_FILE = "metadata.yaml"
# rmw enum values (as the recorder's channel metadata writes them, Humble spelling) -> rmw's names
_HISTORY = {0: "system_default", 1: "keep_last", 2: "keep_all", 3: "unknown"}
_RELIABILITY = {0: "system_default", 1: "reliable", 2: "best_effort", 3: "unknown", 4: "best_available"}
_DURABILITY = {0: "system_default", 1: "transient_local", 2: "volatile", 3: "unknown", 4: "best_available"}
_LIVELINESS = {
    0: "system_default",
    1: "automatic",
    2: "manual_by_node",
    3: "manual_by_topic",
    4: "unknown",
    5: "best_available",
}


@dataclass
class LogSummary:
    """What metadata.yaml says about one file. topics: (topic, type, serialization, qos yaml) -> messages."""

    path: Path
    start_ns: int
    end_ns: int
    messages: int
    topics: dict[tuple[str, str, str, str], int] = field(default_factory=dict)


def summarize(path: Path) -> LogSummary | None:
    """The summary of one MCAP file, or None (with a warning) when it has none (an unclosed log)."""
    try:
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
    except (McapError, OSError, ValueError) as err:
        log.warning("%s left out of %s: unreadable (%s)", path, METADATA_FILE, err)
        return None
    if summary is None or summary.statistics is None:
        log.warning("%s left out of %s: no summary section (run `mcap recover` on it)", path, METADATA_FILE)
        return None
    stats = summary.statistics
    result = LogSummary(path, stats.message_start_time, stats.message_end_time, stats.message_count)
    for channel_id, channel in summary.channels.items():
        count = stats.channel_message_counts.get(channel_id, 0)
        if not count:
            continue
        schema = summary.schemas.get(channel.schema_id)
        key = (
            channel.topic,
            schema.name if schema is not None else "",
            channel.message_encoding,
            channel.metadata.get("offered_qos_profiles", ""),
        )
        result.topics[key] = result.topics.get(key, 0) + count
    return result


def qos_v9(offered: str) -> list[dict[str, Any]]:
    """rosbag2's offered_qos_profiles YAML (any version) -> the version 9 list (policies by name)."""
    items = yaml.safe_load(offered) if offered else None
    out = []
    for item in items or []:
        entry = dict(item)
        for key, names in (
            ("history", _HISTORY),
            ("reliability", _RELIABILITY),
            ("durability", _DURABILITY),
            ("liveliness", _LIVELINESS),
        ):
            value = entry.get(key)
            entry[key] = names.get(value, "unknown") if isinstance(value, int) else str(value)
        out.append(entry)
    return out


def bag_metadata(summaries: Iterable[LogSummary]) -> dict[str, Any]:
    """The metadata.yaml document for these files (in the order given)."""
    summaries = list(summaries)
    topics: dict[tuple[str, str, str, str], int] = {}
    for s in summaries:
        for key, count in s.topics.items():
            topics[key] = topics.get(key, 0) + count
    with_messages = [s for s in summaries if s.messages]
    start = min((s.start_ns for s in with_messages), default=0)
    end = max((s.end_ns for s in with_messages), default=0)
    return {
        "rosbag2_bagfile_information": {
            "version": VERSION,
            "storage_identifier": "mcap",
            "duration": {"nanoseconds": end - start},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": sum(s.messages for s in summaries),
            "topics_with_message_count": [
                {
                    "topic_metadata": {
                        "name": topic,
                        "type": ros_type,
                        "serialization_format": encoding,
                        "offered_qos_profiles": qos_v9(qos),
                        "type_description_hash": "",
                    },
                    "message_count": count,
                }
                for (topic, ros_type, encoding, qos), count in topics.items()
            ],
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [s.path.name for s in summaries],
            "files": [
                {
                    "path": s.path.name,
                    "starting_time": {"nanoseconds_since_epoch": s.start_ns if s.messages else 0},
                    "duration": {"nanoseconds": s.end_ns - s.start_ns if s.messages else 0},
                    "message_count": s.messages,
                }
                for s in summaries
            ],
            "custom_data": {"writer": "sim2real deploy.recording.bag_metadata"},
            "ros_distro": ROS_DISTRO,
        }
    }


def write_bag_metadata(directory: str | os.PathLike[str], *, min_logs: int = 2) -> Path | None:
    """Write ``DIR/metadata.yaml`` listing every closed ``*.mcap`` in ``directory`` (oldest first, by name: the
    deploy CLI names logs by their start time) when there are at least ``min_logs`` of them; returns its path,
    or None when there are fewer. Replaces the file atomically (a reader never sees half of it)."""
    directory = Path(directory)
    summaries = [s for p in sorted(directory.glob("*.mcap")) if (s := summarize(p)) is not None]
    if len(summaries) < min_logs:
        return None
    target = directory / METADATA_FILE
    tmp = directory / f".{METADATA_FILE}.{os.getpid()}.tmp"
    tmp.write_text(yaml.safe_dump(bag_metadata(summaries), sort_keys=False, default_flow_style=False))
    os.replace(tmp, target)
    return target
