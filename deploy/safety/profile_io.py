"""Build a :class:`SafetyProfile` from the ``safety:`` section of a robot YAML (or a plain dict).

Unknown keys, values in the wrong unit and out-of-range values are refused with a message that names the
key, what was expected, what was found and what to do. Units live in the key names (``max_tilt_rad``), so a
key with another unit suffix (``max_tilt_deg``) is reported as a unit mistake, not silently accepted.

    safety:
      preset: crazyflie          # optional: start from crazyflie | a1 | franka, then override
      robot_class: quadrotor     # quadrotor | legged | arm (taken from the preset when omitted)
      common: {control_period_s: 0.01, max_heartbeat_age_s: 0.5}
      quadrotor: {envelope: {geofence_radius_m: 3.0}}
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploy.safety.limits import PRESETS, ProfileError, RobotClass, SafetyProfile

_UNIT_SUFFIXES = (
    "_rad_s2",
    "_m_s2",
    "_rad_s",
    "_rad",
    "_deg_s",
    "_deg",
    "_s",
    "_ms",
    "_m_s",
    "_m",
    "_cm",
    "_mm",
    "_kg",
    "_g",
    "_nm",
    "_rpm",
    "_fraction",
    "_percent",
    "_pct",
    "_hz",
    "_per_s",
    "_kg_m2",
)


def _stem(key: str) -> str:
    for suffix in sorted(_UNIT_SUFFIXES, key=len, reverse=True):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _unknown_key_message(key: str, allowed: list[str], where: str) -> str:
    same_stem = [a for a in allowed if _stem(a) == _stem(key) and a != key]
    if same_stem:
        return (
            f"safety profile {where}: key {key!r} has a unit this profile does not take; expected {same_stem[0]!r}. "
            f"Convert the value to the unit in that name (degrees -> radians: x pi/180; percent -> fraction: / 100; "
            f"ms -> s: / 1000) and rename the key."
        )
    close = difflib.get_close_matches(key, allowed, n=3)
    hint = f" Did you mean {close}?" if close else ""
    return f"safety profile {where}: unknown key {key!r}; expected one of {sorted(allowed)}.{hint}"


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(
            f"safety profile {where}: expected a number in the unit of the key name, found {value!r} "
            f"({type(value).__name__}); write a plain number (e.g. 0.5, not '500 ms')"
        )
    if not math.isfinite(value):
        raise ProfileError(f"safety profile {where}: expected a finite number, found {value!r}")
    return value


def _convert(value: Any, hint: Any, base: Any, where: str) -> Any:
    """Check ``value`` against the field type ``hint``; nested dataclasses are built recursively."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _convert(value, hint, base, where)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, base, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ProfileError(f"safety profile {where}: expected true or false, found {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"safety profile {where}: expected an integer, found {value!r}")
        return value
    if hint is float:
        return float(_check_number(value, where))
    if hint is str:
        if not isinstance(value, str):
            raise ProfileError(f"safety profile {where}: expected a word, found {value!r}")
        return value
    if origin is tuple:
        if args and args[0] is str:
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ProfileError(f"safety profile {where}: expected a list of names, found {value!r}")
            return tuple(str(v) for v in value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _check_number(value, where)  # scalar; per-joint fields broadcast it
        if not isinstance(value, (list, tuple)):
            raise ProfileError(f"safety profile {where}: expected a list of numbers, found {value!r}")
        return tuple(_check_number(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise ProfileError(f"safety profile {where}: cannot read a value of type {hint!r}")  # a bug in the schema


def build_dataclass(cls: type, mapping: Any, base: Any = None, where: str = "") -> Any:
    """Build ``cls`` from ``mapping``; fields not given keep their value in ``base`` (or the class default)."""
    where = where or cls.__name__
    if not isinstance(mapping, Mapping):
        raise ProfileError(f"safety profile {where}: expected a mapping of keys to values, found {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in mapping if k not in fields]
    if unknown:
        raise ProfileError(_unknown_key_message(str(unknown[0]), list(fields), where))
    kwargs: dict[str, Any] = {}
    for name in fields:
        current = getattr(base, name) if base is not None else None
        if name in mapping:
            kwargs[name] = _convert(mapping[name], hints[name], current, f"{where}.{name}")
        elif base is not None:
            kwargs[name] = current
    try:
        return cls(**kwargs)
    except TypeError as err:
        missing = [
            n
            for n, f in fields.items()
            if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        raise ProfileError(f"safety profile {where}: missing required keys {missing} ({err})") from None


def profile_from_dict(section: Mapping[str, Any]) -> SafetyProfile:
    """Build a profile from the contents of a ``safety:`` section (not the whole file)."""
    if not isinstance(section, Mapping):
        raise ProfileError(f"safety profile: expected a mapping under 'safety:', found {section!r}")
    section = dict(section)
    preset_name = section.pop("preset", None)
    base = None
    if preset_name is not None:
        if preset_name not in PRESETS:
            raise ProfileError(f"safety profile preset: expected one of {sorted(PRESETS)}, found {preset_name!r}")
        base = PRESETS[preset_name]()
    raw_class = section.pop("robot_class", None)
    if raw_class is None:
        if base is None:
            raise ProfileError(
                f"safety profile: missing 'robot_class'; expected one of {[c.value for c in RobotClass]} "
                f"or a 'preset' from {sorted(PRESETS)}"
            )
        robot_class = base.robot_class
    else:
        try:
            robot_class = RobotClass(raw_class)
        except ValueError:
            raise ProfileError(
                f"safety profile robot_class: expected one of {[c.value for c in RobotClass]}, found {raw_class!r}"
            ) from None
    if base is not None and base.robot_class is not robot_class:
        raise ProfileError(
            f"safety profile: preset {preset_name!r} is a {base.robot_class.value}, but robot_class is "
            f"{robot_class.value!r}; drop one of them"
        )
    if base is None and robot_class is RobotClass.QUADROTOR:
        section.setdefault("quadrotor", {})
    mapping = {"robot_class": robot_class, **section}
    hints = typing.get_type_hints(SafetyProfile)
    allowed = [f.name for f in dataclasses.fields(SafetyProfile)] + ["preset"]
    kwargs: dict[str, Any] = {"robot_class": robot_class}
    for key, value in mapping.items():
        if key == "robot_class":
            continue
        if key not in hints:
            raise ProfileError(_unknown_key_message(str(key), allowed, "safety"))
        current = getattr(base, key) if base is not None else None
        kwargs[key] = _convert(value, hints[key], current, key)
    for key in ("common", "quadrotor", "joints", "legged"):
        if key not in kwargs and base is not None:
            kwargs[key] = getattr(base, key)
    return SafetyProfile(**kwargs)


def load_profile(path: str | Path) -> SafetyProfile:
    """Read the ``safety:`` section of a YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"safety profile: file {str(path)!r} not found; pass the robot profile YAML")
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, Mapping) or "safety" not in document:
        raise ProfileError(f"safety profile: {str(path)!r} has no top-level 'safety:' section")
    return profile_from_dict(document["safety"])
