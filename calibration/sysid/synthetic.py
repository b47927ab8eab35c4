"""Synthetic flight logs with hidden, known parameters: the ground truth for replay and identification tests.

The simulated quadrotor (:class:`sim.quadrotor.env.QuadrotorEnv`, one env, float32, five physics substeps) is
given the hidden parameters and an integer actuation latency, and is flown by a controller in the loop the
deploy runtime runs: noisy measured state -> ``deploy.observation.ObservationBuilder`` -> controller -> motor
command, with a random excitation added to the motors and random setpoints, so that every parameter shows in
the data. Everything is written with the real :class:`deploy.recording.FlightRecorder` on the topics and
message types a deploy run writes (pose, twist, observation, action, motor command, safety transitions,
timing). Simulated time, not wall time: a 60 s log takes a few seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deploy.msgs import MotorCommand, make_header
from deploy.observation import Context, ObservationBuilder
from deploy.recording import FlightRecorder
from deploy.state_wire import state_messages
from drivers.robot import RobotState
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.params import QuadrotorParams
from sim.randomization import ParamDistribution, RandomizationSpec

# a controller maps the observation (D,) to the physical command (4,) RPM, like an exported policy
Controller = Callable[[np.ndarray], np.ndarray]
T0_NS = 1_000_000_000_000  # an arbitrary monotonic start time of the run


@dataclass
class SyntheticFlight:
    """What to fly. ``params`` are hidden from the identification; ``action_latency`` in control steps.

    noise: multiplier of the observation spec's sensor noise on the logged state (position 2 mm, velocity
    5 mm/s, gyro 5 mrad/s at 1); excitation: amplitude of the random per-motor dither, normalized action
    units, held for 2-6 control steps; setpoint_m / setpoint_s: random setpoints within +-setpoint_m around
    (0, 0, 1), a new one every setpoint_s seconds (0 = hover at (0, 0, 1)).
    action_shift: log each action one cycle late (a timing bug); obs_transform: applied to the observation
    the controller sees and the log records (a different observation pipeline).
    """

    seconds: float = 30.0
    control_hz: float = 100.0
    params: QuadrotorParams = field(default_factory=QuadrotorParams)
    action_latency: int = 1
    noise: float = 1.0
    excitation: float = 0.1
    setpoint_m: float = 0.5
    setpoint_s: float = 1.5
    seed: int = 0
    action_shift: int = 0
    obs_transform: Callable[[np.ndarray], np.ndarray] | None = None


def hidden_params(**ratios: float) -> QuadrotorParams:
    """The nominal Crazyflie profile with parameters scaled by ``ratios`` (inertia and drag: all components)."""
    p = QuadrotorParams()
    changes = {}
    for name, ratio in ratios.items():
        value = getattr(p, name)
        changes[name] = tuple(v * ratio for v in value) if isinstance(value, tuple) else value * ratio
    return p.replace(**changes)


def pid_controller(control_hz: float, nominal: QuadrotorParams | None = None) -> Controller:
    """The PID baseline (policies/baselines/pid.py) with nominal parameters, as a physical-command controller."""
    from deploy.observation import TERMS
    from policies.baselines.pid import QuadrotorPID
    from sim.obs_spec import ObsSpec
    from sim.quadrotor.actions import action_spec

    cfg = QuadrotorTaskCfg(control_hz=control_hz, params=nominal or QuadrotorParams())
    spec = action_spec("rpm", cfg.params, cfg.max_body_rate_rad_s)
    # the terms a robot state gives (the PID reads its inputs by name)
    obs_spec = ObsSpec(tuple(t for t in cfg.policy_obs_spec().terms if t.name in TERMS))
    pid = QuadrotorPID(obs_spec, spec, cfg.params, cfg.control_dt, 1)

    def act(obs: np.ndarray) -> np.ndarray:
        a = pid.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        return spec.to_physical(a.astype(np.float64))

    act.obs_spec = obs_spec  # type: ignore[attr-defined]
    act.action_spec = spec  # type: ignore[attr-defined]
    return act


def fly(path: str | Path, flight: SyntheticFlight, controller: Controller | None = None) -> dict[str, float]:
    """Fly ``flight`` and record it to the MCAP file ``path``. ``controller`` needs ``obs_spec`` and
    ``action_spec`` attributes (an exported policy has them); default: the PID baseline. Returns the truth."""
    controller = controller or pid_controller(flight.control_hz)
    obs_spec, spec = controller.obs_spec, controller.action_spec  # type: ignore[attr-defined]
    env = _make_env(flight)
    # the simulator's rpm action reaches down to 2 hover - max rpm of its (hidden) profile only: log what it applies
    floor = np.maximum(spec.low, env.action_spec.to_physical(-np.ones(4)))
    builder = ObservationBuilder(obs_spec, 1.0 / flight.control_hz)
    rng = np.random.default_rng(flight.seed)
    dt, n = 1.0 / flight.control_hz, round(flight.seconds * flight.control_hz)
    std = {t.name: t.noise_std * flight.noise for t in obs_spec.terms}
    meta = {"sim2real": {"synthetic": "true", "observation_spec": obs_spec.to_json(), "action_spec": spec.to_json()}}
    recorder = FlightRecorder(path, metadata=meta, max_queue=1_000_000)
    last_action = np.zeros(spec.dim, dtype=np.float32)
    target, dither, hold, logged = np.array([0.0, 0.0, 1.0]), np.zeros(4), 0, []
    reference, smooth = target.copy(), 1.0 - math.exp(-dt / 0.4)  # setpoints reached through a 0.4 s lag
    recorder.write_safety_transition("DISARMED", "ARMING", "arm requested", "", T0_NS)
    recorder.write_safety_transition("ARMING", "ACTIVE", "motors spun up", "", T0_NS + 1)
    try:
        for k in range(n):
            stamp = T0_NS + round(k * dt * 1e9)
            if flight.setpoint_s > 0 and k % round(flight.setpoint_s * flight.control_hz) == 0 and k > 0:
                target = np.array([0.0, 0.0, 1.0]) + rng.uniform(-1, 1, 3) * flight.setpoint_m
            reference += (target - reference) * smooth
            state = _measure(env, rng, std, stamp)
            if state.quaternion[1] ** 2 + state.quaternion[2] ** 2 > 0.25:  # tilt > 60 deg
                raise RuntimeError(
                    f"the controller lost the vehicle at t = {k * dt:.2f} s (tilt > 60 deg); lower the excitation "
                    f"({flight.excitation}) or the setpoint range ({flight.setpoint_m} m)"
                )
            pose, twist, _ = state_messages(
                stamp, state.position, state.quaternion, state.linear_velocity, state.angular_velocity
            )  # as a robot publishes them: the twist in the body frame (deploy/state_wire.py)
            recorder.write_state(pose, stamp)
            recorder.write_state(twist, stamp)
            obs = builder.build(state, Context(reference, np.zeros(3), last_action))
            if flight.obs_transform is not None:
                obs = flight.obs_transform(obs).astype(np.float32)
            t_inf = time.perf_counter()
            command = np.asarray(controller(obs), dtype=np.float64)
            inference = time.perf_counter() - t_inf
            if hold <= 0:
                dither, hold = rng.uniform(-1, 1, 4) * flight.excitation, int(rng.integers(2, 7))
            hold -= 1
            command = np.clip(command + dither * np.asarray(spec.scale), floor, spec.high)
            last_action = np.clip(spec.to_normalized(command), -1.0, 1.0).astype(np.float32)
            recorder.write_observation(obs.tolist(), stamp)
            logged.append(last_action.tolist())
            if len(logged) > flight.action_shift:
                recorder.write_action(logged[-1 - flight.action_shift], stamp)
            recorder.write_command(MotorCommand(make_header(stamp), [float(v) for v in command]), stamp)
            recorder.write_timing(inference, dt, float(rng.normal(0, 2e-5)), 0, stamp)
            env.step(env.action_spec.to_normalized(torch.as_tensor(command, dtype=torch.float32))[None])
        recorder.write_safety_transition("ACTIVE", "DISARMED", "flight plan complete", "", T0_NS + round(n * dt * 1e9))
    finally:
        recorder.close()
    p = flight.params
    return {**{k: v for k, v in p.to_dict().items() if k != "name"}, "action_latency": flight.action_latency}


def _make_env(flight: SyntheticFlight):
    from sim.quadrotor.env import QuadrotorEnv

    cfg = QuadrotorTaskCfg(control_hz=flight.control_hz, params=flight.params)
    const = ParamDistribution("constant", mean=float(flight.action_latency), operation="absolute")
    cfg.randomization = RandomizationSpec({"action_latency": const}, name="synthetic-hidden")
    cfg.episode_s = 1e6
    cfg.init = InitCfg(0.0, 0.0, 0.0, 0.0)
    cfg.termination.floor_m = -math.inf
    cfg.termination.position_m = cfg.termination.speed_m_s = cfg.termination.angular_velocity_rad_s = 1e3
    if hasattr(cfg, "integral_observation"):  # the env's own observations are not used here: keep the layout
        cfg.integral_observation = False  # the one-pass native kernel supports (40 us per step instead of 4 ms)
        cfg.observation_history = 0
    env = QuadrotorEnv(cfg, 1, seed=flight.seed, native=None)
    env.set_state_rows("position", torch.tensor([[0.0, 0.0, 1.0]]))
    env.set_state_rows("velocity", torch.zeros(1, 3))
    env.set_state_rows("rotor_rpm", torch.full((1, 4), flight.params.hover_rpm))
    return env


def _measure(env, rng: np.random.Generator, std: dict[str, float], stamp: int) -> RobotState:
    def row(name: str) -> np.ndarray:
        return env.state_rows(name)[0].double().numpy()

    q = row("quaternion")
    tilt = rng.normal(0, std.get("rotation_matrix", 0.0), 3)  # small-angle attitude noise, rad
    dq = np.array([1.0, *(0.5 * tilt)])
    q = _qmul(q, dq / np.linalg.norm(dq))
    return RobotState(
        stamp * 1e-9,
        row("position") + rng.normal(0, std.get("position_error", 0.0), 3),
        q,
        row("velocity") + rng.normal(0, std.get("linear_velocity", 0.0), 3),
        row("angular_velocity") + rng.normal(0, std.get("angular_velocity", 0.0), 3),
    )


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, v1, w2, v2 = a[0], a[1:], b[0], b[1:]
    return np.concatenate([[w1 * w2 - v1 @ v2], w1 * v2 + w2 * v1 + np.cross(v1, v2)])
