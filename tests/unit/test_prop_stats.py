"""Property-based tests of controller.stats.StatsAccumulator against a model
of the switches' flow entries.

The model keeps every flow entry a switch ever had, with its true counters.
Ground truth, per (dpid, class, destination), is the sum of the packets and
bytes every entry counted.  Operations: install a flow, count traffic on it,
delete it (with or without a flow-removed message), replace it (delete and
re-add the same match, priority and cookie: counters restart from zero),
poll a switch (a complete flow-stats reply), deliver a pending flow-removed
message, and disconnect a switch (StatsAccumulator.forget_switch).

What the accumulator can know: a live flow's counters as of the last poll;
a deleted flow's final counters if its flow-removed message arrives, else
only what the last poll showed (traffic between that poll and the deletion
is lost).  A flow deleted without a message and re-added with the same key
is indistinguishable from one that kept counting, unless its counters went
down.  Hence the properties:

* totals never decrease (packets and bytes, each bucket, after every step);
* totals never exceed ground truth;
* totals equal ground truth once every pending message is delivered and
  every switch polled, if every deleted flow's flow-removed message arrived.

The main test models the controller's own flows: (a) whether a flow asks
for a flow-removed message is fixed per key (the controller sets it on
every destination and session flow, never on static ones), so a key's
flows are either always announced when deleted or replaced, or never (then
only a counter reset tells a replacement); one switch's messages arrive in
the order they were sent, at any time later -- before or after polls that
no longer show the flow -- except that (b) a poll that shows a new flow
with the same key as a deleted one comes after the deleted one's message,
and (c) a switch's pending messages arrive (or are lost) before it
disconnects; (d) a disconnected switch comes back with no flows.  The last
tests drop one of (a)-(d) each (each found a bug, its @example the minimal
sequence), then all four at once: the accumulator assumes none of them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller import classes as C
from controller.stats import FlowSample, StatsAccumulator

DPIDS = (1, 2)

#: cookies and the bucket (class, destination) their traffic belongs to
COOKIES = (
    (C.make_cookie(C.VNC, "10.0.0.12"), (C.VNC, "10.0.0.12")),
    (C.make_cookie(C.OTHER, "10.0.0.12"), (C.OTHER, "10.0.0.12")),
    (C.make_cookie(C.MIGRATION, "10.1.2.3", 1), (C.MIGRATION, "10.1.2.3")),
    (C.make_cookie(C.CONTROL), (C.CONTROL, "-")),
    (C.make_cookie(C.SESSION, "10.0.0.12"), (C.SESSION, "10.0.0.12")),
    (0, ("foreign", "-")),                       # os-ken's LLDP flow
)

flow_keys = st.tuples(st.sampled_from((0, 1)), st.sampled_from((0, 100, 200)),
                      st.sampled_from(("m1", "m2")), st.integers(0, len(COOKIES) - 1))


@dataclass
class Flow:
    """One flow entry on a switch, with its true counters."""
    key: tuple            # (table, priority, match, cookie index)
    pk: int = 0
    by: int = 0

    def sample(self) -> FlowSample:
        table, prio, match, c = self.key
        return FlowSample(table, prio, match, COOKIES[c][0], self.pk, self.by)


@dataclass
class Model:
    silent_deletes: bool = False        # drop (a): any deletion may or may not notify
    late_after_reuse: bool = False      # drop (b)
    late_after_disconnect: bool = False  # drop (c)
    keep_flows: bool = False            # drop (d): flows survive a disconnect
    lossless: bool = False              # every flow notifies, no disconnects
    acc: StatsAccumulator = field(default_factory=StatsAccumulator)
    live: dict = field(default_factory=lambda: {d: {} for d in DPIDS})
    pending: dict = field(default_factory=lambda: {d: [] for d in DPIDS})
    truth: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    exact: bool = True                  # every deleted flow's message arrived (so far)
    seen: dict = field(default_factory=dict)
    log: list = field(default_factory=list)

    # -- operations ------------------------------------------------------------
    def install(self, dpid, key):
        self.live[dpid][key] = Flow(key)

    def replace(self, dpid, key, notify):
        """Delete and re-add the same flow: its counters restart."""
        self.delete(dpid, key, notify)
        self.install(dpid, key)

    def count(self, dpid, key, pk, by):
        e = self.live[dpid][key]
        e.pk += pk
        e.by += by
        b = self.truth[(dpid, *COOKIES[key[3]][1])]
        b[0] += pk
        b[1] += by

    def delete(self, dpid, key, notify):
        e = self.live[dpid].pop(key)
        if notify:
            self.pending[dpid].append(e)
        else:
            self.exact = False

    def deliver(self, dpid):
        e = self.pending[dpid].pop(0)
        self.acc.removed(dpid, e.sample())

    def poll(self, dpid):
        if not self.late_after_reuse:
            # a message about a flow whose key is in use again comes first
            while any(e.key in self.live[dpid] for e in self.pending[dpid]):
                self.deliver(dpid)
        self.acc.update(dpid, [e.sample() for e in self.live[dpid].values()])

    def disconnect(self, dpid, lose):
        if not self.late_after_disconnect:
            while self.pending[dpid]:
                if lose:
                    self.pending[dpid].pop(0)
                    self.exact = False
                else:
                    self.deliver(dpid)
        self.acc.forget_switch(dpid)
        if not self.keep_flows:
            if self.live[dpid]:
                self.exact = False      # what they counted after the last poll is lost
            self.live[dpid] = {}

    # -- checks ------------------------------------------------------------------
    def check(self):
        now = self.acc.totals()
        for bucket, (pk, by) in now.items():
            was = self.seen.get(bucket, (0, 0))
            assert pk >= was[0] and by >= was[1], \
                f"{bucket} went down from {list(was)} to {[pk, by]} after {self.log[-1]}"
            tp, tb = self.truth.get(bucket, (0, 0))
            assert pk <= tp and by <= tb, \
                f"{bucket} counts {[pk, by]}, more than the true {[tp, tb]} after {self.log[-1]}"
        for bucket, was in self.seen.items():
            assert bucket in now or was == (0, 0), f"{bucket} disappeared after {self.log[-1]}"
        self.seen = {b: tuple(v) for b, v in now.items()}

    def settle_and_check(self):
        for dpid in DPIDS:
            while self.pending[dpid]:
                apply(self, "deliver", dpid)
            apply(self, "poll", dpid)
        if self.exact:
            got = {b: v for b, v in self.acc.totals().items() if v != [0, 0]}
            want = {b: v for b, v in self.truth.items() if v != [0, 0]}
            assert got == want


def apply(model: Model, op: str, *args) -> None:
    getattr(model, op)(*args)
    model.log.append((op, *args))
    model.check()


def replay(model: Model, script) -> Model:
    """Run a fixed sequence of operations (a known counterexample)."""
    for op, *args in script:
        apply(model, op, *args)
    model.settle_and_check()
    return model


def run(data, model: Model, max_steps: int = 40) -> Model:
    """Random operations (on two switches, with up to four flow keys), the
    checks after each, then settle: every message delivered, every switch
    polled, and the exactness check."""
    keys = data.draw(st.lists(flow_keys, min_size=1, max_size=4, unique=True), label="flow keys")
    # whether a flow asks for flow-removed is part of the flow (the
    # controller sets it on destination and session flows, not on static
    # ones): one choice per key, unless the model says otherwise
    notifies = {k: model.lossless or data.draw(st.booleans(), label=f"{k} notifies")
                for k in keys}
    for _ in range(data.draw(st.integers(1, max_steps), label="steps")):
        # counts, replacements and polls are the common events
        ops = ["install", "count", "count", "delete", "replace", "replace", "poll", "poll",
               "deliver", "disconnect"]
        if model.lossless:
            ops.remove("disconnect")
        dpid = data.draw(st.sampled_from(DPIDS))
        live = sorted(model.live[dpid])
        if not live:
            ops = [o for o in ops if o not in ("count", "delete", "replace")]
        if len(live) == len(keys):
            ops.remove("install")
        if not model.pending[dpid]:
            ops.remove("deliver")
        op = data.draw(st.sampled_from(ops))
        if op == "install":
            args = (dpid, data.draw(st.sampled_from([k for k in keys if k not in live])))
        elif op == "count":
            # packets and bytes independent, often 0 or small: a replaced
            # flow's new counters then often pass one old counter only
            small = st.sampled_from((0, 0, 1, 2, 10))
            args = (dpid, data.draw(st.sampled_from(live)),
                    data.draw(small | st.integers(0, 10**6)),
                    data.draw(small | st.integers(0, 10**9)))
        elif op in ("delete", "replace"):
            key = data.draw(st.sampled_from(live))
            notify = data.draw(st.booleans()) if model.silent_deletes else notifies[key]
            args = (dpid, key, notify)
        elif op == "disconnect":
            args = (dpid, data.draw(st.booleans()))
        else:
            args = (dpid,)
        apply(model, op, *args)
    model.settle_and_check()
    return model


SETTINGS = settings(max_examples=100, deadline=None)
K = (1, 100, "m1", 0)        # a VNC flow's key


@SETTINGS
@given(data=st.data())
def test_totals_never_decrease_never_exceed_truth_and_are_exact_when_nothing_is_lost(data):
    run(data, Model())


@SETTINGS
@given(data=st.data())
def test_exact_whenever_every_flow_removed_message_arrives(data):
    """Every flow asks for flow-removed and no message is lost (switches
    stay connected: the traffic between a switch's last poll and its
    disconnection is unknowable), so the exact-equality half always
    applies."""
    assert run(data, Model(lossless=True)).exact


counts = st.tuples(st.integers(0, 50), st.integers(0, 5000))


@settings(max_examples=200, deadline=None)
@given(before=st.lists(counts, min_size=1, max_size=3), after=st.lists(counts, max_size=3),
       more=st.lists(counts, max_size=2), notify=st.booleans(), other=st.booleans())
def test_a_replaced_flow_is_never_counted_backwards(before, after, more, notify, other):
    """One flow counts and is polled, is replaced (its counters restart)
    and the new one counts before the next polls: whatever the numbers
    (packets and bytes apart), totals never go down nor past the truth,
    and with a flow-removed message they are exact."""
    model = Model()
    script = [("install", 1, K), *[("count", 1, K, p, b) for p, b in before], ("poll", 1),
              ("replace", 1, K, notify), *[("count", 1, K, p, b) for p, b in after],
              ("poll", 1), *[("count", 1, K, p, b) for p, b in more], ("poll", 1)]
    if other:                       # a flow that lives on beside it
        script = [("install", 1, (0, 0, "m2", 1)), ("count", 1, (0, 0, "m2", 1), 3, 300),
                  *script]
    replay(model, script)
    assert model.exact == notify


@settings(max_examples=200, deadline=None)
@given(before=st.lists(counts, min_size=1, max_size=3), after=st.lists(counts, max_size=2),
       polls_before=st.integers(0, 2), other=st.booleans())
def test_a_deleted_flow_is_counted_once_whatever_the_order(before, after, polls_before,
                                                           other):
    """A flow counts, is polled, counts some more and is deleted; its
    flow-removed message arrives after 0, 1 or 2 polls that no longer show
    it: counted once, exactly."""
    model = Model()
    script = [("install", 1, K), *[("count", 1, K, p, b) for p, b in before], ("poll", 1),
              *[("count", 1, K, p, b) for p, b in after], ("delete", 1, K, True),
              *[("poll", 1)] * polls_before, ("deliver", 1), ("poll", 1)]
    if other:
        script = [("install", 1, (0, 0, "m2", 0)), ("count", 1, (0, 0, "m2", 0), 3, 300),
                  *script]
    assert replay(model, script).exact


# -- each test drops one assumption of the main model, the last all of them --------

@SETTINGS
@given(data=st.data())
@example(data=None)
def test_flows_replaced_without_a_flow_removed_message(data):
    """Drops (a).  The example: polled at 10, replaced without a message
    (an ADD with reset counters), the new flow deleted with one (final 0)
    before the next poll -- the total used to drop from 10 to 0, the
    message taken for the polled flow's."""
    model = Model(silent_deletes=True)
    if data is None:
        replay(model, [("install", 1, K), ("count", 1, K, 10, 10), ("poll", 1),
                       ("replace", 1, K, False), ("delete", 1, K, True), ("deliver", 1)])
    else:
        run(data, model)


