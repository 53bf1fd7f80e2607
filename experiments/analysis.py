"""Analysis shared by the figure scripts and the notebook: tidy tables from
raw trial folders, statistics, the 10-hour projection.  Pure (pandas, numpy);
unit-tested on fixture data."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from controller import events as E
from controller.classes import FORWARDING
from controller.rundir import RunDir

PING_COLUMNS = ["trial", "condition", "src", "dst", "seq", "rtt_ms"]
RELAYED_COLUMNS = ["trial", "condition", "t_s", "switch", "class", "packets", "bytes"]
MIGRATION_COLUMNS = ["trial", "condition", "vm", "src", "dst", "mode", "detect_to_decision_s",
                     "elapsed_ms", "downtime_ms", "data_total_bytes", "iterations",
                     "migration_start_s", "migration_done_s"]
PHASE_COLUMNS = ["trial", "mode", "accel", "quantity", "value", "unit"]
#: Fig. 31's quantities, in the order the figure shows them
PHASE_QUANTITIES = ["session_to_detect", "detect_to_decision", "migration",
                    "vm_resume_to_network_update", "network_update_to_confirmed",
                    "qemu_downtime", "ping_gap", "vnc_update_gap"]
HOURS_10 = 10 * 3600.0


def _trial(d: str) -> tuple[dict, list[tuple[str, str, float, float, bool]]]:
    """A raw trial folder's summary.json and the trials it holds: (trial,
    condition, start, end, starts mid-run), times on the monotonic clock.
    A paired folder (OVCT switched on during the run) holds "before-<n>"
    from the first session's start to the switch and "after-<n>" from the
    switch on; any other holds one trial named after its condition."""
    run = RunDir(d)
    meta = run.read_json(run.trial)
    summary = run.read_json(run.summary)
    t0 = _session_start_mono(d)
    switch = summary.get("ovct_switched_on_mono")
    n = meta["trial"]
    if switch is None:
        return summary, [(f"{meta['condition']}-{n}", meta["condition"], t0, float("inf"), False)]
    return summary, [(f"before-{n}", "before", t0, switch, False),
                     (f"after-{n}", "after", switch, float("inf"), True)]


def ping_rows(trial_dirs: list[str]) -> pd.DataFrame:
    rows = []
    for d in trial_dirs:
        summary, trials = _trial(d)
        for trial, cond, *_ in trials:
            for pair, res in summary["steady"][cond].items():
                src, dst = pair.split("->")
                for seq, rtt in enumerate(res["rtts_ms"], 1):
                    rows.append((trial, cond, src, dst, seq, rtt))
    return pd.DataFrame(rows, columns=PING_COLUMNS)


def _thinclient_logs(d: str) -> list[list[dict]]:
    tcdir = RunDir(d).thinclients
    return [E.read(os.path.join(tcdir, f)) for f in sorted(os.listdir(tcdir))]


def _session_start_mono(d: str) -> float:
    return min(r["mono"] for recs in _thinclient_logs(d) for r in recs if r["event"] == "start")


def relayed_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """Cumulative packets/bytes relayed per switch and class at each poll,
    time measured from the trial's start (the first session's start, or the
    moment OVCT was switched on).  A trial that starts at the switch counts
    from each switch's last poll before it: a row of zeros at t = 0, then
    what was relayed since that poll (at most one statistics interval
    before the switch)."""
    rows = []
    for d in trial_dirs:
        polls = E.of_type(E.read(RunDir(d).stats), E.FLOW_STATS)
        for trial, cond, t0, t1, mid_run in _trial(d)[1]:
            base: dict[tuple[int, str], tuple[int, int]] = {}
            if mid_run:                             # counters re-based at the switch
                for r in polls:
                    if r["mono"] <= t0:
                        base.update({(r["dpid"], c): tuple(v) for c, v in r["by_class"].items()
                                     if c in FORWARDING})
                rows += [(trial, cond, 0.0, dpid, c, 0, 0) for dpid, c in sorted(base)]
            for r in polls:
                if r["mono"] > t1 or (mid_run and r["mono"] <= t0):
                    continue
                for cls, (pk, by) in r["by_class"].items():
                    if cls in FORWARDING:
                        b = base.get((r["dpid"], cls), (0, 0))
                        rows.append((trial, cond, round(r["mono"] - t0, 3), r["dpid"], cls,
                                     pk - b[0], by - b[1]))
    return pd.DataFrame(rows, columns=RELAYED_COLUMNS)


def migration_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """One row per migration, with its start and end in seconds since its
    trial's start."""
    rows = []
    for d in trial_dirs:
        summary, trials = _trial(d)
        for trial, cond, t0, t1, _ in trials:
            for m in summary["migrations"]:
                if not t0 <= m.get("migration_started", t0) < t1:
                    continue
                rows.append((trial, cond, m.get("vm"), m.get("src"), m.get("dst"),
                             m.get("mode"), m.get("detect_to_decision_s"), m.get("elapsed_ms"),
                             m.get("downtime_ms"), m.get("data_total_bytes"),
                             m.get("iterations"), m.get("migration_started", np.nan) - t0,
                             m.get("migration_done", np.nan) - t0))
    return pd.DataFrame(rows, columns=MIGRATION_COLUMNS)


