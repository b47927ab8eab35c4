"""The quadrotor part of a safety profile: body, envelope, fallback, gains, consistency gate, attitude-only
descent, touchdown, and the command the vehicle takes (per-motor RPM, or collective thrust + body rates).

Every field carries its unit in its name; defaults and their sources are written next to each (see
deploy/safety/limits.py for the profile itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deploy.safety.limits_base import _fraction, _positive, _require


@dataclass(frozen=True)
class QuadrotorBody:
    """Crazyflie 2.x defaults, one consistent set from gym-pybullet-drones (cf2x.urdf, BaseAviary, DSLPIDControl)."""

    mass_kg: float = 0.027
    arm_length_m: float = 0.0397  # centre to motor
    inertia_kg_m2: tuple[float, float, float] = (1.4e-5, 1.4e-5, 2.17e-5)  # diagonal, body x, y, z
    kf_n_per_rpm2: float = 3.16e-10  # thrust per motor = kf * rpm^2
    km_m: float = 0.0251  # yaw torque / thrust ratio (km/kf in gym-pybullet-drones), metres
    min_rpm: float = 9440.3  # PWM 20000 via RPM = 0.2685 PWM + 4070.3 (DSLPIDControl): idle while armed
    max_rpm: float = 21666.4  # PWM 65535 via the same map
    #: command slew limit; full range in ~30 ms, faster than the motor (rise ~56 ms, RLtools): stops only jumps.
    max_rpm_rate_per_s: float = 400_000.0
    #: motor time constants speeding up / slowing down [s] (launch/robots/crazyflie2.yaml: RLtools 2025 rise,
    #: learning-to-fly 0.15 s): the fallback's motor model (quadrotor_motors.py)
    motor_tau_up_s: float = 0.056
    motor_tau_down_s: float = 0.15

    def __post_init__(self) -> None:
        _positive(self, "mass_kg", "arm_length_m", "kf_n_per_rpm2", "km_m", "max_rpm", "max_rpm_rate_per_s")
        _positive(self, "motor_tau_up_s", "motor_tau_down_s")
        inertia = tuple(float(v) for v in self.inertia_kg_m2)
        _require(
            len(inertia) == 3 and all(v > 0 for v in inertia),
            "quadrotor.body.inertia_kg_m2",
            "3 positive diagonal entries [kg m^2]",
            self.inertia_kg_m2,
        )
        object.__setattr__(self, "inertia_kg_m2", inertia)
        _require(
            0 <= self.min_rpm < self.max_rpm,
            "quadrotor.body.min_rpm",
            f"0 <= min_rpm < max_rpm={self.max_rpm}",
            self.min_rpm,
        )
        hover_rpm = math.sqrt(self.mass_kg * 9.81 / (4 * self.kf_n_per_rpm2))
        _require(
            hover_rpm < self.max_rpm,
            "quadrotor.body.max_rpm",
            f"above the hover speed {hover_rpm:.0f} RPM (mass, kf and max_rpm disagree)",
            self.max_rpm,
        )


@dataclass(frozen=True)
class QuadrotorEnvelope:
    """Flight envelope; geofence is a horizontal circle around ``geofence_center_xy_m``."""

    geofence_radius_m: float = 2.0  # indoor lab default (PX4 GF_MAX_HOR_DIST is configurable)
    geofence_center_xy_m: tuple[float, float] = (0.0, 0.0)
    altitude_ceiling_m: float = 2.0  # world z, metres (PX4 GF_MAX_VER_DIST is configurable)
    altitude_floor_m: float = -0.1  # world z below this: the estimate is below the ground -> FALLBACK (lands)
    max_tilt_rad: float = math.radians(60.0)  # PX4 FD_FAIL_R / FD_FAIL_P = 60 deg
    max_tilt_duration_s: float = 0.3  # PX4 FD_FAIL_R_TTRI / FD_FAIL_P_TTRI = 0.3 s -> flight termination (ESTOP)
    battery_low_fraction: float = 0.15  # PX4 BAT_LOW_THR -> warning (CLAMP)
    battery_critical_fraction: float = 0.07  # PX4 BAT_CRIT_THR -> land (FALLBACK)

    def __post_init__(self) -> None:
        _positive(self, "geofence_radius_m", "max_tilt_rad")
        object.__setattr__(self, "geofence_center_xy_m", tuple(float(v) for v in self.geofence_center_xy_m))
        _require(
            len(self.geofence_center_xy_m) == 2,
            "quadrotor.envelope.geofence_center_xy_m",
            "2 values [m]",
            self.geofence_center_xy_m,
        )
        _require(
            self.altitude_floor_m < self.altitude_ceiling_m,
            "quadrotor.envelope.altitude_floor_m",
            f"below altitude_ceiling_m={self.altitude_ceiling_m}",
            self.altitude_floor_m,
        )
        _require(
            self.max_tilt_rad <= math.pi,
            "quadrotor.envelope.max_tilt_rad",
            "radians in (0, pi] (a value above pi is probably in degrees: multiply by pi/180)",
            self.max_tilt_rad,
        )
        _require(
            self.max_tilt_duration_s >= 0,
            "quadrotor.envelope.max_tilt_duration_s",
            "seconds >= 0",
            self.max_tilt_duration_s,
        )
        _fraction(self, "battery_low_fraction", "battery_critical_fraction")
        _require(
            self.battery_critical_fraction <= self.battery_low_fraction,
            "quadrotor.envelope.battery_critical_fraction",
            f"<= battery_low_fraction={self.battery_low_fraction}",
            self.battery_critical_fraction,
        )


@dataclass(frozen=True)
class QuadrotorFallback:
    """Fallback behaviour: hold position for ``hover_s``, descend at ``descent_rate_m_s``, motors off on the floor."""

    hover_s: float = 1.0
    descent_rate_m_s: float = 0.3  # gentler than PX4 MPC_LAND_SPEED 0.7 m/s: a 30 g vehicle indoors
    ground_z_m: float = 0.0  # world z of the landing floor
    landed_height_m: float = 0.05  # motors off once z <= ground_z_m + landed_height_m
    landing_timeout_margin_s: float = 5.0  # motors off anyway this long after the expected touchdown
    blind_thrust_fraction: float = 0.9  # without a valid state: equal thrust = this * weight (sinks)
    blind_timeout_s: float = 2.0  # state invalid this long -> motors off, ESTOP (Crazyflie supervisor 2000 ms)
    # rpm: the fallback adds the torque the policy held in steady flight (deploy/safety/trim.py), averaged over this
    # time constant [s] (0: no trim) and clamped to this fraction of weight x the motors' lever arm per axis (0.1:
    # a 3 mm centre-of-mass offset on a Crazyflie)
    trim_time_constant_s: float = 0.5
    trim_max_fraction: float = 0.1
    # both interfaces: the fallback's collective thrust times the ratio of the policy's commanded thrust to what the
    # nominal vehicle needed for the measured vertical acceleration (deploy/safety/trim.py), clamped to this range
    # ((1, 1): none). The default randomization alone spans weight / thrust up to 1.41 (mass 1.2, kf 0.85).
    thrust_scale_range: tuple[float, float] = (0.6, 1.6)

    def __post_init__(self) -> None:
        _positive(self, "descent_rate_m_s", "landed_height_m", "landing_timeout_margin_s", "blind_timeout_s")
        _require(self.trim_time_constant_s >= 0, "quadrotor.fallback.trim_time_constant_s", "seconds >= 0 (0: no trim)",
                 self.trim_time_constant_s)  # fmt: skip
        _require(
            0 <= self.trim_max_fraction <= 0.5,
            "quadrotor.fallback.trim_max_fraction",
            "a fraction of weight x lever arm in [0, 0.5]",
            self.trim_max_fraction,
        )
        scale_range = tuple(self.thrust_scale_range)
        low, high = scale_range if len(scale_range) == 2 else (math.nan, math.nan)
        _require(
            0 < low <= 1.0 <= high < 10,
            "quadrotor.fallback.thrust_scale_range",
            "[low, high] with 0 < low <= 1 <= high (factors of the nominal thrust; [1, 1]: no thrust trim)",
            self.thrust_scale_range,
        )
        _require(self.hover_s >= 0, "quadrotor.fallback.hover_s", "seconds >= 0", self.hover_s)
        _require(
            0 < self.blind_thrust_fraction < 1,
            "quadrotor.fallback.blind_thrust_fraction",
            "a fraction of the weight in (0, 1) so the vehicle sinks",
            self.blind_thrust_fraction,
        )


@dataclass(frozen=True)
class QuadrotorFallbackGains:
    """PD gains of the fallback controller as natural frequencies [rad/s] and damping ratios [-]."""

    position_freq_rad_s: float = 2.0
    position_damping: float = 1.0
    # attitude PD (rpm: with the motor lead and the torque observer below; docs/safety.md "Fallback on imperfect
    # vehicles", measured with benchmarks/fallback_vehicles.py)
    attitude_freq_rad_s: float = 8.0
    attitude_damping: float = 1.0
    yaw_rate_gain_1_s: float = 5.0  # yaw: damp the body rate only, heading is not held
    altitude_integral_gain_1_s3: float = 1.0  # integral of the altitude error; mass mismatch
    # rpm: each motor is commanded f + gain (f - f_model) for a wanted thrust f, f_model the thrust a first-order lag
    # with the body's motor time constants gives from the commands that left: the slow motors' lag, pushed ahead;
    # 0: none
    motor_lead_gain: float = 2.0
    # rpm: time constant [s] of the torque observer: what the measured body rates' change leaves unexplained by the
    # modelled motors' torque (a centre of mass off the rotors' centre, unequal rotors), cancelled; it starts from
    # the trim (deploy/safety/trim.py). 0: trim only
    torque_observer_s: float = 0.2
    # rpm: a state up to this old [s] is first carried forward to now (attitude and body rates, with the modelled
    # motors' torque of each instant since it was measured); older still, it is used as it is. 0: never. With it the
    # fallback holds vehicles behind 3-5 periods of delay (benchmarks/fallback_vehicles.py, docs/safety.md)
    state_prediction_max_s: float = 0.1
    max_tilt_cmd_rad: float = math.radians(20.0)  # commanded tilt limit while in fallback

    def __post_init__(self) -> None:
        _positive(self, "position_freq_rad_s", "position_damping", "attitude_freq_rad_s", "attitude_damping")
        _positive(self, "yaw_rate_gain_1_s", "max_tilt_cmd_rad")
        _require(
            self.altitude_integral_gain_1_s3 >= 0,
            "quadrotor.gains.altitude_integral_gain_1_s3",
            ">= 0",
            self.altitude_integral_gain_1_s3,
        )
        _require(
            math.isfinite(self.motor_lead_gain) and 0 <= self.motor_lead_gain <= 10,
            "quadrotor.gains.motor_lead_gain",
            "a number in [0, 10] (0: no motor lead)",
            self.motor_lead_gain,
        )
        _require(
            math.isfinite(self.torque_observer_s) and self.torque_observer_s >= 0,
            "quadrotor.gains.torque_observer_s",
            "seconds >= 0 (0: no torque observer)",
            self.torque_observer_s,
        )
        _require(
            math.isfinite(self.state_prediction_max_s) and 0 <= self.state_prediction_max_s <= 0.5,
            "quadrotor.gains.state_prediction_max_s",
            "seconds in [0, 0.5] (0: no state prediction)",
            self.state_prediction_max_s,
        )


@dataclass(frozen=True)
class QuadrotorConsistency:
    """Position/velocity gate of a new state sample against the previous accepted one (dt apart):

        |p_new - (p_old + (v_old + v_new) / 2 * dt)| <= position_jump_m + max_accel_m_s2 * dt^2 / 4
        |v_new - v_old|                              <= velocity_jump_m_s + max_accel_m_s2 * dt

    The trapezoid residual of a body whose acceleration stays within max_accel is at most max_accel dt^2 / 4;
    the floors absorb sensor noise. At 100 Hz a real Crazyflie with motion capture (mm noise) or Lighthouse
    (cm, occasional few-cm corrections) and the simulated robot (2 mm position, 5 mm/s velocity noise) stay
    below 1 cm and 0.1 m/s per sample; a 0.5 m jump in 10 ms (50 m/s) or a 1000 m one is rejected. At a touchdown
    (within touchdown.height_m of fallback.ground_z_m, descending) the floor may stop the vehicle within a sample:
    the velocity test leaves out the change the floor explains (deploy/safety/consistency.py).
    """

    position_jump_m: float = 0.1
    #: 1 m/s per sample also bounds how much of a position jump a faked velocity can explain: <= 5 mm at 100 Hz.
    velocity_jump_m_s: float = 1.0
    #: thrust-to-weight 2.2 (max_rpm / hover) gives ~22 m/s^2; 30 m/s^2 leaves margin for gusts and contact.
    max_accel_m_s2: float = 30.0

    def __post_init__(self) -> None:
        _positive(self, "position_jump_m", "velocity_jump_m_s", "max_accel_m_s2")


@dataclass(frozen=True)
class QuadrotorLevelDescent:
    """The fallback when the position is suspect: level on attitude and body rates only, descend, motors off.

    With a trusted velocity: collective = hover * (1 + vertical_gain_1_s * (-descent_rate - vz) / g) / cos(tilt)
    within [min_thrust_fraction, max_thrust_fraction] of hover, and the horizontal velocity is damped (no
    position error is ever formed). Without a trusted velocity: open loop, ``open_loop_thrust_fraction`` of hover
    until the descent rate would be reached, then ``glide_thrust_fraction`` (keeps sinking if the mass is within
    3 % of the model). Motors off after at most (altitude_ceiling_m - ground_z_m) / descent_rate_m_s +
    margin_s, or earlier at a detected touchdown (trusted velocity only).
    """

    descent_rate_m_s: float = 0.4
    vertical_gain_1_s: float = 3.0
    horizontal_damping_1_s: float = 2.0  # a_xy = -gain * v_xy while the velocity is trusted
    min_thrust_fraction: float = 0.75  # of hover thrust: at most 0.25 g downwards
    max_thrust_fraction: float = 1.2  # of hover thrust: can arrest a fall, climbs at most 0.2 g on a bad vz
    open_loop_thrust_fraction: float = 0.85  # 0.15 g down for descent_rate / (0.15 g) = 0.27 s
    glide_thrust_fraction: float = 0.97
    margin_s: float = 3.0

    def __post_init__(self) -> None:
        _positive(self, "descent_rate_m_s", "vertical_gain_1_s", "horizontal_damping_1_s", "margin_s")
        for name in ("min_thrust_fraction", "open_loop_thrust_fraction", "glide_thrust_fraction"):
            value = getattr(self, name)
            _require(0 < value < 1, f"quadrotor.level_descent.{name}", "a fraction of hover thrust in (0, 1)", value)
        _require(
            self.max_thrust_fraction >= 1.0,
            "quadrotor.level_descent.max_thrust_fraction",
            ">= 1 (a fall must be arrestable)",
            self.max_thrust_fraction,
        )


@dataclass(frozen=True)
class QuadrotorTouchdown:
    """Landed = height above the floor <= height_m, speed <= speed_m_s and mean commanded thrust (rpm^2) <=
    thrust_fraction of hover; the attitude-only fallback (no trusted height) needs speed and thrust for hold_s.
    PX4's land detector uses the same three signs. A vehicle flying at 5-15 cm commands ~hover thrust.
    spool_down_s: in the plan's land phase, on the floor (height and speed), the runtime takes the thrust from the
    policy's command to none over this time (deploy.runtime.spool_down), so landing does not rely on the policy."""

    height_m: float = 0.1
    speed_m_s: float = 0.2
    thrust_fraction: float = 0.8
    hold_s: float = 0.3
    spool_down_s: float = 1.0

    def __post_init__(self) -> None:
        _positive(self, "height_m", "speed_m_s", "thrust_fraction", "hold_s", "spool_down_s")


