"""Every bad scenario or policy file is refused before anything starts,
with a message that names the field (or says what is wrong with the file):
encodings, duplicate keys, infinities and absurd magnitudes, URI schemes,
addresses, probes from VMs, session ports OVCT would not see, names that
are paths, topology parameters the kind ignores, bandwidths the link model
does not honour."""
import os

import pytest
import yaml

from controller import config as cfg
from controller.rundir import ROOT
from testbed import scenario

PAPER = open(os.path.join(ROOT, "experiments", "scenarios", "paper.yaml"), encoding="utf-8").read()
GOOD_HV = {"name": "pm1", "uri": "qemu+unix:///system?socket=/x", "address": "10.0.0.11"}


def _scn(**over) -> bytes:
    """The shipped scenario with some top-level keys replaced, as a file."""
    data = yaml.safe_load(PAPER)
    data.update(over)
    return yaml.safe_dump(data).encode()


SCENARIOS = [
    # (file bytes, what the message must name)
    (PAPER.encode("utf-16"), "not UTF-8"),
    (PAPER.encode("latin-1") + "\n# caf\xe9\n".encode("latin-1"), "not UTF-8"),
    (b"name: x\nname: y\n", "given twice"),
    (b"name: x\nsessions: []\nsessions: []\n", "given twice"),
    (b"\x00\x01name: x", "NUL"),
    (b"name: [unclosed\n", "not valid YAML"),
    (b"- a\n- b\n", "must be a mapping"),
    (_scn(name="/etc/x"), "name"),
    (_scn(name="../up"), "name"),
    (_scn(name="a b"), "name"),
    (_scn(stats_interval_s=float("inf")), "stats_interval_s"),
    (_scn(stats_interval_s=float("nan")), "stats_interval_s"),
    (_scn(stats_interval_s=1e308), "stats_interval_s"),
    (_scn(stats_interval_s=10 ** 400), "stats_interval_s"),
    (_scn(link_bw_mbit=5000), "link_bw_mbit"),
    (_scn(link_bw_mbit=0), "link_bw_mbit"),
    (_scn(ovct_on_at_s=float("inf")), "ovct_on_at_s"),
    (_scn(sessions=[{"client": "tcl1", "vm": "vm1", "duration_s": float("inf")}]), "duration_s"),
    (_scn(sessions=[{"client": "tcl1", "vm": "vm1", "start_s": 1e308}]), "start_s"),
    (_scn(sessions=[{"client": "tcl1", "vm": "vm1", "input_rate_hz": 1e9}]), "input_rate_hz"),
    (_scn(sessions=[{"client": "tcl1", "vm": "vm1", "port": 22}]), "sessions.0.port"),
    (_scn(sessions=[{"client": "tcl1", "vm": "vm1", "port": 70000}]), "port"),
    (_scn(probes=[{"src": "vm1", "dst": "tcl1"}]), "probes.0.src"),
    (_scn(probes=[{"src": "tcl1", "dst": "vm1", "interval_ms": 0}]), "interval_ms"),
    (_scn(probes=[{"src": "tcl1", "dst": "vm1", "interval_ms": 1e12}]), "interval_ms"),
    (_scn(topology={"kind": "paper", "sites": 6}), "topology.sites"),
    (_scn(topology={"kind": "multisite", "sites": 0}), "sites"),
    (_scn(topology={"kind": "multisite", "sites": 10 ** 6}), "sites"),
    (_scn(topology={"kind": "ring"}), "topology.kind"),
    (_scn(vm_memory_mib=10 ** 12), "vm_memory_mib"),
    (_scn(host_cpus=0), "host_cpus"),
    (_scn(host_memory_mib=-5), "host_memory_mib"),
    (_scn(accel="xen"), "accel"),
    (_scn(ovct={"migration_timeout_s": 1e10}), "ovct.migration_timeout_s"),
    (_scn(ovct={"migration_timeout_s": float("inf")}), "ovct.migration_timeout_s"),
    (_scn(ovct={"hold_time_s": -1}), "ovct.hold_time_s"),
    (_scn(ovct={"hold_time_s": 10 ** 400}), "ovct.hold_time_s"),
    (_scn(ovct={"max_concurrent_migrations": 10 ** 9}), "max_concurrent_migrations"),
    (_scn(ovct={"migration_bandwidth_mbit": -1}), "migration_bandwidth_mbit"),
    (_scn(ovct={"vnc_ports": [[5999, 5900]]}), "vnc_ports"),
    (_scn(ovct={"session_idle_s": 0}), "session_idle_s"),
    (_scn(vms=[{"name": "vm1", "host": "tcl1"}]), "vms.0.host"),
    (_scn(vms=[{"name": "vm9", "host": "pm1"}]), "vms.0.name"),
    (_scn(sessions=[{"client": "pm1", "vm": "vm1"}]), "sessions.0.client"),
    (_scn(description="x" * 20_000), "description"),
    (b"name: x\ntrue: 1\n", "True: a key must be a name"),
    (b"name: x\n'': 1\n", "'': a key must be a name"),
    (b"name: x\novct: {5: 1}\n", "ovct.5: a key must be a name"),
    (b"name: x\n? [a, b]\n: 1\n", "a key that is a list"),
    (b"[" * 5000, "nested too deeply"),
]

