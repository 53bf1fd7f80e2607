"""Cumulative packets/bytes relayed per switch, traffic class and
destination, from periodic flow-stats polls and flow-removed messages.

Switch counters belong to flow entries, which come and go (a VM's flows are
deleted and re-added when it moves).  The accumulator keeps what vanished
flows had counted so totals never go backwards.  Pure: no os-ken.
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


@dataclass
class StatsAccumulator:
    # live flows: dpid -> flow key -> (packets, bytes) at the last poll
    _live: dict[int, dict[tuple, tuple[int, int]]] = field(default_factory=dict)
    # counts of flows that are gone, per (dpid, class, dst)
    _retired: Totals = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # flows that vanished from a poll: their last counts, in case their
    # flow-removed message (with the final counts) arrives afterwards
    _vanished: dict[tuple[int, tuple], tuple[int, int]] = field(default_factory=dict)
    polls: dict[int, int] = field(default_factory=dict)

    @staticmethod
    def _bucket(dpid: int, cookie: int) -> tuple[int, str, str]:
        info = C.parse_cookie(cookie)
        cls = info.cls if info.ours and info.cls else "foreign"
        return (dpid, cls, info.dst or "-")

    def _retire(self, dpid: int, key: tuple, counts: tuple[int, int]) -> None:
        b = self._retired[self._bucket(dpid, key[3])]
        b[0] += counts[0]
        b[1] += counts[1]

    def update(self, dpid: int, samples: list[FlowSample]) -> None:
        """Apply one complete flow-stats reply from a switch."""
        old = self._live.get(dpid, {})
        new: dict[tuple, tuple[int, int]] = {}
        for s in samples:
            prev = old.get(s.key)
            if prev is not None and (s.packets < prev[0] or s.bytes < prev[1]):
                # the entry was replaced and its counters reset
                self._retire(dpid, s.key, prev)
            new[s.key] = (s.packets, s.bytes)
        for key, counts in old.items():
            if key not in new:
                self._retire(dpid, key, counts)
                self._vanished[(dpid, key)] = counts
        self._live[dpid] = new
        self.polls[dpid] = self.polls.get(dpid, 0) + 1

    def removed(self, dpid: int, sample: FlowSample) -> None:
        """A flow-removed message: final counters of a deleted entry."""
        live = self._live.get(dpid, {})
        final = (sample.packets, sample.bytes)
        if sample.key in live:
            del live[sample.key]
            self._retire(dpid, sample.key, final)
        else:
            seen = self._vanished.pop((dpid, sample.key), (0, 0))
            extra = (max(0, final[0] - seen[0]), max(0, final[1] - seen[1]))
            self._retire(dpid, sample.key, extra)

    def forget_switch(self, dpid: int) -> None:
        """A switch disconnected: keep what its flows counted until now."""
        for key, counts in self._live.pop(dpid, {}).items():
            self._retire(dpid, key, counts)

    def totals(self) -> Totals:
        out: Totals = defaultdict(lambda: [0, 0])
        for bucket, (pk, by) in self._retired.items():
            out[bucket][0] += pk
            out[bucket][1] += by
        for dpid, flows in self._live.items():
            for key, (pk, by) in flows.items():
                b = out[self._bucket(dpid, key[3])]
                b[0] += pk
                b[1] += by
        return dict(out)

    def switch_totals(self, dpid: int) -> tuple[dict[str, list[int]],
                                                dict[str, dict[str, list[int]]]]:
        """One switch's cumulative [packets, bytes] per class (every class,
        ours or not) and per destination and class (flows that serve one
        destination only): what ``stats.jsonl`` records at each poll."""
        by_class: dict[str, list[int]] = {}
        by_dst: dict[str, dict[str, list[int]]] = {}
        for (d, cls, dst), (pk, by) in self.totals().items():
            if d != dpid:
                continue
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
