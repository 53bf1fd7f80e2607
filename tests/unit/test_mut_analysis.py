"""experiments/analysis.py on crafted data, what test_analysis.py and the
byte-for-byte regeneration of the reference run leave open (mutation
testing and the reviewer's deliberate bugs, issue 14)."""
import itertools
import json
import os

import numpy as np
import pandas as pd
import pytest

from experiments import analysis as A

SAMPLE = [1.0, 1.2, 1.1, 3.0, 0.9, 1.4, 2.2, 1.0, 5.0, 1.3, 0.8, 1.6]


def test_intervals_are_95_percent_unless_asked():
    assert A.median_ci(SAMPLE) == A.median_ci(SAMPLE, level=0.95)
    med, lo90, hi90 = A.median_ci(SAMPLE, level=0.90)
    _, lo95, hi95 = A.median_ci(SAMPLE)
    assert lo95 <= lo90 <= med <= hi90 <= hi95 and (lo95, hi95) != (lo90, hi90)
    after = [x / 2 for x in SAMPLE]
    assert A.diff_ci(SAMPLE, after) == A.diff_ci(SAMPLE, after, level=0.95)
    assert A.diff_ci(SAMPLE, after)[1:] != A.diff_ci(SAMPLE, after, level=0.90)[1:]


def test_the_rtt_table_gives_the_95_percent_interval():
    rows = [("t", c, "tcl1", "vm1", i, x if c == "before" else x / 2, "vm")
            for c in ("before", "after") for i, x in enumerate(SAMPLE)]
    table = A.rtt_table(pd.DataFrame(rows, columns=A.PING_COLUMNS))
    first = table.iloc[0]
    assert (first.before_median_ms, first.before_ci_low_ms, first.before_ci_high_ms) == \
        A.median_ci(SAMPLE, level=0.95)


def series(trial, cond, f):
    ts = np.arange(0.0, 101.0, 5.0)
    return pd.DataFrame({"trial": trial, "condition": cond, "t_s": ts,
                         "packets": [f(t) for t in ts], "bytes": [100 * f(t) for t in ts]})


def test_projections_fit_from_5_s_after_the_last_migration_with_both_intercepts():
    before = series("before-1", "before", lambda t: 1000 + 10 * t)
    # after: the migration's burst until it is done at 18 s, then 4 per s on
    # top of 5000 (the points up to 20 s are off that line)
    after = series("after-1", "after", lambda t: 9000 + 4 * t if t <= 20 else 5000 + 4 * t)
    tot = pd.concat([before, after], ignore_index=True)
    mig = pd.DataFrame({"trial": ["after-1", "after-1"], "migration_done_s": [12.0, 18.0]})
    p = A.projections(tot, mig, sessions=2)
    assert list(p.unit) == ["packets", "bytes"] and list(p.trial) == ["1", "1"]
    row = p.iloc[0]
    assert (row.fit_from_s, row.fit_to_s, row.sessions) == (23.0, 100.0, 2)
    assert row.rate_before_per_s == pytest.approx(10.0)
    assert row.rate_after_per_s == pytest.approx(4.0)
    assert row.one_off == pytest.approx(5000.0)
    # break-even counts the "before" line's own intercept: (5000 - 1000) / (10 - 4)
    assert row.breakeven_s == pytest.approx(4000 / 6)
    assert row.breakeven_h == pytest.approx(4000 / 6 / 3600)
    assert p.iloc[1].one_off == pytest.approx(500_000.0)
    cut = A.projections(tot, mig, fit_to_max=60.0).iloc[0]
    assert cut.fit_to_s == 60.0 and cut.rate_after_per_s == pytest.approx(4.0)


