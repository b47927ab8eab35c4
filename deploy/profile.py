"""Deploy profiles (``launch/*.yaml``): which robot, at what rate, over which topics, behind which limits, and
the check that a policy fits the robot before anything is armed. Torch-free.

    name: sim_quadrotor
    robot_class: quadrotor
    control_hz: 100
    robot: robots/crazyflie2.yaml          # the robot profile (relative to this file)
    action: {interface: rpm, names: [m1, m2, m3, m4]}   # or ctbr: [collective_thrust, roll_rate, ...]
    transport: {namespace: /sim2real}      # see docs/transport.md
    safety: {preset: crazyflie}            # see docs/safety.md
    plan: {height_m: 1.0, climb_rate_m_s: 0.5, hover_s: 10.0, descent_rate_m_s: 0.3}
    recording: {directory: runs/deploy}
    sil: {seed: 0, start_height_m: 0.0}    # software-in-the-loop robot (drivers/sim_robot.py); randomization: a
                                           # spec YAML for its vehicle (default: the task's default randomization)
    realtime_priority: 50                  # SCHED_FIFO for the control loop (needs root / CAP_SYS_NICE)
    vehicle_id: cf1                        # carried in every command; default: the namespace without '/'
    battery: {source: percentage}          # or {source: voltage, cells: 1}: deploy/runtime/battery.py
    reference: {source: topic}             # setpoints on reference/setpoint instead of the plan: runtime/reference.py
    state: {input: pose_twist}             # or odometry: nav_msgs/Odometry on state/odom (deploy/state_wire.py)

Articulated robots (``robot_class: legged | arm``; launch/sim_a1.yaml, launch/sim_franka.yaml) name an articulated
robot profile (``launch/robots/*.yaml``, top-level ``articulated:``) whose control rate, joints and safety
section they use: ``action`` may be left out (joint_position targets of the profile's joints), ``safety`` only
overrides the section the robot profile derives (``common``, ``joints``, ``legged`` keys), and the plan is a
:class:`deploy.articulated_plan.LeggedPlan` or :class:`~deploy.articulated_plan.ArmPlan`::

    name: sim_a1
    robot_class: legged
    control_hz: 50
    robot: robots/a1.yaml
    safety: {common: {max_state_age_s: 0.25}}
    plan: {stand_s: 2.0, hold_s: 2.0, walk_s: 4.0, velocity_command: [0.5, 0.0, 0.0], stop_s: 2.0}
    # or speed and turn steps for identification: speed_steps: [[0.3, 0, 0, 2.0], [0.8, 0, 0, 2.0], [0.5, 0, 0.4, 2.0]]
    sil: {seed: 0, start_height_m: 0.1, start_joint_position_rad: [...]}   # drivers/sim_articulated_node.py
    reference: {source: topic}             # after the stand-up, cmd_vel (legged) or reference/target (arm) instead
                                           # of the plan: deploy/runtime/reference_articulated.py
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.articulated_plan import ArmPlan, LeggedPlan, StreamedArticulatedPlan
from deploy.observation import JointObservationBuilder, ObservationBuilder
from deploy.runtime import FlightPlan, PlanError, Policy
from deploy.runtime.battery import BatteryGauge, BatteryGaugeError
from deploy.runtime.reference import ReferenceConfigError, TopicReference
from deploy.runtime.reference_articulated import ArmReference, LeggedReference, articulated_reference
from deploy.safety import ProfileError, SafetyProfile, profile_from_dict
from deploy.state_section import state_section
from deploy.transport import TransportConfig, TransportError
from drivers.vehicle import default_vehicle_id
from sim.articulated.profile import ArticulatedProfile, ArticulatedProfileError, load_profile
from sim.quadrotor.params import QuadrotorParams

ARTICULATED_CLASSES = ("legged", "arm")

KEYS = {
    "battery",
    "state",
    "reference",
    "name",
    "robot_class",
    "control_hz",
    "robot",
    "action",
    "transport",
    "safety",
    "plan",
    "recording",
    "sil",
    "realtime_priority",
    "vehicle_id",
}


class DeployProfileError(ValueError):
    """A deploy profile is malformed, or a policy does not fit the robot it describes."""


@dataclass
class DeployProfile:
    name: str
    control_hz: float
    robot: QuadrotorParams | ArticulatedProfile
    action_interface: str
    action_names: tuple[str, ...]
    transport: TransportConfig
    safety: SafetyProfile
    plan: FlightPlan | LeggedPlan | ArmPlan = field(default_factory=FlightPlan)
    recording_dir: Path = Path("runs/deploy")
    sil: dict[str, Any] = field(default_factory=dict)
    robot_class: str = "quadrotor"
    realtime_priority: int | None = None  # SCHED_FIFO priority of the control loop; None = normal scheduling
    robot_file: Path | None = None  # the robot profile YAML, where the deploy profile names one
    vehicle_id: str = ""  # carried in every command; robots reject commands for another vehicle
    battery: BatteryGauge = field(default_factory=BatteryGauge)  # how to read the state of charge (quadrotor)
    # a streamed reference instead of the plan (deploy/runtime/reference.py, reference_articulated.py)
    reference: TopicReference | LeggedReference | ArmReference | None = None
    state_input: str = "pose_twist"  # quadrotor: pose_twist (state/pose + state/twist) or odometry (state/odom)
    # legged: the robot publishes a base velocity estimate on state/twist (state: {twist: false}: it does not, so a
    # policy observing one is refused before arming)
    base_twist: bool = False

    @property
    def robot_hash(self) -> str:
        """Content hash of the robot profile (what the exported policy was trained for)."""
        return self.robot.digest()

    @property
    def articulated(self) -> bool:
        return self.robot_class in ARTICULATED_CLASSES


def _quadrotor_sil(path: Path, section: Any) -> dict[str, Any]:
    """The ``sil:`` section of a quadrotor profile; ``randomization:`` (the simulated vehicle's spec, e.g.
    launch/randomization/crazyflie2_base.yaml, the ideal vehicle) resolved against the profile's folder and checked to exist."""
    sil = dict(section or {})
    if "randomization" in sil:
        spec = (path.parent / str(sil["randomization"])).resolve()
        if not spec.is_file():
            raise DeployProfileError(
                f"{path}: sil.randomization {sil['randomization']!r} is not a file (looked for {spec}); give a "
                "randomization spec YAML relative to the profile, e.g. randomization/crazyflie2_base.yaml"
            )
        sil["randomization"] = str(spec)
    return sil


