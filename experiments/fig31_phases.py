#!/usr/bin/env python3
"""Fig. 31 -- time per OVCT phase, for both network-update modes.

    sudo python experiments/fig31_phases.py [--runs 5] [--modes fast paper]
        [--duration 25] [--out results/fig31] [--plot-only]

Each trial runs the paper scenario (tcl1 opens a VNC session to vm1 on pm2;
OVCT moves vm1 to pm1) live and reads what happened from the controller's
events, libvirt's job statistics, the thin client's update log and a 10 ms
ping probe from tcl2.  Trials already in ``phases.csv`` are skipped, so an
interrupted run resumes; ``--plot-only`` re-plots from the CSV.

phases.csv, one row per trial and quantity (tidy):
    trial, mode, accel, quantity, value, unit
quantities: session_to_detect (thin client starts -> controller sees the SYN),
detect_to_decision (placement incl. capacity checks), migration (libvirt
elapsed), vm_resume_to_network_update (VM seen at destination -> flows
switched), network_update_to_confirmed (-> every barrier answered),
qemu_downtime, ping_gap (longest silence of the 10 ms ping), vnc_update_gap
(longest silence between screen updates).
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common  # noqa: E402

QUANTITIES = ["session_to_detect", "detect_to_decision", "migration",
              "vm_resume_to_network_update", "network_update_to_confirmed",
              "qemu_downtime", "ping_gap", "vnc_update_gap"]
FIELDS = ["trial", "mode", "accel", "quantity", "value", "unit"]
#: the 2014 report's Fig. 31 (SUMMARY.md): detection + placement ~10 s, live
#: migration ~210 s, downtime ~15 s -- drawn for comparison, never copied into our data
REPORT_S = {"detect_to_decision": 10.0, "migration": 210.0, "qemu_downtime": 15.0}


def read_rows(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as fh:
        return [dict(r, value=float(r["value"])) for r in csv.DictReader(fh)]


def trial_rows(trial: str, mode: str, summary: dict, run_dir: str) -> list[dict]:
    from controller.record import read_jsonl
    (mig,) = summary["migrations"]
    (sess,) = summary["sessions"]
    tc = read_jsonl(os.path.join(run_dir, "thinclients", os.listdir(
        os.path.join(run_dir, "thinclients"))[0]))
    start_wall = next(r["time"] for r in tc if r["event"] == "start")
    detect_wall = next(e["time"] for e in read_jsonl(os.path.join(run_dir, "events.jsonl"))
                       if e["type"] == "ovct_detect")
    seen = mig.get("vm_seen")
    vals = {
        "session_to_detect": (detect_wall - start_wall, "s"),
        "detect_to_decision": (mig["detect_to_decision_s"], "s"),
        "migration": (mig["elapsed_ms"] / 1000, "s"),
        "vm_resume_to_network_update": ((mig["network_updated"] - seen) if seen else None, "s"),
        "network_update_to_confirmed": (mig["network_confirmed"] - mig["network_updated"], "s"),
        "qemu_downtime": (mig["downtime_ms"] / 1000, "s"),
        "ping_gap": (summary["probes"]["tcl2->vm1"]["max_gap_ms"] / 1000, "s"),
        "vnc_update_gap": (sess["max_gap_s"], "s"),
    }
    return [{"trial": trial, "mode": mode, "accel": summary["accel"], "quantity": q,
             "value": v, "unit": u} for q, (v, u) in vals.items() if v is not None]


def medians(rows: list[dict]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        out.setdefault((r["mode"], r["quantity"]), []).append(r["value"])
    return {k: statistics.median(v) for k, v in out.items()}


def plot(rows: list[dict], out: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    med = medians(rows)
    modes = sorted({r["mode"] for r in rows})
    qs = [q for q in QUANTITIES if any((m, q) in med for m in modes)]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(modes))
    for i, m in enumerate(modes):
        xs = [j + i * width for j in range(len(qs))]
        vals = [med.get((m, q), 0) for q in qs]
        spread = [[med.get((m, q), 0) - min(r["value"] for r in rows
                                            if r["mode"] == m and r["quantity"] == q)
                   for q in qs],
                  [max(r["value"] for r in rows if r["mode"] == m and r["quantity"] == q)
                   - med.get((m, q), 0) for q in qs]]
        ax.bar(xs, vals, width, yerr=spread, capsize=3, label=f"{m} (median, min-max)")
    for j, q in enumerate(qs):
        if q in REPORT_S:
            ax.plot([j - 0.1, j + 0.9 - width], [REPORT_S[q]] * 2, "k--", lw=1)
    ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(qs))])
    ax.set_xticklabels([q.replace("_", "\n") for q in qs], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.set_title("Time per OVCT phase (dashed: the 2014 report)")
    ax.legend()
    fig.tight_layout()
    return common.save_figure(fig, out, "fig31_phases")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="trials per mode")
    p.add_argument("--modes", nargs="+", default=["fast", "paper"], choices=["fast", "paper"])
    p.add_argument("--duration", type=float, default=25.0, help="VNC session length, s")
    p.add_argument("--out", help="results folder (default results/fig31)")
    p.add_argument("--plot-only", action="store_true", help="re-plot from phases.csv")
    args = p.parse_args(argv)
    out = common.new_run_dir(args.out or os.path.join(common.RESULTS, "fig31"))
    csv_path = os.path.join(out, "phases.csv")
    rows = read_rows(csv_path)
    if not args.plot_only:
        common.ensure_venv(__file__)
        from testbed import scenario
        from testbed.runner import run_scenario
        base = scenario.load(os.path.join(common.ROOT, "experiments", "scenarios", "paper.yaml"))
        data = base.model_dump(mode="json")
        data["sessions"] = [{**s, "duration_s": args.duration} for s in data["sessions"]]
        scn = scenario.parse(data)
        done = {r["trial"] for r in rows}
        todo = [(m, i) for m in args.modes for i in range(1, args.runs + 1)
                if f"{m}-{i}" not in done]
        for n, (mode, i) in enumerate(todo, 1):
            trial = f"{mode}-{i}"
            print(f"[{n}/{len(todo)}] trial {trial}", flush=True)
            run_dir = os.path.join(out, "raw", trial)
            summary = run_scenario(scn, run_dir, mode=mode, log=lambda m: None)
            new = trial_rows(trial, mode, summary, run_dir)
            write_header = not os.path.exists(csv_path)
            with open(csv_path, "a", newline="") as fh:
                w = csv.DictWriter(fh, FIELDS)
                if write_header:
                    w.writeheader()
                w.writerows(new)
            rows += new
        common.write_json(os.path.join(out, "metadata.json"), common.metadata(
            vars(args), {"accel": sorted({r["accel"] for r in rows})}))
    if not rows:
        print("no data")
        return 1
    med = medians(rows)
    n = {m: len({r["trial"] for r in rows if r["mode"] == m}) for m in {r["mode"] for r in rows}}
    print("\nmedians (s)" + "".join(f"   {m} (n={n[m]})" for m in sorted(n)))
    for q in QUANTITIES:
        print(f"  {q:<30}" + "".join(f"   {med[(m, q)]:>10.3f}" if (m, q) in med else
                                    f"   {'-':>10}" for m in sorted(n)))
    for path in plot(rows, out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
