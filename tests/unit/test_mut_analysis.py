"""experiments/analysis.py on crafted data, what test_analysis.py and the
byte-for-byte regeneration of the reference run leave open (mutation
testing and the reviewer's deliberate bugs, issue 14)."""
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