def load_deploy_profile(path: str | Path) -> DeployProfile:
    path = Path(path)
    if not path.is_file():
        raise DeployProfileError(
            f"deploy profile {str(path)!r} does not exist; see launch/sim_quadrotor.yaml for an example"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DeployProfileError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise DeployProfileError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise DeployProfileError(f"{path}: unknown keys {unknown}; a deploy profile has {sorted(KEYS)}")
    for key in ("control_hz", "robot") + (("action",) if data.get("robot_class", "quadrotor") == "quadrotor" else ()):
        if key not in data:
            raise DeployProfileError(f"{path}: missing {key!r}")
    robot_class = data.get("robot_class", "quadrotor")
    if robot_class != "quadrotor" and robot_class not in ARTICULATED_CLASSES:
        raise DeployProfileError(
            f"{path}: robot_class {robot_class!r}: expected quadrotor, {' or '.join(ARTICULATED_CLASSES)}"
        )
    rate = data["control_hz"]
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate <= 10_000:
        raise DeployProfileError(f"{path}: control_hz must be a number of Hz in (0, 10000], found {rate!r}")
    _check_common(path, data)
    try:
        if robot_class in ARTICULATED_CLASSES:
            profile = _articulated_profile(path, data, robot_class, float(rate))
        else:
            profile = _quadrotor_profile(path, data, float(rate))
    except (TransportError, ProfileError, BatteryGaugeError, ReferenceConfigError) as exc:
        raise DeployProfileError(f"{path}: {exc}") from exc
    profile.vehicle_id = _vehicle_id(path, data, profile.transport)
    return profile


def _check_common(path: Path, data: Mapping[str, Any]) -> None:
    """Fields every profile has, checked before anything is started."""
    priority = data.get("realtime_priority")
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 99
    ):
        raise DeployProfileError(
            f"{path}: realtime_priority: expected an integer SCHED_FIFO priority 1..99 or null (normal "
            f"scheduling), found {priority!r}"
        )
    for key in ("sil", "recording", "plan"):
        if data.get(key) is not None and not isinstance(data[key], Mapping):
            raise DeployProfileError(f"{path}: {key}: expected a mapping, found {data[key]!r}")


def _vehicle_id(path: Path, data: Mapping[str, Any], transport: TransportConfig) -> str:
    vid = data.get("vehicle_id", default_vehicle_id(transport.namespace))
    if not isinstance(vid, str) or not vid or not vid.replace("_", "").replace("-", "").replace("/", "").isalnum():
        raise DeployProfileError(
            f"{path}: vehicle_id: expected a non-empty name of letters, digits, '_', '-' or '/', found {vid!r}"
        )
    return vid


