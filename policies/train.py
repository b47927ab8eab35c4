"""``sim2real train TASK``: rsl_rl PPO with the asymmetric actor-critic on a batched task.

The actor sees the ``policy`` group (what the robot measures); the critic also sees ``critic`` (true state) and
``privileged`` (randomized parameters, disturbances) -- ``sim.env.OBS_GROUPS``. rsl_rl's ``OnPolicyRunner``
builds the algorithm and writes checkpoints in its own format; the iteration loop is ours so that it can stop on
wall-clock time and report progress through a rich bar (rsl_rl's logger prints a page per iteration).

``--robot NAME_OR_PATH`` trains the task on another robot of its class: its profile and its variant of the task
(``policies.train_cfg.train_cfg(task, robot)``, docs/adding_a_robot.md); the run remembers it (``config.robot``).

Run directory ``runs/<task>/<timestamp>/``: ``run.json`` (resolved config, git commit, command),
``randomization.yaml``, ``model_<it>.pt`` checkpoints (with the metadata export needs, see
:func:`checkpoint_infos`), TensorBoard event files.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from policies.train_cfg import TRAIN_CFGS, TrainCfg, train_cfg
from policies.train_loop import (
    IterationCallback,
    IterationLoop,
    IterationStats,
    TrainResult,
    write_iteration_scalars,
)

log = logging.getLogger("sim2real.train")

CHECKPOINT_FORMAT = "sim2real-checkpoint/1"
ALGOS = ("ppo", "td3")
OUTPUT_ACTIVATIONS = {"ppo": None, "td3": "tanh"}  # applied to the actor's last layer (the Gaussian mean for PPO)


def checkpoint_infos(cfg: TrainCfg, env: Any, iteration: int, wall_s: float, commit: str) -> dict[str, Any]:
    """What export and evaluation need besides the weights, stored in the checkpoint's ``infos``."""
    from policies.runinfo import to_jsonable

    actor = cfg.actor
    return {
        "format": CHECKPOINT_FORMAT,
        "task": cfg.task,
        "robot": cfg.robot,
        "iteration": iteration,
        "wall_s": wall_s,
        "seed": cfg.seed,
        "git_commit": commit,
        "obs_spec": env.obs_spec.to_json(),
        "action_spec": env.action_spec.to_json(),
        "control_hz": float(env.cfg.control_hz),
        "profile": env.cfg.params.to_dict(),
        "randomization": env.cfg.randomization.to_dict(),
        "randomization_digest": env.cfg.randomization.digest(),
        "env_cfg": to_jsonable(env.cfg),
        "actor": {
            "hidden_dims": list(actor.hidden_dims),
            "activation": actor.activation,
            "obs_normalization": actor.obs_normalization,
            "obs_groups": list(cfg.obs_groups["actor"]),
            "output_activation": OUTPUT_ACTIVATIONS[cfg.algo],
            # the state estimator inside the actor (policies.estimator), or None
            "estimator": estimator_infos(cfg, env),
        },
        "algo": cfg.algo,
    }


def make_run_dir(root: Path, task: str) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = root / task / stamp
    k = 1
    while run_dir.exists():
        run_dir = root / task / f"{stamp}_{k}"
        k += 1
    run_dir.mkdir(parents=True)
    return run_dir


