"""Cumulative packets/bytes relayed per switch, traffic class and
destination, from periodic flow-stats polls and flow-removed messages.

Switch counters belong to flow entries, which come and go (a VM's flows are
deleted and re-added when it moves, a reconnecting switch's are wiped).  The
accumulator keeps what vanished flows had counted so totals never go
backwards, and never counts a flow twice.  Pure: no os-ken.

What it can tell apart.  Per switch and flow key (table, priority, match,
cookie) it sees *sightings* (a poll shows the key with its counters) and
*removals* (a flow-removed message with a flow's final counters).  Two
sightings in successive polls may be one flow or a flow and its replacement;
they are certainly two flows only when a counter went down or a poll between
them lacked the key (a *run* is what lies between such cuts).  A removal is
the end of some flow, one that may be a run's (it came after the run's last
sighting, and its counters are at least the run's) or a flow no poll saw --
messages may come late: after a poll that shows a replacement, after the
switch disconnected.  Durations are no help: Open vSwitch re-creates a flow
re-added with OFPFC_ADD, its duration restarting, but keeps its counters
unless OFPFF_RESET_COUNTS, which the controller does not set.

So each key's total is the least any reading of what was seen allows: every
removal's final counts, plus every run's last counts unless a removal is its
end -- runs matched to removals so as to leave the least (per counter, a
maximum-weight matching).  That is never more than the truth, since the true
reading is one of them; never decreases, since each sighting or message only
narrows the readings; and equals the truth once every flow-removed message
is in and every switch polled after them, as no message then can end the
runs the last polls show and every other flow's final count is in.
Histories are folded into plain totals as soon as no later event can change
how they are read; what stays open is a key's current run, runs that ended
with no message yet (one may still come) and messages that may end more
than one run -- with messages on time, one run per key.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from controller import classes as C
from controller.classes import FORWARDING


@dataclass(frozen=True)
class FlowSample:
    """One flow entry's counters as a switch reported them."""
    table_id: int
    priority: int
    match: str        # any stable text form of the match
    cookie: int
    packets: int
    bytes: int

    @property
    def key(self) -> tuple:
        return (self.table_id, self.priority, self.match, self.cookie)


Totals = dict[tuple[int, str, str], list[int]]   # (dpid, class, dst) -> [pk, by]
Counts = tuple[int, int]                         # packets, bytes


@dataclass
class _Run:
    """Successive sightings of a key that may all be one flow: its counts
    at the last one."""
    counts: Counts
    seen: int                 # event number of the last sighting
    live: bool = True         # shown by the switch's latest poll


@dataclass
class _Removal:
    """A flow-removed message: a flow's final counts."""
    counts: Counts
    at: int                   # event number of its arrival


def _ends(m: _Removal, r: _Run) -> bool:
    """Whether removal ``m`` may be the end of run ``r``'s (last) flow."""
    return m.at > r.seen and m.counts[0] >= r.counts[0] and m.counts[1] >= r.counts[1]


def _matching(runs: list[_Run], removals: list[_Removal], c: int) -> tuple[int, int]:
    """Weight (counter ``c`` of the runs) and size of a maximum-weight
    matching of runs to removals that may end them.  Heaviest run first,
    kept when an augmenting path covers it: optimal, as the sets of runs
    that can be matched together form a (transversal) matroid."""
    ends = [[j for j, m in enumerate(removals) if _ends(m, r)] for r in runs]
    owner: dict[int, int] = {}                  # removal -> run

    def augment(i: int, tried: set[int]) -> bool:
        for j in ends[i]:
            if j not in tried:
                tried.add(j)
                if j not in owner or augment(owner[j], tried):
                    owner[j] = i
                    return True
        return False

    weight = 0
    for i in sorted(range(len(runs)), key=lambda i: -runs[i].counts[c]):
        if ends[i] and augment(i, set()):
            weight += runs[i].counts[c]
    return weight, len(owner)


