"""The firmware rules the fake Crazyflie applies (drivers/fake_crazyflie_firmware.py), one test per rule, on a
clock the test sets, with packets encoded by cflib's own Commander, Supervisor and HighLevelCommander: the thrust
lock, the RPYT thrust limits, the setpoint watchdog (level at 0.5 s, motors off and locked at 2 s), stabMode rate
vs angle, the arming request, the high-level land behind notify_setpoint_stop, stop + disarm, and the motorPowerSet
override that acts below all of them (why the bridge refuses rpm policies). The last tests fly the simulator:
angle vs rate mode and the watchdog's level-out and cut, through drivers.fake_crazyflie.FakeCrazyflie."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("cflib", reason="cflib (bitcraze crazyflie-lib-python) is not installed")

from cflib.crazyflie.commander import Commander
from cflib.crazyflie.high_level_commander import HighLevelCommander
from cflib.crazyflie.supervisor import Supervisor

from drivers import crazyflie_wire as wire
from drivers.fake_crazyflie_firmware import Firmware, level_attitude_rates
from tests.drivers.test_crazyflie_wire import RecordingCf

HOVER = (0.0, 0.0, 0.5)


class Host:
    """cflib's command classes, their packets delivered to a firmware model at the time ``t``."""

    def __init__(self, fw: Firmware, protocol_version: int = 12) -> None:
        self.fw, self.t, self.answers = fw, 0.0, []
        self.cf = RecordingCf(protocol_version)
        self.cf.send_packet = self._deliver
        self.commander, self.hl = Commander(self.cf), HighLevelCommander(self.cf)
        self.supervisor = Supervisor(self.cf)

    def _deliver(self, pk, *args, **kwargs) -> None:
        port, channel, data = pk.port, pk.channel, bytes(pk.data)
        if port == wire.PORT_SETPOINT:
            self.fw.rpyt(data, self.t)
        elif port == wire.PORT_SETPOINT_GENERIC:
            self.fw.generic(channel, data, self.t)
        elif port == wire.PORT_SETPOINT_HL:
            self.fw.high_level(data, self.t)
        elif port == wire.PORT_SUPERVISOR:
            self.answers.append(self.fw.supervisor(channel, data))
        elif port == wire.PORT_PLATFORM:
            self.answers.append(self.fw.platform_arming(data))

    def run(self, seconds: float, setpoint=None, position=HOVER, dt: float = 0.01):
        """Advance the firmware; with ``setpoint`` = (roll, pitch, yawrate, thrust) send it every period."""
        control = None
        for _ in range(round(seconds / dt)):
            self.t += dt
            if setpoint is not None:
                self.commander.send_setpoint(*setpoint)
            control = self.fw.update(self.t, position, 1.0)
        return control


def flying(rate_mode: bool = True) -> Host:
    host = Host(Firmware())
    if rate_mode:
        host.fw.params["flightmode.stabModeRoll"] = host.fw.params["flightmode.stabModePitch"] = 0
    host.run(0.1)  # boot: the supervisor arms itself (a brushed Crazyflie 2.x)
    host.commander.send_setpoint(0, 0, 0, 0)  # the unlock
    host.run(0.5, (0.0, 0.0, 0.0, 40000))
    assert host.fw.state == "flying"
    return host


def test_thrust_is_locked_until_one_setpoint_with_thrust_zero():
    host = Host(Firmware())
    host.run(0.1)
    assert host.fw.state == "ready to fly" and host.fw.armed
    control = host.run(0.3, (0.0, 0.0, 0.0, 40000))
    assert control.kind == "off" and host.fw.locked_thrust_packets == 30
    host.commander.send_setpoint(0, 0, 0, 0)
    control = host.run(0.05, (0.0, 0.0, 0.0, 40000))
    assert control.kind == "attitude" and control.setpoint.thrust == 40000


def test_rpyt_thrust_below_1000_is_zero_and_above_60000_is_capped():
    host = flying()
    assert host.run(0.02, (0.0, 0.0, 0.0, 999)).kind == "off"
    assert host.run(0.02, (0.0, 0.0, 0.0, 65535)).setpoint.thrust == wire.RPYT_MAX_THRUST


