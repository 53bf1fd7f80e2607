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
from testbed import ping as pingmod

#: target: "vm" (a thin client's desktop) or "host" (a KVM host's own
#: address: the network part of the RTT, next to the VM's old or new place)
PING_COLUMNS = ["trial", "condition", "src", "dst", "seq", "rtt_ms", "target"]
RELAYED_COLUMNS = ["trial", "condition", "t_s", "switch", "class", "packets", "bytes"]
MIGRATION_COLUMNS = ["trial", "condition", "vm", "src", "dst", "mode", "detect_to_decision_s",
                     "elapsed_ms", "downtime_ms", "data_total_bytes", "iterations",
                     "migration_start_s", "migration_done_s"]
#: beside those, from the hypervisor's domain events and libvirt's job
#: statistics (runs that recorded them): every jobStats key as job_<key>
MIGRATION_MORE = ["transferred_bytes", "setup_s", "precopy_s", "stop_and_copy_s",
                  "resume_to_switch_s", "released_frames", "dropped_frames"]
#: the decision's prediction (controller.cost) and its check against what
#: was measured (ovct_prediction_check), where the run recorded them
PREDICTION_COLUMNS = ["policy", "rates", "breakeven_s", "cost_bytes", "cost_packets",
                      "saving_pps", "saving_bps", "predicted_transfer_bytes",
                      "relayed_cost_bytes", "relayed_cost_packets", "cost_source",
                      "realised_saving_pps", "realised_saving_bps", "realised_breakeven_s",
                      "cost_error", "saving_error"]
MIGRATION_MORE += PREDICTION_COLUMNS
PHASE_COLUMNS = ["trial", "mode", "accel", "quantity", "value", "unit"]
#: Fig. 31's quantities, in the order the figure shows them
PHASE_QUANTITIES = ["session_to_detect", "detect_to_decision", "migration",
                    "vm_resume_to_network_update", "network_update_to_confirmed",
                    "qemu_downtime", "ping_gap", "vnc_update_gap",
                    # the migration split by the hypervisor's events
                    "setup", "precopy", "stop_and_copy", "resume_to_switch"]
#: a migration's phases in time order (collateral damage is counted in each)
MIGRATION_PHASES = ["before", "setup", "precopy", "stop_and_copy", "resume_to_switch", "after"]
COLLATERAL_COLUMNS = ["trial", "mode", "vm", "phase", "duration_s", "pings_sent", "pings_lost",
                      "rtt_median_ms", "rtt_p95_ms", "vnc_updates", "vnc_max_gap_s"]
#: how long before a migration and after its network update counts as its
#: "before" and "after"
COLLATERAL_MARGIN_S = 5.0
HOURS_10 = 10 * 3600.0


def _trial(d: str) -> tuple[dict, list[tuple[str, str, float, float, bool]]]:
    """A raw trial folder's summary.json and the trials it holds: (trial,
    condition, start, end, starts mid-run), times on the monotonic clock.
    A paired folder (OVCT switched on during the run) holds "before-<n>"
    from the first session's start to the switch and "after-<n>" from the
    switch on; any other holds one trial named after its condition."""
    run = RunDir(d)
    # a folder of ``ovct run`` (not an experiment's trial): one trial, "run-1"
    meta = run.read_json(run.trial, {"condition": "run", "trial": 1})
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
                target = res.get("target", "vm")
                for seq, rtt in enumerate(res["rtts_ms"], 1):
                    rows.append((trial, cond, src, dst, seq, rtt, target))
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


def _span(m: dict, a: str, b: str) -> float | None:
    return m[b] - m[a] if m.get(a) is not None and m.get(b) is not None else None


def migration_phases(m: dict) -> dict:
    """A migration's phases (s) from its timeline (events.migrations): the
    migrate call -> the destination's QEMU up (setup) -> the source paused
    (pre-copy) -> the VM resumed at the destination (stop-and-copy, as the
    events saw it) -> the flows switched.  None where a run did not record
    the hypervisor's events."""
    return {"setup_s": _span(m, "migration_started", "dest_started"),
            "precopy_s": _span(m, "dest_started", "source_paused"),
            "stop_and_copy_s": _span(m, "source_paused", "dest_resumed"),
            "resume_to_switch_s": _span(m, "dest_resumed", "network_updated")}


