"""Typed training configs: one per task, built from the env config, two model configs and the learner's settings.

``TrainCfg.rsl_rl_dict()`` turns a config into the dict rsl_rl v5's ``OnPolicyRunner`` expects (``obs_groups``,
``actor`` / ``critic`` model configs with ``class_name``, ``algorithm``). Every field says its unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from policies.curriculum import CurriculumCfg
from policies.td3 import TD3Cfg
from sim.env import OBS_GROUPS
from sim.overrides import OverrideError, apply_values
from sim.quadrotor.config import QuadrotorTaskCfg
from sim.robot_variants import find_robot
from sim.tasks import TASKS, cfg_for_variant, registration, robot_variant

MODEL_CLASS = "policies.models:MLPModel"  # the rsl_rl model every PPO config builds (``class_name``)
UPDATE_PRECISIONS = ("fp32", "bf16", "auto")  # TrainCfg.update_precision (policies.models.set_update_precision)
ESTIMATOR_MODEL_CLASS = "policies.estimator:EstimatorMLPModel"  # an actor with a state estimator


class TrainConfigError(ValueError):
    """A training setting no run can use (zero envs, a device this machine lacks, an interface the task has not)."""


@dataclass
class EstimatorCfg:
    """A state estimator trained with the policy (:mod:`policies.estimator`): an MLP from the actor's normalized
    observation to ``target``, a term of the critic's observation (the simulator's true value), whose output the
    actor reads as an extra input. PPO only; exported inside the policy's ONNX."""

    enabled: bool = False
    target: str = "base_lin_vel"  # a term of the task's critic observation
    hidden_dims: tuple[int, ...] = (128, 64)
    learning_rate: float = 1e-3  # Adam, its own optimizer
    num_learning_epochs: int = 5  # passes over each rollout, after the PPO update (as PPO; ~0.06 s each here)
    num_mini_batches: int = 4


@dataclass
class ModelCfg:
    """An MLP (rsl_rl's ``MLPModel`` as :class:`policies.models.MLPModel`) with empirical observation
    normalization; for an actor, optionally with a state estimator (:class:`EstimatorCfg`)."""

    hidden_dims: tuple[int, ...] = (64, 64)
    activation: str = "tanh"  # "tanh" | "elu": the C export supports these two
    obs_normalization: bool = True
    estimator: EstimatorCfg = field(default_factory=EstimatorCfg)

    def to_rsl_rl(self, distribution: dict[str, Any] | None = None) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "class_name": MODEL_CLASS,
            "hidden_dims": list(self.hidden_dims),
            "activation": self.activation,
            "obs_normalization": self.obs_normalization,
        }
        if self.estimator.enabled:  # its output size comes from the env's critic spec (policies.train)
            cfg.update(class_name=ESTIMATOR_MODEL_CLASS, estimator_hidden_dims=list(self.estimator.hidden_dims))
        if distribution is not None:
            cfg["distribution_cfg"] = distribution
        return cfg


@dataclass
class SymmetryCfg:
    """Left-right symmetry in PPO's update (:mod:`policies.symmetry`): ``augment`` adds each minibatch's mirror
    image (twice the update's work), ``mirror_loss`` > 0 weights a loss on the actor's disagreement with its mirror.
    The robot's mirror by name: ``swap`` pairs of name fragments, ``negate`` fragments of the joints whose angle
    changes sign (:mod:`sim.articulated.mirror`). Articulated robots only."""

    augment: bool = False
    mirror_loss: float = 0.0
    swap: tuple[tuple[str, str], ...] = ()
    negate: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.augment) or self.mirror_loss > 0


