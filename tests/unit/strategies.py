"""Hypothesis strategies and checks shared by the property-based tests
(``test_prop_*.py``): multi-site topology parameters, an oracle for the
fake flow tables, and JSON/YAML-like documents for the validators."""
from __future__ import annotations

import math
import typing

import networkx as nx
from hypothesis import strategies as st

from controller import classes as C
from controller import flows as F

from tests.unit.fakeoftable import Entry, FakeOFTable, _field_matches

# -- topologies ---------------------------------------------------------------


@st.composite
def multisite_params(draw, min_core: int = 1, max_sites: int = 12) -> dict:
    """Keyword arguments for testbed.topology.multisite_topology: sites
    1..12, clients 0..3, hosts 0..2 (at least one of them), core 1..5 and
    never more than sites."""
    sites = draw(st.integers(max(1, min_core), max_sites))
    core = draw(st.integers(min_core, min(5, sites)))
    clients = draw(st.integers(0, 3))
    hosts = draw(st.integers(0 if clients else 1, 2))
    return {"sites": sites, "clients": clients, "hosts": hosts, "core": core}


#: packets whose route is checked, with the class of the flows that must
#: carry them: the base flow (class *other*) and each class's TCP port
#: flows, in either direction
PACKETS = (
    ({}, C.OTHER),
    ({"ip_proto": F.IPPROTO_TCP, "tcp_src": 40000, "tcp_dst": 22}, C.OTHER),
    ({"ip_proto": F.IPPROTO_TCP, "tcp_src": 40000, "tcp_dst": 5901}, C.VNC),
    ({"ip_proto": F.IPPROTO_TCP, "tcp_src": 5999, "tcp_dst": 40000}, C.VNC),
    ({"ip_proto": F.IPPROTO_TCP, "tcp_src": 40000, "tcp_dst": 49215}, C.MIGRATION),
    ({"ip_proto": F.IPPROTO_TCP, "tcp_src": 16509, "tcp_dst": 40000}, C.MIGRATION),
)

ROUTED = (C.OTHER, C.VNC, C.MIGRATION)


class IndexedTable(FakeOFTable):
    """FakeOFTable with the same semantics, faster: an ADD finds the entry
    it replaces through an index, and until the next batch of flow-mods the
    entries of a table are indexed by their ``ipv4_dst`` match and lookups
    remembered, so tracing many destinations through big tables stays
    cheap.  Ties between equal priorities go to the entry listed first, as
    in FakeOFTable.lookup.  Change ``tables`` only through ``apply``."""

    def __init__(self):
        super().__init__()
        self._index: dict = {}               # (dpid, table) -> ipv4_dst -> [(i, entry)]
        self._memo: dict = {}                # lookup arguments -> entry
        self._pos: dict[int, dict] = {}      # dpid -> (match, prio, table) -> list index

    def apply(self, msgs) -> None:
        self._index, self._memo = {}, {}
        super().apply(msgs)

    def _flow_mod(self, m: F.FlowMod) -> None:
        # ADD as FakeOFTable does it (replace an identical entry, else
        # append), without scanning the whole table for the identical one
        if m.command != F.ADD:
            self._pos.pop(m.dpid, None)
            return super()._flow_mod(m)
        table = self.tables.setdefault(m.dpid, [])
        pos = self._pos.get(m.dpid)
        if pos is None:
            pos = self._pos[m.dpid] = {
                (tuple(sorted(e.match.items())), e.priority, e.table_id): i
                for i, e in reversed(list(enumerate(table)))}
        new = Entry(dict(m.match), m.priority, m.cookie, m.out_port, m.table_id,
                    m.goto_table, m.idle_timeout)
        key = (tuple(sorted(new.match.items())), new.priority, new.table_id)
        if key in pos:
            table[pos[key]] = new
        else:
            pos[key] = len(table)
            table.append(new)

    def _candidates(self, dpid: int, table_id: int, dst):
        idx = self._index.get((dpid, table_id))
        if idx is None:
            idx = {}
            for i, e in enumerate(self.tables.get(dpid, [])):
                if e.table_id == table_id:
                    m = e.match.get("ipv4_dst")    # a masked match: always a candidate
                    idx.setdefault(m if isinstance(m, str) else None, []).append((i, e))
            self._index[(dpid, table_id)] = idx
        return idx.get(None, []) + (idx.get(dst, []) if dst is not None else [])

    def lookup(self, dpid: int, table_id: int = F.TABLE_ROUTE, **pkt):
        key = (dpid, table_id, tuple(sorted(pkt.items())))
        if key not in self._memo:
            self._memo[key] = self._lookup(dpid, table_id, pkt)
        return self._memo[key]

    def _lookup(self, dpid: int, table_id: int, pkt: dict):
        best = None
        for i, e in sorted(self._candidates(dpid, table_id, pkt.get("ipv4_dst")),
                           key=lambda c: c[0]):
            if all(_field_matches(v, pkt.get(k)) for k, v in e.match.items()):
                if best is None or e.priority > best.priority:
                    best = e
        return best