def migration_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """One row per migration, with its start and end in seconds since its
    trial's start; where the run recorded them, its phases, the bytes
    actually sent and every key of libvirt's job statistics (job_<key>)."""
    rows = []
    for d in trial_dirs:
        summary, trials = _trial(d)
        for trial, cond, t0, t1, _ in trials:
            for m in summary["migrations"]:
                if not t0 <= m.get("migration_started", t0) < t1:
                    continue
                row = dict(zip(MIGRATION_COLUMNS, (
                    trial, cond, m.get("vm"), m.get("src"), m.get("dst"),
                    m.get("mode"), m.get("detect_to_decision_s"), m.get("elapsed_ms"),
                    m.get("downtime_ms"), m.get("data_total_bytes"),
                    m.get("iterations"), m.get("migration_started", np.nan) - t0,
                    m.get("migration_done", np.nan) - t0)))
                more = {"transferred_bytes": m.get("transferred_bytes"), **migration_phases(m),
                        "released_frames": m.get("released_frames"),
                        "dropped_frames": m.get("dropped_frames"),
                        **{c: m.get(c) for c in PREDICTION_COLUMNS}}
                row.update({k: v for k, v in more.items() if v is not None})
                row.update({f"job_{k}": v for k, v in sorted((m.get("job") or {}).items())})
                rows.append(row)
    df = pd.DataFrame(rows)
    extra = [c for c in MIGRATION_MORE if c in df] + sorted(c for c in df if c.startswith("job_"))
    return df.reindex(columns=MIGRATION_COLUMNS + extra)


DECISION_COLUMNS = ["trial", "condition", "session", "vm", "client_ip", "decided_s", "age_s",
                    "decision", "reason", "policy", "rates", "breakeven_s", "cost_packets",
                    "cost_bytes", "saving_pps", "saving_bps", "src", "dst"]


def _detections(events: list[dict]) -> dict[int, dict]:
    return {e["session"]: e for e in E.of_type(events, E.OVCT_DETECT)}


def _decisions(trials, events: list[dict]) -> list[tuple]:
    """One run directory's decision rows (see :func:`decision_rows`)."""
    det = _detections(events)
    rows = []
    for trial, cond, t0, t1, _ in trials:
        for e in E.of_type(events, E.OVCT_DECISION):
            if not t0 <= e["mono"] < t1:
                continue
            found = det.get(e["session"], {})
            rows.append((trial, cond, e["session"], e["vm"], found.get("client_ip"),
                         e["mono"] - t0, e["mono"] - found.get("detected_mono", np.nan),
                         e["decision"], e.get("reason"), e.get("policy"), e.get("rates"),
                         e.get("breakeven_s"), e.get("cost_packets"), e.get("cost_bytes"),
                         e.get("saving_pps"), e.get("saving_bps"), e.get("from"),
                         e.get("to")))
    return rows


def decision_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """One row per ``ovct_decision`` (a rent-or-buy session has several: it
    is deferred at detection and decided again), with the session's age at
    that moment (s since its detection) and the prediction it was made on;
    times in seconds since the trial's start."""
    rows = []
    for d in trial_dirs:
        rows += _decisions(_trial(d)[1], E.read(RunDir(d).events))
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


SESSION_COLUMNS = ["trial", "condition", "session", "vm", "client_ip", "detected_s", "ended_s",
                   "duration_s", "decisions", "final_decision", "moved", "moved_at_age_s",
                   "breakeven_s", "rates"]


def session_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """One row per VNC session the controller detected: when (s since the
    trial's start) it was detected and ended, how long it lasted (the
    controller's ``ovct_session_end``), how many decisions it got and the
    last, whether its VM moved (a migration that completed) and at what
    session age it was decided, and the predicted break-even of that
    decision (of the last decision when it did not move)."""
    rows = []
    for d in trial_dirs:
        _summary, trials = _trial(d)
        events = E.read(RunDir(d).events)
        dec = pd.DataFrame(_decisions(trials, events), columns=DECISION_COLUMNS)
        ends = {e["session"]: e for e in E.of_type(events, E.OVCT_SESSION_END)}
        done = {e["session"] for e in E.of_type(events, E.OVCT_MIGRATION_DONE)}
        detected = _detections(events)
        for trial, cond, t0, t1, _ in trials:
            for sid, det in detected.items():
                if not t0 <= det["detected_mono"] < t1:
                    continue
                ds = dec[(dec.trial == trial) & (dec.session == sid)]
                move = ds[ds.decision == "migrate"]
                moved = sid in done and not move.empty
                key = move.iloc[-1] if moved else (ds.iloc[-1] if not ds.empty else None)
                end = ends.get(sid)
                rows.append((trial, cond, sid, det["vm"], det["client_ip"],
                             det["detected_mono"] - t0,
                             end["mono"] - t0 if end else np.nan,
                             end["duration_s"] if end else np.nan, len(ds),
                             ds.decision.iloc[-1] if not ds.empty else None, moved,
                             float(move.age_s.iloc[-1]) if moved else np.nan,
                             key["breakeven_s"] if key is not None else np.nan,
                             key["rates"] if key is not None else None))
    return pd.DataFrame(rows, columns=SESSION_COLUMNS)


