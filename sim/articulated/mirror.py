"""The left-right mirror image of an articulated robot's observations and actions (symmetry augmentation).

A quadruped walking under a command has a mirror twin: reflect the world in the robot's sagittal (x-z) plane and
the left legs become the right ones, a sideways velocity and a yaw rate change sign, and the mirrored state calls
for the mirrored action. PPO can learn from both halves of each sample (policies/symmetry.py; Mittal et al.,
"Symmetry Considerations for Learning Task Symmetric Robot Policies", ICRA 2024).

Every observation term maps to its mirror by a signed permutation of its components, chosen by the term's name:

- ``polar``: a vector in the base frame (velocity, gravity direction, centre-of-mass offset): (x, y, z) -> (x, -y, z);
- ``axial``: an angular velocity, a pseudovector: (x, y, z) -> (-x, y, -z);
- ``command``: (vx, vy, yaw rate) -> (vx, -vy, -yaw rate);
- ``joints_signed``: one value per joint in an angle's sense (positions, velocities, actions): each joint takes its
  mirror joint's value, negated for the joints whose angle changes sign (a hip's abduction);
- ``joints``: one ratio per joint (motor strength, gains): the mirror joint's value;
- ``feet``: one value per foot: the mirror foot's;
- ``invariant``: unchanged (heights, friction, masses, latencies).

The robot's mirror is named, not computed: ``swap`` pairs of name fragments (Unitree ``[["FR_", "FL_"], ["RR_",
"RL_"]]``) turn a joint's or a foot's name into its mirror's, and ``negate`` fragments name the joints whose angle
changes sign (Unitree ``["_hip_joint"]``: the hips' x axes point the same way on both sides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor

from sim.obs_spec import ObsSpec, ObsTerm, split_history

TERM_KINDS = {
    "polar": ("base_lin_vel_estimate", "base_lin_vel", "projected_gravity", "true_projected_gravity", "base_com"),
    "axial": ("base_ang_vel", "true_base_ang_vel"),
    "command": ("velocity_command",),
    "joints_signed": ("joint_pos", "joint_vel", "last_action", "true_joint_pos", "true_joint_vel",
                      "default_pose_offset"),
    "joints": ("motor_strength", "kp_factor", "kd_factor"),
    "feet": ("foot_contact", "feet_air_time"),
    "invariant": ("base_height", "ground_friction", "added_base_mass", "latency"),
}  # fmt: skip
_KIND = {name: kind for kind, names in TERM_KINDS.items() for name in names}
_VECTOR_SIGNS = {"polar": (1.0, -1.0, 1.0), "axial": (-1.0, 1.0, -1.0), "command": (1.0, -1.0, -1.0)}


class MirrorError(ValueError):
    """The robot's names or an observation's terms have no mirror image as declared; the message says what to fix."""


class SignedPermutation:
    """``y[..., i] = x[..., index[i]] * sign[i]``; follows its input to that input's device."""

    def __init__(self, index: Tensor, sign: Tensor):
        self.index, self.sign = index.to(torch.long), sign

    def __call__(self, x: Tensor) -> Tensor:
        if self.index.device != x.device:
            self.index, self.sign = self.index.to(x.device), self.sign.to(x.device)
        return x[..., self.index] * self.sign.to(x.dtype)


def mirror_names(names: Sequence[str], swap: Sequence[Sequence[str]], what: str) -> list[int]:
    """For each name the index of its mirror in ``names``: one ``swap`` fragment replaced by its partner (a name
    with no fragment is its own mirror, e.g. a spine joint)."""
    pairs = [tuple(p) for p in swap]
    if not pairs or not all(len(p) == 2 and all(isinstance(s, str) and s for s in p) for p in pairs):
        raise MirrorError(f"symmetry.swap: expected pairs of name fragments like [['FR_', 'FL_'], ...], got {swap!r}")
    where = {n: i for i, n in enumerate(names)}
    out = []
    for name in names:
        image = name
        for a, b in pairs:
            if a in name:
                image = name.replace(a, b)
                break
            if b in name:
                image = name.replace(b, a)
                break
        if image not in where:
            raise MirrorError(
                f"symmetry.swap {pairs}: the mirror of {what} {name!r} would be {image!r}, which the robot does not "
                f"have; its {what}s: {list(names)}"
            )
        out.append(where[image])
    return out


