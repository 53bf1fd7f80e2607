"""OVCT's phases with a fake hypervisor, a fake clock and a fake flow table."""
import pytest

from controller import classes as C
from controller import flows as F
from controller.hypervisor import HypervisorError
from controller.ovct import SessionIdle
from controller.routing import Packet, VncConnection

from tests.unit.world import VM1, VM1_MAC, VM2, World

def test_far_vm_migrates_fast_mode_make_before_break():
    w = World("fast")
    assert w.path() == [(2, 1), (1, 2), (3, 2)]
    w.syn()
    assert w.kinds()[:3] == ["ovct_detect", "ovct_decision", "ovct_migration_start"]
    d = w.event("ovct_decision")[0]
    assert (d["decision"], d["to"], d["current_hops"]) == ("migrate", "pm1", 2)
    det = w.event("ovct_detect")[0]
    assert (det["client_switch"], det["vm_switch"], det["vm_host"]) == (2, 3, "pm2")
    # staged: the new path exists in generation 1, but traffic still goes to pm2
    staged = [m for m in w.h.sent if isinstance(m, F.FlowMod) and C.parse_cookie(m.cookie).gen == 1]
    assert staged and all(m.command == F.ADD for m in staged)
    assert w.path() == [(2, 1), (1, 2), (3, 2)]

    # the source pauses (its traffic is held), the VM resumes at pm1 and
    # QEMU's RARP arrives at s2 port 4 -> switch now, and at no step of the
    # switch is there a hole in the path (libvirt's own completion comes
    # 1.6 s later)
    w.hv.jobs[0].hv.completion_lag_s = 1.6
    w.clock.t += 6.05
    w.run()
    w.h.sent.clear()
    pkt = Packet(VM1_MAC, "ff:ff:ff:ff:ff:ff", F.ETH_RARP)
    msgs = w.h.router.packet_in(2, 4, pkt, b"", w.clock())
    w.h.feed(msgs)
    held = []
    w.h.router.on_host_seen  # noqa: B018  (the router queued the sighting)
    w.h.feed = lambda ms: held.extend(ms) or ms          # capture the switch's messages
    w.engine.net.send = w.h.feed
    w.run()
    assert [m for m in held if isinstance(m, F.FlowMod)][0].command == F.DELETE
    table = w.h.table
    for m in held:
        table.apply([m])
        hops = w.path()
        # old, new, or held at the controller (s2's hold flow): never a miss
        assert hops[-1] in ((3, 2), (2, 4), (2, F.CONTROLLER)), hops
    assert w.path() == [(2, 4)]
    up = w.event("ovct_network_update")[0]
    assert up["trigger"].startswith("VM seen") and up["mode"] == "fast"
    assert not [e for e in table.tables[2] if C.parse_cookie(e.cookie).gen == 1]
    # barriers confirm, then the migration completes
    w.h.sent = held
    w.ack_barriers()
    assert w.event("ovct_network_confirmed")
    w.clock.t += 1.6                         # libvirt reports completion
    w.run()
    assert w.event("ovct_migration_done") and w.engine.moves == {}
    assert w.hv.locate("vm1") == "pm1"
    order = [k for k in w.kinds() if k.startswith("ovct_")
             and k not in ("ovct_vm_seen", "ovct_migration_progress")]
    assert order == ["ovct_detect", "ovct_decision", "ovct_migration_start",
                     "ovct_network_update", "ovct_network_confirmed", "ovct_migration_done"]


