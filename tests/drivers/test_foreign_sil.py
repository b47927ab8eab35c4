"""The foreign SIL robots (drivers/foreign_sil): each wrapper's motor and frame mapping, checked on the foreign
simulator's own physics, and one `sim2real deploy --sil --sil-robot` flight in each."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from drivers.foreign_sil import SIMULATORS, make_vehicle
from drivers.foreign_sil.common import (
    ForeignSilNode,
    Rotors,
    match_layout,
    project_rotors,
    quat_multiply,
    quat_z,
    rot_z,
)
from tests.domains import random_domain
from tests.drivers._px4_client import dds_env
from tests.drivers.test_ctbr_deploy_e2e import summary_of

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "data" / "hover_policy.onnx"
SIMS = sorted(SIMULATORS)

pytest.importorskip("rotorpy")
pytest.importorskip("casadi")  # drone-models' own dependency


class _Mapper(ForeignSilNode):
    """The node's mappings without a DDS node."""

    def __init__(self, vehicle):
        self.vehicle, self.match = vehicle, match_layout(vehicle.rotors, project_rotors())
        self.q_sp, self.r_ps = quat_z(self.match.yaw_rad), rot_z(-self.match.yaw_rad)
        vehicle.reset(-self.match.yaw_rad, 1.0)


@pytest.fixture(scope="module", params=SIMS)
def mapper(request):
    return _Mapper(make_vehicle(request.param))


def _fly(mapper: _Mapper, delta_rpm, steps: int = 5):
    """Hover RPM plus delta (project motor order) for steps x 10 ms from a level hover; -> state in P."""
    mapper.vehicle.reset(-mapper.match.yaw_rad, 1.0)
    rpm = mapper.vehicle.hover_rpm() + np.asarray(delta_rpm, dtype=float)
    for _ in range(steps):
        state = mapper.vehicle.step(mapper.foreign_rpm(rpm), 0.01)
    return mapper.in_policy_frame(state)


def test_the_policy_body_starts_level_facing_world_x(mapper):
    _, quat, _, _ = mapper.in_policy_frame(mapper.vehicle.step(mapper.foreign_rpm([0.0] * 4), 1e-3))
    assert np.allclose(np.abs(quat), [1.0, 0.0, 0.0, 0.0], atol=1e-6), quat


def test_equal_rpm_is_pure_vertical_thrust_without_torque(mapper):
    pos, _, vel, rates = _fly(mapper, [400.0] * 4, steps=20)
    assert vel[2] > 0.05 and pos[2] > 1.0  # above hover speed: it climbs
    assert np.abs(vel[:2]).max() < 1e-6 and np.abs(rates).max() < 1e-6, (vel, rates)


@pytest.mark.parametrize(
    "delta, axis, sign",
    [
        ([-300, -300, 300, 300], 0, +1),  # left motors (m3, m4) faster: roll +x (right side down)
        ([300, -300, -300, 300], 1, -1),  # front motors (m1, m4) faster: nose up, pitch -y in FLU
        ([300, -300, 300, -300], 2, +1),  # cw motors (m1, m3) faster: their reaction yaws the body +z
    ],
    ids=["roll", "pitch", "yaw"],
)
def test_a_torque_command_turns_the_policy_body_the_right_way(mapper, delta, axis, sign):
    _, _, _, rates = _fly(mapper, delta)
    others = [rates[i] for i in range(3) if i != axis]
    assert sign * rates[axis] > 0.02 and max(abs(v) for v in others) < 0.1 * abs(rates[axis]), rates


def test_layout_match_turns_a_mirrored_x_and_refuses_other_frames():
    project = project_rotors()
    # an X frame with the other spin pattern (the real Crazyflie's) is the project's turned a quarter
    mirrored = Rotors(project.xy * [1.0, -1.0], project.spin)
    match = match_layout(mirrored, project)
    assert math.isclose(match.yaw_rad, math.pi / 2) and match.order == (0, 3, 2, 1)
    plus = Rotors(np.array([[0.04, 0.0], [0.0, -0.04], [-0.04, 0.0], [0.0, 0.04]]), project.spin)
    with pytest.raises(ValueError, match="a \\+ layout"):
        match_layout(plus, project)
    same_spin_neighbours = Rotors(project.xy, np.array([1.0, 1.0, -1.0, -1.0]))
    with pytest.raises(ValueError, match="spin pattern"):
        match_layout(same_spin_neighbours, project)


def test_quaternion_turn_composes():
    q = quat_multiply(quat_z(0.3), quat_z(0.4))
    assert np.allclose(q, quat_z(0.7))