class Mirror:
    """The mirror image of one robot: joint and foot permutations, joint signs, and the maps of whole specs."""

    def __init__(
        self, joints: Sequence[str], feet: Sequence[str], swap: Sequence[Sequence[str]], negate: Sequence[str]
    ):
        self.joint_index = mirror_names(joints, swap, "joint")
        self.foot_index = mirror_names(feet, swap, "foot")
        if not all(isinstance(s, str) and s for s in negate):
            raise MirrorError(f"symmetry.negate: expected joint-name fragments like ['_hip_joint'], got {negate!r}")
        self.joint_sign = [-1.0 if any(s in n for s in negate) else 1.0 for n in joints]
        for i, j in enumerate(self.joint_index):
            if self.joint_sign[i] != self.joint_sign[j]:
                raise MirrorError(
                    f"symmetry.negate {list(negate)}: joint {joints[i]!r} is negated but its mirror {joints[j]!r} is "
                    "not (or the reverse); name fragments both share"
                )

    def term(self, term: ObsTerm) -> tuple[list[int], list[float]]:
        """Index and sign of each component of ``term`` (relative to the term's start)."""
        kind = _KIND.get(term.name)
        if kind is None:
            raise MirrorError(
                f"observation term {term.name!r} has no declared mirror image; add it to one of "
                f"sim.articulated.mirror.TERM_KINDS {sorted(TERM_KINDS)}"
            )
        if kind in _VECTOR_SIGNS:
            return self._sized(term, [0, 1, 2], list(_VECTOR_SIGNS[kind]))
        if kind == "joints_signed":
            return self._sized(term, self.joint_index, self.joint_sign)
        if kind == "joints":
            return self._sized(term, self.joint_index, [1.0] * len(self.joint_index))
        if kind == "feet":
            return self._sized(term, self.foot_index, [1.0] * len(self.foot_index))
        return list(range(term.size)), [1.0] * term.size

    def spec(self, spec: ObsSpec) -> SignedPermutation:
        """The signed permutation of a whole observation vector of ``spec`` (an observation history mirrored step
        by step)."""
        base, steps = split_history(spec)
        index: list[int] = []
        sign: list[float] = []
        for t in base.terms:
            start = base.slice(t.name).start
            i, s = self.term(t)
            index += [start + k for k in i]
            sign += s
        for step in range(1, steps + 1):
            index += [step * base.dim + k for k in index[: base.dim]]
            sign += sign[: base.dim]
        return SignedPermutation(torch.tensor(index), torch.tensor(sign))

    def actions(self) -> SignedPermutation:
        """Joint actions (profile order) -> their mirror image."""
        return SignedPermutation(torch.tensor(self.joint_index), torch.tensor(self.joint_sign))

    @staticmethod
    def _sized(term: ObsTerm, index: list[int], sign: list[float]) -> tuple[list[int], list[float]]:
        if term.size != len(index):
            raise MirrorError(
                f"observation term {term.name!r} has {term.size} values; its mirror rule expects {len(index)}"
            )
        return index, sign


def env_mirror(
    env, swap: Sequence[Sequence[str]], negate: Sequence[str]
) -> tuple[dict[str, SignedPermutation], SignedPermutation]:
    """The mirror maps of an articulated env's observation groups and of its actions."""
    profile = env.profile
    mirror = Mirror(profile.joints.names, profile.bodies.feet, swap, negate)
    specs = {"policy": env.obs_spec, "policy_now": env.base_obs_spec, "critic": env.critic_spec,
             "privileged": env.privileged_spec}  # fmt: skip
    return {group: mirror.spec(spec) for group, spec in specs.items()}, mirror.actions()


def mirror_state(qpos: Tensor, qvel: Tensor, joints: SignedPermutation, qadr: Tensor, dadr: Tensor) -> tuple:
    """The mirror image of floating-base states (n, nq), (n, nv): base y, the orientation reflected in the x-z plane
    (quaternion (w, x, y, z) -> (w, -x, y, -z)), linear velocity (x, -y, z), angular velocity (-x, y, -z), joints
    by ``joints`` at their qpos / dof addresses."""
    q, v = qpos.clone(), qvel.clone()
    q[:, 1] = -qpos[:, 1]
    q[:, 3:7] = qpos[:, 3:7] * qpos.new_tensor([1.0, -1.0, 1.0, -1.0])
    v[:, 1] = -qvel[:, 1]
    v[:, 3:6] = qvel[:, 3:6] * qvel.new_tensor([-1.0, 1.0, -1.0])
    q[:, qadr] = joints(qpos[:, qadr])
    v[:, dadr] = joints(qvel[:, dadr])
    return q, v


def simulated_mirror_error(env, swap: Sequence[Sequence[str]], negate: Sequence[str], steps: int = 25) -> float:
    """Check a declared mirror against the simulator: two robots of ``env``'s task and robot (no randomization),
    one started in a tilted, moving, off-axis state and the other in its mirror image, given random actions and
    their mirror images for ``steps`` control steps; the largest difference between the second robot's critic
    observation and the mirror image of the first's: 5e-4 for the Go2's mirror (the contact solver's tolerance;
    1e-4 after one step), 0.1-1 for a wrong sign or pair (feet in contact on the wrong side)."""
    from sim.randomization import RandomizationSpec

    twin = type(env)(replace(env.cfg, randomization=RandomizationSpec({})), 2, seed=0)
    groups, actions = env_mirror(twin, swap, negate)
    g = torch.Generator().manual_seed(3)
    qpos, qvel = twin.engine.qpos[:1].clone(), twin.engine.qvel[:1].clone()
    qpos[:, 1] = 0.3
    qpos[:, 3:7] = torch.nn.functional.normalize(qpos.new_tensor([[1.0, 0.05, -0.03, 0.2]]), dim=-1)
    qvel[:, :6] = qvel.new_tensor([[0.3, 0.2, 0.0, 0.4, -0.2, 0.5]])
    qpos[:, twin.qadr] += 0.1 * torch.randn(1, twin.qadr.numel(), generator=g, dtype=qpos.dtype)
    mq, mv = mirror_state(qpos, qvel, actions, twin.qadr, twin.dadr)
    twin.engine.set_state(torch.tensor([0, 1]), torch.cat([qpos, mq]), torch.cat([qvel, mv]))
    worst = 0.0
    for _ in range(steps):
        a = 0.5 * torch.randn(1, twin.num_actions, generator=g)
        obs = twin.step(torch.cat([a, actions(a)]))[0]
        critic = obs["critic"]
        worst = max(worst, float((groups["critic"](critic[:1]) - critic[1:]).abs().max()))
    return worst
