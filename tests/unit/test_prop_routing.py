"""Property-based tests of the router against the fake flow tables, on
random multi-site topologies (sites 1..12, clients 0..3, KVM hosts 0..2,
core 1..5): every learnt host is reachable from every other one, at its
exact port, along a shortest path, without loops, by the flows of the
packet's class -- whatever the order in which switches, link directions
and hosts appear, and after switches reconnect or leave and return; a
ring core survives losing a link; a host that moves is reached at its new
port and leaves no stale next hop.  After each step Router.installed is
checked against what the tables hold, and the tables against the
shortest-path trees of the known hosts.

The fake tables are strategies.IndexedTable (FakeOFTable, indexed for
speed; the last test checks the two agree)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller import flows as F
from controller import routing
from controller.routing import ARP_REQUEST, Packet
from testbed.topology import multisite_topology

from tests.unit.fakeoftable import FakeOFTable
from tests.unit.helpers import Harness
from tests.unit.strategies import (PACKETS, assert_full_reachability,
                                   assert_installed_matches_table, assert_routes_are_trees,
                                   harness, multisite_params, route_flows)

SETTINGS = settings(max_examples=15, deadline=None)


def switch_ports(topo) -> dict[int, set[int]]:
    """Every switch's ports, as Harness.connect_all gives them."""
    return {s.dpid: {ln.a_port if ln.a == s.name else ln.b_port
                     for ln in topo.links if s.name in (ln.a, ln.b)}
            for s in topo.switches}


def bring_up(h: Harness, data, only: set[int] | None = None) -> list:
    """Switch enters, directed link discoveries and host announcements in a
    random order that a real network allows: a link direction or a host is
    seen only once the switches involved are connected.  ``only``: bring
    up just these switches (the others are connected already), their links
    and their hosts.  Returns the order of events for the failure report."""
    ports = switch_ports(h.topo)
    mine = set(ports) if only is None else only
    pending = ([("switch", d) for d in sorted(mine)]
               + [("link", a, b) for a, b in sorted(h.peer.items())
                  if a[0] in mine or b[0] in mine]
               + [("host", x.name) for x in h.topo.hosts if h.where(x.name)[0] in mine])
    entered: set[int] = set(ports) - mine
    log = []
    while pending:
        ready = [e for e in pending
                 if e[0] == "switch"
                 or (e[0] == "link" and e[1][0] in entered and e[2][0] in entered)
                 or (e[0] == "host" and h.where(e[1])[0] in entered)]
        ev = data.draw(st.sampled_from(ready))
        pending.remove(ev)
        log.append(ev)
        if ev[0] == "switch":
            entered.add(ev[1])
            h.feed(h.router.switch_enter(ev[1], ports[ev[1]], h.now))
        elif ev[0] == "link":
            h.feed(h.router.link_add(ev[1], ev[2]))
        else:
            h.announce(ev[1])
    return log


def wipe(h: Harness, dpid: int) -> None:
    """The switch loses its tables (a restart, not fail-secure)."""
    h.feed([F.FlowMod(dpid, F.DELETE, table_id=t) for t in (F.TABLE_DETECT, F.TABLE_ROUTE)])


def switch_leaves(h: Harness, dpid: int, away: set[int], for_good: bool) -> None:
    """A switch's controller connection drops, and os-ken reports its links
    gone.  Within the grace the router changes nothing (the switch forwards
    on with its flows); ``for_good``: it stays away past the grace, and the
    router forgets it and its links, keeps the hosts behind it (unreachable
    until it is back), and every flow towards what is now unreachable goes
    (on the switches still connected: those ``away`` keep whatever they had)."""
    hosts, links = dict(h.router.view.hosts), dict(h.router.view.links)
    table = {d: list(t) for d, t in h.table.tables.items()}
    h.feed(h.router.switch_leave(dpid, h.now))
    for src, dst in sorted(links.items()):
        if dpid in (src[0], dst[0]):
            h.feed(h.router.link_delete(src))
    away.add(dpid)
    assert h.router.view.hosts == hosts and h.router.view.links == links
    assert {d: list(t) for d, t in h.table.tables.items()} == table, "nothing sent"
    if for_good:
        h.now += routing.SWITCH_GRACE_S
        h.feed(h.router.tick(h.now))
        assert dpid not in h.router.view.ports
        assert not any(dpid in (s[0], d[0]) for s, d in h.router.view.links.items())
    assert h.router.view.hosts == hosts
    assert_installed_matches_table(h, skip=away)
    assert_routes_are_trees(h, skip=away)


@SETTINGS
@given(params=multisite_params(), packet=st.sampled_from(PACKETS))
def test_every_learnt_host_reaches_every_other(params, packet):
    h = harness(multisite_topology(**params))
    h.connect_all()
    for x in h.topo.hosts:
        h.announce(x.name)
    assert set(h.router.view.hosts) == {x.ip for x in h.topo.hosts}
    assert_full_reachability(h, packet)
    assert_installed_matches_table(h)
    assert_routes_are_trees(h)
    assert h.router.reconcile() == []