@dataclass(frozen=True)
class QuadrotorRates:
    """Limits of a collective thrust + body rate (CTBR) command, for vehicles whose autopilot closes the rate
    loop (PX4 VehicleRatesSetpoint, MAVLink SET_ATTITUDE_TARGET, the Crazyflie's rate mode). The thrust range
    is the body's: 4 kf min_rpm^2 .. 4 kf max_rpm^2 [N].

    max_body_rate_rad_s: roll, pitch, yaw setpoint limits; 12 rad/s is the range ctbr policies are trained with
    (sim/quadrotor/config.py max_body_rate_rad_s; PX4 MC_ACRO_R_MAX defaults to 720 deg/s = 12.6 rad/s).
    The slew limits stop only jumps: full thrust range in ~30 ms as for RPM, the full rate range in 20 ms."""

    max_body_rate_rad_s: tuple[float, float, float] = (12.0, 12.0, 12.0)
    max_thrust_rate_fraction_per_s: float = 33.0  # of the thrust range per second
    max_body_rate_change_rad_s2: float = 1200.0

    def __post_init__(self) -> None:
        rates = tuple(float(v) for v in self.max_body_rate_rad_s)
        _require(
            len(rates) == 3 and all(math.isfinite(v) and v > 0 for v in rates),
            "quadrotor.rates.max_body_rate_rad_s",
            "3 positive limits [rad/s] (roll, pitch, yaw)",
            self.max_body_rate_rad_s,
        )
        object.__setattr__(self, "max_body_rate_rad_s", rates)
        _positive(self, "max_thrust_rate_fraction_per_s", "max_body_rate_change_rad_s2")


