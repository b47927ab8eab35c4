"""Synthetic arm logs with hidden, known parameters: the ground truth for the arm identification tests.

One env of the MuJoCo CPU engine runs the profile's arm with the hidden :class:`ArmParams` under the training
env's actuators (:class:`~sim.articulated.actuators.JointActuators`, its own latency line in physics steps),
commanded with exciting joint targets: random steps around the default pose (held ``hold_s``) plus a small
sine per joint. Every control cycle writes the noisy measured joint state (``sensor_msgs/JointState``) and the
commanded targets (``sim2real_msgs/JointCommand``, as the runtime sends them) with the real
:class:`deploy.recording.FlightRecorder`. Simulated time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from calibration.sysid.articulated import ArmParams, ArmSimulator
from deploy.msgs import JointCommand, JointState, make_header
from deploy.recording import FlightRecorder

T0_NS = 1_000_000_000_000


@dataclass
class SyntheticArmRun:
    """What to run. ``params`` are hidden from the identification; ``latency`` in control steps.
    noise: measurement noise std of position (rad) and velocity (rad/s); step_rad: target steps U(-a, a)
    around the default pose, a new one every U(hold_s) seconds; sine_rad: amplitude of a 0.3-2 Hz sine per joint."""

    seconds: float = 8.0
    params: ArmParams = field(default_factory=ArmParams)
    latency: int = 1
    noise: tuple[float, float] = (2e-4, 5e-3)
    step_rad: float = 0.35
    hold_s: tuple[float, float] = (0.3, 0.8)
    sine_rad: float = 0.08
    seed: int = 0


def record_arm_run(path: str | Path, sim: ArmSimulator, run: SyntheticArmRun) -> dict[str, float]:
    """Run ``run`` on ``sim``'s arm and record it to the MCAP file ``path``. Returns the truth."""
    from sim.articulated.engine import make_engine

    prof, model = sim.profile, sim.model
    j, sub = prof.joints, prof.substeps
    J, dt = j.dim, prof.control_dt
    rng = np.random.default_rng(run.seed)
    e = make_engine(model, 1, "mujoco", nthread=1)
    for col, name in ((1, "dof_damping"), (2, "dof_frictionloss"), (3, "dof_armature")):
        table = e.nominal(name)[None].clone()
        table[:, sim.dadr] = run.params.row()[col]
        e.set_params(name, table)
    default = np.asarray(j.default_position_rad)
    qpos = torch.as_tensor(model.qpos0, dtype=torch.float64)[None].clone()
    qpos[:, sim.qadr] = torch.as_tensor(default)
    e.set_state(torch.arange(1), qpos, torch.zeros(1, e.nv, dtype=torch.float64))
    act = sim.actuators(1, max_delay=run.latency * sub)
    act.set_delay(torch.tensor([run.latency * sub]))
    act.reset(torch.arange(1), torch.as_tensor(default, dtype=torch.float32)[None])
    s = run.params.torque_scale
    act.kp_scale[:], act.kd_scale[:], act.strength[:] = s, s, s
    lo, hi = np.asarray(j.position_min_rad) + 0.1, np.asarray(j.position_max_rad) - 0.1
    freq, phase = rng.uniform(0.3, 2.0, J), rng.uniform(0, 2 * np.pi, J)
    step, hold = default.copy(), 0
    meta = {"sim2real": {"synthetic": "true", "robot": prof.name}}
    recorder = FlightRecorder(path, metadata=meta, max_queue=1_000_000)
    ctrl = torch.zeros(1, e.nu, dtype=torch.float64)
    zeros = [0.0] * J  # the runtime's JointCommand: targets with the profile's gains, no velocity or torque targets
    kp = list(np.broadcast_to(j.kp_nm_per_rad, J).astype(float))
    kd = list(np.broadcast_to(j.kd_nm_s_per_rad, J).astype(float))
    try:
        for k in range(round(run.seconds / dt)):
            stamp = T0_NS + round(k * dt * 1e9)
            q = e.qpos[0, sim.qadr].numpy() + rng.normal(0, run.noise[0], J)
            qd = e.qvel[0, sim.dadr].numpy() + rng.normal(0, run.noise[1], J)
            recorder.write_state(JointState(make_header(stamp), list(j.names), q.tolist(), qd.tolist(), []), stamp)
            if hold <= 0:
                step = default + rng.uniform(-1, 1, J) * run.step_rad
                hold = round(rng.uniform(*run.hold_s) / dt)
            hold -= 1
            target = np.clip(step + run.sine_rad * np.sin(2 * np.pi * freq * k * dt + phase), lo, hi)
            command = JointCommand(make_header(stamp), list(j.names), target.tolist(), zeros, zeros, kp, kd, "policy")
            recorder.write_command(command, stamp)
            tg = torch.as_tensor(target, dtype=torch.float32)[None]
            for _ in range(sub):
                ctrl[:] = act.torque(tg, e.qpos[:, sim.qadr], e.qvel[:, sim.dadr])
                e.step(ctrl)
    finally:
        recorder.close()
    truth = dict(zip(("torque_scale", "joint_damping", "joint_friction", "joint_armature"), run.params.row()))
    return {**truth, "action_latency": float(run.latency)}


def main(argv: list[str] | None = None) -> int:
    """``python -m calibration.sysid.synthetic_arm OUT.mcap``: a benchmark log with the tests' hidden parameters."""
    import argparse
    import json

    from sim.articulated.profile import load_profile

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("out")
    p.add_argument("--robot", default="franka")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--latency", type=int, default=1, help="control steps")
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args(argv)
    hidden = ArmParams(torque_scale=0.85, joint_damping=3.0, joint_friction=0.8, joint_armature=0.15)
    run = SyntheticArmRun(seconds=a.seconds, params=hidden, latency=a.latency, step_rad=0.25, seed=a.seed)
    print(json.dumps(record_arm_run(a.out, ArmSimulator(load_profile(a.robot)), run)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
