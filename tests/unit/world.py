"""The unit-level world OVCT runs in: the paper network's router wired to a
fake flow table, the fake hypervisor and a fake clock, and the engine
driven as the shim drives it (typed inputs through a queue)."""
from controller import flows as F
from controller.config import Policy
from controller.fake_hypervisor import FakeHypervisor
from controller.hypervisor import HostSpec
from controller.ovct import BarrierReply, HostSeen, Ovct
from controller.routernet import RouterNetwork
from controller.routing import Packet
from testbed.topology import paper_topology

from tests.unit.helpers import Harness

VM1, VM1_MAC = "10.0.0.101", "52:54:00:00:00:01"
VM2, VM2_MAC = "10.0.0.102", "52:54:00:00:00:02"


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class World:
    """Router + fake flow table + fake hypervisor + OVCT engine, paper network."""

    def __init__(self, mode="fast", pm1_memory=2048, **policy):
        self.clock = Clock()
        self.h = Harness(paper_topology())
        # the inventory, as the controller gets it: the KVM hosts' ports
        self.h.router.trust.set_hosts({"10.0.0.11": (2, 4), "10.0.0.12": (3, 2)})
        self.h.connect_all()
        for name in ("tcl1", "tcl2", "pm1", "pm2"):
            self.h.announce(name)
        self.queue = []
        r = self.h.router
        r.on_vnc = self.queue.append
        r.on_host_seen = lambda ip, loc, t: self.queue.append(HostSeen(ip, loc.dpid, loc.port, t))
        self.hv = FakeHypervisor([HostSpec("pm1", "u1", "10.0.0.11", pm1_memory, 2),
                                  HostSpec("pm2", "u2", "10.0.0.12", 2048, 2)],
                                 self.clock, migration_s=6)
        self.hv.watch(self.queue.append)
        self.hv.add_vm("pm2", "vm1", VM1, VM1_MAC, 256)
        self.hv.add_vm("pm2", "vm2", VM2, VM2_MAC, 256)
        self.arp(VM1, VM1_MAC, 3, 2)
        self.arp(VM2, VM2_MAC, 3, 2)
        self.events = []
        self.records = []               # as the event log holds them (with mono)
        self.engine = Ovct(Policy(update_mode=mode, **policy), self.hv,
                           RouterNetwork(r, self.h.feed), self._emit, self.clock)

    def _emit(self, ev):
        self.events.append((ev.TYPE, ev.payload()))
        self.records.append({"type": ev.TYPE, "mono": self.clock(), **ev.payload()})

    def restart_controller(self, announce_vms: bool = True):
        """The controller process dies and a new one starts: a new router
        that learns the network again (the switches keep their tables), a new
        engine that reads the old one's event log; the hypervisor runs on."""
        old = self.h
        policy = self.engine.policy
        self.h = Harness(old.topo)
        self.h.table = old.table
        self.h.router.trust.set_hosts({"10.0.0.11": (2, 4), "10.0.0.12": (3, 2)})
        self.h.connect_all()
        for name in ("tcl1", "tcl2", "pm1", "pm2"):
            self.h.announce(name)
        where = {"pm1": (2, 4), "pm2": (3, 2)}
        for vm, ip, mac in (("vm1", VM1, VM1_MAC), ("vm2", VM2, VM2_MAC)):
            if announce_vms:
                self.arp(ip, mac, *where[self.hv.locate(vm)])
        self.queue = []
        r = self.h.router
        r.on_vnc = self.queue.append
        r.on_host_seen = lambda ip, loc, t: self.queue.append(HostSeen(ip, loc.dpid, loc.port, t))
        self.hv.watch(self.queue.append)
        self.engine = Ovct(policy, self.hv, RouterNetwork(r, self.h.feed), self._emit, self.clock)
        self.engine.restore(list(self.records))

    def arp(self, ip, mac, dpid, port):
        pkt = Packet(mac, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, 1, mac, ip, "00:00:00:00:00:00", ip)
        self.h.feed(self.h.router.packet_in(dpid, port, pkt, b"", self.clock()))

    def syn(self, client="tcl1", vm_ip=VM1, sport=40000, dport=5900, flags=F.TCP_SYN,
            accepted=True, answer_first=False, send_syn=True):
        """The client opens a connection (or ends it: ``flags``); a SYN the
        server answers (``accepted``) with a SYN+ACK from where it is.
        ``answer_first``: the server's switch reports the SYN+ACK before
        the client's switch reports the SYN (their packet-ins race);
        ``send_syn=False``: only the answer is seen."""
        c = self.h.topo.host(client)
        dpid, port = self.h.where(client)
        pkt = Packet(c.mac, "52:54:00:00:00:01", F.ETH_IPV4, ip_src=c.ip, ip_dst=vm_ip,
                     ip_proto=6, tcp_src=sport, tcp_dst=dport, tcp_flags=flags)
        copies = [(dpid, port, pkt)] if send_syn else []
        server = self.h.router.view.hosts.get(vm_ip)
        if accepted and flags == F.TCP_SYN and server is not None:
            ack = Packet(server.mac, c.mac, F.ETH_IPV4, ip_src=vm_ip, ip_dst=c.ip, ip_proto=6,
                         tcp_src=dport, tcp_dst=sport, tcp_flags=F.TCP_SYN | F.TCP_ACK)
            copies.insert(0 if answer_first else len(copies), (server.dpid, server.port, ack))
        for d, p, frame in copies:
            self.h.feed(self.h.router.packet_in(d, p, frame, b"", self.clock(), F.TABLE_DETECT))
        self.run()

    def rarp(self, mac, dpid, port):
        pkt = Packet(mac, "ff:ff:ff:ff:ff:ff", F.ETH_RARP)
        self.h.feed(self.h.router.packet_in(dpid, port, pkt, b"", self.clock()))
        self.run()

    def run(self):
        """Handle what is queued, then poll (timers, the hypervisor's due
        events), until nothing new arrives -- the shim's worker loop."""
        while True:
            while self.queue:
                self.engine.handle(self.queue.pop(0))
            self.engine.poll()
            if not self.queue:
                return

    def kinds(self):
        return [k for k, _ in self.events]

    def event(self, kind):
        return [p for k, p in self.events if k == kind]

    def path(self, ip=VM1, client="tcl1"):
        return self.h.trace(client, ip)

    def ack_barriers(self):
        for m in [m for m in self.h.sent if isinstance(m, F.Barrier) and m.tag]:
            self.queue.append(BarrierReply(m.tag, m.dpid, self.clock()))
        self.run()

    def land(self):
        """The migration in flight completes (the fake takes 6 s) and every
        switch answers its barrier."""
        self.clock.t += 6
        self.run()
        self.ack_barriers()
