"""IMU logs in and out: rosbag2 (MCAP file or bag folder, sqlite3 or MCAP) sensor_msgs/Imu topics, and CSV.

CSV layout: a header row with columns ``time`` [s], ``gyro_x gyro_y gyro_z`` [rad/s],
``accel_x accel_y accel_z`` [m/s^2] (any order, extra columns ignored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.csv_io import read_csv_columns
from calibration.errors import CalibrationFileError

log = logging.getLogger(__name__)

IMU_TYPE = "sensor_msgs/msg/Imu"
CSV_COLUMNS = ("time", "gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z")
IMU_MSGDEF = """std_msgs/Header header
geometry_msgs/Quaternion orientation
float64[9] orientation_covariance
geometry_msgs/Vector3 angular_velocity
float64[9] angular_velocity_covariance
geometry_msgs/Vector3 linear_acceleration
float64[9] linear_acceleration_covariance
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec
================================================================================
MSG: geometry_msgs/Quaternion
float64 x
float64 y
float64 z
float64 w
================================================================================
MSG: geometry_msgs/Vector3
float64 x
float64 y
float64 z
"""


@dataclass(frozen=True)
class ImuLog:
    """time: (N,) seconds, increasing; gyro: (N, 3) rad/s; accel: (N, 3) m/s^2 (specific force, +g up at rest)."""

    time: np.ndarray
    gyro: np.ndarray
    accel: np.ndarray
    topic: str = "/imu"

    def __post_init__(self) -> None:
        n = len(self.time)
        if self.gyro.shape != (n, 3) or self.accel.shape != (n, 3):
            raise CalibrationFileError(
                f"IMU log needs time (N,), gyro (N, 3), accel (N, 3); got {self.time.shape}, {self.gyro.shape}, {self.accel.shape}"
            )
        if n < 2 or np.any(np.diff(self.time) <= 0):
            raise CalibrationFileError(
                f"IMU log needs >= 2 samples with strictly increasing time stamps ({n} samples given)"
            )

    @property
    def rate_hz(self) -> float:
        """Sample rate from the median sample interval, Hz."""
        return float(1.0 / np.median(np.diff(self.time)))

    @property
    def duration_s(self) -> float:
        return float(self.time[-1] - self.time[0])


def _stamp(msg, log_time_ns: int) -> float:
    st = msg.header.stamp
    ns = int(st.sec) * 1_000_000_000 + int(st.nanosec)
    return (ns if ns > 0 else log_time_ns) * 1e-9


def _vec(v) -> tuple[float, float, float]:
    return float(v.x), float(v.y), float(v.z)


def _pick_topic(available: dict[str, str], topic: str | None, source: Path) -> str:
    imu_topics = [t for t, ty in available.items() if ty == IMU_TYPE]
    if topic is not None:
        if topic not in imu_topics:
            raise CalibrationFileError(
                f"{source}: no {IMU_TYPE} topic {topic!r}; IMU topics found: {imu_topics or 'none'}"
            )
        return topic
    if len(imu_topics) != 1:
        raise CalibrationFileError(
            f"{source}: expected exactly one {IMU_TYPE} topic, found {imu_topics or 'none'}; pass --topic to choose"
        )
    return imu_topics[0]


def _read_mcap(path: Path, topic: str | None) -> ImuLog:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        if summary is None:
            raise CalibrationFileError(f"{path}: MCAP file has no summary; re-record or re-index it (mcap recover)")
        schemas = summary.schemas
        available = {
            ch.topic: schemas[ch.schema_id].name for ch in summary.channels.values() if ch.schema_id in schemas
        }
        topic = _pick_topic(available, topic, path)
        rows = [
            (_stamp(msg, m.log_time), *_vec(msg.angular_velocity), *_vec(msg.linear_acceleration))
            for _, _, m, msg in reader.iter_decoded_messages(topics=[topic])
        ]
    return _from_rows(rows, topic, path)


def _read_bag_folder(path: Path, topic: str | None) -> ImuLog:
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        available = {c.topic: c.msgtype for c in reader.connections}
        topic = _pick_topic(available, topic, path)
        conns = [c for c in reader.connections if c.topic == topic]
        rows = []
        for conn, ts, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            rows.append((_stamp(msg, ts), *_vec(msg.angular_velocity), *_vec(msg.linear_acceleration)))
    return _from_rows(rows, topic, path)


def _from_rows(rows: list, topic: str, source: Path) -> ImuLog:
    if len(rows) < 2:
        raise CalibrationFileError(f"{source}: topic {topic!r} has {len(rows)} messages; a calibration log needs many")
    data = np.asarray(rows, dtype=float)
    data = data[np.argsort(data[:, 0], kind="stable")]
    return ImuLog(data[:, 0], data[:, 1:4], data[:, 4:7], topic)


def _read_csv(path: Path) -> ImuLog:
    col = read_csv_columns(path, CSV_COLUMNS, what="IMU log")
    gyro = np.stack([col[f"gyro_{a}"] for a in "xyz"], axis=1)
    accel = np.stack([col[f"accel_{a}"] for a in "xyz"], axis=1)
    return ImuLog(col["time"], gyro, accel, topic=path.stem)


def read_imu_log(path: str | Path, topic: str | None = None, reader: str = "auto") -> ImuLog:
    """Read an IMU log: ``.mcap`` file, rosbag2 folder (``metadata.yaml`` + ``.db3``/``.mcap``) or ``.csv``.

    reader: "auto" (mcap-ros2-support for .mcap files, rosbags for folders) or "rosbags" (force rosbags' AnyReader).
    """
    path = Path(path)
    if not path.exists():
        raise CalibrationFileError(
            f"IMU log {str(path)!r} does not exist; expected a .mcap file, a rosbag2 folder or a .csv"
        )
    if path.is_dir() or (reader == "rosbags" and path.suffix == ".mcap"):
        return _read_bag_folder(path, topic)
    if path.suffix == ".mcap":
        return _read_mcap(path, topic)
    if path.suffix == ".csv":
        return _read_csv(path)
    raise CalibrationFileError(
        f"IMU log {path}: unknown format {path.suffix!r}; expected .mcap, .csv or a rosbag2 folder"
    )


def write_imu_mcap(imu: ImuLog, path: str | Path, frame_id: str = "imu") -> Path:
    """Write ``imu`` as sensor_msgs/Imu messages (ROS 2 profile, CDR) to an MCAP file."""
    from mcap_ros2.writer import Writer

    path = Path(path)
    with path.open("wb") as f:
        writer = Writer(f)
        schema = writer.register_msgdef(IMU_TYPE, IMU_MSGDEF)
        cov = [0.0] * 9
        for t, g, a in zip(imu.time, imu.gyro, imu.accel):
            ns = round(float(t) * 1e9)
            msg = {
                "header": {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}, "frame_id": frame_id},
                "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
                "orientation_covariance": [-1.0] + [0.0] * 8,
                "angular_velocity": dict(zip("xyz", map(float, g))),
                "angular_velocity_covariance": cov,
                "linear_acceleration": dict(zip("xyz", map(float, a))),
                "linear_acceleration_covariance": cov,
            }
            writer.write_message(imu.topic, schema, msg, log_time=ns, publish_time=ns)
        writer.finish()
    return path


def write_imu_csv(imu: ImuLog, path: str | Path) -> Path:
    """Write ``imu`` as CSV with the :data:`CSV_COLUMNS` header."""
    path = Path(path)
    np.savetxt(
        path,
        np.column_stack([imu.time, imu.gyro, imu.accel]),
        delimiter=",",
        header=",".join(CSV_COLUMNS),
        comments="",
        fmt="%.9g",
    )
    return path
