"""Analysis on small fixture data: tables, statistics, the projection
arithmetic, CSV schemas, and that every plot renders."""
import json
import math
import os

import pandas as pd
import pytest

from experiments import analysis as A
from experiments import fig27_rtt, fig29_relayed, fig31_phases
from testbed import ping as P


def test_projection_break_even_and_reduction():
    p = A.projection(rate_before=10.0, rate_after=4.0, one_off=3600.0, horizon_s=3600.0)
    assert p["breakeven_s"] == pytest.approx(600.0)           # 3600 / (10 - 4)
    assert p["before_at_horizon"] == 36000 and p["after_at_horizon"] == 3600 + 14400
    assert p["reduction_at_horizon_pct"] == pytest.approx(50.0)
    never = A.projection(5.0, 6.0, 100.0)
    assert math.isinf(never["breakeven_s"]) and never["reduction_at_horizon_pct"] < 0
    based = A.projection(10.0, 4.0, 3600.0, horizon_s=3600.0, base_before=600.0)
    assert based["breakeven_s"] == pytest.approx(500.0)


def test_steady_fit_recovers_rate_and_one_off():
    s = pd.DataFrame({"t_s": [0, 10, 20, 30, 40, 50], "packets": [0, 5000, 5100, 5200, 5300, 5400]})
    rate, icpt = A.steady_fit(s, 20, 50)
    assert rate == pytest.approx(10.0) and icpt == pytest.approx(4900.0)
    assert math.isnan(A.steady_fit(s, 100, 200)[0])


def test_total_series_sums_each_switch_latest_value():
    rel = pd.DataFrame([
        ("after-1", "after", 1.0, 1, "vnc", 10, 1000),
        ("after-1", "after", 1.5, 2, "vnc", 5, 500),
        ("after-1", "after", 2.0, 1, "vnc", 20, 2000),
        ("after-1", "after", 2.0, 1, "migration", 7, 700),
        ("after-1", "after", 2.0, 1, "control", 99, 9900),
    ], columns=A.RELAYED_COLUMNS)
    tot = A.total_series(rel)
    assert tot.packets.tolist() == [10, 15, 32]       # 20+5+7 at t=2 (control excluded)
    assert A.total_series(rel, ("migration",)).packets.tolist() == [7]


def test_median_ci_and_rtt_table():
    med, lo, hi = A.median_ci([1, 2, 3, 4, 100])
    assert med == 3 and lo <= med <= hi
    rows = []
    for cond, base in (("before", 1.0), ("after", 0.5)):
        for src, dst in (("tcl1", "vm1"), ("tcl2", "vm2")):
            for seq in range(1, 6):
                rows.append(("t", cond, src, dst, seq, base + seq / 100, "vm"))
    table = A.rtt_table(pd.DataFrame(rows, columns=A.PING_COLUMNS))
    assert list(table.src) == ["tcl1", "tcl2", "all"]
    first = table.iloc[0]
    assert first.before_median_ms == pytest.approx(1.03) and first.after_median_ms == pytest.approx(0.53)
    assert first.change_median_pct == pytest.approx(100 * (0.53 / 1.03 - 1))
    assert table.iloc[2].before_n == 10


def test_plots_render(tmp_path):
    rows = [("t", c, s, d, q, (1.0 if c == "before" else 0.5) + q / 100, "vm")
            for c in ("before", "after") for s, d in (("tcl1", "vm1"),) for q in range(1, 4)]
    fig27_rtt.plot(A.rtt_table(pd.DataFrame(rows, columns=A.PING_COLUMNS)), str(tmp_path))
    rel = pd.DataFrame([(f"{c}-1", c, float(t), 1, "vnc", t * (30 if c == "before" else 10), t * 3000)
                        for c in ("before", "after") for t in range(0, 60, 5)] +
                       [("after-1", "after", float(t), 1, "migration", 500, 50000)
                        for t in range(0, 60, 5)], columns=A.RELAYED_COLUMNS)
    tot = A.total_series(rel)
    p = A.projection(30.0, 10.0, 500.0)
    proj = pd.DataFrame([{"trial": "1", "unit": "packets", **p, "breakeven_h": p["breakeven_s"] / 3600}])
    fig29_relayed.plot(rel, tot, proj, str(tmp_path))
    ph = [{"trial": f"{m}-1", "mode": m, "accel": "tcg", "quantity": q, "value": v, "unit": "s"}
          for m in ("fast", "paper") for q, v in (("migration", 7.0), ("ping_gap", 0.2))]
    fig31_phases.plot(pd.DataFrame(ph), str(tmp_path))
    for name in ("fig27_rtt", "fig29_relayed", "fig30_projection", "fig31_phases"):
        for ext in ("png", "svg"):
            assert os.path.getsize(tmp_path / f"{name}.{ext}") > 1000


