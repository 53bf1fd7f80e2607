"""testbed/topology.py: what the other unit tests never call (mutation
testing, issue 14)."""
import pytest

from testbed import topology as T


def test_a_switch_is_found_by_name_and_an_unknown_one_is_a_key_error():
    t = T.paper_topology()
    s = t.switch("s2")
    assert s.name == "s2" and s is next(x for x in t.switches if x.name == "s2")
    assert [t.switch(x.name) for x in t.switches] == t.switches
    with pytest.raises(KeyError, match="s99"):
        t.switch("s99")


# -- the paper network, every field (the report's Fig. 25) ------------------------------

def test_the_paper_network_is_pinned_field_by_field():
    """Sites, MACs, both ends of every link and the VMs (with the memory
    asked for): what mn_topos, the inventory and the scenarios read."""
    t = T.paper_topology(vm_memory_mib=512)
    assert t.name == "paper"
    assert t.switches == [T.Switch("s1", 1), T.Switch("s2", 2), T.Switch("s3", 3)]
    assert t.hosts == [
        T.Host("tcl1", T.CLIENT, "10.0.0.1", "00:00:00:00:00:01", site=2),
        T.Host("tcl2", T.CLIENT, "10.0.0.2", "00:00:00:00:00:02", site=2),
        T.Host("pm1", T.KVM_HOST, "10.0.0.11", "00:00:00:00:00:0b", site=2),
        T.Host("pm2", T.KVM_HOST, "10.0.0.12", "00:00:00:00:00:0c", site=3),
    ]
    assert t.links == [
        T.Link("s1", 1, "s2", 1), T.Link("s1", 2, "s3", 1),
        T.Link("tcl1", 0, "s2", 2), T.Link("tcl2", 0, "s2", 3),
        T.Link("pm1", 0, "s2", 4), T.Link("pm2", 0, "s3", 2),
    ]
    assert t.vms == [
        T.VM("vm1", "10.0.0.101", "52:54:00:00:00:01", "pm2", 512),
        T.VM("vm2", "10.0.0.102", "52:54:00:00:00:02", "pm2", 512),
    ]
    assert [v.memory_mib for v in T.paper_topology().vms] == [256, 256]


# -- the multi-site network -------------------------------------------------------------

def test_a_multisite_network_is_pinned_field_by_field():
    """Two sites on two core switches, two clients and three KVM hosts per
    site and three VMs each, started round robin on the next site's hosts:
    names, addresses, MACs, sites, both ends of every link."""
    t = T.multisite_topology(sites=2, clients=2, hosts=3, core=2, vms=3, vm_memory_mib=512)
    assert t.name == "multisite-2x2c3h-core2"
    assert t.switches == [T.Switch("c1", 1), T.Switch("c2", 2),
                          T.Switch("e1", 101), T.Switch("e2", 102)]
    hosts = []
    for s in (1, 2):
        hosts += [T.Host(f"t{s}x{i}", T.CLIENT, f"10.{s}.0.{i}", f"00:00:00:0{s}:00:0{i}", s)
                  for i in (1, 2)]
        hosts += [T.Host(f"p{s}x{j}", T.KVM_HOST, f"10.{s}.1.{j}", f"00:00:00:0{s}:01:0{j}", s)
                  for j in (1, 2, 3)]
    assert t.hosts == hosts
    assert t.links == [
        T.Link("c1", 1, "c2", 1),
        T.Link("e1", 1, "c1", 2),
        T.Link("t1x1", 0, "e1", 2), T.Link("t1x2", 0, "e1", 3),
        T.Link("p1x1", 0, "e1", 4), T.Link("p1x2", 0, "e1", 5), T.Link("p1x3", 0, "e1", 6),
        T.Link("e2", 1, "c2", 2),
        T.Link("t2x1", 0, "e2", 2), T.Link("t2x2", 0, "e2", 3),
        T.Link("p2x1", 0, "e2", 4), T.Link("p2x2", 0, "e2", 5), T.Link("p2x3", 0, "e2", 6),
    ]
    assert t.vms == [
        T.VM("v1x1", "10.1.2.1", "52:54:00:00:01:01", "p2x1", 512),
        T.VM("v1x2", "10.1.2.2", "52:54:00:00:01:02", "p2x2", 512),
        T.VM("v1x3", "10.1.2.3", "52:54:00:00:01:03", "p2x3", 512),
        T.VM("v2x1", "10.2.2.1", "52:54:00:00:02:01", "p1x1", 512),
        T.VM("v2x2", "10.2.2.2", "52:54:00:00:02:02", "p1x2", 512),
        T.VM("v2x3", "10.2.2.3", "52:54:00:00:02:03", "p1x3", 512),
    ]


def test_a_single_core_switch_numbers_its_site_ports_from_one():
    t = T.multisite_topology(sites=3, clients=1, hosts=0)
    assert [(ln.a, ln.a_port, ln.b, ln.b_port) for ln in t.switch_links()] == [
        ("e1", 1, "c1", 1), ("e2", 1, "c1", 2), ("e3", 1, "c1", 3)]


def test_the_default_multisite_network():
    """4 sites, 2 clients and 1 KVM host each, one core switch, no VMs;
    VMs asked for get 256 MiB."""
    t = T.multisite_topology()
    assert t.name == "multisite-4x2c1h-core1" and not t.vms
    assert len(t.hosts_by_role(T.CLIENT)) == 8 and len(t.hosts_by_role(T.KVM_HOST)) == 4
    assert [v.memory_mib for v in T.multisite_topology(vms=1).vms] == [256] * 4


