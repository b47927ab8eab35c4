"""The quadrotor fallback controller on vehicles of the default randomization: crashes, height lost, drift.

Each vehicle is drawn by the project's simulator from the default randomization (launch/randomization/
crazyflie2_base.yaml: mass, inertia, kf, motor lags 0.012-0.11 s up and 0.026-0.26 s down, per-rotor thrust and lag
factors, a centre of mass up to 1 mm off, thrust curve, battery sag, latency). It hovers level and still at 0.6 m
on equal motor speeds that carry its weight (found by bisection): what a policy would command without the torque it
holds against the vehicle's imperfections. Then the fallback controller (deploy/safety/quadrotor_control.py, quadrotor_motors.py) flies
it for ``--seconds``: 1 s of hold, then the descent at 0.3 m/s. It reads the state ``delay`` control periods old
(with that stamp), as a runtime reads a state that crossed a network, and its commands take the vehicle's own
action latency on top.

Configurations (``--configs``), each adding to the one before:
- ``before``: the controller before session 20: nominal thrust, PD attitude loop, no motor model;
- ``thrust``: + the thrust scale the layer learns in flight (here the vehicle's true one, deploy/safety/trim.py);
- ``lead``: + the motor lead (``gains.motor_lead_gain``);
- ``observer``: + the torque observer (``gains.torque_observer_s``): the defaults of session 20;
- ``now``: + the state carried forward to now over its age (``gains.state_prediction_max_s``): the defaults.

A crash: tilt beyond 60 deg at any time, or below 0.1 m in the hold. Prints one JSON object per configuration and
delay. ``python benchmarks/fallback_vehicles.py --vehicles 96 --delays 0 1 2 3 4 5``

``--task-starts [--configs ...]``: instead, the vehicles start where the hover task starts an episode (up to 0.5 m
and 0.5 m/s off per axis, tilted up to 0.6 rad, turning at up to 2 rad/s per axis) and the fallback flies them to
the task's reference point and holds there, each reading the state its own observation latency old; crashes are
the task's terminations, by total delay and motor spin-down quintile: the corner where hover policies crash, flown
by a controller that models the motors. ``python benchmarks/fallback_vehicles.py --task-starts --vehicles 1024
--seconds 3``

``--sil 0 1 2 3 4 5 [--configs ...] [--sil-repeats K]``: instead, real flights over DDS (``sim2real deploy --sil``,
the SIL vehicle of each seed, the committed hover policy) with a spoofer's burst 2 s after arming, in the climb (the
flight of tests/deploy/test_fault_injection_dds.py), each seed with the fallback of ``before`` and of ``now`` (or of
the configurations named); per flight: the height lost in the 1 s hold, how far from the fault point it landed, its
largest distance from it; then the medians per configuration. One flight of a seed varies from the next (the
fault's height in the climb): repeat them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bridge_latency import cpu_model
from deploy.safety import crazyflie_profile
from deploy.safety.limits import QuadrotorLimits
from deploy.safety.quadrotor_control import GRAVITY_M_S2, HoverDescendController
from sim.quadrotor.config import InitCfg, QuadrotorTaskCfg
from sim.quadrotor.env import QuadrotorEnv
from sim.quadrotor.terms import failure_any

START_Z_M = 0.6
CRASH_TILT_DEG = 60.0
CRASH_HEIGHT_M = 0.1
CONFIGS = ("before", "thrust", "lead", "observer", "now")


def fallback_limits(config: str) -> tuple[QuadrotorLimits, bool]:
    """The safety profile's quadrotor limits for ``config`` and whether its thrust scale is used."""
    limits = crazyflie_profile().quadrotor
    if config not in CONFIGS:
        raise ValueError(f"unknown configuration {config!r}; expected one of {CONFIGS}")
    gains = limits.gains
    if config in ("before", "thrust"):
        gains = replace(gains, motor_lead_gain=0.0, torque_observer_s=0.0, state_prediction_max_s=0.0)
    elif config == "lead":
        gains = replace(gains, torque_observer_s=0.0, state_prediction_max_s=0.0)
    elif config == "observer":
        gains = replace(gains, state_prediction_max_s=0.0)
    return replace(limits, gains=gains), config != "before"


