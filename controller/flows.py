"""OpenFlow messages as plain data, and the flow plans that produce them.

Nothing here knows os-ken: :mod:`controller.app` turns these dataclasses into
real OpenFlow 1.3 messages, and the unit tests apply them to a fake table.
Match keys use OXM names as os-ken does (``eth_type``, ``ipv4_dst``,
``ip_proto``, ``tcp_dst`` ...); a masked value is a ``(value, mask)`` tuple.
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

PRIO_MISS = 0
PRIO_DEST = 100
PRIO_CLASS = 200
PRIO_CONTROL = 1000

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
    table_id: int = 0
    notify_removed: bool = False        # OFPFF_SEND_FLOW_REM


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
    dpid: int


Message = FlowMod | PacketOut | ArpReply | Barrier


def static_flows(dpid: int) -> list[FlowMod]:
    """What every switch gets when it connects: table-miss and ARP/RARP to
    the controller, IPv6 dropped (it only spoils counters)."""
    ctl = C.make_cookie(C.CONTROL)
    return [
        FlowMod(dpid, ADD, (), CONTROLLER, PRIO_MISS, ctl),
        FlowMod(dpid, ADD, match(eth_type=ETH_ARP), CONTROLLER, PRIO_CONTROL, ctl),
        FlowMod(dpid, ADD, match(eth_type=ETH_RARP), CONTROLLER, PRIO_CONTROL, ctl),
        FlowMod(dpid, ADD, match(eth_type=ETH_IPV6), None, PRIO_CONTROL, ctl),
    ]


@dataclass(frozen=True)
class ClassPlan:
    """Class matches shared by every destination: (class name, TCP port
    (value, mask) prefixes), in priority order."""
    entries: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]

    @classmethod
    def from_classes(cls, classes: Iterable[C.TrafficClass]) -> "ClassPlan":
        return cls(tuple((c.name, tuple(c.port_masks())) for c in classes))


DEFAULT_PLAN = ClassPlan.from_classes(C.DEFAULT_CLASSES)


def destination_flows(dpid: int, dst_ip: str, out_port: int,
                      plan: ClassPlan = DEFAULT_PLAN) -> list[FlowMod]:
    """All flows that send traffic for ``dst_ip`` out of ``out_port`` on one
    switch: a base IPv4 flow (class *other*) and, at higher priority, one
    flow per TCP port prefix of each class, in either direction."""
    flows = [FlowMod(dpid, ADD, match(eth_type=ETH_IPV4, ipv4_dst=dst_ip),
                     out_port, PRIO_DEST, C.make_cookie(C.OTHER, dst_ip),
                     notify_removed=True)]
    for i, (name, masks) in enumerate(plan.entries):
        cookie = C.make_cookie(name, dst_ip)
        for value, mask in masks:
            port = value if mask == 0xFFFF else (value, mask)
            for key in ("tcp_dst", "tcp_src"):
                flows.append(FlowMod(
                    dpid, ADD,
                    match(eth_type=ETH_IPV4, ipv4_dst=dst_ip,
                          ip_proto=IPPROTO_TCP, **{key: port}),
                    out_port, PRIO_CLASS + i, cookie, notify_removed=True))
    return flows


def repoint_destination(dpid: int, dst_ip: str, out_port: int) -> FlowMod:
    """One non-strict MODIFY that re-points every flow of a destination on a
    switch (selected by cookie), keeping their counters."""
    return FlowMod(dpid, MODIFY, (), out_port, 0, C.dest_cookie(dst_ip),
                   C.DEST_COOKIE_MASK)


def delete_destination(dpid: int, dst_ip: str) -> FlowMod:
    """Delete every flow of a destination on a switch (selected by cookie)."""
    return FlowMod(dpid, DELETE, (), None, 0, C.dest_cookie(dst_ip),
                   C.DEST_COOKIE_MASK)


def count_by_command(msgs: Iterable[Message]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in msgs:
        if isinstance(m, FlowMod):
            out[m.command] = out.get(m.command, 0) + 1
    return out
