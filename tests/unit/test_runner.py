"""The scenario runner's steps one by one, with a fake testbed (no root):
sessions start at their time, OVCT is switched on at ovct_on_at_s, each
phase is measured once when steady, and the summary is written."""
import json

from controller import events as E
from testbed import scenario
from testbed.probes import Probes
from testbed.runner import ScenarioRun, steady_at, update_gaps


class FakeProc:
    def __init__(self, cmd):
        self.cmd = cmd
        self.returncode = None

    def poll(self):
        return self.returncode

    def terminate(self):
        self.returncode = -15

    def wait(self, timeout=None):
        return self.returncode


class FakeHost:
    def __init__(self, started):
        self.started = started

    def popen(self, cmd, **kw):
        p = FakeProc(cmd)
        self.started.append(p)
        return p


class FakeClient:
    def __init__(self, path):
        self.events = E.Tail(path)


class FakeTestbed:
    python = "python3"
    _start = Probes._start        # the real choice (FakeHost is on this machine)

    def __init__(self, run):
        self.started = []
        self.switched = []
        self.client = FakeClient(run.events)
        self.now = 0.0
        self.log = E.EventLog(run.events, clock=lambda: self.now)

    def host(self, name):
        return FakeHost(self.started)

    def ip(self, name):
        return {"vm1": "10.0.0.101", "vm2": "10.0.0.102"}[name]

    def start_session(self, client, vm, log, port=5900, duration_s=60.0, input_rate_hz=2.0):
        # the real command line, run by the fake host
        return Probes.start_session(self, client, vm, self.python, log, port, duration_s,
                                    input_rate_hz)

    def set_ovct(self, on):
        self.switched.append(on)
        return self.log.emit(E.Enabled(why="t", switched_mono=50.0, changed=True,
                                       running_sessions=1, decided_sessions=1))


def _scenario(**extra):
    data = {"name": "t", "sessions": [
        {"client": "tcl1", "vm": "vm1", "start_s": 2, "duration_s": 20},
        {"client": "tcl2", "vm": "vm2", "start_s": 5, "duration_s": 20}], **extra}
    return scenario.parse(data)


def _run(tmp_path, scn, **kw):
    r = ScenarioRun(scn, str(tmp_path / "run"), log=lambda m: None, **kw)
    r.tb = FakeTestbed(r.run)
    return r


def test_sessions_start_when_due_in_their_clients_namespace(tmp_path):
    r = _run(tmp_path, _scenario())
    r.start_due_sessions(1.9)
    assert r.running == []
    r.start_due_sessions(2.0)
    assert [x.spec.client for x in r.running] == ["tcl1"]
    cmd = r.running[0].proc.cmd
    # the search path on the command line: over ssh (cluster mode) a
    # Popen environment would not reach the command
    from testbed import ROOT
    assert cmd[:5] == ["env", f"PYTHONPATH={ROOT}", "python3", "-m", "testbed.thinclient"]
    assert "10.0.0.101" in cmd
    assert cmd[cmd.index("--log") + 1].endswith("thinclients/tcl1-vm1-0.jsonl")
    r.start_due_sessions(100)
    assert [x.spec.vm for x in r.running] == ["vm1", "vm2"] and r.pending == []
    r.stop_clients()
    assert all(x.proc.returncode == -15 for x in r.running)


def test_steady_at():
    # after: steady_after_s past the phase's start (or the last migration's end)
    assert steady_at("after", 30.0, 5.0, 22.0, 10.0) == 35.0
    # before: as late as it can be, ending ~2 s before the switch
    assert steady_at("before", 2.0, 5.0, 22.0, 10.0) == 10.0
    assert steady_at("before", 2.0, 5.0, 9.0, 10.0) == 7.0


def test_ovct_switched_on_once_and_each_phase_measured_once(tmp_path):
    measured = []
    r = _run(tmp_path, _scenario(ovct_on_at_s=12), on_steady=lambda tb, ph: measured.append(ph)
             or {"phase": ph}, steady_after_s=1.0, measure_s=2.0)
    r.t0 = 0.0
    assert r.policy["enabled"] is False and r.phase == "before"
    for now in (2.0, 5.0, 7.9):
        r.tick(now)
    assert measured == []                  # "before" waits until 12 - 2 - 2 = 8 s
    r.tick(8.0)
    r.tick(9.0)
    assert measured == ["before"]
    r.tick(12.0)
    assert r.tb.switched == [True] and r.phase == "after"
    assert r.summary["ovct_switched_on_mono"] == 50.0
    # a migration in flight: not steady until it ended and steady_after_s passed
    r.tb.now = 12.5
    r.tb.log.emit(E.MigrationStart(session=1, vm="vm1", src="pm2", dst="pm1", mode="fast"))
    r.tick(14.0)
    assert measured == ["before"]
    r.tb.now = 14.2
    r.tb.log.emit(E.MigrationDone(session=1, vm="vm1", src="pm2", dst="pm1"))
    r.tick(14.5)
    assert r.phase_from == 14.2 and measured == ["before"]
    r.tick(15.2)
    assert measured == ["before", "after"] and r.summary["steady"]["after"] == {"phase": "after"}
    r.tick(20.0)
    assert measured == ["before", "after"]


def test_update_gaps(tmp_path):
    path = tmp_path / "tc.jsonl"
    lines = [{"event": "start", "mono": 0}, {"event": "update", "mono": 1.0},
             {"event": "update", "mono": 1.5}, {"event": "update", "mono": 3.0},
             {"event": "closed", "mono": 3.5}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    g = update_gaps(str(path))
    assert (g["updates"], g["max_gap_s"], g["closed_early"], g["failed"]) == (3, 1.5, True, False)
