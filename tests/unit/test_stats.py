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
