"""The penalty terms a quadrotor reward list may name, and their weighted sum (``RewardCfg.terms``).

A term is a pure function of :mod:`sim.quadrotor.terms` bound to the step quantities it reads, by name. The step
(``sim.quadrotor.torch_step``) provides these quantities, all component-major:

- ``position``, ``reference_position``: (3, N) m, world frame
- ``velocity_error``: (3, N) m/s, velocity minus reference velocity
- ``angular_velocity``: (3, N) rad/s, body frame
- ``rot_zz``: (N,) world-z component of the body z axis (cos of the tilt)
- ``action``, ``last_action``: (4, N) normalized actions of this and the last control step
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor

from sim.quadrotor import terms


@dataclass(frozen=True)
class PenaltyTerm:
    """``kernel(*(quantities[name] for name in inputs))`` -> (N,), >= 0 for finite inputs."""

    kernel: Callable[..., Tensor]
    inputs: tuple[str, ...]
    unit: str


PENALTY_TERMS: dict[str, PenaltyTerm] = {
    "position": PenaltyTerm(terms.position_error_norm, ("position", "reference_position"), "m"),
    "position_l2": PenaltyTerm(terms.position_error_l2, ("position", "reference_position"), "m^2"),
    "velocity": PenaltyTerm(terms.lin_vel_l2, ("velocity_error",), "(m/s)^2"),
    "angular_velocity": PenaltyTerm(terms.ang_vel_l2, ("angular_velocity",), "(rad/s)^2"),
    "tilt": PenaltyTerm(terms.tilt_cos, ("rot_zz",), "1 - cos tilt"),
    "action": PenaltyTerm(terms.action_l2, ("action",), "squared normalized action"),
    "action_rate": PenaltyTerm(terms.action_rate_l2, ("action", "last_action"), "squared normalized action change"),
}


def check_terms(weights: Mapping[str, float]) -> None:
    """Refuse a reward list naming unknown terms or non-numeric weights (ValueError that lists the known terms)."""
    if not weights:
        raise ValueError(f"reward.terms is empty; expected term -> weight pairs from {sorted(PENALTY_TERMS)}")
    unknown = [name for name in weights if name not in PENALTY_TERMS]
    if unknown:
        raise ValueError(
            f"reward.terms names unknown penalty terms {unknown}; known terms: {sorted(PENALTY_TERMS)} "
            "(sim.quadrotor.rewards.PENALTY_TERMS)"
        )
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValueError(f"reward.terms[{name!r}]: expected a number (weight per {PENALTY_TERMS[name].unit}), "
                             f"found {weight!r}")  # fmt: skip


def penalty_sum(weights: Mapping[str, float], quantities: Mapping[str, Tensor]) -> Tensor:
    """sum(weight * term) in the order of ``weights`` (term name -> weight): (N,). Left to right, one product and one
    add per term, so a list computes the same float operations as the sum written out by hand."""
    total = None
    for name, weight in weights.items():
        term = PENALTY_TERMS[name]
        value = weight * term.kernel(*(quantities[k] for k in term.inputs))
        total = value if total is None else total + value
    return total
