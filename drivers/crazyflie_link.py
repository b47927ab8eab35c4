"""The bridge's cflib session: connect, set and verify the parameters a ctbr policy needs, start the log blocks,
and the few commands the bridge sends. cflib 0.1.34 (bitcraze/crazyflie-lib-python), firmware 2026.08.

    session = CrazyflieSession("radio://0/80/2M/E7E7E7E7E7", on_state, on_status, on_lost)
    session.open()      # blocks until connected and configured; raises CrazyflieLinkError saying what failed
    session.setpoint(roll_dps, pitch_dps, yawrate_dps, thrust)   # cflib Commander.send_setpoint (RPYT)
    session.close()     # stabModes back to angle, the controller back, link closed

At connect (verified by reading each value back; restored at close):
- ``stabilizer.controller`` = 1: the PID controller, the one whose roll and pitch follow rate setpoints
  (Mellinger, INDI, Brescianini and Lee ignore the RPYT rate modes);
- ``flightmode.stabModeRoll`` = ``stabModePitch`` = 0 (rate) and ``stabModeYaw`` = 0 (rate, its default);
- ``flightmode.althold`` / ``poshold`` / ``posSet`` = 0 (else RPYT thrust and roll/pitch mean heights and
  velocities) and ``motorPowerSet.enable`` = 0 (an override left on would drive the motors below every rule).

Logs (each block at most 26 data bytes, crazyflie_wire.LOG_MAX_LEN): the state block (22 bytes,
crazyflie_convert.STATE_VARIABLES: stateEstimateZ position, velocity, compressed quaternion, gyro rates) every
``state_period_ms`` (10: 100 Hz; one block, so one timestamp for the whole state), the status block (pm.vbat,
supervisor.info, pm.state: 7 bytes) every 100 ms. The float variables (stateEstimate.x..qw 40 bytes, gyro.x..z 12)
would need three blocks sampled at different instants and three times the radio traffic; the compressed ones
resolve 1 mm, 1 mm/s, 1 mrad/s and about 0.1 deg.

``radio://`` URIs need a Crazyradio (docs/crazyflie.md); ``udp://127.0.0.1:PORT`` reaches drivers.fake_crazyflie;
``sim2real://NAME`` a fake attached in this process (drivers.fake_crazyflie_link).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import cflib.crtp
from cflib.crazyflie import Crazyflie
from cflib.crazyflie.log import LogConfig

from drivers.crazyflie_convert import STATE_VARIABLES, STATUS_VARIABLES
from drivers.crazyflie_wire import STAB_MODE_RATE

log = logging.getLogger("sim2real.crazyflie_bridge")

#: (parameter, value) set and verified at connect, in this order.
FLIGHT_PARAMS = (
    ("motorPowerSet.enable", 0),
    ("flightmode.althold", 0),
    ("flightmode.poshold", 0),
    ("flightmode.posSet", 0),
    ("stabilizer.controller", 1),
    ("flightmode.stabModeRoll", STAB_MODE_RATE),
    ("flightmode.stabModePitch", STAB_MODE_RATE),
    ("flightmode.stabModeYaw", STAB_MODE_RATE),
)
#: restored at close: angle mode for roll and pitch, as cfclient and the firmware's defaults expect.
RESTORE_PARAMS = ("flightmode.stabModeRoll", "flightmode.stabModePitch", "stabilizer.controller")


class CrazyflieLinkError(RuntimeError):
    """The Crazyflie could not be reached or configured; the message says what to check."""


_drivers_ready = False


def init_drivers(uri: str) -> None:
    """cflib's link drivers, once; the in-process fake's for ``sim2real://``."""
    global _drivers_ready
    if not _drivers_ready:
        cflib.crtp.init_drivers()
        _drivers_ready = True
    if uri.startswith("sim2real://"):
        from drivers.fake_crazyflie_link import register

        register()