def phase_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """Fig. 31: one row per trial and quantity (tidy), from a phase trial's
    run directory (named ``<mode>-<n>``: one VNC session whose VM OVCT
    moves, a ping probe beside it)."""
    rows = []
    for d in trial_dirs:
        run = RunDir(d)
        summary = run.read_json(run.summary)
        (mig,) = summary["migrations"]
        (sess,) = summary["sessions"]
        (probe,) = summary["probes"].values()
        (tc,) = _thinclient_logs(d)
        start_wall = next(r["time"] for r in tc if r["event"] == "start")
        detect_wall = E.of_type(E.read(run.events), E.OVCT_DETECT)[0]["time"]
        seen = mig.get("vm_seen")
        vals = {
            "session_to_detect": detect_wall - start_wall,
            "detect_to_decision": mig["detect_to_decision_s"],
            "migration": mig["elapsed_ms"] / 1000,
            "vm_resume_to_network_update": (mig["network_updated"] - seen) if seen else None,
            "network_update_to_confirmed": mig["network_confirmed"] - mig["network_updated"],
            "qemu_downtime": mig["downtime_ms"] / 1000,
            "ping_gap": probe["max_gap_ms"] / 1000,
            "vnc_update_gap": sess["max_gap_s"],
        }
        rows += [(os.path.basename(run.path), summary["update_mode"], summary["accel"], q, v, "s")
                 for q, v in vals.items() if v is not None]
    return pd.DataFrame(rows, columns=PHASE_COLUMNS)


def phase_stats(phases: pd.DataFrame) -> pd.DataFrame:
    """Per mode and quantity: trials, median, min and max (Fig. 31)."""
    g = phases.groupby(["mode", "quantity"]).value
    return pd.DataFrame({"n": g.count(), "median": g.median(), "min": g.min(), "max": g.max()})


# -- statistics -------------------------------------------------------------------