def test_csv_schemas_are_tidy_with_units():
    for cols in (A.PING_COLUMNS, A.RELAYED_COLUMNS, A.MIGRATION_COLUMNS, A.PHASE_COLUMNS):
        assert len(cols) == len(set(cols))
    assert "rtt_ms" in A.PING_COLUMNS and "t_s" in A.RELAYED_COLUMNS
    assert {"elapsed_ms", "downtime_ms", "data_total_bytes"} <= set(A.MIGRATION_COLUMNS)
    assert "unit" in A.PHASE_COLUMNS


def _paired_trial(tmp_path):
    """A raw trial folder as ensure_paper_trials leaves it: sessions start at
    mono 100, OVCT is switched on at 160, vm1 migrates 161-170."""
    d = tmp_path / "trial-1"
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "tcl1-vm1-0.jsonl").write_text(
        json.dumps({"event": "start", "mono": 100.0}) + "\n")
    (d / "trial.json").write_text(json.dumps({"condition": "paired", "trial": 1}))
    steady = {c: {"tcl1->vm1": {"rtts_ms": rtts}} for c, rtts in
              (("before", [1.0, 1.2]), ("after", [0.5]))}
    (d / "summary.json").write_text(json.dumps({
        "steady": steady, "ovct_switched_on_mono": 160.0,
        "migrations": [{"vm": "vm1", "src": "pm2", "dst": "pm1", "mode": "fast",
                        "migration_started": 161.0, "migration_done": 170.0}]}))
    polls = [{"type": "flow_stats", "dpid": 1, "mono": t, "by_class": {"vnc": [pk, 10 * pk]}}
             for t, pk in ((95.0, 0), (155.0, 600), (165.0, 700), (175.0, 750))]
    (d / "stats.jsonl").write_text("".join(json.dumps(p) + "\n" for p in polls))
    return str(d)


def test_a_paired_trial_splits_into_before_and_after(tmp_path):
    d = _paired_trial(tmp_path)
    ping = A.ping_rows([d])
    assert ping.groupby("trial").rtt_ms.count().to_dict() == {"after-1": 1, "before-1": 2}
    rel = A.relayed_rows([d])
    before = rel[rel.trial == "before-1"]
    assert before[["t_s", "packets"]].values.tolist() == [[-5.0, 0], [55.0, 600]]
    # "after" counts from the last poll before the switch, starting at zero
    after = rel[rel.trial == "after-1"]
    assert after[["t_s", "packets", "bytes"]].values.tolist() == [
        [0.0, 0, 0], [5.0, 100, 1000], [15.0, 150, 1500]]
    mig = A.migration_rows([d])
    assert mig[["trial", "migration_start_s", "migration_done_s"]].values.tolist() == [
        ["after-1", 1.0, 10.0]]


# -- a migration's phases and the collateral damage in each --------------------------

MIG = {"vm": "vm1", "migration_started": 100.0, "dest_started": 100.3, "source_paused": 106.8,
       "dest_resumed": 106.95, "network_updated": 107.0}


def test_phase_windows_follow_the_events_and_merge_what_is_missing():
    w = A.phase_windows(MIG, offset=1000.0, margin=5.0)
    assert [p for p, *_ in w] == A.MIGRATION_PHASES
    assert w[0][1:] == (1095.0, 1100.0) and w[-1][1:] == (1107.0, 1112.0)
    assert dict((p, round(b - a, 3)) for p, a, b in w)["stop_and_copy"] == 0.15
    old = {k: v for k, v in MIG.items() if k not in ("dest_started", "dest_resumed")}
    assert [p for p, *_ in A.phase_windows(old, 0.0)] == [
        "before", "setup+precopy", "stop_and_copy+resume_to_switch", "after"]
    assert A.phase_windows({"migration_started": 1.0}, 0.0) == []


