"""The shim side of the engine/router boundary: :class:`RouterNetwork`
implements the OVCT engine's :class:`controller.ovct.Network` on top of the
:class:`controller.routing.Router`.  Each call runs under the lock the os-ken
handlers share, and the flow plan it returns goes out through ``send`` (the
shim's OpenFlow sender; in unit tests, the fake flow table).  No os-ken
here, so the unit tests use the very same glue as the controller.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import networkx as nx

from controller.classes import VNC
from controller.cost import Rates
from controller.flows import Barrier, FlowMod, Message, PacketOut, session_monitor
from controller.routing import Router, Update, VncConnection
from controller.stats import RateMeter


class RouterNetwork:
    def __init__(self, router: Router, send: Callable[[list[Message]], None], lock=None,
                 rates: RateMeter | None = None):
        self.router = router
        self.send = send
        self.lock = lock if lock is not None else contextlib.nullcontext()
        #: relay rates from the switches' statistics (the shim feeds them;
        #: None: no statistics, the engine's cost model uses its priors)
        self.rates = rates

    def _do(self, fn, *args) -> list[Message]:
        with self.lock:
            msgs = fn(*args)
        self.send(msgs)
        return msgs

    @staticmethod
    def _flow_mods(msgs) -> int:
        return sum(isinstance(m, FlowMod) for m in msgs)

    @staticmethod
    def _barriers(msgs, tag: str) -> set[int]:
        return {m.dpid for m in msgs if isinstance(m, Barrier) and m.tag == tag}

    def locate(self, ip: str) -> tuple[int, int] | None:
        with self.lock:
            h = self.router.view.hosts.get(ip)
            return (h.dpid, h.port) if h else None

    def hops(self, a: int, b: int) -> int | None:
        with self.lock:
            return self.router.view.hop_distance(a, b)

    def levels(self, dpid: int) -> Iterator[list[int]]:
        """The switches at 0, 1, 2 ... hops from ``dpid``, one list per
        distance, computed only as far as the caller reads."""
        with self.lock:
            g = self.router.view.graph()      # a new graph object on every change
        if dpid not in g:
            return
        seen = {dpid}
        level = [dpid]
        while level:
            yield level
            nxt = []
            for d in level:
                for n in g.adj[d]:
                    if n not in seen:
                        seen.add(n)
                        nxt.append(n)
            level = nxt

    def path(self, a: int, b: int) -> list[int] | None:
        """The switches traffic from switch ``a`` to switch ``b`` crosses
        (both included), along the router's tree towards ``b``."""
        with self.lock:
            g = self.router.view.graph()
        if a not in g or b not in g:
            return None
        parent = {b: None}
        for p, c in nx.bfs_edges(g, b, sort_neighbors=sorted):
            parent[c] = p
        if a not in parent:
            return None
        out = [a]
        while out[-1] != b:
            out.append(parent[out[-1]])
        return out

    def session_rates(self, client_ip: str, vm_ip: str) -> Rates | None:
        """A session's VNC relay per switch (to the VM and to the client)."""
        if self.rates is None:
            return None
        with self.lock:
            parts = [self.rates.rates(vm_ip, VNC), self.rates.rates(client_ip, VNC)]
        per: dict[int, tuple[float, float]] = {}
        since = None
        for part in parts:
            for dpid, (pk, by, t0) in part.items():
                p0, b0 = per.get(dpid, (0.0, 0.0))
                per[dpid] = (p0 + pk, b0 + by)
                since = t0 if since is None else max(since, t0)
        return Rates(per, since) if per else None

    def relayed(self, cls: str, ips) -> tuple[int, int] | None:
        """Cumulative packets and bytes of class ``cls`` to ``ips``, all
        switches together (None: no statistics)."""
        if self.rates is None:
            return None
        with self.lock:
            return self.rates.total(cls, ips)

    def prepare_move(self, ip: str, dpid: int, port: int) -> int:
        return self._flow_mods(self._do(self.router.prepare_move, ip, dpid, port))

    def hold(self, ip: str) -> int:
        return self._flow_mods(self._do(self.router.hold, ip))

    def commit_move(self, ip: str, tag: str) -> Update:
        with self.lock:
            msgs = self.router.commit_move(ip, tag)
            dropped = self.router.release_log.pop(ip, (0, 0))[1]
        self.send(msgs)
        return Update(self._flow_mods(msgs), frozenset(self._barriers(msgs, tag)),
                      sum(isinstance(m, PacketOut) for m in msgs), dropped)

    def settle(self, ip: str, dpid: int, port: int) -> int:
        return self._flow_mods(self._do(self.router.settle, ip, dpid, port))

    def pin(self, ip: str) -> None:
        with self.lock:
            self.router.pin(ip)


    def paper_move(self, ip: str, dpid: int, port: int, tag: str) -> Update:
        msgs = self._do(self.router.paper_move, ip, dpid, port, tag)
        return Update(self._flow_mods(msgs), frozenset(self._barriers(msgs, tag)))

    def trust_vms(self, macs: dict[str, str]) -> None:
        with self.lock:
            self.router.trust.set_vms(macs)

    def expect_vm(self, ip: str, where) -> None:
        with self.lock:
            self.router.trust.expect(ip, where)

    def session_monitor(self, conn: VncConnection, idle_s: int) -> None:
        self.send([session_monitor(conn.dpid, conn.client_ip, conn.client_port,
                                   conn.server_ip, conn.server_port, idle_s)])
