"""System identification of an articulated robot (an arm: Franka) by re-simulating logged segments.

The log gives, per control cycle, the measured joint state (``sensor_msgs/JointState`` on ``state/joints``:
position rad, velocity rad/s) and the commanded joint targets on ``command/joints`` (``JointCommand``, or a
``JointState`` from other stacks; position field, rad). Short segments of the log are re-simulated with the MuJoCo CPU engine (``mujoco.batch``), each
starting at the logged state and driven by the logged targets through the training env's own actuator code
(:class:`~sim.articulated.actuators.JointActuators`: PD at every physics step, torque limits); the simulated
joint trajectories are compared with the logged ones.

Parameters (one value shared by every joint; see :data:`PARAMS`): ``torque_scale`` (the motor strength: a factor
on the PD torque and on its limit), ``joint_damping`` (N m s/rad), ``joint_friction`` (dry friction loss, N m),
``joint_armature`` (kg m^2) and the action latency in whole control steps. All four continuous ones enter the
simulation nonlinearly, so there is no linear sub-problem: the core's CMA-ES searches them in log space, one run
per latency, and every candidate of every run is one group of envs of a single batched engine (P candidates x S
segments envs per call). The cost is the Gaussian negative log-likelihood of the position and velocity
residuals with their variance profiled out; its curvature gives the standard deviations. Residuals of a
simulated trajectory are correlated in time, so those are lower bounds (the tests state the tolerances met).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calibration.sysid.core import Estimate, NonlinearParam
from sim.articulated.actuators import JointActuators
from sim.articulated.profile import ArticulatedProfile
from sim.articulated.robots import joint_dof_addresses, joint_qpos_addresses, load_model

log = logging.getLogger(__name__)

STATE_TOPIC = "/sim2real/state/joints"
COMMAND_TOPIC = "/sim2real/command/joints"
# fitted name -> (search range low, high, unit, RandomizationSpec name)
PARAMS: dict[str, tuple[float, float, str, str]] = {
    "torque_scale": (0.3, 3.0, "-", "motor_strength"),
    "joint_damping": (0.01, 30.0, "N m s/rad", "joint_damping"),
    "joint_friction": (1e-3, 20.0, "N m", "joint_friction"),
    "joint_armature": (0.005, 2.0, "kg m^2", "joint_armature"),
}


@dataclass
class JointLog:
    """A logged run at the control rate. t: (K,) s; q, qd: (K, J) measured rad, rad/s; target: (K, J) rad,
    the target commanded at cycle k (after measuring q[k]); joint names in the profile's order."""

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    target: np.ndarray
    names: tuple[str, ...]

    @property
    def control_dt(self) -> float:
        return float(np.median(np.diff(self.t)))


def read_joint_log(path: str | Path, names: tuple[str, ...], *, typestore: str = "humble") -> JointLog:
    """Joint states and joint commands of the log at ``path``, joints reordered to ``names`` (by name where the
    messages carry names). Each state is paired with the command stamped at or just after it (same cycle)."""
    from deploy.replay.errors import ReplayError
    from deploy.replay.sources import read_messages

    raw = read_messages(path, {STATE_TOPIC, COMMAND_TOPIC}, typestore=typestore)
    rows: dict[str, list[tuple[int, list[float], list[float]]]] = {STATE_TOPIC: [], COMMAND_TOPIC: []}
    for m in raw.messages:
        msg = raw.decoded(m)
        order = _order(list(msg.name), names, m.topic)
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        pos = [float(msg.position[i]) for i in order]
        vel = [float(msg.velocity[i]) for i in order] if len(msg.velocity) else [np.nan] * len(names)
        rows[m.topic].append((stamp or m.log_time_ns, pos, vel))
    for topic, what in ((STATE_TOPIC, "joint states"), (COMMAND_TOPIC, "joint commands")):
        if len(rows[topic]) < 10:
            raise ReplayError(
                f"{path}: found {len(rows[topic])} {what} on {topic}; an arm identification needs the measured "
                f"joint states and the commanded targets of every control cycle ({sorted(raw.topics)} in the log)"
            )
    st = sorted(rows[STATE_TOPIC], key=lambda r: r[0])
    cm = sorted(rows[COMMAND_TOPIC], key=lambda r: r[0])
    ts, tc = np.array([r[0] for r in st]), np.array([r[0] for r in cm])
    pick = np.searchsorted(tc, ts)  # the first command at or after each state
    keep = pick < len(tc)
    target = np.array([r[1] for r in cm])[pick[keep]]
    q, qd = np.array([r[1] for r in st])[keep], np.array([r[2] for r in st])[keep]
    if np.isnan(qd).any():
        raise ReplayError(f"{path}: the joint states carry no velocities; log JointState.velocity (rad/s)")
    return JointLog((ts[keep] - ts[0]) * 1e-9, q, qd, target, names)