@SETTINGS
@given(data=st.data())
@example(data=None)
def test_flow_removed_arriving_after_a_poll_that_shows_a_same_key_flow(data):
    """Drops (b).  The example: polled at 10, counts 2 and is replaced, the
    new flow counts 4 and is polled, then the old one's message (12) comes:
    it used to count 10 + 12 and lose the new 4 (then count it again: 26 >
    16)."""
    model = Model(late_after_reuse=True)
    if data is None:
        replay(model, [("install", 1, K), ("count", 1, K, 10, 10), ("poll", 1),
                       ("count", 1, K, 2, 2), ("replace", 1, K, True),
                       ("count", 1, K, 4, 4), ("poll", 1), ("deliver", 1), ("poll", 1)])
    else:
        run(data, model)


@SETTINGS
@given(data=st.data())
@example(data=None)
def test_flow_removed_arriving_after_the_switch_disconnected(data):
    """Drops (c): flows.wipe deletes a reconnecting switch's kept flows, so
    their messages come after forget_switch().  The example: polled at 10,
    deleted (final 12), disconnect, message -- it used to count 22."""
    model = Model(late_after_disconnect=True)
    if data is None:
        replay(model, [("install", 1, K), ("count", 1, K, 10, 10), ("poll", 1),
                       ("count", 1, K, 2, 2), ("delete", 1, K, True),
                       ("disconnect", 1, False), ("deliver", 1)])
    else:
        run(data, model)


@SETTINGS
@given(data=st.data())
@example(data=None)
def test_switch_that_keeps_its_flows_across_a_disconnect(data):
    """Drops (d): a switch in fail-mode secure keeps its flows and counters
    while the controller is away (the session monitors are kept across a
    reconnect on purpose).  The example: polled at 10, disconnect, polled at
    10 -- it used to count 20."""
    model = Model(keep_flows=True)
    if data is None:
        replay(model, [("install", 1, K), ("count", 1, K, 10, 10), ("poll", 1),
                       ("disconnect", 1, False), ("poll", 1)])
    else:
        run(data, model)


@SETTINGS
@given(data=st.data())
def test_every_assumption_dropped_at_once(data):
    """Silent deletions of any flow, messages after a poll that shows a
    same-key flow and after a disconnect, flows that survive a disconnect:
    still never down, never above the truth, exact when nothing was lost."""
    run(data, Model(silent_deletes=True, late_after_reuse=True, late_after_disconnect=True,
                    keep_flows=True))