@dataclass
class Vehicles:
    """``n`` simulated vehicles (seeded) and the equal motor speed [RPM] (n,) that carries each one."""

    env: QuadrotorEnv
    hover_rpm: np.ndarray

    @classmethod
    def draw(cls, n: int, seed: int = 0) -> Vehicles:
        cfg = QuadrotorTaskCfg()
        cfg.episode_s = 1e6  # no episode ends: the vehicles fly until this script stops
        cfg.init = InitCfg(0.0, 0.0, 0.0, 0.0)
        cfg.termination.floor_m = -math.inf
        cfg.termination.position_m = cfg.termination.speed_m_s = 1e3
        cfg.termination.angular_velocity_rad_s = 1e3
        vehicles = cls(QuadrotorEnv(cfg, n, seed=seed), np.zeros(n))
        low, high = np.full(n, 5000.0), np.full(n, 21000.0)
        for _ in range(18):  # bisection on the vertical speed after 50 ms at equal motor speeds
            rpm = (low + high) / 2
            vehicles.place(1.0, rpm)
            for _ in range(5):
                vehicles.step(np.repeat(rpm[:, None], 4, axis=1))
            sinks = vehicles.env.state_rows("velocity")[:, 2].numpy() < 0
            low, high = np.where(sinks, rpm, low), np.where(sinks, high, rpm)
        vehicles.hover_rpm = (low + high) / 2
        return vehicles

    @property
    def n(self) -> int:
        return len(self.hover_rpm)

    def place(self, z_m: float, rpm: np.ndarray) -> None:
        """Level and still at height z_m, every rotor at ``rpm`` (n,)."""
        n, env = len(rpm), self.env
        env.set_state_rows("position", torch.tensor([[0.0, 0.0, z_m]]).repeat(n, 1))
        env.set_state_rows("velocity", torch.zeros(n, 3))
        env.set_state_rows("quaternion", torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1))
        env.set_state_rows("angular_velocity", torch.zeros(n, 3))
        env.set_state_rows("rotor_rpm", torch.as_tensor(np.repeat(rpm[:, None], 4, axis=1), dtype=torch.float32))

    def place_task_starts(self, reference: np.ndarray, seed: int) -> None:
        """The hover task's initial states around ``reference`` (3,) (sim.quadrotor.config.InitCfg, drawn as
        sim/quadrotor/reset_pool.py does: uniform offsets, the tilt axis uniform on the sphere and its angle uniform
        up to the maximum), every rotor at the vehicle's hover speed."""
        n, init, g = self.n, InitCfg(), np.random.default_rng(seed)
        axis = g.normal(size=(n, 3))
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        half = 0.5 * g.uniform(0.0, init.tilt_rad, n)
        rows = {
            "position": reference + g.uniform(-init.position_m, init.position_m, (n, 3)),
            "velocity": g.uniform(-init.velocity_m_s, init.velocity_m_s, (n, 3)),
            "quaternion": np.concatenate([np.cos(half)[:, None], axis * np.sin(half)[:, None]], axis=1),
            "angular_velocity": g.uniform(-init.angular_velocity_rad_s, init.angular_velocity_rad_s, (n, 3)),
            "rotor_rpm": np.repeat(self.hover_rpm[:, None], 4, axis=1),
        }
        for name, values in rows.items():
            self.env.set_state_rows(name, torch.as_tensor(values, dtype=torch.float32))

    def step(self, rpm: np.ndarray) -> None:
        action = self.env.action_spec.to_normalized(torch.as_tensor(rpm, dtype=torch.float32))
        self.env.step(action)

    def state(self) -> list[np.ndarray]:
        """Position, velocity (n, 3) world; quaternion (n, 4) wxyz; body rates (n, 3)."""
        names = ("position", "velocity", "quaternion", "angular_velocity")
        return [self.env.state_rows(name).numpy().astype(float) for name in names]

    def thrust_scale(self, limits: QuadrotorLimits) -> np.ndarray:
        """(n,) the weight-carrying thrust in the nominal mapping over the profile's weight: what the layer learns."""
        body = limits.body
        return 4 * body.kf_n_per_rpm2 * self.hover_rpm**2 / (body.mass_kg * GRAVITY_M_S2)


