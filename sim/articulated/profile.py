"""Robot profiles of articulated robots (arms, legged robots), loaded from ``launch/robots/<name>.yaml``.

Torch-free and numpy-free: the deploy runtime reads the same profile on the robot computer. A profile names
the robot description (URDF / MJCF), the actuated joints in the order the policy uses, their default pose,
PD gains, limits and actuator model, the named bodies tasks refer to, and the control and physics rates.

YAML form (top-level key ``articulated:``; per-joint values are a list in ``joints.names`` order or one
number for all joints)::

    articulated:
      name: a1
      robot_class: legged                 # legged | arm
      description: pybullet_data:a1/a1.urdf   # or a path relative to this file, or absolute
      floating_base: true
      control_hz: 50
      physics_hz: 200
      action_scale_rad: 0.25
      initial_base_height_m: 0.32
      joints:
        names: [FR_hip_joint, ...]
        default_position_rad: [...]
        position_min_rad: [...]
        position_max_rad: [...]
        kp_nm_per_rad: 20
        kd_nm_s_per_rad: 0.5
        effort_limit_nm: 33.5
        velocity_limit_rad_s: 21
      actuator: {model: dc_motor, stall_torque_nm: 33.5, max_velocity_rad_s: 21}
      bodies: {base: trunk, feet: [FR_toe, ...], end_effector: null}
      safety: {max_base_tilt_rad: 1.31, position_margin_rad: 0.05, damping_kd_nm_s_per_rad: 8}
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROBOT_CLASSES = ("legged", "arm")
ACTUATOR_MODELS = ("ideal_pd", "dc_motor")
PYBULLET_DATA = "pybullet_data:"
ROBOTS_DIR = Path(__file__).resolve().parents[2] / "launch" / "robots"


class ArticulatedProfileError(ValueError):
    """A robot profile value is missing, malformed or inconsistent; the message names the field."""


def _fail(where: str, expected: str, found: Any, todo: str = "") -> None:
    msg = f"robot profile field {where!r}: expected {expected}, found {found!r}"
    raise ArticulatedProfileError(msg + (f"; {todo}" if todo else ""))


def _number(value: Any, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, "a number", value)
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        _fail(where, "a finite number > 0" if positive else "a finite number", value)
    return value


def _per_joint(value: Any, n: int, where: str, names: Sequence[str], minimum: float | None = None) -> tuple:
    """One number (broadcast) or ``n`` numbers -> a tuple of ``n`` floats."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * n
    if not isinstance(value, (list, tuple)):
        _fail(where, f"{n} numbers (one per joint) or one number", value)
    if len(value) != n:
        _fail(where, f"{n} values, one per joint {list(names)}", list(value), "list them in joints.names order")
    out = tuple(_number(v, f"{where}[{i}] ({names[i]})") for i, v in enumerate(value))
    if minimum is not None:
        for i, v in enumerate(out):
            if v < minimum:
                _fail(f"{where}[{i}] ({names[i]})", f"a value >= {minimum}", v)
    return out


