"""Cluster placement (pure): sites go round the servers, the core stays
with the controller, hosts follow their switch."""
import pytest

from testbed.topology import TopologyError, multisite_topology, paper_topology, place


def test_paper_on_two_servers_puts_the_second_site_remote():
    where = place(paper_topology(), ["here", "srv2"])
    assert where == {"s1": "here", "s2": "here", "s3": "srv2", "tcl1": "here",
                     "tcl2": "here", "pm1": "here", "pm2": "srv2"}


def test_sites_go_round_the_servers_and_only_switch_links_cross():
    topo = multisite_topology(sites=5, clients=2, hosts=1, core=3)
    where = place(topo, ["a", "b", "c"])
    assert {where[f"e{s}"] for s in range(1, 6)} == {"a", "b", "c"}
    assert [where[f"e{s}"] for s in range(1, 6)] == ["a", "b", "c", "a", "b"]
    assert {where[f"c{k}"] for k in range(1, 4)} == {"a"}
    for ln in topo.links:
        a_host = ln.a not in {s.name for s in topo.switches}
        b_host = ln.b not in {s.name for s in topo.switches}
        if a_host or b_host:
            assert where[ln.a] == where[ln.b], ln


def test_one_server_places_everything_there():
    topo = multisite_topology(sites=3)
    assert set(place(topo, ["only"]).values()) == {"only"}


def test_fixed_switches_take_their_hosts_along():
    where = place(paper_topology(), ["here", "srv2"], {"s2": "srv2", "s3": "here"})
    assert (where["s2"], where["tcl1"], where["pm1"]) == ("srv2",) * 3
    assert (where["s3"], where["pm2"]) == ("here", "here")


@pytest.mark.parametrize("servers,fixed,message", [
    ([], None, "cluster placement needs at least one server"),
    (["a", "a"], None, "servers named twice: ['a', 'a']"),
    (["a", "b"], {"s9": "b"}, "placement names switch 's9', which the topology does not "
                              "have (switches: s1, s2, s3)"),
    (["a", "b"], {"s3": "c"}, "placement puts s3 on server 'c', which is not one of the "
                              "servers (a, b)"),
])
def test_bad_placements_name_what_is_wrong(servers, fixed, message):
    with pytest.raises(TopologyError) as exc:
        place(paper_topology(), servers, fixed)
    assert str(exc.value) == message
