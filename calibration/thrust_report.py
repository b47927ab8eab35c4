"""Thrust-stand plots (fit and residuals) and a synthetic stand log with known truth (tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.thrust import StandData, ThrustCalibration

# Crazyflie-like truth (FACTS.md): RPM = 0.2685 PWM + 4070.3; kf 3.16e-10 N/RPM^2; km 0.005964552 m
CF_TRUTH = {
    "kf": 3.16e-10,
    "km": 0.005964552,
    "rpm_per_cmd": 0.2685,
    "rpm_offset": 4070.3,
    "motor_tau_up": 0.056,
    "motor_tau_down": 0.1,
}


def synthetic_stand_log(
    rng: np.random.Generator,
    truth: dict | None = None,
    levels: int = 10,
    hold_s: float = 1.0,
    rate_hz: float = 500.0,
    thrust_noise: float = 0.002,
    torque_noise: float = 2e-5,
    rpm_noise: float = 20.0,
) -> StandData:
    """A staircase up then down over PWM 20000-65535 with a first-order motor (asymmetric tau), noisy sensors."""
    p = {**CF_TRUTH, **(truth or {})}
    up = np.linspace(20000, 65535, levels)
    cmds = np.concatenate([[0.0], up, up[-2::-1], [0.0]])
    n_hold = int(hold_s * rate_hz)
    command = np.repeat(cmds, n_hold)
    target = np.where(command > 0, p["rpm_per_cmd"] * command + p["rpm_offset"], 0.0)
    dt = 1.0 / rate_hz
    rpm = np.empty_like(target)
    r = 0.0
    for i, tgt in enumerate(target):  # exact discretisation of the first-order lag
        tau = p["motor_tau_up"] if tgt > r else p["motor_tau_down"]
        r = tgt + (r - tgt) * np.exp(-dt / tau)
        rpm[i] = r
    thrust = p["kf"] * rpm**2
    torque = p["km"] * thrust
    n = len(command)
    return StandData(
        command=command,
        rpm=rpm + rng.normal(0, rpm_noise, n),
        thrust=thrust + rng.normal(0, thrust_noise, n),
        torque=torque + rng.normal(0, torque_noise, n),
        voltage=4.1 - 0.8 * thrust + rng.normal(0, 0.01, n),
        time=np.arange(n) * dt,
    )


def save_thrust_png(cal: ThrustCalibration, path: str | Path, command_unit: str = "command") -> None:
    """2x3 figure: thrust(rpm), torque(thrust), rpm(command) fits; thrust residuals; step-response fits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = cal.steady
    fig, ax = plt.subplots(2, 3, figsize=(14, 8))
    r = np.linspace(0, s.rpm.max() * 1.05, 200)
    ax[0, 0].plot(s.rpm, s.thrust, "o", label="steady state")
    ax[0, 0].plot(r, cal.kf * r**2, label=f"kf rpm^2, kf={cal.kf:.4g}")
    ax[0, 0].plot(r, np.polyval(cal.thrust_poly, r), "--", label="quadratic poly")
    ax[0, 0].set(xlabel="rpm [RPM]", ylabel="thrust [N]")
    ax[0, 1].plot(s.thrust, s.torque, "o")
    th = np.linspace(0, s.thrust.max() * 1.05, 50)
    ax[0, 1].plot(th, cal.km * th, label=f"km = {cal.km:.4g} m")
    ax[0, 1].set(xlabel="thrust [N]", ylabel="yaw torque [N m]")
    c = np.linspace(*cal.command_range, 50)
    ax[0, 2].plot(s.command, s.rpm, "o")
    ax[0, 2].plot(c, np.polyval(cal.command_to_rpm, c), label="command -> rpm")
    ax[0, 2].set(xlabel=f"command [{command_unit}]", ylabel="rpm [RPM]")
    spin = s.rpm > 0.01 * s.rpm.max()
    ax[1, 0].plot(s.rpm[spin], s.thrust[spin] - cal.kf * s.rpm[spin] ** 2, "o", label="kf rpm^2")
    ax[1, 0].plot(s.rpm[spin], s.thrust[spin] - np.polyval(cal.thrust_poly, s.rpm[spin]), "x", label="poly")
    ax[1, 0].axhline(0, color="k", lw=0.5)
    ax[1, 0].set(xlabel="rpm [RPM]", ylabel="thrust residual [N]")
    for step in cal.steps[:8]:
        style = "-" if step.direction == "up" else "--"
        ax[1, 1].plot(step.t, step.rpm, style, alpha=0.5)
        ax[1, 1].plot(
            step.t, step.rpm_end + (step.rpm_start - step.rpm_end) * np.exp(-step.t / step.tau), "k" + style, lw=0.7
        )
    ax[1, 1].set(
        xlabel="time since step [s]", ylabel="rpm [RPM]", title=f"tau up {cal.motor_tau_up}, down {cal.motor_tau_down}"
    )
    ax[1, 2].axis("off")
    ax[1, 2].text(
        0, 0.9, "\n".join(f"{k}: rel. 1-sigma {v:.2%}" for k, v in cal.rel_std.items()), va="top", family="monospace"
    )
    for a in ax.ravel()[:4]:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