class CrazyflieSession:
    """One connected Crazyflie. Callbacks run on cflib's receive thread: ``on_state(timestamp_ms24, values)``,
    ``on_status(timestamp_ms24, values)`` (values: name -> number), ``on_lost(message)``."""

    def __init__(
        self,
        uri: str,
        on_state: Callable[[int, dict], None],
        on_status: Callable[[int, dict], None],
        on_lost: Callable[[str], None],
        state_period_ms: int = 10,
        toc_cache: Path | None = None,
        connect_timeout_s: float = 20.0,
    ) -> None:
        self.uri, self.state_period_ms, self.connect_timeout_s = uri, state_period_ms, connect_timeout_s
        self.on_state, self.on_status, self.on_lost = on_state, on_status, on_lost
        init_drivers(uri)
        cache = str(toc_cache) if toc_cache else None
        self.cf = Crazyflie(rw_cache=cache)
        self.previous: dict[str, str] = {}
        self.has_supervisor_info = False
        self._connected, self._failed = threading.Event(), []
        self.cf.fully_connected.add_callback(lambda _uri: self._connected.set())
        self.cf.connection_failed.add_callback(self._on_failed)
        self.cf.connection_lost.add_callback(lambda _uri, msg: self.on_lost(str(msg)))

    def _on_failed(self, _uri: str, message: str) -> None:
        self._failed.append(str(message))
        self._connected.set()

    def open(self) -> None:
        log.info("connecting to %s", self.uri)
        self.cf.open_link(self.uri)
        if not self._connected.wait(self.connect_timeout_s) or self._failed:
            why = self._failed[0].splitlines()[0] if self._failed else f"no answer in {self.connect_timeout_s:g} s"
            self.cf.close_link()
            raise CrazyflieLinkError(
                f"could not connect to {self.uri}: {why}. Is the Crazyflie on, the Crazyradio plugged in (udev "
                "rules: docs/crazyflie.md), the URI's channel, rate and address the Crazyflie's?"
            )
        version = self.cf.platform.get_protocol_version()
        log.info("connected to %s (CRTP protocol %d)", self.uri, version)
        for name, value in FLIGHT_PARAMS:
            self.set_param(name, value)
        self._start_logs()

    # ------------------------------------------------------------------ parameters
    def set_param(self, name: str, value: int, timeout_s: float = 2.0) -> None:
        """Write ``name`` and read it back; raises CrazyflieLinkError unless the Crazyflie holds ``value``."""
        group, short = name.split(".")
        if self.cf.param.toc.get_element_by_complete_name(name) is None:
            raise CrazyflieLinkError(f"parameter {name} is not in the Crazyflie's TOC: firmware older than 2023.06?")
        seen, event = [], threading.Event()

        def updated(_name: str, text: str) -> None:
            seen.append(text)
            event.set()

        before = self.cf.param.get_value(name)
        self.previous.setdefault(name, before)
        self.cf.param.add_update_callback(group=group, name=short, cb=updated)
        try:
            self.cf.param.set_value(name, value)
            event.wait(timeout_s)  # the write's echo
            event.clear()
            self.cf.param.request_param_update(name)
            if not event.wait(timeout_s):
                raise CrazyflieLinkError(f"parameter {name}: no answer to the read-back in {timeout_s:g} s")
        finally:
            self.cf.param.remove_update_callback(group=group, name=short, cb=updated)
        if float(seen[-1]) != float(value):
            raise CrazyflieLinkError(f"parameter {name}: wrote {value}, the Crazyflie holds {seen[-1]}")
        log.info("%s = %s (was %s), read back", name, value, before)

    # ------------------------------------------------------------------ logs
    def _start_logs(self) -> None:
        toc = self.cf.log.toc
        missing = [n for n, _ in STATE_VARIABLES if toc.get_element_by_complete_name(n) is None]
        if missing:
            raise CrazyflieLinkError(f"log variables {missing} are not in the Crazyflie's TOC: update the firmware")
        status_vars = [(n, t) for n, t in STATUS_VARIABLES if toc.get_element_by_complete_name(n) is not None]
        self.has_supervisor_info = any(n == "supervisor.info" for n, _ in status_vars)
        if not self.has_supervisor_info:
            log.warning("no supervisor.info in the log TOC (firmware before 2023.06): arming is requested blind")
        blocks = (("sim2real_state", self.state_period_ms, STATE_VARIABLES, self.on_state),)
        blocks += (("sim2real_status", 100, tuple(status_vars), self.on_status),)
        for name, period_ms, variables, callback in blocks:
            config = LogConfig(name, period_in_ms=period_ms)
            for var, ctype in variables:
                config.add_variable(var, ctype)
            started = threading.Event()
            config.started_cb.add_callback(lambda _cfg, ok, ev=started: ok and ev.set())
            config.error_cb.add_callback(lambda cfg, msg: log.error("log block %s: %s", cfg.name, msg))
            config.data_received_cb.add_callback(lambda ts, data, _cfg, cb=callback: cb(ts, data))
            try:
                self.cf.log.add_config(config)
            except (KeyError, AttributeError) as err:
                raise CrazyflieLinkError(f"log block {name} refused: {err}") from err
            config.start()
            if not started.wait(3.0):
                raise CrazyflieLinkError(f"log block {name} did not start within 3 s (radio link quality?)")
            log.info("log block %s: %d variables every %d ms", name, len(variables), period_ms)

    # ------------------------------------------------------------------ commands
    def setpoint(self, roll: float, pitch: float, yawrate: float, thrust: int) -> None:
        self.cf.commander.send_setpoint(roll, pitch, yawrate, thrust)

    def stop_setpoint(self) -> None:
        self.cf.commander.send_stop_setpoint()

    def notify_setpoint_stop(self) -> None:
        self.cf.commander.send_notify_setpoint_stop()

    def land(self, height_m: float, duration_s: float) -> None:
        self.cf.high_level_commander.land(height_m, duration_s, yaw=None)

    def arm(self, do_arm: bool) -> None:
        self.cf.supervisor.send_arming_request(do_arm)

    def close(self, restore: bool = True) -> None:
        """Restore the parameters changed at connect (unless ``restore`` is False: a lost link), close the link."""
        if restore and self.cf.link is not None and self.cf.param.is_updated:
            for name in RESTORE_PARAMS:
                if name in self.previous:
                    try:
                        self.set_param(name, int(float(self.previous[name])), timeout_s=1.0)
                    except Exception as err:  # closing anyway; the values reset at the next reboot
                        log.warning("could not restore %s: %s", name, err)
        self.cf.close_link()
