"""The shim's packet decoder never raises on bad input."""
import random

import pytest

from controller import flows as F
from controller import packets
from controller.routing import ARP_REPLY


def test_arp_reply_round_trip():
    data = packets.arp_reply("00:00:00:00:00:0c", "10.0.0.12", "00:00:00:00:00:01", "10.0.0.1")
    p = packets.decode(data)
    assert (p.eth_type, p.arp_op, p.arp_spa, p.arp_sha, p.arp_tpa) == (
        F.ETH_ARP, ARP_REPLY, "10.0.0.12", "00:00:00:00:00:0c", "10.0.0.1")
    assert p.eth_dst == "00:00:00:00:00:01"


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff" * 13, bytes(14),
                                  # IPv4 ethertype with a truncated header
                                  bytes(12) + b"\x08\x00" + b"\x45\x00",
                                  # ARP ethertype with garbage
                                  bytes(12) + b"\x08\x06" + b"\x00\x01\x08"])
def test_malformed_frames_decode_to_none_or_partial(data):
    p = packets.decode(data)
    assert p is None or p.ip_src is None


def test_random_garbage_never_raises():
    rng = random.Random(7)
    good = packets.arp_reply("00:00:00:00:00:0c", "10.0.0.12", "00:00:00:00:00:01", "10.0.0.1")
    for _ in range(2000):
        n = rng.randrange(0, len(good) + 20)
        blob = bytearray(good[:n]) + bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
        for _ in range(rng.randrange(4)):
            if blob:
                blob[rng.randrange(len(blob))] = rng.randrange(256)
        packets.decode(bytes(blob))   # must not raise
