"""Test helpers: rosbags (an independent ROS 2 CDR implementation) as the reference for our message classes.

Converts between deploy.msgs instances and rosbags message objects field by field, and builds hypothesis
strategies of random messages from rosbags' own field definitions.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from deploy.msgs import MESSAGES, message_info

NAME, ARRAY, SEQUENCE, BASE = 2, 3, 4, 1
_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "byte": (0, 2**8 - 1),
    "char": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "bool": np.bool_, **{k: k for k in _INT_RANGES}}
_NP_DTYPES.update(byte=np.uint8, char=np.uint8)
CUSTOM_PACKAGES = ("sim2real_msgs", "px4_msgs")


@cache
def typestore() -> Typestore:
    """Humble's typestore plus our custom messages, registered from our own .msg texts."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    custom = {}
    for ros_type, info in MESSAGES.items():
        if ros_type.split("/")[0] in CUSTOM_PACKAGES:
            custom.update(get_types_from_msg(info.msg_text, ros_type))
    ts.register(custom)
    return ts


def _fields(ros_type: str) -> list[tuple[str, tuple[int, Any]]]:
    return typestore().fielddefs[ros_type][1]


def to_rosbags(msg: Any, ros_type: str) -> Any:
    """deploy.msgs instance -> rosbags message object of ``ros_type``."""
    cls = typestore().types[ros_type]
    return cls(**{name: _to_rb(getattr(msg, name), desc) for name, desc in _fields(ros_type)})


def _to_rb(value: Any, desc: tuple[int, Any]) -> Any:
    kind, sub = desc
    if kind == BASE:
        return value
    if kind == NAME:
        return to_rosbags(value, sub)
    (inner_kind, inner), _ = sub
    if inner_kind == BASE and inner[0] != "string":
        return np.array(value, dtype=_NP_DTYPES[inner[0]])
    return [_to_rb(v, (inner_kind, inner)) for v in value]


def from_rosbags(obj: Any, ros_type: str) -> Any:
    """rosbags message object -> deploy.msgs instance."""
    cls = message_info(ros_type).cls
    return cls(**{name: _from_rb(getattr(obj, name), desc) for name, desc in _fields(ros_type)})


def _from_rb(value: Any, desc: tuple[int, Any]) -> Any:
    kind, sub = desc
    if kind == BASE:
        return value
    if kind == NAME:
        return from_rosbags(value, sub)
    (inner_kind, inner), _ = sub
    if isinstance(value, np.ndarray):
        return value.tolist()
    return [_from_rb(v, (inner_kind, inner)) for v in value]


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


def _base_strategy(name: str) -> st.SearchStrategy[Any]:
    if name == "bool":
        return st.booleans()
    if name == "float32":
        return st.floats(width=32, allow_nan=False)
    if name == "float64":
        return st.floats(allow_nan=False)
    if name == "string":
        return _TEXT
    lo, hi = _INT_RANGES[name]
    return st.integers(lo, hi)


def _field_strategy(desc: tuple[int, Any]) -> st.SearchStrategy[Any]:
    kind, sub = desc
    if kind == BASE:
        return _base_strategy(sub[0])
    if kind == NAME:
        return message_strategy(sub)
    inner, size = sub
    if kind == ARRAY:
        return st.lists(_field_strategy(inner), min_size=size, max_size=size)
    return st.lists(_field_strategy(inner), max_size=5)


def message_strategy(ros_type: str) -> st.SearchStrategy[Any]:
    """Random deploy.msgs instances of ``ros_type``, fields drawn over their whole value range."""
    cls = message_info(ros_type).cls
    return st.builds(cls, **{name: _field_strategy(desc) for name, desc in _fields(ros_type)})
