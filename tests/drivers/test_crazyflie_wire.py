"""The packet layouts of drivers/crazyflie_wire.py against cflib's own encoding, byte for byte: cflib's Commander,
Supervisor, HighLevelCommander and LogConfig run against a stand-in Crazyflie object that records the packets
they send, and the fake's decoders must read back exactly what was asked for (float32 rounding, signs, edge
values)."""

from __future__ import annotations

import math
import random
import struct
import warnings

import pytest

pytest.importorskip("cflib", reason="cflib (bitcraze crazyflie-lib-python) is not installed")

from cflib.crazyflie.commander import Commander
from cflib.crazyflie.high_level_commander import HighLevelCommander
from cflib.crazyflie.log import LogConfig
from cflib.crazyflie.supervisor import Supervisor
from cflib.utils.encoding import compress_quaternion, decompress_quaternion

from drivers import crazyflie_wire as wire
from drivers.crazyflie_convert import STATE_VARIABLES, STATUS_VARIABLES


class RecordingCf:
    """What cflib's service classes need of a Crazyflie: send_packet (recorded), callbacks, the protocol version."""

    def __init__(self, protocol_version: int = 12) -> None:
        self.sent: list[tuple[int, bytes]] = []
        version = protocol_version

        class Platform:
            def get_protocol_version(self) -> int:
                return version

        self.platform = Platform()

    def send_packet(self, pk, expected_reply=(), resend=False, timeout=0.2) -> None:
        self.sent.append((pk.get_header(), bytes(pk.data)))

    def add_port_callback(self, port, cb) -> None:
        pass

    def add_header_callback(self, *args) -> None:
        pass


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.mark.parametrize(
    "roll, pitch, yawrate, thrust",
    [(0.0, 0.0, 0.0, 0), (12.5, -7.25, -90.0, 60000), (-720.0, 720.0, 1e-3, 65535), (0.1, 0.2, -0.3, 1)],
)
def test_rpyt_setpoint_is_cflibs_bytes_and_decodes_with_the_pitch_negated(roll, pitch, yawrate, thrust):
    cf = RecordingCf()
    Commander(cf).send_setpoint(roll, pitch, yawrate, thrust)
    ((head, data),) = cf.sent
    assert wire.split_header(head) == (wire.PORT_SETPOINT, 0) and head == wire.header(3, 0) == 0x3C
    assert data == wire.RPYT.pack(roll, -pitch, yawrate, thrust) and len(data) == 14
    v = wire.decode_rpyt(data)
    assert (v.roll, v.pitch, v.yaw, v.thrust) == (f32(roll), f32(-pitch), f32(yawrate), thrust)


def test_cflib_refuses_thrust_outside_uint16_and_the_decoder_refuses_a_short_packet():
    with pytest.raises(ValueError):
        Commander(RecordingCf()).send_setpoint(0, 0, 0, 65536)
    with pytest.raises(ValueError, match="14 bytes"):
        wire.decode_rpyt(b"\x00" * 13)


def test_stop_notify_and_land_packets():
    cf = RecordingCf()
    Commander(cf).send_stop_setpoint()
    Commander(cf).send_notify_setpoint_stop()
    HighLevelCommander(cf).land(0.25, 1.7, yaw=None)
    HighLevelCommander(cf).land(0.0, 2.0, yaw=0.5)
    (h1, d1), (h2, d2), (h3, d3), (h4, d4) = cf.sent
    assert wire.split_header(h1) == (wire.PORT_SETPOINT_GENERIC, wire.GENERIC_SETPOINT_CHANNEL)
    assert d1 == bytes([wire.TYPE_STOP])
    assert wire.split_header(h2) == (wire.PORT_SETPOINT_GENERIC, wire.GENERIC_META_CHANNEL)
    assert d2 == bytes([wire.META_NOTIFY_SETPOINT_STOP, 0, 0, 0, 0])
    assert wire.split_header(h3) == (wire.PORT_SETPOINT_HL, 0) and wire.split_header(h4) == (8, 0)
    land = wire.decode_hl_land(d3)
    assert (land.height_m, land.use_current_yaw, land.duration_s) == (0.25, True, f32(1.7))
    land = wire.decode_hl_land(d4)
    assert (land.height_m, land.yaw_rad, land.use_current_yaw, land.duration_s) == (0.0, 0.5, False, 2.0)


def test_arming_request_uses_the_supervisor_port_from_protocol_12_and_the_platform_port_before():
    cf = RecordingCf(12)
    Supervisor(cf).send_arming_request(True)
    Supervisor(cf).send_arming_request(False)
    assert cf.sent == [(wire.header(9, 1), bytes([wire.CMD_ARM_SYSTEM, 1])), (wire.header(9, 1), bytes([1, 0]))]
    old = RecordingCf(10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Supervisor(old).send_arming_request(True)
    assert old.sent == [(wire.header(13, wire.PLATFORM_CH_COMMAND), bytes([wire.PLATFORM_REQUEST_ARMING, 1]))]


def test_log_data_encoding_is_what_cflib_unpacks():
    config = LogConfig("state", 10)
    for name, ctype in STATE_VARIABLES:
        config.add_variable(name, ctype)
    values = [1234, -32768, 32767, -5, 0, 999, 0xDEADBEEF, -1000, 500, 32767]
    types = {c: k for k, (c, _) in wire.LOG_TYPES.items()}
    payload = b"".join(wire.pack_value(types[c], v) for (_, c), v in zip(STATE_VARIABLES, values, strict=True))
    assert len(payload) == 22 <= wire.LOG_MAX_LEN
    status = sum(struct.calcsize(wire.LOG_TYPES[types[c]][1]) for _, c in STATUS_VARIABLES)
    assert status == 7
    got = []
    config.data_received_cb.add_callback(lambda ts, data, _c: got.append((ts, data)))
    block, ts, data = wire.decode_log_data(wire.encode_log_data(7, 0x1ABCDEF, payload))
    assert (block, ts) == (7, 0xABCDEF)  # 24 bits: the top is dropped
    config.unpack_log_data(data, ts)
    assert got[0][1] == {name: v for (name, _), v in zip(STATE_VARIABLES, values, strict=True)}


def test_pack_value_clips_integers_and_keeps_floats():
    assert wire.pack_value(5, 40000.4) == struct.pack("<h", 32767)
    assert wire.pack_value(5, -1e9) == struct.pack("<h", -32768)
    assert wire.pack_value(2, -3) == struct.pack("<H", 0) and wire.pack_value(1, math.nan) == b"\x00"
    assert wire.pack_value(7, 3.7) == struct.pack("<f", 3.7)
    assert wire.pack_value(0x09, 30000, wire.PARAM_TYPES) == struct.pack("<H", 30000)


def test_compressed_quaternion_matches_cflib_both_ways():
    rng = random.Random(0)
    for _ in range(200):
        q = [rng.gauss(0, 1) for _ in range(4)]
        n = math.sqrt(sum(v * v for v in q))
        q = [v / n for v in q]
        comp = wire.quat_compress(q)
        assert comp == compress_quaternion(q)
        ours, theirs = wire.quat_decompress(comp), decompress_quaternion(comp)
        assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-12
        sign = 1.0 if sum(a * b for a, b in zip(ours, q, strict=True)) > 0 else -1.0
        assert max(abs(a - sign * b) for a, b in zip(ours, q, strict=True)) < 1.5e-3  # 9 bits / sqrt(2)


def test_supervisor_info_names():
    assert wire.info_names(0b1_0000_1010) == ["armed", "can fly", "high-level active"]