def test_watchdog_levels_at_half_a_second_and_cuts_and_locks_at_two():
    host = flying()
    host.run(0.2, (30.0, 0.0, 0.0, 42000))  # rolling at 30 deg/s
    control = host.run(0.45)  # no setpoints
    assert host.fw.state == "flying" and control.setpoint.roll_mode == "velocity" and control.setpoint.roll == 30
    control = host.run(0.1)  # 0.55 s
    assert host.fw.state == "warning, level out"
    sp = control.setpoint
    assert (sp.roll_mode, sp.roll, sp.pitch_mode, sp.pitch, sp.yaw_rate) == ("abs", 0.0, "abs", 0.0, 0.0)
    assert control.kind == "attitude" and sp.thrust == 42000  # "keep Z as it is": the last thrust
    control = host.run(1.4)  # 1.95 s
    assert host.fw.state == "warning, level out" and control.kind == "attitude"
    control = host.run(0.1)  # 2.05 s: free fall, then locked
    assert control.kind == "off" and host.fw.state in ("exception, free fall", "locked")
    control = host.run(0.5, (0.0, 0.0, 0.0, 40000))
    assert host.fw.state == "locked" and control.kind == "off"
    assert host.fw.info() >> wire.INFO_LOCKED & 1


def test_a_setpoint_within_the_watchdog_resumes_flight():
    host = flying()
    host.run(0.6)
    assert host.fw.state == "warning, level out"
    host.run(0.05, (0.0, 0.0, 0.0, 40000))
    assert host.fw.state == "flying"


def test_stab_mode_angle_by_default_rate_when_set():
    host = flying(rate_mode=False)
    sp = host.run(0.02, (10.0, -4.0, 0.0, 40000)).setpoint
    assert (sp.roll_mode, sp.roll, sp.pitch_mode, sp.pitch) == ("abs", 10.0, "abs", 4.0)  # pitch legacy: +nose up
    assert level_attitude_rates(0.0, 0.0, sp) == pytest.approx((60.0, 24.0, 0.0))  # attitude P: 6 1/s
    host.fw.params["flightmode.stabModeRoll"] = 0
    sp = host.run(0.02, (10.0, -4.0, 0.0, 40000)).setpoint
    assert (sp.roll_mode, sp.roll, sp.pitch_mode) == ("velocity", 10.0, "abs")
    assert level_attitude_rates(5.0, 0.0, sp) == pytest.approx((10.0, 24.0, 0.0))


def test_require_arming_motors_only_after_the_arming_request():
    host = Host(Firmware(require_arming=True))
    host.run(0.1)
    assert host.fw.state == "pre-flight checks passed" and not host.fw.armed
    assert host.fw.info() >> wire.INFO_CAN_BE_ARMED & 1 and not host.fw.info() >> wire.INFO_ARMED & 1
    host.commander.send_setpoint(0, 0, 0, 0)
    assert host.run(0.3, (0.0, 0.0, 0.0, 40000)).kind == "off"
    host.supervisor.send_arming_request(True)
    assert host.answers == [bytes([wire.RESPONSE | wire.CMD_ARM_SYSTEM, 1, 1])]
    control = host.run(0.05, (0.0, 0.0, 0.0, 40000))
    assert host.fw.state in ("ready to fly", "flying") and control.kind == "attitude"


