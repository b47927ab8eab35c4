"""Left-right symmetry in PPO's update (``TrainCfg.symmetry``, :class:`policies.train_cfg.SymmetryCfg`).

rsl_rl's :class:`rsl_rl.extensions.Symmetry` (Mittal et al., ICRA 2024) does the learning: with ``augment`` every
minibatch is followed by its mirror image (observations and actions mirrored, advantages, returns and old
log-probabilities repeated), so the actor and the critic learn the mirrored twin of each sample; with a
``mirror_loss`` weight the actor is also penalised for disagreeing with itself on mirrored observations. The mirror
maps come from the robot's joint and foot names and the observation terms (:mod:`sim.articulated.mirror`).

One change to rsl_rl's extension: without a mirror loss it still runs the actor on the augmented batch once more,
only to log the disagreement; :class:`LeanSymmetry` skips that (a third of the update's actor passes).
"""

from __future__ import annotations

from typing import Any

import torch
from rsl_rl.extensions import Symmetry
from tensordict import TensorDict

from sim.articulated.mirror import MirrorError, SignedPermutation, env_mirror, simulated_mirror_error

MIRROR_TOLERANCE = 0.01  # largest critic-observation difference of simulated mirror twins (the Go2: 5e-4)


class LeanSymmetry(Symmetry):
    """rsl_rl's Symmetry, whose loss is computed only when it is learnt from."""

    def compute_loss(self, actor: Any, batch: Any, original_batch_size: int) -> torch.Tensor:
        if not self.use_mirror_loss:
            return torch.zeros((), device=batch.actions.device)
        return super().compute_loss(actor, batch, original_batch_size)


def augmentation(groups: dict[str, SignedPermutation], action_map: SignedPermutation):
    """rsl_rl's ``data_augmentation_func``: (obs, actions) -> each followed by its mirror image along dim 0."""

    def augment(env: Any = None, obs: TensorDict | None = None, actions: torch.Tensor | None = None):
        out_obs = None
        if obs is not None:
            unknown = sorted(set(obs.keys()) - set(groups))
            if unknown:
                raise ValueError(f"symmetry: no mirror for observation group(s) {unknown}; mirrored: {sorted(groups)}")
            mirrored = TensorDict({k: groups[k](v) for k, v in obs.items()}, batch_size=obs.batch_size)
            out_obs = torch.cat([obs, mirrored], dim=0)
        out_act = None if actions is None else torch.cat([actions, action_map(actions)], dim=0)
        return out_obs, out_act

    return augment


def attach_symmetry(alg: Any, env: Any, cfg: Any) -> None:
    """Give rsl_rl's PPO ``alg`` the mirror of ``env``'s robot (``cfg``: :class:`policies.train_cfg.SymmetryCfg`)."""
    if not cfg.enabled:
        return
    if not hasattr(env, "profile"):
        raise ValueError(f"symmetry: the task's env ({type(env).__name__}) is not an articulated robot with a mirror")
    groups, actions = env_mirror(env, cfg.swap, cfg.negate)
    error = simulated_mirror_error(env, cfg.swap, cfg.negate)
    if not error <= MIRROR_TOLERANCE:
        raise MirrorError(
            f"symmetry: the declared mirror (swap {[list(p) for p in cfg.swap]}, negate {list(cfg.negate)}) is not "
            f"the simulator's: a robot started in the mirror image of another's state and given the mirrored actions "
            f"drifted {error:.3g} from the mirror image (a right mirror: < {MIRROR_TOLERANCE}); check which joints "
            "change sign (symmetry.negate) and the name pairs (symmetry.swap)"
        )
    alg.symmetry = LeanSymmetry(
        env,
        augmentation(groups, actions),
        use_data_augmentation=cfg.augment,
        use_mirror_loss=cfg.mirror_loss > 0,
        mirror_loss_coeff=cfg.mirror_loss,
    )
