"""experiments/policy_live.py's analysis on fixture trials: relayed traffic
compared over the same span, which sessions moved against their predicted
break-even, the prediction errors per policy, and a figure."""
import json
import os

import pandas as pd
import pytest

from experiments import policy_live as PL
from tests.unit.test_analysis import _policy_trial


def _with_stats(d: str, per_poll: int, migration_at: float | None, last: float) -> str:
    """Cumulative VNC packets on one switch, ``per_poll`` per 10 s from
    mono 100; 50,000 migration packets from ``migration_at`` on."""
    polls = []
    for k, t in enumerate(range(100, int(last) + 1, 10)):
        by = {"vnc": [per_poll * k, 1000 * per_poll * k]}
        if migration_at is not None and t >= migration_at:
            by["migration"] = [50_000, 60_000_000]
        polls.append({"type": "flow_stats", "dpid": 1, "mono": float(t), "by_class": by})
    with open(os.path.join(d, "stats.jsonl"), "w") as f:
        f.writelines(json.dumps(p) + "\n" for p in polls)
    return d


def _always(tmp_path) -> str:
    """Both sessions' VMs move at detection; the trial runs 10 s longer."""
    d = _policy_trial(tmp_path / "a", "always")
    ev = os.path.join(d, "events.jsonl")
    recs = [json.loads(ln) for ln in open(ev)]
    out = []
    for r in recs:
        if r["type"] == "ovct_decision" and r["decision"] == "defer":
            r["decision"] = "migrate"
            out.append(r)
            out.append({**r, "type": "ovct_migration_done", "mono": r["mono"] + 6})
        elif r["type"] == "ovct_decision" or r["type"] == "ovct_migration_done":
            continue              # the fixture's later move: already moved at detection
        else:
            out.append(r)
    with open(ev, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in out)
    return _with_stats(d, per_poll=1000, migration_at=110.0, last=280.0)


def _tables(out, dirs):
    for name, rows in PL.TABLES.items():
        rows(dirs).to_csv(os.path.join(out, name), index=False)


def test_policies_are_compared_over_the_same_span_with_their_decisions(tmp_path):
    b = _with_stats(_policy_trial(tmp_path / "b", "breakeven"), per_poll=2000,
                    migration_at=200.0, last=270.0)
    a = _always(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    _tables(str(out), [a, b])
    res = PL.analyse(str(out))
    # the breakeven trial's last poll is at 170 s: both are read there
    assert res["horizon_s"] == 170.0
    al, be = res["policies"]["always"], res["policies"]["breakeven"]
    # always: 17 polls of 1000 VNC packets plus one migration
    assert al["relayed_packets_median"] == 17 * 1000 + 50_000
    assert be["relayed_packets_median"] == 17 * 2000 + 50_000
    assert al["migration_packets_median"] == be["migration_packets_median"] == 50_000
    assert res["breakeven_vs_always_packets"] == pytest.approx(84_000 / 67_000 - 1)
    # always moved the 20 s session whose break-even was 88 s; breakeven did not
    assert (al["moved"], al["moved_but_ended_before_breakeven"]) == (2, 1)
    assert (be["moved"], be["moved_but_ended_before_breakeven"]) == (1, 0)
    assert be["outlasted_breakeven_but_stayed"] == 0
    assert os.path.getsize(out / "fig_policy_live.png") > 1000
    assert "policy" in pd.read_csv(out / "prediction_errors.csv").columns
    text = PL.report(res)
    assert "breakeven relays +25.4 % packets against always" in text


def test_totals_at_take_the_last_poll_at_or_before_the_horizon():
    tot = pd.DataFrame([("x-1", "x", 0.0, 0, 0), ("x-1", "x", 10.0, 5, 50),
                        ("x-1", "x", 20.0, 9, 90)], columns=["trial", "condition", "t_s",
                                                             "packets", "bytes"])
    got = PL.totals_at(tot, 15.0)
    assert got[["t_s", "packets", "bytes"]].values.tolist() == [[10.0, 5, 50]]
