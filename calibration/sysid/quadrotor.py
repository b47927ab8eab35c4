"""Quadrotor identification model for :mod:`calibration.sysid.core`.

Per usable control step k -> k+1 (rows of :class:`SysIdData`), with R, v, w at the midpoint of the step and the
rotor means of :mod:`calibration.sysid.motors` for candidate motor constants and latency:

- body specific force  f = R^T ((v[k+1] - v[k]) / dt + g e_z):
    f_z = (kf/m) sum(mean r^2) - (d_z/m) S v_bz;  f_x = -(d_x/m) S v_bx + b_x (same for y),
  S = summed mean rotor speed in rad/s (the simulator's rotor drag model);
- body angular acceleration  w' = (w[k+1] - w[k]) / dt:
    w'_x = (kf/J_x) T_x - ((J_z - J_y)/J_x) w_y w_z + b,  T_x = a (-F1 - F2 + F3 + F4), a = arm / sqrt(2)
    w'_y = (kf/J_y) T_y - ((J_x - J_z)/J_y) w_z w_x + b,  T_y = a (-F1 + F2 + F3 - F4)
    w'_z = (km kf/J_z) T_z - ((J_y - J_x)/J_z) w_x w_y + b,  T_z = F1 - F2 + F3 - F4,  Fi = mean r_i^2.
Each line is linear in its coefficients (six least-squares problems; b absorbs constant biases such as a
centre-of-mass offset). Flight data fix the ratios only: scaling mass, inertia, kf and drag together changes
nothing. One absolute value anchors them: kf (from a thrust stand, default: the profile's) or the mass (from
a scale). J_z comes from the gyroscopic terms only and km = c_z J_z / kf: without gyroscopic excitation only
c_z = km kf / J_z is determined (:mod:`calibration.sysid.identifiability` says so per parameter).
Uncertainties of derived values are propagated by sampling the least-squares covariances (and the anchor's);
each group's covariance is first inflated to its batch-means spread (model mismatch, correlated residuals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from calibration.sysid.core import Estimate, NonlinearParam, batched_lstsq
from calibration.sysid.data import SysIdData
from calibration.sysid.identifiability import batch_means_cov, product_snr, rate_noise_std, residual_correlation_factor
from calibration.sysid.motors import rotor_means
from deploy.replay.flight import rotations
from sim.quadrotor.params import GRAVITY, QuadrotorParams

RPM_TO_RAD_S = 2.0 * math.pi / 60.0
GROUPS = ("force_z", "force_x", "force_y", "rate_x", "rate_y", "rate_z")


class QuadrotorModel:
    """anchor: ("kf", N/RPM^2) or ("mass", kg); anchor_rel_std: its relative uncertainty."""

    discrete_name = "action_latency"

    def __init__(
        self,
        data: SysIdData,
        nominal: QuadrotorParams,
        substeps: int = 5,
        max_latency: int = 3,
        anchor: tuple[str, float] | None = None,
        anchor_rel_std: float = 0.02,
        samples: int = 4000,
        seed: int = 0,
    ):
        self.data, self.nominal, self.substeps = data, nominal, substeps
        self.anchor = anchor or ("kf", nominal.kf)
        if self.anchor[0] not in ("kf", "mass"):
            raise ValueError(f"anchor must be 'kf' or 'mass', got {self.anchor[0]!r}")
        self.anchor_rel_std = anchor_rel_std
        self.samples, self.seed = samples, seed
        self.discrete_values: Sequence[int] = tuple(range(max_latency + 1))
        self.nonlinear = (
            NonlinearParam("motor_tau_up", nominal.motor_tau_up, 0.004, 1.0, "s"),
            NonlinearParam("motor_tau_down", nominal.motor_tau_down, 0.004, 1.5, "s"),
        )
        d, dt = data, data.dt
        self.rows = np.nonzero(d.step_ok)[0]
        k = self.rows
        q_mid = (
            d.quaternion[k] + d.quaternion[k + 1] * np.sign(np.sum(d.quaternion[k] * d.quaternion[k + 1], 1))[:, None]
        )
        R = rotations(q_mid / np.linalg.norm(q_mid, axis=1, keepdims=True))
        acc = (d.velocity[k + 1] - d.velocity[k]) / dt + np.array([0.0, 0.0, GRAVITY])
        self.force = np.einsum("kji,kj->ki", R, acc)  # R^T acc
        self.v_body = np.einsum("kji,kj->ki", R, 0.5 * (d.velocity[k] + d.velocity[k + 1]))
        self.w = 0.5 * (d.angular_velocity[k] + d.angular_velocity[k + 1])
        self.w_dot = (d.angular_velocity[k + 1] - d.angular_velocity[k]) / dt
        self.arm = nominal.arm_length / math.sqrt(2.0)

    # ------------------------------------------------------------------ least squares
    def _problems(self, x: np.ndarray, discrete: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        means, _ = rotor_means(self.data.command, x[:, 0], x[:, 1], discrete, self.data.dt, self.substeps, r0=None)
        F = means.speed_sq[:, self.rows]  # (P, N, 4)
        S = means.speed[:, self.rows].sum(-1) * RPM_TO_RAD_S  # (P, N)
        p, n = F.shape[0], F.shape[1]
        one = np.ones((p, n))
        vb, w, a = self.v_body[None], self.w[None], self.arm
        tx = a * (-F[..., 0] - F[..., 1] + F[..., 2] + F[..., 3])
        ty = a * (-F[..., 0] + F[..., 1] + F[..., 2] - F[..., 3])
        tz = F[..., 0] - F[..., 1] + F[..., 2] - F[..., 3]
        wy_wz = np.broadcast_to(w[..., 1] * w[..., 2], (p, n))
        wz_wx = np.broadcast_to(w[..., 2] * w[..., 0], (p, n))
        wx_wy = np.broadcast_to(w[..., 0] * w[..., 1], (p, n))
        return [
            (np.stack([F.sum(-1), -S * vb[..., 2]], -1), self.force[:, 2]),
            (np.stack([-S * vb[..., 0], one], -1), self.force[:, 0]),
            (np.stack([-S * vb[..., 1], one], -1), self.force[:, 1]),
            (np.stack([tx, wy_wz, one], -1), self.w_dot[:, 0]),
            (np.stack([ty, wz_wx, one], -1), self.w_dot[:, 1]),
            (np.stack([tz, wx_wy, one], -1), self.w_dot[:, 2]),
        ]

    def profile_cost(self, x: np.ndarray, discrete: np.ndarray) -> np.ndarray:
        cost = np.zeros(len(x))
        for X, y in self._problems(np.asarray(x, dtype=np.float64), np.asarray(discrete, dtype=int)):
            _, rss, _ = batched_lstsq(X, y)
            cost += 0.5 * len(y) * np.log(rss / len(y))
        return cost

    def linear_fit(self, x: np.ndarray, discrete: int) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
        """Group -> (theta, covariance, residual RMS) at the given nonlinear values. The covariance is the least-
        squares one inflated to the batch-means spread over segments of the log (model mismatch, correlated
        residuals); ``self.correlation`` keeps each group's residual correlation factor."""
        out, self.correlation, self.regressors = {}, {}, {}
        for name, (X, y) in zip(GROUPS, self._problems(np.asarray(x, dtype=np.float64)[None], np.array([discrete]))):
            theta, rss, cov = batched_lstsq(X, y)
            out[name] = (theta[0], batch_means_cov(X[0], y, cov[0]), float(np.sqrt(rss[0] / len(y))))
            self.correlation[name] = residual_correlation_factor(y - X[0] @ theta[0])
            self.regressors[name] = X[0]
        return out

    def diagnostics(self, fitted: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> dict[str, object]:
        """Excitation of the regressors (signal / noise of the gyroscopic and drag regressors), the yaw ratio
        km kf / J_z, the constant terms b of the rate and lateral force equations, and per-group conditioning.
        Call after :meth:`linear_fit`."""
        sw = rate_noise_std(self.data.angular_velocity)
        sv = rate_noise_std(self.data.velocity)
        w, vb = self.w, self.v_body
        gyro = min(product_snr(w[:, 1], w[:, 2], sw[1], sw[2]), product_snr(w[:, 2], w[:, 0], sw[2], sw[0]))
        vel = {}
        for i, axis in enumerate("xyz"):
            noise = float(np.sqrt(np.mean(sv * sv)))
            vel[axis] = math.sqrt(max(float(np.mean(vb[:, i] ** 2)) - noise**2, 0.0)) / max(noise, 1e-300)
        th, cov, _ = fitted["rate_z"]
        groups = {}
        for g, X in self.regressors.items():
            Xs = X / (np.sqrt(np.mean(X * X, axis=0)) + 1e-300)
            corr = np.corrcoef(X[:, [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]].T)
            off = np.abs(corr - np.eye(len(corr))) if corr.ndim == 2 else np.zeros(1)
            groups[g] = {"condition": float(np.linalg.cond(Xs)), "max_correlation": float(off.max()),
                         "residual_correlation": self.correlation[g]}  # fmt: skip
        bias = {
            f"rate_{a}": (float(fitted[f"rate_{a}"][0][2]), float(np.sqrt(fitted[f"rate_{a}"][1][2, 2]))) for a in "xyz"
        }
        bias.update({f"force_{a}": (float(fitted[f"force_{a}"][0][1]), float(np.sqrt(fitted[f"force_{a}"][1][1, 1])))
                     for a in "xy"})  # fmt: skip
        return {
            "rate_noise_rad_s": sw.tolist(),
            "velocity_noise_m_s": sv.tolist(),
            "gyro_snr": gyro,
            "velocity_snr": vel,
            "yaw_ratio": (float(th[0]), float(np.sqrt(cov[0, 0]))),
            "bias": bias,
            "groups": groups,
            "correlation_factor": max(self.correlation.values()),
        }

    def motor_scales(self, x: np.ndarray, discrete: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-motor thrust scale (4,) (mean 1) from the vertical force equation with one column per motor, its
        standard deviation (batch means) and the condition number of the motor columns (a hover excites their
        differences only through attitude control)."""
        means, _ = rotor_means(self.data.command, x[None, 0], x[None, 1], np.array([discrete]), self.data.dt,
                               self.substeps, r0=None)  # fmt: skip
        F = means.speed_sq[0, self.rows]
        S = means.speed[0, self.rows].sum(-1) * RPM_TO_RAD_S
        X = np.concatenate([F, (-S * self.v_body[:, 2])[:, None]], 1)
        theta, _, cov = batched_lstsq(X[None], self.force[:, 2])
        cov = batch_means_cov(X, self.force[:, 2], cov[0])
        rng = np.random.default_rng(self.seed)
        draws = rng.multivariate_normal(theta[0], cov, self.samples)[:, :4]
        scales = 4.0 * draws / draws.sum(1, keepdims=True)
        point = 4.0 * theta[0, :4] / theta[0, :4].sum()
        cond = float(np.linalg.cond(F / np.sqrt(np.mean(F * F, axis=0))))
        return point, scales.std(0), cond

    # ------------------------------------------------------------------ physical estimates
    def estimates(self, x: np.ndarray, discrete: int, x_cov: np.ndarray) -> dict[str, Estimate]:
        fitted = self.linear_fit(x, discrete)
        rng = np.random.default_rng(self.seed)
        draws = {g: rng.multivariate_normal(th, cov, self.samples) for g, (th, cov, _) in fitted.items()}
        point = {g: th[None] for g, (th, _, _) in fitted.items()}
        name, value = self.anchor
        anchor_draws = value * (1.0 + self.anchor_rel_std * rng.standard_normal(self.samples))
        weight = _jz_weight(draws)
        samples = _physical(draws, anchor_draws, name, weight)
        best = _physical(point, np.array([value]), name, weight)
        nom = self.nominal
        nominal = {
            "mass": nom.mass,
            "kf": nom.kf,
            "km": nom.km,
            "inertia_x": nom.inertia[0],
            "inertia_y": nom.inertia[1],
            "inertia_z": nom.inertia[2],
            "drag_x": nom.drag[0],
            "drag_y": nom.drag[1],
            "drag_z": nom.drag[2],
        }
        units = {"mass": "kg", "kf": "N/RPM^2", "km": "m", "drag_x": "N s/m/(rad/s)"}
        out = {
            k: Estimate(
                float(best[k][0]), float(np.std(samples[k])), units.get(k, "kg m^2" if "inertia" in k else ""), v
            )
            for k, v in nominal.items()
        }
        out["drag_y"] = Estimate(out["drag_y"].value, out["drag_y"].std, units["drag_x"], nom.drag[1])
        out["drag_z"] = Estimate(out["drag_z"].value, out["drag_z"].std, units["drag_x"], nom.drag[2])
        sd = np.sqrt(np.maximum(np.diag(x_cov), 0.0))
        out["motor_tau_up"] = Estimate(float(x[0]), float(sd[0]), "s", nom.motor_tau_up)
        out["motor_tau_down"] = Estimate(float(x[1]), float(sd[1]), "s", nom.motor_tau_down)
        out["action_latency"] = Estimate(float(discrete), 0.0, "control steps", 0.0)
        self.residual_rms = {g: rms for g, (_, _, rms) in fitted.items()}
        return out


def _jz_parts(c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """J_x/kf, J_y/kf and the two estimates of J_z/kf from the gyroscopic terms of the x and y rate equations."""
    jx, jy = 1.0 / c["rate_x"][:, 0], 1.0 / c["rate_y"][:, 0]
    return jx, jy, jy - c["rate_x"][:, 1] * jx, jx + c["rate_y"][:, 1] * jy


def _jz_weight(draws: dict[str, np.ndarray]) -> float:
    """Inverse-variance weight of the x-equation estimate of J_z."""
    _, _, a, b = _jz_parts(draws)
    va, vb = np.var(a) + 1e-300, np.var(b) + 1e-300
    return float((1 / va) / (1 / va + 1 / vb))


def _physical(c: dict[str, np.ndarray], anchor: np.ndarray, anchor_name: str, wa: float) -> dict[str, np.ndarray]:
    """Linear coefficients (draws, (M, n) per group) + anchor (M,) -> physical parameters (M,) each."""
    kf_over_m = c["force_z"][:, 0]
    if anchor_name == "kf":
        kf, mass = anchor, anchor / kf_over_m
    else:
        mass, kf = anchor, anchor * kf_over_m
    jx, jy, jz_a, jz_b = _jz_parts(c)
    jz = wa * jz_a + (1 - wa) * jz_b
    return {
        "mass": mass,
        "kf": kf,
        "km": c["rate_z"][:, 0] * jz,
        "inertia_x": jx * kf,
        "inertia_y": jy * kf,
        "inertia_z": jz * kf,
        "drag_x": c["force_x"][:, 0] * mass,
        "drag_y": c["force_y"][:, 0] * mass,
        "drag_z": c["force_z"][:, 1] * mass,
    }
