#!/usr/bin/env python3
"""When moving pays, live: OVCT's decision policies on real guests.

    sudo python experiments/policy_live.py [--policies always breakeven] [--runs 1]
        [--scenario experiments/scenarios/policy.yaml] [--out DIR] [--plot-only]

Each trial (``raw/<policy>-<n>``) runs the same multi-site scenario (default
``policy.yaml``: 4 sites, 4 TCG guests, short and long VNC sessions, each VM
on the next site's KVM host) with the policy file's ``decision`` set to one
policy.  Under ``always`` (the report's OVCT) every session's VM moves at
detection; under ``breakeven`` (rent or buy, docs/POLICIES.md) a session is
deferred and its VM moves only once the session has lasted its predicted
break-even, so the short sessions keep their VM.

Writes relayed.csv (cumulative packets/bytes per switch and class, as
fig29), migrations.csv (with each move's prediction and its check against
the switches' counts), decisions.csv (every decision, with the session's
age and the predicted break-even), sessions.csv (per session: duration,
whether its VM moved and at what age), prediction_errors.csv (per policy:
realised / predicted - 1 for the cost, the bytes sent and the saving) and
fig_policy_live.png/svg: relayed packets over the run per policy, and each
session's life with its predicted break-even and its move.
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

from controller.classes import MIGRATION  # noqa: E402
from controller.rundir import ROOT  # noqa: E402
from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from testbed import scenario  # noqa: E402
from testbed.runner import run_scenario  # noqa: E402

SCENARIO = os.path.join(ROOT, "experiments", "scenarios", "policy.yaml")
DEFAULT_POLICIES = ["always", "breakeven"]
TABLES = {"relayed.csv": A.relayed_rows, "migrations.csv": A.migration_rows,
          "decisions.csv": A.decision_rows, "sessions.csv": A.session_rows}


def policy_trials(out: str, prof: dict, args, log=print) -> list[str]:
    policies = args.policies or DEFAULT_POLICIES
    runs = args.runs or 1
    base = scenario.load(args.scenario).model_dump(mode="json")

    def run_one(name: str, path: str) -> dict:
        policy, n = name.rsplit("-", 1)
        data = {**base, "ovct": {**base["ovct"], "decision": policy}}
        summary = run_scenario(scenario.parse(data, f"{base['name']} ({policy})"), path,
                               log=lambda m: log("    " + m))
        return {"condition": policy, "trial": int(n), "policy": policy,
                "scenario": os.path.relpath(args.scenario, ROOT), "accel": summary["accel"]}
    # interleaved (always-1, breakeven-1, always-2, ...): drift spreads over every policy
    names = [f"{p}-{n}" for n in range(1, runs + 1) for p in policies]
    return common.ensure_trials(out, names, run_one, log)


def totals_at(tot: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Per trial: the packets/bytes all switches had relayed by ``horizon``
    (s since the trial's start; the last poll at or before it)."""
    rows = []
    for trial, g in tot.groupby("trial"):
        g = g[g.t_s <= horizon]
        last = g.iloc[-1] if not g.empty else None
        rows.append((trial, g.condition.iloc[0] if last is not None else None,
                     last.t_s if last is not None else np.nan,
                     last.packets if last is not None else 0,
                     last.bytes if last is not None else 0))
    return pd.DataFrame(rows, columns=["trial", "condition", "t_s", "packets", "bytes"])


def analyse(out: str) -> dict:
    rel = pd.read_csv(os.path.join(out, "relayed.csv"))
    ses = pd.read_csv(os.path.join(out, "sessions.csv"))
    mig = pd.read_csv(os.path.join(out, "migrations.csv"))
    tot = A.total_series(rel)
    mtot = A.total_series(rel, classes=(MIGRATION,))
    # compare every trial over the same span: the shortest trial's last poll
    horizon = float(tot.groupby("trial").t_s.max().min())
    at = totals_at(tot, horizon)
    mat = totals_at(mtot, horizon).set_index("trial")
    errs = []
    res: dict = {"horizon_s": horizon, "policies": {}}
    for policy, g in at.groupby("condition"):
        s = ses[ses.condition == policy]
        outlasted = s.duration_s >= s.breakeven_s
        m = mig[mig.condition == policy]
        e = A.prediction_errors(m)
        e.insert(0, "policy", policy)
        errs.append(e)
        res["policies"][policy] = {
            "trials": int(len(g)),
            "relayed_packets_median": float(g.packets.median()),
            "relayed_bytes_median": float(g.bytes.median()),
            "migration_packets_median": float(mat.loc[g.trial, "packets"].median()),
            "sessions": int(len(s)), "moved": int(s.moved.sum()),
            "moved_but_ended_before_breakeven": int((s.moved & ~outlasted).sum()),
            "outlasted_breakeven_but_stayed": int((~s.moved & outlasted).sum()),
            "prediction_errors": {r.quantity: {"n": int(r.n), "median": r["median"],
                                               "worst": float(max(abs(r["min"]), abs(r["max"])))}
                                  for _, r in e.iterrows()}}
    pols = res["policies"]
    if "always" in pols and "breakeven" in pols:
        a, b = pols["always"]["relayed_packets_median"], pols["breakeven"]["relayed_packets_median"]
        res["breakeven_vs_always_packets"] = b / a - 1 if a else None
    errors = pd.concat(errs) if errs else pd.DataFrame(columns=["policy"] + A.PREDICTION_ERROR_COLUMNS)
    errors.to_csv(os.path.join(out, "prediction_errors.csv"), index=False)
    plot(tot, mtot, ses, horizon, out)
    return res


