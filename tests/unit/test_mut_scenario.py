"""testbed/scenario.py: which check refuses a bad scenario, by its message
(mutation testing and the reviewer's deliberate bugs, issue 14)."""
import pytest

from controller.config import ConfigError
from testbed import scenario


def refused(data) -> str:
    with pytest.raises(ConfigError) as exc:
        scenario.parse(data, "s.yaml")
    return str(exc.value)


def test_sessions_on_a_topology_without_vms_are_refused_as_such():
    msg = refused({"name": "x", "topology": {"kind": "multisite", "sites": 2, "vms": 0},
                   "sessions": [{"client": "t1x1", "vm": "v1x1"}]})
    assert "sessions: the topology has no VMs" in msg


def test_without_sessions_a_topology_without_vms_is_valid_and_ends_at_once():
    s = scenario.parse({"name": "x", "topology": {"kind": "multisite", "sites": 2, "vms": 0}})
    assert s.build_topology().vms == [] and s.end_s() == 0.0


def test_a_document_without_a_source_is_called_scenario_in_errors():
    with pytest.raises(ConfigError) as exc:
        scenario.parse({"name": "x", "sesions": []})
    assert str(exc.value).startswith("scenario: ")


def test_the_vms_get_the_scenarios_memory_size():
    s = scenario.parse({"name": "x", "vm_memory_mib": 512,
                        "topology": {"kind": "multisite", "sites": 2, "vms": 1}})
    assert [v.memory_mib for v in s.build_topology().vms] == [512, 512]
    assert [v.memory_mib for v in scenario.parse({"name": "x"}).build_topology().vms] == [256, 256]


@pytest.mark.parametrize("topology,name", [
    ({"kind": "paper"}, "vm9"),
    ({"kind": "paper"}, "VM1"),
    ({"kind": "multisite", "sites": 2, "vms": 1}, "vm1"),
])
def test_an_unknown_vm_in_the_vms_list_is_refused(topology, name):
    msg = refused({"name": "x", "topology": topology, "vms": [{"name": name, "host": "pm1"}]})
    assert f"vms.0.name: no VM {name!r} in the topology" in msg


def test_a_known_vm_in_the_vms_list_is_moved_there():
    s = scenario.parse({"name": "x", "topology": {"kind": "multisite", "sites": 2, "vms": 1},
                        "vms": [{"name": "v1x1", "host": "p1x1"}]})
    # v1x1 starts across the core, on p2x1; v2x1 stays where the topology puts it
    assert {v.name: v.host for v in s.build_topology().vms} == {"v1x1": "p1x1", "v2x1": "p1x1"}