def median_ci(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Median and a bootstrap percentile interval of the median."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(v, size=(n_boot, v.size), replace=True), axis=1)
    lo, hi = np.percentile(boots, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(np.median(v)), float(lo), float(hi)


def rtt_table(ping: pd.DataFrame) -> pd.DataFrame:
    """The report's Fig. 28 layout: one row per (client, VM), before and
    after (median and 95 % interval, mean), plus an overall row."""
    out = []
    groups = list(ping.groupby(["src", "dst"])) + [(("all", "all"), ping)]
    for (src, dst), g in groups:
        row = {"src": src, "dst": dst}
        for cond in ("before", "after"):
            v = g[g.condition == cond].rtt_ms
            med, lo, hi = median_ci(v)
            row.update({f"{cond}_median_ms": med, f"{cond}_ci_low_ms": lo,
                        f"{cond}_ci_high_ms": hi, f"{cond}_mean_ms": float(v.mean()),
                        f"{cond}_n": int(v.size)})
        row["change_median_pct"] = 100 * (row["after_median_ms"] / row["before_median_ms"] - 1)
        row["change_mean_pct"] = 100 * (row["after_mean_ms"] / row["before_mean_ms"] - 1)
        out.append(row)
    return pd.DataFrame(out)


# -- relayed traffic and the 10-hour projection ---------------------------------

def total_series(rel: pd.DataFrame, classes=FORWARDING) -> pd.DataFrame:
    """Per trial and poll time: packets/bytes relayed by all switches
    together (each switch's latest cumulative value, summed)."""
    r = rel[rel["class"].isin(classes)].sort_values("t_s")
    out = []
    for trial, g in r.groupby("trial"):
        cond = g.condition.iloc[0]
        latest: dict[tuple[int, str], tuple[int, int]] = {}
        for t, gt in g.groupby("t_s", sort=True):
            for row in gt.to_dict("records"):
                latest[(row["switch"], row["class"])] = (row["packets"], row["bytes"])
            out.append((trial, cond, t, sum(v[0] for v in latest.values()),
                        sum(v[1] for v in latest.values())))
    return pd.DataFrame(out, columns=["trial", "condition", "t_s", "packets", "bytes"])


def steady_fit(series: pd.DataFrame, t_from: float, t_to: float,
               col: str = "packets") -> tuple[float, float]:
    """Least-squares line (rate per s, intercept) of a cumulative series in
    [t_from, t_to]: the steady rate and what came on top of it once."""
    s = series[(series.t_s >= t_from) & (series.t_s <= t_to)]
    if len(s) < 2:
        return float("nan"), float("nan")
    slope, icpt = np.polyfit(s.t_s.to_numpy(float), s[col].to_numpy(float), 1)
    return float(slope), float(icpt)


def projection(rate_before: float, rate_after: float, one_off: float,
               horizon_s: float = HOURS_10, base_before: float = 0.0) -> dict:
    """A model, not a measurement: before(t) = base_before + rate_before*t,
    after(t) = one_off + rate_after*t, with rates and one-off cost measured
    in a short window.  Break-even where they cross; the reduction at the
    horizon (the report: 10 h)."""
    saved = rate_before - rate_after
    extra = one_off - base_before
    breakeven = extra / saved if saved > 0 else float("inf")
    before_h = base_before + rate_before * horizon_s
    after_h = one_off + rate_after * horizon_s
    return {"rate_before_per_s": rate_before, "rate_after_per_s": rate_after,
            "one_off": one_off, "breakeven_s": breakeven,
            "before_at_horizon": before_h, "after_at_horizon": after_h,
            "reduction_at_horizon_pct": 100 * (1 - after_h / before_h) if before_h else float("nan"),
            "horizon_s": horizon_s}


def projections(tot: pd.DataFrame, mig: pd.DataFrame, sessions: int = 2) -> pd.DataFrame:
    """Per before/after trial pair and unit: steady rates fitted from 5 s
    after the last migration to the end of the shorter window, the one-off
    cost on top, and the projection (a model) built from them."""
    rows = []
    for unit in ("packets", "bytes"):
        for n in sorted({t.split("-")[1] for t in tot.trial}):
            b = tot[tot.trial == f"before-{n}"]
            a = tot[tot.trial == f"after-{n}"]
            if b.empty or a.empty:
                continue
            m = mig[mig.trial == f"after-{n}"]
            t_from = (m.migration_done_s.max() if len(m) else 0.0) + 5.0
            t_to = min(b.t_s.max(), a.t_s.max())
            rb, ib = steady_fit(b, t_from, t_to, unit)
            ra, ia = steady_fit(a, t_from, t_to, unit)
            proj = projection(rb, ra, ia, base_before=ib)
            rows.append({"trial": n, "unit": unit, "fit_from_s": t_from, "fit_to_s": t_to,
                         "sessions": sessions, **proj, "breakeven_h": proj["breakeven_s"] / 3600})
    return pd.DataFrame(rows)
