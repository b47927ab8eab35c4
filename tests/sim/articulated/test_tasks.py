"""The articulated tasks (arm-reach, legged-walk): contract, physics sanity, randomization reaching the engine."""

from __future__ import annotations

import pytest
import torch

from sim.env import OBS_GROUPS
from sim.randomization import ParamDistribution as D
from sim.randomization import RandomizationSpec, RandomizationSpecError
from sim.tasks import make_env, task_entry

ARTICULATED = ["arm-reach", "legged-walk"]
NOMINAL = RandomizationSpec({"obs_noise_scale": D("constant", mean=0.0)}, name="nominal-quiet")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quiet(name: str, n: int, **cfg_fields):
    cfg = task_entry(name).make_cfg()
    cfg.randomization = NOMINAL
    for key, value in cfg_fields.items():
        setattr(cfg, key, value)
    return make_env(name, n, seed=0, cfg=cfg)


@pytest.mark.parametrize("name", ARTICULATED)
def test_contract_shapes_and_one_second_of_random_actions(name: str) -> None:
    env = make_env(name, 8, seed=1)
    obs, _ = env.reset()
    assert set(obs.keys()) == set(OBS_GROUPS["critic"]) | {"policy_now"}
    for group, spec in (("policy", env.obs_spec), ("critic", env.critic_spec), ("privileged", env.privileged_spec),
                        ("policy_now", env.base_obs_spec)):  # fmt: skip
        assert obs[group].shape == (8, spec.dim)
    assert torch.equal(obs["policy_now"], obs["policy"][:, : env.base_obs_spec.dim])  # the newest, without history
    assert env.action_spec.dim == env.num_actions == env.profile.joints.dim
    assert env.action_spec.names == env.profile.joints.names
    g = torch.Generator().manual_seed(0)
    for _ in range(round(env.cfg.control_hz)):  # 1 s
        obs, rew, done, extras = env.step(2 * torch.rand(8, env.num_actions, generator=g) - 1)
        assert rew.shape == (8,) and done.dtype == torch.bool and extras["time_outs"].shape == (8,)
        assert all(torch.isfinite(v).all() for v in obs.values()) and torch.isfinite(rew).all()
    assert torch.isfinite(env.engine.qpos).all()


@pytest.mark.parametrize("name", ARTICULATED)
def test_same_seed_same_rollout(name: str) -> None:
    def run(seed: int) -> torch.Tensor:
        env = make_env(name, 4, seed=seed)
        g = torch.Generator().manual_seed(5)
        for _ in range(10):
            obs, *_ = env.step(2 * torch.rand(4, env.num_actions, generator=g) - 1)
        return obs["policy"].clone()

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_legged_robot_stands_for_two_seconds_at_its_default_pose() -> None:
    env = quiet("legged-walk", 4, episode_s=5.0)  # PD at the default pose, zero action, nominal parameters
    env.cfg.init.joint_pos_rad = env.cfg.init.base_lin_vel_m_s = env.cfg.init.base_ang_vel_rad_s = 0.0
    env.reset()
    for _ in range(100):  # 2 s at 50 Hz
        _, _, done, _ = env.step(torch.zeros(4, 12))
        assert not done.any()
    height = env.engine.qpos[:, 2]
    assert (height > 0.2).all() and (height < 0.35).all(), height
    assert env.base_lin_vel.norm(dim=-1).max() < 0.05
    assert env._foot_contacts().all()


def test_arm_holds_its_pose_under_gravity_at_zero_action() -> None:
    env = quiet("arm-reach", 2, init_joint_pos_rad=0.0)
    env.reset()
    for _ in range(100):  # 2 s
        env.step(torch.zeros(2, 7))
    drift = (env.joint_pos - env.default_pose).abs()
    assert drift.max() < 0.06, drift  # PD sag under gravity: Kp 600 N m/rad holds ~30 N m with ~0.05 rad
    assert env.joint_vel.abs().max() < 0.01


