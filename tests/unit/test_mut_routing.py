"""controller/routing.py: what the other unit tests never reach (mutation
testing, issue 14)."""
from controller import classes as C
from controller import flows as F
from controller import routing
from controller.netview import HostLoc
from controller.routing import ARP_REPLY, ARP_REQUEST, Packet, Router
from testbed.topology import paper_topology

from tests.unit.helpers import Harness
from tests.unit.test_routing import _paper_up


def test_a_removed_switch_takes_its_own_unverified_links_and_leaves_the_others():
    """s3 is away past the grace while s1 has just come back (its links not
    yet confirmed by LLDP): removing s3 drops s3's link from the ones to
    verify; s1's link to s2 stays to be verified."""
    h = _paper_up()
    t0 = h.now
    h.feed(h.router.switch_leave(3, t0))
    h.feed(h.router.switch_leave(1, t0 + 14))
    h.feed(h.router.switch_enter(1, {1, 2}, t0 + 14.5))
    assert set(h.router.unverified_links) == {(1, 1), (2, 1), (1, 2), (3, 1)}
    h.now = t0 + routing.SWITCH_GRACE_S
    h.feed(h.router.tick(h.now))
    assert 3 not in h.router.view.ports
    left = h.router.unverified_links
    assert (3, 1) not in left and {(1, 1), (2, 1)} <= set(left)
    assert left[(1, 1)] == left[(2, 1)] == t0 + 14.5


# -- what the router reports: event payloads and the state file ---------------------

def _recording(**kw):
    """The paper network's router with every event it reports kept."""
    seen = []
    h = Harness(paper_topology(), Router(events=lambda k, p: seen.append((k, p)), **kw))
    return h, seen


def _of(seen, kind):
    return [p for k, p in seen if k == kind]


def test_switch_and_link_events_name_the_switch_ports_and_link_ends():
    h, seen = _recording()
    h.connect_all()
    assert _of(seen, "switch_enter") == [{"dpid": 1, "ports": [1, 2]},
                                         {"dpid": 2, "ports": [1, 2, 3, 4]},
                                         {"dpid": 3, "ports": [1, 2]}]
    assert {"src": [1, 2], "dst": [3, 1]} in _of(seen, "link_add")
    h.feed(h.router.link_delete((1, 1)))
    assert _of(seen, "link_delete") == [{"src": [1, 1]}]
    h.feed(h.router.switch_leave(3, h.now))
    h.feed(h.router.tick(h.now + routing.SWITCH_GRACE_S))
    assert _of(seen, "switch_leave") == [{"dpid": 3}]
    assert _of(seen, "switch_gone") == [{"dpid": 3}]


def test_host_events_name_the_address_its_mac_and_where_it_was_and_is():
    h, seen = _recording()
    h.connect_all()
    h.announce("pm2")
    assert _of(seen, "host_learnt") == [
        {"ip": "10.0.0.12", "mac": "00:00:00:00:00:0c", "dpid": 3, "port": 2}]
    rarp = Packet("00:00:00:00:00:0c", "ff:ff:ff:ff:ff:ff", F.ETH_RARP)
    h.feed(h.router.packet_in(2, 4, rarp, b"", 1.0))
    assert _of(seen, "host_moved") == [
        {"ip": "10.0.0.12", "mac": "00:00:00:00:00:0c", "from": [3, 2], "to": [2, 4]}]


def test_move_events_name_the_address_where_it_goes_and_what_was_held():
    """staged -> held -> committed (one frame kept and delivered), then a
    settle and a paper move of the same address."""
    h, seen = _recording()
    h.connect_all()
    for name in ("tcl1", "pm2"):
        h.announce(name)
    r = h.router
    h.feed(r.prepare_move("10.0.0.12", 2, 4))
    assert _of(seen, "flows_staged") == [{"ip": "10.0.0.12", "to": [2, 4], "switches": 3}]
    h.feed(r.hold("10.0.0.12"))
    assert _of(seen, "traffic_held") == [{"ip": "10.0.0.12", "switches": 3}]
    frame = Packet("00:00:00:00:00:01", "00:00:00:00:00:0c", F.ETH_IPV4,
                   ip_src="10.0.0.1", ip_dst="10.0.0.12")
    h.feed(r.packet_in(2, 2, frame, b"f", 1.0))
    h.feed(r.commit_move("10.0.0.12", "t"))
    assert _of(seen, "flows_committed") == [
        {"ip": "10.0.0.12", "to": [2, 4], "released": 1, "dropped": 0}]
    h.feed(r.settle("10.0.0.12", 3, 2))
    assert _of(seen, "flows_settled") == [{"ip": "10.0.0.12", "at": [3, 2]}]
    h.feed(r.paper_move("10.0.0.12", 2, 4))
    assert _of(seen, "flows_replaced") == [{"ip": "10.0.0.12", "to": [2, 4]}]


