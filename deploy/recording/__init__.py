"""Flight recorder: one MCAP file per deploy run (ROS 2 profile, CDR), and a reader that survives crashes."""

from deploy.recording.errors import RecorderError
from deploy.recording.preflight import DEFAULT_MIN_FREE_BYTES, preflight
from deploy.recording.reader import LogContents, LogFormatError, LoggedMessage, read_log
from deploy.recording.recorder import FlightRecorder

__all__ = [
    "DEFAULT_MIN_FREE_BYTES",
    "FlightRecorder",
    "LogContents",
    "LogFormatError",
    "LoggedMessage",
    "RecorderError",
    "preflight",
    "read_log",
]