def test_randomization_reaches_the_engine_per_env() -> None:
    env = make_env("legged-walk", 6, seed=3)
    mass = env.engine.get_params("body_mass")
    base = env.model.body(env.profile.bodies.base).id
    ratio = env.params["link_mass"][:, base - 1].double() / env.engine.nominal("body_mass")[base]
    assert ((ratio > 0.9 - 1e-6) & (ratio < 1.1 + 1e-6)).all()
    expected_base = env.params["link_mass"][:, base - 1].double() + env.params["added_base_mass"][:, 0].double()
    assert torch.allclose(mass[:, base], expected_base, atol=1e-5)
    assert mass[:, base].unique().numel() == 6  # every env has its own base mass
    friction = env.engine.get_params("geom_friction")[:, :, 0]
    assert torch.allclose(friction, env.params["ground_friction"].double().expand_as(friction), atol=1e-6)
    assert ((friction[:, 0] >= 0.4) & (friction[:, 0] <= 1.25)).all() and friction[:, 0].unique().numel() == 6
    ipos = env.engine.get_params("body_ipos")[:, base]
    assert torch.allclose(ipos - env.engine.nominal("body_ipos")[base], env.params["base_com"].double(), atol=1e-6)
    armature = env.engine.get_params("dof_armature")[:, env.dadr]
    assert torch.allclose(armature, env.params["joint_armature"].double(), atol=1e-6)
    assert torch.equal(env.actuators.kp_scale, env.params["kp_factor"])
    before = env.engine.get_params("body_mass")[0].clone()
    env._reset_idx(torch.tensor([0]))  # a reset redraws that env only
    after = env.engine.get_params("body_mass")
    assert not torch.equal(after[0], before) and torch.equal(after[1:], mass[1:])


def test_push_changes_the_base_velocity() -> None:
    push = D("constant", mean=0.8, operation="absolute", when="interval", interval_s=0.1, per_component=True)
    env = quiet("legged-walk", 2)
    env.cfg.randomization = NOMINAL.replace(push_velocity=push)
    env.intervals = [(5, "push_velocity")]
    env.reset()
    for _ in range(4):
        env.step(torch.zeros(2, 12))
    vx_before = env.engine.qvel[:, 0].clone()
    env.step(torch.zeros(2, 12))  # the 5th step draws the push
    assert (env.engine.qvel[:, 0] - vx_before > 0.5).all()


def test_observation_latency_delays_the_policy_group_by_whole_control_steps() -> None:
    late = NOMINAL.replace(obs_latency=D("constant", mean=1.0, operation="absolute"))
    env = quiet("arm-reach", 2, randomization=late)
    env.reset()
    g = torch.Generator().manual_seed(0)
    policy_cols, critic_cols = env.obs_spec.slice("joint_pos"), env.critic_spec.slice("true_joint_pos")
    previous = None
    for _ in range(5):
        obs, *_ = env.step(0.5 * torch.rand(2, 7, generator=g))
        if previous is not None:
            assert torch.allclose(obs["policy"][:, policy_cols], previous, atol=1e-6)
        previous = obs["critic"][:, critic_cols].clone()
    assert torch.equal(env.obs_line.delay, torch.ones(2, dtype=torch.long))
    assert torch.equal(obs["policy"][:, env.obs_spec.slice("last_action")], env.action)  # never delayed


def test_action_latency_and_gains_reach_the_actuators() -> None:
    spec = NOMINAL.replace(
        action_latency=D("constant", mean=3.0, operation="absolute"),
        kp_factor=D("constant", mean=1.2),
        motor_strength=D("constant", mean=0.9),
    )
    env = quiet("legged-walk", 2, randomization=spec)
    assert torch.equal(env.actuators.targets.delay, torch.full((2,), 3))
    assert torch.allclose(env.actuators.kp_scale, torch.full((2, 12), 1.2))
    assert torch.allclose(env.actuators.strength, torch.full((2, 12), 0.9))
    assert env.obs_spec.dim == 3 + 45 and env.privileged_spec.dim == 1 + 1 + 3 + 4 * 12 + 2


