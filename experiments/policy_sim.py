#!/usr/bin/env python3
"""When moving pays: the OVCT decision policies evaluated at scale with the
controller's own engine, on a simulated working day (a SIMULATION: no
emulation, no root; docs/POLICIES.md says what is measured and what is
modelled).

    python experiments/policy_sim.py [--sites 100] [--sessions 10000] [--seed 1]
        [--trace my.csv] [--calibrate-from results/reference-180s]
        [--vm-memory 256 2048] [--scaling [10 30 100 250]] [--out DIR]

For each policy (controller/policies.py), the hindsight rule (moves at
detection exactly the sessions that outlast their true break-even) and
the offline lower bound: relayed packets and bytes (migrations
included), migrations, user-seen downtime, time far from the VM, and the
ratios to the hindsight rule and to the lower bound.  Writes policies.csv
(one row per policy and VM size), predictions.csv (every prediction
checked against what the simulation "measured"), prediction_errors.csv,
trace.csv (the sessions, in the trace format --trace reads), scaling.csv
(with --scaling), fig_policies_<RAM>MiB.png/svg, fig_scaling.png/svg,
summary.md and metadata.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import bootstrap  # noqa: E402

if __name__ == "__main__":
    bootstrap.ensure_venv(__file__)       # all other imports run in the venv

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from controller import policies as P  # noqa: E402
from controller.config import Policy  # noqa: E402
from controller.cost import UNITS  # noqa: E402
from experiments import analysis as A  # noqa: E402
from experiments import common  # noqa: E402
from experiments import sim  # noqa: E402

SCALING_SITES = [10, 30, 100, 250]        # multisite_topology allows at most 250 sites
HINDSIGHT = "hindsight"
LOWER_BOUND = "lower_bound"


def base_policy(args) -> Policy:
    """The engine's policy for every run but its ``decision``."""
    return Policy(max_concurrent_migrations=args.max_concurrent, hold_time_s=args.hold_time,
                  cost_unit=args.unit, hysteresis_margin=args.margin,
                  hysteresis_saving_frac=args.saving_frac)


def _row(res: sim.RunResult, **ctx) -> dict:
    t = res.totals
    d = np.asarray(res.decide_s) * 1e6
    return {**ctx, "policy": res.policy,
            "relayed_packets": t.packets, "relayed_bytes": t.bytes,
            "session_packets": t.session_packets, "session_bytes": t.session_bytes,
            "migration_packets": t.migration_packets, "migration_bytes": t.migration_bytes,
            "migrations": t.migrations, "user_downtime_s": t.downtime_s,
            "far_h": t.far_s / 3600, "session_h": t.session_s / 3600,
            **{f"decisions_{k}": res.decisions.get(k, 0)
               for k in ("migrate", "stay", "defer", "wait")},
            "predictions_checked": len(res.predictions),
            "wall_s": res.wall_s, "cpu_s": res.cpu_s, "decide_us_mean": float(d.mean()) if d.size else np.nan,
            "decide_us_median": float(np.median(d)) if d.size else np.nan,
            "decide_us_p95": float(np.percentile(d, 95)) if d.size else np.nan,
            "hosts_ranked_mean": float(np.mean(res.hosts_ranked)) if res.hosts_ranked else np.nan,
            "hosts_ranked_max": int(np.max(res.hosts_ranked)) if res.hosts_ranked else np.nan,
            "exhaustive_rank_us_median": (float(np.median(res.exhaustive_s)) * 1e6
                                          if res.exhaustive_s else np.nan)}


