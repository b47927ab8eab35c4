"""The per-env parameter table of the quadrotor env: one (P, N) float32 tensor whose rows are named.

``param_rows[name]`` is the slice of rows of parameter ``name`` (1 row for a scalar, 3 for inertia, drag and the
disturbances); every randomizable parameter (:func:`nominal_values`) and every observation noise std
(``obs_noise.<term>``) has its rows. Draws (startup, reset, interval) write rows in place; the privileged observation
group is a fixed affine map of rows (:meth:`ParamTable._privileged_columns`), refreshed for the envs whose rows
changed. A part of :class:`sim.quadrotor.env.QuadrotorEnv`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sim.quadrotor.config import LATENCY_PARAMS, SUBSTEP_LATENCY, QuadrotorTaskCfg
from sim.quadrotor.dynamics import Imperfections, PhysParams
from sim.quadrotor.params import GRAVITY
from sim.sampling import apply_operation, components, transform_uniform


def nominal_values(cfg: QuadrotorTaskCfg) -> dict[str, list[float]]:
    """Every parameter a randomization spec may name for this task, with its nominal value."""
    p = cfg.params
    values = {
        "mass": [p.mass],
        "inertia": list(p.inertia),
        "kf": [p.kf],
        "km": [p.km],
        "motor_tau_up": [p.motor_tau_up],
        "motor_tau_down": [p.motor_tau_down],
        "drag": list(p.drag),
        "max_rpm": [p.max_rpm],
        # the vehicle's imperfections (sim.quadrotor.dynamics.Imperfections): nominal = the ideal model
        "motor_kf_scale": [1.0] * 4,
        "motor_tau_scale": [1.0] * 4,
        "thrust_curve": [0.0],
        "battery_sag": [0.0],
        "ground_effect": [0.0],
        "com_offset": [0.0, 0.0],
        "action_latency": [0.0],
        SUBSTEP_LATENCY: [0.0],
        "obs_latency": [0.0],
        "obs_noise_scale": [1.0],
        "disturbance_force": [0.0, 0.0, 0.0],
        "disturbance_torque": [0.0, 0.0, 0.0],
    }
    for term in cfg.base_obs_spec().terms:
        values[f"obs_noise.{term.name}"] = [term.noise_std]
    return values


class ParamTable:
    """Parameter table methods of :class:`~sim.quadrotor.env.QuadrotorEnv` (uses its cfg, device, generator,
    ``privileged`` buffer and ``privileged_spec``)."""

    def _init_params(self, cfg: QuadrotorTaskCfg) -> None:
        """Build the table at nominal values (checked against the randomization spec first), the latency depth and
        the interval draw groups."""
        nominal = nominal_values(cfg)
        cfg.check_randomization(nominal)  # unknown parameters, physically impossible draws
        rows, start = {}, 0
        for name, value in nominal.items():
            rows[name] = slice(start, start + len(value))
            start += len(value)
        self.param_rows = rows
        self.nominal = {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in nominal.items()}
        n = self.num_envs
        self.params = torch.cat([self.nominal[k] for k in nominal])[:, None].repeat(1, n).contiguous()
        spec = cfg.randomization
        most = {k: int(spec.terms[k].bounds()[1]) for k in LATENCY_PARAMS if k in spec}
        max_latency = max(most.values(), default=0)
        if SUBSTEP_LATENCY in spec and spec.terms[SUBSTEP_LATENCY].bounds()[1] > 0:
            max_latency = max(max_latency, most.get("action_latency", 0) + 1)  # the previous command is applied too
        self.latency_slots = max_latency + 1
        # the observation delay line only as long as the observation latency can be: a slot no env can select
        # would be read by every step all the same (72 B per env, from memory)
        self.obs_latency_slots = most.get("obs_latency", 0) + 1
        groups: dict[int, list[str]] = {}
        for name, d in sorted(cfg.randomization.terms.items()):
            if d.when == "interval":
                groups.setdefault(max(1, round(d.interval_s * cfg.control_hz)), []).append(name)
        self._interval_groups = tuple(groups.items())  # (period in control steps, parameter names)
        observed = ("obs_latency", "obs_noise_scale", "obs_noise.")
        self._interval_observed = any(k.startswith(observed) for _, names in self._interval_groups for k in names)
        self._draw_rows: dict[tuple[str, ...], Tensor] = {}

    def param(self, name: str) -> Tensor:
        """(N, C) current per-env values of parameter ``name``."""
        return self.params[self.param_rows[name]].T

    def set_param(self, name: str, values: Tensor | float, env_ids: Tensor | None = None) -> None:
        """Overwrite parameter ``name`` for ``env_ids`` (all envs when None); values broadcast to (n, C)."""
        rows = self.param_rows[name]
        ids = torch.arange(self.num_envs, device=self.device) if env_ids is None else env_ids
        target = self.params[rows][:, ids]
        values = torch.as_tensor(values, dtype=torch.float32, device=self.device)
        self.params[rows, ids] = (values.T if values.dim() == 2 else values).expand_as(target)
        self._refresh_privileged(ids)

    def phys_params(self, params: Tensor | None = None) -> PhysParams:
        """Per-env physical parameters as (N,) tensors."""
        p, r = self.params if params is None else params, self.param_rows
        jx, jy, jz = p[r["inertia"]].unbind(0)
        dx, dy, dz = p[r["drag"]].unbind(0)
        return PhysParams(
            p[r["mass"]][0], jx, jy, jz, p[r["kf"]][0], p[r["km"]][0], p[r["motor_tau_up"]][0],
            p[r["motor_tau_down"]][0], dx, dy, dz, p[r["max_rpm"]][0], torch.full_like(jx, self.cfg.params.arm_length),
        )  # fmt: skip

    def imperfections(self, params: Tensor | None = None) -> Imperfections:
        """Per-env imperfections of the vehicle (motor spread, thrust curve, battery sag, ground effect, CoM offset)."""
        p, r, cfg = self.params if params is None else params, self.param_rows, self.cfg
        com_x, com_y = p[r["com_offset"]].unbind(0)
        return Imperfections(
            tuple(p[r["motor_kf_scale"]].unbind(0)), tuple(p[r["motor_tau_scale"]].unbind(0)),
            p[r["thrust_curve"]][0], float(cfg.params.max_rpm), p[r["battery_sag"]][0], p[r["ground_effect"]][0],
            float(cfg.termination.floor_m), com_x, com_y,
        )  # type: ignore[arg-type]  # fmt: skip

    def _draw(self, names: list[str], ids: Tensor) -> None:
        """Draw ``names`` (sorted) for envs ``ids`` with one call on the env's generator."""
        if not names or ids.numel() == 0:
            return
        dists = [self.cfg.randomization.terms[k] for k in names]
        widths = [components(d, self.nominal[k].numel()) for k, d in zip(names, dists)]
        u = torch.rand(ids.numel(), sum(widths), generator=self.generator, device=self.device)
        values = [
            apply_operation(dist, self.nominal[name], transform_uniform(dist, block)).T
            for name, dist, block in zip(names, dists, u.split(widths, dim=1))
        ]
        # One scatter for every drawn row (one per parameter cost ~10 index_put calls per reset batch).
        key = tuple(names)
        if key not in self._draw_rows:
            rows = [torch.arange(self.param_rows[k].start, self.param_rows[k].stop) for k in names]
            self._draw_rows[key] = torch.cat(rows).to(self.device)[:, None]
        self.params[self._draw_rows[key], ids[None, :]] = torch.cat(values)

    def _sample_params(self, ids: Tensor, when: tuple[str, ...]) -> None:
        self._draw(sorted(k for k, d in self.cfg.randomization.terms.items() if d.when in when), ids)

    def _resample_intervals(self, due: tuple[Tensor, ...]) -> None:
        """Re-draw interval parameters; due[i] marks the envs whose i-th interval group is due (from advance)."""
        for (_, names), mask in zip(self._interval_groups, due):
            ids = mask.nonzero().squeeze(-1)
            if ids.numel():
                self._draw(names, ids)
                self._refresh_privileged(ids)

    def _privileged_columns(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Column c of the privileged group is ``params[row[c]] / div[c] * mul[c] (* scale[c])``: parameter ratios
        to nominal, latencies, disturbance force / weight and torque * 1e4 (see ``privileged_obs_spec``)."""
        r, nom, weight = self.param_rows, self.nominal, self.cfg.params.mass * GRAVITY
        ratios = ("mass", "inertia", "kf", "km", "motor_tau_up", "motor_tau_down")
        blocks = {
            "param_ratios": [(r[k], nom[k].tolist(), 1.0) for k in ratios],
            "latency": [(r[k], [1.0], 1.0) for k in LATENCY_PARAMS],
            "disturbance": [(r["disturbance_force"], [weight] * 3, 1.0), (r["disturbance_torque"], [1.0] * 3, 1e4)],
        }
        rows, div, mul, scale = [], [], [], []
        for term in self.privileged_spec.terms:
            for sl, divisors, factor in blocks[term.name]:
                rows += range(sl.start, sl.stop)
                div += divisors
                mul += [factor] * len(divisors)
            scale += [term.scale] * term.size
        if len(rows) != self.privileged_spec.dim:
            raise ValueError(f"privileged spec {self.privileged_spec.names} does not match the columns built here")
        dev = self.device
        col = torch.tensor(div, dtype=torch.float32, device=dev)[:, None], torch.tensor(mul, device=dev)[:, None]
        s = None if all(x == 1.0 for x in scale) else torch.tensor(scale, device=dev)[:, None]
        return torch.tensor(rows, device=dev), *col, s

    @property
    def _kernel_privileged(self) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """(buffer, rows, div, mul) for the kernel's reset to rewrite the privileged group, or None where it
        cannot (scaled columns, a non-contiguous buffer): then :meth:`_refresh_privileged` does."""
        rows, div, mul, scale = self._privileged
        if scale is not None or not self.privileged.is_contiguous():
            return None
        if self._privileged_flat is None or self._privileged_flat[0] is not self.privileged:
            self._privileged_flat = (self.privileged, rows, div[:, 0].contiguous(), mul[:, 0].contiguous())
        return self._privileged_flat

    def _refresh_privileged(self, ids: Tensor) -> None:
        rows, div, mul, scale = self._privileged
        values = self.params[rows[:, None], ids[None, :]] / div * mul
        self.privileged[ids] = (values if scale is None else values * scale).T