def test_snapshot_lists_switches_links_hosts_and_destinations_installed():
    h = _paper_up()
    h.feed(h.router.link_delete((1, 2)))           # one direction only: an odd link left
    assert h.router.snapshot() == {
        "switches": [1, 2, 3],
        "links": [[[1, 1], [2, 1]], [[2, 1], [1, 1]], [[3, 1], [1, 2]]],
        "hosts": {"10.0.0.1": {"mac": "00:00:00:00:00:01", "dpid": 2, "port": 2},
                  "10.0.0.11": {"mac": "00:00:00:00:00:0b", "dpid": 2, "port": 4},
                  "10.0.0.12": {"mac": "00:00:00:00:00:0c", "dpid": 3, "port": 2},
                  "10.0.0.2": {"mac": "00:00:00:00:00:02", "dpid": 2, "port": 3}},
        "installed_destinations": 4,
    }


# -- ARP ----------------------------------------------------------------------------

def _arp_request(mac, ip, target):
    return Packet(mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST, mac, ip,
                  "00:00:00:00:00:00", target)


def _floods(out):
    return [m for m in out if isinstance(m, F.PacketOut)]


def test_arp_floods_are_held_off_per_sender_and_target_and_carry_the_request():
    """The hold-off is one second per (sender, target): another target, or
    another sender, is flooded at once; the same pair again after exactly
    one second too.  Every flood sends the request's own bytes."""
    h = Harness(paper_topology())
    h.connect_all()
    r = h.router
    tcl1, tcl2 = h.topo.host("tcl1"), h.topo.host("tcl2")
    out = r.packet_in(2, 2, _arp_request(tcl1.mac, tcl1.ip, "10.0.0.50"), b"a", 10.0)
    assert _floods(out) == [F.PacketOut(2, (3, 4), b"a"), F.PacketOut(3, (2,), b"a")]
    out = r.packet_in(2, 2, _arp_request(tcl1.mac, tcl1.ip, "10.0.0.51"), b"b", 10.2)
    assert _floods(out) == [F.PacketOut(2, (3, 4), b"b"), F.PacketOut(3, (2,), b"b")]
    out = r.packet_in(2, 3, _arp_request(tcl2.mac, tcl2.ip, "10.0.0.50"), b"c", 10.3)
    assert _floods(out) == [F.PacketOut(2, (2, 4), b"c"), F.PacketOut(3, (2,), b"c")]
    assert _floods(r.packet_in(2, 2, _arp_request(tcl1.mac, tcl1.ip, "10.0.0.50"),
                               b"d", 10.9)) == []
    out = r.packet_in(2, 2, _arp_request(tcl1.mac, tcl1.ip, "10.0.0.50"), b"e", 11.0)
    assert _floods(out) == [F.PacketOut(2, (3, 4), b"e"), F.PacketOut(3, (2,), b"e")]


def test_an_arp_reply_for_a_requester_nobody_knows_is_dropped():
    h = _paper_up()
    pm2 = h.topo.host("pm2")
    rep = Packet(pm2.mac, "00:00:00:00:00:99", F.ETH_ARP, ARP_REPLY, pm2.mac, pm2.ip,
                 "00:00:00:00:00:99", "10.0.0.99")
    assert h.router.packet_in(3, 2, rep, b"rep", 0.0) == []


# -- IPv4 packet-ins: delivery and learning ------------------------------------------

def _ipv4(src_mac, src, dst, **kw):
    return Packet(src_mac, "00:00:00:00:00:0c", F.ETH_IPV4, ip_src=src, ip_dst=dst, **kw)