def train(
    cfg: TrainCfg,
    run_dir: Path | None = None,
    progress: bool = True,
    on_iteration: IterationCallback | None = None,
    on_start: Callable[[Any], None] | None = None,
) -> TrainResult:
    """Train ``cfg`` and return the result; with ``run_dir`` write checkpoints, run info and TensorBoard logs.

    ``on_iteration(stats, runner)`` runs after every iteration (e.g. a periodic evaluation) and returns True to
    stop. The time it takes is paused out of the training clock: ``wall_s`` and ``max_seconds`` count training
    only, and ``TrainResult.paused_s`` reports the callback's share. ``on_start(runner)`` (PPO only) runs once
    after the learner is built, before the first rollout: it may load weights into ``runner.alg.actor`` or replace
    parts of it (rebuilding ``runner.alg.optimizer`` if it does).

    Deterministic for a given (seed, device, config): the env draws from its own generator seeded with
    ``cfg.seed``; rsl_rl draws network initialisation, action noise and minibatch order from torch's global
    generator, which is seeded here (rsl_rl offers no generator argument).

    ``cfg.algo`` picks the learner: "ppo" (rsl_rl, this loop) or "td3" (:mod:`policies.offpolicy`, the same
    contract; its ``runner`` is the :class:`policies.td3.TD3` learner).
    """
    if cfg.algo not in ALGOS:
        raise ValueError(f"unknown algo {cfg.algo!r}; expected one of {ALGOS}")
    if cfg.algo == "td3":
        from policies.offpolicy import train_offpolicy

        if on_start is not None:
            raise ValueError("on_start: the PPO learner's hook; the td3 learner has none")
        return train_offpolicy(cfg, run_dir, progress, on_iteration)
    from rsl_rl.utils import check_nan

    from policies.models import set_update_precision
    from policies.runinfo import git_commit, write_run_info
    from policies.runner import ActorAverage, Runner
    from policies.symmetry import attach_symmetry
    from sim.tasks import make_env

    if cfg.num_envs <= 0 or cfg.max_iterations <= 0:
        raise ValueError(f"num_envs and max_iterations must be positive, got {cfg.num_envs}, {cfg.max_iterations}")
    if cfg.max_seconds is not None and cfg.max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive (or None), got {cfg.max_seconds}")
    torch.manual_seed(cfg.seed)
    t_start = time.perf_counter()
    env = make_env(cfg.task, cfg.num_envs, device=cfg.device, seed=cfg.seed, cfg=cfg.env, compile=cfg.compile_env)
    rsl = cfg.rsl_rl_dict()
    target = estimator_target(cfg, env)
    if target is not None:
        rsl["actor"]["estimator_dim"] = target.stop - target.start
    with contextlib.redirect_stdout(io.StringIO()) as captured:  # rsl_rl prints the models
        runner = Runner(env, rsl, log_dir=None, device=cfg.device)
    log.debug("rsl_rl: %s", captured.getvalue().strip())
    alg = runner.alg
    set_update_precision([alg.actor, alg.critic], cfg.update_precision, torch.device(cfg.device))
    attach_symmetry(alg, env, cfg.symmetry)
    if on_start is not None:
        on_start(runner)
    if cfg.deploy_average:  # the deployed actor: a moving average of the online one (policies.runner)
        runner.average = ActorAverage(alg.actor, cfg.deploy_average)
    estimator = None
    if target is not None:
        from policies.estimator import EstimatorTrainer

        e = cfg.actor.estimator
        estimator = EstimatorTrainer(alg.actor, target, e.learning_rate, e.num_learning_epochs, e.num_mini_batches)
    commit = git_commit()
    writer = None
    if run_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        write_run_info(
            run_dir,
            cfg,
            {"task": cfg.task, "rsl_rl": cfg.rsl_rl_dict(), "randomization_digest": cfg.env.randomization.digest()},
        )
        cfg.env.randomization.to_yaml(run_dir / "randomization.yaml")
        writer = SummaryWriter(log_dir=str(run_dir), flush_secs=10)

    result = TrainResult(run_dir, 0, 0.0, runner=runner)
    steps_per_iteration = cfg.num_envs * cfg.ppo.num_steps_per_env
    obs = env.get_observations().to(cfg.device)
    alg.train_mode()

    def save(it: int) -> None:
        path = run_dir / f"model_{it}.pt"
        runner.current_learning_iteration = it
        runner.save(str(path), infos=checkpoint_infos(cfg, env, it, loop.elapsed(), commit))
        result.checkpoints.append(path)

    def write(stats: IterationStats, losses: dict[str, float], t_collect: float, t_learn: float) -> None:
        if writer is not None:
            _write_scalars(writer, stats, losses, alg, t_collect, t_learn)

    loop = IterationLoop(cfg, env, result, save if run_dir is not None else None, on_iteration, t_start, progress)
    with loop:
        it = 0
        for it in range(cfg.max_iterations):
            t0 = time.perf_counter()
            reward_sum = torch.zeros((), device=cfg.device)
            episodes: list[dict[str, torch.Tensor]] = []
            with torch.inference_mode():
                for _ in range(cfg.ppo.num_steps_per_env):
                    actions = alg.act(obs)
                    obs, rewards, dones, extras = env.step(actions.to(env.device))
                    obs, rewards, dones = obs.to(cfg.device), rewards.to(cfg.device), dones.to(cfg.device)
                    alg.process_env_step(obs, rewards, dones, extras)
                    reward_sum += rewards.mean()
                    if "log" in extras:
                        episodes.append({k: v.float() for k, v in extras["log"].items()})
                if cfg.check_nan:  # once per rollout, before anything is learnt from it (per step: ~2 % of the time)
                    st = alg.storage
                    check_nan(st.observations, st.rewards, st.dones)
                    check_nan(obs, rewards, dones)
                alg.compute_returns(obs)
            t1 = time.perf_counter()
            losses = alg.update()
            if estimator is not None:
                losses["estimator"] = estimator.update(alg.storage.observations)
            if not all(torch.isfinite(p).all() for p in alg.get_policy().parameters()):
                raise FloatingPointError(
                    f"the actor's parameters became non-finite at iteration {it} (losses {losses}); "
                    "lower ppo.learning_rate or check the rewards' scale"
                )
            if runner.average is not None:
                runner.average.update()
            t2 = time.perf_counter()
            stats = loop.stats(it, t0, t2, steps_per_iteration, reward_sum.item() / cfg.ppo.num_steps_per_env, episodes)
            write(stats, losses, t1 - t0, t2 - t1)
            if loop.end(stats, runner, resume=alg.train_mode):
                break
    if writer is not None:
        writer.close()
    return loop.finish(it)