def _quadrotor_profile(path: Path, data: Mapping[str, Any], rate: float) -> DeployProfile:
    robot = data["robot"]
    robot_params = (
        QuadrotorParams.from_yaml(path.parent / robot)
        if isinstance(robot, str)
        else QuadrotorParams.from_dict(robot, source=f"{path}: robot")
    )
    action = data["action"]
    if not isinstance(action, Mapping) or "interface" not in action or "names" not in action:
        raise DeployProfileError(f"{path}: action needs 'interface' and 'names' (motor order), found {action!r}")
    interface = str(action["interface"])
    if interface not in ("rpm", "ctbr"):
        raise DeployProfileError(
            f"{path}: action.interface: expected 'rpm' (motor speeds) or 'ctbr' (collective thrust + body rates) "
            f"for a quadrotor, found {interface!r}"
        )
    safety = dict(data.get("safety") or {"preset": "crazyflie"})
    safety.setdefault("common", {})
    safety["common"] = {**safety["common"], "control_period_s": 1.0 / float(rate)}
    quad = dict(safety.get("quadrotor") or {})
    if quad.get("interface", interface) != interface:
        raise DeployProfileError(
            f"{path}: safety.quadrotor.interface {quad['interface']!r} differs from action.interface {interface!r}; "
            "drop safety.quadrotor.interface (it follows the action interface)"
        )
    safety["quadrotor"] = {**quad, "interface": interface}  # the safety layer limits the command the policy sends
    plan = data.get("plan") or {}
    try:
        flight_plan = FlightPlan(**plan)
    except (TypeError, PlanError) as exc:
        raise DeployProfileError(
            f"{path}: plan: {exc}; keys are height_m, climb_rate_m_s, hover_s, descent_rate_m_s, excitation"
        ) from exc
    return DeployProfile(
        name=str(data.get("name", path.stem)),
        control_hz=rate,
        robot=robot_params,
        action_interface=interface,
        action_names=tuple(action["names"]),
        transport=TransportConfig.from_mapping(data.get("transport")),
        safety=profile_from_dict(safety),
        plan=flight_plan,
        recording_dir=Path((data.get("recording") or {}).get("directory", "runs/deploy")),
        sil=_quadrotor_sil(path, data.get("sil")),
        realtime_priority=data.get("realtime_priority"),
        battery=BatteryGauge.from_mapping(data.get("battery")),
        reference=TopicReference.from_profile(data.get("reference")),
        state_input=_state_section(path, data.get("state"), "quadrotor")[0],
    )


def _state_section(path: Path, section: Any, robot_class: str) -> tuple[str, bool]:
    try:
        return state_section(section, robot_class)
    except ValueError as exc:
        raise DeployProfileError(f"{path}: {exc}") from None


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
        )
    return out


def _articulated_profile(path: Path, data: Mapping[str, Any], robot_class: str, rate: float) -> DeployProfile:
    robot = data["robot"]
    try:
        if isinstance(robot, str):
            robot_profile = load_profile(path.parent / robot)
        else:
            robot_profile = ArticulatedProfile.from_dict(robot, source_dir=str(path.parent.resolve()))
    except ArticulatedProfileError as exc:
        raise DeployProfileError(f"{path}: robot: {exc}") from exc
    if robot_profile.robot_class != robot_class:
        raise DeployProfileError(
            f"{path}: robot_class {robot_class!r}, but the robot profile {robot_profile.name!r} is a "
            f"{robot_profile.robot_class!r} robot; make them agree"
        )
    if abs(robot_profile.control_hz - rate) > 1e-9:
        raise DeployProfileError(
            f"{path}: control_hz {rate:g} differs from the robot profile's control_hz {robot_profile.control_hz:g}; "
            "the policy runs at the rate the robot profile (and the training) uses"
        )
    base_twist = _state_section(path, data.get("state"), robot_class)[1]
    names = robot_profile.joints.names
    action = data.get("action") or {"interface": "joint_position", "names": list(names)}
    if not isinstance(action, Mapping) or tuple(action.get("names", ())) != names:
        raise DeployProfileError(
            f"{path}: action: expected the robot profile's joints {list(names)} in its order (or no action key), "
            f"found {action!r}"
        )
    overrides = data.get("safety") or {}
    if not isinstance(overrides, Mapping) or set(overrides) - {"common", "joints", "legged"}:
        raise DeployProfileError(
            f"{path}: safety: an articulated robot's safety section comes from its robot profile; override only "
            f"'common', 'joints' or 'legged' keys, found {overrides!r}"
        )
    safety = _merged(robot_profile.safety_section(), overrides)
    safety["common"] = {**safety["common"], "control_period_s": 1.0 / rate}
    plan_cls = LeggedPlan if robot_class == "legged" else ArmPlan
    try:
        plan = plan_cls(**(data.get("plan") or {}))
    except (TypeError, ValueError) as exc:
        keys = sorted(plan_cls.__dataclass_fields__)
        raise DeployProfileError(f"{path}: plan: {exc}; a {robot_class} plan has keys {keys}") from exc
    reference = articulated_reference(robot_class, data.get("reference"))
    if reference is not None:
        try:
            StreamedArticulatedPlan(plan, reference.duration_s)  # the plan's scripted start runs first
        except ValueError as exc:
            raise DeployProfileError(f"{path}: {exc}") from exc
    return DeployProfile(
        name=str(data.get("name", path.stem)),
        control_hz=rate,
        robot=robot_profile,
        action_interface=str(action.get("interface", "joint_position")),
        action_names=names,
        transport=TransportConfig.from_mapping(data.get("transport")),
        safety=profile_from_dict(safety),
        plan=plan,
        recording_dir=Path((data.get("recording") or {}).get("directory", "runs/deploy")),
        sil=dict(data.get("sil") or {}),
        robot_class=robot_class,
        realtime_priority=data.get("realtime_priority"),
        robot_file=path.parent / robot if isinstance(robot, str) else None,
        reference=reference,
        base_twist=base_twist,
    )


