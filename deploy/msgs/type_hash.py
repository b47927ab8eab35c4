"""RIHS01 type hashes of ROS 2 message types, computed from ``.msg`` texts as ROS 2 (Iron and later) does.

ROS 2 puts ``typehash=RIHS01_<64 hex>;`` in the USER_DATA of every DDS reader and writer (REP 2011, "Evolving
Message Types"; rmw_dds_common ``encode_type_hash_for_user_data_qos``), and ``ros2 topic info -v`` prints it.
The hash is the SHA-256 of a JSON text of the type's *description*: the type and every type it refers to,
directly or not, each as a list of fields with a numeric field type (``type_description_interfaces/FieldType``).
Sources, ros2/rosidl ``rosidl_generator_type_description/__init__.py`` (``serialize_field_type``,
``extract_full_type_description``, ``calculate_type_hash``) and ``rosidl_adapter/msg`` (``.msg`` -> IDL types):

- a field is ``{"name", "type": {"type_id", "capacity", "string_capacity", "nested_type_name"}}``; defaults
  and constants are not part of the hash; a message without fields gets ``uint8
  structure_needs_at_least_one_member`` (rosidl_parser);
- ``type_id``: the element type's id (int8..uint64 = 2..9, float32 = 10, float64 = 11, bool = 15, byte = 16,
  string = 17, wstring = 18, bounded string 21, bounded wstring 22, a message = 1), plus 48 for a fixed array,
  96 for a bounded sequence, 144 for an unbounded one. ``char`` is ``uint8`` in ROS 2's ``.msg`` -> IDL step;
- ``capacity``: the array size or the sequence bound (else 0); ``string_capacity``: the string bound (else 0);
  ``nested_type_name``: ``pkg/msg/Type`` of a message element (else ``""``);
- the document is ``{"type_description": ..., "referenced_type_descriptions": [sorted by type name]}``, written
  by ``json.dumps`` with separators ``", "`` and ``": "``, hashed with SHA-256 over its UTF-8 bytes.

Checked (tests/deploy/transport/test_type_hash.py) against rosbags' own implementation for every registered type
and against the hashes ROS 2 Jazzy's generated code carries for standard types.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy.msgs.registry import MESSAGES, message_info

PREFIX = "RIHS01_"

#: type_description_interfaces/msg/FieldType ids of the element types, by ``.msg`` type name.
FIELD_TYPE_IDS: dict[str, int] = {
    "int8": 2,
    "uint8": 3,
    "char": 3,  # rosidl_adapter maps .msg char to IDL uint8
    "int16": 4,
    "uint16": 5,
    "int32": 6,
    "uint32": 7,
    "int64": 8,
    "uint64": 9,
    "float32": 10,
    "float64": 11,
    "bool": 15,
    "byte": 16,
    "string": 17,
    "wstring": 18,
}
NESTED_TYPE_ID = 1
BOUNDED_STRING_IDS = {"string": 21, "wstring": 22}
ARRAY_OFFSET, BOUNDED_SEQUENCE_OFFSET, UNBOUNDED_SEQUENCE_OFFSET = 48, 96, 144

_ARRAY = re.compile(r"^(?P<base>[^\[]+)(\[(?P<bound><=)?(?P<size>\d*)\])?$")
_STRING_BOUND = re.compile(r"^(?P<kind>w?string)<=(?P<size>\d+)$")


class MsgParseError(ValueError):
    """A ``.msg`` line this module cannot read."""


@dataclass(frozen=True)
class FieldType:
    """One field's type as ROS 2's type description holds it (type_description_interfaces/FieldType)."""

    type_id: int
    capacity: int = 0
    string_capacity: int = 0
    nested_type_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "type_id": self.type_id,
            "capacity": self.capacity,
            "string_capacity": self.string_capacity,
            "nested_type_name": self.nested_type_name,
        }


def parse_fields(msg_text: str, ros_type: str) -> list[tuple[str, FieldType]]:
    """(name, type) of every field of ``msg_text`` (the ``.msg`` text of ``ros_type``), in order; constants skipped.

    Nested names resolve as in ROS 2: ``pkg/Type`` -> ``pkg/msg/Type``, ``Type`` -> the same package as
    ``ros_type`` (and ``Header`` -> ``std_msgs/msg/Header``, as deploy/msgs/registry.py resolves it)."""
    package = ros_type.split("/")[0]
    fields: list[tuple[str, FieldType]] = []
    for number, raw in enumerate(msg_text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        type_string, _, rest = line.partition(" ")
        rest = rest.strip()
        if not rest:
            raise MsgParseError(f"{ros_type} line {number}: {raw!r} has a type but no field name")
        if "=" in rest:  # a constant (rosidl_adapter: any '=' after the type makes the line a constant)
            continue
        fields.append((rest.split()[0], _field_type(type_string, package, f"{ros_type} line {number}")))
    return fields or [("structure_needs_at_least_one_member", FieldType(FIELD_TYPE_IDS["uint8"]))]


def _field_type(type_string: str, package: str, where: str) -> FieldType:
    match = _ARRAY.match(type_string)
    if match is None:
        raise MsgParseError(f"{where}: cannot read the type {type_string!r}")
    base, size = match["base"], match["size"]
    offset, capacity = 0, 0
    if match.group(2) is not None:  # an array or a sequence
        if match["bound"]:
            if not size:
                raise MsgParseError(f"{where}: {type_string!r} has '<=' without a bound")
            offset, capacity = BOUNDED_SEQUENCE_OFFSET, int(size)
        elif size:
            offset, capacity = ARRAY_OFFSET, int(size)
        else:
            offset = UNBOUNDED_SEQUENCE_OFFSET
    bounded = _STRING_BOUND.match(base)
    if bounded is not None:
        return FieldType(BOUNDED_STRING_IDS[bounded["kind"]] + offset, capacity, int(bounded["size"]))
    if base in FIELD_TYPE_IDS:
        return FieldType(FIELD_TYPE_IDS[base] + offset, capacity)
    return FieldType(NESTED_TYPE_ID + offset, capacity, 0, nested_type_name(base, package))


def nested_type_name(base: str, package: str) -> str:
    """``pkg/Type`` or ``Type`` (in ``package``) -> ``pkg/msg/Type``."""
    if base == "Header":
        return "std_msgs/msg/Header"
    parts = base.split("/")
    if len(parts) == 1:
        return f"{package}/msg/{base}"
    return f"{parts[0]}/msg/{parts[-1]}"


def _individual(ros_type: str, texts: Mapping[str, str]) -> dict[str, Any]:
    text = texts[ros_type] if ros_type in texts else _registry_text(ros_type)
    return {
        "type_name": ros_type,
        "fields": [{"name": name, "type": ftype.as_dict()} for name, ftype in parse_fields(text, ros_type)],
    }


def _registry_text(ros_type: str) -> str:
    if ros_type in MESSAGES:
        return MESSAGES[ros_type].msg_text
    raise MsgParseError(f"no .msg text for {ros_type}: add it to deploy/msgs/registry.py or pass it in ``texts``")


def type_description(ros_type: str, texts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The hashed part of ROS 2's TypeDescription of ``ros_type`` (``pkg/msg/Type``), as a JSON-ready dict.

    texts: ``.msg`` texts by ``pkg/msg/Type`` for types not in deploy/msgs/registry.py (looked up first)."""
    texts = texts or {}
    top = _individual(ros_type, texts)
    referenced: dict[str, dict[str, Any]] = {}
    pending = [f["type"]["nested_type_name"] for f in top["fields"]]
    while pending:
        name = pending.pop()
        if not name or name in referenced:
            continue
        referenced[name] = _individual(name, texts)
        pending.extend(f["type"]["nested_type_name"] for f in referenced[name]["fields"])
    return {
        "type_description": top,
        "referenced_type_descriptions": [referenced[name] for name in sorted(referenced)],
    }


def type_hash(msg_type: type | object | str, texts: Mapping[str, str] | None = None) -> str:
    """``RIHS01_<64 hex>`` of a message class, instance or ``pkg/msg/Type`` name, as ROS 2 computes it.

    Registered types (deploy/msgs/registry.py) by class or name; others by name with their ``.msg`` texts (and
    those of the types they use that are not registered) in ``texts``."""
    if isinstance(msg_type, str) and texts and msg_type in texts:
        ros_type = msg_type
    else:
        ros_type = message_info(msg_type).ros_type
    document = json.dumps(type_description(ros_type, texts), ensure_ascii=True, separators=(", ", ": "))
    return PREFIX + hashlib.sha256(document.encode("utf-8")).hexdigest()


def user_data_entry(msg_type: type | object | str, texts: Mapping[str, str] | None = None) -> str:
    """``typehash=RIHS01_...;``: the endpoint USER_DATA entry ROS 2 writes (rmw_dds_common qos.cpp)."""
    return f"typehash={type_hash(msg_type, texts)};"
