"""The golden log: a fixed set of messages written once to tests/deploy/data/golden_small.mcap.

Regenerate only on purpose (a format change that must break old logs):
``python -m tests.deploy.recording.golden``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.msgs import (
    BatteryState,
    Imu,
    JointState,
    MotorCommand,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    Twist,
    TwistStamped,
    Vector3,
    make_header,
)
from deploy.recording import FlightRecorder

GOLDEN_PATH = Path(__file__).resolve().parents[1] / "data" / "golden_small.mcap"
T0 = 1_700_000_000_000_000_000  # ns
DT = 2_000_000  # ns, a 500 Hz loop


def golden_messages() -> list[tuple[str, Any, int]]:
    """(kind, message or arguments, stamp_ns) in write order; kinds name FlightRecorder.write_* methods."""
    out: list[tuple[str, Any, int]] = []
    out.append(("safety_transition", ("DISARMED", "ARMING", "operator arm", ""), T0))
    for i in range(5):
        t = T0 + (i + 1) * DT
        h = make_header(t, "world")
        out.append(("state", PoseStamped(h, Pose(Point(0.1 * i, -0.2, 1.0), Quaternion(0.0, 0.0, 0.0, 1.0))), t))
        out.append(("state", TwistStamped(h, Twist(Vector3(0.5, 0.0, -0.1 * i), Vector3(0.0, 0.01 * i, 0.0))), t))
        imu = Imu(make_header(t, "imu"), Quaternion(0.0, 0.0, 0.0, 1.0), [0.0] * 9, Vector3(0.01, 0.02, 0.03 * i))
        imu.linear_acceleration = Vector3(0.0, 0.0, 9.81)
        out.append(("state", imu, t))
        out.append(("observation", [float(i), 0.25, -1.5, 3.0], t))
        out.append(("action", [0.5 * i, -0.5], t))
        out.append(("command", MotorCommand(make_header(t), [15000.0 + i, 15001.0, 15002.0, 15003.0]), t))
        out.append(("timing", (0.000019 * (i + 1), 0.002, 0.00001 * i, i // 3), t))
    t = T0 + 6 * DT
    out.append(("state", JointState(make_header(t), ["hip", "knee"], [0.1, -0.2], [0.0, 1.0], [2.5, -2.5]), t))
    battery = BatteryState(make_header(t), voltage=3.9, percentage=0.8, present=True, cell_voltage=[3.9])
    out.append(("state", battery, t))
    out.append(("safety_transition", ("ACTIVE", "FALLBACK", "attitude 61.0 deg > 60.0 deg for 0.3 s", "tilt"), t))
    return out


def write_messages(recorder: FlightRecorder, messages: list[tuple[str, Any, int]]) -> None:
    """Write (kind, payload, stamp_ns) items through the recorder's convenience writers."""
    for kind, payload, stamp in messages:
        method = getattr(recorder, f"write_{kind}")
        if isinstance(payload, tuple):
            method(*payload, stamp)
        else:
            method(payload, stamp)


def write_golden(path: Path = GOLDEN_PATH) -> None:
    with FlightRecorder(path, overwrite=True, min_free_bytes=0, metadata={"sim2real": {"robot": "golden"}}) as rec:
        write_messages(rec, golden_messages())


if __name__ == "__main__":
    write_golden()
