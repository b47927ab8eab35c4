"""A fake Dynamixel bus on a pseudo-terminal: X-series servos (XL430 / XM430 class) speaking Protocol 2.0, for
tests of drivers/dynamixel_bridge.py through the real ``dynamixel_sdk`` (which opens the pty like a USB adapter).

Written from the ROBOTIS e-manual (Protocol 2.0 and the X-series control tables), not from the SDK:

- Instruction packet ``FF FF FD 00 | ID | LEN_L LEN_H | INST | params | CRC_L CRC_H``; LEN = params + 3 (the
  instruction and the CRC), counted after byte stuffing; status packet the same with INST 0x55 and an error byte
  before the params. Broadcast ID 0xFE.
- Byte stuffing: after the header, every ``FF FF FD`` in the instruction and params is sent as ``FF FF FD FD``.
- CRC-16: polynomial 0x8005, initial 0, not reflected, no final xor (:func:`crc16`; its table is the one printed
  in the e-manual), over every byte from the header to the last parameter.
- Instructions: PING 0x01 (status: model number, firmware version), READ 0x02 (address, length -> data),
  WRITE 0x03 (address, data -> empty status), SYNC_READ 0x82 (address, length, IDs -> one status per ID, in
  the order asked), SYNC_WRITE 0x83 (address, length, then ID + data per servo -> no status). Others get status
  error 0x02 (instruction error).
- A packet whose CRC does not match is dropped: no status, nothing changes (counted in ``crc_errors``).

Each servo holds a 147-byte control table (:data:`ADDR`; X-series values) and a position model: with torque on it
moves toward Goal Position at up to ``max_speed_ticks_s``; present velocity in units of 0.229 rev/min.

    python -m drivers.fake_dynamixel --ids 1,2,3   # prints the pty path to give the SDK's PortHandler
"""

from __future__ import annotations

import argparse
import os
import select
import struct
import threading
import time
import tty

HEADER = bytes([0xFF, 0xFF, 0xFD, 0x00])
BROADCAST_ID = 0xFE
STATUS = 0x55
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
ERR_INSTRUCTION, ERR_DATA_LENGTH, ERR_ACCESS = 0x02, 0x05, 0x07
#: X-series control table (e-manual, XM430-W350 / XL430-W250, Protocol 2.0): name -> (address, size in bytes)
ADDR = {
    "model_number": (0, 2),
    "firmware_version": (6, 1),
    "id": (7, 1),
    "operating_mode": (11, 1),
    "torque_enable": (64, 1),
    "hardware_error_status": (70, 1),
    "goal_position": (116, 4),
    "present_velocity": (128, 4),
    "present_position": (132, 4),
}
TABLE_SIZE = 147
MODEL_XM430_W350 = 1020
VELOCITY_UNIT_RPM = 0.229


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16 of Protocol 2.0 (poly 0x8005, init 0, MSB first, no reflection, no final xor)."""
    for b in data:
        crc = ((crc << 8) ^ CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert 0xFD after every FF FF FD of the instruction/params (or status) bytes."""
    out = bytearray()
    for b in body:
        out.append(b)
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd" and i + 1 < len(body) and body[i + 1] == 0xFD:
            i += 1  # the stuffed byte
        i += 1
    return bytes(out)


