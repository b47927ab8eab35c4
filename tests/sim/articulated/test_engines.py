"""The articulated-physics engines against references: plain ``mj_step`` (bitwise) and each other (tolerances).

Test model: a 2-link arm with motors beside a free box that falls onto the floor (contacts, a contact sensor).
MuJoCo Warp compiles its kernels on first use (~1 min cold on 2 CPU cores, cached in ~/.cache/warp), so its
tests share one module-scoped engine and reset its parameters and state in each test.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest
import torch

from sim.articulated.engine import PARAMS, make_engine

ARM_BOX_XML = """
<mujoco model="arm_and_box">
  <option timestep="0.005" integrator="implicitfast"/>
  <worldbody>
    <geom name="floor" type="plane" size="3 3 0.1" friction="0.8 0.02 0.001"/>
    <body name="upper" pos="0 0 0.6">
      <joint name="shoulder" type="hinge" axis="0 1 0" damping="0.05" armature="0.01" frictionloss="0.02"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.04" mass="1.0"/>
      <body name="lower" pos="0.3 0 0">
        <joint name="elbow" type="hinge" axis="0 1 0" damping="0.05" armature="0.01" frictionloss="0.02"/>
        <geom type="capsule" fromto="0 0 0 0.25 0 0" size="0.03" mass="0.6"/>
        <site name="tip" pos="0.25 0 0"/>
      </body>
    </body>
    <body name="box" pos="0.6 0.4 0.3">
      <freejoint/>
      <geom name="box" type="box" size="0.05 0.07 0.04" mass="0.5"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder" ctrlrange="-8 8" ctrllimited="true"/>
    <motor name="elbow" joint="elbow" ctrlrange="-5 5" ctrllimited="true"/>
  </actuator>
  <sensor>
    <jointpos name="elbow_pos" joint="elbow"/>
    <framepos name="tip_pos" objtype="site" objname="tip"/>
    <contact name="box_floor" body1="box" body2="world" reduce="netforce" data="found force"/>
  </sensor>
</mujoco>
"""
BOX_Z = 4  # qpos index of the box height (after the shoulder and elbow angles, box x, y)
NUM_ENVS = 4
STATE = ("qpos", "qvel", "xpos", "xquat", "site_xpos", "sensordata")


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(ARM_BOX_XML)


@pytest.fixture(scope="module")
def warp_engine(model):
    pytest.importorskip("mujoco_warp")
    return make_engine(model, NUM_ENVS, "mujoco_warp", "cpu")


def random_params(model, num_envs: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every parameter scaled per env and per component by U(0.8, 1.2), float64."""
    out = {}
    for name in sorted(PARAMS):
        nominal = torch.from_numpy(np.array(getattr(model, name), dtype=np.float64))
        out[name] = nominal * (0.8 + 0.4 * torch.rand((num_envs, *nominal.shape), generator=gen, dtype=torch.float64))
    # motors have no bias (all zeros, so scaling keeps them equal); any bias is inert for them (biastype none)
    out["actuator_biasprm"] += 0.1 * torch.rand(out["actuator_biasprm"].shape, generator=gen, dtype=torch.float64)
    return out


def nominal_params(model, num_envs: int) -> dict[str, torch.Tensor]:
    return {
        name: torch.from_numpy(np.array(getattr(model, name), dtype=np.float64))
        .expand(num_envs, -1, *([] if np.ndim(getattr(model, name)) == 1 else [-1]))
        .clone()
        for name in PARAMS
    }


