"""Scenario files: the shipped one is valid; bad ones name the field and
stop before anything starts."""
import os

import pytest

from controller.config import ConfigError
from testbed import ROOT, cli, scenario

PAPER = os.path.join(ROOT, "experiments", "scenarios", "paper.yaml")


def test_shipped_paper_scenario():
    s = scenario.load(PAPER)
    topo = s.build_topology()
    assert [(v.name, v.host) for v in topo.vms] == [("vm1", "pm2"), ("vm2", "pm2")]
    assert s.sessions[0].client == "tcl1" and s.sessions[0].vm == "vm1"
    assert s.ovct.update_mode == "fast" and s.end_s() == 62.0


def test_vm_start_hosts_can_be_overridden():
    s = scenario.parse({"name": "x", "vms": [{"name": "vm2", "host": "pm1"}]})
    assert {v.name: v.host for v in s.build_topology().vms} == {"vm1": "pm2", "vm2": "pm1"}


def test_multisite_scenario():
    s = scenario.parse({"name": "m", "topology": {"kind": "multisite", "sites": 3, "vms": 1},
                        "sessions": [{"client": "t1x1", "vm": "v1x1"}]})
    assert len(s.build_topology().vms) == 3


@pytest.mark.parametrize("data,needle", [
    ({"name": "x", "sesions": []}, "sesions: unknown key"),
    ({"name": "x", "sessions": [{"client": "pm1", "vm": "vm1"}]},
     "sessions.0.client: 'pm1' is not a thin client"),
    ({"name": "x", "sessions": [{"client": "tcl1", "vm": "vm9"}]}, "sessions.0.vm"),
    ({"name": "x", "sessions": [{"client": "tcl1", "vm": "vm1", "duration_s": 0}]},
     "sessions.0.duration_s"),
    ({"name": "x", "sessions": [{"client": "tcl1", "vm": "vm1", "port": "5900"}]},
     "sessions.0.port"),
    ({"name": "x", "vms": [{"name": "vm1", "host": "tcl2"}]}, "vms.0.host"),
    ({"name": "x", "vms": [{"name": "vm1", "host": "pm1"}, {"name": "vm1", "host": "pm2"}]},
     "vms.1.name"),
    ({"name": "x", "topology": {"kind": "ring"}}, "topology.kind"),
    ({"name": "x", "topology": {"kind": "multisite", "sites": 2, "core": 3}},
     "core must not exceed sites"),
    ({"name": "x", "ovct": {"update_mode": "slow"}}, "ovct.update_mode"),
    ({"name": "x", "probes": [{"src": "tcl1", "dst": "nowhere"}]}, "probes.0.dst"),
    ({"sessions": []}, "name: Field required"),
    ({"name": "x", "ovct_on_at_s": 30, "sessions": [{"client": "tcl1", "vm": "vm1"}],
      "ovct": {"enabled": False}}, "ovct_on_at_s: set, but ovct.enabled is false"),
    ({"name": "x", "ovct_on_at_s": 60, "sessions": [{"client": "tcl1", "vm": "vm1"}]},
     "ovct_on_at_s: 60 s is not before the last session ends (60 s)"),
    ({"name": "x", "ovct_on_at_s": -1}, "ovct_on_at_s"),
])
def test_bad_scenarios_name_the_field(data, needle):
    with pytest.raises(ConfigError) as exc:
        scenario.parse(data, "s.yaml")
    assert needle in str(exc.value)


def test_ovct_run_with_a_bad_field_starts_nothing(tmp_path, capsys, monkeypatch):
    def refuse(*_a, **_kw):    # a validation regression fails here, never starts a run
        raise AssertionError("a scenario run would have started")
    monkeypatch.setattr(cli, "run_scenario", refuse)
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(PAPER).read().replace("update_mode: fast", "update_mode: quick"))
    out = tmp_path / "out"
    assert cli.main(["run", str(bad), "--out", str(out)]) == 2
    assert "ovct.update_mode" in capsys.readouterr().err
    assert not out.exists()