def test_software_in_the_loop_a1_stands_behind_the_safety_layer_and_is_damped_when_tipped() -> None:
    """drivers/sim_articulated.py + the profile-derived safety layer: the A1 holds its default pose (a standing
    policy stand-in) for 2 s; tipped over, the layer falls back to damping (kp 0, kd 8) and the motors only brake."""
    import numpy as np

    from deploy.safety import CommandMode, SafetyLayer, SafetyState, StateSample, profile_from_dict
    from drivers.sim_articulated import SimulatedArticulatedRobot

    robot = SimulatedArticulatedRobot("legged-walk", seed=0, randomization=RandomizationSpec({}))
    p = robot.profile
    layer = SafetyLayer(profile_from_dict(p.safety_section()))
    q0 = np.asarray(p.joints.default_position_rad)

    def cycle(action: np.ndarray):
        s = robot.read_state()
        sample = StateSample(
            s.stamp_s, quat_wxyz=s.quaternion, joint_pos_rad=s.joint_position, joint_vel_rad_s=s.joint_velocity,
            joint_torque_nm=robot.env.torque[0].numpy().astype(float),
        )  # fmt: skip
        layer.heartbeat(s.stamp_s)
        layer.on_state(sample, s.stamp_s)
        cmd = layer.filter(action, s.stamp_s, 0.001)
        robot.send_command(cmd.values, cmd.kp_nm_per_rad, cmd.kd_nm_s_per_rad)
        robot.step()
        return cmd

    cycle(q0)
    assert layer.arm(robot.time_s)
    robot.arm()
    modes = [cycle(q0).mode for _ in range(100)]  # 2 s
    assert layer.state is SafetyState.ACTIVE and modes[-1] is CommandMode.POLICY
    height = robot.read_state().position[2]
    assert 0.2 < height < 0.35
    e = robot.env.engine  # tip it over: 90 deg roll, 0.3 m up
    qpos, qvel = e.qpos.clone(), e.qvel.clone()
    qpos[0, 2], qpos[0, 3:7] = 0.3, torch.tensor([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0])
    e.set_state(torch.tensor([0]), qpos, qvel)
    cmd = cycle(q0)
    assert cmd.mode is CommandMode.FALLBACK and np.all(cmd.kp_nm_per_rad == 0) and np.all(cmd.kd_nm_s_per_rad == 8)
    act, e = robot.env.actuators, robot.env.engine
    assert torch.all(act.kp_scale == 0) and torch.all(act.kd_scale == 0)  # kd 8 becomes implicit joint damping
    assert torch.allclose(e.get_params("dof_damping")[0, robot.env.dadr], torch.full((12,), 8.0, dtype=e.dtype))
    for _ in range(50):  # 1 s: the robot lies on its side, the damped joints come to rest
        cycle(q0)
    assert robot.env.joint_vel.abs().max() < 0.5 and layer.state is SafetyState.FALLBACK


@pytest.mark.slow  # warp compiles its kernels once into its cache (~1 min cold on 2 cores), then ~15 s
@pytest.mark.parametrize("name", ARTICULATED)
def test_tasks_run_on_the_warp_engine(name: str) -> None:
    """The GPU engine's path (MuJoCo Warp, here on the CPU): same task code, per-env parameters, finite steps."""
    pytest.importorskip("mujoco_warp")
    env = make_env(name, 4, seed=0, engine="mujoco_warp")
    assert env.engine.dtype == torch.float32
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        obs, rew, *_ = env.step(2 * torch.rand(4, env.num_actions, generator=g) - 1)
        assert all(torch.isfinite(v).all() for v in obs.values()) and torch.isfinite(rew).all()
    assert env.engine.get_params("body_mass")[:, 1].unique().numel() == 4


def test_legged_reward_clips_negative_steps_to_zero_only_when_asked() -> None:
    """legged_gym's only_positive_rewards: random flailing earns penalties; clipped, no step is worth less than 0."""

    def rewards(only_positive: bool) -> torch.Tensor:
        cfg = task_entry("legged-walk").make_cfg()
        cfg.reward.only_positive = only_positive
        env = make_env("legged-walk", 16, seed=3, cfg=cfg)
        g = torch.Generator().manual_seed(0)
        return torch.stack([env.step(2 * torch.rand(16, 12, generator=g) - 1)[1] for _ in range(25)])

    clipped, raw = rewards(True), rewards(False)
    assert (raw < 0).any(), "random actions should cost more than they track at least once"
    assert (clipped >= 0).all()
    assert torch.equal(clipped, raw.clamp_min(0.0))  # same seed, same states: the clip is the only difference


def test_env_step_runs_its_torch_ops_on_one_thread_and_restores_the_callers_setting() -> None:
    env = make_env("legged-walk", 4, seed=0)
    seen = []
    original = env._after_physics

    def spy() -> None:
        seen.append(torch.get_num_threads())
        original()

    env._after_physics = spy
    torch.set_num_threads(2)
    env.step(torch.zeros(4, 12))
    assert seen == [1] and torch.get_num_threads() == 2


def test_legged_trot_term_rejects_foot_pairs_the_robot_does_not_have() -> None:
    cfg = task_entry("legged-walk").make_cfg()
    cfg.reward.diagonal_pairs = ((0, 3), (1, 4))
    with pytest.raises(ValueError, match="diagonal_pairs must be two pairs of foot indices"):
        make_env("legged-walk", 2, seed=0, cfg=cfg)


