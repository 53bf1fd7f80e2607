#!/usr/bin/env python3
"""Fig. 27/28 -- ping RTT from each thin client to each VM, before and after OVCT.

    sudo python experiments/fig27_rtt.py [--runs 3] [--window 180] [--out DIR] [--quick]
        [--plot-only]

Trials (shared with fig29): the paper scenario with tcl1 using vm1 and tcl2
using vm2 (real VNC sessions), in one emulation per trial: first a window
with OVCT off (routing only, "before"), then OVCT is switched on and moves
both VMs to pm1 next to the clients ("after").  At the end of "before" and
once "after" is steady (the migrations over), pings every 50 ms from each
thin client to each VM, all four pairs at once (--pings, default 200; the
report sent 20).
Writes ping.csv (one row per echo reply), rtt_table.csv (the report's
Fig. 28 layout: median with 95 % bootstrap interval and mean, per pair and
overall) and fig27_rtt.png/svg.
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
    ping = pd.read_csv(os.path.join(out, "ping.csv"))
    table = A.rtt_table(ping)
    table.to_csv(os.path.join(out, "rtt_table.csv"), index=False)
    plot(table, out)
    overall = table[table.src == "all"].iloc[0].to_dict()
    explained = A.rtt_explained(ping)
    if len(explained):
        explained.to_csv(os.path.join(out, "rtt_explained.csv"), index=False)
    pooled = {r["quantity"]: r for r in explained[explained.trial == "pooled"].to_dict("records")}
    return {
            "explained_pooled_ms": {q: {k: r[k] for k in ("value_ms", "ci_low_ms", "ci_high_ms",
                                                          "p_value")}
                                    for q, r in pooled.items()},"rtt_before_median_ms": overall["before_median_ms"],
            "rtt_after_median_ms": overall["after_median_ms"],
            "rtt_before_mean_ms": overall["before_mean_ms"],
            "rtt_after_mean_ms": overall["after_mean_ms"],
            "rtt_change_mean_pct": overall["change_mean_pct"],
            "rtt_change_median_pct": overall["change_median_pct"],
            "pairs_lower_after": int(sum(
                r["after_median_ms"] < r["before_median_ms"]
                for r in table[table.dst.isin(set(ping[ping.target == "vm"].dst))]
                .to_dict("records")))}


def plot(table, out: str) -> None:
    rows = table.to_dict("records")
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(rows))
    for k, (cond, color) in enumerate((("before", "tab:gray"), ("after", "tab:blue"))):
        med = [r[f"{cond}_median_ms"] for r in rows]
        err = [[r[f"{cond}_median_ms"] - r[f"{cond}_ci_low_ms"] for r in rows],
               [r[f"{cond}_ci_high_ms"] - r[f"{cond}_median_ms"] for r in rows]]
        ax.bar([x + k * 0.4 for x in xs], med, 0.4, yerr=err, capsize=3, color=color,
               label=f"{cond} OVCT (median, 95 % CI)")
    ax.set_xticks([x + 0.2 for x in xs])
    ax.set_xticklabels([f"{r['src']}\u2192{r['dst']}" if r["src"] != "all" else "all pairs"
                        for r in rows])
    ax.set_ylabel("RTT (ms)")
    ax.set_title(f"Ping RTT, thin client \u2192 VM (report: mean {R.RTT_BEFORE_MEAN_MS} "
                 f"\u2192 {R.RTT_AFTER_MEAN_MS} ms)")
    ax.legend()
    fig.tight_layout()
    common.save_figure(fig, out, "fig27_rtt")


def report(res: dict) -> str:
    return (f"RTT median before {res['rtt_before_median_ms']:.3f} ms, after "
            f"{res['rtt_after_median_ms']:.3f} ms ({res['rtt_change_median_pct']:+.0f} %); mean "
            f"{res['rtt_before_mean_ms']:.3f} -> {res['rtt_after_mean_ms']:.3f} ms "
            f"({res['rtt_change_mean_pct']:+.0f} %; report {R.RTT_BEFORE_MEAN_MS} -> "
            f"{R.RTT_AFTER_MEAN_MS} ms, {R.RTT_CHANGE_MEAN_PCT} %)")


def main(argv=None) -> int:
    return common.figure_main(argv, __doc__, "fig27", common.paper_trials,
                              {"ping.csv": A.ping_rows}, analyse, report)


if __name__ == "__main__":
    sys.exit(main())
