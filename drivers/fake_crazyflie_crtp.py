"""The Crazyflie's CRTP services that a cflib connection needs, for the fake Crazyflie: link source, protocol
version, memories (none), the log and parameter tables of contents, parameter reads and writes, log blocks and
their data. Answers follow the firmware's formats (crazyflie-firmware 2026.08: crtpservice.c, platformservice.c,
crtp_mem.c, log.c, param_logic.c), version-2 TOCs (16-bit ids, CRTP protocol >= 4).

The tables hold only what they are given: a :class:`Variable` per log variable and per parameter, each with a
getter (and a setter for writable parameters). cflib's ``Crazyflie.open_link`` runs: link source -> protocol
version -> log reset + log TOC -> memories -> parameter TOC -> a read of every parameter; then the host creates
and starts log blocks (create_v2 with (type, id) pairs; start with period / 10 ms) and writes parameters.
"""

from __future__ import annotations

import errno
import logging
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drivers import crazyflie_wire as wire

log = logging.getLogger("sim2real.fake_crazyflie")


@dataclass
class Variable:
    """A log variable or parameter: ``group.name``, its type id (crazyflie_wire.LOG_TYPES / PARAM_TYPES, with
    PARAM_RONLY for read-only parameters), a getter, and a setter for writable parameters."""

    group: str
    name: str
    type_id: int
    get: Callable[[], float]
    set: Callable[[float], None] | None = None


@dataclass
class _Block:
    ops: list[tuple[Variable, int]] = field(default_factory=list)  # (variable, fetch type)
    period_ms: int = 0
    next_ms: float | None = None  # None: stopped


