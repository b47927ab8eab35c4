"""A Foxglove layout for one log, written from the topics the log holds (any namespace, renamed topics too).

Target: the layout JSON of Foxglove Studio 1.87 (the last open-source release; ``Layouts -> Import from file``
in the Foxglove app): ``configById`` (panel id ``Type!name`` -> panel config), ``layout`` (a mosaic tree of
``{first, second, direction, splitPercentage}``), ``globalVariables``, ``userNodes``, ``playbackConfig``.
Panels:

- ``3D``: renders in ``base_link`` and follows its position (``followMode: follow-position``: the camera stays
  level in the world); a grid in ``world``; the frames ``world``, ``base_link`` and ``reference`` from ``/tf``; the
  pose and reference topics as arrows.
- ``Plot`` position vs reference (x, y, z, m), ``Plot`` position error (``policy/tracking_error``, m),
  ``Plot`` of the command (motor rpm, or collective thrust and body rates, or joint targets).
- ``StateTransitions``: the safety state (``safety/transition.to_state``).

Message paths use Foxglove's syntax (``/ns/state/pose.pose.position.x``, ``/ns/command/motors.rpm[0]``); plots
use the log time (``receiveTime``), the cycle's time the recorder stamps every message with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploy.recording import frames

FOXGLOVE_VERSION = "1.87"
LAYOUT_SUFFIX = ".foxglove-layout.json"
_AXES = ("x", "y", "z")
_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45")


def layout_path(log_path: str | os.PathLike[str]) -> Path:
    """Where the layout of ``run.mcap`` goes: ``run.foxglove-layout.json`` beside it."""
    path = Path(log_path)
    return path.with_name(path.stem + LAYOUT_SUFFIX)


def find_topics(topics: Mapping[str, str]) -> dict[str, str]:
    """Roles -> topic names, from {topic: ROS type} of a log: ``pose``, ``reference``, ``error``, ``motors``,
    ``rates``, ``joint_command``, ``joint_states``, ``safety``, ``timing``, ``tf``. By type, and by name where
    types repeat (the pose is the PoseStamped whose name ends in ``state/pose``, else the first one that is not
    the reference)."""
    by_type: dict[str, list[str]] = {}
    for name, ros_type in topics.items():
        by_type.setdefault(ros_type.replace("/msg/", "/"), []).append(name)
    roles: dict[str, str] = {}
    single = {
        "motors": "sim2real_msgs/MotorCommand",
        "rates": "sim2real_msgs/RateThrustCommand",
        "joint_command": "sim2real_msgs/JointCommand",
        "joint_states": "sensor_msgs/JointState",
        "safety": "sim2real_msgs/SafetyTransition",
        "timing": "sim2real_msgs/LoopTiming",
        "error": "geometry_msgs/Vector3Stamped",
    }
    for role, ros_type in single.items():
        names = sorted(by_type.get(ros_type, []))
        if role == "error":
            names = [n for n in names if n.endswith("/policy/tracking_error")]
        if names:
            roles[role] = names[0]
    poses = sorted(by_type.get("geometry_msgs/PoseStamped", []))
    for name in poses:
        if name.endswith("/policy/reference"):
            roles["reference"] = name
    inputs = ("/reference/setpoint", "/reference/target")  # setpoints a planner sends, should they be recorded
    others = [n for n in poses if n != roles.get("reference") and not n.endswith(inputs)]
    preferred = [n for n in others if n.endswith("/state/pose")]
    if preferred or others:
        roles["pose"] = (preferred or others)[0]
    if frames.TF_TOPIC in topics:
        roles["tf"] = frames.TF_TOPIC
    return roles


def _path(value: str, label: str, color: str) -> dict[str, Any]:
    return {"value": value, "enabled": True, "timestampMethod": "receiveTime", "label": label, "color": color}


def _plot(title: str, paths: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": title,
        "paths": paths,
        "showLegend": True,
        "legendDisplay": "floating",
        "showPlotValuesInLegend": True,
        "showXAxisLabels": True,
        "showYAxisLabels": True,
        "isSynced": True,
        "xAxisVal": "timestamp",
        "sidebarDimension": 240,
    }


def _three_d(roles: Mapping[str, str]) -> dict[str, Any]:
    topics: dict[str, Any] = {}
    if "pose" in roles:
        topics[roles["pose"]] = {"visible": True, "type": "arrow", "arrowScale": [0.3, 0.05, 0.05], "color": "#4363d8"}
    if "reference" in roles:
        topics[roles["reference"]] = {
            "visible": True,
            "type": "arrow",
            "arrowScale": [0.2, 0.04, 0.04],
            "color": "#3cb44b",
        }
    return {
        "cameraState": {
            "perspective": True,
            "distance": 4.0,
            "phi": 60.0,
            "thetaOffset": 45.0,
            "target": [0, 0, 0],
            "targetOffset": [0, 0, 0],
            "targetOrientation": [0, 0, 0, 1],
            "fovy": 45,
            "near": 0.01,
            "far": 5000,
        },
        "followMode": "follow-position",
        "followTf": frames.BASE,
        "scene": {"transforms": {"showLabel": True, "axisScale": 0.3, "labelSize": 0.1}},
        "transforms": {
            f"frame:{name}": {"visible": True}
            for name in (frames.WORLD, frames.BASE, frames.REFERENCE, frames.END_EFFECTOR)
        },
        "topics": topics,
        "layers": {
            "grid": {
                "layerId": "foxglove.Grid",
                "instanceId": "grid",
                "label": "Grid (world, 0.5 m)",
                "visible": True,
                "frameId": frames.WORLD,
                "size": 10,
                "divisions": 20,
                "lineWidth": 1,
                "color": "#248eff80",
                "position": [0, 0, 0],
                "rotation": [0, 0, 0],
                "order": 1,
            }
        },
        "publish": {
            "type": "point",
            "poseTopic": "/move_base_simple/goal",
            "pointTopic": "/clicked_point",
            "poseEstimateTopic": "/initialpose",
            "poseEstimateXDeviation": 0.5,
            "poseEstimateYDeviation": 0.5,
            "poseEstimateThetaDeviation": 0.26179939,
        },
        "imageMode": {},
    }


def _command_paths(roles: Mapping[str, str], joint_names: list[str] | None) -> tuple[str, list[dict[str, Any]]]:
    if "motors" in roles:
        t = roles["motors"]
        return "motor commands (rpm)", [_path(f"{t}.rpm[{i}]", f"M{i + 1}", _COLORS[i]) for i in range(4)]
    if "rates" in roles:
        t = roles["rates"]
        paths = [_path(f"{t}.thrust", "thrust (N)", _COLORS[3])]
        paths += [_path(f"{t}.body_rate.{a}", f"{a} rate (rad/s)", _COLORS[i]) for i, a in enumerate(_AXES)]
        return "command: collective thrust (N), body rates (rad/s)", paths
    if "joint_command" in roles:
        t = roles["joint_command"]
        names = joint_names or [str(i) for i in range(4)]
        paths = [_path(f"{t}.position[{i}]", n, _COLORS[i % len(_COLORS)]) for i, n in enumerate(names[:12])]
        return "joint position targets (rad)", paths
    return "", []


def foxglove_layout(topics: Mapping[str, str], joint_names: list[str] | None = None) -> dict[str, Any]:
    """The layout for a log holding ``topics`` ({name: ROS type}); ``joint_names`` label joint command plots."""
    roles = find_topics(topics)
    config: dict[str, Any] = {"3D!vehicle": _three_d(roles)}
    plots: list[str] = []
    if "pose" in roles:
        pose, paths = roles["pose"], []
        for i, a in enumerate(_AXES):
            paths.append(_path(f"{pose}.pose.position.{a}", f"{a}", _COLORS[i]))
            if "reference" in roles:
                paths.append(_path(f"{roles['reference']}.pose.position.{a}", f"{a} reference", _COLORS[i + 3]))
        config["Plot!position"] = _plot("position vs reference (m, world)", paths)
        plots.append("Plot!position")
    if "error" in roles:
        err = roles["error"]
        paths = [_path(f"{err}.vector.{a}", f"{a} error", _COLORS[i]) for i, a in enumerate(_AXES)]
        config["Plot!error"] = _plot("position - reference (m, world)", paths)
        plots.append("Plot!error")
    title, paths = _command_paths(roles, joint_names)
    if paths:
        config["Plot!command"] = _plot(title, paths)
        plots.append("Plot!command")
    if "safety" in roles:
        config["StateTransitions!safety"] = {
            "paths": [{"value": f"{roles['safety']}.to_state", "timestampMethod": "receiveTime"}],
            "isSynced": True,
        }
        plots.append("StateTransitions!safety")
    layout: Any = "3D!vehicle"
    if plots:
        layout = {"direction": "row", "first": "3D!vehicle", "second": _column(plots), "splitPercentage": 50}
    return {
        "configById": config,
        "globalVariables": {},
        "userNodes": {},
        "linkedGlobalVariables": [],
        "playbackConfig": {"speed": 1.0},
        "layout": layout,
    }


def _column(panels: list[str]) -> Any:
    """Panels stacked top to bottom, equal heights."""
    if len(panels) == 1:
        return panels[0]
    return {
        "direction": "column",
        "first": panels[0],
        "second": _column(panels[1:]),
        "splitPercentage": 100.0 / len(panels),
    }


def write_layout(
    log_path: str | os.PathLike[str], topics: Mapping[str, str], joint_names: list[str] | None = None
) -> Path:
    """Write the layout of the log at ``log_path`` beside it (:func:`layout_path`); returns its path."""
    path = layout_path(log_path)
    path.write_text(json.dumps(foxglove_layout(topics, joint_names), indent=2) + "\n")
    return path
