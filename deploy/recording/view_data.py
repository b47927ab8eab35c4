"""What ``sim2real view`` shows, taken out of a log: the pose track, the reference, the command and the safety
states, as arrays on the log's clock (seconds from the first message).

Topics are found by type and name under any namespace (:func:`deploy.recording.foxglove_layout.find_topics`);
a log cut short by a crash is read up to its last complete chunk (:func:`deploy.recording.read_log`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy.recording.foxglove_layout import find_topics
from deploy.recording.frames import parent_frame
from deploy.recording.reader import LogContents, LogFormatError, read_log


@dataclass
class LogView:
    """times in s from ``t0_ns``; positions (N, 3) m and quaternions (N, 4) x, y, z, w, in ``frame`` (``world``,
    or ``base_link`` for an arm's end effector); reference (M, 3) m at reference_times; command (K, C) at
    command_times with labels; transitions: (time s, state) in order."""

    path: Path
    t0_ns: int
    frame: str = "world"
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    quaternions: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    reference_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    command_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    command: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    command_labels: list[str] = field(default_factory=list)
    command_title: str = ""
    transitions: list[tuple[float, str]] = field(default_factory=list)
    end_s: float = 0.0
    problem: str = ""

    def pose_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), quaternion x y z w (4,)) of the last pose at or before ``t`` s (the first before it)."""
        i = max(int(np.searchsorted(self.times, t, side="right")) - 1, 0)
        return self.positions[i], self.quaternions[i]


def resolve_log(path: str | os.PathLike[str]) -> Path:
    """A log file, or the newest ``*.mcap`` (by name: the deploy CLI names logs by start time) of a directory."""
    path = Path(path)
    if path.is_dir():
        logs = sorted(path.glob("*.mcap"))
        if not logs:
            raise LogFormatError(f"{str(path)!r} holds no .mcap log; give a log file or a directory of deploy logs")
        return logs[-1]
    if not path.exists():
        raise LogFormatError(f"log {str(path)!r} does not exist; give a .mcap file written by `sim2real deploy`")
    return path


def load_view(path: str | os.PathLike[str]) -> LogView:
    """The view of the log at ``path`` (a file, or a directory: its newest log)."""
    path = resolve_log(path)
    return view_of(read_log(path), path)


def view_of(log: LogContents, path: Path) -> LogView:
    roles = find_topics({m.topic: m.ros_type for m in log.messages})
    t0 = min((m.log_time_ns for m in log.messages), default=0)
    view = LogView(path, t0, problem=log.problem)
    view.end_s = (max((m.log_time_ns for m in log.messages), default=t0) - t0) * 1e-9

    def seconds(msgs) -> np.ndarray:
        return np.array([(m.log_time_ns - t0) * 1e-9 for m in msgs])

    poses = log.topic(roles["pose"]) if "pose" in roles else []
    if poses:
        view.times = seconds(poses)
        view.positions = np.array([_xyz(m.msg.pose.position) for m in poses])
        view.quaternions = np.array([[*_xyz(q := m.msg.pose.orientation), q.w] for m in poses])
        view.frame = parent_frame(poses[0].msg.header.frame_id)
    refs = log.topic(roles["reference"]) if "reference" in roles else []
    if refs:
        view.reference_times = seconds(refs)
        view.reference = np.array([_xyz(m.msg.pose.position) for m in refs])
    _commands(view, log, roles, seconds)
    if "safety" in roles:
        view.transitions = [((m.log_time_ns - t0) * 1e-9, m.msg.to_state) for m in log.topic(roles["safety"])]
    return view


def _xyz(v) -> list[float]:
    return [v.x, v.y, v.z]


def _commands(view: LogView, log: LogContents, roles: dict[str, str], seconds) -> None:
    if "motors" in roles:
        msgs = log.topic(roles["motors"])
        n = max((len(m.msg.rpm) for m in msgs), default=0)
        view.command = np.array([list(m.msg.rpm) + [np.nan] * (n - len(m.msg.rpm)) for m in msgs]).reshape(-1, n)
        view.command_labels, view.command_title = [f"M{i + 1}" for i in range(n)], "motor commands (rpm)"
    elif "rates" in roles:
        msgs = log.topic(roles["rates"])
        rows = [[m.msg.thrust, m.msg.body_rate.x, m.msg.body_rate.y, m.msg.body_rate.z] for m in msgs]
        view.command = np.array(rows).reshape(-1, 4)
        view.command_labels = ["thrust (N)", "roll rate (rad/s)", "pitch rate (rad/s)", "yaw rate (rad/s)"]
        view.command_title = "collective thrust (N), body rates (rad/s)"
    elif "joint_command" in roles:
        msgs = log.topic(roles["joint_command"])
        n = max((len(m.msg.position) for m in msgs), default=0)
        rows = [list(m.msg.position) + [np.nan] * (n - len(m.msg.position)) for m in msgs]
        view.command = np.array(rows).reshape(-1, n)
        names = list(msgs[0].msg.name) if msgs else []
        view.command_labels = names if len(names) == n else [f"joint {i}" for i in range(n)]
        view.command_title = "joint position targets (rad)"
    else:
        return
    view.command_times = seconds(msgs)