@dataclass
class PPOCfg:
    """rsl_rl PPO settings (FACTS.md: the legged_gym / rsl_rl defaults, entropy lowered for a 4-D action)."""

    num_steps_per_env: int = 24  # control steps per env per iteration
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    clip_param: float = 0.2
    gamma: float = 0.99  # per control step (100 Hz: horizon ~1 s)
    lam: float = 0.95
    value_loss_coef: float = 1.0
    entropy_coef: float = 0.005
    learning_rate: float = 1e-3  # initial; adapted to desired_kl
    max_grad_norm: float = 1.0
    schedule: str = "adaptive"
    desired_kl: float = 0.01
    init_noise_std: float = 0.5  # in normalized action units
    std_type: str = "log"

    def algorithm(self) -> dict[str, Any]:
        skip = {"num_steps_per_env", "init_noise_std", "std_type"}
        return {"class_name": "PPO", **{k: v for k, v in vars(self).items() if k not in skip}}


@dataclass
class TrainCfg:
    """Everything a training run needs; the resolved instance is written to ``run.json``."""

    task: str
    env: Any  # the task's typed env config (QuadrotorTaskCfg, LeggedWalkCfg, ArmReachCfg)
    # the robot trained (a name in launch/robots or $SIM2REAL_ROBOT_PATH, or the profile's absolute path; None: the
    # config's built-in vehicle); checkpoints carry it so that eval rebuilds the same variant without --robot
    robot: str | None = None
    seed: int = 0
    device: str = "cpu"
    num_envs: int = 4096
    max_iterations: int = 1500
    max_seconds: float | None = None  # wall clock; stops after the iteration that crosses it
    save_interval: int = 50  # iterations between checkpoints (the last iteration is always saved)
    actor: ModelCfg = field(default_factory=ModelCfg)
    critic: ModelCfg = field(default_factory=lambda: ModelCfg(hidden_dims=(128, 128), activation="elu"))
    ppo: PPOCfg = field(default_factory=PPOCfg)
    algo: str = "ppo"  # "ppo" (rsl_rl, policies.train) | "td3" (off-policy, policies.offpolicy)
    td3: TD3Cfg = field(default_factory=TD3Cfg)  # used when algo == "td3"
    obs_groups: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in OBS_GROUPS.items()})
    curriculum: CurriculumCfg = field(default_factory=lambda: CurriculumCfg(enabled=False))  # envs with set_init_scale
    compile_env: bool | None = None  # None: the env decides (compiled from 4096 envs)
    check_nan: bool = True  # stop with an error naming the group when the env returns NaN
    # the learning update's arithmetic: "fp32", "bf16" (hidden layers under bfloat16 autocast, policies.models) or
    # "auto" (bf16 where the device has native bfloat16 matrix units, else fp32); rollouts are float32 either way
    update_precision: str = "fp32"
    # PPO: evaluate and export a moving average of the actor, decay per iteration (0: the online actor; 0.8 averages
    # ~5 iterations); policies.runner
    deploy_average: float = 0.0
    symmetry: SymmetryCfg = field(default_factory=SymmetryCfg)  # PPO, articulated robots: policies.symmetry

    def select_algo(self, algo: str) -> None:
        """Train with ``algo`` ("ppo" | "td3"), with that learner's number of envs (``td3.num_envs`` for TD3)."""
        if algo not in ("ppo", "td3"):
            raise ValueError(f"unknown algo {algo!r}; expected 'ppo' or 'td3'")
        if algo == "td3" and self.algo != "td3":
            self.num_envs = self.td3.num_envs
        self.algo = algo

    def check(self) -> None:
        """Refuse settings no run can use, before anything is created; raises :class:`TrainConfigError`."""
        import torch

        for name, value in (("num_envs", self.num_envs), ("max_iterations", self.max_iterations)):
            if not (isinstance(value, int) and value > 0):
                flag = "--num-envs" if name == "num_envs" else "--iterations"
                raise TrainConfigError(f"{flag}: expected a positive whole number, got {value!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise TrainConfigError(f"--max-seconds: expected seconds > 0, got {self.max_seconds!r}")
        if self.save_interval is not None and not self.save_interval > 0:
            raise TrainConfigError(f"--save-interval: expected iterations > 0, got {self.save_interval!r}")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise TrainConfigError(f"--device {self.device!r}: not a torch device ({exc}); use cpu or cuda:0") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise TrainConfigError(
                    f"--device {self.device}: this torch has no usable CUDA device (torch.cuda.is_available() is "
                    "False); use --device cpu, or install a CUDA build of torch on a machine with a GPU"
                )
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise TrainConfigError(
                    f"--device {self.device}: there are {torch.cuda.device_count()} CUDA devices (0..)"
                )
        elif device.type != "cpu":
            raise TrainConfigError(f"--device {self.device}: expected cpu or cuda[:N]")
        if self.update_precision not in UPDATE_PRECISIONS:
            raise TrainConfigError(
                f"update_precision: expected one of {UPDATE_PRECISIONS}, got {self.update_precision!r}"
            )
        if not (isinstance(self.deploy_average, int | float) and 0.0 <= self.deploy_average < 1.0):
            raise TrainConfigError(
                f"deploy_average: expected a decay per iteration in [0, 1) (0: deploy the online actor), "
                f"got {self.deploy_average!r}"
            )
        if self.deploy_average and self.algo != "ppo":
            raise TrainConfigError(
                f"deploy_average is PPO's; the {self.algo} learner deploys its own averaged (target) actor "
                "(td3.deploy_target_actor): leave deploy_average at 0"
            )
        sym = self.symmetry
        if not (isinstance(sym.mirror_loss, int | float) and sym.mirror_loss >= 0):
            raise TrainConfigError(f"symmetry.mirror_loss: expected a weight >= 0, got {sym.mirror_loss!r}")
        if sym.enabled and (self.algo != "ppo" or not sym.swap):
            raise TrainConfigError(
                "symmetry: PPO only, and the robot's mirror must be named (symmetry.swap, e.g. "
                f"[['FR_', 'FL_'], ['RR_', 'RL_']]); got algo {self.algo!r}, swap {list(sym.swap)}"
            )
        if self.actor.estimator.enabled and self.algo != "ppo":
            raise TrainConfigError(
                f"actor.estimator is trained inside PPO's loop; the {self.algo} learner has none: use --algo ppo or "
                "set actor.estimator.enabled=false"
            )
        env = self.env
        if not (env.control_hz > 0 and math.isfinite(env.control_hz)):
            raise TrainConfigError(f"env.control_hz: expected a rate > 0 Hz, got {env.control_hz!r}")
        substeps = getattr(env, "physics_substeps", 1)
        if not (isinstance(substeps, int) and substeps >= 1):
            raise TrainConfigError(f"env.physics_substeps: expected a whole number >= 1, got {substeps!r}")
        if not env.max_episode_length >= 1:
            raise TrainConfigError(
                f"env.episode_s: expected at least one control step ({1 / env.control_hz:g} s), got {env.episode_s!r}"
            )
        self.check_randomization()

    def check_randomization(self) -> None:
        """Refuse a randomization spec the task cannot run (unknown parameters, physically impossible draws: a mass
        scale <= 0, a negative time constant or noise std, a latency as long as an episode) without building the
        simulator; raises :class:`~sim.randomization.RandomizationSpecError` naming the term."""
        if isinstance(self.env, QuadrotorTaskCfg):
            from sim.quadrotor.env import nominal_values

            self.env.check_randomization(nominal_values(self.env))
        else:
            from sim.articulated.randomization import check_randomization

            check_randomization(self.env)

    def select_interface(self, interface: str) -> None:
        """Act through ``interface`` ("rpm" | "ctbr") with that interface's measured learner settings and number of
        envs (quadrotor tasks, PPO: :func:`quadrotor_learner`); call it before ``--num-envs`` and ``--set``."""
        if registration(self.task).robot_class != "quadrotor":
            raise TrainConfigError(
                f"task {self.task!r} acts through joint position targets; --interface {interface} (rpm | ctbr) is "
                "for quadrotor tasks: leave it out"
            )
        learner = quadrotor_learner(interface)  # refuses an unknown interface before anything changes
        if self.algo == "ppo":
            self.num_envs, self.ppo, self.curriculum = learner.num_envs, learner.ppo, learner.curriculum
        self.env.action_interface = interface

    def rsl_rl_dict(self) -> dict[str, Any]:
        """The training config in rsl_rl v5's format (the runner mutates it: pass a fresh copy)."""
        p = self.ppo
        distribution = {"class_name": "GaussianDistribution", "init_std": p.init_noise_std, "std_type": p.std_type}
        return {
            "num_steps_per_env": p.num_steps_per_env,
            "save_interval": self.save_interval,
            "obs_groups": {k: list(v) for k, v in self.obs_groups.items()},
            "actor": self.actor.to_rsl_rl(distribution),
            "critic": self.critic.to_rsl_rl(),
            "algorithm": p.algorithm(),
            "check_for_nan": self.check_nan,
        }


@dataclass
class QuadrotorLearner:
    """What the quadrotor tasks' PPO runs with, per action interface (:func:`quadrotor_learner`)."""

    num_envs: int
    ppo: PPOCfg
    curriculum: CurriculumCfg


def quadrotor_learner(interface: str) -> QuadrotorLearner:
    """PPO settings and number of envs per action interface, chosen by wall-clock time to hover on 2 CPU cores
    (docs/training.md, "Time to hover", "PPO settings with the history" and "Smaller iterations").

    rpm: 192 envs x 32 steps, 2 epochs of 2 minibatches, initial action std 0.5, curriculum steps of 0.2, first
    learning rate 1e-3 (adapted from there), gamma 0.995 (a ~2 s horizon). Gamma was 0.98 (95 % in a median 15.4 s
    over 5 seeds on the ideal vehicle); on the imperfect default vehicles 0.98 crashed in 10.5 % of random starts
    after 150 s of training and 0.995 in 2.9-3.7 %, and only 0.995 crossed 95 % within 90 s (docs/training.md,
    "Crashes on the imperfect vehicle: the horizon"). ctbr keeps the earlier settings (512
    envs, 5 x 4, std 0.3, steps of 0.1, 1e-3, 0.99): with the rpm ones of session 7 it had 58 % at 104 s where
    they reach 95 % at 43 s (seed 0)."""
    if interface == "rpm":
        ppo = PPOCfg(
            num_steps_per_env=32,
            init_noise_std=0.5,
            num_learning_epochs=2,
            num_mini_batches=2,
            learning_rate=1e-3,
            gamma=0.995,
        )
        return QuadrotorLearner(192, ppo, CurriculumCfg(enabled=True, step=0.2))
    if interface == "ctbr":
        return QuadrotorLearner(
            512, PPOCfg(num_steps_per_env=32, init_noise_std=0.3), CurriculumCfg(enabled=True, step=0.1)
        )
    raise ValueError(f"unknown action interface {interface!r}; expected 'rpm' or 'ctbr'")


def _quadrotor(task: str, env: QuadrotorTaskCfg | None = None, **overrides: Any) -> TrainCfg:
    """Chosen by measurement for wall-clock time to hover on 2 CPU cores (docs/training.md, "Time to hover"):
    a few hundred envs x 32 steps per iteration (many cheap iterations learn faster per second than 4096 x 24), a
    64-64 critic (4x cheaper to update than 128-128 at no loss), the initial-state curriculum; the number of envs
    and the learner's settings per action interface (:func:`quadrotor_learner`, rpm by default;
    ``select_interface`` switches)."""
    env = env if env is not None else QuadrotorTaskCfg(task=task)
    learner = quadrotor_learner(env.action_interface)
    return TrainCfg(
        task=f"quadrotor-{task}",
        env=env,
        num_envs=learner.num_envs,
        critic=ModelCfg(hidden_dims=(64, 64), activation="elu"),
        ppo=learner.ppo,
        curriculum=learner.curriculum,
        **overrides,
    )


def quadrotor_hover(env: QuadrotorTaskCfg | None = None) -> TrainCfg:
    return _quadrotor("hover", env)


def quadrotor_track(env: QuadrotorTaskCfg | None = None) -> TrainCfg:
    return _quadrotor("track", env, max_iterations=3000)


def legged_walk(env: Any = None) -> TrainCfg:
    """legged_gym's A1 PPO settings (FACTS.md: entropy 0.01, initial std 1.0, 24 steps per env) with two changes
    chosen by measurement on 2 CPU cores (docs/articulated.md, "Walking on this CPU"): 2048 envs, because at 512 the
    12 k-step batches left it standing for 250 iterations while 2048 (49 k steps) started walking after ~150, and
    256-128-64 ELU networks instead of 512-256-128 (3.5x fewer multiply-adds per sample; at 512 envs the two learned
    alike over 60 iterations, the larger one not compared at 2048).
    On a GPU, ``--num-envs 4096`` is legged_gym's own setting. ``env``: the task's config for a robot (default:
    the default robot's, ``sim.tasks.task_cfg``); the robot's variant restates what depends on the robot."""
    from sim.tasks import task_cfg

    model = ModelCfg(hidden_dims=(256, 128, 64), activation="elu")
    return TrainCfg(
        task="legged-walk",
        env=env if env is not None else task_cfg("legged-walk"),
        num_envs=2048,
        max_iterations=1500,
        actor=model,
        critic=ModelCfg(hidden_dims=(256, 128, 64), activation="elu"),
        ppo=PPOCfg(entropy_coef=0.01, init_noise_std=1.0),
    )


def arm_reach(env: Any = None) -> TrainCfg:
    """A smaller MLP for a 7-joint reach; 4 s episodes at 50 Hz. ``env``: as for :func:`legged_walk`."""
    from sim.tasks import task_cfg

    return TrainCfg(
        task="arm-reach",
        env=env if env is not None else task_cfg("arm-reach"),
        max_iterations=1000,
        actor=ModelCfg(hidden_dims=(256, 128, 64), activation="elu"),
        critic=ModelCfg(hidden_dims=(256, 128, 64), activation="elu"),
        ppo=PPOCfg(entropy_coef=0.005, init_noise_std=0.5),
    )


def train_cfg(task: str, robot: str | Path | None = None) -> TrainCfg:
    """The training config of ``task`` for ``robot`` (a name, a path to a robot profile YAML, or None for the task's
    default robot): the registration's training config (``train_cfg`` entry point) built on the robot's env config
    (``sim.tasks.task_cfg``), then the variant's ``train:`` overrides. Errors: see ``sim.tasks.task_cfg``."""
    if task not in TASKS:
        raise KeyError(f"no training config for task {task!r}; configured tasks: {sorted(TASKS)}")
    variant = robot_variant(task, robot)
    cfg = registration(task).train_cfg_factory()(cfg_for_variant(task, variant))
    if variant is None:
        return cfg
    # a name when the lookup by name finds this same profile (portable across checkouts), else its absolute path
    try:
        cfg.robot = variant.robot if find_robot(variant.robot) == variant.profile_path else str(variant.profile_path)
    except ValueError:
        cfg.robot = str(variant.profile_path)
    try:
        apply_values(cfg, variant.train)
    except OverrideError as exc:
        raise OverrideError(f"robot variant {str(variant.variant_path)!r}, train: {exc}") from None
    return cfg


#: task -> its training config for the default robot (derived from the registrations in ``sim.tasks.TASKS``)
TRAIN_CFGS: dict[str, Callable[[], TrainCfg]] = {name: partial(train_cfg, name) for name in TASKS}
