"""System identification on logs of the simulator flown with hidden parameters, sensor noise and latency.

The log is flown by the PID baseline tracking random setpoints with motor excitation, through the deploy
observation builder, and written by the flight recorder on the deploy topics (calibration.sysid.synthetic).
Tolerances asserted: mass 3 %, inertia 5 % per axis, torque ratio 5 %, motor time constants 10 %, drag 25 %,
latency exact; the randomization spec covers the truth and trains (loads into the env); re-simulation with the
fitted parameters diverges less than with the defaults.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from calibration.sysid.synthetic import SyntheticFlight, fly
from calibration.sysid.synthetic_bag import px4_style_map, write_px4_style_bag
from deploy.replay import load_flight
from sim.quadrotor.params import QuadrotorParams
from sim.randomization import RandomizationSpec

NOMINAL = QuadrotorParams()
TRUTH = NOMINAL.replace(
    mass=NOMINAL.mass * 1.12,
    inertia=(1.6e-5, 1.75e-5, 2.6e-5),
    km=NOMINAL.km * 0.5,
    motor_tau_up=NOMINAL.motor_tau_up * 0.7,
    motor_tau_down=NOMINAL.motor_tau_down * 1.3,
    drag=tuple(d * 1.5 for d in NOMINAL.drag),
)
LATENCY = 1
TOLERANCE = {
    "mass": 0.03,
    "inertia_x": 0.05,
    "inertia_y": 0.05,
    "inertia_z": 0.05,
    "km": 0.05,
    "motor_tau_up": 0.10,
    "motor_tau_down": 0.10,
    "drag_x": 0.25,
    "drag_y": 0.25,
    "drag_z": 0.25,
}


def _truth(name: str) -> float:
    if name[-2:] in ("_x", "_y", "_z"):
        return getattr(TRUTH, name[:-2])["xyz".index(name[-1])]
    return getattr(TRUTH, name)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("sysid") / "flight.mcap"
    fly(path, SyntheticFlight(seconds=30.0, params=TRUTH, action_latency=LATENCY, noise=1.0, seed=11))
    return path


@pytest.fixture(scope="module")
def identified(log, tmp_path_factory):
    import sim2real

    out = tmp_path_factory.mktemp("sysid_out")
    assert sim2real.main(["sysid", str(log), "--out", str(out)]) == 0
    return json.loads((out / "sysid.json").read_text()), out


def test_hidden_parameters_are_recovered(identified):
    summary, _ = identified
    est = summary["estimates"]
    assert est["action_latency"]["value"] == LATENCY
    assert summary["latency_cost"][str(LATENCY)] < min(v for k, v in summary["latency_cost"].items() if k != "1") - 100
    for name, tol in TOLERANCE.items():
        err = est[name]["value"] / _truth(name) - 1.0
        assert abs(err) < tol, f"{name}: fitted {est[name]['value']:.4g}, truth {_truth(name):.4g} ({100 * err:+.1f} %)"
        # the reported uncertainty is honest: the truth lies within 4 standard deviations
        assert abs(est[name]["value"] - _truth(name)) < 4 * est[name]["std"] + 1e-3 * _truth(name), name
    assert est["kf"]["value"] == NOMINAL.kf  # the anchor (thrust stand / profile)
    assert summary["usable_s"] > 29.0


def test_fitted_parameters_close_the_reality_gap(identified):
    gap = identified[0]["resimulation"]
    for h in ("0.1s", "0.5s", "1s"):
        assert gap["fitted"][h]["position_m"] < gap["nominal"][h]["position_m"]
    assert gap["fitted"]["1s"]["position_m"] < 0.05 < gap["nominal"]["1s"]["position_m"]
    assert gap["fitted"]["0.5s"]["attitude_deg"] < 0.2 * gap["nominal"]["0.5s"]["attitude_deg"]


def test_randomization_spec_covers_the_truth_and_loads_into_training(identified):
    _, out = identified
    spec = RandomizationSpec.from_yaml(out / "randomization.yaml")
    ratios = {
        "mass": [TRUTH.mass / NOMINAL.mass],
        "inertia": [t / n for t, n in zip(TRUTH.inertia, NOMINAL.inertia)],
        "km": [TRUTH.km / NOMINAL.km],
        "motor_tau_up": [TRUTH.motor_tau_up / NOMINAL.motor_tau_up],
        "motor_tau_down": [TRUTH.motor_tau_down / NOMINAL.motor_tau_down],
        "drag": [1.5],
    }
    for name, values in ratios.items():
        lo, hi = spec.terms[name].bounds()
        assert all(lo <= v <= hi for v in values), (name, lo, hi, values)
    lo, hi = spec.terms["mass"].bounds()
    assert hi - lo < 0.15  # centred on the fit, not the default 0.9-1.2
    assert spec.terms["action_latency"].bounds() == (LATENCY, LATENCY)
    assert "obs_noise_scale" in spec.terms and "disturbance_force" in spec.terms  # defaults kept

    from sim.quadrotor.config import QuadrotorTaskCfg
    from sim.quadrotor.env import QuadrotorEnv

    env = QuadrotorEnv(QuadrotorTaskCfg(randomization=spec), 64, seed=0, compile=False, native=False)
    mass = env.param("mass").numpy().ravel() / NOMINAL.mass
    lo, hi = spec.terms["mass"].bounds()
    assert mass.min() >= lo - 1e-6 and mass.max() <= hi + 1e-6 and mass.std() > 0
    np.testing.assert_array_equal(env.param("action_latency").numpy(), LATENCY)
    profile = yaml.safe_load((out / "profile.yaml").read_text())["quadrotor"]
    assert QuadrotorParams.from_dict(profile).mass == pytest.approx(TRUTH.mass, rel=0.03)


def test_rosbag2_log_with_user_topics_gives_the_same_fit(log, identified, tmp_path):
    import sim2real

    bag = write_px4_style_bag(load_flight(log), tmp_path / "bag", storage="mcap", order=(2, 3, 0, 1))
    map_file = tmp_path / "px4.yaml"
    map_file.write_text(yaml.safe_dump(px4_style_map(NOMINAL.max_rpm, (2, 3, 0, 1))))
    out = tmp_path / "out"
    args = ["sysid", str(bag), "--map", str(map_file), "--out", str(out), "--max-latency", "1"]
    assert sim2real.main(args) == 0
    est = json.loads((out / "sysid.json").read_text())["estimates"]
    ref = identified[0]["estimates"]
    assert est["action_latency"]["value"] == LATENCY
    for name in ("mass", "inertia_x", "km", "motor_tau_up"):
        assert est[name]["value"] == pytest.approx(ref[name]["value"], rel=2e-3), name


def test_too_short_a_log_is_refused_with_the_reason(log, tmp_path):
    import sim2real
    from calibration.errors import CalibrationError
    from calibration.sysid.data import from_flight

    flight = load_flight(log)
    flight.transitions = flight.transitions[:2]  # ACTIVE from t = 0
    flight.command_t, flight.command = flight.command_t[:150], flight.command[:150]
    with pytest.raises(CalibrationError, match=r"only 1\.\d s of usable flight .* at least 2\.0 s"):
        from_flight(flight, NOMINAL.hover_rpm)
    assert sim2real.main(["sysid", str(tmp_path / "missing.mcap"), "--out", str(tmp_path)]) == 2


def test_a_cover_spec_that_cannot_be_read_is_refused_before_the_log(log, tmp_path, caplog):
    import sim2real

    bad = tmp_path / "bad.yaml"
    bad.write_text("terms: {mass: {distribution: banana}}\n")
    for spec in (tmp_path / "missing.yaml", bad):
        out = tmp_path / spec.stem
        assert sim2real.main(["sysid", str(log), "--out", str(out), "--cover", str(spec)]) == 2
        assert f"--cover {str(spec)!r}: expected a randomization spec YAML" in caplog.text
        assert not out.exists()  # nothing was fitted or written


def test_rows_on_the_ground_with_spinning_motors_are_not_used(tmp_path):
    """Idle on the ground (0.5 s), 5 s of flight at 1 m, then 2 s on the ground with the motors at 60 % of hover
    RPM (the runtime's spool-down): the floor carries the weight there, so those rows would read as a heavier
    vehicle. Only the flight is usable; a log without idle rows (no ground seen) keeps every spinning row."""
    from calibration.sysid.data import from_flight
    from deploy.replay.flight import Flight

    t = np.arange(0.0, 7.5, 0.01)
    z = np.where((t >= 0.5) & (t < 5.5), 1.0, 0.0)
    rpm = np.where(t < 0.5, 0.1, np.where(t < 5.5, 1.0, 0.6)) * NOMINAL.hover_rpm
    quaternion = np.tile([1.0, 0.0, 0.0, 0.0], (len(t), 1))
    zeros = np.zeros((len(t), 3))
    position = np.stack([zeros[:, 0], zeros[:, 0], z], -1)
    flight = Flight(tmp_path / "f.mcap", 0, t, position, quaternion, zeros, zeros, command_t=t,
                    command=np.repeat(rpm[:, None], 4, 1))  # fmt: skip
    data = from_flight(flight, NOMINAL.hover_rpm, min_usable_s=1.0)
    used = t[:-1][data.step_ok]
    assert used.min() >= 0.5 and used.max() < 5.5 and data.usable_s == pytest.approx(4.99, abs=0.02)
    airborne = Flight(tmp_path / "g.mcap", 0, t[50:], position[50:], quaternion[50:], zeros[50:], zeros[50:],
                      command_t=t[50:], command=np.repeat(rpm[50:, None], 4, 1))  # fmt: skip
    assert from_flight(airborne, NOMINAL.hover_rpm, 0.0, 1.0).usable_s == pytest.approx(6.99, abs=0.02)


def test_mass_from_a_scale_anchors_the_thrust_coefficient(log, tmp_path):
    import sim2real

    out = tmp_path / "out"
    args = ["sysid", str(log), "--anchor", "mass", "--anchor-value", str(TRUTH.mass), "--out", str(out)]
    assert sim2real.main([*args, "--max-latency", "1", "--anchor-std", "0.01"]) == 0
    est = json.loads((out / "sysid.json").read_text())["estimates"]
    assert est["mass"]["value"] == TRUTH.mass
    assert est["kf"]["value"] == pytest.approx(TRUTH.kf, rel=0.03)
    assert est["kf"]["std"] == pytest.approx(0.01 * TRUTH.kf, rel=0.3)  # the scale's 1 % dominates
    spec = RandomizationSpec.from_yaml(out / "randomization.yaml")
    lo, hi = spec.terms["kf"].bounds()
    assert lo < 1.0 < hi  # this profile's kf is the truth here


def test_estimates_the_log_does_not_pin_down_keep_the_defaults():
    from calibration.sysid.core import Estimate
    from calibration.sysid.spec import fitted_profile, randomization_from_fit, unidentified
    from sim.quadrotor.config import default_randomization

    est = {
        "mass": Estimate(0.030, 0.0003, "kg", NOMINAL.mass),
        "inertia_x": Estimate(1.5e-5, 3e-7, "", NOMINAL.inertia[0]),
        "inertia_y": Estimate(1.5e-5, 3e-7, "", NOMINAL.inertia[1]),
        "inertia_z": Estimate(-5e-5, 3e-5, "", NOMINAL.inertia[2]),  # not positive
        "km": Estimate(0.02, 0.01, "m", NOMINAL.km),  # 50 % std
        "action_latency": Estimate(2.0, 0.0, "control steps", 0.0),
    }
    assert unidentified(est) == ["inertia_z", "km"]
    spec = randomization_from_fit(est, "t", sigmas=2.0, min_spread=0.02)
    default = default_randomization()
    assert spec.terms["km"] == default.terms["km"]
    inertia = spec.terms["inertia"]  # per axis: x and y fitted (1.5 / 1.4 +- 2 * 0.3 / 14), z the default interval
    assert inertia.per_axis and (inertia.low[2], inertia.high[2]) == default.terms["inertia"].bounds()
    assert inertia.low[0] == pytest.approx(1.5 / 1.4 - 0.04286, abs=1e-4) and inertia.high[1] == pytest.approx(
        1.5 / 1.4 + 0.04286, abs=1e-4
    )
    lo, hi = spec.terms["mass"].bounds()  # ratio 1.111, half-width max(2 * 0.0111, 0.02 * 1.111) = 0.0222
    assert lo == pytest.approx(0.030 / 0.027 - 0.0222, abs=1e-4) and hi == pytest.approx(
        0.030 / 0.027 + 0.0222, abs=1e-4
    )
    assert spec.terms["action_latency"].bounds() == (2, 2) and spec.terms["obs_latency"].bounds() == (0, 0)
    profile = fitted_profile(est, NOMINAL)
    assert (
        profile.inertia == (1.5e-5, 1.5e-5, NOMINAL.inertia[2]) and profile.km == NOMINAL.km and profile.mass == 0.030
    )
