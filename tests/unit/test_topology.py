import networkx as nx
import pytest

from testbed import topology as T


def test_paper_topology_shape_and_fixed_ports():
    t = T.paper_topology()
    assert [s.name for s in t.switches] == ["s1", "s2", "s3"]
    assert [s.dpid for s in t.switches] == [1, 2, 3]
    assert {h.name: T.Topology.attachment(t, h.name) for h in t.hosts} == {
        "tcl1": ("s2", 2), "tcl2": ("s2", 3), "pm1": ("s2", 4), "pm2": ("s3", 2)}
    assert t.port("s1", "s2") == 1 and t.port("s1", "s3") == 2
    assert t.port("s2", "s1") == 1 and t.port("s3", "s1") == 1
    assert [h.name for h in t.hosts_by_role(T.CLIENT)] == ["tcl1", "tcl2"]
    assert [h.name for h in t.hosts_by_role(T.KVM_HOST)] == ["pm1", "pm2"]
    assert {h.ip for h in t.hosts} == {"10.0.0.1", "10.0.0.2", "10.0.0.11", "10.0.0.12"}
    g = t.graph()
    assert nx.shortest_path(g, "tcl1", "pm2") == ["tcl1", "s2", "s1", "s3", "pm2"]


@pytest.mark.parametrize("sites,clients,hosts,core", [(4, 2, 1, 1), (6, 3, 2, 3), (2, 1, 0, 2),
                                                      (12, 1, 1, 4)])
def test_multisite_sizes_and_addresses(sites, clients, hosts, core):
    t = T.multisite_topology(sites, clients, hosts, core)
    assert len(t.switches) == core + sites
    assert len(t.hosts_by_role(T.CLIENT)) == sites * clients
    assert len(t.hosts_by_role(T.KVM_HOST)) == sites * hosts
    assert len({h.ip for h in t.hosts}) == len(t.hosts)
    assert len({s.dpid for s in t.switches}) == len(t.switches)
    g = t.graph()
    assert nx.is_connected(g)
    core_links = [ln for ln in t.switch_links() if ln.a.startswith("c") and ln.b.startswith("c")]
    assert len(core_links) == (0 if core == 1 else 1 if core == 2 else core)
    for s in range(1, sites + 1):
        assert t.port(f"e{s}", f"c{(s - 1) % core + 1}") == 1
        if clients:
            assert t.host(f"t{s}x1").ip == f"10.{s}.0.1"
            assert t.attachment(f"t{s}x1") == (f"e{s}", 2)
        if hosts:
            assert t.attachment(f"p{s}x1") == (f"e{s}", 2 + clients)


def test_ring_ports_fixed():
    t = T.multisite_topology(4, 1, 1, core=3)
    assert t.port("c1", "c2") == 1 and t.port("c2", "c1") == 2
    assert t.port("c3", "c1") == 1 and t.port("c1", "c3") == 2
    assert t.port("c1", "e1") == 3


@pytest.mark.parametrize("kwargs,field", [
    ({"sites": 0}, "sites"), ({"clients": -1}, "clients"), ({"core": 5, "sites": 4}, "core"),
    ({"sites": "4"}, "sites"), ({"clients": 0, "hosts": 0}, "client or host"),
])
def test_multisite_bad_parameters_named(kwargs, field):
    with pytest.raises(T.TopologyError, match=field):
        T.multisite_topology(**kwargs)


def test_build_by_name_and_errors():
    assert T.build("paper").name == "paper"
    assert len(T.build("multisite", sites=5).switches) == 6
    with pytest.raises(T.TopologyError, match="unknown topology"):
        T.build("mesh")
    with pytest.raises(T.TopologyError, match="multisite"):
        T.build("multisite", bogus=1)


def test_validate_catches_structural_errors():
    t = T.paper_topology()
    t.links.append(T.Link("tcl1", 0, "s3", 3))
    with pytest.raises(T.TopologyError, match="port 0 of tcl1"):
        t.validate()
    t = T.paper_topology()
    t.hosts.append(T.Host("x", T.CLIENT, "10.0.0.1", "00:00:00:00:00:77"))
    with pytest.raises(T.TopologyError, match="duplicate host ip"):
        t.validate()


def test_duplicate_names_are_found_in_linear_time():
    """Every name given twice is reported once, sorted; on 20 000 hosts the
    check takes a fraction of a second (it used list.count: 2 s here, and
    minutes at the largest legal multisite size)."""
    t = T.paper_topology()
    t.hosts.append(T.Host("tcl2", T.CLIENT, "10.0.0.77", "00:00:00:00:00:77"))
    t.vms.append(T.VM("s1", "10.0.0.78", "00:00:00:00:00:78", "pm1"))
    t.vms.append(T.VM("tcl2", "10.0.0.79", "00:00:00:00:00:79", "pm1"))
    with pytest.raises(T.TopologyError, match=r"^duplicate node names: \['s1', 'tcl2'\]$"):
        t.validate()
    big = T.multisite_topology(40, 250, 250)
    assert len(big.hosts) == 20000
    big.hosts.append(big.hosts[0])
    # (its speed -- one pass, ~0.1 s for 20,000 hosts -- is a benchmark's
    # business, not a timed assertion on a shared machine)
    with pytest.raises(T.TopologyError, match=r"^duplicate node names: \['t1x1'\]$"):
        big.validate()


def test_mininet_adapter_builds_the_same_graph():
    pytest.importorskip("mininet.topo")
    from testbed.mn_topos import topos
    mt = topos["paper"]()
    assert sorted(mt.switches()) == ["s1", "s2", "s3"]
    assert mt.nodeInfo("s2")["dpid"] == "0000000000000002"
    assert mt.port("s2", "tcl1") == (2, 0)
    ms = topos["multisite"](4, 2, 1)
    assert len(ms.hosts()) == 12 and ms.nodeInfo("e3")["dpid"] == f"{103:016x}"
