"""Router logic against a fake flow table: learning, proxy ARP, flooding,
shortest-path trees, re-pointing a host that moved, malformed input."""
import pytest

from controller import classes as C
from controller import flows as F
from controller import routing
from controller.routing import ARP_REPLY, ARP_REQUEST, Packet, Router
from testbed.topology import multisite_topology, paper_topology

from tests.unit.helpers import Harness
from tests.unit.world import VM1, World


@pytest.fixture
def paper():
    h = Harness(paper_topology())
    h.connect_all()
    for name in ("tcl1", "tcl2", "pm1", "pm2"):
        h.announce(name)
    return h


def test_switches_get_static_flows():
    h = Harness(paper_topology())
    h.connect_all()
    for dpid in (1, 2, 3):
        hits = h.table.pipeline(dpid, eth_type=0x1234)
        assert [(e.table_id, e.out_port, e.goto_table) for e in hits] == [
            (F.TABLE_DETECT, None, F.TABLE_ROUTE), (F.TABLE_ROUTE, F.CONTROLLER, None)]
        assert h.table.lookup(dpid, F.TABLE_DETECT, eth_type=F.ETH_ARP).out_port == F.CONTROLLER
        assert h.table.lookup(dpid, F.TABLE_DETECT, eth_type=F.ETH_IPV6).out_port is None
        syn = h.table.pipeline(dpid, eth_type=F.ETH_IPV4, ip_proto=6, ipv4_dst="10.9.9.9",
                               tcp_dst=5901, tcp_src=40000, tcp_flags=F.TCP_SYN)
        assert syn[0].out_port == F.CONTROLLER and syn[0].goto_table == F.TABLE_ROUTE
        ack = h.table.pipeline(dpid, eth_type=F.ETH_IPV4, ip_proto=6, ipv4_dst="10.9.9.9",
                               tcp_dst=5901, tcp_src=40000, tcp_flags=F.TCP_SYN | F.TCP_ACK)
        assert ack[0].out_port is None                   # only the first SYN is copied
        other = h.table.pipeline(dpid, eth_type=F.ETH_IPV4, ip_proto=6, ipv4_dst="10.9.9.9",
                                 tcp_dst=22, tcp_src=40000, tcp_flags=F.TCP_SYN)
        assert other[0].out_port is None                 # non-VNC ports never copied


def test_hosts_learnt_on_their_edge_port(paper):
    hosts = paper.router.view.hosts
    assert {ip: (h.dpid, h.port) for ip, h in hosts.items()} == {
        "10.0.0.1": (2, 2), "10.0.0.2": (2, 3), "10.0.0.11": (2, 4), "10.0.0.12": (3, 2)}


def test_paths_follow_the_paper_topology(paper):
    assert paper.trace("tcl1", "10.0.0.12") == [(2, 1), (1, 2), (3, 2)]
    assert paper.trace("pm2", "10.0.0.1") == [(3, 1), (1, 1), (2, 2)]
    assert paper.trace("tcl1", "10.0.0.11") == [(2, 4)]


def test_every_flow_cookie_names_class_and_destination(paper):
    e = paper.table.lookup(1, eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.12",
                           ip_proto=6, tcp_dst=5901, tcp_src=40000)
    assert C.parse_cookie(e.cookie) == C.CookieInfo(True, C.VNC, "10.0.0.12")
    e = paper.table.lookup(1, eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.1",
                           ip_proto=6, tcp_dst=40000, tcp_src=5999)
    assert C.parse_cookie(e.cookie).cls == C.VNC
    e = paper.table.lookup(1, eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.12",
                           ip_proto=6, tcp_dst=49160, tcp_src=40000)
    assert C.parse_cookie(e.cookie).cls == C.MIGRATION
    e = paper.table.lookup(1, eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.12",
                           ip_proto=6, tcp_dst=6000, tcp_src=40000)
    assert C.parse_cookie(e.cookie) == C.CookieInfo(True, C.OTHER, "10.0.0.12")
    assert all(C.parse_cookie(m.cookie).ours for m in paper.sent if isinstance(m, F.FlowMod))


def test_proxy_arp_for_known_host(paper):
    tcl1 = paper.topo.host("tcl1")
    req = Packet(tcl1.mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST,
                 tcl1.mac, tcl1.ip, "00:00:00:00:00:00", "10.0.0.12")
    out = paper.router.packet_in(2, 2, req, b"req", 0.0)
    assert out == [F.ArpReply(2, 2, "00:00:00:00:00:0c", "10.0.0.12", tcl1.mac, tcl1.ip)]


