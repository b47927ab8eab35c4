"""MuJoCo (C) engine on the CPU: ``mujoco.batch.Batch`` behind the :class:`~sim.articulated.engine.Engine` contract.

The batch steps the envs on its own C++ thread pool, which runs without the GIL; its results are bit-identical to a
loop of ``mj_step`` over one MjData per env. It is not persistent: each thread loads an env's state row into its own
MjData, steps it and saves the row (with the solver's warm start), so the MjData stays in cache; with one MjData per
env (``persistent=True``) a 2048-env Go2 took 40 % longer (96 against 68 ms per control step of 4 physics steps,
2 threads, 2-vCPU Intel Xeon family 6 model 167, 2026-12-07): a cold MjData per env and call. State fields
(qpos, qvel, ctrl) are views of the batch's state rows and derived fields (xpos, sensordata, ...) views of its
output buffers, so the torch tensors here share memory with the batch (``torch.from_numpy``, no copies).
Per-env parameters are the batch's expanded model fields (``Batch.expand``): one (N, ...) array per field,
read by each env's step; no MjModel copies.

Each step runs ``nstep`` calls of ``mj_step`` then, unless ``derive=False``, the position and velocity stages at the
new state (``stage=mjSTAGE_VEL``, ~40 % of a physics step); the derived fields the engine binds are copied out of
the thread's MjData after every call.
"""

from __future__ import annotations

import warnings

import mujoco
import numpy as np
import torch
from mujoco.batch import Batch

from sim.articulated.engine import SET_CONST_PARAMS, Engine

_VEL = int(mujoco.mjtStage.mjSTAGE_VEL)
_NONE = int(mujoco.mjtStage.mjSTAGE_NONE)


def _shared(array: np.ndarray) -> torch.Tensor:
    """A torch view of a (possibly read-only) numpy array; the contract forbids writes through it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


class MujocoEngine(Engine):
    """``num_envs`` simulations of ``model`` in MuJoCo on the CPU (float64).

    nthread: threads of the batch's pool, the caller's included (default: ``torch.get_num_threads()``).
    """

    name = "mujoco"

    def __init__(
        self, model: mujoco.MjModel, num_envs: int, device: str | torch.device = "cpu", nthread: int | None = None
    ):
        super().__init__(model, num_envs, device, torch.float64)
        if self.device.type != "cpu":
            raise ValueError(f"engine 'mujoco' runs on the CPU, got device {self.device}; use engine='mujoco_warp'")
        nthread = torch.get_num_threads() if nthread is None else int(nthread)
        if nthread < 1:
            raise ValueError(f"nthread must be >= 1, got {nthread}")
        self._batch = Batch(model, self.num_envs, nthread=nthread, persistent=False)
        b = self._batch
        self._qpos, self._qvel, self._ctrl = _shared(b.bind("qpos")), _shared(b.bind("qvel")), _shared(b.bind("ctrl"))
        self._xpos, self._xquat = _shared(b.bind("xpos")), _shared(b.bind("xquat"))
        self._site_xpos, self._sensordata = _shared(b.bind("site_xpos")), _shared(b.bind("sensordata"))
        b.reset()  # every env at the model's defaults, forwarded
        self._stale = np.zeros(self.num_envs, bool)  # envs whose parameters changed since their last forward
        self._stale_const = np.zeros(self.num_envs, bool)  # ... and need mj_setConst

    @property
    def nthread(self) -> int:
        return int(self._batch.nthread)

    # contract
    def step(self, ctrl: torch.Tensor, substeps: int = 1, derive: bool = True) -> None:
        substeps = self._check_substeps(substeps)
        ctrl = self._check_rows("ctrl", ctrl, self.num_envs, self.nu)
        self._ctrl.copy_(ctrl)
        self._apply_params()
        self._batch.step(nstep=substeps, stage=_VEL if derive else _NONE)

    def set_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        ids = self._env_ids(env_ids)
        qpos = self._check_rows("qpos", qpos, ids.numel(), self.nq)
        qvel = self._check_rows("qvel", qvel, ids.numel(), self.nv)
        if not ids.numel():
            return
        ids, order = torch.sort(ids)  # the batch takes sorted, unique ids
        if bool((ids[1:] == ids[:-1]).any()):
            raise ValueError("env_ids must not repeat an env")
        ids_np = ids.numpy().astype(np.int32)
        self._apply_params()
        self._batch.reset(ids_np, stage=_NONE)  # time, ctrl, act, warm start and the rest back to defaults
        self._qpos[ids] = qpos[order].to(torch.float64)
        self._qvel[ids] = qvel[order].to(torch.float64)
        self._batch.forward(ids_np, stage=_VEL)

    def forward(self) -> None:
        self._apply_params()
        self._batch.forward()

    def _write_params(self, name: str, env_ids: torch.Tensor | None, values: torch.Tensor) -> None:
        dest = self._batch.expand(name)
        src = values.detach().to("cpu", torch.float64).numpy()
        if env_ids is None:
            dest[...] = src
        else:
            dest[env_ids.numpy()] = src
        touched = (
            np.ones(self.num_envs, bool) if env_ids is None else np.isin(np.arange(self.num_envs), env_ids.numpy())
        )
        self._stale |= touched
        if name in SET_CONST_PARAMS:
            self._stale_const |= touched

    def _apply_params(self) -> None:
        """Derive what follows from parameters written since the last call (once per reset, not per parameter):
        mj_setConst where mass, inertia, CoM or armature changed, then the position and velocity stages, so that
        the derived fields of those envs are the new parameters' (each step recomputes every stage from the state
        row anyway)."""
        if self._stale_const.any():
            self._batch.set_const(np.flatnonzero(self._stale_const).astype(np.int32))
            self._stale_const[:] = False
        if self._stale.any():
            self._batch.forward(np.flatnonzero(self._stale).astype(np.int32), stage=_VEL)
            self._stale[:] = False

    def _read_params(self, name: str) -> torch.Tensor:
        expanded = self._batch.expanded(name)
        if expanded is None:  # never written: every env runs on the model's value
            return self.nominal(name).expand(self.num_envs, *self.nominal(name).shape).clone()
        return torch.from_numpy(np.array(expanded, dtype=np.float64))
