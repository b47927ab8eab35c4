"""Our unitree_go types and CRC against Unitree's own (unitree_sdk2py: its IDL classes and utils/crc.py, the
independent reference): DDS type identifiers, CDR bytes and CRCs of the same randomly filled messages, the packed
layout the CRC covers, and a LowCmd written with our types read by a reader of Unitree's types over real DDS."""

from __future__ import annotations

import time

import numpy as np
import pytest

import deploy.msgs.unitree as ours
from drivers.unitree_convert import POS_STOP_F, VEL_STOP_F, LowCmdFrame, MotorTargets
from drivers.unitree_crc import LOW_CMD, LOW_STATE, crc, crc32_mpeg2, crc_ok, pack, with_crc
from tests.domains import random_domain

U = pytest.importorskip("unitree_sdk2py.idl.unitree_go.msg.dds_", reason="Unitree's reference: make install")
from unitree_sdk2py.utils.crc import CRC  # noqa: E402

NESTED = {"motor_cmd": "MotorCmd_", "bms_cmd": "BmsCmd_", "imu_state": "IMUState_", "motor_state": "MotorState_",
          "bms_state": "BmsState_"}  # fmt: skip
# Unitree's CRC packs these unsigned fields with signed struct codes ('b', 'h'): keep them in the common range
SIGNED_IN_UNITREE_PACK = {"temperature": 127, "bq_ntc": 127, "mcu_ntc": 127, "temperature_ntc1": 127,
                          "temperature_ntc2": 127, "fan_frequency": 32767}  # fmt: skip


def _randomize(view: np.ndarray, rng: np.random.Generator) -> None:
    """Fill a structured array (n,) with random values of each field's type."""
    for name in view.dtype.names:
        column, sub = view[name], view.dtype[name].base
        if sub.names is not None:
            _randomize(column.reshape(-1), rng)
        elif sub.kind == "f":
            column[...] = (rng.standard_normal(column.shape) * 10.0 ** rng.integers(-3, 4, column.shape)).astype(sub)
        else:
            info = np.iinfo(sub)
            high = min(info.max, SIGNED_IN_UNITREE_PACK.get(name, info.max))
            column[...] = rng.integers(max(info.min, -high - 1), high, column.shape, endpoint=True, dtype=np.int64)


def _build(module, cls_name: str, record):
    """An IDL struct of ``module`` from a structured record, field by field."""
    kwargs = {}
    for name in record.dtype.names:
        v = record[name]
        if name in NESTED:
            kwargs[name] = [_build(module, NESTED[name], x) for x in v] if v.shape else _build(module, NESTED[name], v)
        else:
            kwargs[name] = v.tolist() if v.shape else v.item()
    return getattr(module, cls_name)(**kwargs)


def _pair(kind: str, seed: int):
    layout = LOW_CMD if kind == "LowCmd_" else LOW_STATE
    record = np.zeros(1, dtype=layout)
    _randomize(record, np.random.default_rng(seed))
    return _build(ours, kind, record[0]), _build(U, kind, record[0]), record


@pytest.mark.parametrize(
    "name", ["LowCmd_", "LowState_", "MotorCmd_", "MotorState_", "BmsCmd_", "BmsState_", "IMUState_"]
)
def test_dds_type_names_and_identifiers_are_unitrees(name):
    ours_cls, theirs = getattr(ours, name), getattr(U, name)
    assert ours_cls.__idl_typename__ == theirs.__idl_typename__ == f"unitree_go.msg.dds_.{name}"
    assert ours_cls.__idl__.get_type_id() == theirs.__idl__.get_type_id()  # what DDS matching compares


@pytest.mark.parametrize("kind", ["LowCmd_", "LowState_"])
def test_cdr_bytes_and_crc_equal_unitrees_for_random_messages(kind):
    reference = CRC()
    for seed in range(40):
        mine, theirs, _ = _pair(kind, seed)
        data = mine.serialize()
        assert data == theirs.serialize()
        assert type(theirs).deserialize(data).serialize() == data == type(mine).deserialize(data).serialize()
        assert crc(mine) == reference.Crc(theirs)
        assert crc(type(mine).deserialize(data)) == crc(mine)  # deserialized uint8 arrays arrive as bytes
        # the layout the CRC covers is Unitree's packed struct, word for word
        packer = reference._CRC__PackLowCmd if kind == "LowCmd_" else reference._CRC__PackLowState
        assert np.frombuffer(pack(mine).tobytes(), "<u4")[:-1].tolist() == packer(theirs)


