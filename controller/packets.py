"""Packet decoding/encoding for the shim, with os-ken's packet library.

:func:`decode` turns raw packet-in bytes into the router's plain
:class:`controller.routing.Packet`; anything malformed or truncated gives
``None`` (the router ignores it) rather than an exception.
"""
from __future__ import annotations

import logging

from os_ken.lib.packet import arp, ethernet, ipv4, packet, tcp

from controller.routing import ARP_REPLY, Packet

LOG = logging.getLogger(__name__)


def decode(data: bytes) -> Packet | None:
    try:
        pkt = packet.Packet(data)
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None:
            return None
        fields = {"eth_src": eth.src, "eth_dst": eth.dst, "eth_type": eth.ethertype}
        a = pkt.get_protocol(arp.arp)
        if a is not None:
            fields.update(arp_op=a.opcode, arp_sha=a.src_mac, arp_spa=a.src_ip,
                          arp_tha=a.dst_mac, arp_tpa=a.dst_ip)
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is not None:
            fields.update(ip_src=ip.src, ip_dst=ip.dst, ip_proto=ip.proto)
            t = pkt.get_protocol(tcp.tcp)
            if t is not None:
                fields.update(tcp_src=t.src_port, tcp_dst=t.dst_port,
                              tcp_flags=t.bits)
        return Packet(**fields)
    except Exception as exc:  # os-ken's parsers raise many kinds on bad input
        LOG.debug("undecodable packet (%s): %r", exc, data[:64])
        return None


def arp_reply(src_mac: str, src_ip: str, dst_mac: str, dst_ip: str) -> bytes:
    """An ARP reply 'src_ip is at src_mac' addressed to the requester."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(ethertype=0x0806, dst=dst_mac, src=src_mac))
    pkt.add_protocol(arp.arp(opcode=ARP_REPLY, src_mac=src_mac, src_ip=src_ip,
                             dst_mac=dst_mac, dst_ip=dst_ip))
    pkt.serialize()
    return bytes(pkt.data)
