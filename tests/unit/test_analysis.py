"""Analysis on small fixture data: tables, statistics, the projection
arithmetic, CSV schemas, and that every plot renders."""
import json
import math
import os

import pandas as pd
import pytest

from experiments import analysis as A
from experiments import fig27_rtt, fig29_relayed, fig31_phases


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
                rows.append(("t", cond, src, dst, seq, base + seq / 100))
    table = A.rtt_table(pd.DataFrame(rows, columns=A.PING_COLUMNS))
    assert list(table.src) == ["tcl1", "tcl2", "all"]
    first = table.iloc[0]
    assert first.before_median_ms == pytest.approx(1.03) and first.after_median_ms == pytest.approx(0.53)
    assert first.change_median_pct == pytest.approx(100 * (0.53 / 1.03 - 1))
    assert table.iloc[2].before_n == 10


def test_plots_render(tmp_path):
    rows = [("t", c, s, d, q, (1.0 if c == "before" else 0.5) + q / 100)
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