def commands(controllers: list, history: list, delays: np.ndarray, sent: np.ndarray, period: float) -> np.ndarray:
    """One control period's commands (n, 4): each controller reads its vehicle's state ``delays[i]`` periods old
    (with that stamp) and is told what was sent last. ``history``: the states so far, the newest last."""
    k = len(history) - 1
    now = k * period
    command = np.empty((len(controllers), 4))
    for i, controller in enumerate(controllers):
        seen = max(0, k - int(delays[i]))
        p, v, q, w = (h[i] for h in history[seen])
        controller.motors.sent(now, sent[i])
        command[i] = controller.command(now, p, v, q, w, stamp_s=seen * period)
    return command


def command_step(
    vehicles: Vehicles, controllers: list, history: list, delays: np.ndarray, sent: np.ndarray, period: float
) -> np.ndarray:
    """One control period: :func:`commands`, applied (with the vehicle's own action latency on top). Returns them."""
    command = commands(controllers, history, delays, sent, period)
    vehicles.step(command)
    return command


def task_start_fleet(
    n: int, seed: int, config: str = "now", start_seed: int | None = None
) -> tuple[Vehicles, list[HoverDescendController], np.ndarray]:
    """``n`` vehicles drawn with ``seed`` at the hover task's initial states (drawn with ``start_seed``, default
    ``seed``), each with the fallback of ``config`` holding the task's reference point (never descending), told its
    vehicle's thrust scale where the configuration uses one. Returns (vehicles, controllers, reference (3,))."""
    limits, scaled = fallback_limits(config)
    limits = replace(limits, fallback=replace(limits.fallback, hover_s=math.inf))  # hold, never descend
    fleet = Vehicles.draw(n, seed)
    reference = np.array([0.0, 0.0, QuadrotorTaskCfg().termination.reference_height_m])
    fleet.place_task_starts(reference, seed if start_seed is None else start_seed)
    controllers = [HoverDescendController(limits) for _ in range(fleet.n)]
    scales = fleet.thrust_scale(limits) if scaled else np.ones(fleet.n)
    for controller, scale in zip(controllers, scales):
        controller.thrust_scale = float(scale)
        controller.start(0.0, reference)
    return fleet, controllers, reference


def task_failed(state: list[np.ndarray], reference: np.ndarray) -> np.ndarray:
    """(n,) bool: the hover task's own failure test (sim/quadrotor/terms.py, as its env applies it) on ``state``
    (:meth:`Vehicles.state`): the floor, the distance to ``reference`` per axis, the speed, the body rate."""
    term = QuadrotorTaskCfg().termination
    p, v, _q, w = state
    rows = [torch.as_tensor(x.T) for x in (p - reference, v, w)]
    limits = (term.position_m, term.speed_m_s, term.angular_velocity_rad_s, term.floor_m)
    return failure_any(*rows, torch.as_tensor(p[:, 2]), limits).numpy()


