"""``report.md`` of ``sim2real sysid``: the anchor, every parameter with its status and reason, the latency range,
biases, motor spread and the re-simulation gap."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def report(path: Path, s: dict[str, Any]) -> None:
    """Write the report of summary ``s`` (the content of sysid.json) to ``path``."""
    lines = [f"# System identification of `{s['log']}`", "", f"{s['usable_s']:.1f} s of usable flight.", ""]
    lines += [f"**Anchor**: {s['anchor']['statement']} (relative std {s['anchor']['rel_std']:g}).", ""]
    lines += ["| parameter | status | fitted | std | nominal | ratio | why |", "|---|---|---|---|---|---|---|"]
    ident = s.get("identifiability", {})
    for k, e in s["estimates"].items():
        if k == "action_latency":
            continue
        st = ident.get(k, {})
        ratio = f"{e['value'] / e['nominal']:.3f}" if e["nominal"] else ""
        why = st.get("reason", "")
        if st.get("combination"):
            why += f": {st['combination']} = {st['value']:.4g} +- {st['std']:.2g}"
        lines.append(
            f"| {k} [{e['unit']}] | {st.get('status', '')} | {e['value']:.5g} | {e['std']:.2g} | {e['nominal']:.5g} "
            f"| {ratio} | {why} |"
        )
    if s["not_identified"]:
        lines += [
            "",
            f"**Not determined by this log** (nominal kept, default randomization): {', '.join(s['not_identified'])}.",
        ]
    lat = s["latency"]
    lines += ["", f"**Latency**: {lat['range']} control steps (best {lat['best']}): {lat['reason']}."]
    lines += ["Cost (negative log-likelihood) per latency: " + str(s["latency_cost"])]
    lines += ["", "**Biases** (constant terms of the fit; training's disturbance terms cover them):", ""]
    lines += [f"- {k}: {b['value']:.3g} +- {b['std']:.2g} {b['unit']}" for k, b in s["biases"].items()]
    m = s["motor_spread"]
    lines += ["", f"**Motor spread** (per-motor thrust scale): {m['status']}: {m['reason']}."]
    if m["status"] == "determined":
        lines.append("Scales: " + ", ".join(f"{v:.3f} +- {sd:.3f}" for v, sd in zip(m["scale"], m["std"])))
    lines += [
        "",
        "## Re-simulation gap (median over start states)",
        "",
        "| horizon | nominal | fitted |",
        "|---|---|---|",
    ]
    nom, fit = s["resimulation"]["nominal"], s["resimulation"]["fitted"]
    for h in nom:
        lines.append(
            f"| {h} | {nom[h]['position_m']:.4f} m, {nom[h]['attitude_deg']:.2f} deg "
            f"| {fit[h]['position_m']:.4f} m, {fit[h]['attitude_deg']:.2f} deg |"
        )
    lines += ["", f"Train with: `sim2real train quadrotor-hover --randomization {s['outputs']['randomization']}`"]
    path.write_text("\n".join(lines) + "\n")