PREDICTION_ERROR_COLUMNS = ["quantity", "n", "median", "mean_abs", "p10", "p90", "min", "max"]


def prediction_errors(mig: pd.DataFrame) -> pd.DataFrame:
    """The distribution of the cost model's errors over migrations
    (realised / predicted - 1; a table from :func:`migration_rows` or the
    policy simulation's predictions.csv): the migration's cost (relay, as
    the switches counted it or libvirt's bytes times the switches), the
    bytes libvirt sent against the prediction, the saving per second."""
    cols = {"cost": mig.get("cost_error"), "saving": mig.get("saving_error")}
    if "transferred_bytes" in mig and "predicted_transfer_bytes" in mig:
        cols["transfer"] = mig.transferred_bytes / mig.predicted_transfer_bytes - 1
    rows = []
    for q, v in cols.items():
        if v is None:
            continue
        v = pd.to_numeric(v, errors="coerce").dropna()
        if v.empty:
            continue
        rows.append((q, len(v), float(v.median()), float(v.abs().mean()),
                     float(v.quantile(0.1)), float(v.quantile(0.9)), float(v.min()),
                     float(v.max())))
    return pd.DataFrame(rows, columns=PREDICTION_ERROR_COLUMNS)


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
        split = migration_phases(mig)
        vals = {
            "session_to_detect": detect_wall - start_wall,
            "detect_to_decision": mig["detect_to_decision_s"],
            "migration": mig["elapsed_ms"] / 1000,
            "vm_resume_to_network_update": (mig["network_updated"] - seen) if seen else None,
            "network_update_to_confirmed": mig["network_confirmed"] - mig["network_updated"],
            "qemu_downtime": mig["downtime_ms"] / 1000,
            "ping_gap": probe["max_gap_ms"] / 1000,
            "vnc_update_gap": sess["max_gap_s"],
            "setup": split["setup_s"], "precopy": split["precopy_s"],
            "stop_and_copy": split["stop_and_copy_s"],
            "resume_to_switch": split["resume_to_switch_s"],
        }
        rows += [(os.path.basename(run.path), summary["update_mode"], summary["accel"], q, v, "s")
                 for q, v in vals.items() if v is not None]
    return pd.DataFrame(rows, columns=PHASE_COLUMNS)


def _mono_to_wall(events: list[dict]) -> float:
    """wall = mono + offset for this run (each record carries both)."""
    return float(np.median([e["time"] - e["mono"] for e in events])) if events else 0.0


def phase_windows(m: dict, offset: float, margin: float = COLLATERAL_MARGIN_S
                  ) -> list[tuple[str, float, float]]:
    """A migration's phases as wall-clock windows [start, end): "before"
    (``margin`` s up to the migrate call), setup, precopy, stop_and_copy,
    resume_to_switch, "after" (``margin`` s from the network update).  A
    boundary the run did not record makes its neighbour phases one (their
    names joined with '+'); an empty list without a network update."""
    marks = [("setup", m.get("migration_started")), ("precopy", m.get("dest_started")),
             ("stop_and_copy", m.get("source_paused")),
             ("resume_to_switch", m.get("dest_resumed")), ("after", m.get("network_updated"))]
    start, end = marks[0][1], marks[-1][1]
    if start is None or end is None:
        return []
    out = [("before", start - margin + offset, start + offset)]
    pending = []
    cur_name, cur_t = None, None
    for name, t in marks:
        if t is None:
            pending.append(name)
            continue
        if cur_name is not None:
            out.append(("+".join([cur_name] + pending) if pending else cur_name,
                        cur_t + offset, max(cur_t, t) + offset))
            pending = []
        cur_name, cur_t = name, max(t, cur_t) if cur_t is not None else t
    out.append(("after", end + offset, end + margin + offset))
    return out


