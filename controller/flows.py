"""OpenFlow messages as plain data, and the flow plans that produce them.

Nothing here knows os-ken: :mod:`controller.app` turns these dataclasses into
real OpenFlow 1.3 messages, and the unit tests apply them to a fake table.
Match keys use OXM names as os-ken does (``eth_type``, ``ipv4_dst``,
``ip_proto``, ``tcp_dst``, ``tcp_flags`` ...); a masked value is a
``(value, mask)`` tuple.

Pipeline (every switch):

* table 0, *detect*: ARP/RARP to the controller, IPv6 dropped, copies of the
  first packet (SYN), of the server's answer (SYN+ACK) and of FIN/RST of
  TCP connections to VNC ports sent to the controller (OVCT phase 1),
  per-session monitor flows, and the libvirt ACL (libvirtd's and the
  migration streams' ports only between KVM hosts of the inventory);
  everything else then continues to table 1;
* table 1, *route*: per destination, the next hop of a shortest path (a base
  IPv4 flow, class *other*, and per-class TCP port flows above it); a miss
  goes to the controller.

A destination's live flows are generation 0.  Generation 1 is *staging*:
the same flows at slightly lower priority, shadowed by the live ones, used
to prepare a VM's new path while it migrates (make-before-break).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from controller import classes as C

ETH_ARP = 0x0806
ETH_IPV4 = 0x0800
ETH_RARP = 0x8035
ETH_IPV6 = 0x86DD
IPPROTO_TCP = 6
CONTROLLER = "controller"   # output port meaning "send to the controller"

ADD, MODIFY, DELETE = "add", "modify", "delete"

TABLE_DETECT = 0
TABLE_ROUTE = 1

PRIO_MISS = 0
PRIO_DEST = 100
PRIO_CLASS = 200
PRIO_STAGING_OFFSET = 5      # staging (generation 1) flows sit this much lower
PRIO_HOLD = 300              # above every class flow of a destination
PRIO_SYN = 100
PRIO_SESSION = 200
PRIO_FIN = 300
PRIO_CONTROL = 1000
PRIO_ACL_ALLOW = 500
PRIO_ACL_DROP = 450

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10

Match = tuple  # sorted tuple of (field, value) pairs


def match(**fields) -> Match:
    return tuple(sorted(fields.items()))


@dataclass(frozen=True)
class FlowMod:
    dpid: int
    command: str
    match: Match = ()
    out_port: int | str | None = None   # None: drop (no actions)
    priority: int = 0
    cookie: int = 0
    cookie_mask: int = 0
    table_id: int = TABLE_ROUTE
    notify_removed: bool = False        # OFPFF_SEND_FLOW_REM
    goto_table: int | None = None       # after the actions, continue there
    idle_timeout: int = 0

@dataclass(frozen=True)
class PacketOut:
    """Send raw frame ``data`` out of ``ports`` of switch ``dpid``."""
    dpid: int
    ports: tuple[int, ...]
    data: bytes
    in_port: int | None = None


@dataclass(frozen=True)
class ArpReply:
    """Ask the shim to build an ARP reply 'ip is at mac' for the requester."""
    dpid: int
    port: int
    src_mac: str
    src_ip: str
    dst_mac: str
    dst_ip: str


@dataclass(frozen=True)
class Barrier:
    """A barrier; ``tag`` comes back with the reply (see the shim)."""
    dpid: int
    tag: str = ""


Message = FlowMod | PacketOut | ArpReply | Barrier


@dataclass(frozen=True)
class ClassPlan:
    """Class matches shared by every destination: (class name, TCP port
    (value, mask) prefixes), in priority order."""
    entries: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]

    @classmethod
    def from_classes(cls, classes: Iterable[C.TrafficClass]) -> "ClassPlan":
        return cls(tuple((c.name, tuple(c.port_masks())) for c in classes))

    def masks(self, name: str) -> tuple[tuple[int, int], ...]:
        for n, masks in self.entries:
            if n == name:
                return masks
        return ()


DEFAULT_PLAN = ClassPlan.from_classes(C.DEFAULT_CLASSES)


def static_flows(dpid: int, plan: "ClassPlan" = DEFAULT_PLAN,
                 libvirt_hosts: Iterable[str] = ()) -> list[FlowMod]:
    """What every switch gets when it connects (see the module docstring).
    ``libvirt_hosts``: the KVM hosts' addresses; when given, TCP to or from
    libvirt's ports passes only if one of them sent it."""
    ctl = C.make_cookie(C.CONTROL)
    det = C.make_cookie(C.DETECT)
    D, R = TABLE_DETECT, TABLE_ROUTE
    flows = [
        FlowMod(dpid, ADD, (), None, PRIO_MISS, ctl, table_id=D, goto_table=R),
        FlowMod(dpid, ADD, match(eth_type=ETH_ARP), CONTROLLER, PRIO_CONTROL, ctl, table_id=D),
        FlowMod(dpid, ADD, match(eth_type=ETH_RARP), CONTROLLER, PRIO_CONTROL, ctl, table_id=D),
        FlowMod(dpid, ADD, match(eth_type=ETH_IPV6), None, PRIO_CONTROL, ctl, table_id=D),
        FlowMod(dpid, ADD, (), CONTROLLER, PRIO_MISS, ctl, table_id=R),
    ]
    for value, mask in plan.masks(C.VNC):
        port = value if mask == 0xFFFF else (value, mask)
        tcp = {"eth_type": ETH_IPV4, "ip_proto": IPPROTO_TCP}
        # a new connection to a VNC port: SYN without ACK
        flows.append(FlowMod(dpid, ADD, match(**tcp, tcp_dst=port,
                                              tcp_flags=(TCP_SYN, TCP_SYN | TCP_ACK)),
                             CONTROLLER, PRIO_SYN, det, table_id=D, goto_table=R))
        # its end, from either side
        for side in ("tcp_dst", "tcp_src"):
            for flag in (TCP_FIN, TCP_RST):
                flows.append(FlowMod(dpid, ADD, match(**tcp, **{side: port},
                                                      tcp_flags=(flag, flag)),
                                     CONTROLLER, PRIO_FIN, det, table_id=D, goto_table=R))
        # the server's answer (SYN+ACK): the VM accepted the session
        flows.append(FlowMod(dpid, ADD, match(**tcp, tcp_src=port,
                                              tcp_flags=(TCP_SYN | TCP_ACK, TCP_SYN | TCP_ACK)),
                             CONTROLLER, PRIO_SYN, det, table_id=D, goto_table=R))
    return flows + libvirt_acl(dpid, libvirt_hosts)