def evaluate(world: sim.World, trace: sim.Trace, cal: sim.Calibration, args, log=print,
             exhaustive_every: int = 0, **ctx) -> tuple[list[dict], list[dict]]:
    """Every policy, the hindsight rule and the lower bound on one trace."""
    base = base_policy(args)
    rows, preds = [], []
    ctx = {"sites": len({h.site for h in world.topo.hosts}),
           "thin_clients": len(world.topo.hosts_by_role("client")),
           "kvm_hosts": len(world.topo.hosts_by_role("kvmhost")), "vms": len(trace.vms),
           "sessions": len(trace.sessions), "unit": args.unit, **ctx}
    for name in [*args.policies, HINDSIGHT]:
        res = sim.run(world, trace, sim.with_decision(base, "always" if name == HINDSIGHT
                                                      else name),
                      cal, hindsight=name == HINDSIGHT, measure=True,
                      exhaustive_every=exhaustive_every)
        rows.append(_row(res, **ctx))
        preds += [{"vm_memory_mib": ctx.get("vm_memory_mib"), "policy": res.policy, **p}
                  for p in res.predictions]
        log(f"  {res.policy:>10}: {res.totals.packets:.4g} packets relayed, "
            f"{res.totals.migrations} migrations, {res.wall_s:.1f} s")
    lb = {u: sim.lower_bound(world, trace, cal, u) for u in UNITS}
    rows.append({**ctx, "policy": LOWER_BOUND, "relayed_packets": lb["packets"],
                 "relayed_bytes": lb["bytes"]})
    df = pd.DataFrame(rows)
    hs = df[df.policy == HINDSIGHT].iloc[0]
    for unit in UNITS:
        col = f"relayed_{unit}"
        df[f"ratio_{unit}_to_hindsight"] = df[col] / hs[col]
        df[f"ratio_{unit}_to_lower_bound"] = df[col] / lb[unit] if lb[unit] else np.nan
    return df.to_dict("records"), preds