def test_a_routed_packet_in_for_a_known_host_is_delivered_at_its_port_and_nothing_else():
    h = _paper_up()
    out = h.router.packet_in(2, 2, _ipv4("00:00:00:00:00:01", "10.0.0.1", "10.0.0.12"),
                             b"ip", 1.0)
    assert out == [F.PacketOut(3, (2,), b"ip")]


def test_an_ipv4_packet_in_without_both_addresses_delivers_and_teaches_nothing():
    h = _paper_up()
    r = h.router
    before = dict(r.view.hosts)
    assert r.packet_in(2, 3, _ipv4("00:00:00:00:00:77", None, "10.0.0.12"), b"", 1.0) == []
    assert r.packet_in(2, 3, _ipv4("00:00:00:00:00:77", "10.0.0.77", None), b"", 1.0) == []
    assert r.view.hosts == before


def test_a_detect_table_copy_teaches_where_its_sender_is():
    h = _paper_up()
    pkt = _ipv4("00:00:00:00:00:77", "10.0.0.77", "10.0.0.12", ip_proto=6,
                tcp_src=1000, tcp_dst=22, tcp_flags=F.TCP_SYN)
    h.feed(h.router.packet_in(2, 3, pkt, b"", 1.0, F.TABLE_DETECT))
    assert h.router.view.hosts["10.0.0.77"] == HostLoc("10.0.0.77", "00:00:00:00:00:77", 2, 3)


def test_a_broadcast_source_mac_or_the_zero_address_is_never_learnt():
    h = _paper_up()
    r = h.router
    r.packet_in(2, 3, _ipv4("ff:ff:ff:ff:ff:ff", "10.0.0.77", "10.0.0.12"), b"", 1.0)
    probe = _arp_request("00:00:00:00:00:77", "0.0.0.0", "10.0.0.1")   # an ARP probe
    r.packet_in(2, 3, probe, b"", 1.0)
    assert "10.0.0.77" not in r.view.hosts and "0.0.0.0" not in r.view.hosts


def test_only_a_pinned_host_that_moves_is_reported_seen_with_where_and_when():
    """Wherever the packet that shows it comes from (ARP, RARP, a routed or
    a detect-table IPv4 packet, a frame for a held destination), a pinned
    host seen at a new port is reported with its new place and the time;
    an unpinned host's move, or a pinned host's first sighting, is not."""
    h = _paper_up()
    r = h.router
    seen = []
    r.on_host_seen = lambda ip, loc, now: seen.append((ip, loc, now))
    tcl2 = h.topo.host("tcl2")
    r.pin(tcl2.ip)
    r.pin("10.0.0.88")
    h.feed(r.packet_in(3, 2, _arp_request("00:00:00:00:00:88", "10.0.0.88", "10.0.0.88"),
                       b"", 4.0))                                  # first sighting
    h.feed(r.packet_in(2, 3, Packet("00:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", F.ETH_RARP),
                       b"", 4.5))                                  # tcl1, not pinned
    h.feed(r.packet_in(3, 2, _arp_request(tcl2.mac, tcl2.ip, "10.0.0.1"), b"", 5.0))
    h.feed(r.packet_in(2, 3, Packet(tcl2.mac, "ff:ff:ff:ff:ff:ff", F.ETH_RARP), b"", 6.0))
    h.feed(r.packet_in(3, 2, _ipv4(tcl2.mac, tcl2.ip, "10.0.0.11"), b"", 7.0))
    h.feed(r.packet_in(2, 3, _ipv4(tcl2.mac, tcl2.ip, "10.0.0.11", ip_proto=6, tcp_src=1,
                                   tcp_dst=22, tcp_flags=F.TCP_SYN), b"", 8.0, F.TABLE_DETECT))
    h.feed(r.hold("10.0.0.11"))
    h.feed(r.packet_in(3, 2, _ipv4(tcl2.mac, tcl2.ip, "10.0.0.11"), b"", 9.0))
    s3, s2 = HostLoc(tcl2.ip, tcl2.mac, 3, 2), HostLoc(tcl2.ip, tcl2.mac, 2, 3)
    assert seen == [(tcl2.ip, s3, 5.0), (tcl2.ip, s2, 6.0), (tcl2.ip, s3, 7.0),
                    (tcl2.ip, s2, 8.0), (tcl2.ip, s3, 9.0)]