def test_arming_through_the_platform_port_before_protocol_12():
    host = Host(Firmware(require_arming=True), protocol_version=10)
    host.run(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        host.supervisor.send_arming_request(True)
    assert host.answers == [bytes([wire.PLATFORM_REQUEST_ARMING, 1, 1])] and host.fw.armed


def test_high_level_land_flies_only_after_notify_setpoint_stop():
    host = flying()
    host.hl.land(0.0, 1.0, yaw=None)  # still at CRTP priority: the planner's setpoints are refused
    control = host.run(0.3)
    assert control.kind == "attitude" and host.fw.priority == 2
    host.commander.send_setpoint(0, 0, 0, 40000)
    host.commander.send_notify_setpoint_stop()
    host.hl.land(0.0, 1.0, yaw=None)
    control = host.run(0.5)
    assert control.kind == "position" and 0.0 < control.setpoint.position[2] < 0.5
    assert host.fw.info() >> wire.INFO_HL_ACTIVE & 1
    control = host.run(0.6, position=(0.0, 0.0, 0.0))
    assert control.kind == "off" and host.fw.hl_state == "stopped"  # the descent ended: motors off
    host.run(2.5, position=(0.0, 0.0, 0.0))  # no watchdog: the planner's null setpoints keep coming
    assert host.fw.state in ("landed", "reset", "pre-flight checks not passed", "pre-flight checks passed")


def test_stop_setpoint_and_disarm_in_flight_stop_the_motors():
    host = flying()
    host.commander.send_stop_setpoint()
    assert host.run(0.01).kind == "off"
    host.supervisor.send_arming_request(False)
    host.run(0.02)
    assert host.fw.state in ("reset", "pre-flight checks not passed")


def test_motor_power_override_runs_below_the_supervisor():
    host = flying()
    for i in range(1, 5):
        host.fw.params[f"motorPowerSet.m{i}"] = 30000
    host.fw.params["motorPowerSet.enable"] = 1
    host.fw.params["stabilizer.stop"] = 1  # the emergency stop
    control = host.run(3.0)
    assert host.fw.state == "locked" and control.kind == "motors" and control.pwm == (30000,) * 4


# ---------------------------------------------------------------- in the simulator


def _hovering_fake(**kw):
    from drivers.fake_crazyflie import FakeCrazyflie

    clock = [100.0]
    fake = FakeCrazyflie(seed=1, start_height_m=10.0, clock=lambda: clock[0], **kw)  # room to fall
    fake.firmware.params["flightmode.stabModeRoll"] = fake.firmware.params["flightmode.stabModePitch"] = 0
    cf = RecordingCf()
    cf.send_packet = lambda pk, *a, **k: fake.receive(bytes([pk.get_header()]) + bytes(pk.data))
    commander = Commander(cf)

    def run(seconds: float, setpoint=None) -> None:
        for _ in range(round(seconds / 0.01)):
            clock[0] += 0.01
            if setpoint is not None:
                commander.send_setpoint(*setpoint)
            fake.step()

    run(0.05)
    commander.send_setpoint(0, 0, 0, 0)
    return fake, run


def _roll_deg(fake) -> float:
    from drivers.fake_crazyflie import euler_deg

    return euler_deg(fake.env.state_rows("quaternion")[0].numpy().astype(float))[0]


def test_in_the_simulator_rate_mode_turns_at_the_rate_and_the_watchdog_levels_then_cuts():
    fake, run = _hovering_fake()
    hover = 36344  # 27 g on the default thrust curve
    run(0.5, (20.0, 0.0, 0.0, hover))  # 20 deg/s about +x for 0.5 s
    assert 7.0 < _roll_deg(fake) < 11.0, _roll_deg(fake)
    run(0.45)  # no setpoints: still the rate setpoint
    assert _roll_deg(fake) > 12.0
    run(0.1)  # 0.55 s: levelling out (angle 0) under the last thrust
    assert fake.firmware.state == "warning, level out"
    run(0.6)  # 1.15 s
    assert fake.firmware.state == "warning, level out" and abs(_roll_deg(fake)) < 6.0  # from 20 deg
    run(0.95)  # 2.1 s: motors off, locked; it falls
    assert fake.firmware.state == "locked" and not fake.control.motors_on
    vz = float(fake.env.state_rows("velocity")[0, 2])
    run(0.5)
    assert float(fake.env.state_rows("velocity")[0, 2]) < vz - 2.5  # ~ g once the motors have spun down


def test_in_the_simulator_angle_mode_holds_the_angle():
    fake, run = _hovering_fake()
    fake.firmware.params["flightmode.stabModeRoll"] = wire.STAB_MODE_ANGLE
    run(1.0, (10.0, 0.0, 0.0, 36344))
    assert _roll_deg(fake) == pytest.approx(10.0, abs=1.5)
    assert np.isfinite(fake.env.state_rows("position").numpy()).all()
