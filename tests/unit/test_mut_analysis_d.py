"""experiments/analysis.py's decision, session and probe tables on crafted
run directories: the edges of each trial's window, the fields each row
copies from the controller's events, sessions and decisions with parts
missing, and where each ping of a background probe falls against its VM's
move (mutation testing, the survivors of ``_decisions``, ``decision_rows``,
``session_rows`` and ``probe_rows``)."""
import json
import math

from experiments import analysis as A


def _plain(df):
    """A table's rows as lists, NaN written as None (missing either way)."""
    return [[None if isinstance(x, float) and math.isnan(x) else x for x in row]
            for row in df.values.tolist()]


def _ev(kind, mono, **kw):
    return json.dumps({"type": kind, "mono": mono, "time": mono + 1000.0, **kw}) + "\n"


def _paired_policy_trial(tmp_path, n=1):
    """A paired trial (sessions start at mono 100, OVCT switched on at 160):

    * session 1 (v1) detected right at the trial's start, deferred at once
      with a full prediction, ends at 200 after 100 s;
    * session 2 (v2) detected at 130, never decided, never ended (the run
      stopped first);
    * session 9 (v9) decided at 150.5 with no detection in the log (a
      restarted controller's log), no prediction;
    * session 3 (v3) detected right at the switch, deferred there, decided
      to migrate at 162.5 (its migration completes at 170), decided again
      at 175 (stay), ends at 190 after 30 s.
    """
    d = tmp_path / f"trial-{n}"
    (d / "thinclients").mkdir(parents=True)
    (d / "thinclients" / "t1-v1-0.jsonl").write_text(
        json.dumps({"event": "start", "mono": 100.0}) + "\n")
    (d / "trial.json").write_text(json.dumps({"condition": "paired", "trial": n}))
    (d / "summary.json").write_text(json.dumps({"steady": {}, "migrations": [],
                                                "ovct_switched_on_mono": 160.0}))
    lines = [
        _ev("ovct_detect", 100.0, session=1, vm="v1", client_ip="10.0.1.1",
            detected_mono=100.0),
        _ev("ovct_decision", 100.0, session=1, vm="v1", decision="defer", reason="too young",
            policy="breakeven", rates="prior", breakeven_s=88.0, cost_packets=1200,
            cost_bytes=340000, saving_pps=13.5, saving_bps=4200.0,
            **{"from": "p2", "to": "p1"}),
        _ev("ovct_detect", 130.0, session=2, vm="v2", client_ip="10.0.2.1",
            detected_mono=130.0),
        _ev("ovct_decision", 150.5, session=9, vm="v9", decision="stay",
            reason="no closer host", **{"from": "p1"}),
        _ev("ovct_detect", 160.0, session=3, vm="v3", client_ip="10.0.3.1",
            detected_mono=160.0),
        _ev("ovct_decision", 160.0, session=3, vm="v3", decision="defer", reason="too young",
            policy="breakeven", rates="prior", breakeven_s=50.0, cost_packets=700,
            cost_bytes=800000, saving_pps=14.0, saving_bps=16000.0,
            **{"from": "p2", "to": "p1"}),
        _ev("ovct_decision", 162.5, session=3, vm="v3", decision="migrate", reason="pays off",
            policy="breakeven", rates="measured", breakeven_s=12.5, cost_packets=800,
            cost_bytes=900000, saving_pps=64.0, saving_bps=77000.0,
            **{"from": "p2", "to": "p1"}),
        _ev("ovct_migration_done", 170.0, session=3, vm="v3", **{"from": "p2", "to": "p1"}),
        _ev("ovct_decision", 175.0, session=3, vm="v3", decision="stay", reason="closest",
            policy="breakeven", rates="stale", breakeven_s=40.0, cost_packets=5,
            cost_bytes=6, saving_pps=0.5, saving_bps=7.0, **{"from": "p1"}),
        _ev("ovct_session_end", 190.0, session=3, vm="v3", reason="fin", duration_s=30.0),
        _ev("ovct_session_end", 200.0, session=1, vm="v1", reason="fin", duration_s=100.0),
    ]
    (d / "events.jsonl").write_text("".join(lines))
    return str(d)