def test_paper_mode_deletes_then_adds_after_the_migration_completed():
    w = World("paper")
    w.syn()
    w.clock.t += 5.5
    w.rarp(VM1_MAC, 2, 4)                     # the VM resumed, but paper mode waits
    assert w.path() == [(2, 1), (1, 2), (3, 2)]
    assert not w.event("ovct_network_update")
    w.h.sent.clear()
    w.clock.t += 1                           # libvirt reports completion
    w.run()
    msgs = [m for m in w.h.sent if isinstance(m, F.FlowMod)]
    deletes = [i for i, m in enumerate(msgs) if m.command == F.DELETE]
    adds = [i for i, m in enumerate(msgs) if m.command == F.ADD]
    assert deletes and adds and max(deletes) < min(adds)   # delete everything, then add
    assert {msgs[i].dpid for i in deletes} == {1, 2, 3}
    assert w.path() == [(2, 4)]
    kinds = w.kinds()
    assert kinds.index("ovct_migration_done") < kinds.index("ovct_network_update")
    assert w.event("ovct_network_update")[0]["trigger"] == "migration completed"


def test_vm_already_near_stays():
    w = World()
    w.hv.vms["pm1"]["vm1"] = w.hv.vms["pm2"].pop("vm1")
    w.arp(VM1, VM1_MAC, 2, 4)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "stay" and "nearest" in d["reason"]
    assert w.hv.jobs == []


def test_no_capacity_stays_with_reason():
    w = World(pm1_memory=300)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "stay" and d["reason"] == "no closer host has capacity"
    assert "free memory 300 < 320 MiB" in d["candidates"][0]["why"]
    assert w.hv.jobs == [] and w.path() == [(2, 1), (1, 2), (3, 2)]


def test_busy_cpu_stays_with_reason():
    w = World(min_idle_cpus=1.5)
    w.hv.add_vm("pm1", "hog", "10.0.0.150", "52:54:00:00:00:99", 256, cpu_used=1.0)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "stay" and "idle CPUs 1.00 < 1.5" in d["candidates"][0]["why"]


def test_non_vnc_port_and_non_vm_destinations_never_trigger():
    w = World()
    w.syn(dport=22)
    w.syn(vm_ip="10.0.0.12")                 # VNC port, but pm2 is not a VM
    w.syn(flags=F.TCP_SYN | F.TCP_ACK)       # not the first packet
    assert w.events == [] and w.hv.jobs == []


def test_second_session_while_migrating_does_not_start_a_second_migration():
    w = World()
    w.syn(sport=40000)
    w.syn(client="tcl2", sport=40001)
    decisions = w.event("ovct_decision")
    assert [d["decision"] for d in decisions] == ["migrate", "stay"]
    assert "in flight" in decisions[1]["reason"]
    assert len(w.hv.jobs) == 1


def test_retransmitted_syn_is_one_session():
    w = World()
    w.syn(sport=40000)
    w.syn(sport=40000)
    assert len(w.event("ovct_detect")) == 1


def test_an_answer_reported_before_its_syn_still_makes_the_session():
    """The SYN+ACK's copy (from the VM's switch) overtook the SYN's (from
    the client's switch): seen once live, the session was never detected."""
    w = World()
    w.syn(answer_first=True)
    (det,) = w.event("ovct_detect")
    assert det["client_port"] == 40000 and det["vm"] == "vm1"
    assert w.event("ovct_decision")[0]["decision"] == "migrate"
    assert not w.engine.accepted_early and not w.engine.pending


def test_an_answer_without_a_syn_moves_nothing_and_expires():
    w = World()
    w.syn(send_syn=False)
    w.syn(send_syn=False)                   # retransmitted: still one entry
    assert not w.event("ovct_detect") and len(w.engine.accepted_early) == 1
    w.clock.t += 11                         # longer than a SYN is kept
    w.run()
    assert not w.engine.accepted_early
    w.syn(accepted=False)                   # a late SYN alone is no session
    assert not w.event("ovct_detect")


def test_an_early_answer_is_forgotten_when_the_connection_resets():
    w = World()
    w.syn(send_syn=False)
    w.syn(flags=F.TCP_RST)
    assert not w.engine.accepted_early
    w.syn(accepted=False)                   # its SYN after the reset: no session
    assert not w.event("ovct_detect")