def initial_state(model, num_envs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Arms at different angles, the box 0.2 m up (it lands after ~36 steps), at rest."""
    qpos = torch.from_numpy(model.qpos0.copy()).repeat(num_envs, 1)
    qpos[:, 0] = torch.linspace(-0.6, 0.6, num_envs, dtype=torch.float64)
    qpos[:, 1] = 0.3
    qpos[:, BOX_Z] = 0.2
    return qpos, torch.zeros(num_envs, model.nv, dtype=torch.float64)


def random_controls(model, steps: int, num_envs: int, gen: torch.Generator) -> torch.Tensor:
    """(steps, N, nu) uniform in the control ranges, float32 (as a policy would send)."""
    lo, hi = (torch.from_numpy(model.actuator_ctrlrange[:, k]).float() for k in (0, 1))
    return lo + (hi - lo) * torch.rand(steps, num_envs, model.nu, generator=gen)


def prepare(engine, params, qpos, qvel) -> None:
    for name, values in params.items():
        engine.set_params(name, values)
    engine.set_state(torch.arange(engine.num_envs), qpos, qvel)


class Reference:
    """One env on plain MuJoCo: a model copy with the env's parameters (and mj_setConst), one MjData, mj_step."""

    def __init__(self, model, params: dict[str, torch.Tensor], env: int, qpos, qvel):
        self.m = copy.copy(model)
        for name, values in params.items():
            getattr(self.m, name)[...] = values[env].numpy()
        self.d = mujoco.MjData(self.m)
        mujoco.mj_setConst(self.m, self.d)
        self.set_state(qpos, qvel)

    def set_state(self, qpos, qvel) -> None:
        mujoco.mj_resetData(self.m, self.d)
        self.d.qpos[:], self.d.qvel[:] = qpos.numpy(), qvel.numpy()
        mujoco.mj_forward(self.m, self.d)

    def step(self, ctrl, substeps: int) -> None:
        self.d.ctrl[:] = ctrl.double().numpy()
        for _ in range(substeps):
            mujoco.mj_step(self.m, self.d)

    def state(self) -> dict[str, np.ndarray]:
        """The state with the kinematics at it, as the engines report after a step (mj_step1 keeps the
        acceleration sensors of the last solve)."""
        mujoco.mj_step1(self.m, self.d)
        return {k: getattr(self.d, k).copy() for k in STATE}


def test_cpu_engine_is_bitwise_a_loop_of_mj_step(model, gen):
    params = random_params(model, 3, gen)
    qpos, qvel = initial_state(model, 3)
    engine = make_engine(model, 3, "mujoco", "cpu", nthread=2)
    prepare(engine, params, qpos, qvel)
    refs = [Reference(model, params, i, qpos[i], qvel[i]) for i in range(3)]
    controls = random_controls(model, 40, 3, gen)
    new_qpos = qpos[1].clone()
    new_qpos[0] = 1.0
    for k in range(40):
        engine.step(controls[k], substeps=2)
        for i, ref in enumerate(refs):
            ref.step(controls[k, i], 2)
        if k == 20:  # restart env 1 mid-run; the others run on
            engine.set_state(torch.tensor([1]), new_qpos[None], qvel[1:2])
            refs[1].set_state(new_qpos, qvel[1])
        if k in (0, 20, 39):
            expected = [ref.state() for ref in refs]
            for field in STATE:
                got = getattr(engine, field).numpy()
                want = np.stack([e[field] for e in expected])
                assert np.array_equal(got, want), f"{field} at step {k}: max diff {np.abs(got - want).max()}"
    assert float(engine.qpos[:, BOX_Z].max()) < 0.05, "the box should have landed"
    assert float(engine.sensor("box_floor")[:, 0].min()) > 0, "and touch the floor"


def test_steps_without_derived_fields_advance_the_same_state(model, gen):
    """derive=False (the inner physics steps of a control period) skips the stages at the new state: the state is
    bitwise that of derive=True steps and the next derived step reports exactly what derive=True would; in between
    the derived fields are the last physics step's, one step behind (as after a bare mj_step)."""
    params = random_params(model, 3, gen)
    qpos, qvel = initial_state(model, 3)
    controls = random_controls(model, 30, 3, gen)
    derived, inner = (make_engine(model, 3, "mujoco", "cpu", nthread=2) for _ in range(2))
    for engine in (derived, inner):
        prepare(engine, params, qpos, qvel)
    for k in range(30):
        last = k % 4 == 3
        site_before = derived.site_xpos.clone()
        derived.step(controls[k], substeps=1)
        inner.step(controls[k], substeps=1, derive=last)
        assert torch.equal(inner.qpos, derived.qpos) and torch.equal(inner.qvel, derived.qvel), f"state at step {k}"
        if last:
            for field in STATE:
                assert torch.equal(getattr(inner, field), getattr(derived, field)), f"{field} at step {k}"
        else:  # the kinematics the physics step computed at its start: one step behind the new state
            assert torch.equal(inner.site_xpos, site_before), f"site_xpos at step {k}"
            assert not torch.equal(inner.site_xpos, derived.site_xpos)


@pytest.mark.parametrize("engine_name", ["mujoco", "mujoco_warp"])
def test_params_read_back_from_engine_storage(model, gen, engine_name, request):
    if engine_name == "mujoco":
        engine = make_engine(model, NUM_ENVS, "mujoco", "cpu")
    else:
        engine = request.getfixturevalue("warp_engine")
    tol = 0.0 if engine_name == "mujoco" else 1e-6  # warp stores float32
    params = random_params(model, NUM_ENVS, gen)
    for name, values in params.items():
        engine.set_params(name, values)
    for name, values in params.items():
        got = engine.get_params(name)
        assert got.shape == values.shape
        torch.testing.assert_close(got.double(), values, rtol=tol, atol=tol)
        flat = got.reshape(NUM_ENVS, -1)
        assert not torch.equal(flat[0], flat[1]), f"{name}: envs 0 and 1 got the same values"
        torch.testing.assert_close(
            engine.nominal(name), torch.from_numpy(np.array(getattr(model, name), dtype=np.float64))
        )
    # partial writes touch only the named envs
    before = engine.get_params("body_mass")
    engine.set_params("body_mass", torch.full((1, model.nbody), 3.0, dtype=torch.float64), env_ids=torch.tensor([2]))
    after = engine.get_params("body_mass")
    assert torch.equal(after[[0, 1, 3]], before[[0, 1, 3]])
    assert torch.all(after[2] == 3.0)
    if engine_name == "mujoco_warp":  # the warp array itself, not a torch copy of it
        assert np.allclose(engine.m.body_mass.numpy()[2], 3.0)
        assert np.allclose(engine.m.geom_friction.numpy(), params["geom_friction"].numpy(), rtol=1e-6)
        for name in params:  # leave the shared engine nominal
            engine.set_params(name, nominal_params(model, NUM_ENVS)[name])


def test_warp_matches_cpu_engine_with_randomized_params(model, gen, warp_engine):
    params = random_params(model, NUM_ENVS, gen)
    qpos, qvel = initial_state(model, NUM_ENVS)
    cpu = make_engine(model, NUM_ENVS, "mujoco", "cpu")
    prepare(cpu, params, qpos, qvel)
    prepare(warp_engine, params, qpos, qvel)
    controls = random_controls(model, 50, NUM_ENVS, gen)
    # measured over 50 steps (box landing at ~36): qpos 7e-7, qvel 5e-5, contact force 2e-5 N; bounds ~100x that
    tol = {"qpos": 1e-4, "qvel": 5e-3, "xpos": 1e-4, "xquat": 1e-4, "site_xpos": 1e-4, "sensordata": 5e-3}
    fresh = random_params(model, 1, gen)
    for k in range(50):
        cpu.step(controls[k], substeps=1)
        warp_engine.step(controls[k], substeps=1)
        if k == 24:  # env 2 starts afresh with new parameters: the box 0.09 m up, lands again before the end
            restart_q = qpos[2:3].clone()
            restart_q[0, BOX_Z] = 0.09
            for engine in (cpu, warp_engine):
                for name, values in fresh.items():
                    engine.set_params(name, values, env_ids=torch.tensor([2]))
                engine.set_state(torch.tensor([2]), restart_q, qvel[2:3])
        if k % 10 == 9:
            for field, atol in tol.items():
                got, want = getattr(warp_engine, field).double(), getattr(cpu, field)
                torch.testing.assert_close(
                    got, want, atol=atol, rtol=1e-3, msg=lambda m, f=field, s=k: f"{f}, step {s}: {m}"
                )
    assert float(cpu.sensor("box_floor")[:, 0].min()) > 0, "the box should be on the floor"
    boxes = cpu.qpos[:, BOX_Z - 2 : BOX_Z + 1]
    assert not torch.equal(boxes[0], boxes[1]), "different parameters should give different motions"


@pytest.mark.parametrize("engine_name", ["mujoco", "mujoco_warp"])
def test_zero_control_under_gravity_settles_finite(model, engine_name, request):
    if engine_name == "mujoco":
        engine = make_engine(model, NUM_ENVS, "mujoco", "cpu")
    else:
        engine = request.getfixturevalue("warp_engine")
    qpos, qvel = initial_state(model, NUM_ENVS)
    prepare(engine, nominal_params(model, NUM_ENVS), qpos, qvel)
    zero = torch.zeros(NUM_ENVS, model.nu)
    for _ in range(40):
        engine.step(zero, substeps=5)  # 1 s
    for field in STATE:
        assert torch.isfinite(getattr(engine, field)).all(), field
    # the box rests on the floor: its centre one half-height up, the floor carrying its weight
    torch.testing.assert_close(
        engine.qpos[:, BOX_Z].double(), torch.full((NUM_ENVS,), 0.04, dtype=torch.float64), atol=2e-3, rtol=0
    )
    force = engine.sensor("box_floor")[:, 1:].double()
    torch.testing.assert_close(
        force, torch.tensor([[0.0, 0.0, -0.5 * 9.81]] * NUM_ENVS, dtype=torch.float64), atol=0.05, rtol=0
    )


@pytest.mark.parametrize("engine_name", ["mujoco", "mujoco_warp"])
def test_heavier_box_falls_at_g_after_set_params(model, engine_name, request):
    """Regression: without mj_setConst, MuJoCo applied gravity with the new mass to the old inertia (2 g)."""
    if engine_name == "mujoco":
        engine = make_engine(model, NUM_ENVS, "mujoco", "cpu")
    else:
        engine = request.getfixturevalue("warp_engine")
    qpos, qvel = initial_state(model, NUM_ENVS)
    prepare(engine, nominal_params(model, NUM_ENVS), qpos, qvel)
    box = model.body("box").id
    mass = engine.get_params("body_mass")
    mass[:, box] *= torch.tensor([1.0, 2.0, 0.5, 4.0], dtype=mass.dtype)
    engine.set_params("body_mass", mass)  # no set_state: the next step must already use the new constants
    for _ in range(10):
        engine.step(torch.zeros(NUM_ENVS, model.nu), substeps=1)
    vz = engine.qvel[:, BOX_Z].double()  # free-joint linear velocity z (same index as the height in qpos)
    expected = torch.full((NUM_ENVS,), -9.81 * 10 * model.opt.timestep, dtype=torch.float64)
    torch.testing.assert_close(vz, expected, atol=1e-5, rtol=0)
    engine.set_params("body_mass", nominal_params(model, NUM_ENVS)["body_mass"])


def test_views_share_the_engines_memory(model, warp_engine):
    cpu = make_engine(model, 2, "mujoco", "cpu")
    qpos = cpu.qpos
    assert qpos.data_ptr() == cpu._batch.bind("qpos").ctypes.data
    before = qpos.clone()
    cpu.step(torch.ones(2, model.nu), substeps=3)
    assert not torch.equal(qpos, before), "qpos is a live view: it changes in place"
    assert warp_engine.qpos.data_ptr() == warp_engine.d.qpos.ptr
    assert warp_engine.ctrl.data_ptr() == warp_engine.d.ctrl.ptr
    assert warp_engine.get_params("dof_damping").data_ptr() != warp_engine.m.dof_damping.ptr  # a copy


def test_errors_name_expected_and_found(model):
    engine = make_engine(model, 2, "mujoco", "cpu")
    with pytest.raises(ValueError, match=r"ctrl must have shape \(2, 2\), got \(2, 3\)"):
        engine.step(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"geom_friction values must have shape \(2, 4, 3\).*got \(2, 4\)"):
        engine.set_params("geom_friction", torch.ones(2, 4))
    with pytest.raises(ValueError, match="unknown model parameter 'mass'"):
        engine.set_params("mass", torch.ones(2, 1))
    with pytest.raises(ValueError, match="must be finite"):
        engine.set_params("body_mass", torch.full((2, model.nbody), float("nan")))
    with pytest.raises(ValueError, match=r"env_ids must lie in \[0, 2\)"):
        engine.set_state(torch.tensor([2]), torch.zeros(1, model.nq), torch.zeros(1, model.nv))
    with pytest.raises(ValueError, match=r"qvel must have shape \(1, 8\)"):
        engine.set_state(torch.tensor([0]), torch.zeros(1, model.nq), torch.zeros(1, 7))
    with pytest.raises(ValueError, match="substeps must be a positive integer"):
        engine.step(torch.zeros(2, 2), substeps=0)
    with pytest.raises(ValueError, match="no sensor 'foot'"):
        engine.sensor("foot")
    with pytest.raises(ValueError, match="unknown engine 'physx'"):
        make_engine(model, 2, "physx")
    with pytest.raises(ValueError, match="runs on the CPU"):
        make_engine(model, 2, "mujoco", "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_warp_on_cuda_matches_cpu_with_graph_and_no_copies(model, gen):
    params = random_params(model, NUM_ENVS, gen)
    qpos, qvel = initial_state(model, NUM_ENVS)
    cpu = make_engine(model, NUM_ENVS, "mujoco", "cpu")
    gpu = make_engine(model, NUM_ENVS, "mujoco_warp", "cuda")
    prepare(cpu, params, qpos, qvel)
    prepare(gpu, {k: v.cuda() for k, v in params.items()}, qpos.cuda(), qvel.cuda())
    controls = random_controls(model, 50, NUM_ENVS, gen)
    for k in range(50):
        cpu.step(controls[k], substeps=2)
        gpu.step(controls[k].cuda(), substeps=2)
        if k == 24:  # a reset between graph launches
            cpu.set_state(torch.tensor([1]), qpos[1:2], qvel[1:2])
            gpu.set_state(torch.tensor([1], device="cuda"), qpos[1:2].cuda(), qvel[1:2].cuda())
    assert gpu.qpos.is_cuda and gpu.qpos.data_ptr() == gpu.d.qpos.ptr
    assert 2 in gpu._graphs, "the step should run as a captured CUDA graph"
    torch.testing.assert_close(gpu.qpos.cpu().double(), cpu.qpos, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(gpu.qvel.cpu().double(), cpu.qvel, atol=5e-3, rtol=1e-3)
    torch.testing.assert_close(gpu.sensordata.cpu().double(), cpu.sensordata, atol=5e-3, rtol=1e-3)
