"""Re-simulation: start the simulator at logged states, drive it with the logged motor commands, and measure how
far it drifts from the log over fixed horizons (the measured reality gap of a parameter set).

Uses the simulator's own batched torch dynamics (:func:`sim.quadrotor.dynamics.physics_step`, in float64, the
same substeps as training) so that the gap measured is the gap of the model a policy is trained in. Every
window is one env of the batch. A window starts at a logged state; rotor speeds, which a log does not hold,
are those of the motor model run along the whole log of commands (with the same time constants and latency).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calibration.errors import CalibrationError
from calibration.sysid.data import SysIdData
from calibration.sysid.motors import applied_commands, rotor_means
from sim.quadrotor.dynamics import Body, PhysParams, physics_step, step_coeffs
from sim.quadrotor.params import QuadrotorParams

HORIZONS_S = (0.1, 0.5, 1.0)


@dataclass
class Divergence:
    """Errors of the re-simulated state against the log at one horizon, over ``windows`` start states."""

    horizon_s: float
    windows: int
    position_m: dict[str, float]  # median, p90, mean of |p_sim - p_log|
    velocity_m_s: dict[str, float]
    attitude_deg: dict[str, float]
    angular_velocity_rad_s: dict[str, float]


def resimulate(
    data: SysIdData,
    params: QuadrotorParams,
    latency: int,
    *,
    substeps: int = 5,
    horizons_s: Sequence[float] = HORIZONS_S,
    stride_s: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
) -> list[Divergence]:
    """Divergence per horizon. ``latency``: actuation delay in control steps (as identified)."""
    steps = [max(1, round(h / data.dt)) for h in horizons_s]
    h_max = max(steps)
    ok = np.concatenate([data.step_ok, [False]])
    run = _run_lengths(ok)  # usable steps ahead of each row
    stride = max(1, round(stride_s / data.dt))
    starts = np.nonzero(run >= min(steps))[0][::stride]
    if len(starts) == 0:
        raise CalibrationError(
            f"{data.source}: no stretch of {horizons_s[0]} s of usable flight to re-simulate; the log is too short "
            "or too fragmented (dropped cycles, safety transitions)"
        )
    _, start_rpm = rotor_means(
        data.command,
        np.array([params.motor_tau_up]),
        np.array([params.motor_tau_down]),
        np.array([latency]),
        data.dt,
        substeps,
    )
    u = applied_commands(data.command, np.array([latency]))[0]  # (K, 4)
    b = _body(data, starts, start_rpm[0])
    phys = _phys(params, len(starts))
    coeffs = step_coeffs(phys, data.dt / substeps)
    zero = torch.zeros(len(starts), dtype=torch.float64)
    last = len(data.t) - 1
    errors: dict[int, dict[str, np.ndarray]] = {}
    for j in range(1, h_max + 1):
        idx = np.minimum(starts + j - 1, last)
        cmd = tuple(torch.as_tensor(u[idx, m], dtype=torch.float64).clamp(0.0, params.max_rpm) for m in range(4))
        for _ in range(substeps):
            b = physics_step(b, cmd, phys, coeffs, (zero, zero, zero), (zero, zero, zero), data.dt / substeps)
        if j in steps:
            errors[j] = _errors(b, data, np.minimum(starts + j, last))
        if progress is not None:
            progress(j, h_max)
    out = []
    for h, n in zip(horizons_s, steps):
        valid = run[starts] >= n
        e = {k: v[valid] for k, v in errors[n].items()}
        out.append(
            Divergence(
                float(h),
                int(valid.sum()),
                _stats(e["position"]),
                _stats(e["velocity"]),
                _stats(e["attitude"]),
                _stats(e["angular_velocity"]),
            )
        )
    return out


def _run_lengths(ok: np.ndarray) -> np.ndarray:
    """For each row, how many consecutive usable steps start there."""
    out = np.zeros(len(ok), dtype=int)
    count = 0
    for i in range(len(ok) - 1, -1, -1):
        count = count + 1 if ok[i] else 0
        out[i] = count
    return out


def _body(data: SysIdData, starts: np.ndarray, rpm: np.ndarray) -> Body:
    def col(a: np.ndarray, i: int) -> torch.Tensor:
        return torch.as_tensor(a[starts, i], dtype=torch.float64)

    rows = [col(data.position, i) for i in range(3)] + [col(data.velocity, i) for i in range(3)]
    rows += [col(data.quaternion, i) for i in range(4)] + [col(data.angular_velocity, i) for i in range(3)]
    rows += [col(rpm, i) for i in range(4)]
    return Body(*rows)


def _phys(p: QuadrotorParams, n: int) -> PhysParams:
    def full(v: float) -> torch.Tensor:
        return torch.full((n,), float(v), dtype=torch.float64)

    return PhysParams(
        full(p.mass),
        *(full(j) for j in p.inertia),
        full(p.kf),
        full(p.km),
        full(p.motor_tau_up),
        full(p.motor_tau_down),
        *(full(d) for d in p.drag),
        full(p.max_rpm),
        full(p.arm_length),
    )


def _errors(b: Body, data: SysIdData, k: np.ndarray) -> dict[str, np.ndarray]:
    pos = torch.stack([b.px, b.py, b.pz], -1).numpy()
    vel = torch.stack([b.vx, b.vy, b.vz], -1).numpy()
    quat = torch.stack([b.qw, b.qx, b.qy, b.qz], -1).numpy()
    rate = torch.stack([b.wx, b.wy, b.wz], -1).numpy()
    dot = np.clip(np.abs(np.sum(quat * data.quaternion[k], axis=1)), 0.0, 1.0)
    return {
        "position": np.linalg.norm(pos - data.position[k], axis=1),
        "velocity": np.linalg.norm(vel - data.velocity[k], axis=1),
        "attitude": np.degrees(2.0 * np.arccos(dot)),
        "angular_velocity": np.linalg.norm(rate - data.angular_velocity[k], axis=1),
    }


def _stats(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"median": float("nan"), "p90": float("nan"), "mean": float("nan")}
    return {"median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "mean": float(np.mean(x))}


def measure_gap(
    flight: object,
    profile: QuadrotorParams | Mapping[str, object] | str | Path | None = None,
    latency: int = 0,
    *,
    substeps: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Re-simulate a :class:`deploy.replay.Flight` with ``profile`` (parameters, a profile mapping such as an
    exported policy's, or a robot profile YAML; default: the nominal Crazyflie) and return the divergence per
    horizon as plain data (for reports and ``--json``)."""
    from calibration.sysid.data import from_flight

    if profile is None:
        params = QuadrotorParams()
    elif isinstance(profile, QuadrotorParams):
        params = profile
    elif isinstance(profile, Mapping):
        params = QuadrotorParams.from_dict(profile, source="policy metadata profile")
    else:
        params = QuadrotorParams.from_yaml(profile)
    data = from_flight(flight, params.hover_rpm, min_usable_s=0.5, max_rpm=params.max_rpm)  # type: ignore[arg-type]
    result = resimulate(data, params, latency, substeps=substeps, progress=progress)
    return {
        "profile": params.name,
        "latency_steps": latency,
        "usable_s": data.usable_s,
        "horizons": [
            {
                "horizon_s": d.horizon_s,
                "windows": d.windows,
                "position_m": d.position_m,
                "velocity_m_s": d.velocity_m_s,
                "attitude_deg": d.attitude_deg,
                "angular_velocity_rad_s": d.angular_velocity_rad_s,
            }
            for d in result
        ],
    }
