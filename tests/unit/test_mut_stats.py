"""controller/stats.py: a counter reset or a replaced flow seen in one
counter only (mutation testing and the reviewer's deliberate bugs, issue
14: test_stats.py's resets always lower both counters together)."""
import pytest

from controller import classes as C
from controller.stats import FlowSample, StatsAccumulator

VNC = C.make_cookie(C.VNC, "10.0.0.12")
KEY = (1, C.VNC, "10.0.0.12")


def s(pk, by):
    return FlowSample(0, 100, "m", VNC, pk, by)


@pytest.mark.parametrize("first,second", [
    ((10, 1000), (12, 500)),       # the reset shows in bytes only (bigger packets before)
    ((10, 1000), (4, 1400)),       # in packets only
])
def test_a_reset_seen_in_one_counter_only_keeps_both_flows_counts(first, second):
    acc = StatsAccumulator()
    acc.update(1, [s(*first)])
    acc.update(1, [s(*second)])
    total = [first[0] + second[0], first[1] + second[1]]
    assert acc.totals()[KEY] == total
    acc.update(1, [s(second[0] + 1, second[1] + 100)])      # the new flow goes on
    assert acc.totals()[KEY] == [total[0] + 1, total[1] + 100]


@pytest.mark.parametrize("seen,removed", [
    ((10, 1000), (12, 500)),       # fewer bytes than the flow polled: another flow's end
    ((10, 1000), (4, 1400)),       # fewer packets
])
def test_a_removal_below_the_polled_counts_in_one_counter_ends_another_flow(seen, removed):
    acc = StatsAccumulator()
    acc.update(1, [s(*seen)])
    acc.removed(1, s(*removed))
    assert acc.totals()[KEY] == [seen[0] + removed[0], seen[1] + removed[1]]
    acc.update(1, [])                                       # the polled one is gone too
    assert acc.totals()[KEY] == [seen[0] + removed[0], seen[1] + removed[1]]


def test_a_removal_at_or_above_the_polled_counts_is_that_flows_end():
    acc = StatsAccumulator()
    acc.update(1, [s(10, 1000)])
    acc.removed(1, s(10, 1000))
    acc.update(1, [])
    assert acc.totals()[KEY] == [10, 1000]


# -- per switch, per destination; the rate meter ----------------------------------------

def test_switch_totals_sum_a_class_over_destinations_and_keep_shared_flows_out_of_by_dst():
    from controller.stats import relayed
    acc = StatsAccumulator()
    acc.update(1, [FlowSample(0, 100, "a", C.make_cookie(C.VNC, "10.0.0.12"), 10, 1000),
                   FlowSample(0, 100, "b", C.make_cookie(C.VNC, "10.0.0.13"), 3, 300),
                   FlowSample(0, 0, "c", C.make_cookie(C.CONTROL), 2, 200)])
    by_class, by_dst = acc.switch_totals(1)
    assert by_class == {C.VNC: [13, 1300], C.CONTROL: [2, 200]}
    assert by_dst == {"10.0.0.12": {C.VNC: [10, 1000]}, "10.0.0.13": {C.VNC: [3, 300]}}
    t = acc.totals()
    assert relayed(t, dst="10.0.0.12") == (10, 1000)
    assert relayed(t, dst="10.0.0.13") == (3, 300)
    assert relayed(t, dst="10.0.0.99") == (0, 0)


def feed(meter, dpid, t, counts):
    meter.observe(dpid, t, {"10.0.0.12": {C.VNC: list(counts)}})


def test_the_rate_is_over_the_last_five_polls_by_default():
    from controller.stats import RateMeter
    m = RateMeter()
    for t in range(10):
        feed(m, 1, float(t), (10 * t * t, 100 * t * t))
    # polls 4..9 kept: (810 - 160) / 5
    assert m.rates("10.0.0.12", C.VNC) == {1: (130.0, 1300.0, 4.0)}


def test_the_rate_is_from_the_oldest_to_the_newest_poll_kept():
    from controller.stats import RateMeter
    m = RateMeter(window=5)
    for t, pk in ((0.0, 0), (1.0, 10), (2.0, 40)):
        feed(m, 1, t, (pk, 100 * pk))
    assert m.rates("10.0.0.12", C.VNC) == {1: (20.0, 2000.0, 0.0)}


def test_a_switch_without_traffic_has_rate_zero():
    from controller.stats import RateMeter
    m = RateMeter()
    feed(m, 1, 0.0, (5, 500))
    feed(m, 1, 2.0, (5, 500))
    assert m.rates("10.0.0.12", C.VNC) == {1: (0.0, 0.0, 0.0)}