def test_early_answers_are_bounded_per_server():
    w = World()
    for k in range(40):
        w.syn(sport=41000 + k, send_syn=False)
    assert len(w.engine.accepted_early) == 16


def test_hold_time_respected():
    w = World("fast", hold_time_s=60)
    w.syn()
    w.land()
    assert w.hv.locate("vm1") == "pm1"
    # pm2 (on s3) now opens a session: vm1 would be closer on pm2, but it just moved
    w.syn(client="pm2", sport=41000)
    last = w.event("ovct_decision")[-1]
    assert last["decision"] == "stay" and "hold time" in last["reason"]
    w.clock.t += 61
    w.syn(client="pm2", sport=41001)
    assert w.event("ovct_decision")[-1]["decision"] == "migrate"


def test_failed_migration_keeps_old_flows_and_drops_staging():
    w = World("fast")
    w.hv.fail_next = "destination refused"
    w.syn()
    w.clock.t += 1
    w.run()
    f = w.event("ovct_migration_failed")[0]
    assert "destination refused" in f["reason"] and f["kept_old_flows"]
    assert w.path() == [(2, 1), (1, 2), (3, 2)]
    assert not [e for t in w.h.table.tables.values() for e in t
                if C.parse_cookie(e.cookie).gen == 1]
    assert w.engine.moves == {} and vm1_routable_again(w)


def vm1_routable_again(w) -> bool:
    """After a failure the router manages vm1 again: once its hypervisor
    says it runs elsewhere, its RARP there re-routes it."""
    w.hv.vms["pm1"]["vm1"] = w.hv.vms["pm2"].pop("vm1")
    w.engine.vms_by_ip(max_age=0)
    w.rarp(VM1_MAC, 2, 4)
    return w.path() == [(2, 4)]


def test_disabled_policy_records_and_stays():
    w = World(enabled=False)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "stay" and d["reason"] == "OVCT disabled"


def test_session_end_fin_and_idle():
    w = World(enabled=False)
    w.syn(sport=40000)
    w.syn(sport=40000, flags=F.TCP_FIN | F.TCP_ACK)
    w.syn(sport=40002)
    w.queue.append(SessionIdle("10.0.0.1", 40002, VM1, 5900, w.clock() + 60))
    w.run()
    assert [e["reason"] for e in w.event("ovct_session_end")] == ["fin", "idle"]
    # the session monitor flow was installed on the client's edge switch
    mons = [m for m in w.h.sent if isinstance(m, F.FlowMod)
            and C.parse_cookie(m.cookie).cls == C.SESSION]
    assert mons and mons[0].dpid == 2 and mons[0].idle_timeout == 60


def test_malformed_detect_packet_ignored():
    w = World()
    w.h.feed(w.h.router.packet_in(2, 2, None, b"\x00", w.clock(), F.TABLE_DETECT))
    w.h.feed(w.h.router.packet_in(2, 2, Packet("00:00:00:00:00:01", "x", F.ETH_IPV4,
                                               ip_src="10.0.0.1", ip_dst=VM1, ip_proto=6),
                                  b"", w.clock(), F.TABLE_DETECT))
    w.run()
    assert w.queue == [] and w.events == []


def test_detect_copies_are_not_delivered_twice():
    w = World()
    c = w.h.topo.host("tcl1")
    pkt = Packet(c.mac, VM1_MAC, F.ETH_IPV4, ip_src=c.ip, ip_dst=VM1, ip_proto=6,
                 tcp_src=1, tcp_dst=5900, tcp_flags=F.TCP_SYN)
    out = w.h.router.packet_in(2, 2, pkt, b"syn", w.clock(), F.TABLE_DETECT)
    assert not [m for m in out if isinstance(m, F.PacketOut)]
    assert isinstance(w.queue[0], VncConnection)


@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_unknown_destination_host_capacity_error_is_a_reason(mode):
    w = World(mode)
    w.hv.down.add("pm1")
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "stay" and "cannot reach libvirtd of pm1" in d["candidates"][0]["why"]


