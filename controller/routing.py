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
  hops one cookie-selected MODIFY per switch, unreachable ones a DELETE;
* reports VNC connections (the SYN and FIN/RST copies of table 0) and the
  arrival of watched hosts at a new port to OVCT through ``hooks``;
* lets OVCT take a moving VM's flows over (``pin``) and move them in one of
  two ways: the report's (``paper_move``: delete everything for the address,
  then install the new flows) or make-before-break (``prepare_move`` while
  the VM migrates, ``commit_move`` when it resumes at the destination).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from controller import events as E
from controller import flows as F
from controller.classes import VNC as C_VNC
from controller.netview import HostLoc, NetView
from controller.trust import Trust

ZERO_IP = "0.0.0.0"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ARP_REQUEST, ARP_REPLY = 1, 2
ARP_FLOOD_HOLDOFF = 1.0   # seconds: one flood per (sender, target) per second
#: frames kept per held destination (a paused VM's traffic); beyond: dropped
HOLD_LIMIT = 4096
#: a switch whose controller connection dropped keeps forwarding with the
#: flows it has (fail-mode secure): for this long it stays in the topology
#: (routes through it kept, its links' deletions deferred); gone longer, it
#: is removed with its links
SWITCH_GRACE_S = 15.0
#: links of a switch that came back must be seen again by LLDP within this
#: long, or they are deleted (os-ken forgot them when the switch left)
LINK_VERIFY_S = 10.0


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


@dataclass(frozen=True)
class VncConnection:
    """A VNC connection seen at the client's edge switch (OVCT phase 1)."""
    kind: str            # "start" (the client's SYN), "accept" (the server's
    #                      SYN+ACK), "fin" or "rst"
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    dpid: int            # where the copy came from
    in_port: int
    time: float


@dataclass(frozen=True)
class Staging:
    """A destination being moved make-before-break."""
    dpid: int
    port: int
    out_ports: dict[int, int]


@dataclass
class Held:
    """A destination whose IPv4 traffic the switches hand to the controller
    (hold flows) while its VM is paused for the switchover; the frames wait
    here until the flows point at the VM's new place."""
    switches: list[int]
    frames: list[bytes] = field(default_factory=list)
    dropped: int = 0


@dataclass(frozen=True)
class Update:
    """What a network update sent: flow-mods, the switches whose barrier
    replies confirm it, and held frames delivered (or lost to the limit)."""
    flow_mods: int
    barriers: frozenset[int] = frozenset()
    released: int = 0
    dropped: int = 0


def _in_masks(port: int | None, masks) -> bool:
    return port is not None and any((port & m) == v for v, m in masks)