def test_projections_fit_exactly_the_points_from_5_s_after_the_last_migration():
    """Points off a line at every poll: a window that starts 5 s earlier or
    later (one poll more or less) gives other rates and intercepts."""
    def wobble(t):
        return 7.0 * ((int(t) // 5) % 3 - 1) + (3.0 if int(t) % 2 else 0.0)
    before = series("before-1", "before", lambda t: 1000 + 10 * t + wobble(t))
    after = series("after-1", "after", lambda t: 5000 + 4 * t - 2 * wobble(t))
    tot = pd.concat([before, after], ignore_index=True)
    mig = pd.DataFrame({"trial": ["after-1"], "migration_done_s": [18.0]})

    def fit(df, col):
        s = df[(df.t_s >= 23.0) & (df.t_s <= 100.0)]
        return np.polyfit(s.t_s.to_numpy(float), s[col].to_numpy(float), 1)
    for i, unit in enumerate(("packets", "bytes")):
        row = A.projections(tot, mig).iloc[i]
        rb, ib = fit(before, unit)
        ra, ia = fit(after, unit)
        assert row.unit == unit and (row.fit_from_s, row.fit_to_s) == (23.0, 100.0)
        assert row.rate_before_per_s == pytest.approx(rb, rel=1e-12)
        assert row.rate_after_per_s == pytest.approx(ra, rel=1e-12)
        assert row.one_off == pytest.approx(ia, rel=1e-12)
        assert row.breakeven_s == pytest.approx((ia - ib) / (rb - ra), rel=1e-9)
        assert row.before_at_horizon == pytest.approx(ib + rb * A.HOURS_10, rel=1e-12)


def test_prediction_errors_summarise_each_error_over_the_migrations():
    mig = pd.DataFrame({"cost_error": [0.1, -0.2, 0.3, None, 0.5],
                        "saving_error": [None, None, None, None, None],
                        "transferred_bytes": [110.0, 90.0, 100.0, 150.0, 100.0],
                        "predicted_transfer_bytes": [100.0, 100.0, 100.0, 100.0, 200.0]})
    e = A.prediction_errors(mig)
    assert list(e.columns) == A.PREDICTION_ERROR_COLUMNS
    assert list(e.quantity) == ["cost", "transfer"]          # no saving measured at all
    cost = e.iloc[0]
    v = pd.Series([0.1, -0.2, 0.3, 0.5])
    assert cost.n == 4
    assert cost["median"] == pytest.approx(0.2)
    assert cost.mean_abs == pytest.approx((0.1 + 0.2 + 0.3 + 0.5) / 4)
    assert (cost.p10, cost.p90) == (pytest.approx(v.quantile(0.1)), pytest.approx(v.quantile(0.9)))
    assert (cost["min"], cost["max"]) == (pytest.approx(-0.2), pytest.approx(0.5))
    t = e.iloc[1]
    assert t.n == 5 and t["min"] == pytest.approx(-0.5) and t["max"] == pytest.approx(0.5)
    assert t["median"] == pytest.approx(0.0) and t.mean_abs == pytest.approx(1.2 / 5)


def test_prediction_errors_of_a_table_without_them_are_empty():
    e = A.prediction_errors(pd.DataFrame({"vm": ["vm1"], "cost_error": ["n/a"]}))
    assert e.empty and list(e.columns) == A.PREDICTION_ERROR_COLUMNS
    only = A.prediction_errors(pd.DataFrame({"saving_error": [0.25, "x"],
                                             "transferred_bytes": [1.0, 2.0]}))
    assert list(only.quantity) == ["saving"] and only.n.tolist() == [1]


def test_window_convergence_refits_the_packets_projection_at_each_end():
    before = series("before-1", "before", lambda t: 1000 + 10 * t)
    after = series("after-1", "after", lambda t: 9000 + 4 * t if t <= 20 else 5000 + 4 * t)
    before2 = series("before-2", "before", lambda t: 1000 + 12 * t)
    after2 = series("after-2", "after", lambda t: 6000 + 4 * t if t <= 20 else 3000 + 4 * t)
    tot = pd.concat([before, after, before2, after2], ignore_index=True)
    # bytes on other lines than packets: the figures below are the packets'
    tot["bytes"] = tot.bytes + np.where(tot.condition == "after", 3000.0, 0.0) * tot.t_s
    mig = pd.DataFrame({"trial": ["after-1", "after-2"], "migration_done_s": [18.0, 18.0]})
    w = A.window_convergence(tot, mig, [50.0, 80.0])
    assert list(w.columns) == ["window_s", "trial", "fit_to_s", "reduction_10h_pct", "breakeven_h"]
    assert list(zip(w.window_s, w.trial)) == [(50.0, "1"), (50.0, "2"), (50.0, "median"),
                                               (80.0, "1"), (80.0, "2"), (80.0, "median")]
    assert list(w.fit_to_s) == [50.0, 50.0, 50.0, 80.0, 80.0, 80.0]
    one, two = 4000 / 6 / 3600, 2000 / 8 / 3600
    assert w.breakeven_h.tolist() == pytest.approx([one, two, (one + two) / 2] * 2)
    p = A.projections(tot, mig, fit_to_max=50.0)
    red = p[p.unit == "packets"].reduction_at_horizon_pct.tolist()
    assert w.reduction_10h_pct.tolist() == pytest.approx(red + [sum(red) / 2] + red + [sum(red) / 2])
    assert A.window_convergence(tot, mig, []).empty


def _sweep_trial(tmp_path, name, bandwidth, link):
    """test_analysis's phase trial as a bandwidth-sweep trial: its cap, the
    iperf3 throughput measured before it (``link``, Mbit/s) and libvirt's
    figures of the migration."""
    from tests.unit.test_analysis import MIG, _phase_trial
    d = str(tmp_path / name)
    os.rename(_phase_trial(tmp_path / "new"), d)
    summary = json.loads(open(os.path.join(d, "summary.json")).read())
    summary["migrations"] = [{**MIG, "elapsed_ms": 7000, "downtime_ms": 150,
                              "transferred_bytes": 260_000_000, "data_total_bytes": 250_000_000}]
    if link is not None:
        summary["on_start"] = {"iperf_pm2_pm1_mbit": link}
    open(os.path.join(d, "summary.json"), "w").write(json.dumps(summary))
    open(os.path.join(d, "trial.json"), "w").write(json.dumps({"bandwidth_mbit": bandwidth}))
    return d


def test_sweep_rows_give_each_trials_cap_throughput_phases_and_collateral(tmp_path):
    d1 = _sweep_trial(tmp_path, "bw100-1", 100, 100.0)
    d2 = _sweep_trial(tmp_path, "bw50-1", 50, None)
    s = A.sweep_rows([d1, d2])
    assert list(s.columns) == A.SWEEP_COLUMNS and list(s.trial) == ["bw100-1", "bw50-1"]
    r = s.iloc[0]
    assert (r.bandwidth_mbit, r.iperf_mbit, r.migration_s) == (100, 100.0, 7.0)
    assert (r.setup_s, r.precopy_s, r.stop_and_copy_s) == (
        pytest.approx(0.3), pytest.approx(6.5), pytest.approx(0.15))
    assert (r.downtime_ms, r.transferred_bytes, r.data_total_bytes) == (150, 260_000_000,
                                                                         250_000_000)
    assert r.ideal_s == pytest.approx(20.0)                  # 250 MB at 100 Mbit/s
    assert r.time_over_ideal == pytest.approx(0.35)
    col = A.collateral_rows([d1]).set_index("phase")
    assert r.pings_lost == 15 == col.loc[list(A.DURING), "pings_lost"].sum()
    assert r.pings_lost_precopy == 0 and r.rtt_p95_precopy_ms == 1.0
    assert r.vnc_max_gap_s == 1.0 == col.loc[list(A.DURING), "vnc_max_gap_s"].max()
    n = s.iloc[1]
    assert n.bandwidth_mbit == 50 and (n.iperf_mbit is None or np.isnan(n.iperf_mbit))
    assert np.isnan(n.ideal_s) and np.isnan(n.time_over_ideal) and n.migration_s == 7.0


# -- the reference run, one table per test ------------------------------------------------
# test_reference_regen.py builds every table in one module-scoped fixture,
# which runs inside its first test only: a mutation tool that runs just the
# tests that call a function then compares ping.csv alone. Here each table
# is rebuilt and compared by the test that asks for it.

REF = os.path.join(os.path.dirname(__file__), "..", "..", "results", "reference-180s")


def _ref_dirs(*patterns):
    import glob
    return [d for p in patterns for d in
            sorted(glob.glob(os.path.join(REF, "raw", p)), key=lambda d: int(d.rsplit("-", 1)[1]))]


def _same(df, tmp_path, name):
    import filecmp
    df.to_csv(tmp_path / name, index=False)
    assert filecmp.cmp(tmp_path / name, os.path.join(REF, name), shallow=False), name


def test_reference_phases_table(tmp_path):
    _same(A.phase_rows(_ref_dirs("fast-*", "paper-*")), tmp_path, "phases.csv")


def test_reference_migrations_table(tmp_path):
    _same(A.migration_rows(_ref_dirs("trial-*")), tmp_path, "migrations.csv")


def test_reference_relayed_table(tmp_path):
    _same(A.relayed_rows(_ref_dirs("trial-*")), tmp_path, "relayed.csv")


def test_reference_ping_table(tmp_path):
    _same(A.ping_rows(_ref_dirs("trial-*")), tmp_path, "ping.csv")


def test_reference_rtt_table(tmp_path):
    ping = pd.read_csv(os.path.join(REF, "ping.csv"))
    _same(A.rtt_table(ping), tmp_path, "rtt_table.csv")


def test_reference_projection_table(tmp_path):
    rel = pd.read_csv(os.path.join(REF, "relayed.csv"))
    mig = pd.read_csv(os.path.join(REF, "migrations.csv"))
    _same(A.projections(A.total_series(rel), mig), tmp_path, "projection.csv")


def test_probe_windows_edges_are_half_open_and_the_silence_stops_at_the_first_reply_after():
    from testbed import ping as pingmod
    # replies (rtt 0: sent when they arrive) at these times; seqs 8 and 9 lost
    # after the last reply, placed 1 s apart from it
    times = [-30.0, 0.0, 10.0, 11.0, 12.0, 13.23456, 20.0]
    res = pingmod.PingResult("tcl1", "vm1", transmitted=9, received=7, rtts_ms=[0.0] * 7,
                             seqs=list(range(1, 8)), times=times)
    got = A.probe_in_windows(res, [(10.0, 12.0), (12.5, 13.23456), (-40.0, -30.0),
                                   (20.5, 30.0)], 1.0)
    # a reply at the window's start is inside it; the silence before it counts
    assert got[0] == {"pings_sent": 2, "pings_lost": 0, "max_gap_ms": 10000.0}
    # no reply inside: from the last before to the first at/after the end
    assert got[1] == {"pings_sent": 0, "pings_lost": 0, "max_gap_ms": 1234.6}
    # nothing before and the first reply right at the end: no silence known
    assert got[2] == {"pings_sent": 0, "pings_lost": 0, "max_gap_ms": None}
    # the lost pings at the end, sent one interval apart after the last reply
    assert got[3] == {"pings_sent": 2, "pings_lost": 2, "max_gap_ms": None}


# -- raw trial folders: one condition, or paired with polls on the edges ------------------

def _raw_trial(tmp_path, name, meta, summary, polls):
    d = tmp_path / name
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "tcl1-vm1-0.jsonl").write_text(
        json.dumps({"event": "start", "mono": 100.0}) + "\n")
    (d / "trial.json").write_text(json.dumps(meta))
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "stats.jsonl").write_text("".join(
        json.dumps({"type": "flow_stats", "dpid": dpid, "mono": t, "by_class": by}) + "\n"
        for t, dpid, by in polls))
    return str(d)


