"""What the controller knows of the network: switches, their ports,
inter-switch links, where each host lives, and shortest paths.  Pure data."""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx


@dataclass(frozen=True)
class HostLoc:
    ip: str
    mac: str
    dpid: int
    port: int


@dataclass
class NetView:
    ports: dict[int, set[int]] = field(default_factory=dict)      # dpid -> ports
    links: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    hosts: dict[str, HostLoc] = field(default_factory=dict)       # ip -> loc
    _graph: nx.Graph | None = field(default=None, repr=False)

    # -- switches and links -------------------------------------------------
    def add_switch(self, dpid: int, ports: set[int]) -> None:
        self.ports[dpid] = set(ports)
        self._graph = None

    def remove_switch(self, dpid: int) -> None:
        """A switch left: its ports and links go; the hosts behind it are
        kept (unreachable until it is back: a reconnecting switch must not
        make the controller forget who hangs off it)."""
        self.ports.pop(dpid, None)
        for src in [k for k, v in self.links.items() if k[0] == dpid or v[0] == dpid]:
            del self.links[src]
        self._graph = None

    def add_port(self, dpid: int, port: int) -> None:
        self.ports.setdefault(dpid, set()).add(port)

    def remove_port(self, dpid: int, port: int) -> None:
        self.ports.get(dpid, set()).discard(port)
        self.remove_link((dpid, port))
        for ip in [ip for ip, h in self.hosts.items() if (h.dpid, h.port) == (dpid, port)]:
            del self.hosts[ip]

    def add_link(self, src: tuple[int, int], dst: tuple[int, int]) -> bool:
        """Record a directed link (as LLDP discovers them). Returns True if
        the view changed.  Hosts wrongly learnt on that port are dropped."""
        if self.links.get(src) == dst:
            return False
        self.links[src] = dst
        for ip in [ip for ip, h in self.hosts.items() if (h.dpid, h.port) == src]:
            del self.hosts[ip]
        self._graph = None
        return True

    def remove_link(self, src: tuple[int, int]) -> bool:
        if self.links.pop(src, None) is None:
            return False
        self._graph = None
        return True

    def is_link_port(self, dpid: int, port: int) -> bool:
        return (dpid, port) in self.links or any(
            v == (dpid, port) for v in self.links.values())

    def edge_ports(self, dpid: int) -> list[int]:
        return sorted(p for p in self.ports.get(dpid, ())
                      if not self.is_link_port(dpid, p))

    def graph(self) -> nx.Graph:
        """Switch graph; an edge exists once LLDP saw both directions."""
        if self._graph is None:
            g = nx.Graph()
            g.add_nodes_from(sorted(self.ports))
            for (sd, sp), (dd, dp) in sorted(self.links.items()):
                if self.links.get((dd, dp)) == (sd, sp) and sd in self.ports and dd in self.ports:
                    g.add_edge(sd, dd, ports={sd: sp, dd: dp})
            self._graph = g
        return self._graph

    # -- hosts ----------------------------------------------------------------
    def addresses_at(self, loc: tuple[int, int]) -> set[str]:
        """The addresses learnt at one switch port."""
        return {ip for ip, h in self.hosts.items() if (h.dpid, h.port) == loc}

    def host_by_mac(self, mac: str) -> HostLoc | None:
        for h in self.hosts.values():
            if h.mac == mac:
                return h
        return None

    # -- paths ----------------------------------------------------------------
    def out_ports_to(self, dst_dpid: int, dst_port: int) -> dict[int, int]:
        """For every switch that can reach ``dst_dpid``: the port on the
        shortest path towards it (the last hop uses ``dst_port``).  Ties are
        broken deterministically (lowest dpid first)."""
        g = self.graph()
        if dst_dpid not in g:
            return {}
        out = {dst_dpid: dst_port}
        # BFS from the destination, visiting neighbours in dpid order, gives
        # each switch its parent on a shortest path.
        for parent, child in nx.bfs_edges(g, dst_dpid, sort_neighbors=sorted):
            out[child] = g.edges[child, parent]["ports"][child]
        return out

    def hop_distance(self, a: int, b: int) -> int | None:
        try:
            return nx.shortest_path_length(self.graph(), a, b)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return None
