"""PX4's uXRCE-DDS topics as this project names them: QoS, topic names (namespace, versioned suffix), the
command constants, OffboardControlMode's setpoint kind, and the options the bridge and the fake PX4 share (throttle
curve, motor map, kf) from YAML/CLI.

PX4 publishes ``/fmu/out/*`` and subscribes ``/fmu/in/*`` with best effort, transient local, keep last 1
(FACTS.md, PX4 ``dds_topics.yaml``); a PX4 with ``UXRCE_DDS_NS`` set prefixes them (``/px4_1/fmu/...``); PX4
v1.16+ versioned messages add ``_v<N>`` to some topic names (check ``ros2 topic list`` on the agent's machine).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploy.transport import QosProfile
from drivers.px4_convert import ThrottleCurve, check_motor_map

#: PX4's QoS on /fmu topics.
PX4_QOS = QosProfile(depth=1, reliability="best_effort", durability="transient_local")
#: A reader for commands: best effort like PX4's writers, but queued (PX4 queues vehicle_command 8 deep).
PX4_COMMAND_QOS = QosProfile(depth=8, reliability="best_effort", durability="volatile")

NAV_STATE_NAMES = {0: "MANUAL", 1: "ALTCTL", 2: "POSCTL", 4: "AUTO_LOITER", 14: "OFFBOARD", 18: "AUTO_LAND"}
CMD_NAV_LAND, CMD_DO_SET_MODE, CMD_ARM_DISARM = 21, 176, 400
#: DO_SET_MODE param2 (PX4 main mode) for offboard, and (main, sub) for auto land.
PX4_MAIN_MODE_OFFBOARD, PX4_MAIN_MODE_AUTO, PX4_SUB_MODE_AUTO_LAND = 6, 4, 6
#: COMPONENT_ARM_DISARM param2 that forces a disarm in flight (a kill).
FORCE_DISARM_MAGIC = 21196.0
#: OffboardControlMode flags from the highest level down: PX4 controls at the first one that is true and uses only
#: that kind of setpoint (body_rate: VehicleRatesSetpoint; direct_actuator: ActuatorMotors).
CONTROL_MODE_FLAGS = (
    "position",
    "velocity",
    "acceleration",
    "attitude",
    "body_rate",
    "thrust_and_torque",
    "direct_actuator",
)
#: The project's motors M1..M4 (front-right, back-right, back-left, front-left) on PX4 quad X motors 1..4
#: (1 front-right, 2 back-left, 3 front-left, 4 back-right).
DEFAULT_MOTOR_MAP = (1, 4, 2, 3)


@dataclass(frozen=True)
class Px4Topics:
    """Full names of the /fmu topics. px4_namespace: PX4's UXRCE_DDS_NS ("" = none); suffix: appended to the
    names in ``suffixed`` (versioned messages of PX4 v1.16+)."""

    px4_namespace: str = ""
    suffix: str = ""
    suffixed: tuple[str, ...] = ("vehicle_status",)

    def name(self, direction: str, topic: str) -> str:
        ns = "/" + self.px4_namespace.strip("/") if self.px4_namespace.strip("/") else ""
        tail = self.suffix if topic in self.suffixed else ""
        return f"{ns}/fmu/{direction}/{topic}{tail}"


def control_mode(msg) -> str | None:
    """The setpoint kind an OffboardControlMode selects (a name of :data:`CONTROL_MODE_FLAGS`), None if no flag."""
    return next((flag for flag in CONTROL_MODE_FLAGS if getattr(msg, flag)), None)


@dataclass(frozen=True)
class MotorOptions:
    """What both sides of ActuatorMotors and VehicleRatesSetpoint must agree on: the throttle curve, the motor map,
    and kf (per-rotor thrust = kf rpm^2, N/RPM^2; for ctbr commands in newtons; None = not given)."""

    curve: ThrottleCurve
    motor_map: tuple[int, ...] = DEFAULT_MOTOR_MAP
    kf: float | None = None


def add_shared_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--px4-namespace", default="", help="PX4's UXRCE_DDS_NS ('' = topics /fmu/...)")
    ap.add_argument("--topic-suffix", default="", help="versioned-topic suffix of PX4 v1.16+ (e.g. _v1)")
    ap.add_argument("--suffixed-topics", default="vehicle_status", help="comma-separated topics that take the suffix")
    ap.add_argument(
        "--config", type=Path, default=None, help="YAML with rpm_max, throttle_exponent, throttle_table, motor_map, kf"
    )
    ap.add_argument("--rpm-max", type=float, default=None, help="RPM at ActuatorMotors control 1.0")
    ap.add_argument("--throttle-exponent", type=float, default=None, help="normalized = (rpm / rpm_max) ** this")
    ap.add_argument("--motor-map", default=None, help="PX4 motor numbers of M1..M4, e.g. 1,4,2,3")
    ap.add_argument("--kf", type=float, default=None, help="rotor thrust = kf rpm^2, N/RPM^2 (ctbr: N -> normalized)")


def topics_from_args(args: argparse.Namespace) -> Px4Topics:
    suffixed = tuple(t.strip() for t in args.suffixed_topics.split(",") if t.strip())
    return Px4Topics(args.px4_namespace, args.topic_suffix, suffixed)


def motor_options_from_args(args: argparse.Namespace) -> MotorOptions:
    """The YAML file (``--config``) first, command-line values over it. Raises ValueError naming the field."""
    data: dict = {}
    if args.config is not None:
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        data = loaded.get("px4", loaded)
        unknown = sorted(set(data) - {"rpm_max", "throttle_exponent", "throttle_table", "motor_map", "kf"})
        if unknown:
            raise ValueError(
                f"{args.config}: unknown keys {unknown}; expected rpm_max, throttle_exponent, throttle_table, "
                "motor_map, kf"
            )
    rpm_max = args.rpm_max if args.rpm_max is not None else data.get("rpm_max")
    if rpm_max is None:
        raise ValueError("rpm_max is required (--rpm-max or rpm_max in --config): the RPM at ActuatorMotors 1.0")
    exponent = args.throttle_exponent if args.throttle_exponent is not None else data.get("throttle_exponent", 2.0)
    table = tuple(tuple(float(v) for v in pair) for pair in data.get("throttle_table", ()))
    motor_map = args.motor_map.split(",") if args.motor_map else data.get("motor_map", DEFAULT_MOTOR_MAP)
    kf = args.kf if args.kf is not None else data.get("kf")
    if kf is not None and not (math.isfinite(float(kf)) and float(kf) > 0):
        raise ValueError(f"kf: expected N/RPM^2 > 0 (the robot profile's kf), got {kf}")
    curve = ThrottleCurve(float(rpm_max), float(exponent), table)
    return MotorOptions(curve, check_motor_map(motor_map), None if kf is None else float(kf))
