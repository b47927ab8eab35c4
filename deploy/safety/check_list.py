"""The safety layer's checks for a profile, in order, and how their verdicts combine.

Which checks run depends only on the robot class (docs/ARCHITECTURE.md, "Safety layer": no check is optional for a
real robot; profiles set limits, not whether checks run). Order matters: on ties of severity the earlier check's
verdict (and reason) wins (:func:`worst`).
"""

from __future__ import annotations

import numpy as np

from deploy.safety.checks import (
    ActionLimitCheck,
    ClockCheck,
    DeadlineCheck,
    EStopCheck,
    FiniteCheck,
    HeartbeatCheck,
    StateWatchdogCheck,
    Verdict,
)
from deploy.safety.checks_robot import (
    AltitudeCheck,
    BaseTiltCheck,
    BatteryCheck,
    GeofenceCheck,
    JointRangeCheck,
    TiltCheck,
)
from deploy.safety.consistency import InputIntegrityCheck, StateConsistencyCheck
from deploy.safety.limits import RobotClass, SafetyProfile


def build_checks(profile: SafetyProfile) -> list:
    """The ordered checks for ``profile``'s robot class. Which checks run depends only on the robot class."""
    c = profile.common
    checks: list = [
        EStopCheck(),
        ClockCheck(),
        StateWatchdogCheck(c.max_state_age_s),
        HeartbeatCheck(c.max_heartbeat_age_s),
        FiniteCheck(profile.command_size),
        DeadlineCheck(c.inference_deadline_s, c.max_consecutive_overruns),
        StateConsistencyCheck(),
        InputIntegrityCheck(),
    ]
    if profile.robot_class is RobotClass.QUADROTOR:
        env = profile.quadrotor.envelope
        checks += [
            TiltCheck(env.max_tilt_rad, env.max_tilt_duration_s),
            GeofenceCheck(env.geofence_radius_m, env.geofence_center_xy_m),
            AltitudeCheck(env.altitude_ceiling_m, env.altitude_floor_m),
            BatteryCheck(env.battery_low_fraction, env.battery_critical_fraction),
        ]
    else:
        j = profile.joints
        margin = j.position_margin_rad
        vel, tau = np.asarray(j.velocity_max_rad_s), np.asarray(j.torque_max_nm)
        checks += [
            JointRangeCheck(
                "joint_position",
                "joint_pos_rad",
                "rad",
                profile.command_low() - margin,
                profile.command_high() + margin,
                j.names,
            ),
            JointRangeCheck("joint_velocity", "joint_vel_rad_s", "rad/s", -vel, vel, j.names),
            JointRangeCheck("joint_torque", "joint_torque_nm", "N m", -tau, tau, j.names),
        ]
        if profile.robot_class is RobotClass.LEGGED:
            checks.append(BaseTiltCheck(profile.legged.max_base_tilt_rad))
    checks.append(ActionLimitCheck(profile.command_low(), profile.command_high(), profile.command_max_rate_per_s()))
    return checks


def worst(verdicts: list[Verdict]) -> Verdict:
    """The most severe verdict; on ties the earliest in check order."""
    best = verdicts[0]
    for v in verdicts[1:]:
        if v.severity > best.severity:
            best = v
    return best
