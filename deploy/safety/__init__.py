"""The safety layer of the on-robot runtime (torch-free). See docs/safety.md.

Every command that leaves the runtime is returned by :meth:`SafetyLayer.filter`.
"""

from __future__ import annotations

from deploy.safety.checks import Severity, Verdict
from deploy.safety.consistency import InputFault
from deploy.safety.inputs import CommandMode, SafeCommand, SafetyInputs, StateSample
from deploy.safety.layer import SafetyLayer, build_checks
from deploy.safety.limits import (
    PRESETS,
    CommonLimits,
    JointLimits,
    LeggedLimits,
    ProfileError,
    QuadrotorLimits,
    RobotClass,
    SafetyProfile,
    a1_profile,
    crazyflie_profile,
    franka_profile,
)
from deploy.safety.profile_io import load_profile, profile_from_dict
from deploy.safety.quadrotor_control import touched_down
from deploy.safety.state_machine import ALLOWED_TRANSITIONS, ForbiddenTransition, SafetyState, Transition

__all__ = [
    "ALLOWED_TRANSITIONS",
    "PRESETS",
    "CommandMode",
    "CommonLimits",
    "ForbiddenTransition",
    "InputFault",
    "JointLimits",
    "LeggedLimits",
    "ProfileError",
    "QuadrotorLimits",
    "RobotClass",
    "SafeCommand",
    "SafetyInputs",
    "SafetyLayer",
    "SafetyProfile",
    "SafetyState",
    "Severity",
    "StateSample",
    "Transition",
    "Verdict",
    "a1_profile",
    "build_checks",
    "crazyflie_profile",
    "franka_profile",
    "load_profile",
    "profile_from_dict",
    "touched_down",
]
