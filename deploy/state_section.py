"""A deploy profile's ``state:`` section: which state input a quadrotor reads, and whether a legged robot publishes
a base velocity estimate. Torch-free; ``deploy.profile`` adds the file to the message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.runtime.quadrotor import STATE_INPUTS


def state_section(section: Any, robot_class: str) -> tuple[str, bool]:
    """``state:`` -> (input, base_twist). Quadrotor: ``{input: pose_twist | odometry}`` (absent: pose_twist); legged:
    ``{twist: true | false}``, whether the robot publishes a base velocity estimate on state/twist (absent: true)."""
    section = {} if section is None else section
    if not isinstance(section, Mapping) or set(section) - {"input", "twist"}:
        raise ValueError(
            f"state: expected {{input: pose_twist | odometry}} (quadrotor) or {{twist: true | false}} "
            f"(legged), found {section!r}"
        )
    value, twist = section.get("input", "pose_twist"), section.get("twist", robot_class == "legged")
    if value not in STATE_INPUTS:
        raise ValueError(
            f"state.input: expected one of {list(STATE_INPUTS)} (pose_twist: state/pose + state/twist; "
            f"odometry: nav_msgs/Odometry on state/odom), found {value!r}"
        )
    if robot_class == "quadrotor" and "twist" in section:
        raise ValueError(
            "state.twist is for a legged robot (whether it publishes a base velocity estimate); a quadrotor "
            "picks its state input with state: {input: pose_twist | odometry}"
        )
    if robot_class != "quadrotor" and value != "pose_twist":
        raise ValueError(
            f"state.input odometry is for a quadrotor; a {robot_class} robot reads joint_states and its "
            "base imu (and state/twist) or end-effector pose: drop the state section"
        )
    if not isinstance(twist, bool) or (twist and robot_class == "arm"):
        raise ValueError(
            f"state.twist: expected true or false for a legged robot (whether it publishes a base velocity "
            f"estimate on state/twist; a Go2 in low-level mode does not), found {twist!r} for a {robot_class} robot"
        )
    return value, twist