def test_a_trial_of_one_condition_is_named_after_it_and_runs_from_the_first_session(tmp_path):
    d = _raw_trial(tmp_path, "trial-2", {"condition": "before", "trial": 2},
                   {"steady": {"before": {"tcl1->vm1": {"rtts_ms": [1.0, 1.5]},
                                          "tcl1->pm1": {"rtts_ms": [0.2], "target": "host"}}}},
                   [(95.0, 1, {"vnc": [5, 50]}), (130.12345, 1, {"vnc": [60, 600]}),
                    (1e9, 1, {"vnc": [70, 700]})])
    ping = A.ping_rows([d])
    assert ping.values.tolist() == [["before-2", "before", "tcl1", "vm1", 1, 1.0, "vm"],
                                    ["before-2", "before", "tcl1", "vm1", 2, 1.5, "vm"],
                                    ["before-2", "before", "tcl1", "pm1", 1, 0.2, "host"]]
    rel = A.relayed_rows([d])
    # no re-basing: every poll, counted from the first session's start
    assert rel.values.tolist() == [["before-2", "before", -5.0, 1, "vnc", 5, 50],
                                   ["before-2", "before", 30.123, 1, "vnc", 60, 600],
                                   ["before-2", "before", 1e9 - 100, 1, "vnc", 70, 700]]


