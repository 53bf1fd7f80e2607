"""controller/flows.py's detection flows, applied to an OpenFlow table: the
switches trap a connection's SYN, the server's SYN+ACK and either side's
FIN/RST on every port of the VNC range, and nothing outside it (mutation
testing and the reviewer's deliberate bugs, issue 14: the unit World feeds
packet-ins to the router directly, so these flows were never read)."""
import pytest

from controller import classes as C
from controller import flows as F

from tests.unit.fakeoftable import FakeOFTable

TCP = {"eth_type": F.ETH_IPV4, "ip_proto": F.IPPROTO_TCP}
CLIENT_PORT = 40000


def table(plan=F.DEFAULT_PLAN):
    t = FakeOFTable()
    t.apply(F.static_flows(7, plan))
    return t


def hit(t, **pkt):
    """(priority, out port, next table) of the detect table's entry a TCP
    packet hits."""
    e = t.lookup(7, F.TABLE_DETECT, **TCP, **pkt)
    return e.priority, e.out_port, e.goto_table


TRAP_SYN = (F.PRIO_SYN, F.CONTROLLER, F.TABLE_ROUTE)
TRAP_FIN = (F.PRIO_FIN, F.CONTROLLER, F.TABLE_ROUTE)
PASS = (F.PRIO_MISS, None, F.TABLE_ROUTE)


def packets(server_port):
    """Every packet of a connection's life the switches must show the
    controller, to the server's port and from it."""
    to = {"tcp_src": CLIENT_PORT, "tcp_dst": server_port}
    back = {"tcp_src": server_port, "tcp_dst": CLIENT_PORT}
    return [({**to, "tcp_flags": F.TCP_SYN}, TRAP_SYN),
            ({**back, "tcp_flags": F.TCP_SYN | F.TCP_ACK}, TRAP_SYN),
            ({**to, "tcp_flags": F.TCP_FIN | F.TCP_ACK}, TRAP_FIN),
            ({**back, "tcp_flags": F.TCP_FIN | F.TCP_ACK}, TRAP_FIN),
            ({**to, "tcp_flags": F.TCP_RST}, TRAP_FIN),
            ({**back, "tcp_flags": F.TCP_RST | F.TCP_ACK}, TRAP_FIN)]


@pytest.mark.parametrize("port", [5900, 5901, 5903, 5904, 5935, 5950, 5967, 5990, 5999])
def test_every_port_of_the_vnc_range_is_trapped_at_each_step_of_a_connection(port):
    t = table()
    for pkt, want in packets(port):
        assert hit(t, **pkt) == want, pkt
    # the data in between is not the controller's business
    assert hit(t, tcp_src=CLIENT_PORT, tcp_dst=port, tcp_flags=F.TCP_ACK) == PASS
    assert hit(t, tcp_src=port, tcp_dst=CLIENT_PORT, tcp_flags=F.TCP_ACK) == PASS


@pytest.mark.parametrize("port", [5899, 6000, 22, 5800, 6099])
def test_a_port_outside_the_vnc_range_is_never_trapped(port):
    t = table()
    for pkt, _want in packets(port):
        assert hit(t, **pkt) == PASS, pkt


def test_every_range_of_a_configured_plan_is_trapped():
    plan = F.ClassPlan.from_classes([C.TrafficClass(C.VNC, ((5900, 5901), (7000, 7010)))])
    t = table(plan)
    for port in (5900, 5901, 7000, 7005, 7010):
        for pkt, want in packets(port):
            assert hit(t, **pkt) == want, (port, pkt)
    for port in (5902, 5999, 6999, 7011):
        assert hit(t, tcp_src=CLIENT_PORT, tcp_dst=port, tcp_flags=F.TCP_SYN) == PASS, port


def test_a_bad_port_range_is_refused_naming_it():
    for lo, hi in ((5, 3), (-1, 10), (0, 65536)):
        with pytest.raises(ValueError, match=f"^bad range {lo}-{hi}$"):
            C.range_to_masks(lo, hi)