def estimator_infos(cfg: TrainCfg, env: Any) -> dict[str, Any] | None:
    """What the actor's state estimator estimates (target term, its observation scale and unit, hidden sizes)."""
    e = cfg.actor.estimator
    if not e.enabled:
        return None
    term = env.critic_spec.term(e.target)
    return {"target": e.target, "scale": term.scale, "unit": term.unit, "description": term.description,
            "hidden_dims": list(e.hidden_dims)}  # fmt: skip


def estimator_target(cfg: TrainCfg, env: Any) -> slice | None:
    """The critic observation's slice the actor's state estimator learns (None without one); a clear error for a
    target the task's critic does not observe."""
    e = cfg.actor.estimator
    if not e.enabled:
        return None
    spec = getattr(env, "critic_spec", None)
    if spec is None or e.target not in spec.names:
        raise ValueError(
            f"actor.estimator.target {e.target!r}: expected a term of the task's critic observation "
            f"{list(spec.names) if spec is not None else '(this task has no critic spec)'}"
        )
    return spec.slice(e.target)


def _write_scalars(writer: Any, s: IterationStats, losses: dict[str, float], alg: Any, t_collect, t_learn) -> None:
    it = s.iteration
    for key, value in losses.items():
        writer.add_scalar(f"Loss/{key}", value, it)
    writer.add_scalar("Loss/learning_rate", alg.learning_rate, it)
    writer.add_scalar("Policy/mean_std", alg.get_policy().output_std.mean().item(), it)
    write_iteration_scalars(writer, s, t_collect, t_learn)


# ---------------------------------------------------------------------------------------------- command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=sorted(TRAIN_CFGS), help="task to train")
    p.add_argument(
        "--robot",
        default=None,
        help="robot: a name (launch/robots/NAME.yaml, or in $SIM2REAL_ROBOT_PATH) or a path to a robot profile YAML; "
        "its variant of the task is <robot dir>/../tasks/TASK/NAME.yaml (default: the task's robot; "
        "docs/adding_a_robot.md)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the env and of rsl_rl (default: config, 0)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: config, cpu)")
    p.add_argument(
        "--num-envs",
        type=int,
        default=None,
        help="parallel envs (default: the task's config; 512 for the quadrotor, 2048 for legged-walk)",
    )
    p.add_argument(
        "--algo",
        choices=ALGOS,
        default=None,
        help="learner: ppo (rsl_rl) or td3 (off-policy; its env count is td3.num_envs) (default: the task's config)",
    )
    p.add_argument("--iterations", type=int, default=None, help="training iterations (default: config)")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock limit for training, s")
    p.add_argument("--interface", choices=["rpm", "ctbr"], default=None, help="action interface (default rpm)")
    p.add_argument("--randomization", type=Path, default=None, help="RandomizationSpec YAML (default: the task's)")
    p.add_argument("--save-interval", type=int, default=None, help="iterations between checkpoints")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="root of run directories (default runs/)")
    p.add_argument("--run-dir", type=Path, default=None, help="exact run directory (default RUNS/TASK/TIMESTAMP)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's; 1 is faster on a busy CPU)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field by its dotted path, e.g. --set ppo.num_learning_epochs=3 "
        "--set env.reward.position=4 (repeatable; see run.json for the fields)",
    )