def _decision_table(n):
    """The decision rows _paired_policy_trial's events give, written out."""
    return [
        [f"before-{n}", "before", 1, "v1", "10.0.1.1", 0.0, 0.0, "defer", "too young",
         "breakeven", "prior", 88.0, 1200, 340000, 13.5, 4200.0, "p2", "p1"],
        [f"before-{n}", "before", 9, "v9", None, 50.5, None, "stay", "no closer host",
         None, None, None, None, None, None, None, "p1", None],
        [f"after-{n}", "after", 3, "v3", "10.0.3.1", 0.0, 0.0, "defer", "too young",
         "breakeven", "prior", 50.0, 700, 800000, 14.0, 16000.0, "p2", "p1"],
        [f"after-{n}", "after", 3, "v3", "10.0.3.1", 2.5, 2.5, "migrate", "pays off",
         "breakeven", "measured", 12.5, 800, 900000, 64.0, 77000.0, "p2", "p1"],
        [f"after-{n}", "after", 3, "v3", "10.0.3.1", 15.0, 15.0, "stay", "closest",
         "breakeven", "stale", 40.0, 5, 6, 0.5, 7.0, "p1", None],
    ]


def test_decision_rows_copy_every_field_and_keep_each_trials_half_open_window(tmp_path):
    """Every ``ovct_decision`` gives one row in the trial whose window
    [start, end) holds it: one right at the first session's start is the
    "before" trial's, one right at the switch is the "after" trial's only.
    The row carries the detection's client address, the time since the
    trial's start and the session's age, the decision, its reason, policy,
    rates, break-even, cost (packets, bytes), saving (pps, bps), from and to.
    A decision of a session whose detection is not in the log keeps its
    fields; its client and age are unknown."""
    dec = A.decision_rows([_paired_policy_trial(tmp_path)])
    assert list(dec.columns) == A.DECISION_COLUMNS
    assert _plain(dec) == _decision_table(1)


def test_decision_rows_of_several_trials_are_all_kept_in_order(tmp_path):
    """Two trial folders: the rows of the first, then those of the second."""
    one = _paired_policy_trial(tmp_path / "a", 1)
    two = _paired_policy_trial(tmp_path / "b", 2)
    dec = A.decision_rows([one, two])
    assert _plain(dec) == _decision_table(1) + _decision_table(2)


def test_session_rows_edges_and_sessions_with_parts_missing(tmp_path):
    """One row per detected session, in the trial whose window [start, end)
    holds its detection (right at the start: in; right at the switch: the
    "after" trial's).  A session never decided nor ended has no end, no
    duration, 0 decisions, no final decision, no break-even nor rates.  A
    session that moved and was decided again afterwards keeps the
    break-even, rates and age of the decision that moved it; its final
    decision is the last one."""
    ses = A.session_rows([_paired_policy_trial(tmp_path)])
    assert list(ses.columns) == A.SESSION_COLUMNS
    assert _plain(ses) == [
        ["before-1", "before", 1, "v1", "10.0.1.1", 0.0, 100.0, 100.0, 1, "defer", False,
         None, 88.0, "prior"],
        ["before-1", "before", 2, "v2", "10.0.2.1", 30.0, None, None, 0, None, False,
         None, None, None],
        ["after-1", "after", 3, "v3", "10.0.3.1", 0.0, 30.0, 30.0, 3, "stay", True,
         2.5, 12.5, "measured"],
    ]


# -- background probes against their VM's move --------------------------------------------