@pytest.mark.parametrize("name,hi,extra", [
    ("sites", 250, {"clients": 1, "hosts": 0}),
    ("clients", 250, {"sites": 1, "hosts": 0}),
    ("hosts", 250, {"sites": 1, "clients": 0}),
    ("core", 99, {"sites": 100, "clients": 1, "hosts": 0}),
    ("vms", 250, {"sites": 1, "clients": 0, "hosts": 1}),
])
def test_each_size_parameter_stops_at_its_bound_and_is_named(name, hi, extra):
    assert T.multisite_topology(**extra, **{name: hi}).validate()
    lo = 1 if name in ("sites", "core") else 0
    for bad in (hi + 1, lo - 1):
        with pytest.raises(T.TopologyError) as exc:
            T.multisite_topology(**extra, **{name: bad})
        assert str(exc.value) == f"{name} must be an integer in [{lo}, {hi}], got {bad}"


@pytest.mark.parametrize("kwargs,message", [
    ({"clients": 0, "hosts": 0}, "a site needs at least one client or host"),
    ({"sites": 2, "core": 3}, "core must not exceed sites"),
    ({"hosts": 0, "vms": 1}, "vms need at least one KVM host per site (hosts >= 1)"),
])
def test_inconsistent_multisite_parameters_are_refused_saying_why(kwargs, message):
    with pytest.raises(T.TopologyError) as exc:
        T.multisite_topology(**kwargs)
    assert str(exc.value) == message


def test_an_unknown_kind_lists_the_known_ones():
    with pytest.raises(T.TopologyError) as exc:
        T.kind("mesh")
    assert str(exc.value) == "unknown topology 'mesh'; known: multisite, paper"


# -- the graph and the look-ups -----------------------------------------------------------

def test_the_graph_carries_each_node_s_kind_and_addresses_and_each_edge_s_ports():
    g = T.paper_topology().graph()
    assert dict(g.nodes["s2"]) == {"kind": "switch", "dpid": 2}
    assert dict(g.nodes["pm1"]) == {"kind": T.KVM_HOST, "ip": "10.0.0.11",
                                    "mac": "00:00:00:00:00:0b"}
    assert dict(g.nodes["tcl2"])["kind"] == T.CLIENT
    assert g.edges["s1", "s3"]["ports"] == {"s1": 2, "s3": 1}
    assert g.edges["pm2", "s3"]["ports"] == {"pm2": 0, "s3": 2}


@pytest.mark.parametrize("lookup,key", [
    ("host", "nohost"), ("vm", "novm"), ("attachment", "nohost"),
])
def test_a_failed_look_up_names_what_it_looked_for(lookup, key):
    with pytest.raises(KeyError) as exc:
        getattr(T.paper_topology(), lookup)(key)
    assert exc.value.args == (key,)


def test_a_failed_port_look_up_names_both_nodes():
    with pytest.raises(KeyError) as exc:
        T.paper_topology().port("s2", "s3")
    assert exc.value.args == (("s2", "s3"),)


# -- validate: every refusal, with its message --------------------------------------------

def refusal(t):
    with pytest.raises(T.TopologyError) as exc:
        t.validate()
    return str(exc.value)


def test_duplicate_dpids_are_refused():
    t = T.paper_topology()
    t.switches[2] = T.Switch("s3", 2)
    assert refusal(t) == "duplicate switch dpids"


def test_an_unknown_host_role_is_refused_naming_it():
    t = T.paper_topology()
    t.hosts[0] = T.Host("tcl1", "printer", "10.0.0.1", "00:00:00:00:00:01", 2)
    assert refusal(t) == "host tcl1: unknown role 'printer'"


def test_a_host_name_fits_a_linux_interface_name_with_its_eth0():
    """IFNAMSIZ: 15 characters; 'abcdefghij-eth0' is the longest that fits."""
    def with_name(name):
        t = T.paper_topology()
        t.hosts[0] = T.Host(name, T.CLIENT, "10.0.0.1", "00:00:00:00:00:01", 2)
        t.links[2] = T.Link(name, 0, "s2", 2)
        return t
    assert with_name("abcdefghij").validate()
    assert refusal(with_name("abcdefghijk")) == (
        "host name 'abcdefghijk' too long for an interface name")
    assert refusal(with_name("abcdefghijkl")) == (
        "host name 'abcdefghijkl' too long for an interface name")


@pytest.mark.parametrize("memory_mib,vcpus,ok", [
    (32, 1, True), (65536, 64, True), (31, 1, False), (65537, 1, False),
    (256, 0, False), (256, 65, False), (31, 64, False), (65537, 64, False),
])
def test_a_vm_s_memory_and_vcpus_have_bounds(memory_mib, vcpus, ok):
    t = T.paper_topology()
    t.vms[0] = T.VM("vm1", "10.0.0.101", "52:54:00:00:00:01", "pm2", memory_mib, vcpus)
    if ok:
        assert t.validate() is t
    else:
        assert refusal(t) == "vm vm1: memory_mib/vcpus out of range"


def test_a_link_to_an_unknown_node_is_refused_naming_it():
    t = T.paper_topology()
    t.links.append(T.Link("ghost", 0, "s1", 9))
    assert refusal(t) == "link to unknown node 'ghost'"


def test_a_disconnected_topology_is_refused():
    t = T.paper_topology()
    t.links.remove(T.Link("s1", 2, "s3", 1))
    assert refusal(t) == "topology is not connected"


def test_a_host_with_two_links_is_refused():
    t = T.paper_topology()
    t.links.append(T.Link("pm1", 1, "s3", 3))
    assert refusal(t) == "host pm1 must have exactly one link"