def ping_sends(res: pingmod.PingResult, interval: float) -> list[tuple[int, float, float | None]]:
    """Every ping sent: (seq, send time (wall), RTT in ms or None if lost).
    A reply's send time is its arrival minus its RTT; a lost one's is
    interpolated between its neighbours' by sequence number."""
    got = {s: (t - r / 1000.0, r) for s, t, r in zip(res.seqs, res.times, res.rtts_ms)}
    if not got:
        return []
    last = max(res.transmitted, max(got))
    known = sorted(got)
    out = []
    for seq in range(1, last + 1):
        if seq in got:
            out.append((seq, got[seq][0], got[seq][1]))
            continue
        lo = max((k for k in known if k < seq), default=None)
        hi = min((k for k in known if k > seq), default=None)
        if lo is not None and hi is not None:
            t = got[lo][0] + (got[hi][0] - got[lo][0]) * (seq - lo) / (hi - lo)
        elif lo is not None:
            t = got[lo][0] + (seq - lo) * interval
        else:
            t = got[hi][0] - (hi - seq) * interval
        out.append((seq, t, None))
    return out


def probe_in_windows(res: pingmod.PingResult, windows: list[tuple[float, float]],
                     interval: float) -> list[dict]:
    """For each wall-clock window [a, b): pings sent in it, how many were
    lost, and the longest silence covering it -- from the last reply before
    ``a``, through every reply inside, to the first reply at or after ``b``
    (so a window with no reply at all still gets its whole silence)."""
    sends = ping_sends(res, interval)
    replies = sorted(res.times)
    out = []
    for a, b in windows:
        inside = [r for _s, t, r in sends if a <= t < b]
        edge = [t for t in replies if t < a][-1:] + [t for t in replies if a <= t < b] + \
            [t for t in replies if t >= b][:1]
        gap = max((y - x for x, y in zip(edge, edge[1:])), default=None)
        out.append({"pings_sent": len(inside), "pings_lost": sum(r is None for r in inside),
                    "max_gap_ms": None if gap is None else round(gap * 1000, 1)})
    return out


def collateral_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """Collateral damage per migration phase (:func:`phase_windows`), from
    a phase trial: the 10 ms probe's pings sent, lost and their RTT, and the
    VNC session's screen updates and largest silence overlapping the phase."""
    rows = []
    for d in trial_dirs:
        run = RunDir(d)
        summary = run.read_json(run.summary)
        events = E.read(run.events)
        offset = _mono_to_wall(events)
        probes = {name: pingmod.parse(open(run.ping_log(*name.split("->")),
                                           encoding="utf-8", errors="replace").read())
                  for name in summary.get("probes", {})
                  if os.path.exists(run.ping_log(*name.split("->")))}
        sends = [s for name, res in probes.items() for s in
                 ping_sends(res, summary["probes"][name]["interval_ms"] / 1000)]
        updates = sorted(r["time"] for recs in _thinclient_logs(d) for r in recs
                         if r.get("event") == "update")
        for m in summary.get("migrations", []):
            for phase, a, b in phase_windows(m, offset):
                inside = [r for _s, t, r in sends if a <= t < b]
                rtts = [r for r in inside if r is not None]
                ups = [t for t in updates if a <= t < b]
                # a silence overlaps the phase if it ends inside or spans it
                gaps = [y - x for x, y in zip(updates, updates[1:]) if x < b and y > a]
                rows.append((os.path.basename(run.path), summary["update_mode"], m.get("vm"),
                             phase, round(b - a, 6), len(inside),
                             sum(r is None for r in inside),
                             float(np.median(rtts)) if rtts else np.nan,
                             float(np.percentile(rtts, 95)) if rtts else np.nan,
                             len(ups), max(gaps) if gaps else np.nan))
    return pd.DataFrame(rows, columns=COLLATERAL_COLUMNS)


PROBE_COLUMNS = ["trial", "src", "dst", "seq", "t_s", "rtt_ms", "phase"]