def test_migrations_beyond_the_limit_wait_their_turn():
    w = World("fast")
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    d = w.event("ovct_decision")
    assert [x["decision"] for x in d] == ["migrate", "wait"] and "limit 1" in d[1]["reason"]
    assert len(w.hv.jobs) == 1
    w.land()                       # vm1 lands; its flows switch on completion
    d = w.event("ovct_decision")
    assert d[-1]["decision"] == "migrate" and d[-1]["vm"] == "vm2"
    assert len(w.hv.jobs) == 2
    w.land()
    assert w.hv.placement() == {"vm1": "pm1", "vm2": "pm1"}


def test_waiting_session_that_ended_is_dropped():
    w = World("fast")
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001, flags=F.TCP_FIN | F.TCP_ACK)
    w.land()
    assert len(w.hv.jobs) == 1 and w.hv.locate("vm2") == "pm2"


def test_switched_on_at_run_time_decides_the_sessions_already_running():
    w = World("fast", enabled=False)
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    w.syn(client="tcl2", vm_ip=VM2, sport=40002)          # a session that ends
    w.syn(client="tcl2", vm_ip=VM2, sport=40002, flags=F.TCP_FIN | F.TCP_ACK)
    assert [d["decision"] for d in w.event("ovct_decision")] == ["stay"] * 3
    assert w.hv.jobs == []
    w.clock.t += 30
    w.engine.set_enabled(True, "test")
    on = w.event("ovct_enabled")[0]
    assert (on["changed"], on["running_sessions"], on["decided_sessions"]) == (True, 2, 2)
    # the decisions come before the event that announces them
    assert w.kinds().index("ovct_enabled") > w.kinds().index("ovct_migration_start")
    d = w.event("ovct_decision")[3:]
    assert [(x["vm"], x["decision"]) for x in d] == [("vm1", "migrate"), ("vm2", "wait")]
    # measured from the switch, not from the session's start 30 s earlier
    assert d[0]["detect_to_decision_s"] == 0
    for _ in range(2):
        w.land()
    assert w.hv.placement() == {"vm1": "pm1", "vm2": "pm1"}


def test_switched_off_lets_the_migration_finish_and_drops_waiting_ones():
    w = World("fast")
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    w.engine.set_enabled(False, "test")
    assert w.event("ovct_disabled")[0]["changed"] is True
    w.land()
    assert w.hv.placement() == {"vm1": "pm1", "vm2": "pm2"}
    assert len(w.hv.jobs) == 1
    # a new session while off is recorded and stays
    w.syn(client="tcl2", vm_ip=VM2, sport=40003)
    assert w.event("ovct_decision")[-1]["reason"] == "OVCT disabled"
    # asking for the state it is already in is answered, and changes nothing
    w.engine.set_enabled(False, "again")
    assert w.event("ovct_disabled")[-1]["changed"] is False


# -- the switchover, as the hypervisor reports it ------------------------------------

def _vm1_frame(w, seq):
    """An IPv4 frame from tcl1 for vm1 that s2 hands to the controller."""
    c = w.h.topo.host("tcl1")
    pkt = Packet(c.mac, VM1_MAC, F.ETH_IPV4, ip_src=c.ip, ip_dst=VM1, ip_proto=1)
    return w.h.router.packet_in(2, 2, pkt, f"frame-{seq}".encode(), w.clock())


def test_progress_events_time_every_phase_of_the_migration():
    w = World("fast")
    w.syn()
    w.land()
    steps = [(p["step"], p["host"]) for p in w.event("ovct_migration_progress")]
    assert steps == [("dest_started", "pm1"), ("iteration", "pm2"), ("source_paused", "pm2"),
                     ("dest_resumed", "pm1"), ("source_stopped", "pm2"), ("job_completed", "pm2")]
    paused, resumed = (p["since_start_s"] for p in w.event("ovct_migration_progress")
                       if p["step"] in ("source_paused", "dest_resumed"))
    assert resumed - paused == pytest.approx(0.150)            # the fake's downtime
    done = w.event("ovct_migration_done")[0]
    assert done["transferred_bytes"] and done["job"]["data_total"] == 256 << 20


