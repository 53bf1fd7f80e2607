#!/usr/bin/env python3
"""How long must a before/after window be? The 10-hour projection refitted
on the first 45, 60, 90, 120, 150 and 180 s of each window of a results
folder with long windows -- the data behind the main job's window length.

    python experiments/window_convergence.py [--from results/reference-180s] [--out DIR]

Reads relayed.csv and migrations.csv of ``--from`` (no emulation) and
writes window_convergence.csv (window, trial or "median", projected
reduction at 10 h, break-even) and fig_window_convergence.png/svg.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import bootstrap  # noqa: E402

if __name__ == "__main__":
    bootstrap.ensure_venv(__file__)       # all other imports run in the venv

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from controller.rundir import RESULTS  # noqa: E402
from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402

ENDS = [45, 60, 90, 120, 150, 180]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="src", default=os.path.join(RESULTS, "reference-180s"),
                   help="a results folder with long before/after windows")
    p.add_argument("--out", default=os.path.join(RESULTS, "window-convergence"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rel = pd.read_csv(os.path.join(args.src, "relayed.csv"))
    mig = pd.read_csv(os.path.join(args.src, "migrations.csv"))
    conv = A.window_convergence(A.total_series(rel), mig, ENDS)
    conv.to_csv(os.path.join(args.out, "window_convergence.csv"), index=False)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for trial, g in conv.groupby("trial"):
        style = "k-o" if trial == "median" else "--"
        axes[0].plot(g.window_s, g.reduction_10h_pct, style, label=trial)
        axes[1].plot(g.window_s, g.breakeven_h * 60, style, label=trial)
    axes[0].set_ylabel("projected reduction at 10 h (%)")
    axes[1].set_ylabel("projected break-even (min)")
    for ax in axes:
        ax.set_xlabel("window length used for the fit (s)")
        ax.legend(title="trial", fontsize=8)
    fig.suptitle(f"PROJECTION vs window length ({os.path.basename(os.path.normpath(args.src))})")
    fig.tight_layout()
    common.save_figure(fig, args.out, "fig_window_convergence")
    common.write_json(os.path.join(args.out, "metadata.json"),
                      common.metadata(vars(args), {"from": os.path.relpath(args.src, RESULTS)}))
    med = conv[conv.trial == "median"].set_index("window_s")
    for end, r in med.iterrows():
        print(f"window {end:>4.0f} s: reduction at 10 h {r.reduction_10h_pct:5.1f} %, "
              f"break-even {r.breakeven_h * 60:5.1f} min")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