def test_packed_sizes_are_the_c_structs():
    assert (LOW_CMD.itemsize, LOW_STATE.itemsize) == (812, 1180)  # unitree_sdk2py utils/crc.py "size 812 / 1180"
    assert len(ours.LowCmd_().serialize()) - 4 == 808  # CDR does not pad nested structs: the CRC cannot use it


def test_crc32_mpeg2_is_the_catalogue_crc_and_unitrees_bitwise_loop():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # CRC-32/MPEG-2 check value
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 202):
        words = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        assert crc32_mpeg2(words.astype(">u4").tobytes()) == CRC()._crc_py(words.tolist())


def test_crc_catches_every_single_bit_flip_of_a_lowcmd():
    msg = with_crc(_pair("LowCmd_", 1)[0])
    raw = bytearray(pack(msg).tobytes())
    from drivers.unitree_crc import crc_of_packed

    base = crc_of_packed(np.frombuffer(bytes(raw), dtype=LOW_CMD))
    for bit in range(0, 808 * 8, 7):  # every 7th bit of the covered words
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert crc_of_packed(np.frombuffer(bytes(flipped), dtype=LOW_CMD)) != base


def test_the_bridges_lowcmd_has_unitrees_header_idle_slots_and_crc():
    frame = LowCmdFrame(12)
    rng = np.random.default_rng(2)
    targets = MotorTargets(*(rng.standard_normal(12) for _ in range(5)))
    frame.set(targets)
    msg = frame.message()
    assert list(msg.head) == [0xFE, 0xEF] and msg.level_flag == 0xFF
    assert [m.mode for m in msg.motor_cmd] == [0x01] * 20
    np.testing.assert_allclose([m.q for m in msg.motor_cmd[:12]], targets.q.astype(np.float32))
    np.testing.assert_allclose([m.kd for m in msg.motor_cmd[:12]], targets.kd.astype(np.float32))
    for m in msg.motor_cmd[12:]:
        assert (m.q, m.dq, m.kp, m.kd, m.tau) == (np.float32(POS_STOP_F), VEL_STOP_F, 0.0, 0.0, 0.0)
    theirs = U.LowCmd_.deserialize(msg.serialize())
    assert msg.crc == CRC().Crc(theirs) and crc_ok(msg)
    msg.motor_cmd[3].kp += 1.0
    assert not crc_ok(msg)


def test_a_reader_of_unitrees_types_receives_our_lowcmd_over_dds():
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from deploy.transport import LOOPBACK_CONFIG, domains
    from drivers.unitree_bridge import READER_QOS, WRITER_QOS

    domain_id = random_domain()
    frame = LowCmdFrame(12)
    release = domains.acquire(domain_id, LOOPBACK_CONFIG, frame)
    dp = DomainParticipant(domain_id)
    writer = DataWriter(dp, Topic(dp, "rt/lowcmd", ours.LowCmd_), WRITER_QOS)
    reader = DataReader(dp, Topic(dp, "rt/lowcmd", U.LowCmd_), READER_QOS)
    frame.set(MotorTargets(np.full(12, 0.5), np.zeros(12), np.zeros(12), np.full(12, 20.0), np.full(12, 0.5)))
    sent = frame.message()
    received = []
    deadline = time.monotonic() + 10.0
    while not received and time.monotonic() < deadline:
        writer.write(sent)
        time.sleep(0.05)
        received = reader.take(4)
    assert received, "Unitree's reader did not match our writer"
    msg = received[0]
    assert isinstance(msg, U.LowCmd_) and msg.crc == sent.crc == CRC().Crc(msg)
    assert msg.motor_cmd[0].kp == pytest.approx(20.0) and msg.motor_cmd[12].q == pytest.approx(2.146e9)
    del reader, writer, dp
    release()  # deletes the domain and what is left in it
