#!/usr/bin/env python3
"""OVCT across many sites, live: six sites, six real guests, six concurrent
VNC sessions, migrations queued one at a time.

    sudo python experiments/manysite.py [--runs 1] [--scenario experiments/scenarios/manysite.yaml]
        [--out DIR] [--plot-only]

Each trial (``raw/run-<n>``) runs the scenario (default ``manysite.yaml``:
6 sites on a ring of 3 core switches, each site's VM on the next site's KVM
host, the six sessions starting within 10 s, ``max_concurrent_migrations:
1``) while every thin client pings its own VM every 200 ms.

Writes probes.csv (every ping, with where it falls against its VM's move:
before / during / after), migrations.csv, decisions.csv, sessions.csv,
placement.csv (where each VM started and ended, and its client's site),
and fig_manysite.png/svg: each session's RTT to its VM before and after the
move, and the migrations over time (waiting for the slot, then migrating).
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

from controller.rundir import ROOT, RunDir  # noqa: E402
from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from testbed import scenario  # noqa: E402
from testbed.runner import run_scenario  # noqa: E402

SCENARIO = os.path.join(ROOT, "experiments", "scenarios", "manysite.yaml")
PLACEMENT_COLUMNS = ["trial", "vm", "client", "client_host", "started_on", "ended_on"]


def placement_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """Per trial and VM: where it started and ended, and the KVM host of
    its client's site (from the trial's scenario: the session's client
    t<s>x<i> sits at site s, whose hosts are p<s>x<j>)."""
    rows = []
    for d in trial_dirs:
        run = RunDir(d)
        summary = run.read_json(run.summary)
        meta = run.read_json(run.trial)
        for s in summary.get("sessions", []):
            site = s["client"][1:].split("x")[0]
            rows.append((f"run-{meta['trial']}", s["vm"], s["client"], f"p{site}x1",
                         summary["initial_placement"].get(s["vm"]),
                         summary["final_placement"].get(s["vm"])))
    return pd.DataFrame(rows, columns=PLACEMENT_COLUMNS).drop_duplicates()


TABLES = {"probes.csv": A.probe_rows, "migrations.csv": A.migration_rows,
          "decisions.csv": A.decision_rows, "sessions.csv": A.session_rows,
          "placement.csv": placement_rows}


def manysite_trials(out: str, prof: dict, args, log=print) -> list[str]:
    scn = scenario.load(args.scenario)

    def run_one(name: str, path: str) -> dict:
        summary = run_scenario(scn, path, log=lambda m: log("    " + m))
        return {"condition": "run", "trial": int(name.split("-")[1]),
                "scenario": os.path.relpath(args.scenario, ROOT), "accel": summary["accel"],
                "guests": len(summary["initial_placement"])}
    return common.ensure_trials(out, [f"run-{n}" for n in range(1, (args.runs or 1) + 1)],
                                run_one, log)


def session_rtt(probes: pd.DataFrame) -> pd.DataFrame:
    """Per trial and client -> VM: median RTT and loss before and after the move."""
    rows = []
    for (trial, src, dst), g in probes.groupby(["trial", "src", "dst"]):
        r = {"trial": trial, "src": src, "dst": dst}
        for phase in ("before", "during", "after", "unmoved"):
            x = g[g.phase == phase]
            r[f"{phase}_pings"] = int(len(x))
            r[f"{phase}_lost"] = int(x.rtt_ms.isna().sum())
            r[f"{phase}_median_ms"] = float(x.rtt_ms.median()) if x.rtt_ms.notna().any() \
                else np.nan
        rows.append(r)
    return pd.DataFrame(rows)


def analyse(out: str) -> dict:
    probes = pd.read_csv(os.path.join(out, "probes.csv"))
    mig = pd.read_csv(os.path.join(out, "migrations.csv"))
    dec = pd.read_csv(os.path.join(out, "decisions.csv"))
    place = pd.read_csv(os.path.join(out, "placement.csv"))
    rtt = session_rtt(probes)
    rtt.to_csv(os.path.join(out, "session_rtt.csv"), index=False)
    queue = queue_rows(mig, dec)
    queue.to_csv(os.path.join(out, "queue.csv"), index=False)
    change = rtt.after_median_ms / rtt.before_median_ms - 1
    res = {
        "trials": int(place.trial.nunique()),
        "vms": int(len(place)),
        "vms_next_to_their_client": int((place.ended_on == place.client_host).sum()),
        "migrations": int(len(mig)),
        "max_parallel_migrations": int(max_overlap(mig)),
        "waits": int((dec.decision == "wait").sum()),
        "queue_wait_s_median": float(queue.wait_s.median()) if len(queue) else None,
        "queue_wait_s_max": float(queue.wait_s.max()) if len(queue) else None,
        "migration_s_median": float((mig.migration_done_s - mig.migration_start_s).median())
        if len(mig) else None,
        "rtt_before_ms_median": float(rtt.before_median_ms.median()),
        "rtt_after_ms_median": float(rtt.after_median_ms.median()),
        "rtt_change_median": float(change.median()),
        "sessions_rtt_lower_after": int((change < 0).sum()),
        "sessions": int(len(rtt)),
        "pings_lost_during": int(rtt.during_lost.sum()),
    }
    plot(rtt, queue, out)
    return res


def queue_rows(mig: pd.DataFrame, dec: pd.DataFrame) -> pd.DataFrame:
    """Per migration: its session's first decision, the migrate call, the
    end (s since the trial's start) and the wait for the slot between."""
    rows = []
    for m in mig.itertuples():
        first = dec[(dec.trial == m.trial) & (dec.vm == m.vm)].decided_s.min()
        rows.append((m.trial, m.vm, m.src, m.dst, first, m.migration_start_s,
                     m.migration_done_s, m.migration_start_s - first))
    return pd.DataFrame(rows, columns=["trial", "vm", "src", "dst", "decided_s",
                                       "migration_start_s", "migration_done_s", "wait_s"])


def max_overlap(mig: pd.DataFrame) -> int:
    """The most migrations under way at one moment, per trial."""
    best = 0
    for _trial, g in mig.groupby("trial"):
        marks = sorted([(t, 1) for t in g.migration_start_s] +
                       [(t, -1) for t in g.migration_done_s])
        cur = 0
        for _t, k in marks:
            cur += k
            best = max(best, cur)
    return best


def plot(rtt: pd.DataFrame, queue: pd.DataFrame, out: str) -> list[str]:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{r.src}->{r.dst}" + (f" ({r.trial})" if rtt.trial.nunique() > 1 else "")
              for r in rtt.itertuples()]
    x = np.arange(len(rtt))
    ax.bar(x - 0.2, rtt.before_median_ms, 0.4, label="before its VM moved")
    ax.bar(x + 0.2, rtt.after_median_ms, 0.4, label="after")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("median RTT, client -> its VM (ms)")
    ax.set_title("Each session's RTT (200 ms probe)")
    ax.legend(fontsize=8)
    for k, q in enumerate(queue.itertuples()):
        bx.plot([q.decided_s, q.migration_start_s], [k, k], color="C7", lw=4,
                label="waiting for the slot" if k == 0 else None)
        bx.plot([q.migration_start_s, q.migration_done_s], [k, k], color="C3", lw=4,
                label="migrating" if k == 0 else None)
    bx.set_yticks(range(len(queue)), [f"{q.vm} {q.src}->{q.dst}" for q in queue.itertuples()],
                  fontsize=8)
    bx.set_xlabel("time since the first session (s)")
    bx.set_title("Migrations over time (max_concurrent_migrations: 1)")
    bx.legend(fontsize=8)
    fig.suptitle("OVCT across six sites, live")
    fig.tight_layout()
    return common.save_figure(fig, out, "fig_manysite")


def report(res: dict) -> str:
    return "\n".join([
        f"{res['vms_next_to_their_client']}/{res['vms']} VMs ended next to their client; "
        f"{res['migrations']} migrations, at most {res['max_parallel_migrations']} at once, "
        f"{res['waits']} waited for the slot (median wait {res['queue_wait_s_median']:.1f} s, "
        f"longest {res['queue_wait_s_max']:.1f} s); migration {res['migration_s_median']:.1f} s "
        "(median)",
        f"RTT client -> own VM, median over sessions: {res['rtt_before_ms_median']:.3f} ms "
        f"before, {res['rtt_after_ms_median']:.3f} ms after (median change "
        f"{100 * res['rtt_change_median']:+.1f} %; lower after in "
        f"{res['sessions_rtt_lower_after']}/{res['sessions']} sessions); "
        f"{res['pings_lost_during']} pings lost around the moves"])


def _args(p) -> None:
    p.add_argument("--scenario", default=SCENARIO, help="scenario YAML (default manysite.yaml)")


def main(argv=None) -> int:
    return common.figure_main(argv, __doc__, "manysite", manysite_trials, TABLES, analyse,
                              report, extra_args=_args)


if __name__ == "__main__":
    sys.exit(main())