#: Measured here (deploy flights of tests/data/hover_policy.onnx, 6 s hover, mocap noise): rotorpy 10.0-10.7 cm,
#: drone_models 6.7-7.1 cm (docs/sim2sim.md); the bounds leave margin for a busy machine. Not the issue's 3 cm target.
HOVER_RMS_BOUND_M = {"rotorpy": 0.16, "drone_models": 0.12}


@pytest.mark.parametrize("sim", SIMS)
def test_deploy_flies_the_policy_in_a_foreign_simulator(tmp_path, sim):
    domain = random_domain()
    profile = yaml.safe_load((ROOT / "launch" / "sim_quadrotor.yaml").read_text())
    profile["robot"] = str(ROOT / "launch" / "robots" / "crazyflie2.yaml")
    profile["transport"] = {"namespace": f"/foreign{domain}"}
    profile["plan"] = {**profile["plan"], "height_m": 0.6, "hover_s": 3.0, "descent_rate_m_s": 0.4}
    profile.pop("realtime_priority", None)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    cmd = [sys.executable, "sim2real.py", "deploy", "--sil", "--sil-robot", sim, "--profile", str(path)]
    cmd += ["--policy", str(POLICY), "--log", str(tmp_path / "run.mcap")]
    run = subprocess.run(cmd, cwd=ROOT, env=dds_env(domain), capture_output=True, text=True, timeout=120)
    summary = summary_of(run)
    # a string, not a tuple: pytest shortens a message object's repr to ~240 characters, the transitions with it
    transitions = "\n".join(summary.get("transitions") or [])
    context = (
        f"end {summary.get('end')!r}, rc {run.returncode}; transitions:\n{transitions}\nstderr:\n{run.stderr[-2500:]}"
    )
    assert run.returncode == 0 and summary.get("end") == "plan complete", context
    assert summary["tracking"]["hover_rms_m"] < HOVER_RMS_BOUND_M[sim], (summary["tracking"], context)
    assert f"{sim} quadrotor" in run.stderr  # the foreign robot flew, not the project's own


def test_deploy_starts_the_foreign_robot_the_profile_or_the_flag_names():
    from deploy import cli
    from deploy.profile import load_deploy_profile

    profile = load_deploy_profile(ROOT / "launch" / "foreign_drone_models.yaml")
    cmd = cli.sil_command(profile)
    assert cmd[cmd.index("-m") + 1] == "drivers.foreign_sil" and cmd[cmd.index("--sim") + 1] == "drone_models"
    cmd = cli.sil_command(profile, "rotorpy")  # --sil-robot wins over the profile
    assert cmd[cmd.index("--sim") + 1] == "rotorpy" and cmd[cmd.index("--interface") + 1] == "rpm"
    cmd = cli.sil_command(profile, "sim")
    assert cmd[cmd.index("-m") + 1] == "drivers.sim_robot" and "--sim" not in cmd


class _Stepper(_Mapper):
    """The node's stepping and stamping without a DDS node: published stamps are kept."""

    def __init__(self, vehicle):
        super().__init__(vehicle)
        self.command_timeout_s, self._idle = 0.5, np.zeros(4)
        self._rpm, self._time = np.full(4, vehicle.hover_rpm()), math.inf  # a held hover command
        self.steps, self.clock, self.last = 0, None, None
        self.battery_fraction, self.battery_drain_per_s = 0.95, 0.0
        self.stamps: list[int] = []

    def publish(self, state, stamp_ns: int) -> None:
        self.stamps.append(stamp_ns)


@pytest.mark.parametrize("sim", SIMS)
def test_a_late_call_runs_the_due_steps_and_each_state_carries_its_physics_time(sim):
    """As the project's SIL robot (tests/drivers/test_sim_robot.py): the foreign vehicle keeps pace with the clock
    and stamps every state with its physics time, not with when it was sent."""
    robot = _Stepper(make_vehicle(sim))
    dt, steps = 0.01, []
    robot.step(dt, 49.0)  # makes the clock; then the schedule, not this machine's speed, decides the steps
    robot.clock.budget_s, robot.steps, robot.clock._t0 = 10.0, 0, None
    robot.stamps.clear()
    for now in (0.0, dt, 3.5 * dt, 5.0 * dt):
        robot.step(dt, 50.0 + now)
        steps.append(robot.steps)
    assert steps == [1, 2, 4, 6]
    assert np.diff(robot.stamps) / 1e9 == pytest.approx([dt, 2 * dt, 2 * dt], abs=1e-6)
    assert robot.clock.dropped_s == 0.0