def check_plan(profile: DeployProfile, start_height_m: float = 0.0) -> None:
    """Refuse, before anything starts, a plan that does not fit the safety envelope: a quadrotor plan above the
    altitude ceiling (from ``start_height_m``), an articulated robot whose default pose (where every plan goes)
    lies outside its joint limits."""
    if not profile.articulated:
        try:
            profile.plan.check_envelope(profile.safety.quadrotor.envelope.altitude_ceiling_m, start_height_m)
        except PlanError as exc:
            raise DeployProfileError(f"profile {profile.name!r}: {exc}") from exc
        return
    import numpy as np

    pose = np.asarray(profile.robot.joints.default_position_rad, dtype=float)
    low, high = profile.safety.command_low(), profile.safety.command_high()
    outside = [n for n, q, lo, hi in zip(profile.action_names, pose, low, high, strict=True) if not lo <= q <= hi]
    if outside:
        raise DeployProfileError(
            f"profile {profile.name!r}: the default pose of joints {outside} is outside the joint limits; every "
            "plan moves there first. Fix the robot profile's default_position_rad or its limits"
        )


def check_policy(profile: DeployProfile, policy: Policy, policy_robot_hash: str | None = None) -> None:
    """Refuse, before arming, a policy that does not fit the robot: names the field, expected and found."""
    spec = policy.action_spec
    if profile.articulated:
        names = profile.action_names
        if tuple(spec.names) != names:
            raise DeployProfileError(
                f"policy does not fit profile {profile.name!r}: the policy commands {len(spec.names)} joints "
                f"{list(spec.names)}, the robot {profile.robot.name!r} has {len(names)} joints {list(names)}. "
                "It was trained for another robot (or joint order): export a policy trained with this robot profile"
            )
        try:
            JointObservationBuilder(policy.obs_spec, len(names), twist=profile.base_twist)
        except ValueError as exc:
            raise DeployProfileError(f"policy does not fit profile {profile.name!r}: {exc}") from exc

    def mismatch(what: str, expected: Any, found: Any, hint: str) -> DeployProfileError:
        return DeployProfileError(
            f"policy does not fit profile {profile.name!r}: {what}: expected {expected!r}, found {found!r}. {hint}"
        )

    if spec.interface != profile.action_interface:
        raise mismatch(
            "action interface", profile.action_interface, spec.interface, "Export a policy trained with this interface."
        )
    if tuple(spec.names) != profile.action_names:
        raise mismatch(
            "action order (motor/joint names)",
            profile.action_names,
            tuple(spec.names),
            "Reorder the profile or retrain.",
        )
    if abs(float(policy.control_hz) - profile.control_hz) > 1e-9:
        raise mismatch(
            "control rate (Hz)",
            profile.control_hz,
            float(policy.control_hz),
            "Run the loop at the rate the policy was trained at.",
        )
    if policy_robot_hash is not None and policy_robot_hash != profile.robot_hash:
        raise mismatch(
            "robot profile hash",
            profile.robot_hash,
            policy_robot_hash,
            "The policy was trained for other robot parameters.",
        )
    if not profile.articulated:
        ObservationBuilder(policy.obs_spec, 1.0 / policy.control_hz)  # raises when a term cannot be built from a state