@pytest.mark.parametrize("lo,hi,want", [
    (0, 65535, [(0, 0)]),
    (0, 0, [(0, 0xFFFF)]),
    (65535, 65535, [(65535, 0xFFFF)]),
    (5900, 5999, [(5900, 0xFFFC), (5904, 0xFFF0), (5920, 0xFFE0), (5952, 0xFFE0),
                  (5984, 0xFFF0)]),
    (1, 6, [(1, 0xFFFF), (2, 0xFFFE), (4, 0xFFFE), (6, 0xFFFF)]),
    (0, 7, [(0, 0xFFF8)]),
])
def test_a_port_range_is_covered_by_the_fewest_prefixes(lo, hi, want):
    got = C.range_to_masks(lo, hi)
    assert got == want
    covered = sorted(p for v, m in got for p in range(v, v + ((~m) & 0xFFFF) + 1))
    assert covered == list(range(lo, hi + 1))


# -- the messages, field by field (what the shim turns into OpenFlow) ---------------------

def test_a_session_monitor_is_one_exact_match_in_the_detect_table():
    m = F.session_monitor(7, "10.0.0.1", 40000, "10.0.0.101", 5901, 30)
    assert m == F.FlowMod(7, F.ADD, F.match(eth_type=F.ETH_IPV4, ip_proto=F.IPPROTO_TCP,
                                            ipv4_src="10.0.0.1", ipv4_dst="10.0.0.101",
                                            tcp_src=40000, tcp_dst=5901),
                          None, F.PRIO_SESSION, C.make_cookie(C.SESSION, "10.0.0.101"),
                          table_id=F.TABLE_DETECT, notify_removed=True,
                          goto_table=F.TABLE_ROUTE, idle_timeout=30)


def test_holding_a_destination_traps_its_ipv4_and_the_hold_is_deleted_by_cookie():
    h = F.hold_destination(7, "10.0.0.101")
    assert h == F.FlowMod(7, F.ADD, F.match(eth_type=F.ETH_IPV4, ipv4_dst="10.0.0.101"),
                          F.CONTROLLER, F.PRIO_HOLD, C.make_cookie(C.HOLD, "10.0.0.101"))
    d = F.delete_hold(7, "10.0.0.101")
    assert d == F.FlowMod(7, F.DELETE, (), None, 0, C.make_cookie(C.HOLD, "10.0.0.101"),
                          C.FULL_COOKIE_MASK)


def test_repointing_and_deleting_a_destination_select_by_cookie_only():
    assert F.repoint_destination(7, "10.0.0.101", 3, gen=1) == F.FlowMod(
        7, F.MODIFY, (), 3, 0, C.dest_cookie("10.0.0.101", 1), C.DEST_GEN_COOKIE_MASK)
    assert F.repoint_destination(7, "10.0.0.101", 3).cookie == C.dest_cookie("10.0.0.101", 0)
    assert F.delete_destination(7, "10.0.0.101") == F.FlowMod(
        7, F.DELETE, (), None, 0, C.dest_cookie("10.0.0.101"), C.DEST_COOKIE_MASK)
    assert F.delete_destination(7, "10.0.0.101", gen=1) == F.FlowMod(
        7, F.DELETE, (), None, 0, C.dest_cookie("10.0.0.101", 1), C.DEST_GEN_COOKIE_MASK)


# -- every switch's base flows, the libvirt ACL, the wipe ---------------------------------

KVM_HOSTS = ("10.0.0.12", "10.0.0.11")
LIBVIRT_PORTS = [16509, 49152, 49153, 49200, 49215]