CONFIGS = [
    ({"hypervisors": [dict(GOOD_HV, uri="qemu+ext:///system?command=/bin/sh")]}, "uri"),
    ({"hypervisors": [dict(GOOD_HV, uri="qemu+ssh://root@evil/system")]}, "uri"),
    ({"hypervisors": [dict(GOOD_HV, uri="qemu+unix:///system?socket=/x y")]}, "uri"),
    ({"hypervisors": [dict(GOOD_HV, address="not-an-ip")]}, "address"),
    ({"hypervisors": [dict(GOOD_HV, address="10.0.0.300")]}, "address"),
    ({"hypervisors": [dict(GOOD_HV, address="10.0.0.11/system?x")]}, "address"),
    ({"hypervisors": [GOOD_HV, dict(GOOD_HV, name="pm2", address="10.0.0.12")]},
     "duplicate uri"),
    ({"hypervisors": [dict(GOOD_HV, name="../pm1")]}, "name"),
    ({"hypervisors": [dict(GOOD_HV, attach=[2, -1])]}, "attach"),
    ({"hypervisors": [dict(GOOD_HV, memory_mib=10 ** 12)]}, "memory_mib"),
    ({"ovct": {"migration_timeout_s": float("inf")}}, "ovct.migration_timeout_s"),
    ({"ovct": {"min_idle_cpus": float("nan")}}, "ovct.min_idle_cpus"),
    ({"ovct": {"hold_time_s": 10 ** 400}}, "ovct.hold_time_s"),
]


@pytest.mark.parametrize("raw,needle", SCENARIOS, ids=range(len(SCENARIOS)))
def test_a_bad_scenario_file_is_refused_naming_what_is_wrong(tmp_path, raw, needle):
    path = tmp_path / "bad.yaml"
    path.write_bytes(raw)
    with pytest.raises(cfg.ConfigError) as exc:
        scenario.load(str(path))
    assert needle in str(exc.value), str(exc.value)


@pytest.mark.parametrize("data,needle", CONFIGS, ids=range(len(CONFIGS)))
def test_a_bad_policy_or_inventory_is_refused_naming_the_field(tmp_path, data, needle):
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.parse(data, "c.yaml")
    assert needle in str(exc.value), str(exc.value)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(cfg.ConfigError):
        cfg.load(str(path))


def test_the_shipped_files_and_their_round_trip_still_load(tmp_path):
    s = scenario.load(os.path.join(ROOT, "experiments", "scenarios", "paper.yaml"))
    assert scenario.parse(s.model_dump(mode="json")) == s
    c = cfg.parse({"hypervisors": [dict(GOOD_HV, attach=[2, 4])]})
    path = tmp_path / "c.yaml"
    path.write_text(cfg.dump(c))
    assert cfg.load(str(path)) == c
