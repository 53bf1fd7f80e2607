"""Statistics aggregation: totals never go backwards when flows are
replaced, deleted, or vanish, and are split per switch, class, destination."""
from controller import classes as C
from controller.stats import FlowSample, StatsAccumulator, relayed

VNC = C.make_cookie(C.VNC, "10.0.0.12")
OTHER = C.make_cookie(C.OTHER, "10.0.0.12")
MISS = C.make_cookie(C.CONTROL)


def s(cookie, pk, by=None, match="m", prio=100):
    return FlowSample(0, prio, match, cookie, pk, by if by is not None else 100 * pk)


def test_split_per_switch_class_destination():
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10, match="a"), s(OTHER, 5, match="b"), s(MISS, 3, prio=0)])
    acc.update(2, [s(VNC, 7, match="a")])
    t = acc.totals()
    assert t[(1, C.VNC, "10.0.0.12")] == [10, 1000]
    assert t[(1, C.OTHER, "10.0.0.12")] == [5, 500]
    assert t[(1, C.CONTROL, "-")] == [3, 300]
    assert relayed(t) == (22, 2200)           # control traffic is not relayed
    assert relayed(t, dpid=1) == (15, 1500)
    assert relayed(t, cls=C.VNC) == (17, 1700)
    assert acc.switch_totals(2) == ({C.VNC: [7, 700]}, {"10.0.0.12": {C.VNC: [7, 700]}})
    assert acc.polls == {1: 1, 2: 1}


def test_counter_reset_does_not_lose_counts():
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 100)])
    acc.update(1, [s(VNC, 4)])                 # replaced, counters restarted
    assert acc.totals()[(1, C.VNC, "10.0.0.12")] == [104, 10400]


def test_deleted_flow_counted_once_whatever_the_order():
    # flow-removed before the next poll
    a = StatsAccumulator()
    a.update(1, [s(VNC, 10)])
    a.removed(1, s(VNC, 12))
    a.update(1, [])
    assert a.totals()[(1, C.VNC, "10.0.0.12")] == [12, 1200]
    # vanished from a poll first, flow-removed afterwards
    b = StatsAccumulator()
    b.update(1, [s(VNC, 10)])
    b.update(1, [])
    b.removed(1, s(VNC, 12))
    assert b.totals()[(1, C.VNC, "10.0.0.12")] == [12, 1200]
    # vanished with no flow-removed at all
    c = StatsAccumulator()
    c.update(1, [s(VNC, 10)])
    c.update(1, [])
    assert c.totals()[(1, C.VNC, "10.0.0.12")] == [10, 1000]


def test_totals_monotonic_over_a_sequence():
    acc = StatsAccumulator()
    seq = [[s(VNC, 1)], [s(VNC, 5)], [], [s(VNC, 2)], [s(VNC, 9), s(OTHER, 1, match="o")],
           [s(OTHER, 3, match="o")]]
    last = 0
    for samples in seq:
        acc.update(3, samples)
        now = relayed(acc.totals())[0]
        assert now >= last
        last = now
    assert last == 5 + 9 + 3


def test_disconnected_switch_keeps_its_counts():
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.forget_switch(1)
    assert acc.totals()[(1, C.VNC, "10.0.0.12")] == [10, 1000]


def test_foreign_cookies_kept_apart():
    acc = StatsAccumulator()
    acc.update(1, [s(0, 4, prio=0xFFFF)])    # os-ken's LLDP flow has cookie 0
    assert acc.totals() == {(1, "foreign", "-"): [4, 400]}
    assert relayed(acc.totals()) == (0, 0)


def vnc(acc):
    return acc.totals()[(1, C.VNC, "10.0.0.12")]


def test_a_flow_replaced_silently_whose_successor_is_removed_keeps_its_counts():
    # polled at 10, replaced with no flow-removed, the new flow deleted with
    # one (final 0) before the next poll: the message cannot be the polled
    # flow's end (its counts are lower), so the 10 stay
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.removed(1, s(VNC, 0))
    assert vnc(acc) == [10, 1000]
    acc.update(1, [])
    assert vnc(acc) == [10, 1000]


def test_a_late_flow_removed_after_a_poll_shows_the_replacement():
    # polled at 10, counts 2 more and is replaced; the new flow counts 4 and
    # is polled; then the old one's flow-removed (12) comes
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.update(1, [s(VNC, 4)])                 # counters went down: another flow
    assert vnc(acc) == [14, 1400]
    acc.removed(1, s(VNC, 12))
    assert vnc(acc) == [16, 1600]
    acc.update(1, [s(VNC, 4)])
    assert vnc(acc) == [16, 1600]


def test_a_late_flow_removed_the_next_poll_tells_apart():
    # as above, but the replacement counted past the old flow by its poll:
    # the message might be the end of the flow that poll showed (12 >= 11),
    # so at first it adds only 1; the next poll shows that flow alive, so the
    # message was the old flow's and both count in full
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.update(1, [s(VNC, 11)])
    acc.removed(1, s(VNC, 12))
    assert vnc(acc) == [12, 1200]
    acc.update(1, [s(VNC, 11)])
    assert vnc(acc) == [23, 2300]
    # had the poll not shown it, it was that flow's end: 12 stays
    b = StatsAccumulator()
    b.update(1, [s(VNC, 10)])
    b.update(1, [s(VNC, 11)])
    b.removed(1, s(VNC, 12))
    b.update(1, [])
    assert vnc(b) == [12, 1200]


def test_packets_and_bytes_are_read_apart():
    # polled at (10, 100), then a flow at (4, 500) (packets went down: a
    # replacement); a message (12, 600) may end either: if the old flow's,
    # the truth is (16, 1100), if the new one's, (22, 700) -- the least of
    # each counter until the next poll tells which
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10, 100)])
    acc.update(1, [s(VNC, 4, 500)])
    acc.removed(1, s(VNC, 12, 600))
    assert vnc(acc) == [16, 700]
    acc.update(1, [s(VNC, 4, 500)])            # the new flow lives on
    assert vnc(acc) == [16, 1100]


def test_a_flow_removed_after_the_switch_disconnected_is_counted_once():
    # polled at 10, deleted (final 12), the switch disconnects, the message
    # comes (flows.wipe on reconnect sends them after forget_switch)
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.forget_switch(1)
    acc.removed(1, s(VNC, 12))
    assert vnc(acc) == [12, 1200]
    acc.update(1, [])                          # back with no flows
    assert vnc(acc) == [12, 1200]


def test_a_switch_that_kept_its_flows_across_a_disconnect_is_not_counted_twice():
    # fail-mode secure: flows and counters survive while the controller is away
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.forget_switch(1)
    acc.update(1, [s(VNC, 10)])
    assert vnc(acc) == [10, 1000]
    acc.update(1, [s(VNC, 15)])
    assert vnc(acc) == [15, 1500]
    assert acc.polls == {1: 3}


def test_a_re_added_flow_that_keeps_its_counters_is_one_flow():
    # Open vSwitch keeps a flow's counters when an identical flow is added
    # again (no OFPFF_RESET_COUNTS) though its duration restarts: the
    # counters alone say it is the same flow
    acc = StatsAccumulator()
    acc.update(1, [s(VNC, 10)])
    acc.update(1, [s(VNC, 13)])
    acc.removed(1, s(VNC, 20))
    acc.update(1, [])
    assert vnc(acc) == [20, 2000]
    assert acc._keys.get(1, {}) == {}          # nothing left open