def cfg_from_args(args: argparse.Namespace) -> TrainCfg:
    """The task's config for ``--robot`` (its profile and variant) with the command-line overrides applied."""
    from policies.overrides import OverrideError, apply_overrides
    from sim.randomization import RandomizationSpec

    cfg = train_cfg(args.task, getattr(args, "robot", None))
    if getattr(args, "algo", None):
        cfg.select_algo(args.algo)
    if getattr(args, "interface", None):
        cfg.select_interface(args.interface)  # its number of envs and settings; the flags below override them
    for attr, name in (
        ("seed", "seed"),
        ("device", "device"),
        ("num_envs", "num_envs"),
        ("iterations", "max_iterations"),
        ("max_seconds", "max_seconds"),
        ("save_interval", "save_interval"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            setattr(cfg, name, value)
    if getattr(args, "randomization", None) is not None:
        cfg.env.randomization = RandomizationSpec.from_yaml(args.randomization)
    try:
        apply_overrides(cfg, list(getattr(args, "overrides", None) or []))
    except OverrideError as exc:
        raise OverrideError(f"--set: {exc}") from None
    return cfg


def run(args: argparse.Namespace) -> int:
    from policies.train_cfg import TrainConfigError

    cfg = cfg_from_args(args)
    cfg.check()  # before the run directory exists: a refused run leaves nothing behind
    if args.threads is not None:
        if args.threads <= 0:
            raise TrainConfigError(f"--threads: expected a positive number, got {args.threads}")
        torch.set_num_threads(args.threads)
    created = args.run_dir is None or not args.run_dir.exists()
    try:
        run_dir = args.run_dir if args.run_dir is not None else make_run_dir(args.runs, cfg.task)
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = f"--run-dir {args.run_dir}" if args.run_dir is not None else f"--runs {args.runs}"
        raise TrainConfigError(
            f"{where}: cannot create the run directory ({exc.strerror or exc}); choose a directory you can write to"
        ) from None
    try:
        return _train_into(cfg, run_dir, args)
    except BaseException:
        if created and not any(run_dir.glob("model_*.pt")):  # nothing worth keeping: no empty run directory
            shutil.rmtree(run_dir, ignore_errors=True)
            for parent in (run_dir.parent, run_dir.parent.parent):  # runs/<task>, runs: only if now empty
                with contextlib.suppress(OSError):
                    parent.rmdir()
        raise


def _train_into(cfg: TrainCfg, run_dir: Path, args: argparse.Namespace) -> int:
    log.info(
        "training %s%s (%s actions): %d envs, up to %d iterations%s, seed %d, device %s -> %s",
        cfg.task,
        f" on robot {cfg.robot}" if cfg.robot else "",
        cfg.env.action_interface,
        cfg.num_envs,
        cfg.max_iterations,
        f" or {cfg.max_seconds:g} s" if cfg.max_seconds else "",
        cfg.seed,
        cfg.device,
        run_dir,
    )
    result = train(cfg, run_dir, progress=not args.no_progress)
    last = result.history[-1]
    log.info(
        "done: %d iterations in %.1f s (%.0f steps/s last), episode %.2f s, crash %.1f %%; checkpoint %s",
        result.iterations,
        result.wall_s,
        last.steps_per_s,
        last.episode_length_s,
        100 * last.crash_rate,
        result.checkpoints[-1],
    )
    print(run_dir)
    return 0