def probe_rows(trial_dirs: list[str], margin: float = COLLATERAL_MARGIN_S) -> pd.DataFrame:
    """Every ping of a run's background probes (``summary["probes"]``), sent
    at ``t_s`` (s since the trial's start), RTT or NaN when lost, and where
    it falls against the probed VM's migration (its first that switched the
    network): "before" the migrate call, "during" (up to ``margin`` s after
    the flows switched), "after"; "unmoved" for a VM that did not move."""
    rows = []
    for d in trial_dirs:
        run = RunDir(d)
        summary, trials = _trial(d)
        offset = _mono_to_wall(E.read(run.events))
        moves = {}
        for m in summary.get("migrations", []):
            if m.get("network_updated") is not None and m.get("vm") not in moves:
                moves[m["vm"]] = (m["migration_started"] + offset,
                                  m["network_updated"] + margin + offset)
        trial, _cond, t0, _t1, _ = trials[0]
        for name, meta in summary.get("probes", {}).items():
            src, dst = name.split("->")
            path = run.ping_log(src, dst)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                res = pingmod.parse(fh.read(), src, dst)
            move = moves.get(dst)
            for seq, t, rtt in ping_sends(res, meta["interval_ms"] / 1000):
                if move is None:
                    phase = "unmoved"
                else:
                    phase = "before" if t < move[0] else "during" if t < move[1] else "after"
                rows.append((trial, src, dst, seq, round(t - offset - t0, 3),
                             np.nan if rtt is None else rtt, phase))
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


SWEEP_COLUMNS = ["trial", "bandwidth_mbit", "iperf_mbit", "migration_s", "setup_s", "precopy_s",
                 "stop_and_copy_s", "downtime_ms", "transferred_bytes", "data_total_bytes",
                 "ideal_s", "time_over_ideal", "pings_lost", "pings_lost_precopy",
                 "rtt_p95_precopy_ms", "vnc_max_gap_s"]
#: the phases during which a migration is under way
DURING = ("setup", "precopy", "stop_and_copy", "resume_to_switch")


