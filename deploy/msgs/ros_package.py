"""The ``sim2real_msgs`` ROS 2 package, generated from deploy/msgs/registry.py.

``colcon build`` of ``ros2/sim2real_msgs`` in a ROS 2 workspace gives rclpy/rclcpp the same types the deploy
runtime speaks on the wire (same names, fields and type hashes). The registry is the source: after adding or
changing a ``sim2real_msgs`` type there, regenerate::

    python -m deploy.msgs.ros_package --out ros2/sim2real_msgs          # write
    python -m deploy.msgs.ros_package --out ros2/sim2real_msgs --check  # exit 1 if the files differ

tests/deploy/transport/test_ros_package.py fails while the files in the repo differ from what this writes.
Package layout as ``ros2 pkg create --build-type ament_cmake`` plus rosidl (ROS 2 docs, "Creating custom msg and
srv files"): ``package.xml`` format 3 with ``rosidl_default_generators`` / ``rosidl_default_runtime`` and
``member_of_group rosidl_interface_packages``; ``CMakeLists.txt`` calling ``rosidl_generate_interfaces``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from deploy.msgs.registry import MESSAGES

PACKAGE = "sim2real_msgs"
VERSION = "0.1.0"  # pyproject.toml's version
COMMAND = f"python -m deploy.msgs.ros_package --out ros2/{PACKAGE}"
GENERATED = f"Generated from deploy/msgs/registry.py by `{COMMAND}`: edit the registry, not this file."
# An XML comment may not contain "--": the command is in CMakeLists.txt.
_XML_NOTE = "Generated from deploy/msgs/registry.py by deploy/msgs/ros_package.py: edit the registry, not this file."

# rosidl_adapter's naming rules (rosidl_adapter/parser.py: is_valid_message_name, is_valid_field_name).
_MESSAGE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_FIELD_NAME = re.compile(r"^(?!.*__)(?!.*_$)[a-z][a-z0-9_]*$")

log = logging.getLogger(__name__)


class RosPackageError(ValueError):
    """A registry entry that rosidl would refuse."""


def package_types(package: str = PACKAGE) -> list[str]:
    """``pkg/msg/Type`` of every registered type of ``package``, sorted."""
    return sorted(t for t in MESSAGES if t.split("/")[0] == package)


def dependency_packages(package: str = PACKAGE) -> list[str]:
    """The other packages whose types the package's messages use, directly or not, sorted."""
    deps = {d.split("/")[0] for t in package_types(package) for d in MESSAGES[t].dependencies}
    return sorted(deps - {package})


def _check_names(ros_type: str) -> None:
    name = ros_type.split("/")[-1]
    if not _MESSAGE_NAME.match(name):
        raise RosPackageError(f"{ros_type}: rosidl needs a CamelCase message name, got {name!r}")
    for line in MESSAGES[ros_type].msg_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "=" in line.partition(" ")[2]:
            continue  # empty, comment or constant
        field = line.split()[1]
        if not _FIELD_NAME.match(field):
            raise RosPackageError(
                f"{ros_type}: rosidl refuses the field name {field!r} (lower case letters, digits and single "
                "'_', starting with a letter, not ending with '_'); rename it in deploy/msgs/registry.py and types.py"
            )
        if line.split()[0] == "Header":
            raise RosPackageError(f"{ros_type}: write 'std_msgs/Header', not 'Header' (ROS 2 has no implicit Header)")


def msg_file(ros_type: str) -> str:
    """The ``.msg`` file of a registered type: a generated-file note, then the registry's text."""
    _check_names(ros_type)
    return f"# {GENERATED}\n\n{MESSAGES[ros_type].msg_text}"


def package_xml(package: str = PACKAGE) -> str:
    depends = "".join(f"  <depend>{d}</depend>\n" for d in dependency_packages(package))
    return (
        '<?xml version="1.0"?>\n'
        '<?xml-model href="http://download.ros.org/schema/package_format3.xsd" '
        'schematypens="http://www.w3.org/2001/XMLSchema"?>\n'
        f"<!-- {_XML_NOTE} -->\n"
        '<package format="3">\n'
        f"  <name>{package}</name>\n"
        f"  <version>{VERSION}</version>\n"
        "  <description>Messages of the sim2real deploy runtime (motor, rate-thrust and joint commands, safety "
        "transitions, loop timing), as it sends them on the wire.</description>\n"
        '  <maintainer email="sim2real@example.com">sim2real maintainers</maintainer>\n'
        "  <license>TODO: License declaration</license>\n"
        "\n"
        "  <buildtool_depend>ament_cmake</buildtool_depend>\n"
        "  <buildtool_depend>rosidl_default_generators</buildtool_depend>\n"
        "\n"
        f"{depends}"
        "\n"
        "  <exec_depend>rosidl_default_runtime</exec_depend>\n"
        "\n"
        "  <member_of_group>rosidl_interface_packages</member_of_group>\n"
        "\n"
        "  <export>\n"
        "    <build_type>ament_cmake</build_type>\n"
        "  </export>\n"
        "</package>\n"
    )


def cmakelists(package: str = PACKAGE) -> str:
    deps = dependency_packages(package)
    finds = "".join(f"find_package({d} REQUIRED)\n" for d in deps)
    files = "".join(f'  "msg/{t.split("/")[-1]}.msg"\n' for t in package_types(package))
    return (
        f"# {GENERATED}\n"
        "cmake_minimum_required(VERSION 3.8)\n"
        f"project({package})\n"
        "\n"
        "find_package(ament_cmake REQUIRED)\n"
        "find_package(rosidl_default_generators REQUIRED)\n"
        f"{finds}"
        "\n"
        "rosidl_generate_interfaces(${PROJECT_NAME}\n"
        f"{files}"
        f"  DEPENDENCIES {' '.join(deps)}\n"
        ")\n"
        "\n"
        "ament_export_dependencies(rosidl_default_runtime)\n"
        "ament_package()\n"
    )


def render(package: str = PACKAGE) -> dict[str, str]:
    """Every file of the package: relative path -> text."""
    if not package_types(package):
        raise RosPackageError(f"no {package} types in deploy/msgs/registry.py")
    files = {f"msg/{t.split('/')[-1]}.msg": msg_file(t) for t in package_types(package)}
    files["package.xml"] = package_xml(package)
    files["CMakeLists.txt"] = cmakelists(package)
    return files


def differences(out: Path, package: str = PACKAGE) -> list[str]:
    """Relative paths under ``out`` that differ from :func:`render`: missing, changed, or stale ``.msg`` files."""
    files = render(package)
    changed = [p for p, text in files.items() if not (out / p).is_file() or (out / p).read_text() != text]
    stale = [str(p.relative_to(out)) for p in sorted((out / "msg").glob("*.msg")) if f"msg/{p.name}" not in files]
    return sorted(changed + stale)


def write(out: Path, package: str = PACKAGE) -> list[str]:
    """Write the package into ``out`` (stale ``.msg`` files removed); returns the paths that changed."""
    changed = differences(out, package)
    files = render(package)
    for rel in changed:
        path = out / rel
        if rel in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[rel])
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help=f"package folder, e.g. ros2/{PACKAGE}")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if files differ")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        diff = differences(args.out)
        for rel in diff:
            log.error("%s differs from the registry", args.out / rel)
        if diff:
            log.error("regenerate with: %s", COMMAND)
        return 1 if diff else 0
    for rel in write(args.out):
        log.info("wrote %s", args.out / rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