def test_ping_sends_place_lost_pings_between_their_neighbours():
    res = P.PingResult("a", "b", transmitted=6, received=4, rtts_ms=[1.0, 1.0, 1.0, 2.0],
                       seqs=[1, 2, 5, 6], times=[10.001, 10.011, 10.041, 10.052])
    sends = A.ping_sends(res, 0.01)
    assert [s for s, _, _ in sends] == [1, 2, 3, 4, 5, 6]
    assert [r is None for _, _, r in sends] == [False, False, True, True, False, False]
    t = {s: round(t, 4) for s, t, _ in sends}
    assert (t[1], t[3], t[4], t[5]) == (10.0, 10.02, 10.03, 10.04)


def _phase_trial(tmp_path):
    """A phase trial's run directory: vm1 migrates 100 -> 107 (mono), wall =
    mono + 1000; a 10 ms probe loses the pings sent during stop-and-copy; the
    VNC session is silent from 1106.5 to 1107.5."""
    d = tmp_path / "fast-1"
    (d / "thinclients").mkdir(parents=True)
    (d / "pings").mkdir()
    (d / "events.jsonl").write_text(json.dumps({"type": "x", "time": 1090.0, "mono": 90.0}) + "\n")
    lines = ["PING 10.0.0.101 (10.0.0.101) 56(84) bytes of data."]
    seq = 0
    for k in range(1500):                       # 1094.0 .. 1109.0 every 10 ms
        seq += 1
        sent = 1094.0 + k * 0.01
        if 1106.8 <= sent < 1106.95:
            continue
        lines.append(f"[{sent + 0.001:.6f}] 64 bytes from 10.0.0.101: icmp_seq={seq} ttl=64 "
                     f"time=1.00 ms")
    lines += ["", "--- 10.0.0.101 ping statistics ---",
              f"{seq} packets transmitted, {len(lines) - 1} received, 1% packet loss, time 15000ms"]
    (d / "pings" / "tcl2-vm1.txt").write_text("\n".join(lines) + "\n")
    ups = [1094.0 + 0.5 * k for k in range(27)] + [1107.5, 1108.0]
    (d / "thinclients" / "tcl1-vm1-0.jsonl").write_text("".join(
        json.dumps({"event": "update", "time": t, "mono": t - 1000}) + "\n"
        for t in sorted(set(ups)) if not 1106.5 < t < 1107.5))
    (d / "summary.json").write_text(json.dumps({
        "update_mode": "fast", "probes": {"tcl2->vm1": {"interval_ms": 10.0}},
        "migrations": [MIG]}))
    return str(d)


def test_collateral_counts_loss_and_silence_per_phase(tmp_path):
    df = A.collateral_rows([_phase_trial(tmp_path)]).set_index("phase")
    assert list(df.index) == A.MIGRATION_PHASES
    assert df.loc["stop_and_copy", "pings_lost"] == 15
    assert df[["pings_lost"]].drop("stop_and_copy").sum().item() == 0
    assert df.loc["precopy", "pings_sent"] == 650
    assert df.loc["stop_and_copy", "vnc_max_gap_s"] == 1.0
    assert df.loc["before", "vnc_max_gap_s"] == 0.5
    assert df.loc["setup", "rtt_median_ms"] == 1.0