@SETTINGS
@given(params=multisite_params(), packet=st.sampled_from(PACKETS), data=st.data())
def test_reachability_whatever_the_order_of_switches_links_and_hosts(params, packet, data):
    """Also after a switch reconnects (a new connection before the loss of
    the old is noticed), with its tables kept or lost."""
    h = harness(multisite_topology(**params))
    bring_up(h, data)
    if data.draw(st.booleans(), label="a switch reconnects"):
        assert_full_reachability(h, packet)
        dpid = data.draw(st.sampled_from(sorted(h.dpid.values())), label="reconnecting")
        if data.draw(st.booleans(), label="it loses its tables"):
            wipe(h, dpid)
        h.feed(h.router.switch_enter(dpid, switch_ports(h.topo)[dpid], h.now))
    assert set(h.router.view.hosts) == {x.ip for x in h.topo.hosts}
    assert_full_reachability(h, packet)
    assert_installed_matches_table(h)
    assert_routes_are_trees(h)
    assert h.router.reconcile() == []


@settings(SETTINGS, max_examples=12)
@given(params=multisite_params(), packet=st.sampled_from(PACKETS), data=st.data())
def test_switches_that_leave_and_return_one_by_one(params, packet, data):
    """One or two switches leave -- their connections only, or for longer
    than the grace --, each keeping or losing its tables, and come back one by one (their links and hosts found again, in any order):
    while one is still away, nothing -- not even what a returning switch
    kept -- routes towards what is unreachable; once all are back, every
    host reaches every other again."""
    h = harness(multisite_topology(**params))
    bring_up(h, data)
    gone = data.draw(st.lists(st.sampled_from(sorted(h.dpid.values())), min_size=1,
                              max_size=2, unique=True), label="leaving")
    away: set[int] = set()
    for_good = data.draw(st.booleans(), label="away past the grace")
    for dpid in gone:
        if data.draw(st.booleans(), label=f"{dpid} loses its tables"):
            wipe(h, dpid)
        switch_leaves(h, dpid, away, for_good)
    for dpid in gone:
        bring_up(h, data, only={dpid})
        away.discard(dpid)
        assert_installed_matches_table(h, skip=away)
        assert_routes_are_trees(h, skip=away)
    # every link was seen again: the verification deadline deletes nothing
    assert not h.router.unverified_links
    h.now += routing.LINK_VERIFY_S
    assert h.router.tick(h.now) == []
    assert set(h.router.view.hosts) == {x.ip for x in h.topo.hosts}
    assert_full_reachability(h, packet)
    assert_installed_matches_table(h)
    assert_routes_are_trees(h)
    assert h.router.reconcile() == []


@settings(SETTINGS, max_examples=12)
@given(params=multisite_params(min_core=3), packet=st.sampled_from(PACKETS), data=st.data())
def test_ring_core_survives_losing_any_link(params, packet, data):
    """A ring of K >= 3 core switches stays connected without any one of
    its links: every host still reaches every other on a shortest path of
    what is left, and no flow uses the lost link; once it is back, the
    original shortest paths return."""
    h = harness(multisite_topology(**params))
    if data.draw(st.booleans(), label="random bring-up order"):
        bring_up(h, data)
    else:
        h.connect_all()
        for name in data.draw(st.permutations([x.name for x in h.topo.hosts]),
                              label="announce order"):
            h.announce(name)
    ring = sorted((a, b) for a, b in h.peer.items()
                  if a < b and a[0] <= params["core"] and b[0] <= params["core"])
    assert len(ring) == params["core"]
    a, b = data.draw(st.sampled_from(ring), label="lost link")
    lost = data.draw(st.sampled_from(("both", "a->b", "b->a")), label="directions lost")
    if lost in ("both", "a->b"):
        h.feed(h.router.link_delete(a))
    if lost in ("both", "b->a"):
        h.feed(h.router.link_delete(b))
    del h.peer[a], h.peer[b]          # what still uses the link drops packets
    assert_full_reachability(h, packet)
    assert_installed_matches_table(h)
    assert_routes_are_trees(h)
    for (dpid, _ip), entries in route_flows(h.table).items():
        assert all((dpid, e.out_port) not in (a, b) for e in entries)
    h.peer[a], h.peer[b] = b, a
    if lost in ("both", "a->b"):
        h.feed(h.router.link_add(a, b))
    if lost in ("both", "b->a"):
        h.feed(h.router.link_add(b, a))
    assert_full_reachability(h, packet)
    assert_installed_matches_table(h)
    assert_routes_are_trees(h)