def libvirt_acl(dpid: int, hosts: Iterable[str]) -> list[FlowMod]:
    """libvirtd's TCP port and the migration streams' ports, either
    direction, only from the KVM hosts' addresses; anything else is
    dropped (a guest or a thin client cannot reach a libvirtd through the
    switches; the hosts' own firewalls refuse what stays on a host's
    bridge).  Spoofing a host's address cannot open a TCP connection: the
    answer goes to the real host."""
    hosts = sorted(hosts)
    if not hosts:
        return []
    acl = C.make_cookie(C.ACL)
    tcp = {"eth_type": ETH_IPV4, "ip_proto": IPPROTO_TCP}
    ports = [value if mask == 0xFFFF else (value, mask)
             for lo, hi in C.MIGRATION_PORTS for value, mask in C.range_to_masks(lo, hi)]
    flows = []
    for side in ("tcp_dst", "tcp_src"):
        for port in ports:
            flows += [FlowMod(dpid, ADD, match(**tcp, ipv4_src=h, **{side: port}), None,
                              PRIO_ACL_ALLOW, acl, table_id=TABLE_DETECT, goto_table=TABLE_ROUTE)
                      for h in hosts]
            flows.append(FlowMod(dpid, ADD, match(**tcp, **{side: port}), None, PRIO_ACL_DROP,
                                 acl, table_id=TABLE_DETECT))
    return flows


def session_monitor(dpid: int, client_ip: str, client_port: int, vm_ip: str, vm_port: int,
                    idle_timeout: int) -> FlowMod:
    """A flow that sees one VNC session's client->VM packets and expires
    (flow-removed, reason idle) when the session goes quiet."""
    return FlowMod(dpid, ADD, match(eth_type=ETH_IPV4, ip_proto=IPPROTO_TCP,
                                    ipv4_src=client_ip, ipv4_dst=vm_ip,
                                    tcp_src=client_port, tcp_dst=vm_port),
                   None, PRIO_SESSION, C.make_cookie(C.SESSION, vm_ip), table_id=TABLE_DETECT,
                   notify_removed=True, goto_table=TABLE_ROUTE, idle_timeout=idle_timeout)