def test_a_switch_s_base_flows_trap_arp_and_rarp_drop_ipv6_and_miss_to_the_controller():
    ctl = C.make_cookie(C.CONTROL)
    D, R = F.TABLE_DETECT, F.TABLE_ROUTE
    assert F.static_flows(7)[:5] == [
        F.FlowMod(7, F.ADD, (), None, F.PRIO_MISS, ctl, table_id=D, goto_table=R),
        F.FlowMod(7, F.ADD, F.match(eth_type=F.ETH_ARP), F.CONTROLLER, F.PRIO_CONTROL, ctl,
                  table_id=D),
        F.FlowMod(7, F.ADD, F.match(eth_type=F.ETH_RARP), F.CONTROLLER, F.PRIO_CONTROL, ctl,
                  table_id=D),
        F.FlowMod(7, F.ADD, F.match(eth_type=F.ETH_IPV6), None, F.PRIO_CONTROL, ctl,
                  table_id=D),
        F.FlowMod(7, F.ADD, (), F.CONTROLLER, F.PRIO_MISS, ctl, table_id=R),
    ]


def all_messages():
    return (F.static_flows(7, libvirt_hosts=KVM_HOSTS)
            + F.destination_flows(7, "10.0.0.101", 3)
            + F.destination_flows(7, "10.0.0.101", 3, gen=1)
            + [F.session_monitor(7, "10.0.0.1", 40000, "10.0.0.101", 5901, 30)])


def test_every_flow_names_its_switch_and_carries_its_match_prerequisites():
    """OpenFlow refuses a match on an IPv4 field without eth_type=IPv4, or
    on a TCP port without ip_proto=TCP too (OFPBMC_BAD_PREREQ): the switch
    would reject the flow."""
    msgs = all_messages()
    assert {m.dpid for m in msgs} == {7}
    for m in msgs:
        fields = dict(m.match)
        if any(k.startswith(("ipv4_", "ip_proto", "tcp_")) for k in fields):
            assert fields.get("eth_type") == F.ETH_IPV4, m
        if any(k.startswith("tcp_") for k in fields):
            assert fields.get("ip_proto") == F.IPPROTO_TCP, m


def acl_table(hosts=KVM_HOSTS):
    t = FakeOFTable()
    t.apply(F.static_flows(7, libvirt_hosts=hosts))
    return t


def first_hit(t, **pkt):
    e = t.pipeline(7, **TCP, **pkt)[0]
    return e.priority, e.out_port, e.goto_table


ACL_PASS = (F.PRIO_ACL_ALLOW, None, F.TABLE_ROUTE)
ACL_DROP = (F.PRIO_ACL_DROP, None, None)


@pytest.mark.parametrize("port", LIBVIRT_PORTS)
def test_libvirt_s_ports_pass_between_kvm_hosts_only_in_either_direction(port):
    t = acl_table()
    for src in KVM_HOSTS:
        assert first_hit(t, ipv4_src=src, tcp_src=CLIENT_PORT, tcp_dst=port) == ACL_PASS
        assert first_hit(t, ipv4_src=src, tcp_src=port, tcp_dst=CLIENT_PORT) == ACL_PASS
    for src in ("10.0.0.101", "10.0.0.1"):       # a guest, a thin client
        assert first_hit(t, ipv4_src=src, tcp_src=CLIENT_PORT, tcp_dst=port) == ACL_DROP
        assert first_hit(t, ipv4_src=src, tcp_src=port, tcp_dst=CLIENT_PORT) == ACL_DROP


@pytest.mark.parametrize("port", [22, 16508, 16510, 49151, 49216])
def test_the_acl_leaves_every_other_port_alone(port):
    t = acl_table()
    for src in (*KVM_HOSTS, "10.0.0.101"):
        assert first_hit(t, ipv4_src=src, tcp_src=CLIENT_PORT, tcp_dst=port) == PASS
        assert first_hit(t, ipv4_src=src, tcp_src=port, tcp_dst=CLIENT_PORT) == PASS


def test_without_kvm_hosts_there_is_no_acl():
    assert F.libvirt_acl(7, []) == []
    t = acl_table(())
    assert first_hit(t, ipv4_src="10.0.0.101", tcp_src=CLIENT_PORT, tcp_dst=16509) == PASS


