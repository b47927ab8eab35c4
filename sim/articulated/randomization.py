"""Domain randomization of articulated robots: default specs (with sources) and how draws reach the engine.

Parameters a :class:`~sim.randomization.RandomizationSpec` may name (nominal values from the profile and model;
the spec's ``operation`` scales, offsets or replaces them; per env):

=====================  =====  ==========================================================================
name                   size   meaning (unit)
=====================  =====  ==========================================================================
ground_friction        1      sliding friction of every contact (all geoms), nominal 1.0 (-)
link_mass              B-1    mass of every body but the world (kg)
added_base_mass        1      mass added to the base body (kg), nominal 0
base_com               3      offset of the base's centre of mass in its frame (m), nominal 0
joint_friction         J      dry friction loss per actuated joint (N m)
joint_damping          J      viscous damping per actuated joint (N m s/rad)
joint_armature         J      reflected rotor inertia per actuated joint (kg m^2)
motor_strength         J      factor on the motor torque (-), nominal 1
kp_factor              J      factor on the PD stiffness (-), nominal 1
kd_factor              J      factor on the PD damping (-), nominal 1
default_pose_offset    J      offset of the PD targets' zero (calibration error, rad), nominal 0
action_latency         1      physics steps by which the joint targets reach the motors late
obs_latency            1      control steps by which the policy's measurements are late
push_velocity          2      horizontal base velocity kick (m/s, world x y), applied when drawn
obs_noise_scale        1      factor on every observation noise std (-)
imu_gyro_bias          3      floating base only: added to the observed gyro (rad/s, base frame), nominal 0
imu_gravity_bias       3      floating base only: added to the observed gravity direction (-, base frame),
                              nominal 0 (an attitude estimate that is off: an accelerometer bias)
=====================  =====  ==========================================================================

Model-level parameters are written with ``engine.set_params`` (per env, read back with ``engine.get_params``);
the others are tensors the env applies itself (PD, delay lines, pushes, noise).
"""

from __future__ import annotations

import mujoco
import torch

from sim.articulated.profile import ArticulatedProfile
from sim.randomization import ParamDistribution, RandomizationSpec, RandomizationSpecError

ENV_PARAMS = ("motor_strength", "kp_factor", "kd_factor", "default_pose_offset", "action_latency", "obs_latency")
ENV_PARAMS += ("push_velocity", "obs_noise_scale", "imu_gyro_bias", "imu_gravity_bias")
MODEL_PARAMS = ("ground_friction", "link_mass", "added_base_mass", "base_com")
MODEL_PARAMS += ("joint_friction", "joint_damping", "joint_armature")


#: Parameters whose randomized values must stay > 0 (a link mass scale of 0 gave NaN critics and 100 % falls) and
#: those that may be 0 but not below (friction, damping, armature, PD factors, noise). Latencies must be >= 0 and
#: shorter than an episode (action latency in physics steps, observation latency in control steps).
POSITIVE_PARAMS = ("link_mass", "motor_strength")
NONNEGATIVE_PARAMS = ("ground_friction", "joint_friction", "joint_damping", "joint_armature", "kp_factor")
NONNEGATIVE_PARAMS += ("kd_factor", "obs_noise_scale")


def check_randomization(cfg, model: mujoco.MjModel | None = None) -> None:
    """Refuse a randomization spec an articulated task cannot run: parameters it does not have, and draws no robot
    can have (:data:`POSITIVE_PARAMS` reaching 0, :data:`NONNEGATIVE_PARAMS` below 0, a base lighter than 0 kg
    with ``added_base_mass``, latencies below 0 or as long as an episode). ``cfg``: the task's config
    (``params`` profile, ``randomization``, ``max_episode_length`` in control steps); ``model``: its compiled
    MuJoCo model (compiled here when not given: milliseconds, no simulator). Training calls it before it creates
    a run directory. Raises :class:`~sim.randomization.RandomizationSpecError`."""
    profile, spec = cfg.params, cfg.randomization
    if model is None:
        from sim.articulated.robots import load_model

        model = load_model(profile)
    nominal = nominal_values(profile, model)
    spec.check_params(frozenset(nominal))
    steps = cfg.max_episode_length
    limits = {"action_latency": steps * profile.substeps, "obs_latency": steps}
    spec.check_physical(nominal, positive=POSITIVE_PARAMS, nonnegative=NONNEGATIVE_PARAMS, max_steps=limits)
    if "added_base_mass" in spec:
        base_mass = nominal["link_mass"][model.body(profile.bodies.base).id - 1]
        lightest = spec.value_range("link_mass", [base_mass])[0] + spec.value_range("added_base_mass", [0.0])[0]
        if not lightest > 0:
            raise RandomizationSpecError(
                f"randomization terms 'link_mass' and 'added_base_mass': the base {profile.bodies.base!r} "
                f"({base_mass:g} kg nominal) can weigh {lightest:g} kg; raise added_base_mass's low above "
                f"-{base_mass:g} kg"
            )