def fly(vehicles: int, seed: int, config: str, delay: int, seconds: float = 2.0) -> dict:
    """Fallbacks of ``vehicles`` vehicles drawn with ``seed`` (drawn again for each call: a vehicle's battery,
    disturbances and noise move on while it flies, so the same draw gives the same flight whatever ran before) under
    ``config``, with the state ``delay`` periods old; metrics as a dict."""
    limits, scaled = fallback_limits(config)
    vehicles = Vehicles.draw(vehicles, seed)
    period = 0.01
    controllers = [HoverDescendController(limits) for _ in range(vehicles.n)]
    scales = vehicles.thrust_scale(limits) if scaled else np.ones(vehicles.n)
    sent = np.repeat(vehicles.hover_rpm[:, None], 4, axis=1)
    for controller, scale in zip(controllers, scales):
        controller.thrust_scale = float(scale)
    vehicles.place(START_Z_M, vehicles.hover_rpm)
    history, heights, tilts, drifts = [], [], [], []
    delays = np.full(vehicles.n, delay)
    for _ in range(round(seconds / period)):
        history.append(vehicles.state())
        sent = command_step(vehicles, controllers, history, delays, sent, period)
        position, quat = history[-1][0], history[-1][2]
        heights.append(position[:, 2])
        drifts.append(np.hypot(position[:, 0], position[:, 1]))
        tilts.append(np.degrees(np.arccos(np.clip(1 - 2 * (quat[:, 1] ** 2 + quat[:, 2] ** 2), -1.0, 1.0))))
    heights, tilts, drifts = np.array(heights), np.array(tilts), np.array(drifts)
    hold = round(limits.fallback.hover_s / period)
    crashed = (tilts.max(0) > CRASH_TILT_DEG) | (heights[:hold].min(0) < CRASH_HEIGHT_M)
    lost = START_Z_M - heights[:hold].min(0)

    def quantiles(x: np.ndarray) -> list[float]:
        return [round(float(np.percentile(x, 50)), 3), round(float(np.percentile(x, 90)), 3)]

    return {
        "config": config,
        "delay_periods": delay,
        "vehicles": vehicles.n,
        "crash_percent": round(100.0 * float(crashed.mean()), 1),
        "max_tilt_deg_p50_p90": quantiles(tilts.max(0)),
        "height_lost_in_hold_m_p50_p90": quantiles(lost),
        "drift_at_hold_end_m_p50_p90": quantiles(drifts[hold - 1]),
        "drift_at_end_m_p50_p90": quantiles(drifts[-1]),
    }


def fly_task_starts(vehicles: int, seed: int, config: str = "now", seconds: float = 3.0) -> dict:
    """The fallback of ``config`` flying vehicles of the default randomization from the hover task's initial states
    to the task's reference point (its hold point), each reading the state its own observation latency old: where
    a hover policy crashes (the task's terminations: the floor, 2 m from the reference on an axis, 10 m/s, 35
    rad/s). Crash rates by total delay (action + observation latency, periods) and motor spin-down quintile."""
    fleet, controllers, reference = task_start_fleet(vehicles, seed, config)
    env, period = fleet.env, 0.01
    obs_latency = env.param("obs_latency")[:, 0].round().long().numpy()
    delay = obs_latency + env.param("action_latency")[:, 0].round().long().numpy()
    tau_down = env.param("motor_tau_down")[:, 0].numpy()
    sent = np.repeat(fleet.hover_rpm[:, None], 4, axis=1)
    history: list = []
    crashed = np.zeros(fleet.n, bool)
    for _ in range(round(seconds / period)):
        history.append(fleet.state())
        crashed |= task_failed(history[-1], reference)
        sent = command_step(fleet, controllers, history, obs_latency, sent, period)
    edges = np.quantile(tau_down, [0.2, 0.4, 0.6, 0.8])
    quintile = np.digitize(tau_down, edges)

    def rate(mask: np.ndarray) -> float | None:
        return round(float(crashed[mask].mean()), 3) if mask.any() else None

    error = np.linalg.norm(history[-1][0] - reference, axis=1)[~crashed]
    return {
        "config": config,
        "vehicles": fleet.n,
        "seconds": seconds,
        "crash_percent": round(100.0 * float(crashed.mean()), 2),
        "crashes": int(crashed.sum()),
        "error_at_end_m_p50_p90": [round(float(np.percentile(error, q)), 3) for q in (50, 90)] if error.size else None,
        "tau_down_quintile_edges_s": [round(float(e), 3) for e in edges],
        "crash_rate_by_delay_and_tau_down_quintile": {
            str(d): [rate((delay == d) & (quintile == q)) for q in range(5)] for d in np.unique(delay).tolist()
        },
        "vehicles_by_delay": {str(d): int((delay == d).sum()) for d in np.unique(delay).tolist()},
    }


