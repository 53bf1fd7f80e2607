"""An in-memory OpenFlow table that applies controller.flows messages, so a
test can ask "where would this packet leave switch X?" (after Faucet's
clib/fakeoftable.py, written for our plain-data messages)."""
from __future__ import annotations

from dataclasses import dataclass, field

from controller import flows as F


@dataclass
class Entry:
    match: dict
    priority: int
    cookie: int
    out_port: int | str | None
    table_id: int = F.TABLE_ROUTE
    goto_table: int | None = None
    idle_timeout: int = 0


def _field_matches(want, have) -> bool:
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = want
        return (have & mask) == (value & mask)
    return want == have


@dataclass
class FakeOFTable:
    tables: dict[int, list[Entry]] = field(default_factory=dict)
    log: list[F.FlowMod] = field(default_factory=list)

    def apply(self, msgs) -> None:
        for m in msgs:
            if isinstance(m, F.FlowMod):
                self.log.append(m)
                self._flow_mod(m)

    def _selected(self, m: F.FlowMod, e: Entry) -> bool:
        # our deletes/modifies name a table; entries of other tables stay
        if e.table_id != m.table_id:
            return False
        if (e.cookie & m.cookie_mask) != (m.cookie & m.cookie_mask):
            return False
        # non-strict: every field of the request must be in the entry
        return all(e.match.get(k) == v for k, v in m.match)

    def _flow_mod(self, m: F.FlowMod) -> None:
        table = self.tables.setdefault(m.dpid, [])
        if m.command == F.ADD:
            new = Entry(dict(m.match), m.priority, m.cookie, m.out_port, m.table_id,
                        m.goto_table, m.idle_timeout)
            for i, e in enumerate(table):
                if (e.match, e.priority, e.table_id) == (new.match, new.priority, new.table_id):
                    table[i] = new
                    return
            table.append(new)
        elif m.command == F.MODIFY:
            for e in table:
                if self._selected(m, e):
                    e.out_port = m.out_port
        elif m.command == F.DELETE:
            self.tables[m.dpid] = [e for e in table if not self._selected(m, e)]
        else:
            raise AssertionError(f"unknown command {m.command}")

    def lookup(self, dpid: int, table_id: int = F.TABLE_ROUTE, **pkt) -> Entry | None:
        """The highest-priority entry of one table matching a packet given as
        OXM fields."""
        best = None
        for e in self.tables.get(dpid, []):
            if e.table_id != table_id:
                continue
            if all(_field_matches(v, pkt.get(k)) for k, v in e.match.items()):
                if best is None or e.priority > best.priority:
                    best = e
        return best

    def pipeline(self, dpid: int, **pkt) -> list[Entry]:
        """The entries a packet hits from table 0, following goto_table."""
        hits, table = [], F.TABLE_DETECT
        while table is not None:
            e = self.lookup(dpid, table, **pkt)
            if e is None:
                break
            hits.append(e)
            table = e.goto_table
        return hits

    def count(self, dpid: int, table_id: int | None = None) -> int:
        return len([e for e in self.tables.get(dpid, [])
                    if table_id is None or e.table_id == table_id])
