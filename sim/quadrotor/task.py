"""What makes a quadrotor task: its reward terms, its reference and the observations it adds (data, torch-free).

One :class:`QuadrotorTask` per file (``hover.py``, ``track.py``); :data:`sim.quadrotor.config.TASKS` names them and
``QuadrotorTaskCfg(task=...)`` takes its defaults from the one it names. The env (``sim.quadrotor.env``) is the
same for every task: it reads the reward list and the reference kind from here, never the task's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.obs_spec import ObsTerm

REFERENCES = ("fixed", "trajectory")


@dataclass(frozen=True)
class QuadrotorTask:
    """A quadrotor task as data.

    reward: the penalty terms of the step reward ``alive * exp(-sum(weight * term))`` as (term, weight) pairs,
    summed in this order; a term is a name of ``sim.quadrotor.rewards.PENALTY_TERMS`` and its weight is per unit of
    that term. This is the default of ``QuadrotorTaskCfg.reward.terms``, which a user may change.
    reference: "fixed" (a point at ``termination.reference_height_m``: no trajectory state, no trigonometry) or
    "trajectory" (per-env sums of sinusoids and figure-eights drawn at reset, ``cfg.trajectory``).
    observations: policy observation terms the task adds after the measured state (before ``last_action``).
    """

    name: str
    description: str
    reward: tuple[tuple[str, float], ...]
    reference: str
    observations: tuple[ObsTerm, ...] = ()

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"task {self.name!r}: reference expected one of {REFERENCES}, found {self.reference!r}")
        names = [name for name, _ in self.reward]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r}: reward terms must be named once each, found {names}")