def test_fast_mode_holds_the_paused_vms_traffic_and_delivers_it_at_the_destination():
    """Between the source pausing and the flows switching, packets for the VM
    wait at the controller instead of reaching the stopped source; they are
    delivered at the new port, in order, and none twice."""
    w = World("fast")
    w.syn()
    w.clock.t += 6 - 0.15                     # the source pauses (stop-and-copy)
    w.run()
    paused = [p for p in w.event("ovct_migration_progress") if p["step"] == "source_paused"]
    assert paused and paused[0]["held_flow_mods"] == 3     # s1, s2, s3 forward to vm1
    hit = w.h.table.pipeline(2, eth_type=F.ETH_IPV4, ipv4_dst=VM1)[-1]
    assert hit.out_port == F.CONTROLLER and C.parse_cookie(hit.cookie).cls == C.HOLD
    for seq in range(5):
        assert not [m for m in _vm1_frame(w, seq) if isinstance(m, F.PacketOut)]
    w.h.sent.clear()
    w.clock.t += 0.1
    w.rarp(VM1_MAC, 2, 4)                     # the VM resumed on pm1
    outs = [m for m in w.h.sent if isinstance(m, F.PacketOut)]
    assert [m.data for m in outs] == [f"frame-{i}".encode() for i in range(5)]
    assert all((m.dpid, m.ports) == (2, (4,)) for m in outs)
    flows = [i for i, m in enumerate(w.h.sent) if isinstance(m, F.FlowMod)]
    assert max(flows) < w.h.sent.index(outs[0])             # the new path first
    assert w.path() == [(2, 4)]
    assert not [e for t in w.h.table.tables.values() for e in t
                if C.parse_cookie(e.cookie).cls == C.HOLD]
    up = w.event("ovct_network_update")[0]
    assert (up["released_frames"], up["dropped_frames"]) == (5, 0)


def test_a_migration_that_fails_after_the_pause_delivers_the_held_traffic_at_the_source():
    w = World("fast")
    w.hv.fail_next, w.hv.fail_after_s = "connection lost", 6 - 0.1
    w.syn()
    w.clock.t += 6 - 0.15
    w.run()
    assert w.h.router.held
    _vm1_frame(w, 0)
    w.h.sent.clear()
    w.clock.t += 0.1                          # the job fails; the source resumes
    w.run()
    assert [p["step"] for p in w.event("ovct_migration_progress")][-1] == "source_resumed"
    outs = [m for m in w.h.sent if isinstance(m, F.PacketOut)]
    assert [(m.dpid, m.ports, m.data) for m in outs] == [(3, (2,), b"frame-0")]
    assert w.path() == [(2, 1), (1, 2), (3, 2)] and not w.h.router.held
    assert w.event("ovct_migration_failed")[0]["kept_old_flows"] is True


def test_paper_mode_never_holds():
    w = World("paper")
    w.syn()
    w.land()
    assert not [p for p in w.event("ovct_migration_progress") if p.get("held_flow_mods")]
    assert w.path() == [(2, 4)]


def test_without_hypervisor_events_fast_mode_switches_as_before():
    w = World("fast")
    w.hv.sink = None                          # a hypervisor that reports no events
    w.syn()
    w.land()
    assert not w.event("ovct_migration_progress") and w.path() == [(2, 4)]
    assert w.event("ovct_network_update")[0]["trigger"] == "migration completed"


def test_bandwidth_cap_reaches_the_hypervisor():
    w = World("fast", migration_bandwidth_mbit=200)
    w.syn()
    assert w.hv.jobs[0].bandwidth_mibps == 24              # 200 Mbit/s = 23.8 MiB/s


