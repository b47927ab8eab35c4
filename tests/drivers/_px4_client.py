"""Test helpers: start the fake PX4 (or the bridge) as a process, and an offboard client node on the test side."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from deploy.msgs.px4 import (
    ActuatorMotors,
    OffboardControlMode,
    VehicleCommand,
    VehicleOdometry,
    VehicleRatesSetpoint,
    VehicleStatus,
)
from deploy.transport import LOOPBACK_CONFIG, Ros2Node
from drivers.px4_wire import PX4_QOS

ROOT = Path(__file__).resolve().parents[2]
RPM_MAX = 21702.0  # the Crazyflie's, the simulator's default vehicle
HOVER_U = 0.445  # (14475 / 21702)^2: normalized thrust at hover


def dds_env(domain: int) -> dict[str, str]:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain), CYCLONEDDS_URI=LOOPBACK_CONFIG, PYTHONUNBUFFERED="1")


def start_fake_px4(domain: int, *extra: str, seconds: float = 120.0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "drivers.fake_px4", "--seconds", str(seconds), "--rpm-max", str(RPM_MAX), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=dds_env(domain), stderr=subprocess.PIPE, text=True)


class OffboardClient:
    """What an offboard computer does: stream OffboardControlMode (switchable; ``flag``: the control mode it
    selects), send commands and setpoints, read odometry and status."""

    def __init__(self, domain: int) -> None:
        self.node = Ros2Node("offboard_client", domain_id=domain, config=LOOPBACK_CONFIG)
        self.ocm = self.node.publisher("/fmu/in/offboard_control_mode", OffboardControlMode, PX4_QOS)
        self.motors = self.node.publisher("/fmu/in/actuator_motors", ActuatorMotors, PX4_QOS)
        self.rates_pub = self.node.publisher("/fmu/in/vehicle_rates_setpoint", VehicleRatesSetpoint, PX4_QOS)
        self.commands = self.node.publisher("/fmu/in/vehicle_command", VehicleCommand, PX4_QOS)
        self.odometry = self.node.subscription("/fmu/out/vehicle_odometry", VehicleOdometry, PX4_QOS)
        self.status_sub = self.node.subscription("/fmu/out/vehicle_status", VehicleStatus, PX4_QOS)
        self.streaming, self.flag = False, "direct_actuator"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._stream, daemon=True)
        self._thread.start()
        assert self.odometry.wait_for_publishers(1, 30.0), "the fake PX4 did not come up"
        assert wait_for(lambda: self.odometry.latest() is not None and self.status() is not None, 10.0)

    def _stream(self) -> None:
        while not self._stop.is_set():
            if self.streaming:
                self.ocm.publish(OffboardControlMode(timestamp=0, **{self.flag: True}))
            time.sleep(0.05)  # 20 Hz

    def status(self) -> VehicleStatus | None:
        return self.status_sub.latest()

    def height(self) -> float:
        return -float(self.odometry.latest().position[2])  # NED z down

    def command(self, command: int, p1: float = 0.0, p2: float = 0.0, p3: float = 0.0) -> None:
        msg = VehicleCommand(param1=p1, param2=p2, param3=p3, command=command, target_system=1, from_external=True)
        self.commands.publish(msg)

    def set_offboard(self) -> None:
        self.command(176, 1.0, 6.0)

    def arm(self, arm: bool = True, force: bool = False) -> None:
        self.command(400, 1.0 if arm else 0.0, 21196.0 if force else 0.0)

    def thrust(self, u: float) -> None:
        self.motors.publish(ActuatorMotors(control=[u] * 4 + [math.nan] * 8))

    def rates(self, u: float, roll: float = 0.0, pitch: float = 0.0, yaw: float = 0.0) -> None:
        """VehicleRatesSetpoint: rates rad/s FRD, normalized thrust u (thrust_body z = -u)."""
        self.rates_pub.publish(VehicleRatesSetpoint(roll=roll, pitch=pitch, yaw=yaw, thrust_body=[0.0, 0.0, -u]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.node.close()


def wait_for(predicate, timeout_s: float, period_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period_s)
    return predicate()