def _probe_trial(tmp_path, summary_extra=None, drop=()):
    """A run with one background probe tcl2 -> vm1 pinging every second
    (wall = mono + 1000, the first session starts at mono 94).  Seq k is
    sent at wall 1093 + k (replies 125 ms later), except seq 2, sent at
    1095.1234 (1 ms RTT); seqs 3 and 10 are lost between replies, 15 and
    16 after the last one.  vm1's first migration failed (no network
    update); the next ran from 1100 to the network update at 1102 (+5 s
    margin: 1107); a later one (1120-1121) is not the first.  Another probe,
    listed first, left no log.  The log's header has a byte that is no
    UTF-8."""
    d = tmp_path / "site-4"
    (d / "thinclients").mkdir(parents=True)
    (d / "pings").mkdir()
    (d / "thinclients" / "tcl1-vm1-0.jsonl").write_text(
        json.dumps({"event": "start", "time": 1094.0, "mono": 94.0}) + "\n")
    (d / "trial.json").write_text(json.dumps({"condition": "site", "trial": 4}))
    (d / "events.jsonl").write_text(_ev("x", 90.0))
    lines = ["PING 10.0.0.101 (10.0.0.101) 56(84) bytes of data."]
    for k in range(1, 15):
        if k in (3, 10):
            continue
        if k == 2:
            lines.append("[1095.124400] 64 bytes from 10.0.0.101: icmp_seq=2 ttl=64 "
                         "time=1.00 ms")
        else:
            lines.append(f"[{1093 + k}.125000] 64 bytes from 10.0.0.101: icmp_seq={k} "
                         "ttl=64 time=125 ms")
    lines += ["", "--- 10.0.0.101 ping statistics ---",
              "16 packets transmitted, 12 received, 25% packet loss, time 15000ms"]
    text = ("\n".join(lines) + "\n").encode().replace(b"data.", b"data.\xff", 1)
    (d / "pings" / "tcl2-vm1.txt").write_bytes(text)
    summary = {"probes": {"tcl9->vm5": {"interval_ms": 10.0},
                          "tcl2->vm1": {"interval_ms": 1000.0}},
               "migrations": [{"vm": "vm1", "migration_started": 95.0},
                              {"vm": "vm1", "migration_started": 100.0,
                               "network_updated": 102.0},
                              {"vm": "vm1", "migration_started": 120.0,
                               "network_updated": 121.0}],
               **(summary_extra or {})}
    for k in drop:
        del summary[k]
    (d / "summary.json").write_text(json.dumps(summary))
    return str(d)


PROBE_TIMES = {1: 0.0, 2: 1.123, 3: 2.062, 15: 14.0, 16: 15.0}
PROBE_LOST = (3, 10, 15, 16)


def _probe_expected(phase_of):
    return [["site-4", "tcl2", "vm1", k, PROBE_TIMES.get(k, k - 1.0),
             None if k in PROBE_LOST else (1.0 if k == 2 else 125.0), phase_of(k)]
            for k in range(1, 17)]


def test_probe_rows_place_every_ping_against_the_vms_first_completed_move(tmp_path):
    """Each ping: its send time in s since the trial's start to the
    millisecond (seq 2's 1.1234 s is 1.123), its RTT (missing when lost;
    lost pings after the last reply one interval apart), and its phase
    against the first migration that updated the network: "before" the
    migrate call, "during" until 5 s after the update (that end excluded:
    the ping sent right at 1107 is "after"), "after" from then on.  A probe
    without a log is skipped, the next still read; a byte that is no UTF-8
    in the log does not stop it."""
    pr = A.probe_rows([_probe_trial(tmp_path)])
    assert list(pr.columns) == A.PROBE_COLUMNS
    assert _plain(pr) == _probe_expected(
        lambda k: "before" if k <= 6 else "during" if k <= 13 else "after")


def test_probe_rows_without_migrations_or_probes_in_the_summary(tmp_path):
    """A summary without a "migrations" list: every ping "unmoved"; without
    "probes": no rows, the columns still there."""
    pr = A.probe_rows([_probe_trial(tmp_path / "a", drop=("migrations",))])
    assert _plain(pr) == _probe_expected(lambda k: "unmoved")
    none = A.probe_rows([_probe_trial(tmp_path / "b", drop=("probes",))])
    assert none.empty and list(none.columns) == A.PROBE_COLUMNS