# -- frames kept for a held destination -------------------------------------------------

def test_held_frames_are_kept_up_to_the_limit_and_the_rest_counted_lost(monkeypatch):
    monkeypatch.setattr(routing, "HOLD_LIMIT", 2)
    h = _paper_up()
    r = h.router
    h.feed(r.hold("10.0.0.12"))
    for i in range(5):
        r.packet_in(2, 2, _ipv4("00:00:00:00:00:01", "10.0.0.1", "10.0.0.12"), b"%d" % i, 1.0)
    msgs, n, lost = r.unhold("10.0.0.12")
    assert (n, lost) == (2, 3) and r.release_log["10.0.0.12"] == (2, 3)
    assert [m for m in msgs if isinstance(m, F.PacketOut)] == [
        F.PacketOut(3, (2,), b"0"), F.PacketOut(3, (2,), b"1")]


def test_frames_held_for_an_address_nobody_knows_are_all_lost_at_release(monkeypatch):
    monkeypatch.setattr(routing, "HOLD_LIMIT", 2)
    h = _paper_up()
    r = h.router
    assert r.hold("10.0.0.99") == []
    for i in range(3):
        r.packet_in(2, 2, _ipv4("00:00:00:00:00:01", "10.0.0.1", "10.0.0.99"), b"x", 1.0)
    assert r.unhold("10.0.0.99") == ([], 0, 3)
    assert r.release_log["10.0.0.99"] == (0, 3)
    assert r.unhold("10.0.0.99") == ([], 0, 0)                # not held (any more)


def test_a_held_frame_from_an_inter_switch_port_is_kept_but_teaches_nothing():
    h = _paper_up()
    r = h.router
    h.feed(r.hold("10.0.0.12"))
    before = dict(r.view.hosts)
    assert r.packet_in(1, 1, _ipv4("00:00:00:00:00:01", "10.0.0.1", "10.0.0.12"),
                       b"f", 1.0) == []
    assert r.view.hosts == before and r.held["10.0.0.12"].frames == [b"f"]


# -- VNC connections seen in the detect table ---------------------------------------------

def _vnc_world():
    h, seen = _recording()
    h.connect_all()
    for name in ("tcl1", "tcl2", "pm2"):
        h.announce(name)
    conns = []
    h.router.on_vnc = conns.append
    return h, seen, conns


def _tcp(h, client_side: bool, flags: int, where=None, proto=6, src_mac=None, now=1.0):
    """A detect-table copy between tcl1:40000 and pm2:5900, sent by the
    client (``client_side``) or by the server, from where it is learnt."""
    tcl1, pm2 = h.topo.host("tcl1"), h.topo.host("pm2")
    if client_side:
        pkt = Packet(src_mac or tcl1.mac, pm2.mac, F.ETH_IPV4, ip_src=tcl1.ip, ip_dst=pm2.ip,
                     ip_proto=proto, tcp_src=40000, tcp_dst=5900, tcp_flags=flags)
        where = where or (2, 2)
    else:
        pkt = Packet(src_mac or pm2.mac, tcl1.mac, F.ETH_IPV4, ip_src=pm2.ip, ip_dst=tcl1.ip,
                     ip_proto=proto, tcp_src=5900, tcp_dst=40000, tcp_flags=flags)
        where = where or (3, 2)
    return h.router.packet_in(*where, pkt, b"", now, F.TABLE_DETECT)


def test_vnc_starts_accepts_and_ends_are_reported_with_both_ends_and_where_seen():
    h, _seen, conns = _vnc_world()
    _tcp(h, True, F.TCP_SYN, now=1.0)
    _tcp(h, False, F.TCP_SYN | F.TCP_ACK, now=2.0)
    _tcp(h, True, F.TCP_FIN | F.TCP_ACK, now=3.0)
    _tcp(h, False, F.TCP_RST, now=4.0)
    ends = ("10.0.0.1", 40000, "10.0.0.12", 5900)
    assert conns == [routing.VncConnection("start", *ends, 2, 2, 1.0),
                     routing.VncConnection("accept", *ends, 3, 2, 2.0),
                     routing.VncConnection("fin", *ends, 2, 2, 3.0),
                     routing.VncConnection("rst", *ends, 3, 2, 4.0)]


