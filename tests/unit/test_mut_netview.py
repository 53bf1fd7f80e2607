"""controller/netview.py on its own (mutation testing, issue 14): ports
and links coming and going, including switches and ports it never saw,
links LLDP saw in one direction only, and the tie-break of shortest paths."""
from controller.netview import HostLoc, NetView


def square():
    """s1 -p1- s3, s1 -p2- s2, s2 -p2- s4, s3 -p2- s4 (both directions)."""
    v = NetView()
    for d in (1, 2, 3, 4):
        v.add_switch(d, {1, 2, 3})
    for a, b in (((1, 1), (3, 1)), ((1, 2), (2, 1)), ((2, 2), (4, 1)), ((3, 2), (4, 2))):
        assert v.add_link(a, b) and v.add_link(b, a)
    return v


def test_ties_between_shortest_paths_go_to_the_lower_dpid():
    v = square()
    # s4 reaches s1 through s2 or s3 (2 hops each): s2, though s1's port to s3 is lower
    assert v.out_ports_to(1, 3) == {1: 3, 2: 1, 3: 1, 4: 1}
    assert v.hop_distance(4, 1) == 2 and v.hop_distance(4, 9) is None


def test_a_link_added_again_changes_nothing_and_keeps_the_hosts():
    v = square()
    v.hosts["10.0.0.1"] = HostLoc("10.0.0.1", "m1", 1, 3)
    assert v.add_link((1, 1), (3, 1)) is False
    assert "10.0.0.1" in v.hosts
    v.hosts["10.0.0.9"] = HostLoc("10.0.0.9", "m9", 1, 3)   # wrongly learnt on a link port
    assert v.add_link((1, 3), (9, 1)) is True and "10.0.0.9" not in v.hosts
    assert v.remove_link((7, 7)) is False and v.remove_link((1, 3)) is True


def test_a_port_only_lldp_saw_as_a_links_far_end_is_a_link_port():
    v = NetView()
    v.add_switch(1, {1, 2})
    v.add_switch(2, {1, 2})
    v.add_link((1, 1), (2, 1))                 # one direction seen so far
    assert v.is_link_port(1, 1) and v.is_link_port(2, 1) and not v.is_link_port(2, 2)
    assert v.edge_ports(2) == [2] and v.edge_ports(1) == [2]
    assert v.edge_ports(7) == []


def test_ports_of_a_switch_never_seen():
    v = NetView()
    v.add_port(5, 3)
    assert v.ports == {5: {3}}
    v.remove_port(6, 1)                        # nothing to remove: no error
    assert v.ports == {5: {3}}


def test_a_port_that_goes_takes_its_link_and_its_hosts_only():
    v = square()
    v.hosts["10.0.0.1"] = HostLoc("10.0.0.1", "m1", 1, 3)
    v.hosts["10.0.0.2"] = HostLoc("10.0.0.2", "m2", 2, 3)
    v.remove_port(1, 1)
    assert v.ports[1] == {2, 3} and (1, 1) not in v.links and v.links[(3, 1)] == (1, 1)
    assert v.hop_distance(1, 3) == 3                     # the s1-s3 link is gone
    v.remove_port(1, 3)
    assert list(v.hosts) == ["10.0.0.2"] and v.ports[1] == {2}


def test_a_switch_that_leaves_takes_its_links_in_both_directions_and_keeps_its_hosts():
    v = square()
    v.hosts["10.0.0.1"] = HostLoc("10.0.0.1", "m1", 1, 3)
    v.remove_switch(7)                         # never seen: no error
    v.remove_switch(1)
    assert sorted(v.ports) == [2, 3, 4]
    assert sorted(v.links) == [(2, 2), (3, 2), (4, 1), (4, 2)]
    assert "10.0.0.1" in v.hosts and v.hop_distance(2, 1) is None
