"""Reports people look at: PNG plots and a markdown summary of a rollout."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from policies.rollout import Rollout


def plot_trajectories(r: Rollout, path: Path, title: str) -> Path:
    """x, y, z of the first envs against their references."""
    t = torch.arange(r.position.shape[0]) * r.dt
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for axis, ax in enumerate(axes):
        for k in range(r.position.shape[1]):
            line = ax.plot(t, r.position[:, k, axis], lw=1.2, label=f"env {k}")[0]
            ax.plot(t, r.reference[:, k, axis], lw=0.8, ls="--", color=line.get_color())
        ax.set_ylabel(f"{'xyz'[axis]} [m]")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=4)
    axes[0].set_title(f"{title}: position (solid) and reference (dashed)")
    axes[-1].set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_errors(r: Rollout, path: Path, title: str, window_s: float = 5.0) -> Path:
    """Error over time (median and 10-90 % band over envs that did not crash) and the per-env RMS histogram."""
    alive = ~r.crashed
    err = r.error[:, alive] if alive.any() else r.error
    t = torch.arange(err.shape[0]) * r.dt
    q = torch.quantile(err, torch.tensor([0.1, 0.5, 0.9]), dim=1)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4))
    a0.fill_between(t, q[0], q[2], alpha=0.3, label="10-90 %")
    a0.plot(t, q[1], lw=1.5, label="median")
    a0.set_yscale("log")
    a0.set_xlabel("time [s]")
    a0.set_ylabel("position error [m]")
    a0.set_title(f"{title}: error over time ({int(alive.sum())} of {alive.numel()} envs, no crash)")
    a0.grid(alpha=0.3, which="both")
    a0.legend()
    window = min(err.shape[0], round(window_s / r.dt))
    rms = err[-window:].square().mean(0).sqrt() * 100
    a1.hist(rms.numpy(), bins=40)
    a1.set_xlabel(f"per-env RMS error over the last {window * r.dt:.1f} s [cm]")
    a1.set_ylabel("envs")
    a1.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    out: Path, title: str, metrics: Mapping[str, Mapping[str, float]], details: Mapping[str, str], plots: list[Path]
) -> Path:
    """report.md (a metrics table with one column per controller) and metrics.json beside it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    names = list(metrics)
    keys = list(next(iter(metrics.values())))
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in details.items()]
    lines += ["", "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_fmt(metrics[n][key]) for n in names) + " |")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
