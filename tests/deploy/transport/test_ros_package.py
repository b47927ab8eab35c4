"""ros2/sim2real_msgs is what deploy/msgs/ros_package.py generates from the registry, and reads as the registry does."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rosbags.typesys import get_types_from_msg

from deploy.msgs import MESSAGES
from deploy.msgs import ros_package as rp
from deploy.msgs.type_hash import type_hash

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = ROOT / "ros2" / "sim2real_msgs"
SIM2REAL_TYPES = sorted(t for t in MESSAGES if t.startswith("sim2real_msgs/"))


def test_files_in_repo_equal_the_generator_output() -> None:
    diff = rp.differences(PACKAGE_DIR)
    assert not diff, f"ros2/sim2real_msgs is out of date with deploy/msgs/registry.py ({diff}); run: {rp.COMMAND}"
    on_disk = sorted(str(p.relative_to(PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*") if p.is_file())
    assert on_disk == sorted(rp.render())


def test_every_sim2real_type_has_a_msg_file() -> None:
    assert SIM2REAL_TYPES, "the registry has no sim2real_msgs types"
    assert {f"msg/{t.split('/')[-1]}.msg" for t in SIM2REAL_TYPES} == {p for p in rp.render() if p.startswith("msg/")}
    assert {"MotorCommand", "RateThrustCommand", "JointCommand", "SafetyTransition", "LoopTiming"} <= {
        t.split("/")[-1] for t in SIM2REAL_TYPES
    }


@pytest.mark.parametrize("ros_type", SIM2REAL_TYPES)
def test_msg_file_parses_to_the_registry_fields(ros_type: str) -> None:
    """rosbags reads the repo's .msg file to the fields it reads from the registry text, in the IDL class's order;
    the type hash is unchanged by the generated-file note."""
    text = (PACKAGE_DIR / "msg" / f"{ros_type.split('/')[-1]}.msg").read_text()
    from_file = get_types_from_msg(text, ros_type)[ros_type]
    from_registry = get_types_from_msg(MESSAGES[ros_type].msg_text, ros_type)[ros_type]
    assert from_file == from_registry
    assert [name for name, _ in from_file[1]] == [f.name for f in dataclasses.fields(MESSAGES[ros_type].cls)]
    assert type_hash(ros_type, {ros_type: text}) == type_hash(ros_type)


def test_package_xml_is_a_rosidl_interface_package() -> None:
    root = ET.parse(PACKAGE_DIR / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "sim2real_msgs"

    def texts(tag: str) -> set[str]:
        return {e.text for e in root.findall(tag)}

    assert texts("buildtool_depend") == {"ament_cmake", "rosidl_default_generators"}
    assert texts("depend") == {"builtin_interfaces", "geometry_msgs", "std_msgs"}
    assert texts("exec_depend") == {"rosidl_default_runtime"}
    assert texts("member_of_group") == {"rosidl_interface_packages"}
    assert root.findtext("export/build_type") == "ament_cmake"


def test_cmakelists_generates_every_msg_with_its_dependencies() -> None:
    text = (PACKAGE_DIR / "CMakeLists.txt").read_text()
    assert "project(sim2real_msgs)" in text
    block = text.split("rosidl_generate_interfaces(${PROJECT_NAME}\n", 1)[1].split(")\n", 1)[0]
    listed = [line.strip().strip('"') for line in block.splitlines() if line.strip().startswith('"')]
    assert listed == [f"msg/{t.split('/')[-1]}.msg" for t in SIM2REAL_TYPES]
    assert "DEPENDENCIES builtin_interfaces geometry_msgs std_msgs" in block
    for dep in ("rosidl_default_generators", "builtin_interfaces", "geometry_msgs", "std_msgs"):
        assert f"find_package({dep} REQUIRED)" in text


def test_check_mode_names_changed_and_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "sim2real_msgs"
    assert rp.main(["--out", str(out)]) == 0
    assert rp.main(["--out", str(out), "--check"]) == 0
    (out / "msg" / "LoopTiming.msg").write_text("float64 x\n")
    (out / "msg" / "Removed.msg").write_text("float64 x\n")
    assert rp.differences(out) == ["msg/LoopTiming.msg", "msg/Removed.msg"]
    assert rp.main(["--out", str(out), "--check"]) == 1
    assert rp.write(out) == ["msg/LoopTiming.msg", "msg/Removed.msg"]
    assert not (out / "msg" / "Removed.msg").exists() and rp.differences(out) == []


def test_names_rosidl_would_refuse_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    info = MESSAGES["sim2real_msgs/msg/LoopTiming"]
    for text, match in [
        ("float64 Cycle\n", "field name 'Cycle'"),
        ("float64 cycle_\n", "field name 'cycle_'"),
        ("Header header\n", "std_msgs/Header"),
    ]:
        monkeypatch.setitem(MESSAGES, info.ros_type, dataclasses.replace(info, msg_text=text))
        with pytest.raises(rp.RosPackageError, match=match):
            rp.render()
