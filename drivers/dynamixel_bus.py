"""Dynamixel X-series servos over Protocol 2.0 through ``dynamixel_sdk`` (ROBOTIS' own SDK), in joint units.

Control table (ROBOTIS e-manual, XM430-W350 / XL430-W250, Protocol 2.0; the same addresses on the X series):

    64   Torque Enable      1 byte   1 = on (EEPROM below 64 is locked while on)
    116  Goal Position      4 bytes  ticks, 4096 per revolution, 2048 = the horn's centre
    128  Present Velocity   4 bytes  signed, 0.229 rev/min per unit
    132  Present Position   4 bytes  signed ticks

Reads are one GroupSyncRead of addresses 128..135 (velocity and position in one status packet per servo),
writes one GroupSyncWrite of Goal Position for all servos. Joint angle = sign * (ticks - 2048) * 2 pi / 4096 +
offset_rad, per joint (the horn's mounting), so the joints have the robot profile's zero and direction.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ADDR_TORQUE_ENABLE = 64
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_VELOCITY = 128
LEN_PRESENT = 8  # present velocity (128) + present position (132)
TICKS_PER_REV = 4096
CENTER_TICKS = 2048
RAD_PER_TICK = 2.0 * math.pi / TICKS_PER_REV
VELOCITY_UNIT_RAD_S = 0.229 * 2.0 * math.pi / 60.0  # 0.229 rev/min


class DynamixelError(RuntimeError):
    """The bus did not answer as expected (port, a servo missing, a packet lost or corrupted)."""


@dataclass(frozen=True)
class ServoJoint:
    """A joint driven by one servo: ``name`` (the robot profile's), ``id`` (1..252), ``sign`` (+1 / -1: the joint
    turns with or against the servo), ``offset_rad`` (the joint angle at tick 2048), ticks limits."""

    name: str
    id: int
    sign: int = 1
    offset_rad: float = 0.0
    min_ticks: int = 0
    max_ticks: int = TICKS_PER_REV - 1

    def __post_init__(self) -> None:
        if not 0 <= self.id <= 252:
            raise ValueError(f"joint {self.name}: servo id must be 0..252, got {self.id}")
        if self.sign not in (1, -1):
            raise ValueError(f"joint {self.name}: sign must be 1 or -1, got {self.sign}")
        if not (math.isfinite(self.offset_rad) and 0 <= self.min_ticks < self.max_ticks < TICKS_PER_REV):
            raise ValueError(f"joint {self.name}: finite offset_rad and 0 <= min_ticks < max_ticks <= 4095 expected")


def servo_joints(items: Sequence[Mapping[str, Any]]) -> tuple[ServoJoint, ...]:
    joints = tuple(ServoJoint(**dict(item)) for item in items)
    if not joints or len({j.id for j in joints}) != len(joints) or len({j.name for j in joints}) != len(joints):
        raise ValueError(f"dynamixel.joints: expected distinct names and ids, got {[(j.name, j.id) for j in joints]}")
    return joints


def to_ticks(joints: Sequence[ServoJoint], q_rad: np.ndarray) -> list[int]:
    """Joint angles (J,) rad -> goal ticks, clipped to each servo's limits."""
    out = []
    for j, q in zip(joints, q_rad, strict=True):
        ticks = CENTER_TICKS + j.sign * (float(q) - j.offset_rad) / RAD_PER_TICK
        out.append(int(min(max(round(ticks), j.min_ticks), j.max_ticks)))
    return out


def to_radians(joints: Sequence[ServoJoint], ticks: Sequence[int]) -> np.ndarray:
    return np.array(
        [j.sign * (t - CENTER_TICKS) * RAD_PER_TICK + j.offset_rad for j, t in zip(joints, ticks, strict=True)]
    )


class DynamixelBus:
    """The servos of ``joints`` on ``port`` at ``baudrate`` (the X series' default is 57600)."""

    def __init__(self, port: str, joints: Sequence[ServoJoint], baudrate: int = 57600):
        import dynamixel_sdk as sdk

        self.sdk, self.joints = sdk, tuple(joints)
        self.port = sdk.PortHandler(port)
        self.packet = sdk.PacketHandler(2.0)
        if not self.port.openPort():
            raise DynamixelError(f"cannot open {port}")
        if not self.port.setBaudRate(baudrate):
            raise DynamixelError(f"cannot set {baudrate} baud on {port}")
        self.reader = sdk.GroupSyncRead(self.port, self.packet, ADDR_PRESENT_VELOCITY, LEN_PRESENT)
        self.writer = sdk.GroupSyncWrite(self.port, self.packet, ADDR_GOAL_POSITION, 4)
        for j in self.joints:
            self.reader.addParam(j.id)

    def close(self) -> None:
        self.port.closePort()

    def _check(self, result: int, error: int, what: str) -> None:
        if result != self.sdk.COMM_SUCCESS:
            raise DynamixelError(f"{what}: {self.packet.getTxRxResult(result)}")
        if error:
            raise DynamixelError(f"{what}: {self.packet.getRxPacketError(error)}")

    def ping(self) -> dict[int, int]:
        """id -> model number of every joint's servo; raises :class:`DynamixelError` naming a missing one."""
        models = {}
        for j in self.joints:
            model, result, error = self.packet.ping(self.port, j.id)
            self._check(result, error, f"ping servo {j.id} ({j.name})")
            models[j.id] = model
        return models

    def torque(self, on: bool) -> None:
        for j in self.joints:
            result, error = self.packet.write1ByteTxRx(self.port, j.id, ADDR_TORQUE_ENABLE, int(on))
            self._check(result, error, f"torque {'on' if on else 'off'} servo {j.id} ({j.name})")

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(J,) joint position rad, (J,) joint velocity rad/s, one sync read."""
        result = self.reader.txRxPacket()
        if result != self.sdk.COMM_SUCCESS:
            raise DynamixelError(f"sync read: {self.packet.getTxRxResult(result)}")
        ticks, vel = [], []
        for j in self.joints:
            if not self.reader.isAvailable(j.id, ADDR_PRESENT_VELOCITY, LEN_PRESENT):
                raise DynamixelError(f"sync read: no data from servo {j.id} ({j.name})")
            raw = (
                self.reader.getData(j.id, ADDR_PRESENT_VELOCITY, 4),
                self.reader.getData(j.id, ADDR_PRESENT_VELOCITY + 4, 4),
            )
            v, p = (struct.unpack("<i", struct.pack("<I", x & 0xFFFFFFFF))[0] for x in raw)
            ticks.append(p)
            vel.append(j.sign * v * VELOCITY_UNIT_RAD_S)
        return to_radians(self.joints, ticks), np.array(vel)

    def write(self, q_rad: np.ndarray) -> list[int]:
        """Goal positions for every joint, one sync write; returns the ticks sent."""
        ticks = to_ticks(self.joints, q_rad)
        self.writer.clearParam()
        for j, t in zip(self.joints, ticks, strict=True):
            self.writer.addParam(j.id, list(struct.pack("<i", t)))
        result = self.writer.txPacket()
        if result != self.sdk.COMM_SUCCESS:
            raise DynamixelError(f"sync write: {self.packet.getTxRxResult(result)}")
        return ticks