def sil_flight(seed: int, config: str) -> dict:
    """One spoof-burst flight of SIL vehicle ``seed`` with the fallback of ``config`` (a name of CONFIGS)."""
    import tempfile

    import yaml

    from tests.deploy.test_fault_injection_dds import (
        dds_env,
        deploy,
        finish,
        injected_at,
        ns,
        poses,
        spoof,
        write_profile,
    )
    from tests.domains import random_domain

    with tempfile.TemporaryDirectory() as tmp:
        namespace, env = ns(), dds_env(random_domain())
        path = write_profile(Path(tmp), namespace)
        doc = yaml.safe_load(path.read_text())
        doc["sil"]["seed"] = seed
        limits, scaled = fallback_limits(config)
        quadrotor = doc["safety"].setdefault("quadrotor", {})
        names = ("motor_lead_gain", "torque_observer_s", "state_prediction_max_s")
        quadrotor.setdefault("gains", {}).update({k: getattr(limits.gains, k) for k in names})
        if not scaled:
            quadrotor.setdefault("fallback", {})["thrust_scale_range"] = [1.0, 1.0]
        path.write_text(yaml.safe_dump(doc))
        log = Path(tmp) / "run.mcap"
        proc = deploy(path, log, env)
        t_inject = injected_at(spoof("far", namespace, env, delay_s=2.0))
        _, summary, err = finish(proc)
        track = poses(log, namespace)
    after = track[track[:, 0] > t_inject]
    if len(after) < 2:
        return {"seed": seed, "config": config, "error": err[-500:]}
    hold = after[after[:, 0] < after[0, 0] + 1.0]
    from_fault = np.hypot(after[:, 1] - after[0, 1], after[:, 2] - after[0, 2])
    return {
        "seed": seed,
        "config": config,
        "end": summary.get("transitions", ["?"])[-1].split("]: ")[-1],
        "fault_z_m": round(float(after[0, 3]), 3),
        "height_lost_in_hold_m": round(float(after[0, 3] - hold[:, 3].min()), 3),
        "landed_from_fault_m": round(float(from_fault[-1]), 3),
        "max_from_fault_m": round(float(from_fault.max()), 3),
        "fallback_s": round(float(after[-1, 0] - after[0, 0]), 2),
    }


def sil_medians(flights: list[dict]) -> dict:
    """Median of each measured figure over ``flights`` (those that flew), and how many flew."""
    flown = [f for f in flights if "error" not in f]
    keys = ("height_lost_in_hold_m", "landed_from_fault_m", "max_from_fault_m", "fallback_s")
    return {"flights": len(flown), **{k: round(float(np.median([f[k] for f in flown])), 3) for k in keys if flown}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vehicles", type=int, default=96)
    ap.add_argument("--delays", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--configs", nargs="+", choices=CONFIGS, help="default: all; with --sil: before, now")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--sil", type=int, nargs="+", metavar="SEED", help="SIL flights over DDS of these vehicle seeds")
    ap.add_argument("--sil-repeats", type=int, default=1, help="flights per seed and configuration (they vary)")
    ap.add_argument("--task-starts", action="store_true", help="from the hover task's initial states (see above)")
    args = ap.parse_args()
    if args.task_starts:
        if args.vehicles < 1 or args.seconds <= 0:
            ap.error("--vehicles >= 1 and --seconds > 0")
        for config in args.configs or ["before", "now"]:
            print(json.dumps({**fly_task_starts(args.vehicles, args.seed, config, args.seconds), "cpu": cpu_model()}))
        return
    if args.sil:
        if args.sil_repeats < 1:
            ap.error(f"--sil-repeats: expected >= 1 flights, got {args.sil_repeats}")
        configs = args.configs or ["before", "now"]
        flights: dict[str, list[dict]] = {c: [] for c in configs}
        for repeat in range(args.sil_repeats):
            for seed in args.sil:
                for config in configs:  # alternated, so that a slow minute of the host falls on both
                    flights[config].append(sil_flight(seed, config))
                    print(json.dumps({**flights[config][-1], "repeat": repeat, "cpu": cpu_model()}), flush=True)
        print(json.dumps({"medians": {c: sil_medians(f) for c, f in flights.items()}, "cpu": cpu_model()}))
        return
    if args.vehicles < 1 or min(args.delays) < 0 or args.seconds <= 1.0:
        ap.error("--vehicles >= 1, --delays >= 0 and --seconds > 1 (the hold is 1 s)")
    for delay in args.delays:
        for config in args.configs or CONFIGS:
            result = fly(args.vehicles, args.seed, config, delay, args.seconds)
            print(json.dumps({**result, "cpu": cpu_model()}), flush=True)


if __name__ == "__main__":
    main()