@dataclass(frozen=True)
class JointProfile:
    """Actuated joints in policy order; every vector has one entry per name (radians, N m, s)."""

    names: tuple[str, ...]
    default_position_rad: tuple[float, ...]
    position_min_rad: tuple[float, ...]
    position_max_rad: tuple[float, ...]
    kp_nm_per_rad: tuple[float, ...]
    kd_nm_s_per_rad: tuple[float, ...]
    effort_limit_nm: tuple[float, ...]
    velocity_limit_rad_s: tuple[float, ...]

    def __post_init__(self) -> None:
        names = self.names
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names):
            _fail("joints.names", "a non-empty list of joint names", names)
        names = tuple(names)
        if len(set(names)) != len(names):
            _fail("joints.names", "unique names", sorted({n for n in names if names.count(n) > 1}))
        object.__setattr__(self, "names", names)
        minimum = {"kp_nm_per_rad": 0.0, "kd_nm_s_per_rad": 0.0, "effort_limit_nm": 0.0, "velocity_limit_rad_s": 0.0}
        for f in fields(self)[1:]:
            value = _per_joint(getattr(self, f.name), len(names), f"joints.{f.name}", names, minimum.get(f.name))
            object.__setattr__(self, f.name, value)
        for name in ("effort_limit_nm", "velocity_limit_rad_s"):
            for i, v in enumerate(getattr(self, name)):
                if v <= 0:
                    _fail(f"joints.{name}[{i}] ({names[i]})", "a value > 0", v)
        for i, (lo, hi, q0) in enumerate(zip(self.position_min_rad, self.position_max_rad, self.default_position_rad)):
            if not lo < hi:
                _fail(f"joints.position_min_rad[{i}] ({names[i]})", f"< position_max_rad = {hi}", lo)
            if not lo <= q0 <= hi:
                _fail(f"joints.default_position_rad[{i}] ({names[i]})", f"inside [{lo}, {hi}] rad", q0)

    @property
    def dim(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class JointDynamics:
    """Nominal joint dynamics written into the model (one number for all joints, or one per joint)."""

    armature_kg_m2: tuple[float, ...] | float = 0.0  # reflected rotor inertia
    damping_nm_s_per_rad: tuple[float, ...] | float = 0.0  # viscous
    frictionloss_nm: tuple[float, ...] | float = 0.0  # dry (Coulomb) friction

    def check(self, joints: JointProfile) -> JointDynamics:
        values = {
            f.name: _per_joint(getattr(self, f.name), joints.dim, f"dynamics.{f.name}", joints.names, 0.0)
            for f in fields(self)
        }
        return JointDynamics(**values)


@dataclass(frozen=True)
class ActuatorProfile:
    """Motor model. ``ideal_pd``: torque = PD clipped to the effort limit. ``dc_motor``: additionally
    ``|tau| <= stall_torque_nm * (1 - qd / max_velocity_rad_s)`` in the direction of motion (Isaac Lab DCMotor)."""

    model: str = "ideal_pd"
    stall_torque_nm: tuple[float, ...] | float | None = None
    max_velocity_rad_s: tuple[float, ...] | float | None = None

    def check(self, joints: JointProfile) -> ActuatorProfile:
        if self.model not in ACTUATOR_MODELS:
            _fail("actuator.model", f"one of {list(ACTUATOR_MODELS)}", self.model)
        if self.model == "ideal_pd":
            return ActuatorProfile("ideal_pd")
        for name in ("stall_torque_nm", "max_velocity_rad_s"):
            if getattr(self, name) is None:
                _fail(f"actuator.{name}", "a value for actuator model dc_motor (per joint or one number)", None)
        stall = _per_joint(self.stall_torque_nm, joints.dim, "actuator.stall_torque_nm", joints.names)
        speed = _per_joint(self.max_velocity_rad_s, joints.dim, "actuator.max_velocity_rad_s", joints.names)
        if min(stall) <= 0 or min(speed) <= 0:
            _fail("actuator", "stall_torque_nm and max_velocity_rad_s > 0", {"stall": stall, "speed": speed})
        return ActuatorProfile("dc_motor", stall, speed)


@dataclass(frozen=True)
class BodyNames:
    """Bodies tasks refer to by name: the base (trunk), the feet (legged) and the end effector (arm)."""

    base: str
    feet: tuple[str, ...] = ()
    end_effector: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.base, str) or not self.base:
            _fail("bodies.base", "a body name", self.base)
        if not isinstance(self.feet, (list, tuple)) or not all(isinstance(f, str) and f for f in self.feet):
            _fail("bodies.feet", "a list of body names", self.feet)
        object.__setattr__(self, "feet", tuple(self.feet))


