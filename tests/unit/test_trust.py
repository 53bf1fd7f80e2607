"""Anyone on an edge port can send any packet: spoofed RARPs, ARPs and SYNs
leave every path as it was and start nothing; floods are bounded; a VM's
location changes only where and when its hypervisor says it can be."""
import pytest

from controller import events as E
from controller import flows as F
from controller.routing import ARP_REQUEST, Packet
from controller.trust import Trust

from tests.unit.world import VM1, VM1_MAC, World

TCL2 = (2, 3)          # tcl2's port on s2
ATTACKER_MAC = "00:00:00:00:00:02"


def world(**kw):
    w = World(**kw)
    w.refused = []
    base = w.h.router.trust.events
    w.h.router.trust.events = lambda k, p: (w.refused.append(p), base(k, p))
    w.engine.vms_by_ip(max_age=0)         # the engine told the router who the VMs are
    return w


def test_spoofed_rarp_garp_and_source_address_from_a_client_port_change_nothing():
    w = world()
    before = w.path()
    w.rarp(VM1_MAC, *TCL2)                                       # RARP with vm1's MAC
    w.h.feed(w.h.router.packet_in(*TCL2, Packet(                 # gratuitous ARP for vm1's IP
        ATTACKER_MAC, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST, ATTACKER_MAC, VM1,
        "00:00:00:00:00:00", VM1), b"", w.clock()))
    w.h.feed(w.h.router.packet_in(*TCL2, Packet(                 # IPv4 with vm1 as source
        ATTACKER_MAC, "00:00:00:00:00:01", F.ETH_IPV4, ip_src=VM1, ip_dst="10.0.0.1",
        ip_proto=1), b"", w.clock()))
    w.h.feed(w.h.router.packet_in(*TCL2, Packet(                 # pm1's own address
        ATTACKER_MAC, "ff:ff:ff:ff:ff:ff", F.ETH_ARP, ARP_REQUEST, ATTACKER_MAC, "10.0.0.11",
        "00:00:00:00:00:00", "10.0.0.11"), b"", w.clock()))
    w.run()
    assert w.path() == before and w.path("10.0.0.11") == [(2, 4)]
    assert w.h.router.view.hosts[VM1].mac == VM1_MAC
    reasons = {r["reason"] for r in w.refused}
    assert any("VM address" in r for r in reasons), reasons
    assert any("KVM host address" in r for r in reasons), reasons
    assert w.hv.jobs == []


def test_a_syn_from_an_address_nobody_has_or_that_the_vm_refuses_starts_nothing():
    w = world()
    w.h.feed(w.h.router.packet_in(*TCL2, Packet(
        ATTACKER_MAC, VM1_MAC, F.ETH_IPV4, ip_src="10.9.9.9", ip_dst=VM1, ip_proto=6,
        tcp_src=1234, tcp_dst=5900, tcp_flags=F.TCP_SYN), b"", w.clock(), F.TABLE_DETECT))
    w.run()
    w.syn(client="tcl1", accepted=False)                        # the VM never answers
    w.syn(client="tcl1", sport=40001, accepted=False)
    w.syn(client="tcl1", sport=40001, flags=F.TCP_RST | F.TCP_ACK)
    w.clock.t += 11
    w.run()
    assert not w.event("ovct_detect") and w.hv.jobs == [] and not w.engine.pending
    assert any("not learnt at this port" in r["reason"] for r in w.refused)


def test_two_thousand_spoofed_syns_give_no_session_and_a_bounded_table():
    w = world()
    mods_before = len([m for m in w.h.sent if isinstance(m, F.FlowMod)])
    for i in range(2000):
        src = f"10.7.{i // 250}.{i % 250 + 1}"
        mac = f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"
        w.h.feed(w.h.router.packet_in(*TCL2, Packet(
            mac, VM1_MAC, F.ETH_IPV4, ip_src=src, ip_dst=VM1, ip_proto=6, tcp_src=1000 + i,
            tcp_dst=5900, tcp_flags=F.TCP_SYN), b"", w.clock() + i * 1e-4, F.TABLE_DETECT))
    w.run()
    learnt_at_tcl2 = w.h.router.view.addresses_at(TCL2)
    assert len(learnt_at_tcl2) <= w.h.router.trust.client_port_limit
    assert not w.event("ovct_detect") and w.hv.jobs == []
    mods = len([m for m in w.h.sent if isinstance(m, F.FlowMod)]) - mods_before
    # at most the port's limit of addresses got routes (tcl2 itself is one)
    per_address = len(F.destination_flows(1, VM1, 1, w.h.router.plan)) * 3
    assert mods <= (w.h.router.trust.client_port_limit - 1) * per_address, mods
    # a flood's refusals are reported, but not one event per packet
    assert 0 < len(w.refused) < 20


