#!/usr/bin/env python3
"""Fig. 31 -- time per OVCT phase, for both network-update modes.

    sudo python experiments/fig31_phases.py [--runs 5] [--modes fast paper]
        [--duration 25] [--out DIR] [--quick] [--plot-only]

Each trial (``raw/<mode>-<n>``) runs the paper scenario (tcl1 opens a VNC
session to vm1 on pm2; OVCT moves vm1 to pm1) live and reads what happened
from the controller's events, libvirt's job statistics, the thin client's
update log and a 10 ms ping probe from tcl2.  Same options, resume and
results folder as the other figure scripts (complete trials are kept;
``--plot-only`` re-plots from phases.csv).

phases.csv, one row per trial and quantity (tidy):
    trial, mode, accel, quantity, value, unit
quantities: session_to_detect (thin client starts -> controller sees the SYN),
detect_to_decision (placement incl. capacity checks), migration (libvirt
elapsed), vm_resume_to_network_update (VM seen at destination -> flows
switched), network_update_to_confirmed (-> every barrier answered),
qemu_downtime, ping_gap (longest silence of the 10 ms ping), vnc_update_gap
(longest silence between screen updates); and the migration split by the
hypervisor's events: setup (migrate call -> destination QEMU up), precopy
(-> source paused), stop_and_copy (-> VM resumed at the destination),
resume_to_switch (-> flows switched).

collateral.csv, one row per trial and migration phase: pings sent and lost
by the 10 ms probe, their RTT, and the VNC session's updates and largest
silence in each phase (before, setup, precopy, stop_and_copy,
resume_to_switch, after); fig31_collateral.png/svg shows them.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import bootstrap  # noqa: E402

if __name__ == "__main__":
    bootstrap.ensure_venv(__file__)       # all other imports run in the venv

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from experiments import report2014 as R  # noqa: E402


def analyse(out: str) -> dict:
    phases = pd.read_csv(os.path.join(out, "phases.csv"))
    plot(phases, out)
    st = A.phase_stats(phases)
    res = {"trials": {m: int(g.trial.nunique()) for m, g in phases.groupby("mode")},
           "median_s": {f"{m}/{q}": float(v) for (m, q), v in st["median"].items()}}
    path = os.path.join(out, "collateral.csv")
    if os.path.exists(path):            # results from before it was measured have none
        col = pd.read_csv(path)
        plot_collateral(col, out)
        res["collateral"] = {f"{m}/{p}": {"pings_lost": float(g.pings_lost.sum()),
                                           "pings_sent": float(g.pings_sent.sum()),
                                           "vnc_max_gap_s_median": float(g.vnc_max_gap_s.median())}
                             for (m, p), g in col.groupby(["mode", "phase"])}
    return res


def plot_collateral(col, out: str) -> list[str]:
    """Pings lost (all trials together) and the largest VNC silence (median
    over trials) in each phase of the migration, per update mode."""
    phases = [p for p in A.MIGRATION_PHASES if p in set(col.phase)]
    phases += sorted(set(col.phase) - set(phases))
    modes = sorted(set(col["mode"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, len(modes))
    for i, m in enumerate(modes):
        g = col[col["mode"] == m].groupby("phase")
        lost = g.pings_lost.sum().reindex(phases).fillna(0)
        gap = g.vnc_max_gap_s.median().reindex(phases)
        xs = [j + i * width for j in range(len(phases))]
        axes[0].bar(xs, lost.values, width, label=m)
        axes[1].bar(xs, gap.values, width, label=m)
    for ax, label in zip(axes, ("pings lost (10 ms probe, all trials)",
                                "largest VNC silence, s (median over trials)")):
        ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(phases))])
        ax.set_xticklabels([p.replace("_", "\n") for p in phases], fontsize=8)
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle("Collateral damage per phase of a live migration")
    fig.tight_layout()
    return common.save_figure(fig, out, "fig31_collateral")


def plot(phases, out: str) -> list[str]:
    st = A.phase_stats(phases)
    modes = sorted(set(phases["mode"]))
    qs = [q for q in A.PHASE_QUANTITIES if any((m, q) in st.index for m in modes)]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(modes))
    for i, m in enumerate(modes):
        xs = [j + i * width for j in range(len(qs))]
        row = [st.loc[(m, q)] if (m, q) in st.index else None for q in qs]
        vals = [r["median"] if r is not None else 0 for r in row]
        spread = [[r["median"] - r["min"] if r is not None else 0 for r in row],
                  [r["max"] - r["median"] if r is not None else 0 for r in row]]
        ax.bar(xs, vals, width, yerr=spread, capsize=3, label=f"{m} (median, min-max)")
    for j, q in enumerate(qs):
        if q in R.PHASE_S:
            ax.plot([j - 0.1, j + 0.9 - width], [R.PHASE_S[q]] * 2, "k--", lw=1)
    ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(qs))])
    ax.set_xticklabels([q.replace("_", "\n") for q in qs], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.set_title("Time per OVCT phase (dashed: the 2014 report)")
    ax.legend()
    fig.tight_layout()
    return common.save_figure(fig, out, "fig31_phases")


def report(res: dict) -> str:
    modes = sorted(res["trials"])
    lines = ["medians (s)" + "".join(f"   {m} (n={res['trials'][m]})" for m in modes)]
    for q in A.PHASE_QUANTITIES:
        vals = [res["median_s"].get(f"{m}/{q}") for m in modes]
        lines.append(f"  {q:<30}" + "".join(f"   {v:>10.3f}" if v is not None else
                                            f"   {'-':>10}" for v in vals))
    return "\n".join(lines)


def _duration(p) -> None:
    p.add_argument("--duration", type=float,
                   help="VNC session length per trial, s (default 25)")


def main(argv=None) -> int:
    return common.figure_main(argv, __doc__, "fig31", common.phase_trials,
                              {"phases.csv": A.phase_rows, "collateral.csv": A.collateral_rows},
                              analyse, report,
                              extra_args=_duration)


if __name__ == "__main__":
    sys.exit(main())
