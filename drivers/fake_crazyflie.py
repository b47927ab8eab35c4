"""A stand-in for a Crazyflie 2.x behind its radio protocol, flying the project's quadrotor simulator.

    python -m drivers.fake_crazyflie --port 19850 --seconds 60 [--require-arming] [--protocol-version 12]
        [--clock-offset-s 1234.5] [--start-height 0] [--seed 0] [--config launch/crazyflie_bridge.yaml]

It serves CRTP over UDP on 127.0.0.1 the way cflib's own UDP driver expects (one CRTP packet per datagram:
header byte + data; cflib ``udp://127.0.0.1:PORT``, the Bitcraze SITL link), so the bridge talks to it through
an unmodified cflib. ``--port 0`` picks a free port; the chosen one is logged ("fake Crazyflie on
udp://127.0.0.1:PORT"). In one process, drivers/fake_crazyflie_link.py connects cflib to it without a socket.

Packets are decoded per the firmware (drivers/crazyflie_wire.py) and go through the firmware's rules
(drivers/fake_crazyflie_firmware.py: thrust lock, stabMode rate/angle, supervisor arming, the 0.5 s / 2 s
setpoint watchdog, the high-level land). What the firmware asks of the motors flies the simulator:
- roll/pitch/yaw rate setpoints (deg/s, the firmware's conventions -> FLU) and the RPYT thrust (each motor's
  PWM -> collective newtons through the thrust curve, drivers.crazyflie_convert.ThrustCurve, the same
  ``--config`` as the bridge's) go through the simulator's ctbr rate loop (sim.quadrotor.actions.ctbr_rate_loop,
  the task config's rate_gains) in place of the firmware's PID rate loop; angle setpoints first through the
  attitude P loop (6 1/s);
- the high-level land's position setpoints through a small position controller (PD -> thrust and tilt);
- the motorPowerSet override through the thrust curve per motor.
It logs what a Crazyflie logs (stateEstimateZ.*, stateEstimate.*, gyro.*, pm.vbat, pm.state, supervisor.info),
sampled at each simulator step and stamped in milliseconds since its boot (``--clock-offset-s`` added: a clock
unrelated to the host's). The ground is z = 0 (the simulator has none), as in drivers/sim_robot.py.
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import socket
import threading
import time
from pathlib import Path

import numpy as np
import torch

from deploy.loop import FixedRateLoop
from drivers import crazyflie_wire as wire
from drivers.crazyflie_convert import (
    ROTORS,
    ThrustCurve,
    command_to_thrust,
    firmware_rates_to_flu,
    load_thrust_curve,
)
from drivers.fake_crazyflie_crtp import CrtpServices, Variable
from drivers.fake_crazyflie_firmware import Control, Firmware, level_attitude_rates
from drivers.vehicle import autopilot_vehicle_cfg
from sim.quadrotor.actions import ctbr_rate_loop
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv

log = logging.getLogger("sim2real.fake_crazyflie")
G = 9.81


def euler_deg(q_wxyz: np.ndarray) -> tuple[float, float, float]:
    """Quaternion body FLU -> world (w, x, y, z) -> (roll, pitch, yaw) deg, ZYX; pitch positive nose down."""
    w, x, y, z = q_wxyz
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)


class FakeCrazyflie:
    """The vehicle: firmware rules + simulator. ``receive(raw)`` takes a packet from the host (any thread);
    ``step()`` runs one control period; ``outbox`` holds the raw packets for the host."""

    def __init__(
        self,
        cfg: QuadrotorTaskCfg | None = None,
        curve: ThrustCurve | None = None,
        seed: int = 0,
        require_arming: bool = False,
        protocol_version: int = 12,
        clock_offset_s: float = 0.0,
        start_height_m: float = 0.0,
        clock=time.monotonic,
    ) -> None:
        cfg = cfg or autopilot_vehicle_cfg()
        cfg.episode_s, cfg.init = 1e6, InitCfg(0.0, 0.0, 0.0, 0.0)
        cfg.termination.floor_m, cfg.termination.position_m = -math.inf, 1e3
        self.cfg, self.curve, self.clock = cfg, curve or ThrustCurve(), clock
        self.env = QuadrotorEnv(cfg, 1, seed=seed)  # the native kernel (rpm): 0.09 ms a step, the eager one 6 ms
        self.env.set_state_rows("position", torch.tensor([[0.0, 0.0, start_height_m]]))
        self.spec = self.env.action_spec
        self._noise = torch.Generator().manual_seed(seed + 1)
        self._boot_s = clock() - clock_offset_s
        self.firmware = Firmware(require_arming=require_arming, now=self._now_s(clock()))
        self.outbox: collections.deque[bytes] = collections.deque()
        self.received: collections.deque[tuple[float, int, int, bytes]] = collections.deque(maxlen=10_000)
        self.crtp = CrtpServices(self._log_variables(), self._params(), self.outbox.append, protocol_version)
        self.protocol_version = protocol_version
        self.lock = threading.RLock()
        self.vbat_rest, self.control, self.steps = 4.15, Control("off"), 0
        self._state: dict[str, np.ndarray] = {}
        self._read_state()

    def _now_s(self, now: float) -> float:
        """The Crazyflie's clock: seconds since its boot."""
        return now - self._boot_s

    # ------------------------------------------------------------------ tables
    def _log_variables(self) -> list[Variable]:
        s = self._state_value
        out = [Variable("stateEstimateZ", n, 5, (lambda n=n: s(n))) for n in ("x", "y", "z", "vx", "vy", "vz")]
        out.append(Variable("stateEstimateZ", "quat", 3, lambda: wire.quat_compress(self._state["q_xyzw"])))
        out += [Variable("stateEstimateZ", n, 5, (lambda n=n: s(n))) for n in ("rateRoll", "ratePitch", "rateYaw")]
        for n in ("x", "y", "z", "vx", "vy", "vz", "qx", "qy", "qz", "qw", "roll", "pitch", "yaw"):
            out.append(Variable("stateEstimate", n, 7, (lambda n=n: s("f" + n))))
        out += [Variable("gyro", n, 7, (lambda n=n: s("gyro" + n))) for n in ("x", "y", "z")]
        out.append(Variable("pm", "vbat", 7, self.vbat))
        out.append(Variable("pm", "state", 4, lambda: 0))  # battery
        out.append(Variable("supervisor", "info", 2, self.firmware_info))
        return out

    def firmware_info(self) -> int:
        return self.firmware.info()

    def _params(self) -> list[Variable]:
        out = []
        for full in self.firmware.params:
            group, name = full.split(".")
            kind = 0x09 if name.startswith("m") and group == "motorPowerSet" and name != "enable" else 0x08
            out.append(Variable(group, name, kind, (lambda f=full: self.firmware.params[f]), self._setter(full)))
        return out

    def _setter(self, full: str):
        def set_value(value: float) -> None:
            self.firmware.params[full] = value

        return set_value

    def _state_value(self, name: str) -> float:
        return float(self._state[name])

    def vbat(self) -> float:
        """Battery volts: the resting voltage less a sag under load (0.3 V at full thrust)."""
        load = float(np.mean(self._last_rpm)) / self.cfg.params.max_rpm if self.control.motors_on else 0.0
        return self.vbat_rest - 0.3 * load * load

    # ------------------------------------------------------------------ packets from the host
    def receive(self, raw: bytes, now: float | None = None) -> None:
        if not raw:
            return
        now = self.clock() if now is None else now
        t = self._now_s(now)
        port, channel = wire.split_header(raw[0])
        data = bytes(raw[1:])
        with self.lock:
            self.received.append((t, port, channel, data))
            if raw[0] == 0xFF:
                return  # a null packet (cflib's scan probe / radio poll)
            fw = self.firmware
            if self.crtp.handle(port, channel, data, t * 1000.0):
                return
            answer = None
            if port == wire.PORT_SETPOINT and channel == 0:
                fw.rpyt(data, t)
            elif port == wire.PORT_SETPOINT_GENERIC:
                fw.generic(channel, data, t)
            elif port == wire.PORT_SETPOINT_HL and channel == 0:
                fw.high_level(data, t)
            elif port == wire.PORT_SUPERVISOR and self.protocol_version >= wire.SUPERVISOR_PROTOCOL_VERSION:
                answer = fw.supervisor(channel, data)
            elif port == wire.PORT_PLATFORM and channel == wire.PLATFORM_CH_COMMAND:
                answer = fw.platform_arming(data)
            else:
                log.debug("packet on port %d channel %d not served", port, channel)
            if answer is not None:
                self.outbox.append(bytes([raw[0]]) + answer)

    # ------------------------------------------------------------------ the control period
    def step(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        t = self._now_s(now)
        with self.lock:
            pos = self.env.state_rows("position")[0].numpy().astype(float)
            q = self.env.state_rows("quaternion")[0].numpy().astype(float)
            up_z = 1.0 - 2.0 * (q[1] ** 2 + q[2] ** 2)  # body z's world z
            self.control = self.firmware.update(t, pos, up_z)
            rpm = np.clip(self._motor_rpm(self.control), self.spec.low[0], self.spec.high[0])
            self._last_rpm = rpm
            self.env.step(self.spec.to_normalized(torch.as_tensor(rpm, dtype=torch.float32))[None])
            self._ground()
            self.steps += 1
            if self.control.motors_on:
                self.vbat_rest = max(3.0, self.vbat_rest - 0.6 * self.cfg.control_dt / 420.0)
            self._read_state()
            self.crtp.emit_logs(t * 1000.0)

    _last_rpm = np.zeros(4)

    def _motor_rpm(self, control: Control) -> np.ndarray:
        p = self.cfg.params
        if control.kind == "off":
            return np.zeros(4)
        if control.kind == "motors":
            thrusts = np.array([self.curve.rotor_thrust(u) for u in control.pwm])
            return np.sqrt(thrusts / p.kf)
        w = self.env.state_rows("angular_velocity")[0]
        q = self.env.state_rows("quaternion")[0].numpy().astype(float)
        roll, pitch, _ = euler_deg(q)
        sp = control.setpoint
        if control.kind == "position":
            thrust, rates = self._position_control(sp, q)
        else:
            thrust = command_to_thrust(sp.thrust, self.curve)
            rates = firmware_rates_to_flu(*level_attitude_rates(roll, -pitch, sp))
        rate_cmd = tuple(torch.tensor([float(v)]) for v in rates)
        rpm = ctbr_rate_loop(torch.tensor([float(thrust)]), rate_cmd, tuple(w.reshape(3, 1)), p, self.cfg.rate_gains)
        return torch.cat(rpm).numpy().astype(float)

    def _position_control(self, sp, q: np.ndarray) -> tuple[float, np.ndarray]:
        """The high-level commander's position setpoint -> collective thrust N, body rates FLU rad/s (PD on
        position, tilt towards the wanted acceleration, attitude P 6 1/s, yaw rate 0)."""
        pos = self.env.state_rows("position")[0].numpy().astype(float)
        vel = self.env.state_rows("velocity")[0].numpy().astype(float)
        acc = np.array([2.0, 2.0, 6.0]) * (np.asarray(sp.position) - pos)
        acc += np.array([3.0, 3.0, 4.0]) * (np.asarray(sp.velocity) - vel)
        acc = np.clip(acc, -4.0, 4.0)
        roll, pitch, yaw = (math.radians(a) for a in euler_deg(q))
        cy, sy = math.cos(yaw), math.sin(yaw)
        ax_body, ay_body = cy * acc[0] + sy * acc[1], -sy * acc[0] + cy * acc[1]
        pitch_ref = math.atan2(ax_body, G + acc[2])  # + pitch (about +y) tilts the thrust forward
        roll_ref = -math.atan2(ay_body, G + acc[2])
        tilt = max(math.cos(roll) * math.cos(pitch), 0.7)
        thrust = self.cfg.params.mass * (G + acc[2]) / tilt
        limit = ROTORS * self.curve.rotor_thrust(wire.RPYT_MAX_THRUST)
        return min(max(thrust, 0.0), limit), np.array([6.0 * (roll_ref - roll), 6.0 * (pitch_ref - pitch), 0.0])

    def _ground(self) -> None:
        pos = self.env.state_rows("position")
        if pos[0, 2] < 0.0:
            self.env.set_state_rows("position", torch.tensor([[pos[0, 0], pos[0, 1], 0.0]]))
            self.env.set_state_rows("velocity", torch.zeros(1, 3))
            self.env.set_state_rows("angular_velocity", torch.zeros(1, 3))

    def _read_state(self) -> None:
        """The estimate the firmware would log: the simulator's state with the observation noise of its spec."""
        spec = self.env.obs_spec

        def noisy(name: str, term: str) -> np.ndarray:
            value = self.env.state_rows(name)[0]
            return (value + spec.term(term).noise_std * torch.randn(3, generator=self._noise)).numpy().astype(float)

        pos, vel = noisy("position", "position_error"), noisy("velocity", "linear_velocity")
        w = noisy("angular_velocity", "angular_velocity")
        q = self.env.state_rows("quaternion")[0].numpy().astype(float)
        roll, pitch, yaw = euler_deg(q)
        gyro = np.degrees(w)  # deg/s, sensor frame = body FLU
        st = {"x": pos[0] * 1e3, "y": pos[1] * 1e3, "z": pos[2] * 1e3, "vx": vel[0] * 1e3}
        st.update({"vy": vel[1] * 1e3, "vz": vel[2] * 1e3, "q_xyzw": np.array([q[1], q[2], q[3], q[0]])})
        st.update({"rateRoll": w[0] * 1e3, "ratePitch": -w[1] * 1e3, "rateYaw": w[2] * 1e3})  # -gyro.y: legacy
        st.update({"fx": pos[0], "fy": pos[1], "fz": pos[2], "fvx": vel[0], "fvy": vel[1], "fvz": vel[2]})
        st.update({"fqx": q[1], "fqy": q[2], "fqz": q[3], "fqw": q[0], "froll": roll, "fpitch": -pitch, "fyaw": yaw})
        st.update({"gyrox": gyro[0], "gyroy": gyro[1], "gyroz": gyro[2]})
        self._state = st


class UdpServer:
    """CRTP over UDP on 127.0.0.1 (cflib's udp:// driver): a receive thread feeds the fake at once; the loop
    steps it and sends what it has to say to the last client."""

    def __init__(self, fake: FakeCrazyflie, port: int = 0) -> None:
        self.fake = fake
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="fake_crazyflie_udp", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                raw, self.client = self.sock.recvfrom(64)
            except (TimeoutError, OSError):
                continue
            self.fake.receive(raw)
            self.flush()

    def flush(self) -> None:
        while self.fake.outbox:
            raw = self.fake.outbox.popleft()
            if self.client is not None:
                self.sock.sendto(raw, self.client)

    def step(self, now: float) -> None:
        self.fake.step(now)
        self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.fake_crazyflie", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=19850, help="UDP port on 127.0.0.1 (0: a free one, logged)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=100.0, help="simulation and log rate, Hz")
    ap.add_argument("--require-arming", action="store_true", help="a Crazyflie 2.1 Brushless: arm before flying")
    ap.add_argument("--protocol-version", type=int, default=12, help="CRTP protocol version (12: firmware 2026.04+)")
    ap.add_argument("--clock-offset-s", type=float, default=0.0, help="added to the boot clock, s")
    ap.add_argument("--start-height", type=float, default=0.0, help="m; 0 = on the ground")
    ap.add_argument("--config", type=Path, default=None, help="bridge options with the thrust curve")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    fake = FakeCrazyflie(
        autopilot_vehicle_cfg(args.rate),
        load_thrust_curve(args.config),
        seed=args.seed,
        require_arming=args.require_arming,
        protocol_version=args.protocol_version,
        clock_offset_s=args.clock_offset_s,
        start_height_m=args.start_height,
    )
    server = UdpServer(fake, args.port)
    log.info("fake Crazyflie on udp://127.0.0.1:%d, %g Hz, for %g s", server.port, args.rate, args.seconds)
    try:
        stats = FixedRateLoop(args.rate).run(server.step, duration_s=args.seconds)
        log.info("done: %s", stats.summary())
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