class MovingHarness(Harness):
    """A harness whose hosts may have moved to another (dpid, port)."""

    def __init__(self, topo):
        super().__init__(topo)
        self.moved: dict[str, tuple[int, int]] = {}

    def where(self, host):
        return self.moved.get(host) or super().where(host)


@SETTINGS
@given(params=multisite_params(), packet=st.sampled_from(PACKETS), data=st.data())
def test_a_moved_host_is_reached_at_its_new_port_with_no_stale_next_hop(params, packet, data):
    h = harness(multisite_topology(**params), MovingHarness)
    h.connect_all()
    for x in h.topo.hosts:
        h.announce(x.name)
    for _ in range(data.draw(st.integers(1, 3), label="moves")):
        host = h.topo.host(data.draw(st.sampled_from([x.name for x in h.topo.hosts]),
                                     label="host"))
        # a free edge port: one some host left, or a new one
        dpid = data.draw(st.sampled_from(sorted(h.dpid.values())), label="to switch")
        used = {h.where(x.name) for x in h.topo.hosts}
        free = [p for p in h.router.view.edge_ports(dpid) if (dpid, p) not in used]
        new_port = max(switch_ports(h.topo)[dpid] | set(h.router.view.ports[dpid])) + 1
        port = data.draw(st.sampled_from([*free, new_port]), label="to port")
        if port == new_port:
            h.feed(h.router.port_add(dpid, port))
        how = data.draw(st.sampled_from(("garp", "arp", "ipv4", "rarp")), label="seen by")
        others = [x for x in h.topo.hosts if x is not host]
        peer = data.draw(st.sampled_from(others)) if others else host
        if how == "garp":
            pkt = Packet(host.mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST,
                         host.mac, host.ip, "00:00:00:00:00:00", host.ip)
        elif how == "arp":
            pkt = Packet(host.mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST,
                         host.mac, host.ip, "00:00:00:00:00:00", peer.ip)
        elif how == "ipv4":
            pkt = Packet(host.mac, peer.mac, F.ETH_IPV4, ip_src=host.ip, ip_dst=peer.ip)
        else:
            pkt = Packet(host.mac, "ff:ff:ff:ff:ff:ff", F.ETH_RARP)
        h.feed(h.router.packet_in(dpid, port, pkt, b"moved", h.now))
        h.moved[host.name] = (dpid, port)
        loc = h.router.view.hosts[host.ip]
        assert (loc.dpid, loc.port) == (dpid, port)

        # every other host reaches it at its new port (and it them)
        others_names = [x.name for x in others]
        for other in others_names:
            hops = h.trace(other, host.ip, **packet[0])
            assert hops[-1] == (dpid, port), f"{other} -> moved {host.name}: {hops}"
        assert_full_reachability(h, packet, sources=[host.name])
        # no switch keeps a next hop off the new shortest-path tree
        tree = h.router.view.out_ports_to(dpid, port)
        flows = route_flows(h.table)
        for d in h.dpid.values():
            outs = {e.out_port for e in flows.get((d, host.ip), [])}
            assert outs == ({tree[d]} if d in tree else set()), \
                f"dpid {d}: flows for {host.ip} output {outs}, tree says {tree.get(d)}"
        assert_installed_matches_table(h)
    assert {ip: (x.dpid, x.port) for ip, x in h.router.view.hosts.items()} == {
        x.ip: h.where(x.name) for x in h.topo.hosts}
    assert_full_reachability(h, packet)
    assert_routes_are_trees(h)
    assert h.router.reconcile() == []


@settings(max_examples=10, deadline=None)
@given(params=multisite_params(max_sites=6), data=st.data())
def test_indexed_table_agrees_with_the_fake_table(params, data):
    """The tests above run on strategies.IndexedTable for speed: replaying
    the same flow-mods (adds, modifies, deletes) into a plain FakeOFTable
    gives the same entries and the same lookups."""
    h = harness(multisite_topology(**params))
    bring_up(h, data)
    ring = sorted(a for a in h.peer if a[0] <= params["core"] and h.peer[a][0] <= params["core"])
    if ring:
        h.feed(h.router.link_delete(data.draw(st.sampled_from(ring))))
    x = data.draw(st.sampled_from(h.topo.hosts))
    dpid = data.draw(st.sampled_from(sorted(h.dpid.values())))
    h.feed(h.router.port_add(dpid, 99))
    h.feed(h.router.packet_in(dpid, 99, Packet(x.mac, "ff:ff:ff:ff:ff:ff", F.ETH_RARP),
                              b"", h.now))
    ref = FakeOFTable()
    ref.apply(h.sent)
    assert ref.tables == h.table.tables
    for d in h.dpid.values():
        for y in h.topo.hosts:
            for fields, _cls in PACKETS:
                assert (ref.pipeline(d, eth_type=F.ETH_IPV4, ipv4_dst=y.ip, **fields)
                        == h.table.pipeline(d, eth_type=F.ETH_IPV4, ipv4_dst=y.ip, **fields))