def nominal_values(profile: ArticulatedProfile, model: mujoco.MjModel) -> dict[str, list[float]]:
    """Every parameter a spec may name, with its nominal value (see the module table)."""
    j = profile.joints
    dofs = [int(model.jnt_dofadr[model.joint(n).id]) for n in j.names]
    return {
        "ground_friction": [1.0],
        "link_mass": [float(m) for m in model.body_mass[1:]],
        "added_base_mass": [0.0],
        "base_com": [0.0, 0.0, 0.0],
        "joint_friction": [float(model.dof_frictionloss[d]) for d in dofs],
        "joint_damping": [float(model.dof_damping[d]) for d in dofs],
        "joint_armature": [float(model.dof_armature[d]) for d in dofs],
        "motor_strength": [1.0] * j.dim,
        "kp_factor": [1.0] * j.dim,
        "kd_factor": [1.0] * j.dim,
        "default_pose_offset": [0.0] * j.dim,
        "action_latency": [0.0],
        "obs_latency": [0.0],
        "push_velocity": [0.0, 0.0],
        "obs_noise_scale": [1.0],
        **({"imu_gyro_bias": [0.0] * 3, "imu_gravity_bias": [0.0] * 3} if profile.floating_base else {}),
    }


def legged_randomization() -> RandomizationSpec:
    """Quadruped defaults covering the spread in FACTS.md ("Legged and arm defaults seen in the field").

    friction U(0.4, 1.25): Playground Go1 U(0.4, 1.0) and legged_gym U(0.5, 1.25); link masses x U(0.9, 1.1),
    base +U(-1, 1) kg, base CoM +-5 cm, default pose +-0.05 rad, joint friction x U(0.9, 1.1), armature
    x U(1.0, 1.05) (Playground Go1); motor strength x U(0.9, 1.1), Kp x U(0.8, 1.3), Kd x U(0.5, 1.5)
    (walk-these-ways); action latency 0-6 physics steps (0-30 ms at 200 Hz: walk-these-ways' 6-step lag),
    observation latency 0-1 control steps (0-20 ms); pushes +-1 m/s every 15 s (legged_gym);
    observation noise x U(0.5, 1.5) around legged_gym's stds (in the observation spec).
    IMU turn-on biases, normal per axis clipped at 3 std: gyro std 0.5 deg/s = 0.0087 rad/s, accelerometer std
    20 mg, i.e. a gravity-direction error of 0.02 (PX4 SITL's IMU model, PX4-SITL_gazebo-classic
    include/gazebo_imu_plugin.h, kDefaultAdis*TurnOnBiasSigma: ADIS16448 figures).
    """
    d = ParamDistribution
    return RandomizationSpec(
        {
            "ground_friction": d("uniform", low=0.4, high=1.25, operation="absolute"),
            "link_mass": d("uniform", low=0.9, high=1.1, per_component=True),
            "added_base_mass": d("uniform", low=-1.0, high=1.0, operation="offset", unit="kg"),
            "base_com": d("uniform", low=-0.05, high=0.05, operation="offset", per_component=True, unit="m"),
            "joint_friction": d("uniform", low=0.9, high=1.1, per_component=True),
            "joint_armature": d("uniform", low=1.0, high=1.05, per_component=True),
            "motor_strength": d("uniform", low=0.9, high=1.1, per_component=True),
            "kp_factor": d("uniform", low=0.8, high=1.3),
            "kd_factor": d("uniform", low=0.5, high=1.5),
            "default_pose_offset": d("uniform", low=-0.05, high=0.05, operation="offset", per_component=True,
                                     unit="rad"),
            "action_latency": d("int_uniform", low=0, high=6, operation="absolute", unit="physics steps"),
            "obs_latency": d("int_uniform", low=0, high=1, operation="absolute", unit="control steps"),
            "push_velocity": d("uniform", low=-1.0, high=1.0, operation="absolute", when="interval",
                               interval_s=15.0, per_component=True, unit="m/s"),
            "obs_noise_scale": d("uniform", low=0.5, high=1.5),
            "imu_gyro_bias": d("normal", mean=0.0, std=0.0087, low=-0.0261, high=0.0261, operation="absolute",
                               per_component=True, unit="rad/s"),
            "imu_gravity_bias": d("normal", mean=0.0, std=0.02, low=-0.06, high=0.06, operation="absolute",
                                  per_component=True),
        },
        name="legged-default",
    )  # fmt: skip