def test_vnc_segments_that_open_or_close_nothing_are_not_reported():
    """A client's segment without SYN, a server's ACK or bare SYN, a
    client's SYN+ACK, a non-TCP packet on the VNC port: no report."""
    h, _seen, conns = _vnc_world()
    _tcp(h, True, 0x08)                                     # PSH
    _tcp(h, True, F.TCP_ACK)
    _tcp(h, True, F.TCP_SYN | F.TCP_ACK)
    _tcp(h, False, F.TCP_ACK)
    _tcp(h, False, F.TCP_SYN)
    _tcp(h, True, F.TCP_SYN, proto=17)                       # UDP, flags decoded anyway
    assert conns == []


def test_a_vnc_answer_from_where_the_server_is_not_learnt_is_refused_not_reported():
    h, seen, conns = _vnc_world()
    _tcp(h, False, F.TCP_SYN | F.TCP_ACK, where=(2, 3), src_mac="00:00:00:00:00:02")
    assert conns == []
    assert _of(seen, "refused") == [{
        "reason": "VNC accept from an address not learnt at this port", "dpid": 2,
        "port": 3, "count": 1, "ip": "10.0.0.12", "mac": "00:00:00:00:00:02"}]


def test_without_a_vnc_listener_a_vnc_syn_is_only_learnt_from():
    h = _paper_up()
    assert h.router.on_vnc is None
    _tcp(h, True, F.TCP_SYN, where=(2, 3), src_mac="00:00:00:00:00:01")
    assert h.router.view.hosts["10.0.0.1"] == HostLoc("10.0.0.1", "00:00:00:00:00:01", 2, 3)


# -- moving a VM's flows: exact updates ----------------------------------------------------

PM2 = "10.0.0.12"


def _island():
    """The paper network with s3 cut off (both directions of s1-s3 gone):
    pm2's address is routed on s3 only."""
    h = _paper_up()
    h.feed(h.router.link_delete((1, 2)))
    h.feed(h.router.link_delete((3, 1)))
    assert {d for (d, ip) in h.router.installed if ip == PM2} == {3}
    return h


def test_hold_sends_hold_flows_only_where_the_address_is_routed():
    h = _island()
    assert h.router.hold(PM2) == [F.hold_destination(3, PM2)]
    assert h.router.held[PM2].switches == [3]


def test_commit_move_deletes_where_it_was_routed_and_barriers_every_switch_it_touches():
    """pm2's address moves from the island (s3) to s2 port 4: the live flows
    go on s3, a barrier (untagged by default) on every switch that had or
    gets the route, the new path goes live, the staging copy goes; the
    router then routes it, unpinned, at its new place."""
    h = _island()
    r = h.router
    others = {k: v for k, v in r.installed.items() if k[1] != PM2}
    h.feed(r.prepare_move(PM2, 2, 4))
    msgs = r.commit_move(PM2)
    plan = r.plan
    assert msgs == [F.delete_destination(3, PM2, gen=0),
                    F.Barrier(1, ""), F.Barrier(2, ""), F.Barrier(3, ""),
                    *F.destination_flows(1, PM2, 1, plan, gen=0),
                    *F.destination_flows(2, PM2, 4, plan, gen=0),
                    F.delete_destination(1, PM2, gen=1), F.delete_destination(2, PM2, gen=1)]
    assert {k: v for k, v in r.installed.items() if k[1] == PM2} == {(1, PM2): 1, (2, PM2): 4}
    assert {k: v for k, v in r.installed.items() if k[1] != PM2} == others
    assert not r.pinned and not r.staging
    assert r.view.hosts[PM2] == HostLoc(PM2, "00:00:00:00:00:0c", 2, 4)