def test_a_paired_trial_rebases_at_the_switch_with_a_poll_right_on_it(tmp_path):
    d = _raw_trial(tmp_path, "trial-1", {"condition": "paired", "trial": 1},
                   {"steady": {"before": {}, "after": {}}, "ovct_switched_on_mono": 160.0},
                   [(150.0, 1, {"vnc": [100, 1000]}),
                    (160.0, 1, {"vnc": [200, 2000]}),          # exactly at the switch
                    (165.12345, 1, {"vnc": [260, 2600], "migration": [40, 4000],
                                    "control": [9, 90]})])
    rel = A.relayed_rows([d])
    after = rel[rel.trial == "after-1"].values.tolist()
    assert after == [["after-1", "after", 0.0, 1, "vnc", 0, 0],
                     ["after-1", "after", 5.123, 1, "vnc", 60, 600],
                     ["after-1", "after", 5.123, 1, "migration", 40, 4000]]
    before = rel[rel.trial == "before-1"].values.tolist()
    assert [r[2] for r in before] == [50.0, 60.0]


def test_migration_phases_are_the_spans_between_the_recorded_steps():
    m = {"migration_started": 100.0, "dest_started": 100.25, "source_paused": 106.75,
         "dest_resumed": 107.0, "network_updated": 107.5}
    assert A.migration_phases(m) == {"setup_s": 0.25, "precopy_s": 6.5,
                                     "stop_and_copy_s": 0.25, "resume_to_switch_s": 0.5}
    for gone, none in (("dest_started", ("setup_s", "precopy_s")),
                       ("source_paused", ("precopy_s", "stop_and_copy_s")),
                       ("dest_resumed", ("stop_and_copy_s", "resume_to_switch_s")),
                       ("migration_started", ("setup_s",)),
                       ("network_updated", ("resume_to_switch_s",))):
        got = A.migration_phases({k: v for k, v in m.items() if k != gone})
        assert [k for k, v in got.items() if v is None] == list(none), gone
        assert all(got[k] == A.migration_phases(m)[k] for k in got if k not in none)


def test_migration_rows_fall_in_the_trial_where_they_started(tmp_path):
    migs = [{"vm": "vm1", "src": "pm2", "dst": "pm1", "mode": "fast",
             "migration_started": 160.0, "migration_done": 170.0},     # at the switch: after
            {"vm": "vm2", "src": "pm2", "dst": "pm1", "mode": "fast",
             "migration_started": 120.0, "migration_done": 130.0},     # before
            {"vm": "vm3", "src": "pm1", "dst": "pm2", "mode": "paper"}]  # no start: each trial
    d = _raw_trial(tmp_path, "trial-3", {"condition": "paired", "trial": 3},
                   {"steady": {"before": {}, "after": {}}, "ovct_switched_on_mono": 160.0,
                    "migrations": migs}, [])
    m = A.migration_rows([d])
    assert list(zip(m.trial, m.vm)) == [("before-3", "vm2"), ("before-3", "vm3"),
                                        ("after-3", "vm1"), ("after-3", "vm3")]
    got = m.set_index(["trial", "vm"])
    assert got.loc[("before-3", "vm2"), "migration_start_s"] == 20.0
    assert got.loc[("after-3", "vm1"), "migration_start_s"] == 0.0
    assert got.loc[("after-3", "vm1"), "migration_done_s"] == 10.0


def _phase_dir(tmp_path, name, mig):
    from controller import events as E
    d = tmp_path / name
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "tcl1-vm1-0.jsonl").write_text(
        json.dumps({"event": "start", "time": 1000.0, "mono": 90.0}) + "\n")
    (d / "events.jsonl").write_text(
        json.dumps({"type": E.OVCT_DETECT, "time": 1000.25, "mono": 90.25}) + "\n")
    (d / "summary.json").write_text(json.dumps({
        "update_mode": "fast", "accel": "tcg", "migrations": [mig],
        "sessions": [{"max_gap_s": 1.5}], "probes": {"tcl2->vm1": {"max_gap_ms": 250.0}}}))
    return str(d)


def test_phase_rows_give_every_quantity_of_a_trial_and_skip_what_it_did_not_record(tmp_path):
    mig = {"detect_to_decision_s": 0.01, "elapsed_ms": 7000, "downtime_ms": 120,
           "migration_started": 100.0, "dest_started": 100.25, "source_paused": 106.75,
           "dest_resumed": 107.0, "network_updated": 107.5, "network_confirmed": 107.625,
           "vm_seen": 107.25}
    full = A.phase_rows([_phase_dir(tmp_path, "fast-1", mig)])
    assert list(full.columns) == A.PHASE_COLUMNS
    assert set(full.trial) == {"fast-1"} and set(full["mode"]) == {"fast"}
    assert set(full.accel) == {"tcg"} and set(full.unit) == {"s"}
    assert dict(zip(full.quantity, full.value)) == {
        "session_to_detect": 0.25, "detect_to_decision": 0.01, "migration": 7.0,
        "vm_resume_to_network_update": 0.25, "network_update_to_confirmed": 0.125,
        "qemu_downtime": 0.12, "ping_gap": 0.25, "vnc_update_gap": 1.5, "setup": 0.25,
        "precopy": 6.5, "stop_and_copy": 0.25, "resume_to_switch": 0.5}
    assert list(full.quantity) == A.PHASE_QUANTITIES
    # a run without the hypervisor's events nor the RARP: those rows are left out
    bare = {k: v for k, v in mig.items()
            if k not in ("dest_started", "source_paused", "dest_resumed", "vm_seen")}
    less = A.phase_rows([_phase_dir(tmp_path, "paper-2", bare)])
    assert list(less.quantity) == ["session_to_detect", "detect_to_decision", "migration",
                                   "network_update_to_confirmed", "qemu_downtime", "ping_gap",
                                   "vnc_update_gap"]


