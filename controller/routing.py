"""The routing controller's logic, free of os-ken (the shim is
:mod:`controller.app`).

Every handler takes plain values (``now`` included) and returns a list of
messages from :mod:`controller.flows`.  The router

* learns where each IPv4 host lives (ARP, RARP, IPv4 seen on an edge port),
* answers ARP for known hosts itself (proxy ARP) and otherwise floods the
  request out of edge ports only (never across inter-switch links, so rings
  cannot loop),
* keeps, for every known destination and every switch, flows to the next
  hop of a shortest path (destination-based trees), and reconciles them when
  a host moves or the topology changes: new switches get ADDs, changed next
  hops one cookie-selected MODIFY per switch, unreachable ones a DELETE.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from controller import flows as F
from controller.netview import HostLoc, NetView

ZERO_IP = "0.0.0.0"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ARP_REQUEST, ARP_REPLY = 1, 2
ARP_FLOOD_HOLDOFF = 1.0   # seconds: one flood per (sender, target) per second


@dataclass(frozen=True)
class Packet:
    """The fields of a packet-in the router uses (decoded by the shim)."""
    eth_src: str
    eth_dst: str
    eth_type: int
    arp_op: int | None = None
    arp_sha: str | None = None
    arp_spa: str | None = None
    arp_tha: str | None = None
    arp_tpa: str | None = None
    ip_src: str | None = None
    ip_dst: str | None = None
    ip_proto: int | None = None
    tcp_src: int | None = None
    tcp_dst: int | None = None
    tcp_flags: int | None = None


EventSink = Callable[[str, dict], None]


def _no_events(kind: str, payload: dict) -> None:
    pass


@dataclass
class Router:
    plan: F.ClassPlan = F.DEFAULT_PLAN
    events: EventSink = _no_events
    view: NetView = field(default_factory=NetView)
    # what we have installed: (dpid, dst ip) -> out port
    installed: dict[tuple[int, str], int] = field(default_factory=dict)
    _arp_floods: dict[tuple[str, str], float] = field(default_factory=dict)

    # -- switches and links -------------------------------------------------
    def switch_enter(self, dpid: int, ports: set[int], now: float) -> list[F.Message]:
        self.view.add_switch(dpid, ports)
        for key in [k for k in self.installed if k[0] == dpid]:
            del self.installed[key]      # a (re)connected switch starts empty
        self.events("switch_enter", {"dpid": dpid, "ports": sorted(ports)})
        return [*F.static_flows(dpid), *self.reconcile()]

    def switch_leave(self, dpid: int, now: float) -> list[F.Message]:
        self.view.remove_switch(dpid)
        for key in [k for k in self.installed if k[0] == dpid]:
            del self.installed[key]
        self.events("switch_leave", {"dpid": dpid})
        return self.reconcile()

    def port_add(self, dpid: int, port: int) -> list[F.Message]:
        self.view.add_port(dpid, port)
        return []

    def port_delete(self, dpid: int, port: int) -> list[F.Message]:
        self.view.remove_port(dpid, port)
        return self.reconcile()

    def link_add(self, src: tuple[int, int], dst: tuple[int, int]) -> list[F.Message]:
        if not self.view.add_link(src, dst):
            return []
        self.events("link_add", {"src": list(src), "dst": list(dst)})
        return self.reconcile()

    def link_delete(self, src: tuple[int, int]) -> list[F.Message]:
        if not self.view.remove_link(src):
            return []
        self.events("link_delete", {"src": list(src)})
        return self.reconcile()

    # -- packets ----------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, pkt: Packet | None, data: bytes,
                  now: float) -> list[F.Message]:
        """Handle one packet-in.  ``pkt`` is None when the shim could not
        decode it: such packets are ignored."""
        if pkt is None or dpid not in self.view.ports:
            return []
        if self.view.is_link_port(dpid, in_port):
            return []   # only edge ports teach us where hosts are
        out: list[F.Message] = []
        if pkt.eth_type == F.ETH_ARP and pkt.arp_op in (ARP_REQUEST, ARP_REPLY):
            out += self._learn(pkt.arp_spa, pkt.arp_sha, dpid, in_port)
            out += self._arp(dpid, in_port, pkt, data, now)
        elif pkt.eth_type == F.ETH_RARP:
            known = self.view.host_by_mac(pkt.eth_src)
            if known is not None:
                out += self._learn(known.ip, known.mac, dpid, in_port)
        elif pkt.eth_type == F.ETH_IPV4 and pkt.ip_src and pkt.ip_dst:
            out += self._learn(pkt.ip_src, pkt.eth_src, dpid, in_port)
            dst = self.view.hosts.get(pkt.ip_dst)
            if dst is not None:
                # flows were not there yet: deliver this one packet directly
                out.append(F.PacketOut(dst.dpid, (dst.port,), data))
        return out

    def _learn(self, ip: str | None, mac: str | None, dpid: int,
               port: int) -> list[F.Message]:
        if not ip or ip == ZERO_IP or not mac or mac == BROADCAST_MAC:
            return []
        old = self.view.hosts.get(ip)
        new = HostLoc(ip, mac, dpid, port)
        if old == new:
            return []
        self.view.hosts[ip] = new
        if old is None:
            self.events("host_learnt", {"ip": ip, "mac": mac, "dpid": dpid, "port": port})
        else:
            self.events("host_moved", {"ip": ip, "mac": mac,
                                       "from": [old.dpid, old.port],
                                       "to": [dpid, port]})
        return self.reconcile()

    def _arp(self, dpid: int, in_port: int, pkt: Packet, data: bytes,
             now: float) -> list[F.Message]:
        target = self.view.hosts.get(pkt.arp_tpa or "")
        if pkt.arp_op == ARP_REQUEST:
            if pkt.arp_tpa == pkt.arp_spa:
                return []                      # gratuitous: learnt above
            if target is not None:
                return [F.ArpReply(dpid, in_port, target.mac, target.ip,
                                   pkt.arp_sha, pkt.arp_spa)]
            key = (pkt.arp_spa or "", pkt.arp_tpa or "")
            last = self._arp_floods.get(key)
            if last is not None and now - last < ARP_FLOOD_HOLDOFF:
                return []
            self._arp_floods[key] = now
            return self._flood(dpid, in_port, data)
        # a reply: deliver it to the requester if we know where it is
        requester = self.view.hosts.get(pkt.arp_tpa or "")
        if requester is not None and (requester.dpid, requester.port) != (dpid, in_port):
            return [F.PacketOut(requester.dpid, (requester.port,), data)]
        return []

    def _flood(self, in_dpid: int, in_port: int, data: bytes) -> list[F.Message]:
        out = []
        for dpid in sorted(self.view.ports):
            ports = tuple(p for p in self.view.edge_ports(dpid)
                          if (dpid, p) != (in_dpid, in_port))
            if ports:
                out.append(F.PacketOut(dpid, ports, data))
        return out

    # -- flow reconciliation --------------------------------------------------
    def desired(self) -> dict[tuple[int, str], int]:
        want: dict[tuple[int, str], int] = {}
        for ip, h in sorted(self.view.hosts.items()):
            for dpid, port in self.view.out_ports_to(h.dpid, h.port).items():
                want[(dpid, ip)] = port
        return want

    def reconcile(self) -> list[F.Message]:
        """Bring the installed flows to the desired state, with the fewest
        flow-mods: ADD a destination's flow set where it is new, one MODIFY
        where only its next hop changed, one DELETE where it is gone."""
        want = self.desired()
        out: list[F.Message] = []
        for key, port in want.items():
            have = self.installed.get(key)
            if have == port:
                continue
            dpid, ip = key
            if have is None:
                out += F.destination_flows(dpid, ip, port, self.plan)
            else:
                out.append(F.repoint_destination(dpid, ip, port))
            self.installed[key] = port
        for key in [k for k in self.installed if k not in want]:
            out.append(F.delete_destination(*key))
            del self.installed[key]
        return out

    # -- state for the outside world -------------------------------------------
    def snapshot(self) -> dict:
        v = self.view
        return {
            "switches": sorted(v.ports),
            "links": sorted([list(s), list(d)] for s, d in v.links.items()),
            "hosts": {ip: {"mac": h.mac, "dpid": h.dpid, "port": h.port}
                      for ip, h in sorted(v.hosts.items())},
            "installed_destinations": len({ip for _, ip in self.installed}),
        }
