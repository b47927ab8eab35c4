"""Typed dotted-path overrides of configs: ``--set ppo.num_learning_epochs=3`` on the command line, the ``env:`` and
``train:`` sections of a robot variant (``launch/tasks/<task>/<robot>.yaml``).

The key is a dotted path of attributes into the config (``env.reward.position``, ``actor.hidden_dims``); the value
(YAML text from the command line, or a value already read from a YAML file) is converted to the type of the value it
replaces, so a typo in a name or a value of the wrong kind is an error that names the field, what it expected and
what it found. A frozen dataclass on the path (a robot profile, a randomization term) is rebuilt with the new value,
which runs its own checks. Torch-free: ``sim.tasks`` applies variants with it, ``policies`` the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import yaml


class OverrideError(ValueError):
    """An override names no field of the config, or gives it a value of the wrong kind."""


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string; as a number it is what everyone means."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(key: str, current: Any, value: Any, shown: str) -> Any:
    """``value`` as the type of ``current``; ``shown``: the value as the user wrote it (for messages)."""
    if current is None or isinstance(current, str):
        return value if current is None else str(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise OverrideError(f"{key}: expected true or false, found {shown}")
        return value
    if isinstance(current, int | float):
        value = _number(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OverrideError(f"{key}: expected a number like {current!r}, found {shown}")
        if isinstance(current, int) and not float(value).is_integer():
            raise OverrideError(f"{key}: expected an integer like {current!r}, found {shown}")
        return type(current)(value)
    if isinstance(current, tuple | list):
        items = value if isinstance(value, list | tuple) else [value]
        if current and all(isinstance(c, int | float) for c in current):
            kind = type(current[0])
            items = [_number(v) for v in items]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
                raise OverrideError(f"{key}: expected a list of numbers like {list(current)}, found {shown}")
            items = [kind(v) for v in items]
        elif current and all(isinstance(c, tuple | list) for c in current):  # e.g. pairs of indices
            items = [_coerce(key, current[0], v, shown) for v in items]
        return type(current)(items)
    raise OverrideError(f"{key}: a {type(current).__name__} cannot be set this way")


def _convert(key: str, current: Any, raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise OverrideError(f"{key}: cannot parse value {raw!r} ({exc})") from None
    return _coerce(key, current, value, repr(raw))


def apply_overrides(cfg: Any, assignments: list[str]) -> list[str]:
    """Apply ``["a.b=1", ...]`` (values as YAML text) to ``cfg`` in place; returns the keys set. Raises
    :class:`OverrideError` on bad input."""
    done = []
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OverrideError(f"expected KEY=VALUE (e.g. ppo.learning_rate=3e-4), found {item!r}")
        _set(cfg, key, lambda current, key=key, raw=raw: _convert(key, current, raw))
        done.append(key)
    return done


def apply_values(cfg: Any, values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Apply ``{"reward.diagonal_pairs": [[0, 3], [1, 2]], "ppo": {"entropy_coef": 0.01}}`` (values already parsed,
    e.g. read from YAML) to ``cfg`` in place; a mapping value onto a dataclass field is applied field by field.
    Returns the dotted keys set. Raises :class:`OverrideError` on bad input."""
    if not isinstance(values, Mapping):
        raise OverrideError(f"{prefix or 'overrides'}: expected a mapping of dotted keys to values, found {values!r}")
    done = []
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise OverrideError(f"{prefix or 'overrides'}: expected dotted field names as keys, found {name!r}")
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, Mapping) and dataclasses.is_dataclass(_get(cfg, key)):
            done += apply_values(cfg, value, key)
            continue
        _set(cfg, key, lambda current, key=key, value=value: _coerce(key, current, value, repr(value)))
        done.append(key)
    return done


def _get(cfg: Any, key: str) -> Any:
    obj = cfg
    for name in key.split("."):
        if not _has(obj, name):
            return None
        obj = obj[name] if isinstance(obj, dict) else getattr(obj, name)
    return obj


def _set(cfg: Any, key: str, convert: Any) -> None:
    """Set the field at dotted ``key`` of ``cfg`` to ``convert(current value)``."""
    *path, leaf = key.split(".")
    obj, chain = cfg, [cfg]
    for i, name in enumerate(path):
        if not _has(obj, name):
            raise OverrideError(_unknown(".".join(path[:i]), name, obj))
        obj = obj[name] if isinstance(obj, dict) else getattr(obj, name)
        chain.append(obj)
    if isinstance(obj, dict):  # e.g. obs_groups.critic: replaces an existing entry's value
        if leaf not in obj:
            raise OverrideError(_unknown(".".join(path), leaf, obj))
        value = convert(obj[leaf])
    else:
        if not hasattr(obj, leaf) or callable(getattr(obj, leaf)):
            raise OverrideError(_unknown(".".join(path), leaf, obj))
        value = convert(getattr(obj, leaf))
    _assign(key, chain, [*path, leaf], value)


def _assign(key: str, chain: list[Any], names: list[str], value: Any) -> None:
    """Set ``names[-1]`` of ``chain[-1]`` to ``value``; ``chain[i]`` holds ``names[i]``. A frozen dataclass (a robot
    profile, a randomization term) is rebuilt with the new value, which runs its own validation, and the copy is
    set on its holder in turn."""
    for obj, name in zip(reversed(chain), reversed(names), strict=True):
        if isinstance(obj, dict):
            obj[name] = value
            return
        params = getattr(obj, "__dataclass_params__", None)
        if params is None or not params.frozen:
            setattr(obj, name, value)
            return
        try:
            value = dataclasses.replace(obj, **{name: value})
        except (ValueError, TypeError) as exc:  # the class's own check of the new value
            raise OverrideError(f"{key}: {exc}") from None
    raise OverrideError(f"{key}: the config cannot be changed")


def _has(obj: Any, name: str) -> bool:
    return name in obj if isinstance(obj, dict) else hasattr(obj, name)


def _unknown(prefix: str, name: str, obj: Any) -> str:
    where = prefix or "the config"
    if isinstance(obj, dict):
        return f"{where} has no entry {name!r}; its entries: {', '.join(map(str, obj))}"
    fields = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else sorted(vars(obj))
    return f"{where} has no field {name!r}; its fields: {', '.join(fields)}"
