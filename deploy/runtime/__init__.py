"""The deploy runtime (torch-free): one :class:`Runtime` for every robot class, with a small adapter per class.
See deploy/runtime/core.py for the cycle, the adapter contract and what the runtime guarantees."""

from __future__ import annotations

from deploy.runtime.contract import Act, Policy, Reading, RobotAdapter
from deploy.runtime.core import Runtime
from deploy.runtime.quadrotor import FlightPlan, PlanError, QuadrotorAdapter

__all__ = [
    "Act",
    "FlightPlan",
    "PlanError",
    "Policy",
    "QuadrotorAdapter",
    "Reading",
    "RobotAdapter",
    "Runtime",
    "adapter_for",
]


def adapter_for(profile, policy, node):
    """The adapter of a deploy profile's robot class (``deploy.profile.DeployProfile``)."""
    if profile.articulated:
        from deploy.runtime.articulated import ArticulatedAdapter

        return ArticulatedAdapter(
            policy,
            node,
            profile.transport,
            tuple(profile.safety.joints.names),
            profile.robot.joints.default_position_rad,
            profile.robot_class,
            profile.plan,
            reference=profile.reference,
            base_frame=profile.robot.bodies.base,
        )
    return QuadrotorAdapter(
        policy,
        node,
        profile.transport,
        profile.plan,
        profile.safety.quadrotor,
        battery=profile.battery,
        reference=profile.reference,
        state_input=profile.state_input,
    )
