#!/usr/bin/env python3
"""Migration bandwidth sweep: migration time against collateral damage.

    sudo python experiments/sweep_bandwidth.py [--bandwidths 0 400 200 100] [--runs 3]
        [--out DIR] [--plot-only]

Each trial (``raw/bw<Mbit/s>-<n>``, 0 = unlimited) is the paper scenario in
fast mode with the policy's ``migration_bandwidth_mbit`` set: tcl1's VNC
session makes OVCT move vm1 from pm2 to pm1 while tcl2 pings vm1 every
10 ms.  Before the session, iperf3 measures TCP throughput pm2 -> pm1 over
the same switches, so each migration's time can be set against what the
path carries (RAM / bandwidth: the ideal time).

Writes sweep.csv (one row per trial: the cap, the measured path, migration
time and its phases, bytes sent, time / ideal, pings lost during the
migration and in pre-copy, the largest VNC silence), phases.csv and
collateral.csv (as fig31 does), and fig_bandwidth_sweep.png/svg: migration
time against pings lost and VNC silence, one point per trial.
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

from controller.modes import FAST  # noqa: E402
from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from testbed import scenario  # noqa: E402
from testbed.runner import run_scenario  # noqa: E402

DEFAULT_BANDWIDTHS = [0, 400, 200, 100]       # Mbit/s; 0: unlimited


def sweep_trials(out: str, prof: dict, args, log=print) -> list[str]:
    bandwidths = args.bandwidths or DEFAULT_BANDWIDTHS
    runs = args.runs or 3
    scn = common.phase_scenario(prof["fig31_duration"])

    def run_one(name: str, path: str) -> dict:
        mbit = int(name[2:].split("-")[0])
        data = scn.model_dump(mode="json")
        data["ovct"]["migration_bandwidth_mbit"] = mbit
        summary = run_scenario(scenario.parse(data, name), path, mode=FAST,
                               on_start=lambda tb: {"iperf_pm2_pm1_mbit": round(
                                   tb.iperf("pm2", "pm1", seconds=3)["mbit_s"], 1)},
                               log=lambda m: None)
        return {"condition": "bandwidth", "trial": name, "bandwidth_mbit": mbit,
                "mode": FAST, "accel": summary["accel"]}
    # interleaved (bw0-1, bw400-1, ..., bw0-2, ...): drift spreads over every cap
    names = [f"bw{b}-{n}" for n in range(1, runs + 1) for b in bandwidths]
    return common.ensure_trials(out, names, run_one, log)


def analyse(out: str) -> dict:
    sweep = pd.read_csv(os.path.join(out, "sweep.csv"))
    plot(sweep, out)
    g = sweep.groupby("bandwidth_mbit")
    return {str(b): {"trials": int(len(x)), "migration_s_median": float(x.migration_s.median()),
                     "time_over_ideal_median": float(x.time_over_ideal.median()),
                     "pings_lost_median": float(x.pings_lost.median()),
                     "pings_lost_precopy_median": float(x.pings_lost_precopy.median()),
                     "vnc_max_gap_s_median": float(x.vnc_max_gap_s.median()),
                     "iperf_mbit_median": float(x.iperf_mbit.median())}
            for b, x in g}


def plot(sweep, out: str) -> list[str]:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for b, x in sweep.groupby("bandwidth_mbit"):
        label = "unlimited" if b == 0 else f"{b:g} Mbit/s"
        axes[0].scatter(x.migration_s, x.pings_lost, label=label)
        axes[1].scatter(x.migration_s, x.vnc_max_gap_s, label=label)
    axes[0].set_ylabel("pings lost during the migration (10 ms probe)")
    axes[1].set_ylabel("largest VNC silence during the migration (s)")
    for ax in axes:
        ax.set_xlabel("migration time, libvirt (s)")
        ax.legend(title="cap", fontsize=8)
    fig.suptitle("Migration bandwidth cap: time against collateral damage (one point per trial)")
    fig.tight_layout()
    return common.save_figure(fig, out, "fig_bandwidth_sweep")


def report(res: dict) -> str:
    lines = ["cap (Mbit/s)  trials  migration s  time/ideal  pings lost (precopy)  VNC gap s"]
    for b, r in sorted(res.items(), key=lambda kv: int(kv[0])):
        cap = "unlimited" if b == "0" else b
        lines.append(f"  {cap:>10}  {r['trials']:>6}  {r['migration_s_median']:>11.2f}  "
                     f"{r['time_over_ideal_median']:>10.2f}  {r['pings_lost_median']:>6.0f} "
                     f"({r['pings_lost_precopy_median']:.0f})           "
                     f"{r['vnc_max_gap_s_median']:>6.2f}")
    return "\n".join(lines)


def _args(p) -> None:
    p.add_argument("--bandwidths", nargs="+", type=int,
                   help=f"caps in Mbit/s, 0 = unlimited (default {DEFAULT_BANDWIDTHS})")
    p.add_argument("--duration", type=float,
                   help="VNC session length per trial, s (default as fig31)")


def main(argv=None) -> int:
    return common.figure_main(argv, __doc__, "sweep", sweep_trials,
                              {"sweep.csv": A.sweep_rows, "phases.csv": A.phase_rows,
                               "collateral.csv": A.collateral_rows},
                              analyse, report, extra_args=_args)


if __name__ == "__main__":
    sys.exit(main())