def test_the_acl_flows_are_one_allow_per_host_and_one_drop_per_port_and_side():
    acl = F.libvirt_acl(7, KVM_HOSTS)
    cookie = C.make_cookie(C.ACL)
    assert {(m.cookie, m.table_id) for m in acl} == {(cookie, F.TABLE_DETECT)}
    # two prefixes (49152/10 bits, 16509) x two sides x (two allows + a drop)
    assert len(acl) == 2 * 2 * 3
    assert [dict(m.match)["ipv4_src"] for m in acl[:2]] == sorted(KVM_HOSTS)


def test_a_wipe_deletes_every_flow_a_switch_got_when_it_connected():
    """Both tables, the ACL included (a restarted controller must not keep
    an old host list); a session monitor stays."""
    t = acl_table()
    t.apply([F.session_monitor(7, "10.0.0.1", 40000, "10.0.0.101", 5901, 30)])
    t.apply(F.destination_flows(7, "10.0.0.101", 3))
    t.apply(F.wipe(7))
    assert [(e.table_id, e.priority) for e in t.tables[7]] == [
        (F.TABLE_DETECT, F.PRIO_SESSION)]


# -- a destination's flows, field by field ------------------------------------------------

def test_a_destination_s_flows_field_by_field_live_and_staging():
    """The base flow and one flow per class prefix and direction, each
    reporting its removal (the statistics count a flow's last packets from
    it); the staging copy 5 lower, in its own cookie generation."""
    plan = F.ClassPlan.from_classes([C.TrafficClass(C.VNC, ((5900, 5901),)),
                                     C.TrafficClass(C.MIGRATION, ((16509, 16509),))])
    ip = "10.0.0.101"
    ipv4 = {"eth_type": F.ETH_IPV4, "ipv4_dst": ip}
    tcp = {**ipv4, "ip_proto": F.IPPROTO_TCP}
    for gen, low in ((0, 0), (1, 5)):
        vnc, mig = C.make_cookie(C.VNC, ip, gen), C.make_cookie(C.MIGRATION, ip, gen)
        assert F.destination_flows(7, ip, 3, plan, gen=gen) == [
            F.FlowMod(7, F.ADD, F.match(**ipv4), 3, 100 - low, C.make_cookie(C.OTHER, ip, gen),
                      notify_removed=True),
            F.FlowMod(7, F.ADD, F.match(**tcp, tcp_dst=(5900, 0xFFFE)), 3, 200 - low, vnc,
                      notify_removed=True),
            F.FlowMod(7, F.ADD, F.match(**tcp, tcp_src=(5900, 0xFFFE)), 3, 200 - low, vnc,
                      notify_removed=True),
            F.FlowMod(7, F.ADD, F.match(**tcp, tcp_dst=16509), 3, 201 - low, mig,
                      notify_removed=True),
            F.FlowMod(7, F.ADD, F.match(**tcp, tcp_src=16509), 3, 201 - low, mig,
                      notify_removed=True),
        ]


def test_an_exact_port_is_matched_without_a_mask():
    """OpenFlow 1.3 lists the TCP ports as not maskable (OVS takes a mask as
    an extension): only a true prefix carries one, a single port is a plain
    value, so its flow is valid on any switch."""
    plan = F.ClassPlan.from_classes([C.TrafficClass(C.VNC, ((5900, 5901), (5910, 5910))),
                                     C.TrafficClass(C.MIGRATION, C.MIGRATION_PORTS)])
    msgs = (F.static_flows(7, plan, libvirt_hosts=KVM_HOSTS)
            + F.destination_flows(7, "10.0.0.101", 3, plan))
    ports = [v for m in msgs for k, v in m.match if k in ("tcp_dst", "tcp_src")]
    assert {p for p in ports if not isinstance(p, tuple)} == {5910, 16509}
    assert {p for p in ports if isinstance(p, tuple)} == {(5900, 0xFFFE), (49152, 0xFFC0)}