@dataclass(frozen=True)
class SafetyMargins:
    """Robot-specific safety settings beyond the joint limits (see ``deploy/safety``)."""

    max_base_tilt_rad: float = math.radians(75.0)  # legged: rl_sar attitude protection 75 deg
    damping_kd_nm_s_per_rad: float = 8.0  # legged fallback: Unitree damping mode kp 0, kd 8
    position_margin_rad: float = 0.05  # measured joint position beyond the limits before FALLBACK

    def __post_init__(self) -> None:
        for f in fields(self):
            _number(getattr(self, f.name), f"safety.{f.name}", positive=f.name != "position_margin_rad")
        if self.max_base_tilt_rad > math.pi:
            _fail(
                "safety.max_base_tilt_rad", "radians in (0, pi] (degrees? multiply by pi/180)", self.max_base_tilt_rad
            )


@dataclass(frozen=True)
class ArticulatedProfile:
    """One articulated robot. ``physics_hz`` must be an integer multiple of ``control_hz``."""

    name: str
    robot_class: str
    description: str
    joints: JointProfile
    bodies: BodyNames
    control_hz: float = 50.0
    physics_hz: float = 200.0
    floating_base: bool = False
    action_scale_rad: float = 0.25  # joint target = default + action_scale_rad * action
    initial_base_height_m: float = 0.0  # legged: base height at reset above the ground
    self_collisions: bool = False  # links collide with each other (not only with the ground): ~25 % slower
    actuator: ActuatorProfile = field(default_factory=ActuatorProfile)
    dynamics: JointDynamics = field(default_factory=JointDynamics)
    safety: SafetyMargins = field(default_factory=SafetyMargins)
    source_dir: str = field(default="", compare=False)  # directory relative descriptions are resolved against

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            _fail("name", "a non-empty robot name", self.name)
        if self.robot_class not in ROBOT_CLASSES:
            _fail("robot_class", f"one of {list(ROBOT_CLASSES)}", self.robot_class)
        if not isinstance(self.description, str) or not self.description:
            _fail("description", "a URDF/MJCF path or 'pybullet_data:<relative path>'", self.description)
        for name in ("floating_base", "self_collisions"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, "true or false", getattr(self, name))
        if self.robot_class == "legged" and not self.floating_base:
            _fail("floating_base", "true for a legged robot", self.floating_base)
        if self.robot_class == "legged" and not self.bodies.feet:
            _fail("bodies.feet", "the foot bodies of a legged robot", self.bodies.feet)
        if self.robot_class == "arm" and not self.bodies.end_effector:
            _fail("bodies.end_effector", "the end-effector body of an arm", self.bodies.end_effector)
        control = _number(self.control_hz, "control_hz", positive=True)
        physics = _number(self.physics_hz, "physics_hz", positive=True)
        ratio = physics / control
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            _fail("physics_hz", f"an integer multiple of control_hz = {control:g} Hz", physics)
        _number(self.action_scale_rad, "action_scale_rad", positive=True)
        _number(self.initial_base_height_m, "initial_base_height_m")
        if self.floating_base and self.initial_base_height_m <= 0:
            _fail(
                "initial_base_height_m", "the base height above the ground at reset, > 0 m", self.initial_base_height_m
            )
        object.__setattr__(self, "actuator", self.actuator.check(self.joints))
        object.__setattr__(self, "dynamics", self.dynamics.check(self.joints))

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return round(self.physics_hz / self.control_hz)

    @property
    def physics_dt(self) -> float:
        return 1.0 / self.physics_hz

    @property
    def control_dt(self) -> float:
        return 1.0 / self.control_hz

    def description_path(self) -> Path:
        """The description file: ``pybullet_data:`` resolved through the ``pybullet_data`` package, a relative
        path against the profile's directory. Raises if the file does not exist."""
        text = self.description
        if text.startswith(PYBULLET_DATA):
            try:
                import pybullet_data
            except ImportError:
                raise ArticulatedProfileError(
                    f"robot profile {self.name!r}: description {text!r} needs the pybullet_data package; "
                    "install it with `pip install pybullet` (part of the `train` extra)"
                ) from None
            path = Path(pybullet_data.getDataPath()) / text[len(PYBULLET_DATA) :]
        else:
            path = Path(text)
            if not path.is_absolute():
                path = Path(self.source_dir or ROBOTS_DIR) / path
        if not path.is_file():
            raise ArticulatedProfileError(
                f"robot profile {self.name!r}: description file {str(path)!r} (from {text!r}) does not exist"
            )
        return path

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source_dir")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source_dir: str = "") -> ArticulatedProfile:
        """Build from the mapping under ``articulated:``; unknown keys are refused by name."""
        if not isinstance(data, Mapping):
            _fail("articulated", "a mapping", data)
        data = dict(data)
        sections = {
            "joints": JointProfile,
            "bodies": BodyNames,
            "actuator": ActuatorProfile,
            "dynamics": JointDynamics,
            "safety": SafetyMargins,
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _section(sections[key], value, key)
            elif key in cls.__dataclass_fields__ and key != "source_dir":
                kwargs[key] = value
            else:
                allowed = sorted(k for k in cls.__dataclass_fields__ if k != "source_dir")
                raise ArticulatedProfileError(f"robot profile: unknown field {key!r}; allowed fields: {allowed}")
        for key in ("name", "robot_class", "description", "joints", "bodies"):
            if key not in kwargs:
                _fail(key, "a value (required field)", None)
        return cls(**kwargs, source_dir=source_dir)

    def digest(self) -> str:
        """Content hash of the profile (what the exported policy and the deploy profile compare)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def safety_section(self) -> dict[str, Any]:
        """A ``safety:`` mapping for ``deploy.safety.profile_from_dict`` derived from this profile."""
        j = self.joints
        section: dict[str, Any] = {
            "robot_class": self.robot_class,
            "common": {"control_period_s": self.control_dt},
            "joints": {
                "names": list(j.names),
                "position_min_rad": list(j.position_min_rad),
                "position_max_rad": list(j.position_max_rad),
                "velocity_max_rad_s": list(j.velocity_limit_rad_s),
                "torque_max_nm": list(j.effort_limit_nm),
                "kp_nm_per_rad": list(j.kp_nm_per_rad),
                "kd_nm_s_per_rad": list(j.kd_nm_s_per_rad),
                "position_margin_rad": self.safety.position_margin_rad,
            },
        }
        if self.robot_class == "legged":
            section["legged"] = {
                "max_base_tilt_rad": self.safety.max_base_tilt_rad,
                "damping_kd_nm_s_per_rad": self.safety.damping_kd_nm_s_per_rad,
            }
        return section


def _section(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        _fail(where, "a mapping", value)
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ArticulatedProfileError(
            f"robot profile: unknown field(s) {unknown} in {where!r}; allowed: {sorted(allowed)}"
        )
    required = [f.name for f in fields(cls) if f.default is f.default_factory is MISSING]
    missing = [k for k in required if k not in value]
    if missing:
        _fail(f"{where}.{missing[0]}", "a value (required field)", None)
    return cls(**value)


def load_profile(name_or_path: str | Path) -> ArticulatedProfile:
    """``launch/robots/<name>.yaml`` for a bare name (``"a1"``), else the YAML file at the path."""
    import yaml

    text = str(name_or_path)
    path = Path(text)
    if not text.endswith((".yaml", ".yml")) and path.parent == Path("."):
        path = ROBOTS_DIR / f"{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in ROBOTS_DIR.glob("*.yaml")) if ROBOTS_DIR.is_dir() else []
        raise ArticulatedProfileError(f"robot profile {str(path)!r} not found; profiles in launch/robots: {known}")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ArticulatedProfileError(f"robot profile {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping) or "articulated" not in document:
        raise ArticulatedProfileError(f"robot profile {str(path)!r} has no top-level 'articulated:' section")
    try:
        return ArticulatedProfile.from_dict(document["articulated"], source_dir=str(path.parent.resolve()))
    except ArticulatedProfileError as exc:
        raise ArticulatedProfileError(f"{path}: {exc}") from None
