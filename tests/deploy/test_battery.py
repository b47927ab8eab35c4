"""The battery's state of charge read as the deploy profile says: the driver's percentage or the pack voltage."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from deploy.msgs import BatteryState
from deploy.profile import DeployProfileError, load_deploy_profile
from deploy.runtime.battery import BatteryGauge, BatteryGaugeError

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def test_percentage_is_the_drivers_estimate_and_nan_is_unknown():
    g = BatteryGauge()
    assert g.fraction(BatteryState(percentage=0.62, voltage=3.9)) == pytest.approx(0.62)
    assert g.fraction(BatteryState(percentage=math.nan, voltage=3.9)) is None  # ROS: NaN = unknown


@pytest.mark.parametrize(("volts", "expected"), [(4.2, 1.0), (3.75, 0.5), (3.3, 0.0), (3.0, 0.0), (4.35, 1.0)])
def test_voltage_gauge_of_a_1s_lipo(volts, expected):
    g = BatteryGauge("voltage", cells=1, empty_v_per_cell=3.3, full_v_per_cell=4.2)
    assert g.fraction(BatteryState(voltage=volts, percentage=math.nan)) == pytest.approx(expected)


def test_voltage_gauge_scales_with_cells_and_refuses_unknown_voltage():
    g = BatteryGauge("voltage", cells=4)
    assert g.fraction(BatteryState(voltage=4 * 3.75)) == pytest.approx(0.5)
    assert g.fraction(BatteryState(voltage=0.0)) is None
    assert g.fraction(BatteryState(voltage=math.nan)) is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"source": "volts"}, "battery.source"),
        ({"source": "voltage", "cells": 0}, "battery.cells"),
        ({"source": "voltage", "empty_v_per_cell": 13.2, "full_v_per_cell": 16.8}, "divide by the number of cells"),
        ({"source": "voltage", "full_voltage": 4.2}, "unknown keys"),
    ],
)
def test_bad_battery_sections_are_refused_with_what_to_do(section, message, tmp_path):
    with pytest.raises(BatteryGaugeError, match=message):
        BatteryGauge.from_mapping(section)
    data = yaml.safe_load((LAUNCH / "sim_quadrotor.yaml").read_text())
    data["robot"] = str(LAUNCH / "robots" / "crazyflie2.yaml")
    data["battery"] = section
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DeployProfileError, match=message):
        load_deploy_profile(path)


def test_profile_battery_section_reaches_the_profile(tmp_path):
    data = yaml.safe_load((LAUNCH / "sim_quadrotor.yaml").read_text())
    data["robot"] = str(LAUNCH / "robots" / "crazyflie2.yaml")
    data["battery"] = {"source": "voltage", "cells": 1}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_deploy_profile(path).battery == BatteryGauge("voltage", 1)
    assert load_deploy_profile(LAUNCH / "sim_quadrotor.yaml").battery == BatteryGauge()
