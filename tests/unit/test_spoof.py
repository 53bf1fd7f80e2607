"""The spoofing tool's frames are what a switch (and os-ken) parse as RARP
and gratuitous ARP claiming the given MAC/IP."""
import pytest
from os_ken.lib.packet import arp, ethernet, packet

from testbed import spoof


def _parse(data: bytes):
    eth = packet.Packet(data).get_protocol(ethernet.ethernet)
    body, _cls, _rest = arp.arp.parser(data[14:])   # os-ken maps only 0x0806 to ARP
    return eth, body


def test_rarp_claims_the_vm_mac():
    eth, a = _parse(spoof.frame("rarp", "52:54:00:00:00:01"))
    assert eth.ethertype == 0x8035 and eth.src == "52:54:00:00:00:01"
    assert eth.dst == "ff:ff:ff:ff:ff:ff"
    assert a.opcode == 3 and a.src_mac == "52:54:00:00:00:01"


def test_gratuitous_arp_claims_the_address():
    eth, a = _parse(spoof.frame("garp", "00:00:00:00:00:02", "10.0.0.101"))
    assert eth.ethertype == 0x0806
    assert (a.opcode, a.src_mac, a.src_ip, a.dst_ip) == (1, "00:00:00:00:00:02",
                                                        "10.0.0.101", "10.0.0.101")


@pytest.mark.parametrize("args", [("rarp", "52:54:00"), ("garp", "00:00:00:00:00:02"),
                                  ("lldp", "00:00:00:00:00:02")])
def test_bad_requests_are_refused(args):
    with pytest.raises(ValueError):
        spoof.frame(*args)
