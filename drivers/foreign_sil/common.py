"""What every foreign software-in-the-loop robot shares: the layout match between the project's motors and the
foreign vehicle's rotors, the frame turn that goes with it, and the node on the topic table.

Frames. The project's policy body frame is FLU with its motors at the places of ``launch/robots/crazyflie2.yaml``
``layout`` (m1 front-right cw, m2 back-right ccw, m3 back-left cw, m4 front-left ccw; cw: the reaction yaws the
body +z). A foreign simulator has its own body frame, rotor places and spins. :func:`match_layout` finds the quarter
turn about body z that carries the foreign rotors onto the project's motors (place and spin) and the motor order
that goes with it, as the project's Crazyflie firmware does for the real vehicle, whose front-right motor spins the
other way (docs/crazyflie_onboard.md). The foreign body frame S and the policy frame P are then related by
``R_SP = Rz(yaw_rad)`` (P vectors -> S vectors); the state goes out in P, the commands come in for P's motors.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from deploy.msgs import BatteryState, MotorCommand, make_header
from deploy.observation import quat_multiply
from deploy.transport import Ros2Node, TransportConfig
from drivers.state_out import StateOut
from drivers.vehicle import PhysicsClock, VehicleFilter, default_vehicle_id

log = logging.getLogger("sim2real.foreign_sil")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROBOT = ROOT / "launch" / "robots" / "crazyflie2.yaml"
SPINS = {"cw": 1.0, "ccw": -1.0}  # sign of the reaction torque about body +z


@dataclass(frozen=True)
class Rotors:
    """Rotor places and spins in one body frame: xy (R, 2) m, spin (R,) +1 (reaction yaws +z) or -1."""

    xy: np.ndarray
    spin: np.ndarray


def project_rotors(robot_file: str | Path = DEFAULT_ROBOT) -> Rotors:
    """The ``layout.motors`` of a robot profile, in its motor order."""
    motors = (yaml.safe_load(Path(robot_file).read_text()) or {}).get("layout", {}).get("motors")
    if not motors:
        raise ValueError(f"{robot_file}: expected a layout: {{motors: [...]}} section with the motor places and spins")
    xy = np.array([[float(m["x_m"]), float(m["y_m"])] for m in motors])
    return Rotors(xy, np.array([SPINS[m["spin"]] for m in motors]))


@dataclass(frozen=True)
class LayoutMatch:
    """yaw_rad: R_SP = Rz(yaw_rad); order[j]: the foreign rotor that project motor j drives."""

    yaw_rad: float
    order: tuple[int, ...]


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def match_layout(foreign: Rotors, project: Rotors, tolerance_rad: float = 0.2) -> LayoutMatch:
    """The quarter turn and motor order that put every foreign rotor on a project motor's bearing with its spin.
    Arm lengths may differ (they are the foreign vehicle's own); bearings and spins may not."""
    if len(foreign.xy) != len(project.xy):
        raise ValueError(f"{len(foreign.xy)} foreign rotors for {len(project.xy)} project motors")
    bearing_p = np.arctan2(project.xy[:, 1], project.xy[:, 0])
    for quarter in range(4):
        yaw = quarter * math.pi / 2
        xy_p = foreign.xy @ rot_z(-yaw)[:2, :2].T  # foreign rotor places in P
        bearing_f = np.arctan2(xy_p[:, 1], xy_p[:, 0])
        diff = np.abs(np.angle(np.exp(1j * (bearing_p[:, None] - bearing_f[None, :]))))
        order = tuple(int(k) for k in diff.argmin(axis=1))
        if (
            sorted(order) == list(range(len(order)))
            and diff[np.arange(len(order)), order].max() < tolerance_rad
            and np.array_equal(foreign.spin[list(order)], project.spin)
        ):
            return LayoutMatch(yaw, order)
    raise ValueError(
        "no quarter turn puts the foreign rotors on the project's motors with the same spins (foreign places "
        f"{foreign.xy.tolist()}, spins {foreign.spin.tolist()}): another frame (a + layout) or a spin pattern the "
        "policy was not trained for; an rpm policy would not fly it"
    )


def quat_z(angle: float) -> np.ndarray:
    return np.array([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


@dataclass
class VehicleState:
    """The foreign simulator's true state in its own frames: world z up (m, m/s), body S (quaternion (w, x, y, z)
    S -> world, rates rad/s in S)."""

    position: np.ndarray
    quat_wxyz: np.ndarray
    velocity: np.ndarray
    rates: np.ndarray


class ForeignQuadrotor(Protocol):
    """One simulated vehicle of a foreign package. ``rotors`` in its body frame S, in its rotor order."""

    name: str
    rotors: Rotors
    mass_kg: float

    def reset(self, yaw_rad: float, height_m: float) -> None: ...

    def step(self, rotor_rpm: np.ndarray, dt: float) -> VehicleState:
        """Advance dt seconds with the rotor speed commands (R,) in RPM, foreign rotor order."""
        ...

    def hover_rpm(self) -> float: ...


class Measure:
    """What a motion-capture system and an estimator add: white noise (std per quantity) and a delay of
    ``delay_steps`` control periods. The rng is explicit."""

    def __init__(self, rng: np.random.Generator, pos_std=0.0, vel_std=0.0, att_std=0.0, rate_std=0.0, delay_steps=0):
        self.rng, self.std = rng, (pos_std, vel_std, att_std, rate_std)
        self.delay_steps, self._queue = int(delay_steps), []

    def __call__(self, position, quat_wxyz, velocity, rates):
        pos_std, vel_std, att_std, rate_std = self.std
        small = self.rng.normal(0.0, att_std, 3) / 2
        q = quat_multiply(quat_wxyz, np.array([1.0, *small]))
        sample = (
            position + self.rng.normal(0.0, pos_std, 3),
            q / np.linalg.norm(q),
            velocity + self.rng.normal(0.0, vel_std, 3),
            rates + self.rng.normal(0.0, rate_std, 3),
        )
        self._queue.append(sample)
        return self._queue.pop(0) if len(self._queue) > self.delay_steps else self._queue[0]


class ForeignSilNode:
    """A foreign vehicle on the topic table: obeys ``command/motors`` (RPM, the profile's motor order, its own
    vehicle id), idles the motors after ``command_timeout_s`` without a command, publishes ``state/pose``,
    ``state/twist`` (through :class:`drivers.state_out.StateOut`) and ``state/battery`` at 10 Hz, in P."""

    def __init__(
        self,
        node: Ros2Node,
        transport: TransportConfig,
        vehicle: ForeignQuadrotor,
        measure: Measure,
        robot_file: str | Path = DEFAULT_ROBOT,
        start_height_m: float = 0.0,
        command_timeout_s: float = 0.5,
        vehicle_id: str | None = None,
    ):
        self.vehicle, self.measure = vehicle, measure
        self.match = match_layout(vehicle.rotors, project_rotors(robot_file))
        self.filter = VehicleFilter(vehicle_id or default_vehicle_id(transport.namespace))
        self.q_sp = quat_z(self.match.yaw_rad)  # P -> S
        self.r_ps = rot_z(-self.match.yaw_rad)  # S vectors -> P vectors
        vehicle.reset(-self.match.yaw_rad, start_height_m)  # the policy's body starts facing world x
        self.command_timeout_s = command_timeout_s
        self._idle = np.zeros(len(self.match.order))
        self._rpm, self._time = self._idle, -math.inf
        self.out = StateOut(node, transport)
        cmd = transport.topic("motor_command")
        self.command_sub = node.subscription(cmd.name, MotorCommand, cmd.qos, callback=self._on_command)
        self.steps = 0
        self.clock: PhysicsClock | None = None  # made at the first step, which gives the period
        self.last: VehicleState | None = None
        # neither foreign package models a battery: a linear drain as the project's SIL robot has (about 7 min)
        self.battery_fraction, self.battery_drain_per_s = 0.95, 1.0 / 420.0

    def _on_command(self, msg: MotorCommand) -> None:
        if not self.filter.accepts(msg):
            return
        rpm = np.asarray(msg.rpm, dtype=float)
        if rpm.shape != self._idle.shape or not np.isfinite(rpm).all():
            log.warning("ignoring a command with %s values (expected %d finite RPM)", rpm.shape, len(self._idle))
            return
        self._rpm, self._time = rpm, time.monotonic()

    def foreign_rpm(self, rpm: Sequence[float]) -> np.ndarray:
        """Project motor order -> foreign rotor order."""
        out = np.zeros(len(self.match.order))
        out[list(self.match.order)] = np.asarray(rpm, dtype=float)
        return out

    def in_policy_frame(self, s: VehicleState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(position, quaternion P -> world (w, x, y, z), world velocity, rates in P)."""
        return s.position, quat_multiply(s.quat_wxyz, self.q_sp), s.velocity, self.r_ps @ s.rates

    def step(self, dt: float, now: float | None = None) -> VehicleState:
        """Bring the vehicle up to ``now`` (monotonic s) in steps of ``dt`` and publish its state, stamped with its
        physics time (:class:`drivers.vehicle.PhysicsClock`: a late call runs the due steps on the held command)."""
        now = time.monotonic() if now is None else now
        if self.clock is None:
            self.clock = PhysicsClock(dt)
        rpm = self._rpm if now - self._time <= self.command_timeout_s else self._idle

        def one_step() -> None:
            self.last = self.vehicle.step(self.foreign_rpm(rpm), dt)
            self.steps += 1
            self.battery_fraction = max(0.0, self.battery_fraction - self.battery_drain_per_s * dt)

        self.clock.advance(now, self.steps, one_step)
        self.publish(self.last, self.clock.stamp_ns(self.steps))
        return self.last

    def publish(self, state: VehicleState, stamp_ns: int) -> None:
        position, quat, velocity, rates = self.measure(*self.in_policy_frame(state))
        self.out.publish(stamp_ns, position, quat, velocity, rates)
        if self.steps % 10 == 1:
            battery = BatteryState(
                make_header(stamp_ns, "world"),
                voltage=3.0 + 1.2 * self.battery_fraction,
                percentage=self.battery_fraction,
                present=True,
            )
            self.out.publish_battery(battery)