def sweep_rows(trial_dirs: list[str]) -> pd.DataFrame:
    """The bandwidth sweep, one row per trial: the cap, the TCP throughput
    iperf3 measured between the two KVM hosts before the session, the
    migration's time and phases, the time an ideal transfer of the guest's
    RAM at that throughput would take (time_over_ideal: how far from it),
    and the collateral damage during the migration."""
    col = collateral_rows(trial_dirs)
    rows = []
    for d in trial_dirs:
        run = RunDir(d)
        summary, meta = run.read_json(run.summary), run.read_json(run.trial)
        (m,) = summary["migrations"]
        mine = col[col.trial == os.path.basename(run.path)].set_index("phase")
        during = mine[mine.index.isin(DURING)]
        link = (summary.get("on_start") or {}).get("iperf_pm2_pm1_mbit")
        ideal = m["data_total_bytes"] * 8 / (link * 1e6) if link and m.get("data_total_bytes") \
            else np.nan
        ph = migration_phases(m)
        rows.append((os.path.basename(run.path), meta["bandwidth_mbit"], link,
                     m["elapsed_ms"] / 1000, ph["setup_s"], ph["precopy_s"],
                     ph["stop_and_copy_s"], m.get("downtime_ms"), m.get("transferred_bytes"),
                     m.get("data_total_bytes"), ideal, m["elapsed_ms"] / 1000 / ideal,
                     int(during.pings_lost.sum()),
                     int(mine.pings_lost.get("precopy", 0)),
                     mine.rtt_p95_ms.get("precopy", np.nan),
                     during.vnc_max_gap_s.max()))
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


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
    after (median and 95 % interval, mean), plus an overall row over the
    VMs (the report's figure); pairs to KVM hosts' own addresses, where
    measured, get rows of their own."""
    out = []
    vms = ping[ping.target == "vm"] if "target" in ping else ping
    groups = list(ping.groupby(["src", "dst"])) + [(("all", "all"), vms)]
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


def diff_ci(before, after, level: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> tuple[float, float, float]:
    """median(after) - median(before), with a bootstrap percentile interval
    (each sample resampled on its own)."""
    b = np.asarray(list(before), dtype=float)
    a = np.asarray(list(after), dtype=float)
    if not b.size or not a.size:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    boots = (np.median(rng.choice(a, size=(n_boot, a.size)), axis=1)
             - np.median(rng.choice(b, size=(n_boot, b.size)), axis=1))
    lo, hi = np.percentile(boots, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(np.median(a) - np.median(b)), float(lo), float(hi)


def permutation_p(before, after, n_perm: int = 2000, seed: int = 0) -> float:
    """Two-sided permutation test of "the medians are equal": the share of
    random relabellings whose difference of medians is at least as large."""
    b = np.asarray(list(before), dtype=float)
    a = np.asarray(list(after), dtype=float)
    if not b.size or not a.size:
        return np.nan
    obs = abs(np.median(a) - np.median(b))
    both = np.concatenate([a, b])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_perm):
        rng.shuffle(both)
        hits += abs(np.median(both[:a.size]) - np.median(both[a.size:])) >= obs - 1e-12
    return (hits + 1) / (n_perm + 1)


RTT_EXPLAINED_COLUMNS = ["trial", "quantity", "value_ms", "ci_low_ms", "ci_high_ms",
                         "p_value", "n"]


def rtt_explained(ping: pd.DataFrame) -> pd.DataFrame:
    """How much of the RTT change is distance, how much relief of the
    switches, how much the guests -- per paired trial and pooled over all.

    * ``vm_change``: median RTT thin client -> VM, after minus before (95 %
      interval, permutation p-value): the end-to-end effect under load;
    * ``distance``: RTT to the far KVM host (pm2, 3 switches) minus the near
      one (pm1, 1 switch) in the same moments ("after"): what the two hops
      the VM no longer crosses cost on their own;
    * ``relief``: RTT to pm2 after minus before -- the same 3-switch path,
      so what changed is the load on the switches (and drift);
    * ``residual``: vm_change + distance - relief: what neither explains
      (guest reply time, drift).
    Rows exist only where the trials pinged the hosts too."""
    if "target" not in ping or not (ping.target == "host").any():
        return pd.DataFrame(columns=RTT_EXPLAINED_COLUMNS)
    p = ping.assign(n=ping.trial.str.split("-").str[1])
    rows = []
    for n, g in [(k, v) for k, v in p.groupby("n")] + [("pooled", p)]:
        vm = g[g.target == "vm"]
        host = g[g.target == "host"]
        vb, va = vm[vm.condition == "before"].rtt_ms, vm[vm.condition == "after"].rtt_ms
        far = host[(host.dst == "pm2")]
        near = host[(host.dst == "pm1")]
        change = diff_ci(vb, va)
        dist = diff_ci(near[near.condition == "after"].rtt_ms, far[far.condition == "after"].rtt_ms)
        relief = diff_ci(far[far.condition == "before"].rtt_ms, far[far.condition == "after"].rtt_ms)
        rows += [(n, "vm_before_median", float(np.median(vb)), np.nan, np.nan, np.nan, len(vb)),
                 (n, "vm_after_median", float(np.median(va)), np.nan, np.nan, np.nan, len(va)),
                 (n, "vm_change", *change, permutation_p(vb, va), len(vb) + len(va)),
                 (n, "distance", *dist, np.nan, len(near) + len(far)),
                 (n, "relief", *relief, np.nan, len(far)),
                 (n, "residual", change[0] + dist[0] - relief[0], np.nan, np.nan, np.nan, 0)]
    return pd.DataFrame(rows, columns=RTT_EXPLAINED_COLUMNS)


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


def projections(tot: pd.DataFrame, mig: pd.DataFrame, sessions: int = 2,
                fit_to_max: float | None = None) -> pd.DataFrame:
    """Per before/after trial pair and unit: steady rates fitted from 5 s
    after the last migration to the end of the shorter window (or
    ``fit_to_max`` s, if earlier), the one-off cost on top, and the
    projection (a model) built from them."""
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
            if fit_to_max is not None:
                t_to = min(t_to, fit_to_max)
            rb, ib = steady_fit(b, t_from, t_to, unit)
            ra, ia = steady_fit(a, t_from, t_to, unit)
            proj = projection(rb, ra, ia, base_before=ib)
            rows.append({"trial": n, "unit": unit, "fit_from_s": t_from, "fit_to_s": t_to,
                         "sessions": sessions, **proj, "breakeven_h": proj["breakeven_s"] / 3600})
    return pd.DataFrame(rows)


def window_convergence(tot: pd.DataFrame, mig: pd.DataFrame, ends: list[float],
                       sessions: int = 2) -> pd.DataFrame:
    """How the projection depends on the window's length: the projection
    refitted with windows cut at each of ``ends`` (s), per trial (packets),
    plus the median over trials ("median")."""
    rows = []
    for end in ends:
        p = projections(tot, mig, sessions, fit_to_max=end)
        p = p[p.unit == "packets"]
        for r in p.to_dict("records"):
            rows.append({"window_s": end, "trial": r["trial"], "fit_to_s": r["fit_to_s"],
                         "reduction_10h_pct": r["reduction_at_horizon_pct"],
                         "breakeven_h": r["breakeven_h"]})
        if len(p):
            rows.append({"window_s": end, "trial": "median", "fit_to_s": float(p.fit_to_s.median()),
                         "reduction_10h_pct": float(p.reduction_at_horizon_pct.median()),
                         "breakeven_h": float(p.breakeven_h.median())})
    return pd.DataFrame(rows)