def arm_randomization() -> RandomizationSpec:
    """Arm defaults: the legged ranges that apply to a fixed-base arm (FACTS.md), no pushes or ground friction.

    Link masses x U(0.9, 1.1); joint friction, damping x U(0.8, 1.2) and armature x U(1.0, 1.05); motor strength
    x U(0.9, 1.1); Kp x U(0.8, 1.3), Kd x U(0.5, 1.5) (walk-these-ways' spread, on top of an unknown impedance
    controller); zero offsets +-0.02 rad; action latency 0-10 physics steps (0-20 ms at 500 Hz), observation
    latency 0-1 control step; observation noise x U(0.5, 1.5).
    """
    d = ParamDistribution
    return RandomizationSpec(
        {
            "link_mass": d("uniform", low=0.9, high=1.1, per_component=True),
            "joint_friction": d("uniform", low=0.8, high=1.2, per_component=True),
            "joint_damping": d("uniform", low=0.8, high=1.2, per_component=True),
            "joint_armature": d("uniform", low=1.0, high=1.05, per_component=True),
            "motor_strength": d("uniform", low=0.9, high=1.1, per_component=True),
            "kp_factor": d("uniform", low=0.8, high=1.3),
            "kd_factor": d("uniform", low=0.5, high=1.5),
            "default_pose_offset": d("uniform", low=-0.02, high=0.02, operation="offset", per_component=True,
                                     unit="rad"),
            "action_latency": d("int_uniform", low=0, high=10, operation="absolute", unit="physics steps"),
            "obs_latency": d("int_uniform", low=0, high=1, operation="absolute", unit="control steps"),
            "obs_noise_scale": d("uniform", low=0.5, high=1.5),
        },
        name="arm-default",
    )  # fmt: skip


class ModelParamWriter:
    """Writes drawn model-level parameters into the engine, per env. Indices are resolved once here."""

    def __init__(self, engine, profile: ArticulatedProfile):
        model = engine.model
        self.engine = engine
        self.base = model.body(profile.bodies.base).id
        self.dofs = torch.tensor([int(model.jnt_dofadr[model.joint(n).id]) for n in profile.joints.names])
        self.nominal = {k: engine.nominal(k) for k in ("geom_friction", "body_mass", "body_ipos")}
        self.nominal.update({k: engine.nominal(k) for k in ("dof_frictionloss", "dof_damping", "dof_armature")})

    def write(self, params: dict[str, torch.Tensor], ids: torch.Tensor, names: set[str] | frozenset[str]) -> None:
        """Write the engine fields that depend on any of ``names`` for envs ``ids`` (n,), from the env's current
        per-env parameter table ``params`` (name -> (N, C)), so parameters drawn at different times stay combined."""
        n = ids.numel()
        if n == 0 or not names & set(MODEL_PARAMS):
            return
        e, nom = self.engine, self.nominal
        if "ground_friction" in names:
            friction = nom["geom_friction"].expand(n, -1, -1).clone()
            friction[:, :, 0] = params["ground_friction"][ids].to(friction)
            e.set_params("geom_friction", friction, ids)
        if names & {"link_mass", "added_base_mass"}:
            mass = nom["body_mass"].expand(n, -1).clone()
            mass[:, 1:] = params["link_mass"][ids].to(mass)
            mass[:, self.base] = (mass[:, self.base] + params["added_base_mass"][ids, 0].to(mass)).clamp_min(1e-3)
            e.set_params("body_mass", mass, ids)
        if "base_com" in names:
            ipos = nom["body_ipos"].expand(n, -1, -1).clone()
            ipos[:, self.base] += params["base_com"][ids].to(ipos)
            e.set_params("body_ipos", ipos, ids)
        for name, field in (
            ("joint_friction", "dof_frictionloss"),
            ("joint_damping", "dof_damping"),
            ("joint_armature", "dof_armature"),
        ):
            if name in names:
                table = nom[field].expand(n, -1).clone()
                table[:, self.dofs] = params[name][ids].to(table)
                e.set_params(field, table, ids)
