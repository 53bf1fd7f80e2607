"""Shared helpers for the unit tests: a router wired to a fake flow table
for a given topology, and a packet tracer."""
from __future__ import annotations

from controller import classes as C
from controller import flows as F
from controller.routing import ARP_REQUEST, Packet, Router
from testbed.topology import Topology
from tests.unit.fakeoftable import FakeOFTable


class Harness:
    def __init__(self, topo: Topology, router: Router | None = None):
        self.topo = topo
        self.router = router or Router()
        self.table = FakeOFTable()
        self.sent: list = []
        self.now = 0.0
        self.dpid = {s.name: s.dpid for s in topo.switches}
        self.peer: dict[tuple[int, int], tuple[int, int]] = {}
        for ln in topo.switch_links():
            a = (self.dpid[ln.a], ln.a_port)
            b = (self.dpid[ln.b], ln.b_port)
            self.peer[a] = b
            self.peer[b] = a

    def feed(self, msgs) -> list:
        msgs = list(msgs)
        self.sent.extend(msgs)
        self.table.apply(msgs)
        return msgs

    def connect_all(self) -> None:
        for s in self.topo.switches:
            ports = {ln.a_port if ln.a == s.name else ln.b_port
                     for ln in self.topo.links if s.name in (ln.a, ln.b)}
            self.feed(self.router.switch_enter(s.dpid, ports, self.now))
        for a, b in self.peer.items():
            self.feed(self.router.link_add(a, b))

    def where(self, host: str) -> tuple[int, int]:
        sw, port = self.topo.attachment(host)
        return self.dpid[sw], port

    def announce(self, host: str) -> list:
        """A gratuitous ARP from ``host``, as the testbed sends at start."""
        h = self.topo.host(host)
        pkt = Packet(h.mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST,
                     h.mac, h.ip, "00:00:00:00:00:00", h.ip)
        return self.feed(self.router.packet_in(*self.where(host), pkt, b"garp", self.now))

    def trace(self, src_host: str, dst_ip: str, **fields) -> list[tuple[int, int]]:
        """Follow the fake tables hop by hop from src_host's switch; returns
        [(dpid, out_port), ...] until the packet leaves on an edge port, or
        goes to the controller (out_port F.CONTROLLER: held there)."""
        dpid, _ = self.where(src_host)
        hops = []
        for _ in range(32):
            hits = self.table.pipeline(dpid, eth_type=F.ETH_IPV4, ipv4_dst=dst_ip, **fields)
            e = hits[-1] if hits else None
            assert e is not None, f"no flow for {dst_ip} on dpid {dpid}: {hops}"
            if e.out_port == F.CONTROLLER and C.parse_cookie(e.cookie).cls == C.HOLD:
                return hops + [(dpid, F.CONTROLLER)]
            assert isinstance(e.out_port, int), f"dpid {dpid} sends to {e.out_port}"
            hops.append((dpid, e.out_port))
            nxt = self.peer.get((dpid, e.out_port))
            if nxt is None:
                return hops
            dpid = nxt[0]
        raise AssertionError(f"forwarding loop: {hops}")


def sim_engine(memory=None):
    """The OVCT engine on the simulator's five-site network (one thin
    client and one KVM host per site, a ring of five core switches), with
    a fake hypervisor (``memory``: MiB per host, default 4096): returns
    (engine, hypervisor, network, events)."""
    from controller.config import Policy
    from controller.fake_hypervisor import FakeHypervisor
    from controller.hypervisor import HostSpec
    from controller.ovct import Ovct
    from experiments import sim
    world = sim.World.multisite(5, 1, 1, 5)
    clock = sim.Clock(0.0)
    net = sim.SimNetwork(world.topo, clock, sim.Ledger(sim.Paths(world.topo), sim.Calibration()))
    memory = memory or {}
    hv = FakeHypervisor([HostSpec(h.name, "u", h.ip, memory.get(h.name, 4096), 2)
                         for h in world.topo.hosts_by_role("kvmhost")], clock)
    events = []
    eng = Ovct(Policy(), hv, net, events.append, clock)
    return eng, hv, net, events
