"""experiments/manysite.py's analysis on crafted tables: the migration
queue, the most migrations at once, each session's RTT before and after."""
import json

import numpy as np
import pandas as pd

from experiments import manysite as M


def _mig():
    return pd.DataFrame({"trial": ["run-1"] * 3, "vm": ["v1x1", "v2x1", "v3x1"],
                         "src": ["p2x1", "p3x1", "p4x1"], "dst": ["p1x1", "p2x1", "p3x1"],
                         "migration_start_s": [20.0, 26.0, 31.0],
                         "migration_done_s": [26.0, 31.0, 37.0]})


def test_queue_waits_run_from_the_first_decision_to_the_migrate_call():
    dec = pd.DataFrame({"trial": ["run-1"] * 5, "vm": ["v1x1", "v2x1", "v2x1", "v3x1", "v3x1"],
                        "decided_s": [20.0, 22.0, 26.0, 24.0, 31.0],
                        "decision": ["migrate", "wait", "migrate", "wait", "migrate"]})
    q = M.queue_rows(_mig(), dec)
    assert q.wait_s.tolist() == [0.0, 4.0, 7.0]
    assert q.decided_s.tolist() == [20.0, 22.0, 24.0]


def test_max_overlap_counts_migrations_under_way_at_once():
    assert M.max_overlap(_mig()) == 1          # one ends as the next starts
    two = _mig().assign(migration_done_s=[27.0, 31.0, 37.0])
    assert M.max_overlap(two) == 2
    assert M.max_overlap(_mig().iloc[:0]) == 0


def test_session_rtt_per_phase():
    probes = pd.DataFrame({"trial": "run-1", "src": "t1x1", "dst": "v1x1",
                           "seq": range(1, 7), "t_s": range(6),
                           "rtt_ms": [2.0, 2.2, np.nan, 1.0, 0.8, 1.2],
                           "phase": ["before", "before", "during", "after", "after", "after"]})
    r = M.session_rtt(probes).iloc[0]
    assert (r.before_median_ms, r.after_median_ms) == (2.1, 1.0)
    assert (r.during_pings, r.during_lost, r.after_lost) == (1, 1, 0)
    assert np.isnan(r.unmoved_median_ms) and r.unmoved_pings == 0


def test_placement_rows_name_the_client_sites_host(tmp_path):
    d = tmp_path / "run-1"
    d.mkdir()
    (d / "trial.json").write_text(json.dumps({"condition": "run", "trial": 1}))
    (d / "summary.json").write_text(json.dumps({
        "sessions": [{"client": "t12x1", "vm": "v12x1"}, {"client": "t1x1", "vm": "v1x1"}],
        "initial_placement": {"v12x1": "p1x1", "v1x1": "p2x1"},
        "final_placement": {"v12x1": "p12x1", "v1x1": "p2x1"}}))
    p = M.placement_rows([str(d)])
    assert p.values.tolist() == [["run-1", "v12x1", "t12x1", "p12x1", "p1x1", "p12x1"],
                                 ["run-1", "v1x1", "t1x1", "p1x1", "p2x1", "p2x1"]]
