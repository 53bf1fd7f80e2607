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