def test_packet_in_rate_limit_per_port():
    t = Trust(rate=100, burst=10)
    admitted = sum(t.admit((2, 3), 0.0) for _ in range(50))
    assert admitted == 10
    assert t.admit((2, 2), 0.0)                     # other ports are not affected
    assert sum(t.admit((2, 3), 0.05) for _ in range(50)) == 5      # 50 ms refill 5 tokens
    assert t.refusals["packet-in rate limit"] == 85


def test_a_rarp_at_the_destination_before_the_switchover_moves_nothing():
    w = world()
    w.syn()
    assert w.hv.jobs
    w.clock.t += 0.1
    w.rarp(VM1_MAC, 2, 4)                           # spoofed: the VM is still at pm2
    assert not w.event("ovct_vm_seen") and not w.event("ovct_network_update")
    assert w.path() == [(2, 1), (1, 2), (3, 2)]
    assert any("not expected" in r["reason"] for r in w.refused)
    w.land()                                        # the real switchover still works
    assert w.path() == [(2, 4)]


def test_rarp_then_failure_leaves_the_flows_where_the_hypervisor_says():
    """The destination's RARP arrives (after the source paused), the flows
    switch -- and then the migration fails: the source resumes, so the flows
    go back there."""
    w = world()
    w.hv.fail_next, w.hv.fail_after_s = "lost the destination", 6.2
    w.hv.completion_lag_s = 1.6
    w.syn()
    w.clock.t += 6.05
    w.run()
    w.rarp(VM1_MAC, 2, 4)
    assert w.path() == [(2, 4)]                     # switched on the RARP
    w.clock.t += 0.2
    w.run()
    f = w.event("ovct_migration_failed")[0]
    assert (f["observed_at"], f["flows_at"], f["kept_old_flows"]) == ("pm2", "pm2", True)
    assert w.path() == [(2, 1), (1, 2), (3, 2)] and w.hv.locate("vm1") == "pm2"


def test_a_failure_reported_for_a_vm_that_landed_points_the_flows_at_it():
    """libvirt moved the VM but the job reports an error (its statistics
    could not be read, say): the flows follow the VM, the event says so."""
    w = world()
    w.hv.fail_next, w.hv.fail_after_s = "statistics unreadable", 6.0
    w.hv.land_on_failure = True
    w.syn()
    w.clock.t += 6
    w.run()
    f = w.event("ovct_migration_failed")[0]
    assert (f["observed_at"], f["flows_at"], f["kept_old_flows"]) == ("pm1", "pm1", False)
    assert w.path() == [(2, 4)]


@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_no_refusal_in_an_ordinary_migration(mode):
    w = world(mode=mode)
    w.syn()
    w.clock.t += 6.05
    w.run()
    w.rarp(VM1_MAC, 2, 4)
    w.land()
    assert w.path() == [(2, 4)] and w.refused == []
    assert [e for e in w.events if e[0] == E.REFUSED] == []


def test_a_migration_by_hand_is_followed_once_libvirt_says_it_switched_over():
    """OVCT did not start it (OVCT off, someone ran `ovct migrate`): the
    RARP at the destination is refused before the switchover and accepted
    after it, so the routes follow the VM."""
    w = world(enabled=False)
    w.hv.completion_lag_s = 1.6
    w.run()                                   # the controller is up before it starts
    w.hv.migrate("vm1", "pm1")
    w.clock.t += 3
    w.run()
    w.rarp(VM1_MAC, 2, 4)                     # too early: the VM still runs on pm2
    assert w.path() == [(2, 1), (1, 2), (3, 2)]
    w.clock.t += 3.05                         # paused at 5.85, resumed at 6.0 on pm1
    w.run()
    w.rarp(VM1_MAC, 2, 4)                     # QEMU's announcement on pm1
    assert w.path() == [(2, 4)] and not w.engine.moves