def test_rtt_explained_separates_distance_relief_and_the_rest():
    """Synthetic trial: 2 hops cost 0.1 ms, relief 0.05 ms, guests reply
    0.5 ms after the network; the VM moves from pm2's side to pm1's."""
    rng = __import__("numpy").random.default_rng(1)
    rows = []
    base = {"pm1": 0.2, "pm2": 0.3}
    for cond in ("before", "after"):
        relief = 0.05 if cond == "after" else 0.0
        for seq in range(1, 201):
            j = rng.normal(0, 0.005)
            rows.append((f"{cond}-1", cond, "tcl1", "pm1", seq, base["pm1"] + j, "host"))
            rows.append((f"{cond}-1", cond, "tcl1", "pm2", seq, base["pm2"] - relief + j, "host"))
            vm_net = base["pm2"] - relief if cond == "before" else base["pm1"]
            rows.append((f"{cond}-1", cond, "tcl1", "vm1", seq, vm_net + 0.5 + j, "vm"))
    ex = A.rtt_explained(pd.DataFrame(rows, columns=A.PING_COLUMNS))
    got = {(r.trial, r.quantity): r for r in ex.itertuples()}
    ch = got[("1", "vm_change")]
    assert ch.value_ms == pytest.approx(-0.1, abs=0.005) and ch.ci_high_ms < 0
    assert ch.p_value < 0.01
    assert got[("1", "distance")].value_ms == pytest.approx(0.05, abs=0.005)  # after: 0.25 vs 0.2
    assert got[("1", "relief")].value_ms == pytest.approx(-0.05, abs=0.005)
    assert abs(got[("pooled", "residual")].value_ms) < 0.01
    assert A.rtt_explained(pd.DataFrame(rows[2::3], columns=A.PING_COLUMNS)).empty


def test_permutation_p_and_diff_ci():
    same = list(range(100))
    assert A.permutation_p(same, same) > 0.5
    d, lo, hi = A.diff_ci([1.0] * 50 + [2.0] * 50, [3.0] * 100)
    assert d == 1.5 and lo <= d <= hi


def test_probe_in_windows_counts_sends_losses_and_the_silence_around_each_window():
    from testbed import ping as pingmod
    # replies every 10 ms from t=100.00, seq 1..; seqs 21-40 lost (0.2 s hole)
    seqs = [s for s in range(1, 101) if not 21 <= s <= 40]
    res = pingmod.PingResult("tcl1", "vm1", transmitted=100, received=len(seqs),
                             rtts_ms=[1.0] * len(seqs), seqs=seqs,
                             times=[100.0 + (s - 1) * 0.01 + 0.001 for s in seqs])
    hole, quiet, empty = A.probe_in_windows(res, [(100.15, 100.5), (100.6, 100.7),
                                                  (100.25, 100.3)], 0.01)
    assert hole["pings_lost"] == 20 and hole["pings_sent"] == 35
    assert hole["max_gap_ms"] == 210.0            # seq 20's reply to seq 41's
    assert quiet == {"pings_sent": 10, "pings_lost": 0, "max_gap_ms": 10.0}
    # no reply inside at all: the silence is still the whole hole
    assert empty["pings_lost"] == 5 and empty["max_gap_ms"] == 210.0


# -- decision policies live: decisions and sessions --------------------------------

def _policy_trial(tmp_path, policy: str = "breakeven"):
    """A policy trial: the first session starts at mono 100.  Session 1
    (t1 -> v1) is deferred at 101 (break-even 88 s, prior), decided again at
    190 (migrate, measured 80 s) and its migration completes; session 2
    (t2 -> v2) is deferred at 105 and ends at 125 after 20 s."""
    d = tmp_path / f"{policy}-1"
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "t1x1-v1x1-0.jsonl").write_text(
        json.dumps({"event": "start", "mono": 100.0}) + "\n")
    (d / "trial.json").write_text(json.dumps({"condition": policy, "trial": 1}))
    (d / "summary.json").write_text(json.dumps({"steady": {}, "migrations": []}))

    def ev(kind, mono, **kw):
        return json.dumps({"type": kind, "mono": mono, "time": mono + 1000, **kw}) + "\n"
    lines = [
        ev("ovct_detect", 101.0, session=1, vm="v1x1", client_ip="10.0.1.1",
           detected_mono=101.0),
        ev("ovct_decision", 101.0, session=1, vm="v1x1", decision="defer", breakeven_s=88.0,
           rates="prior", **{"from": "p2x1", "to": "p1x1"}),
        ev("ovct_detect", 105.0, session=2, vm="v2x1", client_ip="10.0.2.1",
           detected_mono=105.0),
        ev("ovct_decision", 105.0, session=2, vm="v2x1", decision="defer", breakeven_s=88.0,
           rates="prior", **{"from": "p1x1", "to": "p2x1"}),
        ev("ovct_session_end", 125.0, session=2, vm="v2x1", reason="fin", duration_s=20.0),
        ev("ovct_decision", 190.0, session=1, vm="v1x1", decision="migrate", breakeven_s=80.0,
           rates="measured", **{"from": "p2x1", "to": "p1x1"}),
        ev("ovct_migration_done", 196.0, session=1, vm="v1x1", **{"from": "p2x1", "to": "p1x1"}),
        ev("ovct_session_end", 265.0, session=1, vm="v1x1", reason="fin", duration_s=164.0),
    ]
    (d / "events.jsonl").write_text("".join(lines))
    return str(d)