def test_fast_mode_switches_on_libvirts_resume_when_no_rarp_comes():
    w = World("fast")
    w.hv.completion_lag_s = 1.6               # libvirt's job ends ~1.6 s after the resume
    w.syn()
    w.clock.t += 6                            # the VM resumes on pm1; no RARP is seen
    w.run()
    assert not w.event("ovct_network_update") and w.h.router.held
    w.clock.t += 0.5
    w.run()
    up = w.event("ovct_network_update")
    assert up[0]["trigger"] == "VM resumed at destination (libvirt)" and w.path() == [(2, 4)]
    w.clock.t += 1.1
    w.ack_barriers()
    assert w.event("ovct_migration_done") and w.engine.moves == {}


# -- scheduling ------------------------------------------------------------------------

def test_in_flight_migrations_reserve_memory_at_their_destination():
    """pm1 (550 MiB) has room for one 256 MiB VM (+64 reserve) but not two: with two
    migrations allowed at once, the second must not be sent there."""
    w = World("fast", pm1_memory=550, max_concurrent_migrations=2)
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    d = w.event("ovct_decision")
    assert [x["decision"] for x in d] == ["migrate", "stay"]
    (c,) = d[1]["candidates"]
    assert c["reserved_for"] == ["vm1"] and c["free_memory_mib"] == 550 - 256
    assert len(w.hv.jobs) == 1


def test_a_second_live_session_to_a_waiting_vm_keeps_its_decision():
    """Two sessions to vm2 wait behind vm1's migration; the first of them
    ends while waiting: the second is still decided when the slot frees."""
    w = World("fast")
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    w.syn(client="tcl1", vm_ip=VM2, sport=40002)
    assert [x["decision"] for x in w.event("ovct_decision")] == ["migrate", "wait", "wait"]
    w.syn(client="tcl2", vm_ip=VM2, sport=40001, flags=F.TCP_FIN | F.TCP_ACK)
    w.land()
    last = w.event("ovct_decision")[-1]
    assert (last["session"], last["vm"], last["decision"]) == (3, "vm2", "migrate")
    assert w.hv.jobs[-1].vm == "vm2"


def test_a_vm_active_on_two_hosts_is_refused_with_a_reason():
    w = World("fast")
    w.hv.add_vm("pm1", "vm1", VM1, VM1_MAC, 256)     # split brain: vm1 on both
    w.engine.vms_by_ip(max_age=0)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "stay" and "active on 2 hosts (pm1, pm2)" in d["reason"]
    assert w.hv.jobs == []


# -- a controller that restarts ------------------------------------------------------------

def test_a_restarted_controller_adopts_the_migration_in_flight_and_leaves_nothing_stale():
    w = World("fast")
    w.syn()
    w.clock.t += 2
    w.run()
    assert len(w.hv.jobs) == 1 and w.engine.moves
    w.restart_controller()
    w.run()
    restored = w.event("ovct_restored")
    assert restored and restored[-1]["sessions"] == 1 and restored[-1]["adopted"] == ["vm1"]
    assert [s["adopted"] for s in w.event("ovct_migration_start") if s.get("adopted")] == [True]
    # the same session's retransmitted SYN, or a new one, starts no second migration
    w.syn(sport=40000)
    w.syn(client="tcl2", sport=40009)
    assert len(w.hv.jobs) == 1
    w.clock.t += 4.2
    w.run()
    w.ack_barriers()
    assert w.hv.locate("vm1") == "pm1" and w.path() == [(2, 4)]
    # no orphan staging copy, no hold: the reconnect wiped them, the move finished
    assert not [e for t in w.h.table.tables.values() for e in t
                if C.parse_cookie(e.cookie).gen == 1 or C.parse_cookie(e.cookie).cls == C.HOLD]
    # and the hold time of the move goes on across the restart
    w.clock.t += 10
    w.syn(client="pm2", sport=41000)
    assert "hold time" in w.event("ovct_decision")[-1]["reason"]