@dataclass
class Router:
    plan: F.ClassPlan = F.DEFAULT_PLAN
    events: EventSink = _no_events
    view: NetView = field(default_factory=NetView)
    # what we have installed: (dpid, dst ip) -> out port
    installed: dict[tuple[int, str], int] = field(default_factory=dict)
    _arp_floods: dict[tuple[str, str], float] = field(default_factory=dict)
    # OVCT: destinations whose flows OVCT manages while they move
    pinned: set[str] = field(default_factory=set)
    staging: dict[str, Staging] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)
    #: who may claim which address from which port (see controller.trust)
    trust: Trust = field(default_factory=Trust)
    #: (frames delivered, frames lost) of each destination's last release
    release_log: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: switches whose controller connection dropped: dpid -> since
    disconnected: dict[int, float] = field(default_factory=dict)
    #: links of a returned switch not yet seen again by LLDP: src -> since
    unverified_links: dict[tuple[int, int], float] = field(default_factory=dict)
    # callbacks: on_vnc(VncConnection), on_host_seen(ip, HostLoc, now) for
    # pinned hosts that show up somewhere new; they must not block
    on_vnc: Callable[[VncConnection], None] | None = None
    on_host_seen: Callable[[str, HostLoc, float], None] | None = None

    def __post_init__(self):
        if self.trust.events is None:
            self.trust.events = self.events

    # -- switches and links -------------------------------------------------
    def switch_enter(self, dpid: int, ports: set[int], now: float) -> list[F.Message]:
        """A switch connects (first time, again after leaving, or on a new
        connection while the old one lingered): it gets its complete
        intended table -- whatever of ours it kept is deleted first (but
        session monitors), then the pipeline, every route, and the staging
        or hold flows of moves under way."""
        self.view.add_switch(dpid, ports)
        for key in [k for k in self.installed if k[0] == dpid]:
            del self.installed[key]      # a (re)connected switch starts empty
        if self.disconnected.pop(dpid, None) is not None:
            # back within the grace: its links were kept; LLDP must confirm them
            for src, dst in self.view.links.items():
                if dpid in (src[0], dst[0]):
                    self.unverified_links.setdefault(src, now)
        self.events(E.SWITCH_ENTER, {"dpid": dpid, "ports": sorted(ports)})
        msgs = [*F.wipe(dpid), *F.static_flows(dpid, self.plan, self.trust.host_addrs)]
        msgs += self.reconcile()
        for ip in sorted(self.pinned):
            st = self.staging.get(ip)
            if st is not None and dpid in st.out_ports:
                msgs += F.destination_flows(dpid, ip, st.out_ports[dpid], self.plan, gen=1)
            h = self.view.hosts.get(ip)         # its live path, where it still is
            port = self.view.out_ports_to(h.dpid, h.port).get(dpid) if h else None
            if port is not None:
                msgs += F.destination_flows(dpid, ip, port, self.plan)
                self.installed[(dpid, ip)] = port
            held = self.held.get(ip)
            if held is not None and port is not None:
                msgs.append(F.hold_destination(dpid, ip))
                if dpid not in held.switches:
                    held.switches.append(dpid)
        return msgs

    def switch_leave(self, dpid: int, now: float) -> list[F.Message]:
        """A switch's controller connection dropped.  Its data plane goes on
        with the flows it has (fail-mode secure), so for ``SWITCH_GRACE_S``
        it stays in the topology: routes through it are kept and the link
        deletions os-ken reports for it are deferred.  A switch that really
        failed takes its neighbours' ports down (:meth:`port_down`, at
        once); one still gone after the grace is removed (:meth:`tick`)."""
        if dpid not in self.view.ports:
            return []
        self.disconnected[dpid] = now
        self.events(E.SWITCH_LEAVE, {"dpid": dpid})
        return []

    def _remove_switch(self, dpid: int) -> list[F.Message]:
        # links waiting for LLDP that end at it go with it: looked up while
        # the view still has them (after, only the near end can be matched)
        for src in [k for k in self.unverified_links if self._touches(k, dpid)]:
            del self.unverified_links[src]
        self.view.remove_switch(dpid)
        self.disconnected.pop(dpid, None)
        for key in [k for k in self.installed if k[0] == dpid]:
            del self.installed[key]
        self.events(E.SWITCH_GONE, {"dpid": dpid})
        return self.reconcile()

    def _touches(self, src: tuple[int, int], dpid: int) -> bool:
        dst = self.view.links.get(src)
        return src[0] == dpid or (dst is not None and dst[0] == dpid)

    def tick(self, now: float) -> list[F.Message]:
        """Time-based topology changes: switches gone longer than the grace
        are removed; links of a returned switch that LLDP has not confirmed
        are deleted."""
        out: list[F.Message] = []
        for dpid, since in sorted(self.disconnected.items()):
            if now - since >= SWITCH_GRACE_S:
                out += self._remove_switch(dpid)
        for src, since in sorted(self.unverified_links.items()):
            if now - since >= LINK_VERIFY_S:
                del self.unverified_links[src]
                out += self._delete_link(src)
        return out

    def port_add(self, dpid: int, port: int) -> list[F.Message]:
        self.view.add_port(dpid, port)
        return []

    def port_delete(self, dpid: int, port: int) -> list[F.Message]:
        self._forget_link_state(dpid, port)
        self.view.remove_port(dpid, port)
        return self.reconcile()

    def port_down(self, dpid: int, port: int) -> list[F.Message]:
        """A port lost its link (the switch says so): the links at it go at
        once, whatever the other end's connection state."""
        out: list[F.Message] = []
        loc = (dpid, port)
        for src in [k for k, v in self.view.links.items() if k == loc or v == loc]:
            self.unverified_links.pop(src, None)
            out += self._delete_link(src)
        return out

    def _forget_link_state(self, dpid: int, port: int) -> None:
        loc = (dpid, port)
        for src in [k for k in self.unverified_links
                    if k == loc or self.view.links.get(k) == loc]:
            del self.unverified_links[src]

    def link_add(self, src: tuple[int, int], dst: tuple[int, int]) -> list[F.Message]:
        self.unverified_links.pop(src, None)         # LLDP sees it (again)
        if not self.view.add_link(src, dst):
            return []
        self.events(E.LINK_ADD, {"src": list(src), "dst": list(dst)})
        return self.reconcile()

    def link_delete(self, src: tuple[int, int]) -> list[F.Message]:
        dst = self.view.links.get(src)
        if dst is not None and (src[0] in self.disconnected or dst[0] in self.disconnected):
            # os-ken drops a switch's links when its connection does; the
            # link itself may be fine: it is checked when the switch returns
            # (LLDP) or removed with the switch after the grace
            return []
        return self._delete_link(src)

    def _delete_link(self, src: tuple[int, int]) -> list[F.Message]:
        if not self.view.remove_link(src):
            return []
        self.events(E.LINK_DELETE, {"src": list(src)})
        return self.reconcile()

    # -- packets ----------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, pkt: Packet | None, data: bytes,
                  now: float, table_id: int = F.TABLE_ROUTE) -> list[F.Message]:
        """Handle one packet-in.  ``pkt`` is None when the shim could not
        decode it: such packets are ignored.  ``table_id`` is the table that
        sent it: copies from the detect table were forwarded by the switch
        already and are only looked at, never delivered again."""
        if pkt is None or dpid not in self.view.ports:
            return []
        if (table_id == F.TABLE_ROUTE and pkt.eth_type == F.ETH_IPV4
                and pkt.ip_dst in self.held):
            return self._keep(pkt, data, dpid, in_port, now)
        if self.view.is_link_port(dpid, in_port):
            # only edge ports teach us where hosts are; but a route miss here
            # is a packet that outran its path's flows (one switch had them,
            # the next not yet): deliver it, or a new path's first packet is lost
            return self._deliver(pkt, data) if table_id == F.TABLE_ROUTE else []
        if not self.trust.admit((dpid, in_port), now):
            return []   # a flood from this port
        if table_id == F.TABLE_DETECT and pkt.eth_type == F.ETH_IPV4:
            self._vnc(dpid, in_port, pkt, now)
            return self._learn(pkt.ip_src, pkt.eth_src, dpid, in_port, now)
        out: list[F.Message] = []
        if pkt.eth_type == F.ETH_ARP and pkt.arp_op in (ARP_REQUEST, ARP_REPLY):
            out += self._learn(pkt.arp_spa, pkt.arp_sha, dpid, in_port, now)
            out += self._arp(dpid, in_port, pkt, data, now)
        elif pkt.eth_type == F.ETH_RARP:
            known = self.view.host_by_mac(pkt.eth_src)
            if known is not None:
                out += self._learn(known.ip, known.mac, dpid, in_port, now)
        elif pkt.eth_type == F.ETH_IPV4 and pkt.ip_src and pkt.ip_dst:
            out += self._learn(pkt.ip_src, pkt.eth_src, dpid, in_port, now)
            out += self._deliver(pkt, data)
        return out

    def _deliver(self, pkt: Packet, data: bytes) -> list[F.Message]:
        """A route miss for a known destination: its flows were not there
        yet, so this one packet goes straight out of the destination's port."""
        dst = self.view.hosts.get(pkt.ip_dst or "") if pkt.eth_type == F.ETH_IPV4 else None
        return [] if dst is None else [F.PacketOut(dst.dpid, (dst.port,), data)]

    def _keep(self, pkt: Packet, data: bytes, dpid: int, in_port: int,
              now: float) -> list[F.Message]:
        """A frame for a held destination (from any port: one a neighbour
        forwarded just before its hold flow arrived counts too)."""
        h = self.held[pkt.ip_dst]
        if len(h.frames) < HOLD_LIMIT:
            h.frames.append(data)
        else:
            h.dropped += 1
        if self.view.is_link_port(dpid, in_port):
            return []
        return self._learn(pkt.ip_src, pkt.eth_src, dpid, in_port, now)

    def _vnc(self, dpid: int, in_port: int, pkt: Packet, now: float) -> None:
        """A copy from the detect table: report VNC connection starts/ends."""
        if self.on_vnc is None or pkt.ip_proto != F.IPPROTO_TCP or pkt.tcp_flags is None:
            return
        masks = self.plan.masks(C_VNC)
        flags = pkt.tcp_flags
        if _in_masks(pkt.tcp_dst, masks):
            client, cport, server, sport = pkt.ip_src, pkt.tcp_src, pkt.ip_dst, pkt.tcp_dst
        elif _in_masks(pkt.tcp_src, masks):
            client, cport, server, sport = pkt.ip_dst, pkt.tcp_dst, pkt.ip_src, pkt.tcp_src
        else:
            return
        if flags & F.TCP_RST:
            kind = "rst"
        elif flags & F.TCP_FIN:
            kind = "fin"
        elif flags & F.TCP_SYN and not flags & F.TCP_ACK and client == pkt.ip_src:
            kind = "start"
        elif flags & F.TCP_SYN and flags & F.TCP_ACK and server == pkt.ip_src:
            kind = "accept"
        else:
            return
        if kind in ("start", "accept"):
            # a session's ends must be who they say: the sender learnt at
            # this very port with this MAC (a spoofed SYN moves nothing)
            sender = self.view.hosts.get(pkt.ip_src)
            if sender is None or (sender.dpid, sender.port, sender.mac) != (
                    dpid, in_port, pkt.eth_src):
                self.trust.refuse((dpid, in_port), f"VNC {kind} from an address not learnt "
                                  "at this port", now, ip=pkt.ip_src, mac=pkt.eth_src)
                return
        self.on_vnc(VncConnection(kind, client, cport, server, sport, dpid, in_port, now))

    def _learn(self, ip: str | None, mac: str | None, dpid: int,
               port: int, now: float = 0.0) -> list[F.Message]:
        if not ip or ip == ZERO_IP or not mac or mac == BROADCAST_MAC:
            return []
        old = self.view.hosts.get(ip)
        new = HostLoc(ip, mac, dpid, port)
        if old == new:
            return []
        if not self.trust.may_learn(ip, mac, (dpid, port), self.view.addresses_at, now):
            return []
        self.view.hosts[ip] = new
        if ip in self.pinned and old is not None and self.on_host_seen is not None:
            self.on_host_seen(ip, new, now)
        if old is None:
            self.events(E.HOST_LEARNT, {"ip": ip, "mac": mac, "dpid": dpid, "port": port})
        else:
            self.events(E.HOST_MOVED, {"ip": ip, "mac": mac,
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
                if (target.dpid, target.port) == (dpid, in_port):
                    # both behind one port (a VM and its KVM host's bridge):
                    # the request reached the target there already, and a
                    # reply from us would teach that bridge a wrong port
                    return []
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
            if ip in self.pinned:
                continue
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
            if have == port or key[0] in self.disconnected:
                continue            # (a disconnected switch is resynced when it returns)
            dpid, ip = key
            if have is None:
                out += F.destination_flows(dpid, ip, port, self.plan)
            else:
                out.append(F.repoint_destination(dpid, ip, port))
            self.installed[key] = port
        for key in [k for k in self.installed if k not in want and k[1] not in self.pinned
                    and k[0] not in self.disconnected]:
            out.append(F.delete_destination(*key))
            del self.installed[key]
        return out

    # -- OVCT: moving a VM's flows ----------------------------------------------
    def pin(self, ip: str) -> None:
        """OVCT owns ``ip``'s flows from now on (until a move ends)."""
        self.pinned.add(ip)

    def prepare_move(self, ip: str, dpid: int, port: int) -> list[F.Message]:
        """Make-before-break, step 1 (while the VM migrates): install the
        path to its new port as staging flows, shadowed by the live ones."""
        self.pin(ip)
        outs = self.view.out_ports_to(dpid, port)
        self.staging[ip] = Staging(dpid, port, outs)
        msgs: list[F.Message] = []
        for d, p in sorted(outs.items()):
            msgs += F.destination_flows(d, ip, p, self.plan, gen=1)
        self.events(E.FLOWS_STAGED, {"ip": ip, "to": [dpid, port], "switches": len(outs)})
        return msgs

    def hold(self, ip: str) -> list[F.Message]:
        """The VM behind ``ip`` is paused for the switchover: every switch
        that forwards to it hands its packets to the controller instead,
        which keeps them until :meth:`commit_move` (delivered at the new
        place) or :meth:`unhold` (at the old one)."""
        switches = sorted({d for (d, i) in self.installed if i == ip})
        self.held[ip] = Held(switches)
        self.events(E.TRAFFIC_HELD, {"ip": ip, "switches": len(switches)})
        return [F.hold_destination(d, ip) for d in switches]

    def _release(self, ip: str, keep_flows_on: set[int]) -> tuple[list[F.Message], int, int]:
        """End holding ``ip``: delete its hold flows (but on the switches in
        ``keep_flows_on``, whose flows for it are being deleted anyway) and
        deliver the frames kept to where it is now.  Returns (messages,
        frames delivered, frames lost)."""
        h = self.held.pop(ip, None)
        if h is None:
            return [], 0, 0
        msgs: list[F.Message] = [F.delete_hold(d, ip) for d in h.switches
                                 if d not in keep_flows_on]
        loc = self.view.hosts.get(ip)
        if loc is None:
            self.release_log[ip] = (0, len(h.frames) + h.dropped)
            return msgs, 0, len(h.frames) + h.dropped
        msgs += [F.PacketOut(loc.dpid, (loc.port,), data) for data in h.frames]
        self.release_log[ip] = (len(h.frames), h.dropped)
        return msgs, len(h.frames), h.dropped

    def unhold(self, ip: str) -> tuple[list[F.Message], int, int]:
        """Stop holding ``ip`` where it is (the switchover did not happen):
        drop the hold flows, deliver what was kept to its current place."""
        return self._release(ip, set())

    def commit_move(self, ip: str, tag: str = "") -> list[F.Message]:
        """Make-before-break, step 2 (the VM runs at its new port): delete
        the live flows on every switch, so the staging ones take over, with a
        barrier per switch; then, traffic-neutral, re-install the new path as
        live flows and drop the staging copy.  Frames held meanwhile go out
        of the new port (the hold flows go with the live ones)."""
        st = self.staging.pop(ip)
        # downstream first: the new location's switch, then outwards in BFS
        # order (out_ports was built that way), so a switch only ever hands
        # packets to a neighbour that already uses the new path -- no
        # transient loop
        old = {d for (d, i) in self.installed if i == ip}
        order = [d for d in st.out_ports if d in old] + sorted(old - set(st.out_ports))
        msgs: list[F.Message] = [F.delete_destination(d, ip, gen=0) for d in order]
        msgs += [F.Barrier(d, tag) for d in sorted(old | set(st.out_ports))]
        for key in [k for k in self.installed if k[1] == ip]:
            del self.installed[key]
        for d, p in sorted(st.out_ports.items()):
            msgs += F.destination_flows(d, ip, p, self.plan, gen=0)
            self.installed[(d, ip)] = p
        msgs += [F.delete_destination(d, ip, gen=1) for d in sorted(st.out_ports)]
        self._relocate(ip, st.dpid, st.port)
        self.pinned.discard(ip)
        released, n, lost = self._release(ip, old)
        self.events(E.FLOWS_COMMITTED, {"ip": ip, "to": [st.dpid, st.port],
                                        "released": n, "dropped": lost})
        return msgs + self.reconcile() + released

    def _relocate(self, ip: str, dpid: int, port: int) -> None:
        """Record that a moved host (same IP and MAC) is now at dpid/port."""
        mac = self.view.hosts[ip].mac if ip in self.view.hosts else ""
        self.view.hosts[ip] = HostLoc(ip, mac, dpid, port)

    def settle(self, ip: str, dpid: int, port: int) -> list[F.Message]:
        """However a move ended, the VM runs at ``dpid``/``port`` (as its
        hypervisor says): drop any staging copy, end OVCT's hold on its
        flows, deliver what was held there, and point every flow at it."""
        st = self.staging.pop(ip, None)
        msgs = [F.delete_destination(d, ip, gen=1) for d in sorted(st.out_ports)] if st else []
        self._relocate(ip, dpid, port)
        self.pinned.discard(ip)
        held, _n, _lost = self.unhold(ip)
        self.events(E.FLOWS_SETTLED, {"ip": ip, "at": [dpid, port]})
        return msgs + self.reconcile() + held

    def paper_move(self, ip: str, dpid: int, port: int, tag: str = "") -> list[F.Message]:
        """The report's network update: delete every flow entry for the
        address on every switch, then install the new ones."""
        old = sorted({d for (d, i) in self.installed if i == ip})
        msgs: list[F.Message] = [F.delete_destination(d, ip) for d in old]
        msgs += [F.Barrier(d, tag + ":deleted") for d in old]
        for key in [k for k in self.installed if k[1] == ip]:
            del self.installed[key]
        self._relocate(ip, dpid, port)
        self.pinned.discard(ip)
        self.staging.pop(ip, None)
        add = self.reconcile()
        msgs += add
        msgs += [F.Barrier(d, tag) for d in sorted({m.dpid for m in add})]
        self.events(E.FLOWS_REPLACED, {"ip": ip, "to": [dpid, port]})
        return msgs

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
