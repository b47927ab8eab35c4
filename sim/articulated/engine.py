"""Batched articulated-robot physics: one contract, two engines, one ``mujoco.MjModel``.

Tasks (``sim/articulated/tasks/``) code against :class:`Engine`; :func:`make_engine` picks the backend::

    engine = make_engine(model, num_envs=4096, engine="mujoco_warp", device="cuda")
    engine.set_params("geom_friction", friction)       # (N, ngeom, 3), per env
    engine.set_state(env_ids, qpos, qvel)              # reset some envs: (n,), (n, nq), (n, nv)
    engine.step(ctrl, substeps=4)                      # ctrl (N, nu) held for 4 physics steps
    base_height = engine.qpos[:, 2]                    # live view, changes in place at the next step

Engines
  ``"mujoco"``       MuJoCo (C) on the CPU: ``mujoco.batch.Batch`` (one MjData per env, stepped on a thread pool;
                     bit-identical to a loop of ``mj_step`` over one MjData per env). float64. device must be CPU.
  ``"mujoco_warp"``  MuJoCo Warp: all envs are worlds of one ``mjw.Data``; on CUDA the step is a captured graph,
                     and the tensors below share memory with the warp arrays (no copies). float32. Runs on the
                     CPU too (tests); there warp compiles its kernels once into its cache (~/.cache/warp).

State (torch tensors on ``engine.device`` in ``engine.dtype``: live, read-only views of the engine's storage; they
change in place at the next ``step``/``set_state``/``forward``: ``.clone()`` to keep a value, never write into them)
  qpos        (N, nq)           generalized positions; a free joint is [x y z (m, world), qw qx qy qz]
  qvel        (N, nv)           generalized velocities; a free joint is [linear (m/s, world), angular (rad/s, body)]
  ctrl        (N, nu)           the controls the last step applied (actuator units: N m for motors)
  xpos        (N, nbody, 3)     body frame origins, world frame, metres
  xquat       (N, nbody, 4)     body orientations, world frame, w-first
  site_xpos   (N, nsite, 3)     site positions, world frame, metres (end effectors, feet)
  sensordata  (N, nsensordata)  every sensor of the model; ``sensor(name)`` is the (N, dim) slice of one
  After ``step`` the state is the new one and xpos/xquat/site_xpos and position/velocity sensors are computed at
  it (the forward stages up to velocity, as ``mj_step1``); acceleration and force sensors (contact forces,
  touch, accelerometer) describe the last physics step's solve, as after ``mj_step``. ``step(..., derive=False)``
  skips the forward stages at the new state (derived fields one physics step behind, as after ``mj_step``).

Contacts: declare MuJoCo ``contact`` sensors in the model (MjSpec: :func:`add_contact_sensor`, e.g. one per foot
against the floor, ``reduce="netforce"``, data ``found force``): both engines compute them the same way, so
``engine.sensor("FR_foot_contact")`` is (N, 4) = [number of contacts found, net force x y z (N, world frame) that
body1 exerts on body2]: a foot standing on the floor reads (k, 0, 0, -m g share); the floor's push on it is minus it.

Per-env model parameters (:data:`PARAMS`: name -> per-env shape, unit): ``set_params(name, values, env_ids)``
writes ``values`` (n, *shape) into the engine's own per-env storage; ``get_params(name)`` reads it back (N, *shape)
as a copy; ``nominal(name)`` is the model's value. Writing a parameter in :data:`SET_CONST_PARAMS` (mass,
inertia, centre of mass, armature) also re-derives, per env, the constants MuJoCo computes from them at compile
time (``mj_setConst``: ``body_subtreemass``, ``body_invweight0``, ``dof_invweight0``, ...). Without it MuJoCo's
CPU engine mixes new and stale values: a free box whose mass was doubled fell at 2 g (measured). The derivation
runs once for all parameters written since the last ``step``/``set_state``/``forward``, at the next of these calls:
write every parameter of a reset, then ``set_state``.

Errors speak to the user: a wrong shape, an unknown parameter or engine raises ``ValueError`` naming what was
expected and what was found.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import mujoco
import numpy as np
import torch

ENGINES = ("mujoco", "mujoco_warp")

# name -> (per-env shape in model sizes, unit). Shapes name MjModel size attributes or are integers.
PARAMS: dict[str, tuple[tuple[str | int, ...], str]] = {
    "geom_friction": (("ngeom", 3), "sliding (-), torsional (m), rolling (m)"),
    "body_mass": (("nbody",), "kg"),
    "body_ipos": (("nbody", 3), "m, centre of mass in the body frame"),
    "body_inertia": (("nbody", 3), "kg m^2, principal moments"),
    "dof_damping": (("nv",), "N m s/rad (N s/m for slides)"),
    "dof_frictionloss": (("nv",), "N m (N for slides)"),
    "dof_armature": (("nv",), "kg m^2 (kg for slides)"),
    "actuator_gainprm": (("nu", 10), "actuator gain parameters (position actuator: [kp, 0, ...])"),
    "actuator_biasprm": (("nu", 10), "actuator bias parameters (position actuator: [0, -kp, -kd, ...])"),
}
SET_CONST_PARAMS = frozenset({"body_mass", "body_inertia", "body_ipos", "dof_armature"})


def param_shape(model: mujoco.MjModel, name: str) -> tuple[int, ...]:
    """Per-env shape of parameter ``name`` for ``model`` (e.g. ``(ngeom, 3)`` for geom_friction)."""
    if name not in PARAMS:
        raise ValueError(f"unknown model parameter {name!r}; the engines randomize {sorted(PARAMS)}")
    return tuple(int(getattr(model, d)) if isinstance(d, str) else int(d) for d in PARAMS[name][0])


def sensor_slices(model: mujoco.MjModel) -> dict[str, slice]:
    """Sensor name -> its columns of ``sensordata``."""
    out = {}
    for i in range(model.nsensor):
        adr, dim = int(model.sensor_adr[i]), int(model.sensor_dim[i])
        out[model.sensor(i).name or f"sensor{i}"] = slice(adr, adr + dim)
    return out


def add_contact_sensor(
    spec: mujoco.MjSpec, name: str, body1: str, body2: str | None = None, subtree: bool = False
) -> mujoco.MjsSensor:
    """Add a contact sensor to ``spec``: [contacts found, net force (3,) in N, world frame, that ``body1`` exerts on
    ``body2``] (``body2=None``: on anything). ``subtree``: match every body of body1's subtree."""
    kind = mujoco.mjtObj.mjOBJ_XBODY if subtree else mujoco.mjtObj.mjOBJ_BODY
    sensor = spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_CONTACT, objtype=kind, objname=body1)
    if body2 is not None:
        sensor.reftype = mujoco.mjtObj.mjOBJ_BODY
        sensor.refname = body2
    found = 1 << int(mujoco.mjtConDataField.mjCONDATA_FOUND)
    force = 1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE)
    sensor.intprm[:3] = [found | force, 3, 1]  # data fields, reduce = netforce, one slot
    return sensor