def test_decision_rows_give_each_decision_the_sessions_age(tmp_path):
    dec = A.decision_rows([_policy_trial(tmp_path)])
    assert list(dec.columns) == A.DECISION_COLUMNS
    got = dec[["session", "decision", "decided_s", "age_s", "breakeven_s", "src", "dst"]]
    assert got.values.tolist() == [[1, "defer", 1.0, 0.0, 88.0, "p2x1", "p1x1"],
                                   [2, "defer", 5.0, 0.0, 88.0, "p1x1", "p2x1"],
                                   [1, "migrate", 90.0, 89.0, 80.0, "p2x1", "p1x1"]]
    assert set(dec.trial) == {"breakeven-1"} and set(dec.condition) == {"breakeven"}


def test_session_rows_say_which_sessions_moved_and_when(tmp_path):
    ses = A.session_rows([_policy_trial(tmp_path)])
    assert list(ses.columns) == A.SESSION_COLUMNS
    ses = ses.set_index("session")
    one, two = ses.loc[1], ses.loc[2]
    assert bool(one.moved) and one.moved_at_age_s == 89.0 and one.breakeven_s == 80.0
    assert one.rates == "measured" and one.decisions == 2 and one.final_decision == "migrate"
    assert (one.detected_s, one.ended_s, one.duration_s) == (1.0, 165.0, 164.0)
    # deferred, never decided again: it stayed; its break-even is the last prediction
    assert not bool(two.moved) and math.isnan(two.moved_at_age_s)
    assert (two.final_decision, two.breakeven_s, two.duration_s) == ("defer", 88.0, 20.0)


def test_a_migrate_decision_whose_migration_did_not_complete_is_not_a_move(tmp_path):
    d = _policy_trial(tmp_path)
    ev = os.path.join(d, "events.jsonl")
    kept = [ln for ln in open(ev) if "ovct_migration_done" not in ln]
    open(ev, "w").writelines(kept)
    ses = A.session_rows([d]).set_index("session")
    assert not bool(ses.loc[1].moved) and ses.loc[1].final_decision == "migrate"


def test_a_folder_of_ovct_run_reads_as_one_trial_named_run(tmp_path):
    d = _policy_trial(tmp_path)
    os.remove(os.path.join(d, "trial.json"))
    ses = A.session_rows([d])
    assert set(ses.trial) == {"run-1"} and set(ses.condition) == {"run"}
    assert len(ses) == 2


def test_probe_rows_place_each_ping_against_its_vms_move(tmp_path):
    d = _phase_trial(tmp_path)
    with open(os.path.join(d, "thinclients", "tcl1-vm1-0.jsonl"), "a") as f:
        f.write(json.dumps({"event": "start", "time": 1094.0, "mono": 94.0}) + "\n")
    pr = A.probe_rows([d])
    assert list(pr.columns) == A.PROBE_COLUMNS
    n = pr.groupby("phase").seq.count().to_dict()
    # migrate call at 1100.0 (wall), flows switched at 1107.0, +5 s margin
    assert n == {"before": 600, "during": 900}
    assert pr[pr.phase == "during"].rtt_ms.isna().sum() == 15
    first = pr.iloc[0]
    assert (first.src, first.dst, first.seq, first.t_s) == ("tcl2", "vm1", 1, 0.0)
    # a VM that never moved: every ping "unmoved"
    summary = json.loads(open(os.path.join(d, "summary.json")).read())
    summary["migrations"] = []
    open(os.path.join(d, "summary.json"), "w").write(json.dumps(summary))
    assert set(A.probe_rows([d]).phase) == {"unmoved"}
