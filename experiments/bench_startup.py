#!/usr/bin/env python3
"""Benchmark: how the live network's start-up scales with its size.

    sudo python experiments/bench_startup.py [--sites 2 5 10 20 35 50] [--runs 1]
        [--stats-intervals 5 30] [--pairs 1000] [--out DIR] [--plot-only]

For each size, a multi-site network without guests (``--clients 4
--hosts 1`` per site, a ring of sites/5 core switches: 5 hosts per site, so
50 sites are 250 hosts and 60 switches) is brought up with the os-ken
controller and the userspace OVS datapath, as ``ovct check --no-vms`` does.
Per run it records where the start-up time went (Mininet's build and
start, host set-up, switches connected, links discovered by LLDP, hosts
learnt), the controller's CPU seconds and resident memory, ovs-vswitchd's
resident memory, the flows per switch, and a first-ping reachability check
over a random sample of ordered host pairs (``--pairs``).  The largest size
that starts is the last row whose ``ok`` is true.  Each size runs with each
of the controller's statistics intervals (``--stats-intervals``): every
poll makes os-ken parse every flow of every switch (about 15 per host on
every switch), which is what limits the controller here.

Writes startup.csv (one row per run) and fig_startup_scaling.png/svg.
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
import pandas as pd  # noqa: E402

from experiments import common  # noqa: E402

DEFAULT_SITES = [2, 5, 10, 20, 35, 50]
STEPS = ["build", "start", "hosts_configured", "switches_connected", "links_discovered",
         "hosts_learnt"]
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ovs_vswitchd_pid() -> int | None:
    for path in ("/run/openvswitch/ovs-vswitchd.pid", "/var/run/openvswitch/ovs-vswitchd.pid"):
        try:
            with open(path) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            continue
    return None


def flows_per_switch(dumps: dict[str, str]) -> list[int]:
    return [sum(1 for ln in text.splitlines() if "cookie=" in ln) for text in dumps.values()]


def run_size(sites: int, run: int, pairs: int, out: str, stats_interval: float = 5.0,
             log=print, commit: str | None = None) -> dict:
    """One size, one run: a row of startup.csv (``commit``: the code that
    measured it, since rows are added run by run)."""
    from testbed.net import Testbed
    from testbed.topology import multisite_topology
    core = max(1, sites // 5)
    topo = multisite_topology(sites=sites, clients=4, hosts=1, core=core)
    row = {"sites": sites, "core": core, "hosts": len(topo.hosts),
           "switches": len(topo.switches), "links": len(topo.switch_links()), "run": run,
           "stats_interval_s": stats_interval,
           "git_commit": commit,
           "ok": False, "error": None}
    vs = ovs_vswitchd_pid()
    t0 = time.monotonic()
    try:
        with Testbed(topo, run_dir=os.path.join(out, "raw",
                                                f"sites{sites}-si{stats_interval:g}-{run}"),
                     kvm=False, stats_interval=stats_interval) as tb:
            row["ready_s"] = round(time.monotonic() - t0, 3)
            row["datapath"] = tb.datapath
            row.update({f"{k}_s": v for k, v in tb.network.startup_s.items()})
            cpid = tb.controller_proc.pid
            row["controller_cpu_s"] = round(proc_cpu_s(cpid), 2)
            row["controller_rss_mib"] = round(proc_rss_mib(cpid), 1)
            if vs:
                row["ovs_vswitchd_rss_mib"] = round(proc_rss_mib(vs), 1)
            flows = flows_per_switch(tb.flow_dumps())
            row["flows_per_switch_median"] = sorted(flows)[len(flows) // 2]
            row["flows_per_switch_max"] = max(flows)
            t1 = time.monotonic()
            res = tb.ping_all(count=1, sample=pairs, seed=run)
            row["ping_pairs"] = len(res)
            row["ping_pairs_reached"] = sum(r.received == 1 for r in res.values())
            row["ping_check_s"] = round(time.monotonic() - t1, 1)
            row["ok"] = row["ping_pairs_reached"] == row["ping_pairs"]
            # which pairs missed their first ping, and whether a second
            # ping right after reaches them (slow, or unreachable?)
            missed = [pair for pair, r in res.items() if r.received != 1]
            row["first_ping_missed"] = " ".join(f"{a}->{b}" for a, b in missed)[:2000]
            if missed:
                again = tb.ping_pairs(missed, count=1, wait=5.0)
                row["missed_then_answered"] = sum(r.received == 1 for r in again.values())
    except Exception as exc:       # a size that does not start is a result too
        row["error"] = f"{type(exc).__name__}: {exc}"[:500]
    row["total_s"] = round(time.monotonic() - t0, 3)
    log(f"  {row['hosts']} hosts, {row['switches']} switches, stats every {stats_interval:g} s: "
        + (f"ready in {row['ready_s']:.1f} s, {row['ping_pairs_reached']}/{row['ping_pairs']} "
           f"pairs on the first ping, controller {row['controller_cpu_s']:.1f} CPU s"
           if "ready_s" in row and "ping_pairs" in row else f"FAILED: {row['error']}"))
    return row


def plot(df: pd.DataFrame, out: str) -> list[str]:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    if "stats_interval_s" not in df:
        df = df.assign(stats_interval_s=5.0)
    # every run that came up (its first-ping check may have missed pairs:
    # the report says which); panel 1 for the interval that went furthest
    ok = df[df.ready_s.notna()] if "ready_s" in df else df.iloc[:0]
    first = ok.groupby("stats_interval_s").hosts.max().idxmax() if len(ok) else 5.0
    g = ok[ok.stats_interval_s == first].groupby("hosts").median(numeric_only=True).reset_index()
    bottom = 0
    for step in STEPS:
        col = f"{step}_s"
        if col in g:
            axes[0].bar(g.hosts.astype(str), g[col], bottom=bottom, label=step)
            bottom = bottom + g[col]
    axes[0].set_xlabel("emulated hosts")
    axes[0].set_ylabel("start-up time (s), median over runs")
    axes[0].legend(fontsize=7)
    axes[0].set_title(f"Where start-up time goes (statistics every {first:g} s)")
    for si, x in ok.groupby("stats_interval_s"):
        m = x.groupby("hosts").median(numeric_only=True).reset_index()
        tag = f" (stats {si:g} s)"
        axes[1].plot(m.hosts, m.controller_cpu_s, "o-", label="controller CPU s, until ready" + tag)
        axes[1].plot(m.hosts, m.controller_rss_mib, "s--", label="controller RSS MiB" + tag)
    if "ovs_vswitchd_rss_mib" in g:
        axes[1].plot(g.hosts, g.ovs_vswitchd_rss_mib, "^-", label="ovs-vswitchd RSS MiB")
    axes[1].set_xlabel("emulated hosts")
    axes[1].legend(fontsize=6)
    axes[1].set_title("Controller and switch cost")
    axes[2].plot(g.hosts, g.flows_per_switch_median, "o-", label="flows per switch, median")
    axes[2].plot(g.hosts, g.flows_per_switch_max, "s-", label="flows per switch, max")
    axes[2].set_xlabel("emulated hosts")
    axes[2].set_ylabel("flows per switch")
    axes[2].legend(fontsize=7)
    axes[2].set_title("Flow tables")
    fig.suptitle("Live start-up scaling (multi-site, userspace OVS, no guests)")
    fig.tight_layout()
    return common.save_figure(fig, out, "fig_startup_scaling")


def report(df: pd.DataFrame) -> str:
    lines = ["hosts switches stats s  ready s  learnt s  ctrl CPU s  ctrl MiB  flows/sw max  "
             "first-ping pairs (s)"]
    if "stats_interval_s" not in df:
        df = df.assign(stats_interval_s=5.0)
    for r in df.itertuples():
        if pd.isna(getattr(r, "ready_s", float("nan"))) or pd.isna(
                getattr(r, "ping_pairs", float("nan"))):
            lines.append(f"{r.hosts:>5} {r.switches:>8} {r.stats_interval_s:>7g}  FAILED: {r.error}")
            continue
        lines.append(f"{r.hosts:>5} {r.switches:>8} {r.stats_interval_s:>7g}  {r.ready_s:>7.1f}  "
                     f"{r.hosts_learnt_s:>8.1f}"
                     f"  {r.controller_cpu_s:>10.1f}  {r.controller_rss_mib:>8.0f}  "
                     f"{r.flows_per_switch_max:>12.0f}  {r.ping_pairs_reached:.0f}/"
                     f"{r.ping_pairs:.0f} ({r.ping_check_s:.0f})")
    ok = df[df.ok]
    if len(ok):
        big = ok.sort_values("hosts").iloc[-1]
        lines.append(f"largest network that started and passed: {big.hosts} hosts, "
                     f"{big.switches} switches, ready in {big.ready_s:.1f} s (statistics "
                     f"every {big.stats_interval_s:g} s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites", type=int, nargs="+", default=DEFAULT_SITES,
                   help=f"sizes, in sites of 5 hosts (default {DEFAULT_SITES})")
    p.add_argument("--runs", type=int, default=1, help="runs per size")
    p.add_argument("--first-run", type=int, default=1,
                   help="number of the first run (to add runs to a folder's rows)")
    p.add_argument("--stats-intervals", type=float, nargs="+", default=[5.0],
                   help="the controller's statistics intervals to try, s (default 5)")
    p.add_argument("--pairs", type=int, default=1000,
                   help="ordered host pairs pinged once after start-up (random sample)")
    p.add_argument("--out", help="results folder (default results/startup-<time>)")
    p.add_argument("--plot-only", action="store_true", help="only re-plot startup.csv in --out")
    args = p.parse_args(argv)
    out = common.new_run_dir(args.out, "startup")
    csv = os.path.join(out, "startup.csv")
    if not args.plot_only:
        # rows already in the folder are kept: sizes can be added run by run
        rows = pd.read_csv(csv).to_dict("records") if os.path.exists(csv) else []
        # taken before the run writes its rows (so git_dirty is the code's)
        meta = common.metadata(vars(args))
        commit = meta["git_commit"][:12]
        t0 = time.monotonic()
        plan = [(s, r, si) for r in range(args.first_run, args.first_run + args.runs)
                for si in args.stats_intervals
                for s in args.sites]
        for k, (sites, run, si) in enumerate(plan, 1):
            print(f"[{k}/{len(plan)}] {sites} sites, run {run}, statistics every {si:g} s "
                  f"{common.progress(t0, k - 1, len(plan))}", flush=True)
            rows.append(run_size(sites, run, args.pairs, out, si, commit=commit))
            pd.DataFrame(rows).to_csv(csv, index=False)     # kept if a later size hangs
        common.write_json(os.path.join(out, "metadata.json"), meta)
    df = pd.read_csv(csv)
    plot(df, out)
    print(report(df))
    return 0


if __name__ == "__main__":
    sys.exit(main())