def test_paper_move_deletes_everywhere_routed_then_adds_with_tagged_barriers():
    h = _island()
    r = h.router
    h.feed(r.prepare_move(PM2, 2, 4))
    msgs = r.paper_move(PM2, 2, 4, "t")
    plan = r.plan
    assert msgs == [F.delete_destination(3, PM2), F.Barrier(3, "t:deleted"),
                    *F.destination_flows(2, PM2, 4, plan),       # its switch first
                    *F.destination_flows(1, PM2, 1, plan),
                    F.Barrier(1, "t"), F.Barrier(2, "t")]
    assert not r.staging and not r.pinned


def test_paper_move_barriers_are_untagged_by_default():
    h = _paper_up()
    msgs = h.router.paper_move(PM2, 2, 4)
    assert sorted({m.tag for m in msgs if isinstance(m, F.Barrier)}) == ["", ":deleted"]


def test_a_move_settled_for_an_address_never_learnt_records_it_without_a_mac():
    h = _paper_up()
    h.feed(h.router.settle("10.0.0.99", 2, 3))
    assert h.router.view.hosts["10.0.0.99"] == HostLoc("10.0.0.99", "", 2, 3)


def test_every_destination_flow_set_follows_the_router_class_plan():
    """A router with its own class plan (VNC on port 5900 only) builds every
    destination's flows from it: routes, staging copies, a reconnecting
    switch's table, the committed path."""
    plan = F.ClassPlan(((C.VNC, ((5900, 0xFFFF),)),))
    h = Harness(paper_topology(), Router(plan=plan))
    h.connect_all()

    def follows_plan(msgs):
        dest = [m for m in msgs if isinstance(m, F.FlowMod) and m.command == F.ADD
                and C.parse_cookie(m.cookie).cls in (C.OTHER, C.VNC, C.MIGRATION)]
        ports = {v for m in dest for k, v in m.match if k in ("tcp_src", "tcp_dst")}
        return bool(dest) and ports == {5900}

    assert follows_plan(h.announce("pm2"))                        # reconcile
    r = h.router
    assert follows_plan(h.feed(r.prepare_move(PM2, 2, 4)))        # staging
    enter = h.feed(r.switch_enter(1, {1, 2}, h.now))
    assert follows_plan([m for m in enter if C.parse_cookie(m.cookie).gen == 1])
    assert follows_plan([m for m in enter if C.parse_cookie(m.cookie).gen == 0])
    assert follows_plan(h.feed(r.commit_move(PM2)))


# -- a switch reconnecting while moves are under way -------------------------------------------

def test_a_switch_that_gets_a_route_to_a_held_address_on_reconnecting_holds_it_too():
    """s2 was removed (away past the grace) before pm2's address was pinned
    and held, so the hold missed it; when s2 reconnects with its links
    known, it gets pm2's live flows and the hold flow, and joins the held
    switches (once, however often it reconnects)."""
    h = _paper_up()
    r = h.router
    h.feed(r.switch_leave(2, h.now))
    h.feed(r.tick(h.now + routing.SWITCH_GRACE_S))
    r.pin(PM2)
    h.feed(r.hold(PM2))
    assert r.held[PM2].switches == [1, 3]
    h.feed(r.switch_enter(2, {1, 2, 3, 4}, h.now))
    h.feed(r.link_add((1, 1), (2, 1)))
    h.feed(r.link_add((2, 1), (1, 1)))
    msgs = h.feed(r.switch_enter(2, {1, 2, 3, 4}, h.now))
    assert F.hold_destination(2, PM2) in msgs
    assert all(m in msgs for m in F.destination_flows(2, PM2, 1, r.plan))
    assert r.installed[(2, PM2)] == 1
    h.feed(r.switch_enter(2, {1, 2, 3, 4}, h.now))
    assert r.held[PM2].switches == [1, 3, 2]
    assert h.trace("tcl1", PM2) == [(2, F.CONTROLLER)]


def test_a_pinned_host_switch_reconnecting_gets_the_flows_out_of_the_host_port():
    h = _paper_up()
    r = h.router
    r.pin(PM2)
    r.pin("10.0.0.99")                              # pinned, never learnt
    msgs = h.feed(r.switch_enter(3, {1, 2}, h.now))
    assert all(m in msgs for m in F.destination_flows(3, PM2, 2, r.plan))
    assert r.installed[(3, PM2)] == 2