def test_unknown_target_flooded_on_edge_ports_only_once_per_holdoff():
    h = Harness(paper_topology())
    h.connect_all()
    tcl1 = h.topo.host("tcl1")
    req = Packet(tcl1.mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST,
                 tcl1.mac, tcl1.ip, "00:00:00:00:00:00", "10.0.0.12")
    out = [m for m in h.router.packet_in(2, 2, req, b"req", 10.0) if isinstance(m, F.PacketOut)]
    assert {(m.dpid, m.ports) for m in out} == {(2, (3, 4)), (3, (2,))}
    again = h.router.packet_in(2, 2, req, b"req", 10.5)
    assert not [m for m in again if isinstance(m, F.PacketOut)]
    later = h.router.packet_in(2, 2, req, b"req", 11.5)
    assert [m for m in later if isinstance(m, F.PacketOut)]


def test_arp_reply_delivered_to_requester(paper):
    pm2, tcl1 = paper.topo.host("pm2"), paper.topo.host("tcl1")
    rep = Packet(pm2.mac, tcl1.mac, F.ETH_ARP, ARP_REPLY, pm2.mac, pm2.ip, tcl1.mac, tcl1.ip)
    assert paper.router.packet_in(3, 2, rep, b"rep", 0.0) == [F.PacketOut(2, (2,), b"rep")]


def test_nothing_learnt_on_inter_switch_ports(paper):
    before = dict(paper.router.view.hosts)
    pkt = Packet("00:00:00:00:00:99", "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST,
                 "00:00:00:00:00:99", "10.0.0.99", "00:00:00:00:00:00", "10.0.0.1")
    assert paper.router.packet_in(1, 1, pkt, b"x", 0.0) == []
    assert paper.router.view.hosts == before


def test_a_packet_that_outran_its_paths_flows_is_delivered_not_dropped():
    """Seen live (mn pingall under load): pm2 was learnt, s2 got its flows
    and forwarded pm1's first echo to s1 before s1 had them; s1's route
    miss came from a link port and was dropped, so the ping was lost."""
    h = Harness(paper_topology())
    h.connect_all()
    h.announce("pm1")
    pm2 = h.topo.host("pm2")
    pkt = Packet(pm2.mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST, pm2.mac, pm2.ip,
                 "00:00:00:00:00:00", pm2.ip)
    msgs = h.router.packet_in(*h.where("pm2"), pkt, b"garp", 0.0)
    h.table.apply([m for m in msgs if getattr(m, "dpid", None) == 2])   # s1, s3 not yet
    assert h.table.lookup(1, eth_type=F.ETH_IPV4, ipv4_dst=pm2.ip).out_port == F.CONTROLLER
    pm1 = h.topo.host("pm1")
    echo = Packet(pm1.mac, pm2.mac, F.ETH_IPV4, ip_src=pm1.ip, ip_dst=pm2.ip)
    before = dict(h.router.view.hosts)
    assert h.router.packet_in(1, 1, echo, b"echo", 0.0) == [F.PacketOut(3, (2,), b"echo")]
    assert h.router.view.hosts == before           # still learns nothing there
    # a detect-table copy was forwarded by the switch already; an unknown
    # destination has nowhere to go
    assert h.router.packet_in(1, 1, echo, b"echo", 0.0, F.TABLE_DETECT) == []
    stray = Packet(pm1.mac, pm2.mac, F.ETH_IPV4, ip_src=pm1.ip, ip_dst="10.0.0.77")
    assert h.router.packet_in(1, 1, stray, b"s", 0.0) == []
    arp = Packet(pm1.mac, pm2.mac, F.ETH_ARP, ARP_REQUEST, pm1.mac, pm1.ip,
                 "00:00:00:00:00:00", pm2.ip)
    assert h.router.packet_in(1, 1, arp, b"a", 0.0) == []


@pytest.mark.parametrize("pkt", [
    None,
    Packet("00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", F.ETH_ARP),           # no ARP body
    Packet("00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", F.ETH_IPV4),          # no IP fields
    Packet("00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", F.ETH_ARP, 7, "x", "y", "z", "w"),
    Packet("ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff", F.ETH_IPV4, ip_src="0.0.0.0",
           ip_dst="10.0.0.1"),
])
def test_malformed_or_useless_packets_change_nothing(paper, pkt):
    before = (dict(paper.router.view.hosts), dict(paper.router.installed))
    out = paper.router.packet_in(2, 2, pkt, b"\x00", 0.0)
    assert not [m for m in out if isinstance(m, F.FlowMod)]
    assert (paper.router.view.hosts, paper.router.installed) == before


def test_packet_in_from_unknown_switch_ignored():
    r = Router()
    pkt = Packet("00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", F.ETH_IPV4,
                 ip_src="10.0.0.1", ip_dst="10.0.0.2")
    assert r.packet_in(42, 1, pkt, b"", 0.0) == []


