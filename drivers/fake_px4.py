"""A stand-in for PX4 behind its uXRCE-DDS topics, flying the project's quadrotor simulator.

    python -m drivers.fake_px4 --seconds 60 --rpm-max 21702 [--px4-namespace ""] [--com-of-loss-t 1.0]
        [--clock-offset-s 1234.5] [--start-height 0] [--seed 0]

It enforces PX4's offboard rules (PX4 docs ``flight_modes/offboard.md``; commander): the switch to offboard
(VehicleCommand DO_SET_MODE param1 1, param2 6) and arming (COMPONENT_ARM_DISARM param1 1) are refused unless
OffboardControlMode has streamed at >= 2 Hz for > 1 s; while in offboard a stream gap longer than COM_OF_LOSS_T
(1 s default) is the offboard-loss failsafe: AUTO_LAND (a hold-then-descend controller) and disarm on the
ground; setpoints are ignored outside offboard, while disarmed, and unless they are the kind the latest
OffboardControlMode selects (its first true flag: direct_actuator -> ActuatorMotors, body_rate ->
VehicleRatesSetpoint); NaN = that motor off; a disarm in flight needs param2 = 21196 (kill).

VehicleRatesSetpoint flies through a rate loop in place of PX4's: the simulator's ctbr rate controller and mixer
(sim.quadrotor.actions.ctbr_rate_loop, the task config's rate_gains, once per period) on rates FRD -> FLU and
thrust -thrust_body[2] (0..1) -> newtons through the same throttle curve as the motors: each of 4 rotors at the
curve's rpm, thrust = kf rpm^2 with the simulated vehicle's kf (the bridge's kf is its estimate of it). Publishes VehicleOdometry (NED / FRD, 100 Hz), VehicleStatus (on change and
10 Hz) and BatteryStatus (5 Hz), stamped on a "PX4 boot" clock: microseconds since this process started plus
``--clock-offset-s``, unrelated to the host's monotonic clock, as a flight controller's would be. The ground is
z = 0 (the simulator has none), as in drivers/sim_robot.py.
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import time

import numpy as np
import torch

from deploy.loop import FixedRateLoop
from deploy.msgs.px4 import (
    ActuatorMotors,
    BatteryStatus,
    OffboardControlMode,
    VehicleCommand,
    VehicleOdometry,
    VehicleRatesSetpoint,
    VehicleStatus,
)
from deploy.safety.limits import QuadrotorLimits
from deploy.safety.quadrotor_control import HoverDescendController
from deploy.transport import Ros2Node
from drivers.px4_convert import (
    enu_to_ned,
    flu_to_frd,
    frd_to_flu,
    from_px4_controls,
    normalized_to_thrust,
    quat_enu_flu_to_ned_frd,
)
from drivers.px4_wire import (
    CMD_ARM_DISARM,
    CMD_DO_SET_MODE,
    CMD_NAV_LAND,
    FORCE_DISARM_MAGIC,
    NAV_STATE_NAMES,
    PX4_COMMAND_QOS,
    PX4_MAIN_MODE_AUTO,
    PX4_MAIN_MODE_OFFBOARD,
    PX4_QOS,
    PX4_SUB_MODE_AUTO_LAND,
    MotorOptions,
    Px4Topics,
    add_shared_arguments,
    control_mode,
    motor_options_from_args,
    topics_from_args,
)
from drivers.vehicle import autopilot_vehicle_cfg
from sim.quadrotor.actions import ctbr_rate_loop
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv

log = logging.getLogger("sim2real.fake_px4")
DISARMED, ARMED = VehicleStatus.ARMING_STATE_DISARMED, VehicleStatus.ARMING_STATE_ARMED
POSCTL, OFFBOARD, AUTO_LAND = 2, 14, 18
STREAM_MIN_HZ, STREAM_WARMUP_S = 2.0, 1.0


class FakePx4:
    """The simulated vehicle and PX4's offboard rules. Call :meth:`step` once per control period."""

    def __init__(
        self,
        node: Ros2Node,
        topics: Px4Topics,
        motors: MotorOptions,
        cfg: QuadrotorTaskCfg | None = None,
        seed: int = 0,
        com_of_loss_t_s: float = 1.0,
        clock_offset_s: float = 0.0,
        start_height_m: float = 0.0,
    ):
        cfg = cfg or autopilot_vehicle_cfg()
        cfg.episode_s = 1e6
        cfg.init = InitCfg(0.0, 0.0, 0.0, 0.0)
        cfg.termination.floor_m = -math.inf
        cfg.termination.position_m = 1e3
        self.cfg, self.motors, self.com_of_loss_t_s = cfg, motors, com_of_loss_t_s
        self.env = QuadrotorEnv(cfg, 1, seed=seed)  # the native kernel (rpm): 0.09 ms a step, the eager one 6 ms
        self.env.set_state_rows("position", torch.tensor([[0.0, 0.0, start_height_m]]))
        self.spec = self.env.action_spec
        self._noise = torch.Generator().manual_seed(seed + 1)
        self._boot_ns = time.monotonic_ns() - int(clock_offset_s * 1e9)
        self.arming_state, self.nav_state, self.failsafe = DISARMED, POSCTL, False
        self.lander = HoverDescendController(QuadrotorLimits())
        self._stream_start = self._last_ocm = -math.inf
        self.control_mode: str | None = None  # the setpoint kind the latest OffboardControlMode selects
        self._setpoint: np.ndarray | None = None  # last accepted ActuatorMotors, project motor order, normalized
        self._rates: np.ndarray | None = None  # last accepted VehicleRatesSetpoint: thrust N, rates FLU rad/s (4,)
        self._inbox: collections.deque = collections.deque()  # (kind, arrival s, msg) from the callback thread
        self.battery, self.steps, self._status_dirty = 0.95, 0, True
        self.odometry_pub = node.publisher(topics.name("out", "vehicle_odometry"), VehicleOdometry, PX4_QOS)
        self.status_pub = node.publisher(topics.name("out", "vehicle_status"), VehicleStatus, PX4_QOS)
        self.battery_pub = node.publisher(topics.name("out", "battery_status"), BatteryStatus, PX4_QOS)
        for kind, cls in (
            ("offboard_control_mode", OffboardControlMode),
            ("actuator_motors", ActuatorMotors),
            ("vehicle_rates_setpoint", VehicleRatesSetpoint),
            ("vehicle_command", VehicleCommand),
        ):
            qos = PX4_COMMAND_QOS if kind == "vehicle_command" else PX4_QOS
            node.subscription(topics.name("in", kind), cls, qos, callback=self._receiver(kind))

    def _receiver(self, kind: str):
        return lambda msg: self._inbox.append((kind, time.monotonic(), msg))

    # ------------------------------------------------------------------ rules
    def px4_time_us(self, monotonic_ns: int | None = None) -> int:
        return ((time.monotonic_ns() if monotonic_ns is None else monotonic_ns) - self._boot_ns) // 1000

    def stream_ok(self, now: float) -> bool:
        """OffboardControlMode arriving at >= 2 Hz, for more than 1 s."""
        return now - self._last_ocm <= 1.0 / STREAM_MIN_HZ and now - self._stream_start > STREAM_WARMUP_S

    def _set(self, arming_state: int | None = None, nav_state: int | None = None, why: str = "") -> None:
        if arming_state is not None and arming_state != self.arming_state:
            self.arming_state, self._status_dirty = arming_state, True
            log.info("%s (%s)", "armed" if arming_state == ARMED else "disarmed", why)
        if nav_state is not None and nav_state != self.nav_state:
            self.nav_state, self._status_dirty = nav_state, True
            self._setpoint = self._rates = None  # setpoints do not carry over a mode change
            height = float(self.env.state_rows("position")[0, 2])
            log.info("mode %s (%s) at %.2f m", NAV_STATE_NAMES.get(nav_state, nav_state), why, height)
            if nav_state == AUTO_LAND:
                self.lander = HoverDescendController(QuadrotorLimits())

    def _on_ocm(self, msg: OffboardControlMode, t: float) -> None:
        if t - self._last_ocm > 1.0 / STREAM_MIN_HZ:
            self._stream_start = t  # a new stream
        self._last_ocm = t
        mode = control_mode(msg)
        if mode != self.control_mode:
            log.info("offboard control mode %s", mode)
            self.control_mode, self._setpoint, self._rates = mode, None, None

    def _accepts(self, kind: str) -> bool:
        """PX4 uses offboard setpoints only in offboard, only armed, only of the kind the control mode selects."""
        return self.nav_state == OFFBOARD and self.arming_state == ARMED and self.control_mode == kind

    def _on_actuators(self, msg: ActuatorMotors) -> None:
        if self._accepts("direct_actuator"):
            self._setpoint = from_px4_controls(msg.control, self.motors.motor_map)

    def _on_rates(self, msg: VehicleRatesSetpoint) -> None:
        values = [msg.roll, msg.pitch, msg.yaw, msg.thrust_body[2]]
        if self._accepts("body_rate") and all(map(math.isfinite, values)):
            u = min(max(-float(msg.thrust_body[2]), 0.0), 1.0)
            thrust = normalized_to_thrust(u, self.cfg.params.kf, self.motors.curve)
            self._rates = np.array([thrust, *frd_to_flu(values[:3])])

    def _on_command(self, msg: VehicleCommand, t: float) -> None:
        if msg.target_system not in (0, 1):
            return
        if msg.command == CMD_DO_SET_MODE and round(msg.param1) == 1:
            if round(msg.param2) == PX4_MAIN_MODE_OFFBOARD:
                if self.stream_ok(t):
                    self._set(nav_state=OFFBOARD, why="DO_SET_MODE")
                else:
                    log.warning("offboard refused: no OffboardControlMode stream (>= 2 Hz for > 1 s)")
            elif round(msg.param2) == PX4_MAIN_MODE_AUTO and round(msg.param3) == PX4_SUB_MODE_AUTO_LAND:
                self._set(nav_state=AUTO_LAND, why="DO_SET_MODE auto land")
        elif msg.command == CMD_NAV_LAND:
            self._set(nav_state=AUTO_LAND, why="NAV_LAND")
        elif msg.command == CMD_ARM_DISARM and round(msg.param1) == 1:
            if self.nav_state == OFFBOARD and self.stream_ok(t):
                self._set(arming_state=ARMED, why="arm command")
            else:
                log.warning(
                    "arming refused: %s", "no offboard stream" if self.nav_state == OFFBOARD else "not in offboard"
                )
        elif msg.command == CMD_ARM_DISARM and round(msg.param1) == 0:
            if self.landed() or msg.param2 == FORCE_DISARM_MAGIC:
                self._set(arming_state=DISARMED, why="disarm command" + (" (forced)" if not self.landed() else ""))
            else:
                log.warning("disarm refused: in flight (param2 21196 forces it)")

    def landed(self) -> bool:
        return float(self.env.state_rows("position")[0, 2]) <= 0.05

    def _motor_rpm(self, now: float) -> np.ndarray:
        if self.arming_state != ARMED:
            return np.zeros(4)
        if self.nav_state == AUTO_LAND:
            pos = self.env.state_rows("position")[0].numpy().astype(float)
            if self.lander.phase is not None and self.lander.landed(pos) and now - self.lander.phase.start_s > 0.5:
                self._set(arming_state=DISARMED, why="landed (auto disarm)")
                return np.zeros(4)
            vel = self.env.state_rows("velocity")[0].numpy().astype(float)
            q = self.env.state_rows("quaternion")[0].numpy().astype(float)
            w = self.env.state_rows("angular_velocity")[0].numpy().astype(float)
            return self.lander.command(now, pos, vel, q, w)
        if self.nav_state == OFFBOARD and self._setpoint is not None:
            rpm = self.motors.curve.rpm(np.nan_to_num(self._setpoint, nan=0.0))
            return np.where(np.isnan(self._setpoint), 0.0, rpm)
        if self.nav_state == OFFBOARD and self._rates is not None:
            thrust, *rates = torch.as_tensor(self._rates, dtype=torch.float32).reshape(4, 1)
            w = self.env.state_rows("angular_velocity")[0].reshape(3, 1)
            rpm = ctbr_rate_loop(thrust, tuple(rates), tuple(w), self.cfg.params, self.cfg.rate_gains)
            return torch.cat(rpm).numpy().astype(float)
        return np.zeros(4)  # armed, no setpoint yet: idle

    def step(self, now: float | None = None) -> None:
        """Handle what arrived, apply the failsafe, advance the simulation one period and publish."""
        now = time.monotonic() if now is None else now
        while self._inbox:
            kind, t, msg = self._inbox.popleft()
            if kind == "offboard_control_mode":
                self._on_ocm(msg, t)
            elif kind == "actuator_motors":
                self._on_actuators(msg)
            elif kind == "vehicle_rates_setpoint":
                self._on_rates(msg)
            else:
                self._on_command(msg, t)
        if self.nav_state == OFFBOARD and now - self._last_ocm > self.com_of_loss_t_s:
            self.failsafe = True
            why = "offboard lost (COM_OF_LOSS_T)"
            self._set(nav_state=AUTO_LAND if self.arming_state == ARMED else POSCTL, why=why)
        rpm = np.clip(self._motor_rpm(now), self.spec.low[0], self.spec.high[0])
        self.env.step(self.spec.to_normalized(torch.as_tensor(rpm, dtype=torch.float32))[None])
        self._ground()
        self.steps += 1
        self.battery = max(0.0, self.battery - self.cfg.control_dt / 420.0)
        self._publish()

    def _ground(self) -> None:
        pos = self.env.state_rows("position")
        if pos[0, 2] < 0.0:
            self.env.set_state_rows("position", torch.tensor([[pos[0, 0], pos[0, 1], 0.0]]))
            self.env.set_state_rows("velocity", torch.zeros(1, 3))
            self.env.set_state_rows("angular_velocity", torch.zeros(1, 3))

    # ------------------------------------------------------------------ output
    def _publish(self) -> None:
        stamp = self.px4_time_us()
        spec = self.env.obs_spec

        def noisy(name: str, term: str) -> np.ndarray:
            value = self.env.state_rows(name)[0]
            return (value + spec.term(term).noise_std * torch.randn(3, generator=self._noise)).numpy()

        q = self.env.state_rows("quaternion")[0].numpy().astype(float)
        self.odometry_pub.publish(
            VehicleOdometry(
                timestamp=stamp,
                timestamp_sample=stamp,
                pose_frame=VehicleOdometry.POSE_FRAME_NED,
                position=enu_to_ned(noisy("position", "position_error")).tolist(),
                q=quat_enu_flu_to_ned_frd(q).tolist(),
                velocity_frame=VehicleOdometry.VELOCITY_FRAME_NED,
                velocity=enu_to_ned(noisy("velocity", "linear_velocity")).tolist(),
                angular_velocity=flu_to_frd(noisy("angular_velocity", "angular_velocity")).tolist(),
            )
        )
        if self._status_dirty or self.steps % 10 == 0:
            self._status_dirty = False
            self.status_pub.publish(
                VehicleStatus(
                    timestamp=stamp,
                    arming_state=self.arming_state,
                    nav_state=self.nav_state,
                    nav_state_timestamp=stamp,
                    failsafe=self.failsafe,
                    system_id=1,
                    component_id=1,
                    vehicle_type=1,
                    pre_flight_checks_pass=True,
                )
            )
        if self.steps % 20 == 1:
            volts = 3.0 + 1.2 * self.battery
            self.battery_pub.publish(
                BatteryStatus(
                    timestamp=stamp,
                    connected=True,
                    voltage_v=volts,
                    voltage_filtered_v=volts,
                    remaining=self.battery,
                    cell_count=1,
                    voltage_cell_v=[volts] + [0.0] * 13,
                )
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m drivers.fake_px4", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=100.0, help="simulation and odometry rate, Hz")
    ap.add_argument("--com-of-loss-t", type=float, default=1.0, help="PX4 COM_OF_LOSS_T: offboard stream timeout, s")
    ap.add_argument("--clock-offset-s", type=float, default=0.0, help="added to the PX4 boot clock, s")
    ap.add_argument("--start-height", type=float, default=0.0, help="m; 0 = on the ground")
    add_shared_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    with Ros2Node("fake_px4") as node:
        px4 = FakePx4(
            node,
            topics_from_args(args),
            motor_options_from_args(args),
            autopilot_vehicle_cfg(args.rate),
            seed=args.seed,
            com_of_loss_t_s=args.com_of_loss_t,
            clock_offset_s=args.clock_offset_s,
            start_height_m=args.start_height,
        )
        log.info("fake PX4 on domain %d, %g Hz, for %g s", node.domain_id, args.rate, args.seconds)
        stats = FixedRateLoop(args.rate).run(px4.step, duration_s=args.seconds)
        log.info("done: %s", stats.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