def test_migration_rows_carry_the_phases_frames_prediction_and_job_where_recorded(tmp_path):
    mig = {"vm": "vm1", "src": "pm2", "dst": "pm1", "mode": "fast",
           "migration_started": 100.0, "dest_started": 100.25, "source_paused": 106.75,
           "dest_resumed": 107.0, "network_updated": 107.5, "migration_done": 108.0,
           "transferred_bytes": 123456, "released_frames": 7, "dropped_frames": 2,
           "policy": "breakeven", "cost_error": -0.25, "saving_error": 0.5,
           "job": {"memory_total": 256, "downtime": 120}}
    d = _raw_trial(tmp_path, "trial-4", {"condition": "before", "trial": 4},
                   {"steady": {"before": {}}, "migrations": [mig]}, [])
    r = A.migration_rows([d]).iloc[0]
    assert (r.transferred_bytes, r.released_frames, r.dropped_frames) == (123456, 7, 2)
    assert (r.setup_s, r.precopy_s, r.stop_and_copy_s, r.resume_to_switch_s) == (
        0.25, 6.5, 0.25, 0.5)
    assert (r.policy, r.cost_error, r.saving_error) == ("breakeven", -0.25, 0.5)
    assert (r.job_downtime, r.job_memory_total) == (120, 256)
    cols = list(A.migration_rows([d]).columns)
    assert cols[:len(A.MIGRATION_COLUMNS)] == A.MIGRATION_COLUMNS
    assert cols[len(A.MIGRATION_COLUMNS):] == [
        "transferred_bytes", "setup_s", "precopy_s", "stop_and_copy_s", "resume_to_switch_s",
        "released_frames", "dropped_frames", "policy", "cost_error", "saving_error",
        "job_downtime", "job_memory_total"]


def _rtt_explained(near_before):
    """One trial's pings: tcl1 -> vm1, pm1 (near) and pm2 (far), before and after."""
    rows = []
    for cond, vm, near, far in (("before", [2.0, 2.2, 2.4], near_before, [5.0, 5.2]),
                                ("after", [1.0, 1.2, 1.4], [0.2, 0.4], [0.5, 0.7])):
        rows += [("t-1", cond, "tcl1", "vm1", i, x, "vm") for i, x in enumerate(vm, 1)]
        rows += [("t-1", cond, "tcl1", "pm1", i, x, "host") for i, x in enumerate(near, 1)]
        rows += [("t-1", cond, "tcl1", "pm2", i, x, "host") for i, x in enumerate(far, 1)]
    return A.rtt_explained(pd.DataFrame(rows, columns=A.PING_COLUMNS))


def test_rtt_explained_reports_the_vm_medians_and_the_distance_after_the_move():
    ex = _rtt_explained([9.0, 9.0])
    got = {(r.trial, r.quantity): r for r in ex.itertuples()}
    assert got[("1", "vm_before_median")].value_ms == 2.2
    assert got[("1", "vm_after_median")].value_ms == 1.2
    assert got[("1", "vm_before_median")].n == 3 == got[("pooled", "vm_after_median")].n
    # after the move only: far (0.6) minus near (0.3); "before" near pings are 9 ms
    assert got[("1", "distance")].value_ms == pytest.approx(0.3)


# -- collateral damage per phase: edges, lost pings at the end, a bad byte ----------------

INTERVAL = 0.125                                 # s, the probe's (exact in binary)
COL_MIG = {"vm": "vm7", "migration_started": 8.0, "dest_started": 9.0, "source_paused": 10.0,
           "dest_resumed": 10.5, "network_updated": 12.3745}
UPDATES = [1004.0, 1007.0, 1008.0, 1008.25, 1008.5, 1008.75, 1009.0, 1009.75, 1010.0,
           1010.75, 1011.0]


def _collateral_trial(tmp_path, name="fast-9"):
    """Pings sent every 125 ms from wall 1004.0 (seq k at 1004 + (k-1)/8),
    RTT 1 + (k % 7) / 2 ms; seqs 49-52 lost (stop-and-copy), 101-110 lost
    after the last reply.  Wall = mono + 1000."""
    d = tmp_path / name
    (d / "thinclients").mkdir(parents=True)
    (d / "pings").mkdir()
    (d / "events.jsonl").write_text(json.dumps({"type": "x", "time": 1001.0, "mono": 1.0}) + "\n")
    lines = ["PING 10.0.0.107 (10.0.0.107) 56(84) bytes of data."]
    got = 0
    for k in range(1, 101):
        if 49 <= k <= 52:
            continue
        got += 1
        rtt = 1.0 + (k % 7) / 2
        lines.append(f"[{1004.0 + (k - 1) * INTERVAL + rtt / 1000:.6f}] 64 bytes from "
                     f"10.0.0.107: icmp_seq={k} ttl=64 time={rtt:.2f} ms")
    lines += ["", "--- 10.0.0.107 ping statistics ---",
              f"110 packets transmitted, {got} received, 12% packet loss, time 14000ms"]
    # a byte that is no UTF-8 (a terminal's garbage) in the header: read as U+FFFD
    text = ("\n".join(lines) + "\n").encode().replace(b"data.", b"data.\xff", 1)
    (d / "pings" / "tcl2-vm7.txt").write_bytes(text)
    (d / "thinclients" / "tcl1-vm7-0.jsonl").write_text("".join(
        json.dumps({"event": "update", "time": t, "mono": t - 1000}) + "\n" for t in UPDATES))
    (d / "summary.json").write_text(json.dumps({
        "update_mode": "fast", "probes": {"tcl2->vm7": {"interval_ms": INTERVAL * 1000}},
        "migrations": [COL_MIG]}))
    return str(d)