#: The commands a quadrotor takes: per-motor speeds, or collective thrust [N] + body rates FLU [rad/s].
INTERFACES = ("rpm", "ctbr")


@dataclass(frozen=True)
class QuadrotorLimits:
    """The quadrotor's limits. ``interface``: the command the runtime sends, set from the policy's action
    interface ("rpm": (4,) motor speeds M1..M4; "ctbr": (collective thrust N, roll, pitch, yaw rate rad/s))."""

    body: QuadrotorBody = field(default_factory=QuadrotorBody)
    envelope: QuadrotorEnvelope = field(default_factory=QuadrotorEnvelope)
    fallback: QuadrotorFallback = field(default_factory=QuadrotorFallback)
    gains: QuadrotorFallbackGains = field(default_factory=QuadrotorFallbackGains)
    consistency: QuadrotorConsistency = field(default_factory=QuadrotorConsistency)
    level_descent: QuadrotorLevelDescent = field(default_factory=QuadrotorLevelDescent)
    touchdown: QuadrotorTouchdown = field(default_factory=QuadrotorTouchdown)
    rates: QuadrotorRates = field(default_factory=QuadrotorRates)
    interface: str = "rpm"

    def __post_init__(self) -> None:
        _require(self.interface in INTERFACES, "quadrotor.interface", f"one of {INTERFACES}", self.interface)

    def thrust_range_n(self) -> tuple[float, float]:
        """Collective thrust at all motors' min_rpm and max_rpm [N]."""
        b = self.body
        return 4.0 * b.kf_n_per_rpm2 * b.min_rpm**2, 4.0 * b.kf_n_per_rpm2 * b.max_rpm**2

    def command_low(self) -> np.ndarray:
        if self.interface == "ctbr":
            return np.array([self.thrust_range_n()[0], *(-np.asarray(self.rates.max_body_rate_rad_s))])
        return np.full(4, self.body.min_rpm)

    def command_high(self) -> np.ndarray:
        if self.interface == "ctbr":
            return np.array([self.thrust_range_n()[1], *self.rates.max_body_rate_rad_s])
        return np.full(4, self.body.max_rpm)

    def command_max_rate_per_s(self) -> np.ndarray:
        """Max change of each command element per second (RPM/s; ctbr: N/s, then rad/s^2)."""
        if self.interface == "ctbr":
            lo, hi = self.thrust_range_n()
            r = self.rates
            return np.array([r.max_thrust_rate_fraction_per_s * (hi - lo), *[r.max_body_rate_change_rad_s2] * 3])
        return np.full(4, self.body.max_rpm_rate_per_s)

    def level_descent_max_s(self) -> float:
        """The longest the attitude-only fallback runs before the motors go off [s]."""
        height = self.envelope.altitude_ceiling_m - self.fallback.ground_z_m
        return max(height, 0.0) / self.level_descent.descent_rate_m_s + self.level_descent.margin_s
