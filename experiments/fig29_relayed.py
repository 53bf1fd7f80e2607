#!/usr/bin/env python3
"""Fig. 29/30 -- packets and bytes relayed by all switches, before vs after OVCT.

    sudo python experiments/fig29_relayed.py [--runs 3] [--window 180] [--out DIR]
        [--quick] [--plot-only]

Uses the same trials as fig27 (running any that are missing).  From the
controller's flow statistics: cumulative packets/bytes relayed by all
switches over each window, per class (vnc, migration, other), before (from
the sessions' start) and after (from the moment OVCT was switched on, so the
migration streams are inside it).  Then a PROJECTION (a model, labelled as such everywhere): the
steady rates after the migrations, and the one-off cost on top of them
(mostly the migration streams), extended to the report's 10 hours, with the
break-even time and the reduction at 10 h.  Writes relayed.csv (one row per
poll, switch and class), migrations.csv, projection.csv and fig29_relayed,
fig30_projection (.png/.svg).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import bootstrap  # noqa: E402

if __name__ == "__main__":
    bootstrap.ensure_venv(__file__)       # all other imports run in the venv

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from experiments import report2014 as R  # noqa: E402


def analyse(out: str) -> dict:
    rel = pd.read_csv(os.path.join(out, "relayed.csv"))
    mig = pd.read_csv(os.path.join(out, "migrations.csv"))
    tot = A.total_series(rel)
    projdf = A.projections(tot, mig)
    projdf.to_csv(os.path.join(out, "projection.csv"), index=False)
    plot(rel, tot, projdf, out)
    pk = projdf[projdf.unit == "packets"]
    return {"relayed_rate_before_pkt_s": float(pk.rate_before_per_s.median()),
            "relayed_rate_after_pkt_s": float(pk.rate_after_per_s.median()),
            "rate_per_session_before_pkt_s": float(pk.rate_before_per_s.median() / 2),
            "rate_per_session_after_pkt_s": float(pk.rate_after_per_s.median() / 2),
            "one_off_pkt": float(pk.one_off.median()),
            "projected_breakeven_h": float(pk.breakeven_h.median()),
            "projected_reduction_10h_pct": float(pk.reduction_at_horizon_pct.median())}


def plot(rel, tot, projdf, out: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, unit in zip(axes, ("packets", "bytes")):
        for trial, g in tot.groupby("trial"):
            style = "-" if trial.startswith("after") else "--"
            ax.plot(g.t_s, g[unit], style, label=f"{trial} (all classes)")
        mig = A.total_series(rel, classes=("migration",))
        for trial, g in mig[mig.trial.str.startswith("after")].groupby("trial"):
            ax.plot(g.t_s, g[unit], ":", label=f"{trial}: migration streams")
        ax.set_xlabel("seconds since the window began (before: sessions start; "
                      "after: OVCT on)", fontsize=8)
        ax.set_ylabel(f"{unit} relayed by all switches (cumulative)")
        ax.legend(fontsize=7)
    fig.suptitle("Measured: traffic relayed by all switches, before vs after OVCT")
    fig.tight_layout()
    common.save_figure(fig, out, "fig29_relayed")

    pk = projdf[projdf.unit == "packets"]
    if pk.empty:
        return
    r = pk.iloc[0]
    hours = np.linspace(0, 10, 200)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(hours, r.rate_before_per_s * hours * 3600, "--", label="before (projected)")
    ax.plot(hours, r.one_off + r.rate_after_per_s * hours * 3600, "-",
            label="after, incl. one-off migration cost (projected)")
    if np.isfinite(r.breakeven_h) and r.breakeven_h <= 10:
        ax.axvline(r.breakeven_h, color="k", lw=0.8)
        ax.text(r.breakeven_h, 0, f" break-even {r.breakeven_h * 60:.1f} min", va="bottom")
    ax.set_xlabel("hours of use")
    ax.set_ylabel("packets relayed by all switches")
    ax.set_title(f"PROJECTION from measured rates (report: -{R.REDUCTION_10H_PCT} % at 10 h, "
                 f"break-even {R.BREAKEVEN_H} h)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    common.save_figure(fig, out, "fig30_projection")


def report(res: dict) -> str:
    return (f"relayed packets/s per VNC session: before {res['rate_per_session_before_pkt_s']:.0f}, "
            f"after {res['rate_per_session_after_pkt_s']:.0f}; one-off {res['one_off_pkt']:.0f} "
            f"packets; PROJECTED break-even {res['projected_breakeven_h'] * 60:.1f} min, "
            f"reduction at 10 h {res['projected_reduction_10h_pct']:.0f} % (report: "
            f"{R.BREAKEVEN_H} h, -{R.REDUCTION_10H_PCT} %)")


def main(argv=None) -> int:
    return common.figure_main(argv, __doc__, "fig29", common.paper_trials,
                              {"relayed.csv": A.relayed_rows, "migrations.csv": A.migration_rows}, analyse, report)


if __name__ == "__main__":
    sys.exit(main())