def harness(topo, cls=None):
    """A tests.unit.helpers.Harness (or subclass) on an IndexedTable."""
    from tests.unit.helpers import Harness
    h = (cls or Harness)(topo)
    h.table = IndexedTable()
    return h


def route_flows(table) -> dict[tuple[int, str], list]:
    """(dpid, dst ip) -> the table-1 entries routing that destination (our
    cookie, class other/vnc/migration, any generation)."""
    out: dict[tuple[int, str], list] = {}
    for dpid, entries in table.tables.items():
        for e in entries:
            info = C.parse_cookie(e.cookie)
            if e.table_id == F.TABLE_ROUTE and info.ours and info.cls in ROUTED and info.dst:
                out.setdefault((dpid, info.dst), []).append(e)
    return out


def _shape(entries) -> set:
    return {(tuple(sorted(dict(e.match).items())), e.priority, e.cookie, e.out_port)
            for e in entries}


def assert_installed_matches_table(h, skip=frozenset()) -> None:
    """Router.installed is exactly what the fake tables hold: every
    (dpid, ip) in it has the complete generation-0 flow set of
    F.destination_flows, all to the recorded port, and nothing else routes
    a destination anywhere.  Switches in ``skip`` (gone, their tables
    unknown) are left out."""
    held = {k: v for k, v in route_flows(h.table).items() if k[0] not in skip}
    installed = {k: v for k, v in h.router.installed.items() if k[0] not in skip}
    assert set(held) == set(installed), (
        f"table holds {sorted(set(held) - set(installed))} not in Router.installed, "
        f"misses {sorted(set(installed) - set(held))}")
    for (dpid, ip), port in installed.items():
        want = _shape(F.destination_flows(dpid, ip, port, h.router.plan))
        have = _shape(held[(dpid, ip)])
        assert have == want, f"dpid {dpid} dst {ip}: flows {have ^ want} differ " \
                             f"(installed says port {port})"


def assert_routes_are_trees(h, skip=frozenset()) -> None:
    """The tables route exactly the known hosts, each along its
    shortest-path tree (NetView.out_ports_to): no flow for a forgotten or
    unreachable destination, none missing."""
    want = {}
    for ip, loc in h.router.view.hosts.items():
        for dpid, port in h.router.view.out_ports_to(loc.dpid, loc.port).items():
            want[(dpid, ip)] = {port}
    held = {k: {e.out_port for e in v} for k, v in route_flows(h.table).items()
            if k[0] not in skip}
    want = {k: v for k, v in want.items() if k[0] not in skip}
    assert held == want, (f"stale: {sorted(set(held) - set(want))}, "
                          f"missing: {sorted(set(want) - set(held))}, "
                          f"wrong: {sorted(k for k in held if k in want and held[k] != want[k])}")


def switch_graph(h) -> nx.Graph:
    """The physical switch graph, from the harness' wiring (``h.peer``)."""
    g = nx.Graph()
    g.add_nodes_from(h.dpid.values())
    g.add_edges_from((a[0], b[0]) for a, b in h.peer.items())
    return g


def assert_full_reachability(h, packet: tuple, sources=None) -> int:
    """Every ordered pair of hosts: the fake tables deliver a packet (one of
    PACKETS) from the source's switch to the destination's exact (dpid,
    port) along a shortest path (Harness.trace raises on loops), by flows
    of the packet's class for that destination on every hop.  Traces only
    depend on the source's switch, so each (source switch, destination) is
    traced once.  Returns the number of traces."""
    fields, cls = packet
    dist = dict(nx.all_pairs_shortest_path_length(switch_graph(h)))
    hosts = [x.name for x in h.topo.hosts]
    seen: dict[tuple[int, str], list] = {}
    for a in (sources or hosts):
        src_dpid = h.where(a)[0]
        for b in hosts:
            if a == b:
                continue
            ip = h.topo.host(b).ip
            key = (src_dpid, ip)
            if key not in seen:
                seen[key] = h.trace(a, ip, **fields)
                for dpid, _port in seen[key]:
                    e = h.table.lookup(dpid, F.TABLE_ROUTE, eth_type=F.ETH_IPV4,
                                       ipv4_dst=ip, **fields)
                    assert C.parse_cookie(e.cookie) == C.CookieInfo(True, cls, ip), \
                        f"{fields} to {ip} on dpid {dpid} hits {C.parse_cookie(e.cookie)}"
            hops = seen[key]
            want = h.where(b)
            assert hops[-1] == want, f"{a} -> {b} ({ip}) ends at {hops[-1]}, not {want}: {hops}"
            assert len(hops) == dist[src_dpid][want[0]] + 1, \
                f"{a} -> {b}: {hops} is not a shortest path"
    return len(seen)