def destination_flows(dpid: int, dst_ip: str, out_port: int,
                      plan: ClassPlan = DEFAULT_PLAN, gen: int = 0) -> list[FlowMod]:
    """All flows that send traffic for ``dst_ip`` out of ``out_port`` on one
    switch: a base IPv4 flow (class *other*) and, at higher priority, one
    flow per TCP port prefix of each class, in either direction.  ``gen=1``
    builds the staging copy (lower priority, its own cookie generation)."""
    low = PRIO_STAGING_OFFSET if gen else 0
    flows = [FlowMod(dpid, ADD, match(eth_type=ETH_IPV4, ipv4_dst=dst_ip),
                     out_port, PRIO_DEST - low, C.make_cookie(C.OTHER, dst_ip, gen),
                     notify_removed=True)]
    for i, (name, masks) in enumerate(plan.entries):
        cookie = C.make_cookie(name, dst_ip, gen)
        for value, mask in masks:
            port = value if mask == 0xFFFF else (value, mask)
            for key in ("tcp_dst", "tcp_src"):
                flows.append(FlowMod(
                    dpid, ADD,
                    match(eth_type=ETH_IPV4, ipv4_dst=dst_ip,
                          ip_proto=IPPROTO_TCP, **{key: port}),
                    out_port, PRIO_CLASS + i - low, cookie, notify_removed=True))
    return flows


def hold_destination(dpid: int, dst_ip: str) -> FlowMod:
    """Send every IPv4 packet for ``dst_ip`` to the controller (which keeps
    it) instead of forwarding it: a VM's traffic while it is paused for the
    switchover of a live migration.  Generation 0, so deleting the live
    flows deletes it too."""
    return FlowMod(dpid, ADD, match(eth_type=ETH_IPV4, ipv4_dst=dst_ip), CONTROLLER,
                   PRIO_HOLD, C.make_cookie(C.HOLD, dst_ip))


def delete_hold(dpid: int, dst_ip: str) -> FlowMod:
    """Remove only the hold flow of a destination (its live flows stay)."""
    return FlowMod(dpid, DELETE, (), None, 0, C.make_cookie(C.HOLD, dst_ip),
                   C.FULL_COOKIE_MASK)


#: the classes whose flows the controller owns outright: a (re)connecting
#: switch has them all deleted and re-installed (session monitors are kept:
#: they carry live sessions across a reconnect or a controller restart)
WIPED_CLASSES = (C.CONTROL, C.OTHER, C.VNC, C.MIGRATION, C.DETECT, C.HOLD, C.ACL)


def wipe(dpid: int) -> list[FlowMod]:
    """Delete every flow of ours on a switch but the session monitors, in
    both tables: what a switch kept from before (a controller restart, a
    reconnect) must not linger (stale staging copies, holds, routes)."""
    return [FlowMod(dpid, DELETE, (), None, 0, C.make_cookie(cls), C.MAGIC_MASK | C.CLASS_MASK,
                    table_id=table)
            for table in (TABLE_DETECT, TABLE_ROUTE) for cls in WIPED_CLASSES]


def repoint_destination(dpid: int, dst_ip: str, out_port: int, gen: int = 0) -> FlowMod:
    """One non-strict MODIFY that re-points every flow of a destination (one
    generation) on a switch, selected by cookie, keeping their counters."""
    return FlowMod(dpid, MODIFY, (), out_port, 0, C.dest_cookie(dst_ip, gen),
                   C.DEST_GEN_COOKIE_MASK)


def delete_destination(dpid: int, dst_ip: str, gen: int | None = None) -> FlowMod:
    """Delete a destination's flows on a switch, selected by cookie: every
    generation, or only ``gen``."""
    if gen is None:
        return FlowMod(dpid, DELETE, (), None, 0, C.dest_cookie(dst_ip), C.DEST_COOKIE_MASK)
    return FlowMod(dpid, DELETE, (), None, 0, C.dest_cookie(dst_ip, gen),
                   C.DEST_GEN_COOKIE_MASK)