def packet(dxl_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A whole packet (instruction, or status when ``instruction`` is 0x55 and params start with the error)."""
    body = stuff(bytes([instruction]) + params)
    head = HEADER + bytes([dxl_id]) + struct.pack("<H", len(body) + 2)
    raw = head + body
    return raw + struct.pack("<H", crc16(raw))


class Servo:
    """One X-series servo: its control table and a speed-limited position model."""

    def __init__(self, dxl_id: int, position_ticks: int = 2048, max_speed_ticks_s: float = 4096.0):
        self.table = bytearray(TABLE_SIZE)
        self.max_speed = max_speed_ticks_s
        self._set("model_number", MODEL_XM430_W350)
        self._set("firmware_version", 45)
        self._set("id", dxl_id)
        self._set("operating_mode", 3)  # position control
        self._set("goal_position", position_ticks)
        self.position = float(position_ticks)
        self._t = time.monotonic()

    def _set(self, name: str, value: int) -> None:
        addr, size = ADDR[name]
        self.table[addr : addr + size] = int(value).to_bytes(size, "little", signed=size == 4)

    def get(self, name: str) -> int:
        addr, size = ADDR[name]
        return int.from_bytes(self.table[addr : addr + size], "little", signed=size == 4)

    def advance(self, now: float) -> None:
        dt, self._t = max(now - self._t, 0.0), now
        speed = 0.0
        if self.get("torque_enable"):
            step = max(min(self.get("goal_position") - self.position, self.max_speed * dt), -self.max_speed * dt)
            self.position += step
            speed = step / dt if dt > 0 else 0.0
        self._set("present_position", round(self.position))
        self._set("present_velocity", round(speed / 4096.0 * 60.0 / VELOCITY_UNIT_RPM))

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.table[addr : addr + length])

    def write(self, addr: int, data: bytes) -> int:
        """0 or a status error. EEPROM (below 64) is locked while the torque is on, as on the servo."""
        if addr + len(data) > TABLE_SIZE:
            return ERR_DATA_LENGTH
        if addr < ADDR["torque_enable"][0] and self.get("torque_enable"):
            return ERR_ACCESS
        self.table[addr : addr + len(data)] = data
        return 0


class FakeDynamixelBus:
    """Servos on a pty; :attr:`port` is the path to open. Runs a thread from :meth:`start` to :meth:`close`."""

    def __init__(self, ids: list[int], positions: dict[int, int] | None = None):
        self.servos = {i: Servo(i, (positions or {}).get(i, 2048)) for i in ids}
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self._slave = slave
        self.port = os.ttyname(slave)
        self.crc_errors = self.packets = 0
        self.log: list[bytes] = []  # every instruction packet with a good CRC, as received (stuffed)
        self._buf = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake_dynamixel", daemon=True)

    def start(self) -> FakeDynamixelBus:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        os.close(self.master)
        os.close(self._slave)

    def __enter__(self) -> FakeDynamixelBus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.005)
            now = time.monotonic()
            for servo in self.servos.values():
                servo.advance(now)
            if ready:
                self._buf += os.read(self.master, 4096)
                for pkt in self._packets():
                    self._handle(pkt)

    def _packets(self):
        """Complete packets from the buffer; bytes before a header are skipped, bad CRCs dropped."""
        buf = self._buf
        while True:
            start = buf.find(HEADER)
            if start < 0:
                del buf[: max(len(buf) - 3, 0)]
                return
            del buf[:start]
            if len(buf) < 7:
                return
            total = 7 + struct.unpack_from("<H", buf, 5)[0]
            if len(buf) < total:
                return
            raw = bytes(buf[:total])
            del buf[:total]
            if crc16(raw[:-2]) != struct.unpack("<H", raw[-2:])[0]:
                self.crc_errors += 1
                continue
            self.packets += 1
            self.log.append(raw)
            yield raw

    def _reply(self, dxl_id: int, error: int = 0, params: bytes = b"") -> None:
        os.write(self.master, packet(dxl_id, STATUS, bytes([error]) + params))

    def _handle(self, raw: bytes) -> None:
        dxl_id = raw[4]
        body = unstuff(raw[7:-2])
        inst, params = body[0], body[1:]
        servo = self.servos.get(dxl_id)
        if inst == SYNC_WRITE and dxl_id == BROADCAST_ID:
            addr, length = struct.unpack_from("<HH", params)
            for k in range(4, len(params) - length + 1, length + 1):
                target = self.servos.get(params[k])
                if target is not None:
                    target.write(addr, params[k + 1 : k + 1 + length])
        elif inst == SYNC_READ and dxl_id == BROADCAST_ID:
            addr, length = struct.unpack_from("<HH", params)
            for i in params[4:]:
                if i in self.servos:
                    self._reply(i, 0, self.servos[i].read(addr, length))
        elif inst == PING and dxl_id == BROADCAST_ID:
            for i, s in sorted(self.servos.items()):
                self._reply(i, 0, s.read(0, 2) + s.read(6, 1))
        elif servo is None:
            return  # not on this bus: no answer (the SDK times out)
        elif inst == PING:
            self._reply(dxl_id, 0, servo.read(0, 2) + servo.read(6, 1))
        elif inst == READ:
            addr, length = struct.unpack_from("<HH", params)
            self._reply(dxl_id, 0, servo.read(addr, length))
        elif inst == WRITE:
            addr = struct.unpack_from("<H", params)[0]
            self._reply(dxl_id, servo.write(addr, params[2:]))
        else:
            self._reply(dxl_id, ERR_INSTRUCTION)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.fake_dynamixel", description=__doc__.splitlines()[0])
    ap.add_argument("--ids", default="1,2,3", help="servo ids, comma-separated")
    ap.add_argument("--seconds", type=float, default=3600.0)
    args = ap.parse_args(argv)
    with FakeDynamixelBus([int(i) for i in args.ids.split(",")]) as bus:
        print(bus.port, flush=True)
        time.sleep(args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