@dataclass
class _Key:
    """What is still open about one flow key on one switch."""
    bucket: tuple[int, str, str]
    runs: list[_Run] = field(default_factory=list)
    removals: list[_Removal] = field(default_factory=list)
    value: Counts = (0, 0)    # its least total, what is folded not included

    def live(self) -> _Run | None:
        return self.runs[-1] if self.runs and self.runs[-1].live else None

    def settle(self) -> Counts:
        """Fold what no later event can read differently; returns the
        counts folded (removals counted for good) and updates ``value``."""
        folded = [0, 0]

        def fold(m: _Removal) -> None:
            self.removals.remove(m)
            folded[0] += m.counts[0]
            folded[1] += m.counts[1]

        changed = True
        while changed and self.removals:
            changed = False
            for m in list(self.removals):
                ends = [r for r in self.runs if _ends(m, r)]
                if not ends:
                    # it may end no run, and never will: a run that ended
                    # keeps its counts, a live one sighted again ends no
                    # earlier removal, later runs come after it
                    fold(m)
                    changed = True
                elif len(ends) == 1 and not ends[0].live:
                    # the one run it may end, which is over: some best
                    # reading pairs them, whatever comes later
                    fold(m)
                    self.runs.remove(ends[0])
                    changed = True
        if self.removals and self.runs and not self.live():
            # every run over and each the end of a removal: later removals
            # cannot do better, later runs cannot end these removals
            if _matching(self.runs, self.removals, 0)[1] == len(self.runs):
                for m in list(self.removals):
                    fold(m)
                self.runs.clear()
        value = [sum(r.counts[c] for r in self.runs) for c in (0, 1)]
        if self.removals:
            for c in (0, 1):
                value[c] += sum(m.counts[c] for m in self.removals)
                value[c] -= _matching(self.runs, self.removals, c)[0]
        self.value = (value[0], value[1])
        return folded[0], folded[1]


@dataclass
class StatsAccumulator:
    # open histories: dpid -> flow key -> _Key
    _keys: dict[int, dict[tuple, _Key]] = field(default_factory=dict)
    # keys shown by a switch's latest poll
    _shown: dict[int, set[tuple]] = field(default_factory=dict)
    # counts folded for good, per (dpid, class, dst)
    _retired: Totals = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    _events: int = 0
    polls: dict[int, int] = field(default_factory=dict)

    @staticmethod
    def _bucket(dpid: int, cookie: int) -> tuple[int, str, str]:
        info = C.parse_cookie(cookie)
        cls = info.cls if info.ours and info.cls else "foreign"
        return (dpid, cls, info.dst or "-")

    def _key(self, dpid: int, key: tuple) -> _Key:
        keys = self._keys.setdefault(dpid, {})
        k = keys.get(key)
        if k is None:
            k = keys[key] = _Key(self._bucket(dpid, key[3]))
        return k

    def _settle(self, dpid: int, key: tuple, k: _Key) -> None:
        pk, by = k.settle()
        b = self._retired[k.bucket]
        b[0] += pk
        b[1] += by
        if not k.runs and not k.removals:
            del self._keys[dpid][key]

    def update(self, dpid: int, samples: list[FlowSample]) -> None:
        """Apply one complete flow-stats reply from a switch."""
        self._events += 1
        shown: set[tuple] = set()
        for s in samples:
            k = self._key(dpid, s.key)
            run, counts = k.live(), (s.packets, s.bytes)
            if run is not None and counts[0] >= run.counts[0] and counts[1] >= run.counts[1]:
                run.counts, run.seen = counts, self._events
            else:                         # first sighting, or counters went down
                if run is not None:
                    run.live = False
                k.runs.append(_Run(counts, self._events))
            shown.add(s.key)
            self._settle(dpid, s.key, k)
        for key in self._shown.get(dpid, set()) - shown:
            k = self._keys[dpid][key]
            k.runs[-1].live = False       # gone: whatever shows the key next is another flow
            self._settle(dpid, key, k)
        self._shown[dpid] = shown
        self.polls[dpid] = self.polls.get(dpid, 0) + 1

    def removed(self, dpid: int, sample: FlowSample) -> None:
        """A flow-removed message: final counters of a deleted entry, at any
        time after its deletion (before or after polls, after the switch
        disconnected)."""
        self._events += 1
        k = self._key(dpid, sample.key)
        k.removals.append(_Removal((sample.packets, sample.bytes), self._events))
        self._settle(dpid, sample.key, k)

    def forget_switch(self, dpid: int) -> None:
        """A switch disconnected.  Nothing is forgotten: a switch in
        fail-mode secure keeps its flows and counters while away, so its
        first poll after reconnecting continues its runs; flows deleted
        meanwhile (flows.wipe on reconnect) may still send flow-removed
        messages, read against what the last poll showed; and what the
        switch counted until then stays in the totals."""

    def _totals(self, dpids) -> Totals:
        out: Totals = defaultdict(lambda: [0, 0])
        for bucket, (pk, by) in self._retired.items():
            if bucket[0] in dpids:
                out[bucket][0] += pk
                out[bucket][1] += by
        for dpid in dpids:
            for k in self._keys.get(dpid, {}).values():
                b = out[k.bucket]
                b[0] += k.value[0]
                b[1] += k.value[1]
        return dict(out)

    def totals(self) -> Totals:
        return self._totals({d for d, *_ in self._retired} | set(self._keys))

    def switch_totals(self, dpid: int) -> tuple[dict[str, list[int]],
                                                dict[str, dict[str, list[int]]]]:
        """One switch's cumulative [packets, bytes] per class (every class,
        ours or not) and per destination and class (flows that serve one
        destination only): what ``stats.jsonl`` records at each poll."""
        by_class: dict[str, list[int]] = {}
        by_dst: dict[str, dict[str, list[int]]] = {}
        for (_d, cls, dst), (pk, by) in self._totals({dpid}).items():
            c = by_class.setdefault(cls, [0, 0])
            c[0] += pk
            c[1] += by
            if dst != "-":
                by_dst.setdefault(dst, {})[cls] = [pk, by]
        return by_class, by_dst