def plot_policies(df: pd.DataFrame, preds: pd.DataFrame, out: str, title: str) -> list[str]:
    runs = df[df.policy != LOWER_BOUND]
    lb = df[df.policy == LOWER_BOUND].iloc[0]
    x = np.arange(len(runs))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0, 0]
    ax.bar(x, runs.session_packets / 1e9, label="sessions' traffic")
    ax.bar(x, runs.migration_packets / 1e9, bottom=runs.session_packets / 1e9,
           label="migrations")
    ax.axhline(lb.relayed_packets / 1e9, color="k", ls="--", lw=1, label="offline lower bound")
    for i, r in enumerate(runs.itertuples()):
        ax.text(i, r.relayed_packets / 1e9, f"{r.ratio_packets_to_lower_bound:.2f}x",
                ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, runs.relayed_packets.max() / 1e9 * 1.12)
    ax.set_ylabel("packets relayed by all switches (10^9)")
    ax.set_title("relay (label: ratio to the lower bound)", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.bar(x - 0.2, runs.migrations, 0.4, label="migrations")
    ax2 = ax.twinx()
    ax2.bar(x + 0.2, runs.user_downtime_s, 0.4, color="C3", label="user-seen downtime")
    ax.set_ylabel("migrations")
    ax2.set_ylabel("user-seen downtime (s)", color="C3")
    ax.set_title("migrations (blue) and downtime seen in a session (red)", fontsize=10)
    ax = axes[1, 0]
    ax.bar(x, runs.far_h)
    ax.set_ylabel("session time with the VM at another site (h)")
    ax.set_title(f"time far from the VM (of {runs.session_h.iloc[0]:.0f} session-hours)",
                 fontsize=10)
    for a in (axes[0, 0], axes[0, 1], axes[1, 0]):
        a.set_xticks(x)
        a.set_xticklabels(runs.policy, rotation=20, fontsize=8)
    ax = axes[1, 1]
    data, labels = [], []
    for q in ("cost_error", "saving_error"):
        if q in preds:
            for pol, g in preds.groupby("policy", sort=False):
                v = pd.to_numeric(g[q], errors="coerce").dropna()
                if len(v):
                    data.append(v.to_numpy())
                    labels.append(f"{q.split('_')[0]}\n{pol}")
    if data:
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels(labels, fontsize=7, rotation=30)
        ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("realised / predicted - 1")
    ax.set_title("prediction errors (against the SIMULATION's model)", fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return common.save_figure(fig, out, title_name(df))


def title_name(df: pd.DataFrame) -> str:
    return f"fig_policies_{int(df.vm_memory_mib.iloc[0])}MiB"


def plot_scaling(sc: pd.DataFrame, out: str) -> list[str]:
    g = sc.groupby("sites").agg(wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"),
                                sessions=("sessions", "first"),
                                kvm_hosts=("kvm_hosts", "first"),
                                decide_us=("decide_us_median", "median"),
                                exhaustive_us=("exhaustive_rank_us_median", "median"),
                                ranked=("hosts_ranked_mean", "mean")).reset_index()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.plot(g.sessions, g.wall_s, "o-", label="wall clock")
    ax.plot(g.sessions, g.cpu_s, "s--", label="CPU time of the process")
    for r in g.itertuples():
        ax.annotate(f"{r.sites} sites", (r.sessions, r.cpu_s), fontsize=8,
                    textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("sessions simulated (100 per site)")
    ax.set_ylabel(f"all {sc.policy.nunique()} runs (s)")
    ax.legend(fontsize=8)
    ax.set_title("running time of the whole evaluation", fontsize=10)
    ax = axes[1]
    ax.plot(g.kvm_hosts, g.decide_us, "o-", label="a whole Ovct.decide (indexed placement)")
    ax.plot(g.kvm_hosts, g.exhaustive_us, "s--", label="only ranking every host (the old loop)")
    ax.set_xlabel("KVM hosts")
    ax.set_ylabel("time per decision, median (us)")
    ax.set_title("cost of a placement decision", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle("SIMULATION running time (engine: controller.ovct.Ovct)", fontsize=11)
    fig.tight_layout()
    return common.save_figure(fig, out, "fig_scaling")


def _fmt(v, spec=".3g") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def summary(df: pd.DataFrame, errors: pd.DataFrame, sc: pd.DataFrame | None, meta: dict) -> str:
    out = ["# When moving pays — OVCT decision policies at scale (SIMULATION)", "",
           f"Command: `{meta['command']}`  ",
           f"Calibration (measured, live run): {meta['calibration']['source']}; "
           "everything else is a MODEL (docs/POLICIES.md).  ",
           f"Wall time of the evaluation ({len(meta['options']['vm_memory'])} VM size(s), "
           f"{len(meta['options']['policies']) + 1} engine runs each): "
           f"{meta['evaluation_wall_s']:.1f} s.", ""]
    for mem, d in df.groupby("vm_memory_mib", sort=False):
        r0 = d.iloc[0]
        out += [f"## {int(mem)} MiB VMs — {int(r0.sites)} sites, {int(r0.thin_clients)} thin "
                f"clients, {int(r0.kvm_hosts)} KVM hosts, {int(r0.sessions)} sessions", "",
                "| policy | relayed packets | of which migrations | relayed bytes | migrations "
                "| user-seen downtime (s) | time far from the VM (h) | packets / hindsight "
                "| packets / lower bound | bytes / lower bound | wall (s) |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in d.itertuples():
            out.append(f"| {r.policy} | {_fmt(r.relayed_packets, '.4g')} | "
                       f"{_fmt(r.migration_packets, '.3g')} | {_fmt(r.relayed_bytes, '.4g')} | "
                       f"{_fmt(r.migrations, '.0f')} | {_fmt(r.user_downtime_s, '.1f')} | "
                       f"{_fmt(r.far_h, '.1f')} | {_fmt(r.ratio_packets_to_hindsight, '.3f')} | "
                       f"{_fmt(r.ratio_packets_to_lower_bound, '.3f')} | "
                       f"{_fmt(r.ratio_bytes_to_lower_bound, '.3f')} | {_fmt(r.wall_s, '.1f')} |")
        out.append("")
    out += ["`hindsight` knows each session's length and true break-even and moves at "
            "detection exactly the sessions that outlast it; it runs through the same "
            "engine (hold time, capacity, migration slots).  It is not a lower bound: "
            "moving a VM also moves it for its next sessions.  `lower_bound` is the least "
            "relay any plan could achieve, knowing the future (per VM, a shortest path over "
            "its sessions; capacity, hold time and slots ignored); the property test checks "
            "that no policy beats it.", ""]
    if len(errors):
        out += ["## Prediction against \"measurement\" (the simulation's model)", "",
                "realised / predicted - 1: `cost` the migration's relay, `transfer` the bytes "
                "sent, `saving` the relay per second the move saved.", "",
                "| VM RAM (MiB) | policy | quantity | n | median | mean abs | p10 | p90 |",
                "|---|---|---|---|---|---|---|---|"]
        for r in errors.itertuples():
            out.append(f"| {r.vm_memory_mib} | {r.policy} | {r.quantity} | {r.n} | "
                       f"{r.median:.3f} | {r.mean_abs:.3f} | {r.p10:.3f} | {r.p90:.3f} |")
        out += ["", "In the simulation the \"measured\" costs come from the same functional "
                "form as the model, so the errors show only what the model had not learnt yet "
                "(a VM's dirty rate before its first migration; a session's rate before it "
                "was measured).  The live run measures real errors.", ""]
    if sc is not None and len(sc):
        g = sc.groupby("sites").agg(sessions=("sessions", "first"), hosts=("kvm_hosts", "first"),
                                    runs=("policy", "count"), wall_s=("wall_s", "sum"),
                                    cpu_s=("cpu_s", "sum"),
                                    decide=("decide_us_median", "median"),
                                    exhaustive=("exhaustive_rank_us_median", "median"),
                                    ranked=("hosts_ranked_mean", "mean"),
                                    most=("hosts_ranked_max", "max"))
        out += ["## Running time and the cost of a decision", "",
                "| sites | KVM hosts | sessions | runs | wall, all runs (s) | CPU, all runs (s) "
                "| Ovct.decide, median "
                "(us) | hosts placement looked at per decision: mean, max | ranking every host "
                "(the loop before the index), median (us) |",
                "|---|---|---|---|---|---|---|---|---|"]
        for s, r in g.iterrows():
            out.append(f"| {s} | {r.hosts:.0f} | {r.sessions:.0f} | {r.runs:.0f} | "
                       f"{r.wall_s:.1f} | {r.cpu_s:.1f} | {r.decide:.1f} | {r.ranked:.2f}, "
                       f"{r.most:.0f} | "
                       f"{r.exhaustive:.1f} |")
        out += ["", "Wall-clock times are from a 2-core machine shared with a live emulation "
                "(noisy); CPU time is this process's alone; the count of hosts looked at is "
                "exact.", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites", type=int, default=100)
    p.add_argument("--clients", type=int, default=10, help="thin clients (users) per site")
    p.add_argument("--hosts", type=int, default=2, help="KVM hosts per site")
    p.add_argument("--core", type=int, help="core switches (ring; default sites/10)")
    p.add_argument("--sessions", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--trace", help="a CSV trace (columns: see experiments/sim.py "
                                   "TRACE_COLUMNS, docs/POLICIES.md) instead of the model")
    p.add_argument("--calibrate-from", help="a results folder of the paired experiment "
                                            "(default: the built-in reference-180s values)")
    p.add_argument("--vm-memory", type=int, nargs="+", default=[256],
                   help="VM RAM (MiB), one evaluation each (default: the reference's 256)")
    p.add_argument("--policies", nargs="+", default=list(P.DECISIONS), choices=P.DECISIONS)
    p.add_argument("--unit", choices=UNITS, default="packets", help="break-even counted in")
    p.add_argument("--max-concurrent", type=int, default=8, help="migrations at once")
    p.add_argument("--hold-time", type=float, default=300.0)
    p.add_argument("--margin", type=float, default=0.0, help="hysteresis_margin")
    p.add_argument("--saving-frac", type=float, default=0.0, help="hysteresis_saving_frac")
    p.add_argument("--host-slots", type=int, default=16,
                   help="VMs a KVM host has room for (its RAM: slots x (VM RAM + the "
                        "policy's 64 MiB reserve); by default 5 VMs live on each")
    p.add_argument("--scaling", type=int, nargs="*",
                   help=f"also time the evaluation at these site counts (default "
                        f"{' '.join(map(str, SCALING_SITES))}), sessions per site as given")
    p.add_argument("--out", help="results folder (default results/policy-sim-<time>)")
    args = p.parse_args(argv)
    out = common.new_run_dir(args.out, "policy-sim")
    cal = sim.calibrate(args.calibrate_from) if args.calibrate_from else sim.Calibration()
    command = "python experiments/policy_sim.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
    print(f"calibration ({cal.source}): {cal}")

    def world_for(sites, mem):
        return sim.World.multisite(sites, args.clients, args.hosts,
                                   args.core if sites == args.sites else None,
                                   host_memory_mib=args.host_slots * (mem + 64))
    t0 = time.perf_counter()
    rows, preds = [], []
    trace0 = None
    for mem in args.vm_memory:
        world = world_for(args.sites, mem)
        c = sim.replace(cal, memory_mib=mem)
        trace = (sim.read_trace(args.trace, world.topo, c) if args.trace
                 else sim.generate(world.topo, args.sessions, args.seed, c))
        if args.trace and mem != cal.memory_mib:
            trace = sim.Trace(trace.sessions, {k: sim.replace(v, memory_mib=mem)
                                               for k, v in trace.vms.items()})
        trace0 = trace0 or trace
        print(f"{world.topo.name}: {len(trace.sessions)} sessions, {len(trace.vms)} VMs of "
              f"{mem} MiB")
        r, pr = evaluate(world, trace, c, args, vm_memory_mib=mem, seed=args.seed,
                         host_memory_mib=world.host_memory_mib)
        rows += r
        preds += pr
    eval_wall = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    df.to_csv(os.path.join(out, "policies.csv"), index=False)
    pdf = pd.DataFrame(preds)
    pdf.to_csv(os.path.join(out, "predictions.csv"), index=False)
    errs = [e.assign(policy=pol, vm_memory_mib=mem)
            for (mem, pol), g in pdf.groupby(["vm_memory_mib", "policy"], sort=False)
            for e in [A.prediction_errors(g)]] if len(pdf) else []
    errors = pd.concat(errs, ignore_index=True) if errs else pd.DataFrame()
    if len(errors):
        errors = errors[["vm_memory_mib", "policy"] + A.PREDICTION_ERROR_COLUMNS]
    errors.to_csv(os.path.join(out, "prediction_errors.csv"), index=False)
    sim.write_trace(trace0, os.path.join(out, "trace.csv"))
    for mem, d in df.groupby("vm_memory_mib", sort=False):
        plot_policies(d.reset_index(drop=True), pdf[pdf.vm_memory_mib == mem] if len(pdf)
                      else pdf,
                      out, f"SIMULATION (calibrated from {cal.source}): {int(d.sites.iloc[0])} "
                           f"sites, {int(d.thin_clients.iloc[0])} thin clients, "
                           f"{int(d.sessions.iloc[0])} sessions, {mem} MiB VMs")

    sc = None
    if args.scaling is not None:
        per_site = max(1, args.sessions // args.sites)
        srows = []
        for sites in args.scaling or SCALING_SITES:
            w = world_for(sites, args.vm_memory[0])
            c = sim.replace(cal, memory_mib=args.vm_memory[0])
            tr = sim.generate(w.topo, per_site * sites, args.seed, c)
            print(f"scaling: {sites} sites, {len(tr.sessions)} sessions")
            t1 = time.perf_counter()
            r, _ = evaluate(w, tr, c, args, vm_memory_mib=args.vm_memory[0], seed=args.seed,
                            exhaustive_every=10)
            srows += [{k: x[k] for k in ("sites", "thin_clients", "kvm_hosts", "vms", "sessions",
                                         "policy", "wall_s", "cpu_s", "decide_us_mean",
                                         "decide_us_median",
                                         "decide_us_p95", "hosts_ranked_mean", "hosts_ranked_max",
                                         "exhaustive_rank_us_median")}
                      for x in r if x["policy"] != LOWER_BOUND]
            print(f"  {time.perf_counter() - t1:.1f} s for all runs")
        sc = pd.DataFrame(srows)
        sc.to_csv(os.path.join(out, "scaling.csv"), index=False)
        plot_scaling(sc, out)

    meta = common.metadata(vars(args), {
        "command": command, "calibration": {**cal.__dict__},
        "trace_model": None if args.trace else {**sim.TraceModel().__dict__},
        "topology": world.topo.name, "evaluation_wall_s": round(eval_wall, 2),
        "label": "SIMULATION: the controller's engine on a simulated clock, a model "
                 "calibrated from a live run (docs/POLICIES.md)"})
    common.write_json(os.path.join(out, "metadata.json"), meta)
    text = summary(df, errors, sc, meta)
    with open(os.path.join(out, "summary.md"), "w") as fh:
        fh.write(text + "\n")
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
