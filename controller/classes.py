"""Traffic classes and flow cookies.

Every flow the controller installs carries a 64-bit cookie that says which
traffic class and which destination it serves, so switch statistics can be
split per class and per destination, and a destination's flows can be
selected with one cookie mask (to re-point a VM that moved)::

    bits 63..56  0xC7        marks our flows
    bits 55..48  class id    see CLASS_IDS
    bits 47..40  generation  0 or 1: a destination's flows are re-installed
                             under the other generation when a VM moves
                             (make-before-break), then the old one is deleted
    bits 39..32  0
    bits 31..0   IPv4 destination (0 for flows that serve no one destination)
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAGIC = 0xC7
CONTROL = "control"      # table-miss, ARP and LLDP to the controller
OTHER = "other"          # IPv4 that no other class claims
VNC = "vnc"              # thin-client sessions (RFB)
MIGRATION = "migration"  # libvirt/QEMU live-migration streams
DETECT = "detect"        # copies of VNC SYN/FIN/RST to the controller (OVCT phase 1)
SESSION = "session"      # per-VNC-session monitor flows (idle timeout = session end)
HOLD = "hold"            # a migrating VM's traffic, held at the controller during switchover
ACL = "acl"              # libvirt's ports: allowed between KVM hosts only, dropped otherwise
CLASS_IDS = {CONTROL: 1, OTHER: 2, VNC: 3, MIGRATION: 4, DETECT: 5, SESSION: 6, HOLD: 7, ACL: 8}
CLASS_NAMES = {v: k for k, v in CLASS_IDS.items()}

DST_MASK = 0xFFFFFFFF
GEN_MASK = 0xFF << 40
CLASS_MASK = 0xFF << 48
MAGIC_MASK = 0xFF << 56
#: cookie_mask that selects every flow of one destination, any class and
#: generation; with GEN_MASK added, one generation only
DEST_COOKIE_MASK = MAGIC_MASK | DST_MASK
DEST_GEN_COOKIE_MASK = MAGIC_MASK | GEN_MASK | DST_MASK
#: every field: exactly one class, generation and destination
FULL_COOKIE_MASK = MAGIC_MASK | CLASS_MASK | GEN_MASK | DST_MASK


def ip_to_int(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def int_to_ip(n: int) -> str:
    return str(ipaddress.IPv4Address(n))


def make_cookie(cls: str, dst_ip: str | None = None, gen: int = 0) -> int:
    dst = ip_to_int(dst_ip) if dst_ip else 0
    return (MAGIC << 56) | (CLASS_IDS[cls] << 48) | ((gen & 0xFF) << 40) | dst


def dest_cookie(dst_ip: str, gen: int = 0) -> int:
    """Cookie value to use with DEST_COOKIE_MASK (any generation) or
    DEST_GEN_COOKIE_MASK (generation ``gen``) for one destination."""
    return (MAGIC << 56) | ((gen & 0xFF) << 40) | ip_to_int(dst_ip)


@dataclass(frozen=True)
class CookieInfo:
    ours: bool
    cls: str | None
    dst: str | None
    gen: int = 0


def parse_cookie(cookie: int) -> CookieInfo:
    if (cookie >> 56) & 0xFF != MAGIC:
        return CookieInfo(False, None, None)
    cls = CLASS_NAMES.get((cookie >> 48) & 0xFF)
    dst = cookie & DST_MASK
    return CookieInfo(True, cls, int_to_ip(dst) if dst else None, (cookie >> 40) & 0xFF)


def range_to_masks(lo: int, hi: int, width: int = 16) -> list[tuple[int, int]]:
    """Cover the inclusive range [lo, hi] with (value, mask) prefixes, the
    smallest such set (as for TCP port matches with a bitwise mask)."""
    top = (1 << width) - 1
    if not (0 <= lo <= hi <= top):
        raise ValueError(f"bad range {lo}-{hi}")
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << width
        while lo + size - 1 > hi:
            size >>= 1
        out.append((lo, top & ~(size - 1)))
        lo += size
    return out


@dataclass(frozen=True)
class TrafficClass:
    """A class of TCP traffic recognised by port; either direction counts."""
    name: str
    tcp_ports: tuple[tuple[int, int], ...]  # inclusive ranges

    def port_masks(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for lo, hi in self.tcp_ports:
            out.extend(range_to_masks(lo, hi))
        return out


#: the classes whose flows forward traffic (relayed-traffic statistics count
#: these; control, detect and session flows only copy or trap packets)
FORWARDING = (OTHER, VNC, MIGRATION)

#: RFB (VNC) servers' ports, the policy's default ``vnc_ports``
VNC_PORTS = ((5900, 5999),)
#: libvirtd's TCP port (peer-to-peer migration control)
LIBVIRTD_TCP_PORT = 16509
#: the ports libvirt's QEMU driver gives migration streams (its defaults;
#: testbed.libvirt_config writes them into each host's qemu.conf)
MIGRATION_STREAM_PORTS = (49152, 49215)
#: everything of class "migration": the streams and libvirtd's control
MIGRATION_PORTS = (MIGRATION_STREAM_PORTS, (LIBVIRTD_TCP_PORT, LIBVIRTD_TCP_PORT))

DEFAULT_CLASSES = (
    TrafficClass(VNC, VNC_PORTS),
    TrafficClass(MIGRATION, MIGRATION_PORTS),
)