def relayed(totals: Totals, dpid: int | None = None, cls: str | None = None,
            dst: str | None = None) -> tuple[int, int]:
    """Sum packets/bytes relayed (forwarding classes only) matching filters."""
    pk = by = 0
    for (d, c, t), (p, b) in totals.items():
        if c not in FORWARDING:
            continue
        if (dpid is None or d == dpid) and (cls is None or c == cls) and (dst is None or t == dst):
            pk += p
            by += b
    return pk, by


def by_class(totals: Totals) -> dict[str, dict[str, int]]:
    """Packets and bytes per class, all switches and destinations together."""
    out: dict[str, list[int]] = {}
    for (_d, cls, _dst), (pk, by) in totals.items():
        o = out.setdefault(cls, [0, 0])
        o[0] += pk
        o[1] += by
    return {k: {"packets": v[0], "bytes": v[1]} for k, v in sorted(out.items())}


class RateMeter:
    """Relay rates per switch, destination and class, from the cumulative
    per-destination counts of successive polls (what
    :meth:`StatsAccumulator.switch_totals` gives): the rate over the last
    ``window`` polls of each switch, and when that window began.  The shim
    feeds it after every flow-stats reply; the OVCT engine reads a
    session's rates (its VNC traffic to the VM and to the client, per
    switch) and the migration stream's counts through its ``Network``."""

    def __init__(self, window: int = 5):
        self.window = window
        # dst -> dpid -> cls -> [(t, packets, bytes)], oldest first
        self._hist: dict[str, dict[int, dict[str, list[tuple[float, int, int]]]]] = {}

    def observe(self, dpid: int, t: float, by_dst: dict[str, dict[str, list[int]]]) -> None:
        for dst, classes in by_dst.items():
            per = self._hist.setdefault(dst, {}).setdefault(dpid, {})
            for cls, (pk, by) in classes.items():
                h = per.setdefault(cls, [])
                if h and t <= h[-1][0]:
                    continue                      # a poll out of order: ignore
                h.append((t, pk, by))
                if len(h) > self.window + 1:
                    del h[0]

    def rates(self, dst: str, cls: str) -> dict[int, tuple[float, float, float]]:
        """{dpid: (packets/s, bytes/s, window start)} for traffic of
        ``cls`` to ``dst``, on every switch polled twice since it had flows
        for it."""
        out = {}
        for dpid, per in self._hist.get(dst, {}).items():
            h = per.get(cls)
            if h is None or len(h) < 2:
                continue
            (t0, p0, b0), (t1, p1, b1) = h[0], h[-1]
            out[dpid] = (max(0, p1 - p0) / (t1 - t0), max(0, b1 - b0) / (t1 - t0), t0)
        return out

    def total(self, cls: str, dsts) -> tuple[int, int] | None:
        """Cumulative packets and bytes of ``cls`` to any of ``dsts``, all
        switches together, at each switch's last poll (None: never seen)."""
        pk = by = 0
        seen = False
        for dst in dsts:
            for per in self._hist.get(dst, {}).values():
                h = per.get(cls)
                if h:
                    seen = True
                    pk += h[-1][1]
                    by += h[-1][2]
        return (pk, by) if seen else None
