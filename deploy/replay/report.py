"""Replay report: ``report.md`` and PNG plots (states and references, policy vs logged actions, safety-state
timeline, loop timing histogram, re-simulation divergence). matplotlib is imported only here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.replay.flight import Flight
from deploy.replay.policy_replay import PolicyReplay

STATES = ("DISARMED", "ARMING", "ACTIVE", "FALLBACK", "ESTOP")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reference_from_obs(flight: Flight, spec: Any | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(times, (M, 3) reference positions) recovered as state position - logged position error."""
    if spec is None or "position_error" not in spec.names or len(flight.obs) == 0 or len(flight.state_t) < 2:
        return None
    err = flight.obs[:, spec.slice("position_error")] / spec.term("position_error").scale
    pos = flight.state_at(flight.obs_t)["position"]
    return flight.obs_t, pos - err


def plot_states(flight: Flight, path: Path, reference: tuple[np.ndarray, np.ndarray] | None) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for i, (ax, axis) in enumerate(zip(axes, "xyz")):
        ax.plot(flight.state_t, flight.position[:, i], label=f"{axis} logged", lw=1)
        if reference is not None:
            ax.plot(reference[0], reference[1][:, i], "--", label=f"{axis} reference", lw=1)
        ax.set_ylabel(f"{axis} [m]")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time [s]")
    fig.suptitle("position and reference")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_actions(replay: PolicyReplay, path: Path) -> Path:
    plt = _plt()
    n = replay.logged.shape[1]
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.6 * n + 1), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(replay.t, replay.logged[:, i], label="logged", lw=1)
        ax.plot(replay.t, replay.replayed[:, i], "--", label="policy replayed", lw=1)
        ax.set_ylabel(f"a{i}")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time [s]")
    fig.suptitle(f"policy vs logged actions: {replay.verdict}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_safety(flight: Flight, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 2.5))
    if flight.transitions:
        times = [0.0, *(tr.t for tr in flight.transitions), max(flight.duration_s, flight.transitions[-1].t)]
        levels = [STATES.index(flight.transitions[0].from_state) if flight.transitions[0].from_state in STATES else 0]
        levels += [STATES.index(tr.to_state) if tr.to_state in STATES else 0 for tr in flight.transitions]
        ax.step(times, [*levels, levels[-1]], where="post")
        for tr in flight.transitions:
            if tr.to_state in ("FALLBACK", "ESTOP"):
                ax.annotate(tr.reason[:40], (tr.t, STATES.index(tr.to_state)), fontsize=7)
    else:
        ax.text(0.5, 0.5, "no safety transitions logged", ha="center", transform=ax.transAxes)
    ax.set_yticks(range(len(STATES)), STATES)
    ax.set_xlabel("time [s]")
    ax.set_title("safety state")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def loop_periods(flight: Flight) -> np.ndarray:
    """Cycle periods (s): the logged timing topic, else the spacing of the commands."""
    if flight.timing.get("cycle_s") is not None and len(flight.timing["cycle_s"]):
        return flight.timing["cycle_s"]
    return np.diff(flight.command_t)


def plot_timing(flight: Flight, path: Path) -> Path:
    plt = _plt()
    periods = loop_periods(flight) * 1e3
    fig, ax = plt.subplots(figsize=(7, 3))
    if len(periods):
        ax.hist(periods, bins=60, log=True)
    ax.set_xlabel("cycle period [ms]")
    ax.set_ylabel("cycles")
    source = "timing topic" if len(flight.timing.get("cycle_s", [])) else "command spacing"
    ax.set_title(f"loop timing ({source})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(out: Path, summary: dict[str, Any], images: list[Path]) -> Path:
    """report.md from the JSON summary and the plots written beside it."""
    lines = [f"# Replay of `{summary['log']}`", ""]
    lines += [
        f"- duration {summary['duration_s']:.1f} s, {summary['messages']} messages",
        f"- topics: {', '.join(f'{k} = `{v}`' for k, v in summary['topics'].items())}",
    ]
    for p in summary.get("problems", []):
        lines.append(f"- **problem:** {p}")
    timing = summary.get("timing")
    if timing:
        lines.append(
            f"- loop period median {timing['median_ms']:.3f} ms, p99 {timing['p99_ms']:.3f} ms, "
            f"max {timing['max_ms']:.3f} ms over {timing['cycles']} cycles"
        )
    lines += ["", "## Safety transitions", ""]
    for tr in summary.get("transitions", []) or ["(none logged)"]:
        lines.append(f"- {tr}")
    pol = summary.get("policy_replay")
    if pol:
        lines += ["", "## Open-loop policy replay", "", f"**{pol['verdict']}**: {pol['explanation']}", ""]
        lines.append(f"- max |replayed - logged| {pol['max_abs_diff']:.3g} (normalized action units)")
        shifts = ", ".join(f"{k}: {v:.3g}" for k, v in pol["rms_by_shift"].items())
        lines.append(f"- RMS by shift of the logged actions (cycles): {shifts}")
        if pol["observation_rebuild_max_diff"]:
            diffs = ", ".join(f"{k} {v:.3g}" for k, v in pol["observation_rebuild_max_diff"].items())
            lines.append(f"- observation rebuilt from the logged state vs logged, max diff per term: {diffs}")
    gap = summary.get("resimulation")
    if gap:
        lines += ["", "## Re-simulation (measured reality gap)", ""]
        lines.append(
            f"Profile `{gap['profile']}`, actuation latency {gap['latency_steps']} steps, "
            f"{gap['usable_s']:.1f} s of usable flight. Errors of the simulator started at logged states and driven "
            "by the logged commands (median / p90):"
        )
        lines += ["", "| horizon | windows | position [m] | velocity [m/s] | attitude [deg] |", "|---|---|---|---|---|"]
        for h in gap["horizons"]:
            p, v, a = h["position_m"], h["velocity_m_s"], h["attitude_deg"]
            lines.append(
                f"| {h['horizon_s']:g} s | {h['windows']} | {p['median']:.4f} / {p['p90']:.4f} | "
                f"{v['median']:.3f} / {v['p90']:.3f} | {a['median']:.2f} / {a['p90']:.2f} |"
            )
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
