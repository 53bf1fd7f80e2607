"""What a hostile host on an edge port can send: RARP and gratuitous ARP
claiming someone else's MAC/IP, from a raw socket in its own namespace.

``python -m testbed.spoof rarp --iface tcl2-eth0 --mac 52:54:00:00:00:01``
is run by the fault-injection suite inside a thin client's namespace; it
uses only the standard library.  ``frame()`` is pure (unit-tested)."""
from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import time

ETH_ARP, ETH_RARP = 0x0806, 0x8035
OP_ARP_REQUEST, OP_RARP_REQUEST = 1, 3
BROADCAST = b"\xff" * 6


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return raw


def frame(kind: str, mac: str, ip: str | None = None) -> bytes:
    """An Ethernet frame: ``rarp`` (what QEMU sends for a VM that resumed
    after migrating: "where am I", with the VM's MAC) or ``garp``
    (gratuitous ARP: ``ip`` is at ``mac``)."""
    m = _mac(mac)
    if kind == "rarp":
        body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, OP_RARP_REQUEST) + m + bytes(4) + m + bytes(4)
        ethertype = ETH_RARP
    elif kind == "garp":
        if ip is None:
            raise ValueError("garp needs an IP address")
        a = ipaddress.IPv4Address(ip).packed
        body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, OP_ARP_REQUEST) + m + a + bytes(6) + a
        ethertype = ETH_ARP
    else:
        raise ValueError(f"unknown frame kind {kind!r}")
    return BROADCAST + m + struct.pack("!H", ethertype) + body


def send(iface: str, data: bytes, count: int, interval_s: float) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, 0))
        for i in range(count):
            s.send(data)
            if i + 1 < count:
                time.sleep(interval_s)    # the attacker's own pacing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.spoof")
    p.add_argument("kind", choices=["rarp", "garp"])
    p.add_argument("--iface", required=True)
    p.add_argument("--mac", required=True, help="the MAC to claim")
    p.add_argument("--ip", help="garp: the address to claim")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--interval", type=float, default=0.1, help="s between frames")
    a = p.parse_args(argv)
    send(a.iface, frame(a.kind, a.mac, a.ip), a.count, a.interval)
    print(f"sent {a.count} {a.kind} frame(s) claiming {a.mac} on {a.iface}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
