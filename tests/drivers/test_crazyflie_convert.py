"""drivers/crazyflie_convert.py with hand-computed values: newtons <-> RPYT thrust through the thrust curve, body
rate signs through cflib's encoding and the firmware's decoding, the compressed state, the LiPo gauge, the
24-bit log clock, the options file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers import crazyflie_wire as wire
from drivers.crazyflie_convert import (
    LIPO_CURVE,
    ThrustCurve,
    TickUnwrapper,
    battery_fraction,
    command_to_thrust,
    firmware_rates_to_flu,
    load_thrust_curve,
    max_thrust,
    rates_to_rpyt,
    state_from_log,
    thrust_to_command,
)
from drivers.fake_crazyflie_firmware import Firmware
from tests.drivers._px4_client import ROOT

CURVE = ThrustCurve()  # Foerster: F = 2.130295e-11 u^2 + 1.032633e-6 u + 5.484560e-4 N per rotor


def test_thrust_curve_by_hand():
    # u = 40000: 2.130295e-11 * 1.6e9 + 1.032633e-6 * 4e4 + 5.48456e-4 = 0.075938496 N per rotor, x4
    assert command_to_thrust(40000, CURVE) == pytest.approx(0.303753984, abs=1e-12)
    assert thrust_to_command(0.303753984, CURVE) == 40000
    assert thrust_to_command(0.027 * 9.81, CURVE) == 36344  # the simulator's Crazyflie hovers here
    assert max_thrust(CURVE) == pytest.approx(4 * (2.130295e-11 * 3.6e9 + 1.032633e-6 * 6e4 + 5.48456e-4))
    assert command_to_thrust(0, CURVE) == 0.0


def test_thrust_round_trip_edges_and_refusals():
    for u in range(1000, 60001, 997):
        assert thrust_to_command(command_to_thrust(u, CURVE), CURVE) == u
    assert thrust_to_command(10.0, CURVE) == wire.RPYT_MAX_THRUST  # capped as the firmware would
    assert thrust_to_command(-1.0, CURVE) == 0 and thrust_to_command(0.0, CURVE) == 0
    assert thrust_to_command(4 * CURVE.c, CURVE) == 0  # below the curve's start: no spin
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            thrust_to_command(bad, CURVE)
    with pytest.raises(ValueError, match="a, b, c"):
        ThrustCurve(a=-1.0)
    linear = ThrustCurve(a=0.0, b=1e-6, c=0.0)
    assert thrust_to_command(4 * 0.03, linear) == 30000


def test_rate_signs_by_hand_and_through_cflib_and_the_firmware():
    pytest.importorskip("cflib", reason="cflib (bitcraze crazyflie-lib-python) is not installed")
    from cflib.crazyflie.commander import Commander

    from tests.drivers.test_crazyflie_wire import RecordingCf

    p, q, r = 0.1, 0.2, 0.3  # rad/s FLU: roll right, pitch nose down, yaw left
    roll, pitch, yawrate = rates_to_rpyt((p, q, r))
    assert (roll, pitch, yawrate) == pytest.approx((5.729577951, 11.459155903, -17.188733854))
    cf = RecordingCf()
    Commander(cf).send_setpoint(roll, pitch, yawrate, 30000)
    fw = Firmware()
    fw.params["flightmode.stabModeRoll"] = fw.params["flightmode.stabModePitch"] = wire.STAB_MODE_RATE
    fw.rpyt(cf.sent[0][1], 0.0)
    sp = fw.setpoint
    assert (sp.roll_mode, sp.pitch_mode, sp.yaw_mode) == ("velocity",) * 3
    # the firmware's own conventions: pitch legacy (nose up), yaw rate negated by the RPYT decoder
    assert (sp.roll, sp.pitch, sp.yaw_rate) == pytest.approx((5.729578, -11.459156, 17.188734), rel=1e-6)
    assert firmware_rates_to_flu(sp.roll, sp.pitch, sp.yaw_rate) == pytest.approx([p, q, r], rel=1e-6)


def test_state_from_log_by_hand():
    half = math.pi / 8  # 45 deg yaw: (x, y, z, w) = (0, 0, sin 22.5, cos 22.5)
    values = {"stateEstimateZ.x": 1234, "stateEstimateZ.y": -50, "stateEstimateZ.z": 500}
    values.update({"stateEstimateZ.vx": 100, "stateEstimateZ.vy": -200, "stateEstimateZ.vz": 0})
    values["stateEstimateZ.quat"] = wire.quat_compress((0.0, 0.0, math.sin(half), math.cos(half)))
    values.update({"stateEstimateZ.rateRoll": 10, "stateEstimateZ.ratePitch": 500, "stateEstimateZ.rateYaw": -30})
    s = state_from_log(values)
    assert s.position == pytest.approx([1.234, -0.05, 0.5]) and s.velocity == pytest.approx([0.1, -0.2, 0.0])
    assert s.quaternion == pytest.approx([math.cos(half), 0.0, 0.0, math.sin(half)], abs=1.5e-3)
    assert s.rates == pytest.approx([0.01, -0.5, -0.03])  # ratePitch is -gyro.y: nose up


def test_battery_fraction_follows_the_firmwares_lipo_table():
    assert battery_fraction(3.00) == 0.0 and battery_fraction(3.92) == pytest.approx(0.5)
    assert battery_fraction(4.20) == 1.0 and battery_fraction(4.35) == 1.0 and battery_fraction(2.5) == 0.0
    assert battery_fraction(3.80) == pytest.approx(0.14)  # 3.78 -> 10 %, 3.83 -> 20 %
    assert math.isnan(battery_fraction(math.nan))
    volts = [v for v, _ in LIPO_CURVE]
    assert volts == sorted(volts) and np.all(np.diff([f for _, f in LIPO_CURVE]) > 0)


def test_tick_unwrapper_continues_across_the_24_bit_wrap():
    unwrap = TickUnwrapper()
    assert [unwrap(t) for t in (16_777_000, 16_777_215, 5, 100, 90)] == [
        16_777_000,
        16_777_215,
        16_777_221,
        16_777_316,
        16_777_306,  # a small step back stays one (the clock checks downstream see it)
    ]


def test_options_file(tmp_path):
    assert load_thrust_curve(ROOT / "launch" / "crazyflie_bridge.yaml") == ThrustCurve()
    assert load_thrust_curve(None) == ThrustCurve()
    bad = tmp_path / "bad.yaml"
    bad.write_text("crazyflie: {thrust_curve: {a: 1e-11, d: 2}}\n")
    with pytest.raises(ValueError, match="unknown keys \\['d'\\]"):
        load_thrust_curve(bad)
    bad.write_text("crazyflie: {rpm_max: 2}\n")
    with pytest.raises(ValueError, match="expected thrust_curve"):
        load_thrust_curve(bad)
