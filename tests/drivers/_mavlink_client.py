"""Test helpers for the MAVLink bridge and the fake autopilot: processes on UDP loopback (and DDS for the bridge),
their logs read line by line, and a raw pymavlink peer standing in for a companion computer."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from drivers.mavlink_wire import connect, mavlink
from tests.drivers._px4_client import ROOT, RPM_MAX, dds_env, wait_for

BRIDGE_CONFIG = {
    "px4": ROOT / "launch" / "mavlink_px4_bridge.yaml",
    "ardupilot": ROOT / "launch" / "mavlink_ardupilot_bridge.yaml",
}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process whose stderr is collected line by line (a reader thread), so a test can wait for a log."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def seen(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def wait_for(self, text: str, timeout_s: float) -> bool:
        return wait_for(lambda: self.seen(text), timeout_s)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(2.0)


def start_fake(autopilot: str, port: int, *extra: str, seconds: float = 60.0, domain: int = 0) -> Process:
    cmd = [sys.executable, "-m", "drivers.fake_mavlink", "--autopilot", autopilot, "--rpm-max", str(RPM_MAX)]
    cmd += ["--connection", f"udpout:127.0.0.1:{port}", "--seconds", str(seconds), *extra]
    return Process(cmd, dds_env(domain))


def start_bridge(autopilot: str, port: int, domain: int, namespace: str, vehicle_id: str, *extra: str) -> Process:
    cmd = [sys.executable, "-m", "drivers.mavlink_bridge", "--namespace", namespace, "--vehicle-id", vehicle_id]
    cmd += ["--config", str(BRIDGE_CONFIG[autopilot]), "--connection", f"udpin:127.0.0.1:{port}"]
    cmd += ["--seconds", "60", *extra]
    return Process(cmd, dds_env(domain))


class MavlinkPeer:
    """A companion computer's side of the link, by hand: receives everything (a thread; newest message of each
    type, every COMMAND_ACK), streams SET_ATTITUDE_TARGET at 20 Hz while ``streaming`` (thrust ``thrust``, zero
    rates), sends commands."""

    def __init__(self, port: int) -> None:
        self.conn = connect(f"udpin:127.0.0.1:{port}", 0, 1, 191)
        self.latest: dict[str, object] = {}
        self.acks: list[tuple[float, object]] = []
        self.streaming, self.thrust = False, 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._receive, self._stream)]
        for t in self._threads:
            t.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            msg = self.conn.recv_match(blocking=True, timeout=0.05)
            if msg is None:
                continue
            self.latest[msg.get_type()] = msg
            if msg.get_type() == "COMMAND_ACK":
                self.acks.append((time.monotonic(), msg))

    def _stream(self) -> None:
        while not self._stop.is_set():
            if self.streaming:
                self.setpoint(self.thrust)
            time.sleep(0.05)

    def setpoint(self, thrust: float, rates=(0.0, 0.0, 0.0), type_mask: int = 128) -> None:
        with self._lock:
            self.conn.mav.set_attitude_target_send(0, 1, 1, type_mask, [1.0, 0.0, 0.0, 0.0], *rates, thrust)

    def command(self, command: int, p1: float = 0.0, p2: float = 0.0, p3: float = 0.0, timeout_s: float = 2.0):
        """COMMAND_LONG; returns the MAV_RESULT of its COMMAND_ACK (None: no answer)."""
        sent = time.monotonic()
        with self._lock:
            self.conn.mav.command_long_send(1, 1, command, 0, p1, p2, p3, 0, 0, 0, 0)
        found: list = []

        def answered() -> bool:
            found[:] = [m for t, m in list(self.acks) if t >= sent and m.command == command]
            return bool(found)

        return found[0].result if wait_for(answered, timeout_s) else None

    def height(self) -> float:
        odo = self.latest.get("ODOMETRY")
        return -float(odo.z) if odo is not None else -float(self.latest["LOCAL_POSITION_NED"].z)

    def heartbeat(self):
        return self.latest.get("HEARTBEAT")

    def armed(self) -> bool:
        return bool(self.heartbeat().base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
        self.conn.close()
