"""A stand-in for a PX4 or ArduPilot flight controller on a MAVLink link, flying the project's quadrotor simulator.

    python -m drivers.fake_mavlink --autopilot px4 --connection udpout:127.0.0.1:14540 --rpm-max 21702
        [--config launch/mavlink_px4_bridge.yaml] [--state odometry|attitude] [--loss-timeout 1.0]
        [--guid-options 8] [--clock-offset-s 0] [--start-height 0] [--seconds 60] [--seed 0]

A pymavlink peer (MAVLink 2, system 1 component 1) that applies the rules of drivers/mavlink_autopilot.py (which
cites the autopilots' documents): PX4's offboard switch and arming only after > 1 s of setpoint stream, the
COM_OF_LOSS_T failsafe (``--loss-timeout``) to AUTO_LAND; ArduPilot's GUIDED_NOGPS without a stream, GUID_TIMEOUT
to a level hover at zero climb rate, LAND, GUID_OPTIONS (``--guid-options``; bit 3 = thrust is a thrust); both:
setpoints only in that mode and armed, arming only there, a forced disarm in flight, a disarm after landing.
Every COMMAND_LONG is answered with COMMAND_ACK; PARAM_REQUEST_READ of its parameters with PARAM_VALUE.

SET_ATTITUDE_TARGET flies through a rate loop in place of the autopilot's: the simulator's ctbr rate controller
and mixer (sim.quadrotor.actions.ctbr_rate_loop, the task config's rate_gains) on the body rates FRD -> FLU, and
the normalized thrust -> newtons through the throttle curve (``--rpm-max``, ``--throttle-exponent`` or the
``--config`` file) with the simulated vehicle's kf (the bridge's kf is its estimate of it). The autopilot's own
landing (straight down at PX4's MPC_LAND_SPEED 0.7 m/s, ArduPilot's LAND_SPEED 0.5 m/s) and level hover are
deploy.safety.quadrotor_control.HoverDescendController, as in drivers/fake_px4.py.

Out, stamped on a boot clock (time since this process started plus ``--clock-offset-s``): HEARTBEAT at 1 Hz
(MAV_TYPE_QUADROTOR, the autopilot's MAV_AUTOPILOT, base_mode armed flag, custom_mode), ODOMETRY (LOCAL_NED /
BODY_FRD: velocity in the body frame, as PX4 streams it) or, with ``--state attitude`` (ArduPilot's default),
ATTITUDE_QUATERNION + LOCAL_POSITION_NED, every period; BATTERY_STATUS (PX4) or SYS_STATUS (ArduPilot) at 5 Hz.
The ground is z = 0, as in drivers/sim_robot.py.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import numpy as np
import torch

from deploy.loop import FixedRateLoop
from deploy.safety.limits import QuadrotorFallback, QuadrotorLimits
from deploy.safety.quadrotor_control import GRAVITY_M_S2, HoverDescendController
from drivers.mavlink_autopilot import AutopilotRules
from drivers.mavlink_convert import MAV_FRAME_BODY_FRD, MAV_FRAME_LOCAL_NED, thrust_newtons
from drivers.mavlink_wire import ARMED_FLAG, AUTOPILOTS, CUSTOM_MODE_FLAG, RESULT_NAMES, connect, load_options, mavlink
from drivers.px4_convert import ThrottleCurve, enu_to_ned, flu_to_frd, frd_to_flu, quat_enu_flu_to_ned_frd, quat_rotate
from drivers.vehicle import autopilot_vehicle_cfg
from sim.quadrotor.actions import ctbr_rate_loop
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv

log = logging.getLogger("sim2real.fake_mavlink")
NAN21 = [math.nan] * 21
CLIMB_GAIN_1_S = 3.0  # the vertical-speed loop of "climb" and "level" (ArduPilot's, simplified)


class FakeMavlinkAutopilot:
    """The simulated vehicle behind a MAVLink link. Call :meth:`step` once per control period."""

    def __init__(
        self,
        conn,
        rules: AutopilotRules,
        curve: ThrottleCurve,
        cfg: QuadrotorTaskCfg | None = None,
        seed: int = 0,
        clock_offset_s: float = 0.0,
        start_height_m: float = 0.0,
        state_messages: str = "odometry",
    ):
        cfg = cfg or autopilot_vehicle_cfg()
        cfg.episode_s, cfg.init = 1e6, InitCfg(0.0, 0.0, 0.0, 0.0)
        cfg.termination.floor_m, cfg.termination.position_m = -math.inf, 1e3
        self.conn, self.rules, self.curve, self.cfg, self.state_messages = conn, rules, curve, cfg, state_messages
        self.env = QuadrotorEnv(cfg, 1, seed=seed)  # the native kernel (rpm): 0.09 ms a step, the eager one 6 ms
        self.env.set_state_rows("position", torch.tensor([[0.0, 0.0, start_height_m]]))
        self.spec = self.env.action_spec
        self._noise = torch.Generator().manual_seed(seed + 1)
        self._boot_ns = time.monotonic_ns() - int(clock_offset_s * 1e9)
        # the autopilot's landing: straight down at its land speed, no hover first (unlike the runtime's fallback)
        landing = QuadrotorFallback(hover_s=0.0, descent_rate_m_s=rules.autopilot.land_speed_m_s)
        self.lander = HoverDescendController(QuadrotorLimits(fallback=landing))
        self._landing_since: float | None = None
        self._last_heartbeat = -math.inf
        self.battery, self.steps = 0.95, 0

    # ------------------------------------------------------------------ input
    def boot_us(self) -> int:
        return (time.monotonic_ns() - self._boot_ns) // 1000

    def height(self) -> float:
        return float(self.env.state_rows("position")[0, 2])

    def in_air(self) -> bool:
        return self.height() > 0.05

    def _handle(self, msg, now: float) -> None:
        kind = msg.get_type()
        if kind == "SET_ATTITUDE_TARGET" and msg.target_system in (0, 1):
            rates = (msg.body_roll_rate, msg.body_pitch_rate, msg.body_yaw_rate)
            self.rules.on_setpoint(msg.type_mask, msg.thrust, rates, now)
        elif kind == "COMMAND_LONG" and msg.target_system in (0, 1):
            result, reason = self.rules.on_command(msg.command, msg.param1, msg.param2, msg.param3, now, self.in_air())
            if reason:
                log.warning("%s", reason)
            self.conn.mav.command_ack_send(msg.command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent())
            if result != 0:
                log.info("COMMAND_ACK %d %s", msg.command, RESULT_NAMES.get(result, result))
        elif kind == "PARAM_REQUEST_READ" and msg.target_system in (0, 1):
            name = msg.param_id if isinstance(msg.param_id, str) else msg.param_id.decode(errors="replace")
            name = name.rstrip("\x00")
            if name in self.rules.params:
                names = sorted(self.rules.params)
                value = self.rules.params[name]
                self.conn.mav.param_value_send(
                    name.encode(), value, mavlink.MAV_PARAM_TYPE_REAL32, len(names), names.index(name)
                )

    # ------------------------------------------------------------------ flight
    def _vertical(self, up_m_s: float, vel: np.ndarray, q: np.ndarray) -> float:
        """Collective thrust (N) for a climb rate, tilt-compensated."""
        rot_zz = 1.0 - 2.0 * (q[1] ** 2 + q[2] ** 2)
        mass = self.cfg.params.mass
        return mass * (GRAVITY_M_S2 + CLIMB_GAIN_1_S * (up_m_s - vel[2])) / max(rot_zz, 0.7)

    def _rate_loop(self, thrust_n: float, rates_frd) -> np.ndarray:
        thrust = torch.tensor([float(thrust_n)])
        rates = tuple(torch.tensor([float(v)]) for v in frd_to_flu(rates_frd))
        w = tuple(self.env.state_rows("angular_velocity")[0].reshape(3, 1))
        rpm = ctbr_rate_loop(thrust, rates, w, self.cfg.params, self.cfg.rate_gains)
        return torch.cat(rpm).numpy().astype(float)

    def _motor_rpm(self, now: float) -> np.ndarray:
        control = self.rules.control(self.in_air())
        pos = self.env.state_rows("position")[0].numpy().astype(float)
        vel = self.env.state_rows("velocity")[0].numpy().astype(float)
        q = self.env.state_rows("quaternion")[0].numpy().astype(float)
        w = self.env.state_rows("angular_velocity")[0].numpy().astype(float)
        if control[0] != "land":
            self.lander.phase, self._landing_since = None, None
        if control[0] == "land":
            if self.lander.landed(pos):
                self._landing_since = now if self._landing_since is None else self._landing_since
                if now - self._landing_since > 0.5:
                    self.rules.set_armed(False, "landed (auto disarm)")
                return np.zeros(4)
            return self.lander.command(now, pos, vel, q, w)
        if control[0] == "rates":
            return self._rate_loop(thrust_newtons(control[1], self.cfg.params.kf, self.curve), control[2])
        if control[0] == "climb":
            return self._rate_loop(self._vertical(control[1], vel, q), control[2])
        if control[0] == "level":
            force = np.array([0.0, 0.0, self._vertical(0.0, vel, np.array([1.0, 0.0, 0.0, 0.0]))])
            return self.lander.attitude_command(force, q, w)
        return np.zeros(4)  # off, or armed with nothing to fly: idle

    def step(self, now: float | None = None) -> None:
        """Handle what arrived, apply the rules, advance the simulation one period and publish."""
        now = time.monotonic() if now is None else now
        while (msg := self.conn.recv_match(blocking=False)) is not None:
            self._handle(msg, now)
        self.rules.update(now)
        rpm = np.clip(self._motor_rpm(now), self.spec.low[0], self.spec.high[0])
        self.env.step(self.spec.to_normalized(torch.as_tensor(rpm, dtype=torch.float32))[None])
        self._ground()
        self.steps += 1
        self.battery = max(0.0, self.battery - self.cfg.control_dt / 420.0)
        self._publish(now)

    def _ground(self) -> None:
        pos = self.env.state_rows("position")
        if pos[0, 2] < 0.0:
            self.env.set_state_rows("position", torch.tensor([[pos[0, 0], pos[0, 1], 0.0]]))
            self.env.set_state_rows("velocity", torch.zeros(1, 3))
            self.env.set_state_rows("angular_velocity", torch.zeros(1, 3))

    # ------------------------------------------------------------------ output
    def _publish(self, now: float) -> None:
        mav, us = self.conn.mav, self.boot_us()
        if now - self._last_heartbeat >= 1.0:
            self._last_heartbeat = now
            armed = ARMED_FLAG if self.rules.armed else 0
            status = mavlink.MAV_STATE_ACTIVE if self.rules.armed else mavlink.MAV_STATE_STANDBY
            ap = self.rules.autopilot
            mav.heartbeat_send(
                mavlink.MAV_TYPE_QUADROTOR, ap.mav_autopilot, CUSTOM_MODE_FLAG | armed, self.rules.mode, status
            )
        spec = self.env.obs_spec

        def noisy(name: str, term: str) -> np.ndarray:
            value = self.env.state_rows(name)[0]
            return (value + spec.term(term).noise_std * torch.randn(3, generator=self._noise)).numpy().astype(float)

        q_ned = quat_enu_flu_to_ned_frd(self.env.state_rows("quaternion")[0].numpy().astype(float))
        pos, vel = enu_to_ned(noisy("position", "position_error")), enu_to_ned(noisy("velocity", "linear_velocity"))
        p, q, r = flu_to_frd(noisy("angular_velocity", "angular_velocity"))
        if self.state_messages == "odometry":
            conj = np.array([q_ned[0], -q_ned[1], -q_ned[2], -q_ned[3]])
            vb = quat_rotate(conj, vel)  # world NED -> body FRD, as PX4 streams it
            mav.odometry_send(
                us, MAV_FRAME_LOCAL_NED, MAV_FRAME_BODY_FRD, *pos, q_ned.tolist(), *vb, p, q, r, NAN21, NAN21
            )
        else:
            ms = us // 1000
            mav.attitude_quaternion_send(ms, *q_ned, p, q, r)
            mav.local_position_ned_send(ms, *pos, *vel)
        if self.steps % 20 == 1:
            mv = int(1000 * (3.0 + 1.2 * self.battery))
            pct = round(100 * self.battery)
            if self.rules.autopilot.name == "px4":
                mav.battery_status_send(0, 0, 0, 2500, [mv] + [65535] * 9, 120, -1, -1, pct)
            else:
                mav.sys_status_send(0, 0, 0, 0, mv, 120, pct, 0, 0, 0, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.fake_mavlink", description=__doc__.splitlines()[0])
    ap.add_argument("--autopilot", choices=sorted(AUTOPILOTS), default="px4")
    ap.add_argument("--connection", default=None, help="default: udpout:127.0.0.1:14540 (px4), :14550 (ardupilot)")
    ap.add_argument("--config", default=None, help="YAML with rpm_max / throttle_exponent / throttle_table")
    ap.add_argument("--rpm-max", type=float, default=None, help="RPM at normalized thrust 1.0")
    ap.add_argument("--throttle-exponent", type=float, default=None)
    ap.add_argument("--state", choices=("odometry", "attitude"), default=None, help="default: px4 odometry")
    ap.add_argument("--loss-timeout", type=float, default=None, help="COM_OF_LOSS_T / GUID_TIMEOUT, s")
    ap.add_argument("--guid-options", type=int, default=8, help="ArduPilot GUID_OPTIONS (bit 3: thrust is thrust)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=100.0, help="simulation and state rate, Hz")
    ap.add_argument("--clock-offset-s", type=float, default=0.0, help="added to the boot clock, s")
    ap.add_argument("--start-height", type=float, default=0.0, help="m; 0 = on the ground")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    autopilot = AUTOPILOTS[args.autopilot]
    args.kf = args.baud = None
    try:
        options = load_options(args)
    except (ValueError, OSError) as err:
        ap.error(str(err))
    port = 14540 if autopilot.name == "px4" else 14550
    conn = connect(args.connection or f"udpout:127.0.0.1:{port}", 921600, 1, 1)
    state = args.state or ("odometry" if autopilot.name == "px4" else "attitude")
    fake = FakeMavlinkAutopilot(
        conn,
        AutopilotRules(autopilot, args.loss_timeout, args.guid_options),
        options.curve,
        autopilot_vehicle_cfg(args.rate),
        seed=args.seed,
        clock_offset_s=args.clock_offset_s,
        start_height_m=args.start_height,
        state_messages=state,
    )
    log.info("fake %s on %s, %s state, %g Hz, for %g s", autopilot.name, conn.address, state, args.rate, args.seconds)
    stats = FixedRateLoop(args.rate).run(fake.step, duration_s=args.seconds)
    log.info("done: %s", stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