# -- documents for the validators ---------------------------------------------

def model_field_names(*models) -> tuple[str, ...]:
    """Every field name of pydantic ``models`` and of the models nested in
    their fields (followed through Optional, tuple, list ...)."""
    from pydantic import BaseModel
    names: set[str] = set()
    todo, seen = list(models), set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for name, f in m.model_fields.items():
            names.add(name)
            types = [f.annotation]
            while types:
                t = types.pop()
                types += typing.get_args(t)
                if isinstance(t, type) and issubclass(t, BaseModel):
                    todo.append(t)
    return tuple(sorted(names))


def _field_names() -> tuple[str, ...]:
    from controller import config
    from testbed import scenario
    return model_field_names(config.ControllerConfig, config.Policy, scenario.Scenario)


#: every key the scenario and controller-configuration models know (read
#: from the models), so random documents reach the field validators, not
#: only "unknown key"
FIELD_NAMES = _field_names()

#: strings the models give meaning to, and some that are hostile
WORDS = (
    "paper", "multisite", "ring", "fast", "paper", "slow", "auto", "kvm", "tcg",
    "tcl1", "tcl2", "pm1", "pm2", "vm1", "vm2", "vm9", "t1x1", "p1x1", "v1x1",
    "10.0.0.11", "10.0.0.12", "qemu+unix:///system?socket=/x",
    "", " ", "../../etc/passwd", "/dev/null", "C:\\x\\y", "~/x", "x\x00y", "\ud7ff",
    "ünïcødé", "虚拟机", "🙂", "\u202e", "\n", "5900", "1e400", "nan", "true", "null",
)

HUGE = (10**400, -10**400, 2**63, 2**64, 2**1024)

#: too large for a float (float() raises OverflowError)
huge_ints = st.sampled_from(HUGE)
#: any integer a float can hold, and the models' bounds
plain_ints = (st.integers(-(2**200), 2**200)
              | st.sampled_from((0, 1, -1, 32, 250, 251, 5900, 65535, 65536)))
floats = st.floats() | st.sampled_from((math.inf, -math.inf, math.nan, 0.0, -0.0, 1e308))
texts = st.text(max_size=12) | st.sampled_from(WORDS)


def scalars():
    return st.none() | st.booleans() | plain_ints | huge_ints | floats | texts


def keys():
    """Mapping keys as YAML can produce them: mostly strings, some not."""
    return (st.sampled_from(FIELD_NAMES) | st.text(max_size=8) | st.integers()
            | st.none() | st.booleans() | st.floats(allow_nan=False) | huge_ints)


def documents(max_leaves: int = 25):
    """Any JSON/YAML-like value: nested dicts and lists of scalars."""
    return st.recursive(
        scalars(),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys(), kids, max_size=5),
        max_leaves=max_leaves)


def mappings():
    """Top-level mappings whose keys are mostly the models' own fields."""
    return st.dictionaries(st.sampled_from(FIELD_NAMES) | keys(), documents(max_leaves=15),
                           max_size=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _copy(node):
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def near_values():
    """Values close to valid ones: numbers at and beyond the ranges,
    wrong-but-plausible types, empty containers."""
    return (scalars() | st.just([]) | st.just({}) | st.just([[]])
            | st.lists(plain_ints, min_size=1, max_size=3)
            | st.lists(st.lists(plain_ints, max_size=3), min_size=1, max_size=2))


def same_type(value):
    """Another value of the same type: a string for a string (names the
    topology knows or not), a number for a number..."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return plain_ints | huge_ints
    if isinstance(value, float):
        return floats | plain_ints
    if isinstance(value, str):
        return texts
    return scalars()


@st.composite
def mutated(draw, base):
    """``base`` (a valid document) with one node replaced (often by a value
    of the same type), deleted, or an unknown key inserted.  Returns
    (document, path of the mutation)."""
    doc = _copy(base)
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    op = draw(st.sampled_from(("same-type", "same-type", "same-type", "replace", "nested",
                               "delete", "insert")))
    if op == "same-type" and not isinstance(parent[last], (dict, list)):
        parent[last] = draw(same_type(parent[last]))
    elif op in ("replace", "same-type"):
        parent[last] = draw(near_values())
    elif op == "nested":
        parent[last] = draw(documents(max_leaves=10))
    elif op == "delete":
        del parent[last]
    else:
        target = parent[last]
        if isinstance(target, dict):
            target[draw(keys())] = draw(scalars())
        elif isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(documents(8)))
        else:
            parent[last] = [target, draw(scalars())]
    return doc, path