def test_a_switch_polled_once_is_skipped_not_the_ones_after_it():
    from controller.stats import RateMeter
    m = RateMeter()
    feed(m, 1, 0.0, (5, 500))
    feed(m, 2, 0.0, (0, 0))
    feed(m, 2, 1.0, (4, 400))
    assert m.rates("10.0.0.12", C.VNC) == {2: (4.0, 400.0, 0.0)}


def test_a_poll_out_of_order_or_repeated_is_ignored_for_that_class_only():
    from controller.stats import RateMeter
    m = RateMeter()
    feed(m, 1, 5.0, (10, 1000))
    feed(m, 1, 5.0, (12, 1200))                             # the same time again
    assert m.rates("10.0.0.12", C.VNC) == {}
    assert m.total(C.VNC, ["10.0.0.12"]) == (10, 1000)
    m.observe(1, 4.0, {"10.0.0.12": {C.VNC: [11, 1100], C.MIGRATION: [7, 700]}})
    assert m.total(C.VNC, ["10.0.0.12"]) == (10, 1000)
    assert m.total(C.MIGRATION, ["10.0.0.12"]) == (7, 700)
    assert m.total(C.MIGRATION, ["10.0.0.99"]) is None


def test_by_class_sums_every_switch_and_destination_per_class_in_name_order():
    from controller.stats import by_class
    totals = {(1, C.VNC, "10.0.0.12"): [10, 1000], (2, C.VNC, "10.0.0.13"): [3, 300],
              (1, C.MIGRATION, "10.0.0.13"): [7, 700], (2, C.CONTROL, "-"): [2, 200]}
    out = by_class(totals)
    assert out == {C.CONTROL: {"packets": 2, "bytes": 200},
                   C.MIGRATION: {"packets": 7, "bytes": 700},
                   C.VNC: {"packets": 13, "bytes": 1300}}
    assert list(out) == sorted(out)
    assert by_class({}) == {}


# -- histories are folded as soon as nothing later can change their reading -------------
# (the module's promise: what stays open is bounded, not the whole history of
# a long-running controller; the totals are the same either way)

def open_history(acc, dpid=1):
    return {key: (len(k.runs), len(k.removals)) for key, k in acc._keys.get(dpid, {}).items()}


def test_a_removal_of_a_flow_no_poll_saw_is_folded_at_once():
    acc = StatsAccumulator()
    acc.removed(1, s(5, 500))
    assert acc.totals()[KEY] == [5, 500]
    assert open_history(acc) == {}


def test_folding_one_removal_can_let_another_one_fold():
    """Three runs of one key (the counters went down in one counter each
    time); the third is live.  Removal A may end the first or the second
    run, removal B only the first: B ends the first, so A ends the second,
    and only the live run stays open."""
    acc = StatsAccumulator()
    acc.update(1, [s(10, 50)])
    acc.update(1, [s(5, 100)])
    acc.update(1, [s(3, 200)])
    acc.removed(1, s(12, 150))                 # A
    acc.removed(1, s(10, 60))                  # B
    assert acc.totals()[KEY] == [3 + 10 + 12, 200 + 60 + 150]
    assert open_history(acc) == {(0, 100, "m", VNC): (1, 0)}


def test_a_cookie_of_ours_with_an_unknown_class_counts_as_foreign():
    odd = (C.MAGIC << 56) | (0xEE << 48)
    acc = StatsAccumulator()
    acc.update(1, [FlowSample(0, 100, "m", odd, 4, 400)])
    assert acc.totals() == {(1, "foreign", "-"): [4, 400]}


def test_a_switch_never_seen_has_no_totals():
    acc = StatsAccumulator()
    acc.update(1, [s(3, 300)])
    assert acc.switch_totals(99) == ({}, {})


def test_removals_that_may_end_several_runs_are_folded_once_every_run_is_matched():
    """Two runs, both over (the counters went down, then the key went);
    two removals that may each end either: some reading pairs them all, so
    everything folds, and the total is the two removals."""
    acc = StatsAccumulator()
    acc.update(1, [s(10, 100)])
    acc.update(1, [s(5, 150)])
    acc.update(1, [])
    acc.removed(1, s(12, 160))
    acc.removed(1, s(11, 170))
    assert acc.totals()[KEY] == [23, 330]
    assert open_history(acc) == {}


def test_removals_that_cannot_end_every_run_keep_the_runs_open():
    """Three runs over; one removal that may end the first or the second:
    the third run cannot be anyone's end, so nothing is folded and the
    total keeps every run the removal does not end."""
    acc = StatsAccumulator()
    acc.update(1, [s(10, 100)])
    acc.update(1, [s(5, 150)])
    acc.update(1, [s(3, 200)])
    acc.update(1, [])
    acc.removed(1, s(12, 160))
    assert acc.totals()[KEY] == [5 + 3 + 12, 100 + 200 + 160]
    assert open_history(acc) == {(0, 100, "m", VNC): (3, 1)}
