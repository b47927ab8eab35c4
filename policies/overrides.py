"""``KEY=VALUE`` overrides of typed configs from the command line (``--set ppo.num_learning_epochs=3``).

The key is a dotted path of attributes into the config (``env.reward.position``, ``actor.hidden_dims``);
the value is parsed as YAML and converted to the type of the value it replaces, so a typo in a name or a
value of the wrong kind is an error that names the field, what it expected and what it found.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml


class OverrideError(ValueError):
    pass


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string; as a number it is what everyone means."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _convert(key: str, current: Any, raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise OverrideError(f"{key}: cannot parse value {raw!r} ({exc})") from None
    if current is None or isinstance(current, str):
        return value if current is None else str(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise OverrideError(f"{key}: expected true or false, found {raw!r}")
        return value
    if isinstance(current, int | float):
        value = _number(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OverrideError(f"{key}: expected a number like {current!r}, found {raw!r}")
        if isinstance(current, int) and not float(value).is_integer():
            raise OverrideError(f"{key}: expected an integer like {current!r}, found {raw!r}")
        return type(current)(value)
    if isinstance(current, tuple | list):
        items = value if isinstance(value, list) else [value]
        if current and all(isinstance(c, int | float) for c in current):
            kind = type(current[0])
            items = [_number(v) for v in items]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
                raise OverrideError(f"{key}: expected a list of numbers like {list(current)}, found {raw!r}")
            items = [kind(v) for v in items]
        return type(current)(items)
    raise OverrideError(f"{key}: a {type(current).__name__} cannot be set from the command line")


def apply_overrides(cfg: Any, assignments: list[str]) -> list[str]:
    """Apply ``["a.b=1", ...]`` to ``cfg`` in place; returns the keys set. Raises OverrideError on bad input."""
    done = []
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OverrideError(f"expected KEY=VALUE (e.g. ppo.learning_rate=3e-4), found {item!r}")
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
            value = _convert(key, obj[leaf], raw)
        else:
            if not hasattr(obj, leaf) or callable(getattr(obj, leaf)):
                raise OverrideError(_unknown(".".join(path), leaf, obj))
            value = _convert(key, getattr(obj, leaf), raw)
        _assign(key, chain, [*path, leaf], value)
        done.append(key)
    return done


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