def test_host_move_repoints_with_one_modify_per_changed_switch(paper):
    """A VM keeps its IP and MAC when it moves: its flows are re-pointed with
    one cookie-selected MODIFY on each switch whose next hop changed."""
    pm2 = paper.topo.host("pm2")
    paper.sent.clear()
    rarp = Packet(pm2.mac, "ff:ff:ff:ff:ff:ff", F.ETH_RARP)
    paper.feed(paper.router.packet_in(2, 4, rarp, b"rarp", 1.0))   # now behind s2 port 4
    mods = [m for m in paper.sent if isinstance(m, F.FlowMod)]
    assert all(m.command == F.MODIFY for m in mods)
    assert {m.dpid for m in mods} == {1, 2, 3}   # s1, s3 turn round; s2 delivers locally
    assert all(m.cookie_mask == C.DEST_GEN_COOKIE_MASK and
               m.cookie == C.dest_cookie(pm2.ip, 0) for m in mods)
    assert paper.trace("tcl1", pm2.ip) == [(2, 4)]
    assert paper.trace("pm2", "10.0.0.1") == [(3, 1), (1, 1), (2, 2)]  # others unchanged


def test_link_loss_reroutes_and_unreachable_destinations_are_deleted(paper):
    paper.feed(paper.router.link_delete((1, 2)))
    paper.feed(paper.router.link_delete((3, 1)))
    # s3 is cut off: s1/s2 flows towards pm2 go, s3 keeps only its local host
    assert paper.table.lookup(1, eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.12").out_port == F.CONTROLLER
    assert paper.table.lookup(3, eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.1").out_port == F.CONTROLLER
    assert paper.trace("tcl1", "10.0.0.2") == [(2, 3)]


def test_reconnected_switch_gets_all_flows_again(paper):
    before = paper.table.count(3)
    paper.table.tables[3] = []
    paper.feed(paper.router.switch_enter(3, {1, 2}, 5.0))
    assert paper.table.count(3) == before
    assert paper.trace("pm2", "10.0.0.1") == [(3, 1), (1, 1), (2, 2)]


def test_reconcile_is_idempotent(paper):
    assert paper.router.reconcile() == []


def test_multisite_ring_full_connectivity_without_loops():
    topo = multisite_topology(sites=6, clients=2, hosts=1, core=3)
    h = Harness(topo)
    h.connect_all()
    for host in topo.hosts:
        h.announce(host.name)
    for a in topo.hosts:
        for b in topo.hosts:
            if a is not b:
                hops = h.trace(a.name, b.ip)
                assert hops[-1] == h.where(b.name)
                assert len(hops) <= 4   # edge, <=2 core hops (ring of 3), edge


def test_events_reported():
    seen = []
    h = Harness(paper_topology(), Router(events=lambda k, p: seen.append(k)))
    h.connect_all()
    h.announce("tcl1")
    assert seen.count("switch_enter") == 3 and seen.count("link_add") == 4
    assert "host_learnt" in seen


# -- switches that come and go ------------------------------------------------------------

def _ours(table, dpid):
    return [e for e in table.tables.get(dpid, []) if C.parse_cookie(e.cookie).ours]


def test_a_reconnecting_switch_gets_its_whole_table_and_loses_what_is_stale():
    w = World("fast")
    w.syn()                                       # vm1 migrating: staging flows exist
    table = w.h.table
    stale = F.destination_flows(2, "10.9.9.9", 3, w.h.router.plan)   # a route nobody wants
    table.apply(stale + [F.hold_destination(2, "10.8.8.8")])
    before = {(e.table_id, tuple(sorted(e.match.items())), e.priority, e.cookie, e.out_port)
              for e in _ours(table, 2)}
    w.h.feed(w.h.router.switch_enter(2, {1, 2, 3, 4}, w.clock()))
    after = {(e.table_id, tuple(sorted(e.match.items())), e.priority, e.cookie, e.out_port)
             for e in _ours(table, 2)}
    gone = before - after
    assert {C.parse_cookie(k[3]).dst for k in gone} == {"10.9.9.9", "10.8.8.8"}
    assert after <= before                         # everything intended is back
    assert any(C.parse_cookie(e.cookie).gen == 1 and C.parse_cookie(e.cookie).dst == VM1
               for e in _ours(table, 2))           # the staging copy too
    assert any(C.parse_cookie(e.cookie).cls == C.SESSION for e in _ours(table, 2))
    w.land()
    assert w.path() == [(2, 4)]


def test_a_switch_that_leaves_and_returns_keeps_the_hosts_behind_it():
    h = Harness(paper_topology())
    h.connect_all()
    for name in ("tcl1", "tcl2", "pm1", "pm2"):
        h.announce(name)
    assert h.trace("tcl1", "10.0.0.12") == [(2, 1), (1, 2), (3, 2)]
    h.feed(h.router.switch_leave(3, h.now))
    assert "10.0.0.12" in h.router.view.hosts      # not forgotten
    h.table.tables.pop(3, None)                     # the switch restarted empty
    h.feed(h.router.switch_enter(3, {1, 2}, h.now))
    h.feed(h.router.link_add((3, 1), (1, 2)))
    h.feed(h.router.link_add((1, 2), (3, 1)))
    assert h.trace("tcl1", "10.0.0.12") == [(2, 1), (1, 2), (3, 2)]
    assert h.trace("pm2", "10.0.0.1") == [(3, 1), (1, 1), (2, 2)]


def _paper_up():
    h = Harness(paper_topology())
    h.connect_all()
    for name in ("tcl1", "tcl2", "pm1", "pm2"):
        h.announce(name)
    return h


def test_a_switch_that_loses_its_controller_keeps_forwarding_for_the_grace():
    """s1 (the core) drops its controller connection; os-ken reports its
    links gone.  Nothing changes: tcl1 still reaches pm2 across s1 with the
    flows everyone kept, and no flow-mod is sent."""
    h = _paper_up()
    n = len(h.sent)
    h.feed(h.router.switch_leave(1, h.now))
    for src in ((1, 1), (2, 1), (1, 2), (3, 1)):
        h.feed(h.router.link_delete(src))
    assert len(h.sent) == n
    assert h.trace("tcl1", "10.0.0.12") == [(2, 1), (1, 2), (3, 2)]
    h.now += routing.SWITCH_GRACE_S - 1
    assert h.router.tick(h.now) == []
    # back in time: it is resynced, and LLDP confirms its links
    h.table.tables.pop(1, None)
    h.feed(h.router.switch_enter(1, {1, 2}, h.now))
    assert set(h.router.unverified_links) == {(1, 1), (2, 1), (1, 2), (3, 1)}
    for a, b in (((1, 1), (2, 1)), ((2, 1), (1, 1)), ((1, 2), (3, 1)), ((3, 1), (1, 2))):
        h.feed(h.router.link_add(a, b))
    assert not h.router.unverified_links
    h.now += routing.LINK_VERIFY_S
    assert h.router.tick(h.now) == []
    assert h.trace("tcl1", "10.0.0.12") == [(2, 1), (1, 2), (3, 2)]


def test_a_link_that_lldp_does_not_see_again_is_deleted_after_the_return():
    h = _paper_up()
    h.feed(h.router.switch_leave(3, h.now))
    h.feed(h.router.switch_enter(3, {1, 2}, h.now + 1))
    h.feed(h.router.link_add((3, 1), (1, 2)))         # only one direction comes back
    h.now += 1 + routing.LINK_VERIFY_S
    h.feed(h.router.tick(h.now))
    assert (1, 2) not in h.router.view.links and (3, 1) in h.router.view.links
    assert "10.0.0.12" not in {ip for (d, ip) in h.router.installed if d == 1}


def test_a_removed_switch_takes_the_unverified_links_that_end_at_it():
    """s1 returns (its links await LLDP) while s3 is away; when s3's grace
    ends, the links s1 -> s3 go with s3 at once, not LINK_VERIFY_S later."""
    h = _paper_up()
    t0 = h.now
    h.feed(h.router.switch_leave(3, t0))
    back = t0 + routing.SWITCH_GRACE_S - 1        # s1's links wait for LLDP from here
    h.feed(h.router.switch_leave(1, back - 1))
    h.feed(h.router.switch_enter(1, {1, 2}, back))
    assert (1, 2) in h.router.unverified_links             # s1 -> s3, far end away
    h.now = t0 + routing.SWITCH_GRACE_S                     # s3 gone; s1's wait not over
    assert h.now - back < routing.LINK_VERIFY_S
    h.feed(h.router.tick(h.now))
    assert 3 not in h.router.view.ports
    assert h.router.unverified_links == {(2, 1): back, (1, 1): back}


def test_a_switch_away_past_the_grace_is_removed_and_routes_towards_it_go():
    h = _paper_up()
    h.feed(h.router.switch_leave(3, h.now))
    h.now += routing.SWITCH_GRACE_S
    h.feed(h.router.tick(h.now))
    assert 3 not in h.router.view.ports
    assert "10.0.0.12" in h.router.view.hosts            # remembered for its return
    assert not [k for k in h.router.installed if k[1] == "10.0.0.12"]
    assert h.router.disconnected == {}


def test_a_port_that_goes_down_takes_its_link_at_once_even_to_a_disconnected_switch():
    h = _paper_up()
    h.feed(h.router.switch_leave(3, h.now))
    h.feed(h.router.port_down(1, 2))                     # s1's port to s3: the link is cut
    assert (1, 2) not in h.router.view.links and (3, 1) not in h.router.view.links
    assert not [k for k in h.router.installed if k[1] == "10.0.0.12" and k[0] != 3]
