"""The Unitree bridge's pure conversions (drivers/unitree_convert.py): options, joint names -> motor slots, the
idle slots and damping, refusals, the timeout, and LowState decoding; no DDS."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploy.articulated_wire import joint_command_msg
from deploy.msgs.unitree import LowState_
from drivers.unitree_convert import (
    POS_STOP_F,
    VEL_STOP_F,
    BridgeOptions,
    CommandConverter,
    CommandRefused,
    CommandWatch,
    CrcMismatch,
    LowCmdFrame,
    MotorTargets,
    StateRefused,
    UnitreeConfigError,
    bridge_options,
    decode_state,
    load_bridge_options,
)
from drivers.unitree_crc import crc_ok, with_crc
from sim.articulated.profile import load_profile

GO2 = load_profile("go2").joints.names
# Unitree's motor order (unitree_sdk2_python go2_stand_example.py: FR_0..2 = 0..2, FL 3-5, RR 6-8, RL 9-11)
UNITREE_ORDER = [f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")]


def _command(names, q, kp=20.0, kd=0.5, dq=None, tau=None):
    n = len(names)
    msg = joint_command_msg(names, q, np.full(n, kp), np.full(n, kd), "policy", 0)
    if dq is not None:
        msg.velocity = list(dq)
    if tau is not None:
        msg.effort = list(tau)
    return msg


def test_the_shipped_options_map_the_go2_profile_onto_unitrees_motor_order():
    options, rest = load_bridge_options("launch/unitree_go2_bridge.yaml")
    assert list(options.motors) == UNITREE_ORDER == list(GO2)
    assert (options.rate_hz, options.domain_id, options.damping_kd_nm_s_per_rad) == (500, 0, 8.0)
    assert options.check_state_crc and rest["namespace"] == "/sim2real"


def test_options_errors_name_the_key_and_what_was_expected():
    with pytest.raises(UnitreeConfigError, match="unknown keys \\['rate'\\]"):
        bridge_options({"rate": 500}, GO2)
    with pytest.raises(UnitreeConfigError, match="do not name the robot profile's joints"):
        bridge_options({"motors": [*GO2[:-1], "tail_joint"]}, GO2)
    with pytest.raises(UnitreeConfigError, match="rate_hz: expected a number > 0"):
        bridge_options({"rate_hz": 0}, GO2)
    with pytest.raises(UnitreeConfigError, match="distinct joint names"):
        BridgeOptions(motors=("a", "a"))
    assert bridge_options({}, GO2).motors == tuple(GO2)  # the profile's order when motors is not given


def test_joints_by_name_land_in_their_motor_slots_whatever_the_command_order():
    conv = CommandConverter(UNITREE_ORDER)
    slot_value = np.arange(12) * 0.1 - 0.5  # the value meant for slot i
    shuffled = list(np.random.default_rng(0).permutation(12))
    names = [UNITREE_ORDER[i] for i in shuffled]
    t = conv.targets(_command(names, slot_value[shuffled], dq=slot_value[shuffled] * 2, tau=-slot_value[shuffled]))
    np.testing.assert_allclose(t.q, slot_value)
    np.testing.assert_allclose(t.dq, 2 * slot_value)
    np.testing.assert_allclose(t.tau, -slot_value)
    frame = LowCmdFrame(12)
    frame.set(t)
    msg = frame.message()
    assert msg.motor_cmd[2].q == pytest.approx(slot_value[2])  # FR_calf in slot 2
    assert msg.motor_cmd[9].q == pytest.approx(slot_value[9])  # RL_hip in slot 9
    assert all((m.mode, m.kp, m.kd, m.tau) == (1, 0.0, 0.0, 0.0) for m in msg.motor_cmd[12:])  # idle slots
    assert all(m.q == pytest.approx(POS_STOP_F) and m.dq == VEL_STOP_F for m in msg.motor_cmd[12:])
    assert crc_ok(msg)


def test_empty_velocity_and_effort_mean_zero():
    msg = _command(UNITREE_ORDER, np.zeros(12))
    msg.velocity, msg.effort = [], []
    t = CommandConverter(UNITREE_ORDER).targets(msg)
    assert not t.dq.any() and not t.tau.any()


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda m: setattr(m, "name", [*m.name[:-1], "tail_joint"]),
            "unknown: \\['tail_joint'\\], missing: \\['RL_calf",
        ),
        (lambda m: setattr(m, "name", m.name[:-1]), "missing: \\['RL_calf_joint'\\]"),
        (lambda m: setattr(m, "position", m.position[:-1]), "position has 11 values for 12 names"),
        (lambda m: m.position.__setitem__(4, math.nan), "position of \\['FL_thigh_joint'\\] is not finite"),
        (lambda m: m.kd.__setitem__(0, math.inf), "kd of \\['FR_hip_joint'\\] is not finite"),
        (lambda m: m.effort.__setitem__(11, -math.inf), "effort of \\['RL_calf_joint'\\] is not finite"),
        (lambda m: m.kp.__setitem__(3, -1.0), "gains must be >= 0"),
    ],
)
def test_bad_commands_are_refused_with_what_was_wrong(change, match):
    msg = _command(UNITREE_ORDER, np.zeros(12), tau=np.zeros(12))
    change(msg)
    with pytest.raises(CommandRefused, match=match):
        CommandConverter(UNITREE_ORDER).targets(msg)


def test_no_command_sends_nothing_a_fresh_one_is_repeated_and_silence_becomes_damping():
    watch = CommandWatch(12, timeout_s=0.2, damping_kd=8.0)
    assert watch.select(0.0) == (None, "none")  # the bridge takes no control before the runtime commands
    t = CommandConverter(UNITREE_ORDER).targets(_command(UNITREE_ORDER, np.full(12, 0.3)))
    watch.accept(t, 10.0)
    assert watch.select(10.19) == (t, "runtime")
    targets, source = watch.select(10.21)
    assert source == "damping"
    assert not targets.kp.any() and np.all(targets.kd == 8.0) and not targets.dq.any() and not targets.tau.any()
    assert np.all(targets.q == POS_STOP_F)  # no position loop
    watch.accept(t, 11.0)
    assert watch.select(11.05) == (t, "runtime")  # commands back: forwarded again


def _lowstate(q, quat=(1.0, 0.0, 0.0, 0.0)) -> LowState_:
    msg = LowState_()
    for i, v in enumerate(q):
        msg.motor_state[i].q, msg.motor_state[i].dq, msg.motor_state[i].tau_est = v, -v, 2 * v
    msg.imu_state.quaternion = list(quat)
    msg.imu_state.gyroscope = [0.1, -0.2, 0.3]
    msg.imu_state.accelerometer = [0.0, 0.0, 9.81]
    msg.tick = 1234
    return with_crc(msg)


def test_a_lowstate_decodes_in_motor_order_and_a_bad_crc_or_value_is_refused():
    q = np.linspace(-1.0, 1.0, 12).astype(np.float32)
    msg = _lowstate(q)
    s = decode_state(msg, 12)
    np.testing.assert_allclose(s.q, q)
    np.testing.assert_allclose(s.dq, -q)
    np.testing.assert_allclose(s.tau, 2 * q)
    np.testing.assert_allclose(s.gyro, [0.1, -0.2, 0.3], rtol=1e-6)
    assert s.quat.tolist() == [1.0, 0.0, 0.0, 0.0] and s.tick == 1234
    msg.crc ^= 0x10
    with pytest.raises(CrcMismatch, match="CRC"):
        decode_state(msg, 12)
    assert decode_state(msg, 12, check_crc=False).tick == 1234
    nan = _lowstate(np.where(np.arange(12) == 5, np.nan, q))
    with pytest.raises(StateRefused, match="non-finite"):
        decode_state(nan, 12)
    with pytest.raises(StateRefused, match="unit quaternion"):
        decode_state(_lowstate(q, quat=(0.0, 0.0, 0.0, 0.0)), 12)


def test_damping_through_the_frame_is_unitrees_damping_mode():
    frame = LowCmdFrame(12)
    frame.set(MotorTargets(np.zeros(12), np.zeros(12), np.zeros(12), np.full(12, 20.0), np.full(12, 0.5)))
    watch = CommandWatch(12, 0.2, 8.0)
    watch.accept(MotorTargets(*(np.zeros(12) for _ in range(5))), 0.0)
    frame.set(watch.select(1.0)[0])
    msg = frame.message()
    assert all((m.mode, m.kp, m.kd, m.dq, m.tau) == (1, 0.0, 8.0, 0.0, 0.0) for m in msg.motor_cmd[:12])
    assert crc_ok(msg)


def test_the_bridge_imports_and_loads_its_options_without_torch():
    """The bridge runs on the robot's computer, which installs no torch (tests/deploy/test_torch_free.py)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import drivers.unitree_bridge, drivers.unitree_convert, drivers.unitree_crc, deploy.msgs.unitree\n"
        "options, _ = drivers.unitree_convert.load_bridge_options('launch/unitree_go2_bridge.yaml')\n"
        "print(len(options.motors))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0 and out.stdout.strip() == "12", out.stderr