def test_a_switch_entering_gets_the_libvirt_acl_for_the_kvm_hosts():
    h = Harness(paper_topology())
    h.router.trust.set_hosts({"10.0.0.11": (2, 4)})
    msgs = h.router.switch_enter(2, {1, 2, 3, 4}, 0.0)
    acl = F.libvirt_acl(2, ["10.0.0.11"])
    assert acl and all(m in msgs for m in acl)


# -- switches, ports and links: time, disconnection, deletion --------------------------------

HOSTS = ("10.0.0.1", "10.0.0.2", "10.0.0.11", PM2)


def _routes(h, dpid):
    """Where s<dpid>'s table sends each host's address (CONTROLLER: no route)."""
    return {ip: h.table.lookup(dpid, eth_type=F.ETH_IPV4, ipv4_dst=ip).out_port for ip in HOSTS}


def test_the_grace_counts_from_when_the_switch_left():
    h = _paper_up()
    h.feed(h.router.switch_leave(3, 100.0))
    assert h.router.tick(101.0) == []
    assert 3 in h.router.view.ports


def test_switches_removed_in_one_tick_each_get_their_routes_deleted():
    h = _paper_up()
    h.feed(h.router.switch_leave(2, h.now))
    h.feed(h.router.switch_leave(3, h.now))
    out = h.feed(h.router.tick(h.now + routing.SWITCH_GRACE_S))
    assert set(_routes(h, 1).values()) == {F.CONTROLLER}
    assert not [m for m in out if getattr(m, "dpid", None) in (2, 3)]   # nothing to the gone


def test_links_unconfirmed_in_one_tick_each_get_their_routes_deleted():
    h = _paper_up()
    h.feed(h.router.switch_leave(1, h.now))
    h.feed(h.router.switch_enter(1, {1, 2}, h.now))          # no LLDP from it after
    h.feed(h.router.tick(h.now + routing.LINK_VERIFY_S))
    assert not h.router.view.links
    assert _routes(h, 2) == {"10.0.0.1": 2, "10.0.0.2": 3, "10.0.0.11": 4, PM2: F.CONTROLLER}
    assert _routes(h, 3) == {"10.0.0.1": F.CONTROLLER, "10.0.0.2": F.CONTROLLER,
                             "10.0.0.11": F.CONTROLLER, PM2: 2}


def test_a_disconnected_switch_gets_no_flow_mod_until_it_returns():
    """While s3 is away, a new host is routed and s3 is cut off: nothing is
    sent to s3 (it is resynced when it comes back)."""
    h = _paper_up()
    h.feed(h.router.switch_leave(3, h.now))
    out = h.feed(h.router.packet_in(2, 3, _arp_request("00:00:00:00:00:77", "10.0.0.77",
                                                       "10.0.0.77"), b"", h.now))
    out += h.feed(h.router.port_down(1, 2))
    assert [m for m in out if isinstance(m, F.FlowMod)]
    assert not [m for m in out if getattr(m, "dpid", None) == 3]


def test_a_port_going_down_deletes_the_routes_across_its_link():
    h = _paper_up()
    h.feed(h.router.port_down(1, 2))
    assert _routes(h, 1)[PM2] == _routes(h, 2)[PM2] == F.CONTROLLER


def test_a_port_going_down_forgets_its_links_awaiting_lldp():
    h = _paper_up()
    h.feed(h.router.switch_leave(1, h.now))
    h.feed(h.router.switch_enter(1, {1, 2}, h.now + 1))
    h.feed(h.router.port_down(1, 2))
    assert h.router.unverified_links == {(1, 1): h.now + 1, (2, 1): h.now + 1}


def test_a_deleted_port_leaves_the_view_with_its_link_awaiting_lldp_from_either_end():
    h = _paper_up()
    h.feed(h.router.switch_leave(1, h.now))
    h.feed(h.router.switch_enter(1, {1, 2}, h.now + 1))
    h.feed(h.router.port_delete(1, 2))
    assert h.router.view.ports[1] == {1} and (1, 2) not in h.router.view.links
    assert h.router.unverified_links == {(1, 1): h.now + 1, (2, 1): h.now + 1}
