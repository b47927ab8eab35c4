"""ROS 2 topic names and their DDS spelling (``/foo/bar`` <-> ``rt/foo/bar``).

Rules (ROS 2 design "Topic and Service name mapping to DDS", rcl name validation): a fully qualified name
starts with ``/``; tokens are separated by single ``/``, start with a letter or ``_``, hold only
``[A-Za-z0-9_]``, contain no ``__``; no trailing ``/``. Relative names are resolved against a namespace.
``~`` (private names) and substitutions (``{node}``) are not supported by this runtime.
"""

from __future__ import annotations

import re

from deploy.transport.errors import TopicNameError

TOPIC_PREFIX = "rt"
_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: DDS topic names are limited to 256 characters; ROS 2 keeps topic names at or below 255 minus the prefix.
MAX_TOPIC_LENGTH = 255 - len(TOPIC_PREFIX)


def _check_tokens(name: str, what: str) -> None:
    if name == "/":
        return
    tokens = name.strip("/").split("/")
    for token in tokens:
        if not _TOKEN.match(token):
            raise TopicNameError(
                f"invalid {what} {name!r}: token {token!r} must start with a letter or '_' and contain only "
                "letters, digits and '_' (tokens are separated by a single '/'); e.g. '/robot1/imu'"
            )
        if "__" in token:
            raise TopicNameError(f"invalid {what} {name!r}: token {token!r} contains '__', which ROS 2 forbids")


def validate_namespace(namespace: str) -> str:
    """Check a namespace (``""`` or ``"/"`` is the root) and return it normalized as ``/a/b`` or ``""``."""
    if namespace in ("", "/"):
        return ""
    if not namespace.startswith("/"):
        raise TopicNameError(f"invalid namespace {namespace!r}: expected an absolute namespace like '/robot1'")
    if namespace.endswith("/"):
        raise TopicNameError(f"invalid namespace {namespace!r}: remove the trailing '/'")
    _check_tokens(namespace, "namespace")
    return namespace


def resolve_topic_name(name: str, namespace: str = "") -> str:
    """Fully qualified ROS 2 topic name: absolute names are checked and kept, relative ones get ``namespace``."""
    if not isinstance(name, str) or not name:
        raise TopicNameError(f"invalid topic name {name!r}: expected a non-empty string such as '/imu'")
    if "~" in name or "{" in name or "}" in name:
        raise TopicNameError(
            f"invalid topic name {name!r}: private ('~') and substitution ('{{...}}') names are not supported; "
            "use an absolute name like '/robot1/imu'"
        )
    if name.endswith("/"):
        raise TopicNameError(f"invalid topic name {name!r}: remove the trailing '/'")
    full = name if name.startswith("/") else f"{validate_namespace(namespace)}/{name}"
    _check_tokens(full, "topic name")
    if len(full) > MAX_TOPIC_LENGTH:
        raise TopicNameError(f"topic name {full!r} has {len(full)} characters; the maximum is {MAX_TOPIC_LENGTH}")
    return full


def ros_to_dds_topic(name: str, namespace: str = "") -> str:
    """``/foo/bar`` -> ``rt/foo/bar`` (the DDS topic ROS 2 uses for that topic)."""
    return TOPIC_PREFIX + resolve_topic_name(name, namespace)


def dds_to_ros_topic(dds_name: str) -> str:
    """``rt/foo/bar`` -> ``/foo/bar``; anything without the ``rt/`` prefix is not a ROS 2 topic."""
    if not dds_name.startswith(TOPIC_PREFIX + "/"):
        raise TopicNameError(f"DDS topic {dds_name!r} is not a ROS 2 topic: expected the prefix 'rt/'")
    return resolve_topic_name(dds_name[len(TOPIC_PREFIX) :])