class Engine(abc.ABC):
    """N copies of one articulated model, stepped together. See the module docstring for the contract."""

    name: str
    model: mujoco.MjModel
    num_envs: int
    device: torch.device
    dtype: torch.dtype

    def __init__(self, model: mujoco.MjModel, num_envs: int, device: str | torch.device, dtype: torch.dtype):
        if not isinstance(model, mujoco.MjModel):
            raise ValueError(f"model must be a mujoco.MjModel, got {type(model).__name__}")
        if int(num_envs) <= 0:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.model = model
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.dtype = dtype
        self._sensors = sensor_slices(model)

    # sizes
    @property
    def nq(self) -> int:
        return int(self.model.nq)

    @property
    def nv(self) -> int:
        return int(self.model.nv)

    @property
    def nu(self) -> int:
        return int(self.model.nu)

    @property
    def nbody(self) -> int:
        return int(self.model.nbody)

    # state views, (N, ...) torch tensors: live views of the engine's memory that subclasses set up as self._<name>
    @property
    def qpos(self) -> torch.Tensor:
        return self._qpos

    @property
    def qvel(self) -> torch.Tensor:
        return self._qvel

    @property
    def ctrl(self) -> torch.Tensor:
        return self._ctrl

    @property
    def xpos(self) -> torch.Tensor:
        return self._xpos

    @property
    def xquat(self) -> torch.Tensor:
        return self._xquat

    @property
    def site_xpos(self) -> torch.Tensor:
        return self._site_xpos

    @property
    def sensordata(self) -> torch.Tensor:
        return self._sensordata

    def sensor(self, name: str) -> torch.Tensor:
        """(N, dim) columns of sensor ``name`` in ``sensordata``."""
        if name not in self._sensors:
            raise ValueError(f"the model has no sensor {name!r}; its sensors: {sorted(self._sensors)}")
        return self.sensordata[:, self._sensors[name]]

    # actions
    @abc.abstractmethod
    def step(self, ctrl: torch.Tensor, substeps: int = 1, derive: bool = True) -> None:
        """Apply ``ctrl`` (N, nu) and advance every env by ``substeps`` physics steps (``model.opt.timestep`` s each),
        holding ``ctrl`` constant. ``derive=False`` leaves the derived fields (xpos, xquat, site_xpos, position and
        velocity sensors) where the last physics step computed them, one physics step behind the new state, as
        after a bare ``mj_step``: for the inner steps of a control period whose caller reads only qpos and qvel
        (an explicit PD), where computing them at every new state is wasted work."""

    @abc.abstractmethod
    def set_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Start envs ``env_ids`` (n,) afresh from ``qpos`` (n, nq) and ``qvel`` (n, nv): time, controls, actuator
        activations and the solver's warm start are zeroed, then the derived quantities are computed."""

    @abc.abstractmethod
    def forward(self) -> None:
        """Recompute every env's derived quantities (``mj_forward``) at the current state without stepping."""

    @abc.abstractmethod
    def _write_params(self, name: str, env_ids: torch.Tensor | None, values: torch.Tensor) -> None: ...

    @abc.abstractmethod
    def _read_params(self, name: str) -> torch.Tensor: ...

    # per-env model parameters
    def set_params(self, name: str, values: torch.Tensor, env_ids: torch.Tensor | None = None) -> None:
        """Write per-env parameter ``name``: values (N, *shape) for all envs, or (n, *shape) for ``env_ids`` (n,)."""
        shape = param_shape(self.model, name)
        n = self.num_envs if env_ids is None else int(torch.as_tensor(env_ids).numel())
        values = torch.as_tensor(values)
        if tuple(values.shape) != (n, *shape):
            raise ValueError(
                f"{name} values must have shape {(n, *shape)} (envs, *per-env shape), got {tuple(values.shape)}"
            )
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"{name} values must be finite")
        ids = None if env_ids is None else self._env_ids(env_ids)
        self._write_params(name, ids, values)

    def get_params(self, name: str) -> torch.Tensor:
        """(N, *shape) copy of parameter ``name`` as the engine stores it (what the physics uses)."""
        param_shape(self.model, name)
        return self._read_params(name)

    def nominal(self, name: str) -> torch.Tensor:
        """(*shape) the model's value of parameter ``name`` (float64, CPU)."""
        shape = param_shape(self.model, name)
        return torch.from_numpy(np.array(getattr(self.model, name), dtype=np.float64).reshape(shape))

    # helpers for subclasses
    def _env_ids(self, env_ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
        ids = torch.as_tensor(env_ids).reshape(-1)
        if ids.dtype == torch.bool:
            raise ValueError("env_ids must be integer indices, got a boolean mask (use mask.nonzero().squeeze(-1))")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_envs):
            raise ValueError(f"env_ids must lie in [0, {self.num_envs}), got {int(ids.min())}..{int(ids.max())}")
        return ids.to(torch.long)

    def _check_rows(self, what: str, value: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        value = torch.as_tensor(value)
        if tuple(value.shape) != (rows, cols):
            raise ValueError(f"{what} must have shape {(rows, cols)}, got {tuple(value.shape)}")
        return value

    def _check_substeps(self, substeps: int) -> int:
        if int(substeps) != substeps or substeps < 1:
            raise ValueError(f"substeps must be a positive integer, got {substeps}")
        return int(substeps)


def make_engine(
    model: mujoco.MjModel,
    num_envs: int,
    engine: str = "mujoco",
    device: str | torch.device = "cpu",
    **options: object,
) -> Engine:
    """Build ``num_envs`` copies of ``model`` on ``engine`` ("mujoco" | "mujoco_warp") and ``device``.

    options: "mujoco": ``nthread`` (default: all CPUs torch uses). "mujoco_warp": ``nconmax`` (contacts per world),
    ``njmax`` (constraint rows per world), ``graph`` (capture the step as a CUDA graph; default on CUDA).
    Every env starts at the model's default state (``qpos0``, zero velocity), forwarded.
    """
    if engine == "mujoco":
        from sim.articulated.mujoco_engine import MujocoEngine

        return MujocoEngine(model, num_envs, device=device, **options)
    if engine == "mujoco_warp":
        from sim.articulated.warp_engine import WarpEngine

        return WarpEngine(model, num_envs, device=device, **options)
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
