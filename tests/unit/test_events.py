"""The event schema: typed OVCT events round-trip through the log, readers
rebuild migrations and the in-flight state, a tail reads only whole new
lines, and the run-directory layout is the one everyone uses."""
import dataclasses
import json
import os

import pytest

from controller import events as E
from controller.rundir import RunDir, default_run


class Clock:
    def __init__(self):
        self.t = 10.0

    def __call__(self):
        return self.t


def test_every_ovct_event_round_trips_and_names_its_type(tmp_path):
    log = E.EventLog(str(tmp_path / "e.jsonl"), clock=Clock(), wall=lambda: 1.0)
    d = E.Decision(session=1, vm="vm1", src="pm2", decision="migrate", reason="r",
                   detect_to_decision_s=0.01, dst="pm1", current_hops=2, candidates=[])
    rec = log.emit(d)
    assert rec["type"] == "ovct_decision" and rec["phase"] == 2
    assert rec["from"] == "pm2" and rec["to"] == "pm1" and "src" not in rec
    assert E.typed(rec) == d
    stay = log.emit(E.Decision(session=2, vm="vm1", src="pm2", decision="stay", reason="x"))
    assert "to" not in stay and "candidates" not in stay        # optional and absent
    log.close()
    assert [r["event_id"] for r in E.read(str(tmp_path / "e.jsonl"))] == [1, 2]
    assert set(E.EVENT_TYPES) == {c.TYPE for c in E.EVENT_TYPES.values()}
    assert all(t.startswith("ovct_") for t in E.EVENT_TYPES)
    assert E.typed({"type": E.HOST_LEARNT, "ip": "x"}) is None


def _rec(ev, mono):
    return {"type": ev.TYPE, "mono": mono, "time": mono, **ev.payload()}


def test_migrations_and_activity_from_records():
    recs = [
        _rec(E.Detect(session=1, vm="vm1", vm_ip="10.0.0.101", vm_port=5900,
                      client_ip="10.0.0.1", client_port=4, client_switch=2,
                      client_switch_port=2, vm_switch=3, vm_host="pm2", detected_mono=1.0), 1.0),
        _rec(E.Decision(session=1, vm="vm1", src="pm2", decision="migrate", reason="r",
                        detect_to_decision_s=0.5, dst="pm1"), 1.5),
        _rec(E.Decision(session=2, vm="vm2", src="pm2", decision="wait", reason="w"), 1.6),
        _rec(E.MigrationStart(session=1, vm="vm1", src="pm2", dst="pm1", mode="fast"), 1.7),
    ]
    assert E.migration_activity(recs) == (True, None)
    recs += [_rec(E.VmSeen(session=1, vm="vm1", switch=2, port=4,
                           migration_start_to_seen_s=5.0), 6.7),
             _rec(E.NetworkUpdate(session=1, vm="vm1", mode="fast", trigger="t", dst="pm1",
                                  flow_mods=9), 6.71),
             _rec(E.MigrationDone(session=1, vm="vm1", src="pm2", dst="pm1", elapsed_ms=5000,
                                  downtime_ms=150), 8.0)]
    # vm2 still waits for a slot
    assert E.migration_activity(recs) == (True, 8.0)
    recs.append(_rec(E.Decision(session=2, vm="vm2", src="pm2", decision="stay", reason="s"), 8.1))
    assert E.migration_activity(recs) == (False, 8.0)
    (m,) = E.migrations(recs)
    assert m == {"session": 1, "vm": "vm1", "client": "10.0.0.1", "detected": 1.0,
                 "decision": "migrate", "reason": "r", "decided": 1.5,
                 "detect_to_decision_s": 0.5, "mode": "fast", "src": "pm2", "dst": "pm1",
                 "migration_started": 1.7, "vm_seen": 6.7, "network_updated": 6.71,
                 "trigger": "t", "flow_mods": 9, "migration_done": 8.0, "elapsed_ms": 5000,
                 "downtime_ms": 150, "released_frames": 0, "dropped_frames": 0}


def test_tail_reads_only_whole_new_lines(tmp_path):
    path = tmp_path / "e.jsonl"
    tail = E.Tail(str(path))
    assert tail.new() == []                                  # no file yet
    path.write_text(json.dumps({"type": "a"}) + "\n" + '{"type": "b"')
    assert [r["type"] for r in tail.new()] == ["a"]          # "b" is still being written
    with open(path, "a") as fh:
        fh.write(', "x": 1}\n' + json.dumps({"type": "a"}) + "\n")
    assert [r["type"] for r in tail.new()] == ["b", "a"]
    assert tail.count("a") == 2 and tail.new() == []


def test_read_skips_a_torn_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"type": "a"}\n{"typ\n{"type": "b"}\n')
    assert [r["type"] for r in E.read(str(path))] == ["a", "b"]
    assert E.read(str(tmp_path / "missing.jsonl")) == []


def test_run_dir_layout(tmp_path):
    run = RunDir(str(tmp_path / "r")).ensure("thinclients")
    assert os.path.isdir(run.thinclients)
    assert run.events.endswith("/r/events.jsonl") and run.state.endswith("/r/state.json")
    assert run.thinclient_log("tcl1", "vm1", 0).endswith("thinclients/tcl1-vm1-0.jsonl")
    assert run.ping_log("tcl2", "vm1").endswith("pings/tcl2-vm1.txt")
    assert run.failure_flows("t").endswith("failure-flows/t")
    assert run.read_json(run.summary, "none") == "none"
    run.write_json(run.summary, {"b": 1, "a": 2})
    assert run.read_json(run.summary) == {"a": 2, "b": 1}
    assert os.path.basename(default_run("paper")).startswith("paper-")


@pytest.mark.parametrize("cls", sorted(E.EVENT_TYPES.values(), key=lambda c: c.TYPE))
def test_each_event_class_builds_from_a_record_of_its_own(cls):
    sample = {f.name: 1 for f in dataclasses.fields(cls)}
    ev = cls(**sample)
    assert cls.from_record(_rec(ev, 0.0)) == ev


def test_architecture_doc_lists_every_ovct_event_with_its_fields():
    from controller.rundir import ROOT
    text = open(os.path.join(ROOT, "docs", "ARCHITECTURE.md"), encoding="utf-8").read()
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`ovct_"):
            documented[cells[0].strip("`")] = (cells[1], cells[2])
    code = {}
    for t, c in E.EVENT_TYPES.items():
        keys = [f.metadata.get("key", f.name) + ("?" if f.name in c.OPTIONAL else "")
                for f in dataclasses.fields(c)]
        code[t] = (str(c.PHASE or "-"), ", ".join(keys))
    assert documented == code
