"""controller/rundir.py: the run-directory layout its docstring and
docs/ARCHITECTURE.md give, path by path, and its JSON helpers (mutation
testing, issue 14)."""
import os
import re

import pytest

from controller import rundir as R


@pytest.mark.parametrize("path,name", [
    (lambda r: r.events, "events.jsonl"),
    (lambda r: r.stats, "stats.jsonl"),
    (lambda r: r.state, "state.json"),
    (lambda r: r.controller_config, "controller.yaml"),
    (lambda r: r.controller_log, "controller.log"),
    (lambda r: r.controller_out, "controller.out"),
    (lambda r: r.testbed_meta, "testbed.json"),
    (lambda r: r.hypervisors, "hypervisors.json"),
    (lambda r: r.vm_boot, "vm_boot.json"),
    (lambda r: r.thinclients, "thinclients"),
    (lambda r: r.thinclient_log("tcl1", "vm1", 2), "thinclients/tcl1-vm1-2.jsonl"),
    (lambda r: r.pings, "pings"),
    (lambda r: r.ping_log("tcl1", "vm1"), "pings/tcl1-vm1.txt"),
    (lambda r: r.flows, "flows"),
    (lambda r: r.failure_flows(), "failure-flows"),
    (lambda r: r.failure_flows("test_x"), "failure-flows/test_x"),
    (lambda r: r.host_logs("pm1"), "hosts/pm1"),
    (lambda r: r.console_log("vm1"), "vms/vm1-console.log"),
    (lambda r: r.placement, "placement.json"),
    (lambda r: r.summary, "summary.json"),
    (lambda r: r.trial, "trial.json"),
])
def test_every_path_of_the_layout(tmp_path, path, name):
    r = R.RunDir(str(tmp_path / "run"))
    assert path(r) == os.path.join(str(tmp_path), "run", *name.split("/"))


def test_a_run_directory_is_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = R.RunDir("run")
    assert os.fspath(r) == str(tmp_path / "run") and repr(r) == f"RunDir({str(tmp_path / 'run')!r})"
    r.ensure()
    assert os.listdir(tmp_path) == ["run"] and os.listdir(tmp_path / "run") == []
    r.ensure("pings", "flows")
    assert sorted(os.listdir(tmp_path / "run")) == ["flows", "pings"]


def test_default_runs_are_named_by_time_and_optionally_by_process(tmp_path):
    assert re.fullmatch(r"\d{8}-\d{6}", R.stamp())
    plain = R.default_run("up", str(tmp_path))
    assert re.fullmatch(re.escape(str(tmp_path)) + r"/up-\d{8}-\d{6}", plain)
    assert re.fullmatch(re.escape(str(tmp_path)) + rf"/up-\d{{8}}-\d{{6}}-{os.getpid()}",
                        R.default_run("up", str(tmp_path), pid=True))
    assert os.path.dirname(R.default_run("x")) == R.RUNS


def test_json_is_written_sorted_and_indented_and_read_back(tmp_path):
    r = R.RunDir(str(tmp_path))
    r.write_json(r.summary, {"b": 1, "a": [1, 2]})
    with open(r.summary, encoding="utf-8") as f:
        assert f.read() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}'
    r.write_json(r.trial, {"b": 1, "a": 2}, indent=None)
    with open(r.trial, encoding="utf-8") as f:
        assert f.read() == '{"a": 2, "b": 1}'
    assert r.read_json(r.summary) == {"a": [1, 2], "b": 1}
    assert r.read_json(r.placement, default={}) == {}
    with open(r.state, "w", encoding="utf-8") as f:
        f.write('{"half": ')
    assert r.read_json(r.state) is None