def test_collateral_rows_count_each_phase_with_half_open_edges(tmp_path):
    df = A.collateral_rows([_collateral_trial(tmp_path)])
    assert list(df.columns) == A.COLLATERAL_COLUMNS
    assert set(df.trial) == {"fast-9"} and set(df["mode"]) == {"fast"} and set(df.vm) == {"vm7"}
    c = df.set_index("phase")
    assert list(c.index) == A.MIGRATION_PHASES
    assert list(c.duration_s) == [5.0, 1.0, 1.0, 0.5, 1.8745, 5.0]
    # sends: seq k at 1004 + (k-1)/8; lost 49-52 inside stop-and-copy [1010, 1010.5);
    # lost 101-110 after the last reply, one interval apart: 101-107 inside
    # "after" [1012.3745, 1017.3745), 108 (at 1017.375) just past its end
    sends = {k: 1004.0 + (k - 1) * INTERVAL for k in range(1, 111)}
    for phase, (a, b) in {"before": (1003.0, 1008.0), "setup": (1008.0, 1009.0),
                          "precopy": (1009.0, 1010.0), "stop_and_copy": (1010.0, 1010.5),
                          "resume_to_switch": (1010.5, 1012.3745),
                          "after": (1012.3745, 1017.3745)}.items():
        inside = [k for k, t in sends.items() if a <= t < b]
        lost = [k for k in inside if 49 <= k <= 52 or k > 100]
        rtts = [1.0 + (k % 7) / 2 for k in inside if k not in lost]
        row = c.loc[phase]
        assert (row.pings_sent, row.pings_lost) == (len(inside), len(lost)), phase
        if rtts:
            assert row.rtt_median_ms == pytest.approx(np.median(rtts)), phase
            assert row.rtt_p95_ms == pytest.approx(np.percentile(rtts, 95)), phase
        else:
            assert np.isnan(row.rtt_median_ms) and np.isnan(row.rtt_p95_ms), phase
    assert (c.loc["stop_and_copy", "pings_lost"], c.loc["after", "pings_lost"]) == (4, 7)
    assert c.loc["precopy", "rtt_p95_ms"] == pytest.approx(np.percentile(
        [1.0 + (k % 7) / 2 for k in range(41, 49)], 95))
    # screen updates: one right at the setup's end belongs to the precopy; the
    # silences ending at its start or starting at its end are not the setup's
    assert c.loc["setup", "vnc_updates"] == 4 and c.loc["setup", "vnc_max_gap_s"] == 0.25
    assert c.loc["precopy", "vnc_updates"] == 2 and c.loc["precopy", "vnc_max_gap_s"] == 0.75
    assert c.loc["before", "vnc_max_gap_s"] == 3.0
    assert c.loc["after", "vnc_updates"] == 0 and np.isnan(c.loc["after", "vnc_max_gap_s"])


def test_collateral_rows_of_a_trial_without_events_probes_or_migrations(tmp_path):
    d = tmp_path / "paper-3"
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "tcl1-vm7-0.jsonl").write_text("".join(
        json.dumps({"event": "update", "time": t, "mono": t}) + "\n" for t in (8.0, 8.5)))
    (d / "summary.json").write_text(json.dumps({"update_mode": "paper",
                                                "migrations": [COL_MIG]}))
    # no events: the clocks are one (offset 0); no probes: no pings
    c = A.collateral_rows([str(d)]).set_index("phase")
    assert c.loc["setup", "vnc_updates"] == 2 and c.loc["setup", "pings_sent"] == 0
    assert np.isnan(c.loc["setup", "rtt_median_ms"])
    (d / "summary.json").write_text(json.dumps({"update_mode": "paper"}))
    assert A.collateral_rows([str(d)]).empty


def test_a_tiny_phase_keeps_its_duration_to_the_microsecond(tmp_path):
    d = tmp_path / "fast-8"
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "tcl1-vm7-0.jsonl").write_text("")
    mig = {**COL_MIG, "dest_started": 8.0000004}
    (d / "summary.json").write_text(json.dumps({"update_mode": "fast", "migrations": [mig]}))
    c = A.collateral_rows([str(d)]).set_index("phase")
    assert c.loc["setup", "duration_s"] == 0.0 and c.loc["precopy", "duration_s"] == 2.0


def test_phase_windows_never_go_back_in_time():
    m = {"migration_started": 10.0, "dest_started": 9.5, "source_paused": 12.0,
         "dest_resumed": 13.0, "network_updated": 14.0}
    w = A.phase_windows(m, 0.0, margin=1.0)
    assert w == [("before", 9.0, 10.0), ("setup", 10.0, 10.0), ("precopy", 10.0, 12.0),
                 ("stop_and_copy", 12.0, 13.0), ("resume_to_switch", 13.0, 14.0),
                 ("after", 14.0, 15.0)]


def test_ping_sends_interpolate_by_sequence_and_extrapolate_by_the_interval():
    from testbed import ping as pingmod
    # replies 2 and 6 (RTT 1000 ms: sent 1 s before they arrived); 1, 3-5, 7-8 lost
    res = pingmod.PingResult("a", "b", transmitted=8, received=2, rtts_ms=[1000.0, 1000.0],
                             seqs=[2, 6], times=[11.0, 15.0])
    sends = A.ping_sends(res, 0.25)
    assert [(s, round(t, 6), r) for s, t, r in sends] == [
        (1, 9.75, None), (2, 10.0, 1000.0), (3, 11.0, None), (4, 12.0, None),
        (5, 13.0, None), (6, 14.0, 1000.0), (7, 14.25, None), (8, 14.5, None)]


def test_migration_rows_have_the_columns_in_order_even_without_migrations(tmp_path):
    none = _raw_trial(tmp_path, "trial-5", {"condition": "before", "trial": 5},
                      {"steady": {"before": {}}, "migrations": []}, [])
    assert list(A.migration_rows([none]).columns) == A.MIGRATION_COLUMNS
    two = _raw_trial(tmp_path, "trial-6", {"condition": "before", "trial": 6},
                     {"steady": {"before": {}}, "migrations": [
                         {"vm": "vm1", "migration_started": 101.0, "job": {"zeta": 1}},
                         {"vm": "vm2", "migration_started": 102.0, "dropped_frames": 3,
                          "job": {"alpha": 2}}]}, [])
    cols = list(A.migration_rows([two]).columns)
    assert cols == A.MIGRATION_COLUMNS + ["dropped_frames", "job_alpha", "job_zeta"]


