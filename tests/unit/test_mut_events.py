"""controller/events.py: the event log's record format on disk (mutation
testing, issue 14)."""
import json

from controller import events as E


def test_a_record_has_version_time_mono_id_and_type_and_is_written_with_sorted_keys(tmp_path):
    path = str(tmp_path / "events.jsonl")
    log = E.EventLog(path, clock=lambda: 7.5, wall=lambda: 1000.25)
    rec = log("x_thing", {"zeta": 1, "alpha": 2})
    log.close()
    assert rec == {"version": E.VERSION, "time": 1000.25, "mono": 7.5, "event_id": 1,
                   "type": "x_thing", "zeta": 1, "alpha": 2}
    line = open(path).read()
    assert line == json.dumps(rec, sort_keys=True) + "\n"
    assert list(json.loads(line)) == sorted(rec)
    assert log.path == path
    # a restarted controller appends, its ids going on from the last one
    again = E.EventLog(path, clock=lambda: 8.0, wall=lambda: 1001.0)
    assert again("y", {})["event_id"] == 2
    again.close()


def test_write_json_atomic_writes_sorted_keys_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "state.json"
    E.write_json_atomic(str(path), {"b": 1, "a": {"d": 2, "c": 3}})
    assert path.read_text() == '{"a": {"c": 3, "d": 2}, "b": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_bad_line_is_skipped_not_the_lines_after_it(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a"}\n\n  \nnot json\n{"type": "b"}\n')
    assert [r["type"] for r in E.read(str(path))] == ["a", "b"]


def test_migration_activity_follows_waits_starts_and_ends():
    recs = [{"type": E.OVCT_DECISION, "vm": "vm1", "decision": "wait", "mono": 1.0}]
    assert E.migration_activity(recs) == (True, None)          # waits for a slot
    recs += [{"type": E.OVCT_MIGRATION_START, "session": 1, "vm": "vm1", "mono": 2.0}]
    assert E.migration_activity(recs) == (True, None)
    recs += [{"type": E.OVCT_MIGRATION_DONE, "session": 1, "vm": "vm1", "mono": 10.0}]
    assert E.migration_activity(recs) == (False, 10.0)          # the wait ended with the start
    recs += [{"type": E.OVCT_MIGRATION_START, "session": 2, "vm": "vm2", "mono": 3.0},
             {"type": E.OVCT_MIGRATION_FAILED, "session": 2, "vm": "vm2", "mono": 5.0}]
    assert E.migration_activity(recs) == (False, 10.0)          # the last end, not the last record


def test_ids_go_on_after_records_without_one_and_start_at_1(tmp_path):
    assert E.EventLog(None)("x", {})["event_id"] == 1            # nothing kept, nothing read
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "old"}\n')                          # a record with no id
    log = E.EventLog(str(path))
    assert log("x", {})["event_id"] == 1
    log.close()
    log.close()                                                  # closing twice is harmless
    path.write_text('{"type": "old"}\n{"type": "x", "event_id": 7}\n{"type": "old"}\n')
    log = E.EventLog(str(path))
    assert log("x", {})["event_id"] == 8
    log.close()


def test_a_tail_reads_whole_lines_and_replaces_a_bad_byte(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type": "a", "who": "\xff"}\n{"type": "b"')
    t = E.Tail(str(path))
    assert t.new() == [{"type": "a", "who": "\ufffd"}]         # "b" is not whole yet
    with open(path, "ab") as fh:
        fh.write(b"}\n")
    assert t.new() == [{"type": "b"}] and t.count("a") == 1


def test_the_migration_rows_of_a_run_skip_what_is_no_session_event():
    from tests.unit.world import World
    w = World("fast")
    w.syn()
    w.land()
    # an untyped record and a typed one of no session first: both skipped
    recs = [{"type": "controller_start", "mono": 99.0},
            {"type": "ovct_enabled", "mono": 99.5}] + w.records
    (row,) = E.migrations(recs)
    assert (row["dest_started"], row["source_paused"], row["dest_resumed"]) == (100.3, 105.85, 106.0)
    assert row["network_confirmed"] == 106.0 and row["migration_done"] == 106.0
    assert row["transferred_bytes"] == 187904819 and "failed" not in row


def test_a_failed_migration_row_says_why():
    from tests.unit.world import World
    w = World("paper")
    w.hv.fail_next = "destination refused"
    w.syn()
    w.clock.t += 1
    w.run()
    (row,) = E.migrations(w.records)
    assert "destination refused" in row["failed"]


def test_a_migration_row_takes_libvirt_s_bytes_from_the_check_only_when_it_has_none():
    """The prediction check repeats the bytes libvirt sent: they fill a row
    whose migration_done said none (or is missing), and never overwrite it."""
    decide = {"type": E.Decision.TYPE, "session": 1, "decision": "migrate", "mono": 1.0}
    check = {"type": E.PredictionCheck.TYPE, "session": 1, "transferred_bytes": 789,
             "mono": 20.0}
    done = {"type": E.MigrationDone.TYPE, "session": 1, "transferred_bytes": 456, "mono": 10.0}
    (row,) = E.migrations([decide, check])
    assert row["transferred_bytes"] == 789
    (row,) = E.migrations([decide, {**done, "transferred_bytes": None}, check])
    assert row["transferred_bytes"] == 789
    (row,) = E.migrations([decide, done, check])
    assert row["transferred_bytes"] == 456