def _order(logged: list[str], names: tuple[str, ...], topic: str) -> list[int]:
    if not logged:
        return list(range(len(names)))
    missing = [n for n in names if n not in logged]
    if missing:
        from deploy.replay.errors import ReplayError

        raise ReplayError(
            f"{topic} carries joints {logged}; the robot profile expects {list(names)} ({missing} missing)"
        )
    return [logged.index(n) for n in names]


@dataclass(frozen=True)
class ArmParams:
    """One parameter set (shared by every joint): see :data:`PARAMS`."""

    torque_scale: float = 1.0
    joint_damping: float = 1.0
    joint_friction: float = 0.0
    joint_armature: float = 0.1

    def row(self) -> list[float]:
        return [self.torque_scale, self.joint_damping, self.joint_friction, self.joint_armature]


class ArmSimulator:
    """Batched re-simulation of a profile's arm: P parameter sets x S segments as P*S envs of one engine."""

    def __init__(self, profile: ArticulatedProfile, nthread: int | None = None):
        self.profile = profile
        self.model = load_model(profile)
        j = profile.joints
        self.qadr = torch.as_tensor(joint_qpos_addresses(self.model, j.names))
        self.dadr = torch.as_tensor(joint_dof_addresses(self.model, j.names))
        self.nthread = nthread
        self._engines: dict[int, object] = {}

    def nominal(self) -> ArmParams:
        d = self.profile.dynamics

        def mean(v) -> float:  # a per-joint profile value becomes its mean (one value is fitted for all joints)
            return float(np.mean(np.atleast_1d(v)))

        return ArmParams(1.0, mean(d.damping_nm_s_per_rad), mean(d.frictionloss_nm), mean(d.armature_kg_m2))

    def _engine(self, n: int):
        from sim.articulated.engine import make_engine

        if n not in self._engines:
            if len(self._engines) > 4:
                self._engines.clear()
            self._engines[n] = make_engine(self.model, n, "mujoco", nthread=self.nthread)
        return self._engines[n]

    def rollout(
        self, params: np.ndarray, q0: np.ndarray, qd0: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """params: (P, 4) rows of :class:`ArmParams`; q0, qd0: (S, J) start states; targets: (P, S, H, J) the
        target applied during each control step (latency already applied). Returns q, qd (P, S, H, J): the state
        after each control step."""
        P, S, H, J = targets.shape
        n = P * S
        e = self._engine(n)
        p = np.repeat(np.asarray(params, dtype=np.float64), S, axis=0)  # (n, 4)
        for col, field in ((1, "dof_damping"), (2, "dof_frictionloss"), (3, "dof_armature")):
            table = e.nominal(field).expand(n, -1).clone()
            table[:, self.dadr] = torch.as_tensor(p[:, col : col + 1]).expand(n, J)
            e.set_params(field, table)
        qpos = torch.as_tensor(self.model.qpos0, dtype=torch.float64).expand(n, -1).clone()
        qvel = torch.zeros(n, e.nv, dtype=torch.float64)
        qpos[:, self.qadr] = torch.as_tensor(np.tile(q0, (P, 1)))
        qvel[:, self.dadr] = torch.as_tensor(np.tile(qd0, (P, 1)))
        e.set_state(torch.arange(n), qpos, qvel)
        act = self.actuators(n)
        scale = torch.as_tensor(p[:, :1], dtype=torch.float32).expand(n, J)
        act.kp_scale[:], act.kd_scale[:], act.strength[:] = scale, scale, scale
        tg = torch.as_tensor(targets.reshape(n, H, J), dtype=torch.float32)
        q_out, qd_out = np.empty((n, H, J)), np.empty((n, H, J))
        ctrl = torch.zeros(n, e.nu, dtype=torch.float64)
        for h in range(H):
            for _ in range(self.profile.substeps):
                ctrl[:] = act.torque(tg[:, h], e.qpos[:, self.qadr], e.qvel[:, self.dadr])
                e.step(ctrl)
            q_out[:, h], qd_out[:, h] = e.qpos[:, self.qadr].numpy(), e.qvel[:, self.dadr].numpy()
        return q_out.reshape(P, S, H, J), qd_out.reshape(P, S, H, J)

    def actuators(self, n: int, max_delay: int = 0) -> JointActuators:
        """The profile's actuators for n envs (a latency line of ``max_delay`` physics steps)."""
        j, a = self.profile.joints, self.profile.actuator
        return JointActuators(
            torch.tensor(j.kp_nm_per_rad), torch.tensor(j.kd_nm_s_per_rad), torch.tensor(j.effort_limit_nm), n,
            "cpu", model=a.model, stall_torque=a.stall_torque_nm, max_velocity=a.max_velocity_rad_s,
            max_delay=max_delay,
        )  # fmt: skip


class ArmModel:
    """:class:`~calibration.sysid.core.SeparableModel` of an arm: 4 continuous parameters, latency discrete.

    segments: S windows of ``horizon`` control steps each, spread evenly over the log (after ``max_latency``
    cycles, so every latency has the targets it needs)."""

    discrete_name = "action_latency"

    def __init__(
        self, data: JointLog, sim: ArmSimulator, *, max_latency: int = 3, segments: int = 12, horizon: int = 20
    ):
        K = len(data.t)
        if K < max_latency + horizon + 2:
            raise ValueError(f"the log has {K} control cycles; need at least {max_latency + horizon + 2}")
        last = K - horizon - 1
        count = max(1, min(segments, (last - max_latency) // horizon + 1))
        self.starts = np.unique(np.linspace(max_latency, last, count).round().astype(int))
        self.data, self.sim, self.horizon = data, sim, horizon
        self.discrete_values = list(range(max_latency + 1))
        nom = sim.nominal()
        init = {"joint_friction": max(nom.joint_friction, 0.1)}
        self.nonlinear = [
            NonlinearParam(k, init.get(k, getattr(nom, k)), lo, hi, unit) for k, (lo, hi, unit, _) in PARAMS.items()
        ]
        steps = self.starts[:, None] + np.arange(horizon)[None]  # (S, H) cycle of each step
        self._q_true, self._qd_true = data.q[steps + 1], data.qd[steps + 1]
        self._steps = steps

    def residuals(self, x: np.ndarray, latency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x: (P, 4), latency: (P,) control steps -> position, velocity residuals (P, S, H, J)."""
        idx = self._steps[None] - np.asarray(latency, dtype=int)[:, None, None]  # (P, S, H)
        q, qd = self.sim.rollout(x, self.data.q[self.starts], self.data.qd[self.starts], self.data.target[idx])
        return q - self._q_true, qd - self._qd_true

    def profile_cost(self, x: np.ndarray, discrete: np.ndarray) -> np.ndarray:
        eq, eqd = self.residuals(x, discrete)
        n = eq[0].size
        cost = 0.5 * n * (np.log(np.mean(eq**2, axis=(1, 2, 3))) + np.log(np.mean(eqd**2, axis=(1, 2, 3))))
        return np.where(np.isfinite(cost), cost, 1e30)

    def rms(self, x: np.ndarray, latency: int) -> dict[str, float]:
        """Re-simulation RMS error over the segments: position rad, velocity rad/s."""
        eq, eqd = self.residuals(np.asarray(x, dtype=np.float64)[None], np.array([latency]))
        return {"position_rad": float(np.sqrt(np.mean(eq**2))), "velocity_rad_s": float(np.sqrt(np.mean(eqd**2)))}

    def estimates(self, x: np.ndarray, discrete: int, x_cov: np.ndarray) -> dict[str, Estimate]:
        nom = self.sim.nominal()
        out = {
            k: Estimate(float(v), float(np.sqrt(max(x_cov[i, i], 0.0))), PARAMS[k][2], getattr(nom, k))
            for i, (k, v) in enumerate(zip(PARAMS, x))
        }
        out["action_latency"] = Estimate(float(discrete), 0.0, "control steps", 0.0)
        return out


def fit_arm(
    model: ArmModel,
    *,
    seed: int = 0,
    popsize: int = 8,
    cma_generations: int = 10,
    lm_iterations: int = 15,
    progress=None,
):
    """A few CMA-ES generations per latency (the core's :func:`~calibration.sysid.core.fit`, global and
    derivative-free), then Levenberg-Marquardt on the residuals in log space from each latency's best point, every
    latency's candidates in one batched call (forward differences: 1 + 4 envs groups per latency and iteration).
    The covariance is (J^T J)^-1 of the noise-normalised residuals at the optimum. Returns a core FitResult."""
    import time

    from calibration.sysid.core import FitResult, fit

    start = time.perf_counter()
    coarse = fit(model, seed=seed, popsize=popsize, max_generations=cma_generations, progress=progress)
    lats = list(model.discrete_values)
    lo = np.log([p.low for p in model.nonlinear])
    hi = np.log([p.high for p in model.nonlinear])
    z0 = np.log([coarse.estimates[p.name].value for p in model.nonlinear])
    rms = model.rms(np.exp(z0), coarse.discrete)
    scales = (rms["position_rad"], rms["velocity_rad_s"])  # fixed weights: costs compare across steps and latencies
    n, h = len(z0), 1e-3
    trial = {v: z0.copy() for v in lats}  # every latency starts from the coarse optimum
    acc: dict[int, tuple[np.ndarray, float, np.ndarray, np.ndarray]] = {}  # z, cost, J, r at the accepted point
    lam = dict.fromkeys(lats, 1e-2)
    evaluations = coarse.evaluations
    for it in range(lm_iterations):
        pts = np.concatenate([np.vstack([trial[v], trial[v] + h * np.eye(n)]) for v in lats])
        r = _normalised(model, np.exp(pts), np.repeat(lats, n + 1), scales)
        evaluations += len(pts)
        for i, v in enumerate(lats):
            r0, rs = r[i * (n + 1)], r[i * (n + 1) + 1 : (i + 1) * (n + 1)]
            c0 = float(r0 @ r0)
            if v not in acc or c0 <= acc[v][1]:
                acc[v] = (trial[v], c0, ((rs - r0) / h).T, r0)
                lam[v] = max(lam[v] / 3, 1e-7)
            else:
                lam[v] *= 10
            z, _, J, r_acc = acc[v]
            A = J.T @ J
            step = -np.linalg.solve(A + lam[v] * np.diag(np.diag(A) + 1e-12), J.T @ r_acc)
            trial[v] = np.clip(z + step, lo, hi)
        if progress is not None:
            progress(it + 1, lm_iterations)
    best = min(lats, key=lambda v: acc[v][1])
    z, _, J, r = acc[best]
    x = np.exp(z)
    cov_log = _sandwich(J, r, len(model.starts))
    est = model.estimates(x, best, cov_log * np.outer(x, x))
    nll = {v: float(model.profile_cost(np.exp(acc[v][0])[None], np.array([v]))[0]) for v in lats}
    seconds = time.perf_counter() - start
    log.info(
        "arm fit: latency %d control steps, %s in %.1f s", best, {k: round(e.value, 4) for k, e in est.items()}, seconds
    )
    return FitResult(est, int(best), nll[best], nll, evaluations, seconds, coarse.generations + lm_iterations)


def _normalised(model: ArmModel, x: np.ndarray, latency: np.ndarray, scales: tuple[float, float]) -> np.ndarray:
    """(P, M) position and velocity residuals divided by their scales (rad, rad/s): weighted least squares."""
    eq, eqd = model.residuals(x, latency)
    P = len(x)
    return np.concatenate([eq.reshape(P, -1) / scales[0], eqd.reshape(P, -1) / scales[1]], axis=1)


def _sandwich(J: np.ndarray, r: np.ndarray, segments: int) -> np.ndarray:
    """Covariance of the log-parameters, robust to residuals correlated within a segment (a simulated trajectory's
    errors are): A^-1 (sum over segments of g_s g_s^T) A^-1 with A = J^T J, g_s = J_s^T r_s. J: (M, n), r: (M,),
    both laid out as [positions (S, H, J), velocities (S, H, J)]."""
    from calibration.sysid.core import _inverse

    n = J.shape[1]
    seg = np.tile(np.repeat(np.arange(segments), len(r) // (2 * segments)), 2)
    g = np.stack([J[seg == s].T @ r[seg == s] for s in range(segments)])  # (S, n)
    A_inv = _inverse(J.T @ J)
    return A_inv @ (g.T @ g) * segments / max(segments - n, 1) @ A_inv
