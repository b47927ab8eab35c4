"""Left-right symmetry in PPO's update (TrainCfg.symmetry, policies.symmetry) on the Go2 variant: augmentation
doubles every minibatch with its mirror image, the mirror loss makes the actor agree with its mirror, and settings
no run can use are refused."""

from __future__ import annotations

import pytest
import torch

from policies.symmetry import augmentation
from policies.train import train
from policies.train_cfg import train_cfg
from sim.articulated.mirror import env_mirror

pytestmark = pytest.mark.usefixtures("one_thread")
_GO2 = train_cfg("legged-walk", "go2").symmetry  # the mirror the Go2 variant declares
SWAP, NEGATE = _GO2.swap, _GO2.negate


def _cfg(iterations: int = 2, **symmetry):
    cfg = train_cfg("legged-walk", "go2")
    cfg.num_envs, cfg.max_iterations, cfg.seed = 16, iterations, 0
    cfg.ppo.num_steps_per_env = 8
    for k, v in {"augment": False, "mirror_loss": 0.0, **symmetry}.items():
        setattr(cfg.symmetry, k, v)
    return cfg


def _disagreement(runner) -> float:
    """Mean squared difference between the actor's action on mirrored observations and its mirrored action."""
    env, actor = runner.env, runner.alg.actor
    groups, actions = env_mirror(env, SWAP, NEGATE)
    obs = env.get_observations()
    both, _ = augmentation(groups, actions)(obs=obs)
    with torch.no_grad():
        out = actor(both)
    n = obs.batch_size[0]
    return float(((out[n:] - actions(out[:n])) ** 2).mean())


def test_augmentation_feeds_the_update_each_minibatch_and_its_mirror() -> None:
    sizes = []

    def hook(runner):
        runner.alg.critic.register_forward_hook(lambda m, i, o: sizes.append(o.shape[0]) if m.training else None)

    result = train(_cfg(augment=True), None, progress=False, on_start=hook)
    rollout = 16 * 8  # envs x steps; 4 minibatches of 32 -> 64 with the mirrored half
    update = [s for s in sizes if s != 16]
    assert update and set(update) == {2 * rollout // 4}, sorted(set(sizes))
    assert result.runner.alg.symmetry.use_data_augmentation


def test_the_mirror_loss_makes_the_actor_agree_with_its_mirror() -> None:
    plain = train(_cfg(iterations=4), None, progress=False).runner
    mirrored = train(_cfg(iterations=4, mirror_loss=10.0), None, progress=False).runner
    assert _disagreement(mirrored) < 0.5 * _disagreement(plain)


def test_symmetry_settings_no_run_can_use_are_refused() -> None:
    cfg = _cfg(augment=True)
    cfg.symmetry.swap = ()
    with pytest.raises(ValueError, match="the robot's mirror must be named"):
        cfg.check()
    cfg = _cfg(mirror_loss=-1.0)
    with pytest.raises(ValueError, match="mirror_loss: expected a weight"):
        cfg.check()
    cfg = _cfg(augment=True, swap=(("FR_", "XX_"),))
    with pytest.raises(ValueError, match="the robot does not have"):
        train(cfg, None, progress=False)


def test_a_mirror_the_simulator_disagrees_with_is_refused_before_training() -> None:
    cfg = _cfg(augment=True, negate=())
    with pytest.raises(ValueError, match="is not the simulator's"):
        train(cfg, None, progress=False)
