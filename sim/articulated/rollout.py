"""Batched closed-loop rollouts of the articulated tasks and their metrics (evaluation, benchmarks).

Every env flies its first episode only: after an env's first ``done`` its records are frozen (the env resets
and keeps stepping, but its later episodes are not counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Policy = Callable[[torch.Tensor], torch.Tensor]  # policy observation (N, D) -> normalized actions (N, A)


@dataclass
class ArticulatedRollout:
    """Per-step records, T control steps x N envs (first episode of each env)."""

    task: str
    dt: float  # s per control step
    alive: torch.Tensor  # (T, N) bool: the first episode is still running at this step
    failed: torch.Tensor  # (N,) bool: the first episode ended in a failure
    command: torch.Tensor  # legged: (T, N, 3) vx, vy, yaw rate; arm: (T, N, 3) target position
    measured: torch.Tensor  # legged: (T, N, 3) base vx, vy (base frame), yaw rate; arm: (T, N, 3) EE position
    error: torch.Tensor  # legged: (T, N) planar velocity error m/s; arm: (T, N) position error m
    angle_error: torch.Tensor  # legged: (T, N) yaw-rate error rad/s; arm: (T, N) orientation error rad
    action: torch.Tensor  # (T, N, A) normalized

    def metrics(self, success_position_m: float = 0.02, success_angle_rad: float = 0.1) -> dict[str, float]:
        n = self.alive.shape[1]
        weight = self.alive.float()
        steps = weight.sum(0).clamp_min(1.0)
        out: dict[str, float] = {"envs": n, "crash_rate": self.failed.float().mean().item()}
        smooth = ((self.action[1:] - self.action[:-1]).square().sum(-1) * weight[1:]).sum(0) / steps
        out["action_rate"] = smooth.mean().item()
        if self.task == "legged-walk":
            rms = ((self.error.square() * weight).sum(0) / steps).sqrt()
            yaw = ((self.angle_error.square() * weight).sum(0) / steps).sqrt()
            out["velocity_error_rms_m_s"] = rms.mean().item()
            # The benchmark's figure: the mean planar velocity error over the whole episode; after a fall the robot
            # stands still, so each step it misses counts as the commanded planar speed.
            # It is the sum of three parts: the first second of each episode (the robot starts from a random base
            # velocity), the steps after a fall, and the walk after the first second.
            fallen = (~self.alive).float() * self.failed.float()
            samples = self.alive.shape[0] * n  # the mean is over every step of every env
            start = min(self.alive.shape[0], round(1.0 / self.dt))
            walked = self.error * weight
            parts = {
                "start": walked[:start].sum().item() / samples,
                "falls": (self.command[..., :2].norm(dim=-1) * fallen).sum().item() / samples,
                "walk": walked[start:].sum().item() / samples,
            }
            out["velocity_error_mean_m_s"] = sum(parts.values())
            out.update({f"velocity_error_{k}_part_m_s": v for k, v in parts.items()})
            out["velocity_error_rms_median_m_s"] = rms.median().item()
            out["yaw_rate_error_rms_rad_s"] = yaw.mean().item()
            out["success_rate"] = ((rms < 0.25) & ~self.failed).float().mean().item()  # tracked within 0.25 m/s
            return out
        reached = (self.error < success_position_m) & (self.angle_error < success_angle_rad) & self.alive
        first = torch.where(reached.any(0), reached.float().argmax(0), torch.full((n,), self.error.shape[0]))
        last = self.alive.float().cumsum(0).argmax(0)  # index of each env's last counted step
        envs = torch.arange(n)
        out["success_rate"] = reached.any(0).float().mean().item()
        out["final_position_error_median_m"] = self.error[last, envs].median().item()
        # the deploy benchmarks' criterion (benchmarks/arm_reach_ros2_control.py): within the radius at the end
        at_end = (self.error[last, envs] < success_position_m) & ~self.failed
        out["final_within_radius_rate"] = at_end.float().mean().item()
        out["final_orientation_error_median_rad"] = self.angle_error[last, envs].median().item()
        hit = reached.any(0)
        out["time_to_reach_median_s"] = (first[hit].float() * self.dt).median().item() if hit.any() else float("nan")
        return out


@torch.inference_mode()
def rollout(env, act: Policy, steps: int) -> ArticulatedRollout:
    """Run ``steps`` control steps of ``env`` (arm-reach or legged-walk) under ``act``."""
    from sim.articulated.tasks.arm_reach import ArmReachEnv

    obs = env.reset()[0]
    n = env.num_envs
    alive = torch.ones(n, dtype=torch.bool)
    failed = torch.zeros(n, dtype=torch.bool)
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in ("alive", "command", "measured", "error", "angle", "action")}
    arm = isinstance(env, ArmReachEnv)
    for _ in range(steps):
        action = act(obs["policy"]).to(env.device)
        # quantities of the state the action is taken in (before a possible reset)
        if arm:
            pos_err, ang_err = env.errors()
            command, measured = env.target_pos.clone(), env.ee_pos.clone()
        else:
            v, w = env.base_lin_vel, env.base_ang_vel
            command = env.command.clone()
            measured = torch.stack([v[:, 0], v[:, 1], w[:, 2]], -1)
            pos_err = (command[:, :2] - measured[:, :2]).norm(dim=-1)
            ang_err = (command[:, 2] - measured[:, 2]).abs()
        for key, value in (("alive", alive.clone()), ("command", command), ("measured", measured),
                           ("error", pos_err), ("angle", ang_err), ("action", action)):  # fmt: skip
            rec[key].append(value.detach().cpu().float() if key != "alive" else value)
        obs, _, done, extras = env.step(action)
        done, timeout = done.cpu(), extras["time_outs"].cpu()
        failed |= alive & done & ~timeout
        alive &= ~done
    return ArticulatedRollout(
        task="arm-reach" if arm else "legged-walk",
        dt=env.cfg.control_dt,
        alive=torch.stack(rec["alive"]),
        failed=failed,
        command=torch.stack(rec["command"]),
        measured=torch.stack(rec["measured"]),
        error=torch.nan_to_num(torch.stack(rec["error"]), nan=1e3),
        angle_error=torch.nan_to_num(torch.stack(rec["angle"]), nan=1e3),
        action=torch.stack(rec["action"]),
    )


def throughput(task: str, num_envs: int, steps: int = 50, warmup: int = 5, engine: str | None = None) -> float:
    """Env-steps per second of ``task`` under uniform random actions (best of one timed loop after warm-up)."""
    import time

    from sim.tasks import make_env

    env = make_env(task, num_envs, seed=0, **({"engine": engine} if engine else {}))
    g = torch.Generator().manual_seed(0)
    actions = [2 * torch.rand(num_envs, env.num_actions, generator=g) - 1 for _ in range(warmup + steps)]
    for a in actions[:warmup]:
        env.step(a)
    t0 = time.perf_counter()
    for a in actions[warmup:]:
        env.step(a)
    return num_envs * steps / (time.perf_counter() - t0)


if __name__ == "__main__":  # python -m sim.articulated.rollout --envs 16 64 256 [--threads 1] -> JSON
    import argparse
    import json
    import logging

    parser = argparse.ArgumentParser(description="env-steps/s of the articulated tasks (random actions)")
    parser.add_argument("--tasks", nargs="+", default=["arm-reach", "legged-walk"])
    parser.add_argument("--envs", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--engine", default=None, help="mujoco | mujoco_warp (default: the task's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    result = {
        f"{task}/{n}": round(throughput(task, n, args.steps, engine=args.engine))
        for task in args.tasks
        for n in args.envs
    }
    print(json.dumps({"threads": args.threads, "env_steps_per_s": result}))