# -- the statistics, against the recipe they promise ---------------------------------------

B = [round(x, 4) for x in np.random.default_rng(5).normal(1.5, 0.4, 24)]
AF = [round(x, 4) for x in np.random.default_rng(6).normal(1.0, 0.3, 26)]


def _boot_diff(before, after, level, n_boot=2000, seed=0):
    rng = np.random.default_rng(seed)
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    boots = (np.median(rng.choice(a, size=(n_boot, a.size)), axis=1)
             - np.median(rng.choice(b, size=(n_boot, b.size)), axis=1))
    return tuple(np.percentile(boots, [50 * (1 - level), 50 * (1 + level)]))


def test_diff_ci_is_the_bootstrap_percentile_interval_of_2000_draws_seed_0():
    med, lo, hi = A.diff_ci(B, AF)
    assert med == pytest.approx(np.median(AF) - np.median(B))
    assert (lo, hi) == pytest.approx(_boot_diff(B, AF, 0.95))
    assert (lo, hi) != pytest.approx(_boot_diff(B, AF, 0.95, n_boot=2001))
    assert (lo, hi) != pytest.approx(_boot_diff(B, AF, 0.95, seed=1))
    assert lo < med < hi
    assert A.diff_ci(B, AF, level=0.8)[1:] == pytest.approx(_boot_diff(B, AF, 0.8))
    # numbers given as text (a CSV read without types) are numbers
    assert A.diff_ci([str(x) for x in B], [str(x) for x in AF]) == (med, lo, hi)
    for one, other in (([], AF), (B, [])):
        assert all(np.isnan(x) for x in A.diff_ci(one, other))


def _exact_p(before, after):
    """The exact p-value the Monte-Carlo test estimates: the share of ALL
    relabellings of the pooled values (every way to choose which of them
    form the "after" group) whose difference of medians is at least the
    observed one.  Independent of the implementation: no random numbers."""
    both = list(after) + list(before)
    obs = abs(np.median(after) - np.median(before))
    hits = total = 0
    for idx in itertools.combinations(range(len(both)), len(after)):
        chosen = set(idx)
        a = [both[i] for i in idx]
        b = [both[i] for i in range(len(both)) if i not in chosen]
        total += 1
        hits += abs(np.median(a) - np.median(b)) >= obs - 1e-12
    return hits / total


def test_permutation_p_estimates_the_exact_p_value():
    # ties on purpose: a relabelling exactly as extreme as the observed
    # one counts (>=), which moves p a lot here
    tied_before, tied_after = [1, 1, 2, 2, 3, 3], [2, 3, 3, 4, 4, 5]
    near = [1.0, 1.2, 1.1, 1.3, 0.9, 1.05]
    later = [1.2, 1.4, 1.15, 1.5, 1.0, 1.3]
    for before, after in ((tied_before, tied_after), (near, later), ([1, 2, 3], [7, 8])):
        exact = _exact_p(before, after)
        p = A.permutation_p(before, after, n_perm=20000)
        # 20,000 draws: the standard error is at most 0.0035
        assert abs(p - exact) < 0.02, (before, after, p, exact)
    assert abs(_exact_p(tied_before, tied_after) - 17 / 231) < 1e-12