def plot(tot: pd.DataFrame, mtot: pd.DataFrame, ses: pd.DataFrame, horizon: float,
         out: str) -> list[str]:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {}
    for trial, g in tot.groupby("trial", sort=True):
        policy = g.condition.iloc[0]
        first = policy not in colours              # label each policy's first trial only
        c = colours.setdefault(policy, f"C{len(colours)}")
        ax.plot(g.t_s, g.packets / 1e6, color=c, label=f"{policy}: all forwarding" if first else None)
        mg = mtot[mtot.trial == trial]
        ax.plot(mg.t_s, mg.packets / 1e6, color=c, ls="--",
                label=f"{policy}: of which migration" if first else None)
    ax.axvline(horizon, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("time since the first session (s)")
    ax.set_ylabel("packets relayed by all switches (millions)")
    ax.legend(fontsize=8)
    ax.set_title("Relayed traffic over the run")
    labels = sorted({f"{r.client_ip}->{r.vm}" for r in ses.itertuples()})
    pols = sorted(ses.condition.unique())
    for k, policy in enumerate(pols):
        s = ses[ses.condition == policy]
        c = colours.get(policy, f"C{k}")
        for r in s.itertuples():
            y = labels.index(f"{r.client_ip}->{r.vm}") + (k - (len(pols) - 1) / 2) * 0.3
            end = r.ended_s if not np.isnan(r.ended_s) else r.detected_s + r.duration_s
            bx.plot([r.detected_s, end], [y, y], color=c, lw=3,
                    label=policy if r.Index == s.index[0] else None)
            if not np.isnan(r.breakeven_s):
                bx.plot(r.detected_s + r.breakeven_s, y, marker="|", ms=10, mew=2, color=c)
            if r.moved:
                bx.plot(r.detected_s + r.moved_at_age_s, y, marker="v", ms=8, color=c)
    bx.set_yticks(range(len(labels)), labels, fontsize=8)
    bx.set_xlabel("time since the first session (s)")
    bx.set_title("Sessions: | predicted break-even (last prediction), v move decided")
    bx.legend(fontsize=8)
    fig.suptitle("Decision policies live (same scenario, same guests)")
    fig.tight_layout()
    return common.save_figure(fig, out, "fig_policy_live")


def report(res: dict) -> str:
    lines = [f"relayed over the first {res['horizon_s']:.0f} s (median over trials)",
             "policy      packets   of which migration  sessions moved  "
             "moved, ended before b/e  outlasted b/e, stayed"]
    for p, r in sorted(res["policies"].items()):
        lines.append(f"  {p:<10} {r['relayed_packets_median']:>9.0f}  "
                     f"{r['migration_packets_median']:>18.0f}  "
                     f"{r['moved']:>5}/{r['sessions']:<8} {r['moved_but_ended_before_breakeven']:>23}  "
                     f"{r['outlasted_breakeven_but_stayed']:>21}")
    if res.get("breakeven_vs_always_packets") is not None:
        lines.append(f"breakeven relays {100 * res['breakeven_vs_always_packets']:+.1f} % "
                     "packets against always")
    for p, r in sorted(res["policies"].items()):
        for q, e in r["prediction_errors"].items():
            lines.append(f"  {p}: {q} prediction error (realised/predicted - 1) over {e['n']}: "
                         f"median {100 * e['median']:+.1f} %, worst {100 * e['worst']:.1f} %")
    return "\n".join(lines)


def _args(p) -> None:
    p.add_argument("--policies", nargs="+",
                   help=f"decision policies to compare (default {DEFAULT_POLICIES})")
    p.add_argument("--scenario", default=SCENARIO, help="scenario YAML (default policy.yaml)")


def main(argv=None) -> int:
    return common.figure_main(argv, __doc__, "policy", policy_trials, TABLES, analyse, report,
                              extra_args=_args)


if __name__ == "__main__":
    sys.exit(main())