def test_a_restart_keeps_the_hold_time_of_earlier_moves():
    w = World("fast", hold_time_s=60)
    w.syn()
    w.land()
    w.restart_controller()
    w.run()
    assert w.event("ovct_restored")[-1] == {"sessions": 1, "last_moved": 1, "adopted": []}
    w.syn(client="pm2", sport=41000)
    assert "hold time" in w.event("ovct_decision")[-1]["reason"]


@pytest.mark.parametrize("fails", [False, True])
def test_a_migration_that_ended_while_no_controller_ran_gets_its_outcome(fails):
    """The old controller started the move and died; the job ended (at the
    destination, or failed back to the source) before the new one started:
    the new one logs the outcome where the hypervisor says the VM runs, the
    flows go there, and no second migration starts."""
    w = World("fast")
    if fails:
        w.hv.fail_next, w.hv.fail_after_s = "connection reset", 4.0
    w.syn()
    w.clock.t += 2
    w.run()
    assert len(w.hv.jobs) == 1
    w.clock.t += 6
    w.hv.pump()                          # the job ends; nobody is listening
    assert w.hv.in_flight() == []
    where = "pm2" if fails else "pm1"
    assert w.hv.locate("vm1") == where
    w.restart_controller()
    w.run()
    w.ack_barriers()
    ends = w.event("ovct_migration_failed" if fails else "ovct_migration_done")
    assert len(ends) == 1, ends
    last = ends[0]
    if fails:
        assert last["reason"] == "ended while no controller ran"
        assert last["observed_at"] == last["flows_at"] == "pm2"
    else:
        assert last["ended_unobserved"] is True and last["to"] == "pm1"
    assert w.path() == ([(2, 1), (1, 2), (3, 2)] if fails else [(2, 4)])
    w.syn(sport=40000)
    assert len(w.hv.jobs) == 1
    w.restart_controller()               # a second restart logs nothing twice
    w.run()
    assert len(w.event("ovct_migration_failed" if fails else "ovct_migration_done")) == len(ends)


def test_a_restart_while_a_host_cannot_be_asked_adopts_later_and_concludes_nothing(monkeypatch):
    """The restarted controller cannot list every host's migrations yet:
    it neither adopts a partial answer nor calls the running migration
    failed because the VM is still at its source; it asks again."""
    w = World("fast")
    w.syn()
    w.clock.t += 2
    w.run()
    real = w.hv.in_flight
    answers = iter([HypervisorError("pm1 (libvirtd restarting)")])

    def flaky():
        for exc in answers:
            raise exc
        return real()
    monkeypatch.setattr(w.hv, "in_flight", flaky)
    w.restart_controller()
    w.run()
    assert not w.event("ovct_migration_failed") and not w.event("ovct_restored")
    w.clock.t += 0.5
    w.run()
    assert w.event("ovct_restored")[-1]["adopted"] == ["vm1"]
    w.clock.t += 4
    w.run()
    w.ack_barriers()
    assert [e["to"] for e in w.event("ovct_migration_done")] == ["pm1"]
    assert not w.event("ovct_migration_failed") and w.path() == [(2, 4)]


def test_a_restarted_controller_adopts_a_migration_of_a_vm_it_has_not_learnt():
    """After a restart the migrating VM sends nothing the router may learn
    (it is expected at its source, and its RARP at the destination came
    while no controller ran): the job is adopted at once all the same, and
    its end puts the flows where the hypervisor says the VM runs."""
    w = World("fast")
    w.syn()
    w.clock.t += 2
    w.run()
    w.restart_controller(announce_vms=False)
    w.run()
    assert w.event("ovct_restored")[-1]["adopted"] == ["vm1"]
    w.clock.t += 4.2
    w.run()
    w.ack_barriers()
    assert [e["to"] for e in w.event("ovct_migration_done")] == ["pm1"]
    assert w.hv.locate("vm1") == "pm1" and w.path() == [(2, 4)]
