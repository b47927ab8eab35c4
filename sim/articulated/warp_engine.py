"""MuJoCo Warp engine: every env is a world of one ``mjw.Data``; tensors cross to torch without copies.

The state tensors are ``wp.to_torch`` views of the warp arrays (same memory, CPU or CUDA). Randomized parameters
are model fields given a leading per-world dimension at ``put_model`` (``batch_sizes``; mujoco_warp reads a
batched field of world w at ``w % batch``), and ``set_params`` writes those arrays through torch views.

A physics step is ``step2`` (actuation, constraint solve, integration) followed by ``step1`` (position and
velocity stages at the new state), which is ``mj_step`` split the way MuJoCo splits it, so after a step the
kinematics and position/velocity sensors are current. ``step1`` clears ``sensordata``; the columns of
acceleration-stage sensors (contact forces, touch, accelerometers) are saved before it and restored after, so
they describe the last solve as in the CPU engine. On CUDA the substep loop is captured once per ``substeps``
value as a CUDA graph and replayed (``graph=False`` to launch kernel by kernel).
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from sim.articulated.engine import PARAMS, SET_CONST_PARAMS, Engine

try:
    import mujoco_warp as mjw
    import warp as wp
except ImportError as exc:  # pragma: no cover - exercised only without the train extra
    raise ImportError(
        "engine 'mujoco_warp' needs the packages mujoco-warp and warp-lang: pip install 'sim2real[train]'"
    ) from exc


# constants mjw.set_const derives from the parameters: per world, so that each world gets its own
_DERIVED = ("body_subtreemass", "body_invweight0", "dof_invweight0", "actuator_acc0", "tendon_invweight0")


@wp.kernel
def _restore_columns(backup: wp.array2d(dtype=float), cols: wp.array(dtype=int), out: wp.array2d(dtype=float)):
    world, k = wp.tid()
    out[world, cols[k]] = backup[world, cols[k]]


def _warp_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    if device.type == "cpu":
        return "cpu"
    raise ValueError(f"engine 'mujoco_warp' runs on 'cpu' or 'cuda' devices, got {device}")


class WarpEngine(Engine):
    """``num_envs`` worlds of ``model`` in MuJoCo Warp on ``device`` (float32).

    nconmax: contacts allocated per world (default: mujoco_warp's estimate for the model); njmax: constraint rows
    per world; graph: capture the step as a CUDA graph (default: on CUDA).
    """

    name = "mujoco_warp"

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        device: str | torch.device = "cpu",
        nconmax: int | None = None,
        njmax: int | None = None,
        graph: bool | None = None,
    ):
        super().__init__(model, num_envs, device, torch.float32)
        self._wp_device = _warp_device(self.device)
        self._graph_enabled = self.device.type == "cuda" if graph is None else bool(graph)
        if self._graph_enabled and self.device.type != "cuda":
            raise ValueError("graph=True needs a CUDA device; CUDA graphs do not exist on the CPU")
        self._graphs: dict[int, object] = {}  # substeps -> captured CUDA graph
        self._torch_streams: dict[int, object] = {}  # torch stream handle -> warp view of it
        self._nconmax, self._njmax = nconmax, njmax
        self._stale = self._stale_const = False  # parameters written since the last derivation
        with wp.ScopedDevice(self._wp_device):
            self.m = mjw.put_model(model, batch_sizes=dict.fromkeys((*PARAMS, *_DERIVED), self.num_envs))
            self.d = mjw.make_data(model, nworld=self.num_envs, nconmax=nconmax, njmax=njmax)
            acc = [
                c
                for i in range(model.nsensor)
                if model.sensor_needstage[i] == mujoco.mjtStage.mjSTAGE_ACC
                for c in range(model.sensor_adr[i], model.sensor_adr[i] + model.sensor_dim[i])
            ]
            self._acc_cols = wp.array(np.asarray(acc, dtype=np.int32), dtype=int)
            self._sensor_backup = wp.zeros_like(self.d.sensordata)
        t = wp.to_torch
        self._qpos, self._qvel, self._ctrl = t(self.d.qpos), t(self.d.qvel), t(self.d.ctrl)
        self._act, self._warm, self._time = t(self.d.act), t(self.d.qacc_warmstart), t(self.d.time)
        self._xpos, self._xquat, self._site_xpos = t(self.d.xpos), t(self.d.xquat), t(self.d.site_xpos)
        self._sensordata = t(self.d.sensordata)
        self._acc_cols_t = torch.as_tensor(acc, dtype=torch.long, device=self.device)
        self._params = {name: t(getattr(self.m, name)) for name in PARAMS}
        self._run(self._stages, self.d)

    # warp launches
    def _stages(self, d) -> None:
        """Position and velocity stages at the current state, keeping the acceleration sensors' columns."""
        if self._acc_cols.shape[0]:
            wp.copy(self._sensor_backup, d.sensordata)
        mjw.step1(self.m, d)
        if self._acc_cols.shape[0]:
            wp.launch(
                _restore_columns,
                dim=(self.num_envs, self._acc_cols.shape[0]),
                inputs=[self._sensor_backup, self._acc_cols],
                outputs=[d.sensordata],
            )

    def _substeps(self, d, substeps: int) -> None:
        for _ in range(substeps):
            mjw.step2(self.m, d)
            self._stages(d)

    def _run(self, fn, *args) -> None:
        """Run warp work ordered with torch: after torch's queued work on its current stream, and before torch's
        later work (explicit stream waits, so that a non-default torch stream is ordered too)."""
        with wp.ScopedDevice(self._wp_device):
            if self.device.type != "cuda":
                fn(*args)
                return
            torch_stream = torch.cuda.current_stream(self.device)
            theirs = self._torch_streams.get(torch_stream.cuda_stream)
            if theirs is None:
                theirs = self._torch_streams[torch_stream.cuda_stream] = wp.stream_from_torch(torch_stream)
            ours = wp.get_stream(self._wp_device)
            ours.wait_stream(theirs)
            fn(*args)
            theirs.wait_stream(ours)

    def _launch_substeps(self, substeps: int) -> None:
        if not self._graph_enabled:
            self._substeps(self.d, substeps)
            return
        graph = self._graphs.get(substeps)
        if graph is None:
            if not self._graphs:  # compile and load every kernel outside the capture, on a scratch copy
                scratch = mjw.make_data(self.model, nworld=self.num_envs, nconmax=self._nconmax, njmax=self._njmax)
                self._substeps(scratch, 1)
                wp.synchronize_device(self._wp_device)
                del scratch
            with wp.ScopedCapture() as capture:
                self._substeps(self.d, substeps)
            graph = self._graphs[substeps] = capture.graph
        wp.capture_launch(graph)

    # contract
    def step(self, ctrl: torch.Tensor, substeps: int = 1, derive: bool = True) -> None:
        """As :meth:`Engine.step`; ``derive`` is ignored: each substep's ``step2`` continues from the stages the
        previous one computed at its new state (``_substeps``), so they are never wasted here."""
        substeps = self._check_substeps(substeps)
        ctrl = self._check_rows("ctrl", ctrl, self.num_envs, self.nu)
        self._ctrl.copy_(ctrl)
        self._apply_params()
        self._run(self._launch_substeps, substeps)

    def set_state(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        ids = self._env_ids(env_ids).to(self.device)
        qpos = self._check_rows("qpos", qpos, ids.numel(), self.nq)
        qvel = self._check_rows("qvel", qvel, ids.numel(), self.nv)
        self._apply_params()
        self._qpos[ids] = qpos.to(self._qpos)
        self._qvel[ids] = qvel.to(self._qvel)
        for buf in (self._ctrl, self._act, self._warm, self._time):
            buf[ids] = 0
        self._run(self._stages, self.d)
        if self._acc_cols_t.numel():  # a fresh env has not been through a solve yet
            self._sensordata[ids.unsqueeze(-1), self._acc_cols_t] = 0

    def forward(self) -> None:
        self._apply_params()
        self._run(self._forward)

    def _forward(self) -> None:
        mjw.forward(self.m, self.d)

    def _write_params(self, name: str, env_ids: torch.Tensor | None, values: torch.Tensor) -> None:
        dest = self._params[name]
        if env_ids is None:
            dest.copy_(values.to(dest))
        else:
            dest[env_ids.to(self.device)] = values.to(dest)
        self._stale = True
        self._stale_const |= name in SET_CONST_PARAMS

    def _apply_params(self) -> None:
        """Derive what follows from parameters written since the last call (once per reset, not per parameter):
        mjw.set_const (all worlds) where mass, inertia, CoM or armature changed, then the position and velocity
        stages (the mass matrix of the old parameters would otherwise serve the next step)."""
        if self._stale_const:
            self._run(mjw.set_const, self.m, self.d)
        if self._stale:
            self._run(self._stages, self.d)
        self._stale = self._stale_const = False

    def _read_params(self, name: str) -> torch.Tensor:
        return self._params[name].clone()
