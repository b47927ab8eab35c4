"""Thrust stand: known Crazyflie-like motor (FACTS.md numbers) recovered from a synthetic staircase log."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from calibration.errors import CalibrationFileError, NotEnoughViewsError
from calibration.thrust import (
    StandData,
    fit_thrust_stand,
    read_stand_csv,
    thrust_randomization_spec,
    write_profile_yaml,
    write_stand_csv,
)
from calibration.thrust_report import CF_TRUTH, save_thrust_png, synthetic_stand_log
from sim.randomization import RandomizationSpec


@pytest.fixture(scope="module")
def stand() -> StandData:
    return synthetic_stand_log(np.random.default_rng(0))


def test_recovers_coefficients(stand):
    cal = fit_thrust_stand(stand)
    assert cal.kf == pytest.approx(CF_TRUTH["kf"], rel=0.01)
    assert cal.km == pytest.approx(CF_TRUTH["km"], rel=0.01)
    assert cal.command_to_rpm[0] == pytest.approx(CF_TRUTH["rpm_per_cmd"], rel=0.005)
    assert cal.command_to_rpm[1] == pytest.approx(CF_TRUTH["rpm_offset"], rel=0.02)
    assert cal.max_rpm == pytest.approx(0.2685 * 65535 + 4070.3, rel=0.005)
    assert cal.min_rpm == pytest.approx(0.2685 * 20000 + 4070.3, rel=0.005)
    assert cal.motor_tau_up == pytest.approx(CF_TRUTH["motor_tau_up"], rel=0.1)
    assert cal.motor_tau_down == pytest.approx(CF_TRUTH["motor_tau_down"], rel=0.1)
    assert len(cal.steps) >= 16
    rpm = np.linspace(10000, 21000, 5)
    np.testing.assert_allclose(np.polyval(cal.thrust_poly, rpm), CF_TRUTH["kf"] * rpm**2, rtol=0.02)


def test_profile_and_spec_files(tmp_path, stand):
    cal = fit_thrust_stand(stand)
    profile = yaml.safe_load(write_profile_yaml(cal, tmp_path / "p.yaml", "PWM").read_text())
    for key in (
        "kf",
        "km",
        "max_rpm",
        "min_rpm",
        "motor_tau_up",
        "motor_tau_down",
        "command_to_rpm",
        "thrust_poly",
        "torque_poly",
    ):
        assert key in profile
    assert profile["command_to_rpm"]["command_unit"] == "PWM" and len(profile["command_to_rpm"]["coefficients"]) == 2
    assert profile["kf"] == pytest.approx(cal.kf)
    spec_path = tmp_path / "spec.yaml"
    thrust_randomization_spec(cal).to_yaml(spec_path)
    spec = RandomizationSpec.from_yaml(spec_path)
    assert set(spec.terms) == {"kf", "km", "motor_tau_up", "motor_tau_down"}
    for term in spec.terms.values():
        assert term.operation == "scale" and term.distribution == "normal" and term.mean == 1.0
        assert term.low == pytest.approx(1 - 3 * term.std) and term.high == pytest.approx(1 + 3 * term.std)
    save_thrust_png(cal, tmp_path / "fit.png", "PWM")
    assert (tmp_path / "fit.png").stat().st_size > 10_000


def test_spread_reflects_scatter():
    # 5 % multiplicative thrust scatter between steady-state points -> kf relative std ~ 5 %
    rng = np.random.default_rng(3)
    rpm = np.linspace(8000, 22000, 40)
    thrust = 3e-10 * rpm**2 * (1 + rng.normal(0, 0.05, rpm.size))
    data = StandData(command=rpm, rpm=rpm, thrust=thrust, torque=0.006 * thrust, voltage=np.full_like(rpm, 4.0))
    cal = fit_thrust_stand(data)
    assert cal.rel_std["kf"] == pytest.approx(0.05, rel=0.3)
    assert cal.rel_std["km"] == pytest.approx(0.01)  # exact torque ratio -> the floor
    assert cal.motor_tau_up is None and "motor_tau_up" not in cal.rel_std  # no time column, no step fit


def test_csv_roundtrip_and_errors(tmp_path, stand):
    back = read_stand_csv(write_stand_csv(stand, tmp_path / "s.csv"))
    np.testing.assert_allclose(back.thrust, stand.thrust, rtol=1e-6, atol=1e-12)
    assert back.time is not None
    (tmp_path / "bad.csv").write_text("command,rpm,thrust\n1,2,3\n")
    with pytest.raises(CalibrationFileError, match="torque"):
        read_stand_csv(tmp_path / "bad.csv")
    few = StandData(*(np.array([0.0, 1.0]) for _ in range(5)))
    with pytest.raises(NotEnoughViewsError, match="steady-state points"):
        fit_thrust_stand(few)