def test_permutation_p_counts_the_relabellings_at_least_as_extreme():
    near = [1.0, 1.2, 1.1, 1.3, 0.9, 1.05]
    later = [1.2, 1.4, 1.15, 1.5, 1.0, 1.3]
    p = A.permutation_p(near, later)
    # (hits + 1) / (n_perm + 1): the observed labelling counts as one draw
    for n in (2000, 99, 9):
        q = A.permutation_p(near, later, n_perm=n)
        assert abs(q * (n + 1) - round(q * (n + 1))) < 1e-9 and 1 <= round(q * (n + 1)) <= n + 1
    # seeded: the p-values in the committed results are reproducible; this
    # pins seed 0's value (computed once, with NumPy's default generator)
    assert p == 0.2318840579710145
    assert A.permutation_p(near, later) == p
    assert A.permutation_p(near, later, seed=1) != p
    assert A.permutation_p([str(x) for x in near], [str(x) for x in later]) == p
    # every relabelling of identical samples is as extreme: p = 1
    assert A.permutation_p([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0
    assert A.permutation_p([1.0], [1.0], n_perm=9) == 1.0
    # fully separated samples, yet a median test: every relabelling but
    # the 3/3 splits (400 of 924) moves one median to 0 and the other to 9
    assert _exact_p([0.0] * 6, [9.0] * 6) == 1 - 400 / 924
    assert abs(A.permutation_p([0.0] * 6, [9.0] * 6, n_perm=20000) - (1 - 400 / 924)) < 0.02
    assert np.isnan(A.permutation_p([], near)) and np.isnan(A.permutation_p(near, []))


def test_median_ci_of_one_value_or_none():
    assert A.median_ci([3.0]) == (3.0, 3.0, 3.0)
    assert all(np.isnan(x) for x in A.median_ci([]))
    assert A.median_ci(["1.5", "2.5", "0.5"]) == A.median_ci([1.5, 2.5, 0.5])


def test_phase_stats_per_mode_and_quantity():
    ph = pd.DataFrame([("fast-1", "fast", "tcg", "migration", v, "s") for v in (3.0, 1.0, 2.0)]
                      + [("paper-1", "paper", "tcg", "migration", 5.0, "s")],
                      columns=A.PHASE_COLUMNS)
    st = A.phase_stats(ph)
    assert list(st.columns) == ["n", "median", "min", "max"]
    assert st.loc[("fast", "migration")].tolist() == [3, 2.0, 1.0, 3.0]
    assert st.loc[("paper", "migration")].tolist() == [1, 5.0, 5.0, 5.0]


def test_projections_skip_an_unpaired_trial_and_fit_from_5_s_without_migrations():
    before = series("before-1", "before", lambda t: 1000 + 10 * t)
    before2 = series("before-2", "before", lambda t: 1000 + 10 * t)
    after2 = series("after-2", "after", lambda t: 500 + 4 * t)
    tot = pd.concat([before, before2, after2], ignore_index=True)     # after-1 missing
    p = A.projections(tot, pd.DataFrame({"trial": [], "migration_done_s": []}))
    assert list(p.trial) == ["2", "2"] and list(p.fit_from_s) == [5.0, 5.0]
    assert p.iloc[0].rate_after_per_s == pytest.approx(4.0)


def test_rtt_explained_counts_and_residual():
    ex = _rtt_explained([0.3, 0.3])
    got = {(r.trial, r.quantity): r for r in ex.itertuples()}
    ch, di, re_, rs = (got[("1", q)] for q in ("vm_change", "distance", "relief", "residual"))
    assert (ch.n, di.n, re_.n, rs.n) == (6, 8, 4, 0)
    assert rs.value_ms == pytest.approx(ch.value_ms + di.value_ms - re_.value_ms)
    assert rs.value_ms == pytest.approx(-1.0 + 0.3 - (0.6 - 5.1))


def test_the_rtt_table_keeps_host_pings_out_of_the_overall_row():
    rows = [("t", c, "tcl1", dst, i, x, tgt) for c in ("before", "after")
            for dst, tgt, x in (("vm1", "vm", 2.0 if c == "before" else 1.0),
                                ("pm1", "host", 0.1))
            for i in range(1, 4)]
    df = pd.DataFrame(rows, columns=A.PING_COLUMNS)
    t = A.rtt_table(df).set_index(["src", "dst"])
    assert t.loc[("all", "all"), "before_median_ms"] == 2.0
    assert t.loc[("all", "all"), "before_n"] == 3 and t.loc[("tcl1", "pm1"), "before_n"] == 3
    t2 = A.rtt_table(df[df.target == "vm"].drop(columns="target")).set_index(["src", "dst"])
    assert t2.loc[("all", "all"), "after_median_ms"] == 1.0


def test_projection_edges_no_saving_a_small_one_and_nothing_before():
    assert A.projection(5.0, 5.0, 100.0)["breakeven_s"] == float("inf")
    assert A.projection(1.5, 1.0, 10.0)["breakeven_s"] == pytest.approx(20.0)
    nothing = A.projection(0.0, 0.0, 0.0)
    assert np.isnan(nothing["reduction_at_horizon_pct"]) and nothing["breakeven_s"] == float("inf")


def test_steady_fit_takes_both_ends_and_needs_two_points():
    s = pd.DataFrame({"t_s": [0.0, 10.0, 20.0, 30.0], "packets": [500, 100, 200, 300]})
    assert A.steady_fit(s, 10.0, 30.0) == pytest.approx((10.0, 0.0))
    assert A.steady_fit(s, 10.0, 20.0) == pytest.approx((10.0, 0.0))      # two points
    assert all(np.isnan(x) for x in A.steady_fit(s, 10.0, 15.0))           # one


def test_total_series_columns_and_each_trials_condition():
    rel = pd.DataFrame([("after-1", "after", 2.0, 1, "vnc", 20, 2000),
                        ("before-1", "before", 1.0, 1, "vnc", 10, 1000)],
                       columns=A.RELAYED_COLUMNS)
    tot = A.total_series(rel)
    assert list(tot.columns) == ["trial", "condition", "t_s", "packets", "bytes"]
    assert tot.values.tolist() == [["after-1", "after", 2.0, 20, 2000],
                                   ["before-1", "before", 1.0, 10, 1000]]


def test_sweep_rows_read_each_trials_own_precopy_or_none(tmp_path):
    d1 = _sweep_trial(tmp_path, "bw10-1", 10, 10.0)
    # the probe lost pings in the pre-copy too (seqs 700-709: sent 1100.99-1101.08)
    log = os.path.join(d1, "pings", "tcl2-vm1.txt")
    lines = open(log).read().splitlines()
    lines = [ln for ln in lines if not any(f"icmp_seq={k} " in ln for k in range(700, 710))]
    open(log, "w").write("\n".join(lines) + "\n")
    # another trial without the destination's start: no pre-copy phase of its own
    d2 = _sweep_trial(tmp_path, "bw20-1", 20, 20.0)
    summary = json.loads(open(os.path.join(d2, "summary.json")).read())
    del summary["migrations"][0]["dest_started"]
    os.remove(os.path.join(d2, "pings", "tcl2-vm1.txt"))
    open(os.path.join(d2, "summary.json"), "w").write(json.dumps(summary))
    one, two = A.sweep_rows([d1, d2]).itertuples()
    assert one.pings_lost_precopy == 10 and one.pings_lost == 25 and one.rtt_p95_precopy_ms == 1.0
    assert two.pings_lost_precopy == 0 and two.pings_lost == 0
    assert isinstance(two.rtt_p95_precopy_ms, float) and np.isnan(two.rtt_p95_precopy_ms)
    alone = A.sweep_rows([d2]).iloc[0]
    assert isinstance(alone.rtt_p95_precopy_ms, float) and np.isnan(alone.rtt_p95_precopy_ms)
    assert alone.pings_lost_precopy == 0


def test_permutation_p_counts_a_difference_short_of_the_observed_by_rounding_only():
    """The 1e-12 tolerance: with these values one relabelling's difference
    of medians is exactly the observed one minus 1e-12 (floating point): it
    counts as at least as extreme, so every relabelling does and p = 1."""
    y = 6.66634e-13
    assert abs(np.median([y]) - np.median([0.0, 2.0 - y])) == 1.0 - 1e-12
    assert A.permutation_p([y, 2.0 - y], [0.0], n_perm=300) == 1.0