def test_legged_trot_reward_follows_the_contacts_when_weighted() -> None:
    cfg = task_entry("legged-walk").make_cfg()
    cfg.reward.trot = 2.0
    cfg.command.standing_fraction = 0.0
    cfg.command.lin_vel_x_m_s = (0.5, 0.5)
    env = make_env("legged-walk", 4, seed=0, cfg=cfg)
    env.step(torch.zeros(4, 12))
    env.contact[:] = torch.tensor([[1, 0, 0, 1], [1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 1, 1]], dtype=torch.bool)
    parts = env._rewards()
    assert torch.allclose(parts["trot"], torch.tensor([1.0, 0.0, 1.0, 0.5]) * 2.0 * cfg.control_dt)


def test_legged_fine_tracking_kernel_is_narrower_than_the_wide_one() -> None:
    """Both kernels by hand at the env's true base velocity: 0.2 m/s off costs 15 % of the wide kernel
    (exp(-0.04 / 0.25)) and 86 % of the narrow one (exp(-0.04 / 0.02))."""
    cfg = task_entry("legged-walk").make_cfg()
    cfg.reward.lin_vel_xy_fine = 2.0
    cfg.command.standing_fraction = 0.0
    env = make_env("legged-walk", 3, seed=0, cfg=cfg)
    env.step(torch.zeros(3, 12))
    v = env.base_lin_vel[:, :2]
    env.command[:, :2] = v + torch.tensor([[0.0, 0.0], [0.2, 0.0], [0.0, -0.1]])
    parts = env._rewards()
    dt = cfg.control_dt
    expected_err2 = torch.tensor([0.0, 0.04, 0.01])
    assert torch.allclose(parts["lin_vel_xy"], torch.exp(-expected_err2 / 0.25) * dt, atol=1e-6)
    assert torch.allclose(parts["lin_vel_xy_fine"], 2.0 * torch.exp(-expected_err2 / 0.02) * dt, atol=1e-6)
    assert parts["lin_vel_xy_fine"][1] / (2.0 * dt) < 0.14


def test_imu_biases_shift_what_the_policy_observes_and_only_that() -> None:
    """A drawn gyro and gravity-direction bias (an IMU and attitude estimate that are off) is added to the policy's
    gyro and gravity columns, in their units before the scale; the critic keeps the truth. An arm has no IMU."""
    gyro, gravity = [0.1, -0.2, 0.3], [0.05, 0.0, -0.02]
    env = quiet("legged-walk", 2)
    env.reset()
    env.params["imu_gyro_bias"][:] = torch.tensor(gyro)
    env.params["imu_gravity_bias"][:] = torch.tensor(gravity)
    obs, *_ = env.step(torch.zeros(2, 12))
    spec_p, spec_c = env.obs_spec, env.critic_spec
    w_scale = spec_p.term("base_ang_vel").scale
    seen_w = obs["policy"][:, spec_p.slice("base_ang_vel")] / w_scale
    true_w = obs["critic"][:, spec_c.slice("true_base_ang_vel")] / spec_c.term("true_base_ang_vel").scale
    torch.testing.assert_close(seen_w - true_w, torch.tensor([gyro] * 2), atol=1e-5, rtol=0)
    seen_g = obs["policy"][:, spec_p.slice("projected_gravity")]
    true_g = obs["critic"][:, spec_c.slice("true_projected_gravity")]
    torch.testing.assert_close(seen_g - true_g, torch.tensor([gravity] * 2), atol=1e-6, rtol=0)
    with pytest.raises(RandomizationSpecError, match="imu_gyro_bias"):
        quiet("arm-reach", 2, randomization=NOMINAL.replace(imu_gyro_bias=D("constant", mean=0.0)))


def test_the_legged_default_draws_imu_turn_on_biases_with_the_cited_spread() -> None:
    """legged_randomization: gyro N(0, 0.0087 rad/s), gravity direction N(0, 0.02), clipped at 3 std, per axis
    (PX4 SITL's ADIS16448 turn-on bias sigmas); every env gets its own draw and the policy sees it."""
    env = make_env("legged-walk", 512, seed=0)
    env.reset()
    gyro, gravity = env.params["imu_gyro_bias"], env.params["imu_gravity_bias"]
    assert gyro.shape == gravity.shape == (512, 3)
    assert 0.0075 < float(gyro.std()) < 0.0097 and float(gyro.abs().max()) <= 0.0261 + 1e-6
    assert 0.017 < float(gravity.std()) < 0.023 and float(gravity.abs().max()) <= 0.06 + 1e-6
    assert abs(float(gyro.mean())) < 0.001 and len(torch.unique(gyro[:, 0])) == 512