class CrtpServices:
    """``handle(port, channel, data, now_ms)`` answers through ``send(raw packet)``; ``emit_logs(now_ms)`` sends
    the started log blocks that are due."""

    def __init__(
        self,
        log_variables: Sequence[Variable],
        params: Sequence[Variable],
        send: Callable[[bytes], None],
        protocol_version: int = 12,
    ) -> None:
        self.log_variables, self.params, self.send = list(log_variables), list(params), send
        self.protocol_version = protocol_version
        self.blocks: dict[int, _Block] = {}
        self.param_writes: list[tuple[str, float]] = []  # (group.name, value), in order: for tests and logs

    def _reply(self, port: int, channel: int, data: bytes) -> None:
        self.send(bytes([wire.header(port, channel)]) + data)

    def handle(self, port: int, channel: int, data: bytes, now_ms: float) -> bool:
        """Answer a service packet; False if the packet is not one of these services."""
        if port == wire.PORT_LINK and channel == wire.LINK_CH_SOURCE:
            self._reply(port, channel, wire.LINK_SOURCE_ANSWER)
        elif port == wire.PORT_LINK and channel == wire.LINK_CH_ECHO:
            self._reply(port, channel, data)
        elif port == wire.PORT_PLATFORM and channel == wire.PLATFORM_CH_VERSION and data[:1] == b"\x00":
            self._reply(port, channel, bytes([wire.VERSION_GET_PROTOCOL]) + struct.pack("<i", self.protocol_version))
        elif port == wire.PORT_MEM and channel == wire.MEM_CH_INFO and data[:1] == bytes([wire.MEM_INFO_NBR]):
            self._reply(port, channel, bytes([wire.MEM_INFO_NBR, 0]))  # no memories
        elif port in (wire.PORT_LOG, wire.PORT_PARAM) and channel == wire.TOC_CHANNEL and data:
            self._toc(port, data)
        elif port == wire.PORT_LOG and channel == wire.LOG_CH_SETTINGS and data:
            self._log_control(data, now_ms)
        elif port == wire.PORT_PARAM and channel in (wire.PARAM_CH_READ, wire.PARAM_CH_WRITE) and len(data) >= 2:
            self._param(channel, data)
        else:
            return False
        return True

    # ------------------------------------------------------------------ tables of contents
    def _toc(self, port: int, data: bytes) -> None:
        table = self.log_variables if port == wire.PORT_LOG else self.params
        if data[0] == wire.CMD_TOC_INFO_V2:
            crc = zlib.crc32(",".join(f"{v.group}.{v.name}:{v.type_id}" for v in table).encode())
            extra = bytes([wire.LOG_MAX_BLOCKS, wire.LOG_MAX_OPS]) if port == wire.PORT_LOG else b""
            self._reply(port, wire.TOC_CHANNEL, bytes([data[0]]) + struct.pack("<HI", len(table), crc) + extra)
        elif data[0] == wire.CMD_TOC_ITEM_V2 and len(data) >= 3:
            ident = data[1] | data[2] << 8
            if ident >= len(table):
                self._reply(port, wire.TOC_CHANNEL, bytes([data[0]]))
                return
            v = table[ident]
            body = bytes([data[0], data[1], data[2], v.type_id]) + f"{v.group}\0{v.name}\0".encode()
            self._reply(port, wire.TOC_CHANNEL, body)
        else:
            log.warning("TOC command %d (version 1?) is not served: the fake speaks CRTP protocol >= 4", data[0])

    # ------------------------------------------------------------------ parameters
    def _param(self, channel: int, data: bytes) -> None:
        ident = data[0] | data[1] << 8
        if ident >= len(self.params):
            self._reply(wire.PORT_PARAM, channel, bytes(data[:2]) + bytes([errno.ENOENT]))
            return
        p = self.params[ident]
        kind = p.type_id & 0x0F
        if channel == wire.PARAM_CH_READ:
            value = wire.pack_value(kind, p.get(), wire.PARAM_TYPES)
            self._reply(wire.PORT_PARAM, channel, bytes(data[:2]) + b"\x00" + value)
            return
        if p.type_id & wire.PARAM_RONLY or p.set is None:
            return  # param_logic.c: a write to a read-only parameter gets no answer
        value = wire.unpack_value(kind, bytes(data[2:]), wire.PARAM_TYPES)
        p.set(value)
        self.param_writes.append((f"{p.group}.{p.name}", value))
        self._reply(wire.PORT_PARAM, channel, bytes(data))  # the write, echoed

    # ------------------------------------------------------------------ log blocks
    def _log_control(self, data: bytes, now_ms: float) -> None:
        cmd = data[0]
        block_id = data[1] if len(data) > 1 else 0
        status = 0
        if cmd == wire.LOG_RESET:
            self.blocks.clear()
        elif cmd in (wire.LOG_CREATE_V2, wire.LOG_APPEND_V2):
            if cmd == wire.LOG_CREATE_V2 and block_id in self.blocks:
                status = errno.EEXIST
            elif cmd == wire.LOG_APPEND_V2 and block_id not in self.blocks:
                status = errno.ENOENT
            elif len(self.blocks) >= wire.LOG_MAX_BLOCKS and block_id not in self.blocks:
                status = errno.ENOMEM
            else:
                status = self._add_ops(self.blocks.setdefault(block_id, _Block()), bytes(data[2:]))
        elif cmd == wire.LOG_START:
            status = self._start(block_id, data[2] * 10 if len(data) > 2 else 0, now_ms)
        elif cmd == wire.LOG_STOP and block_id in self.blocks:
            self.blocks[block_id].next_ms = None
        elif cmd == wire.LOG_DELETE:
            status = 0 if self.blocks.pop(block_id, None) is not None else errno.ENOENT
        else:
            status = errno.ENOENT if cmd in (wire.LOG_STOP,) else errno.ENOEXEC
        self._reply(wire.PORT_LOG, wire.LOG_CH_SETTINGS, bytes([cmd, block_id, status]))

    def _add_ops(self, block: _Block, settings: bytes) -> int:
        ops = []
        for i in range(0, len(settings) - 2, 3):
            kind, ident = settings[i], settings[i + 1] | settings[i + 2] << 8
            if ident >= len(self.log_variables) or (kind & 0x0F) not in wire.LOG_TYPES:
                return errno.ENOENT
            ops.append((self.log_variables[ident], kind & 0x0F))
        length = sum(struct.calcsize(wire.LOG_TYPES[k][1]) for _, k in block.ops + ops)
        if length > wire.LOG_MAX_LEN:
            return errno.E2BIG
        block.ops.extend(ops)
        return 0

    def _start(self, block_id: int, period_ms: int, now_ms: float) -> int:
        block = self.blocks.get(block_id)
        if block is None:
            return errno.ENOENT
        if period_ms <= 0:
            return errno.EINVAL
        block.period_ms, block.next_ms = period_ms, now_ms
        return 0

    def emit_logs(self, now_ms: float) -> None:
        """Send every started block whose period has come (its values now, stamped now_ms)."""
        for block_id, block in self.blocks.items():
            if block.next_ms is None or now_ms + 1e-6 < block.next_ms:
                continue
            payload = b"".join(wire.pack_value(kind, var.get()) for var, kind in block.ops)
            self._reply(wire.PORT_LOG, wire.LOG_CH_DATA, wire.encode_log_data(block_id, int(now_ms), payload))
            block.next_ms = max(block.next_ms + block.period_ms, now_ms - block.period_ms)
