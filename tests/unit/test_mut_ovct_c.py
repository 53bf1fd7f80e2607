"""The OVCT engine's outputs pinned field by field (mutation testing, issue
14, group c: the engine's methods other than the restart, the domain
events and the prediction check): the events' payloads as the log holds
them, the decision's reasons and candidates, the limits on SYNs waiting
for an answer, the inventory's cache, placement's index when KVM hosts
move, what the router is told to expect, and the engine's timers."""
import logging

import pytest

from controller import classes as C
from controller import flows as F
from controller import policies as P
from controller.config import Policy
from controller.cost import Rates
from controller.events import Decision, PredictionCheck
from controller.fake_hypervisor import FakeHypervisor
from controller.hypervisor import HostSpec, HypervisorError
from controller.ovct import HostSeen, Ovct, Session
from controller.routernet import RouterNetwork
from controller.routing import Update, VncConnection
from tests.unit.helpers import sim_engine
from tests.unit.world import VM1, VM1_MAC, VM2, World

FAR = [(2, 1), (1, 2), (3, 2)]        # tcl1 -> vm1 on pm2
NEAR = [(2, 4)]                       # tcl1 -> vm1 on pm1
VM3, VM3_MAC = "10.0.0.103", "52:54:00:00:00:03"


def by_hand(w, vm, src, dst):
    """``vm`` is moved from ``src`` to ``dst`` behind the engine's back (the
    fake hypervisor is not told, as a migration by another tool would look
    to an incremental inventory read)."""
    w.hv.vms[dst][vm] = w.hv.vms[src].pop(vm)


def count_domain_reads(w):
    """Count the hypervisor's domain listings (one per host read)."""
    calls = []
    inner = w.hv.domains

    def domains(host):
        calls.append(host)
        return inner(host)
    w.hv.domains = domains
    return calls


def staged_adds(w):
    return [m for m in w.h.sent if isinstance(m, F.FlowMod) and C.parse_cookie(m.cookie).gen == 1]


# -- phase 1: detection ------------------------------------------------------------------

def test_detect_and_decision_payloads_when_the_answer_comes_later_than_the_syn():
    """The session is timed from the client's SYN; the decision is taken
    when the VM's SYN+ACK makes it a session, 0.1234567 s later: every
    field of the detection, the decision and the migration's start."""
    w = World("fast")
    w.syn(accepted=False)
    w.clock.t += 0.1234567
    w.syn(send_syn=False)
    dpid, port = w.h.where("tcl1")
    assert w.event("ovct_detect") == [{
        "phase": 1, "session": 1, "vm": "vm1", "vm_ip": VM1, "vm_port": 5900,
        "client_ip": "10.0.0.1", "client_port": 40000, "client_switch": dpid,
        "client_switch_port": port, "vm_switch": 3, "vm_host": "pm2", "detected_mono": 100.0}]
    (d,) = w.event("ovct_decision")
    fixed = {k: d[k] for k in ("phase", "session", "vm", "from", "decision", "reason",
                               "detect_to_decision_s", "to", "current_hops", "candidates",
                               "policy", "rates")}
    assert fixed == {
        "phase": 2, "session": 1, "vm": "vm1", "from": "pm2", "decision": "migrate",
        "reason": "pm1 is 0 hop(s) from the client, pm2 is 2",
        "detect_to_decision_s": 0.123457, "to": "pm1", "current_hops": 2,
        "candidates": [{"host": "pm1", "hops": 0, "free_memory_mib": 2048, "idle_cpus": 2.0,
                        "ok": True}],
        "policy": "always", "rates": "prior"}
    staged = staged_adds(w)
    assert staged
    assert w.event("ovct_migration_start") == [{
        "phase": 3, "session": 1, "vm": "vm1", "from": "pm2", "to": "pm1", "mode": "fast",
        "staged_flow_mods": len(staged)}]


def test_paper_mode_stages_nothing_and_pins_the_vms_flows():
    """Paper mode: the migration starts with no staged flow-mods, and the
    router keeps the VM's flows where they are until the move is over."""
    w = World("paper")
    w.syn()
    assert w.event("ovct_migration_start") == [{
        "phase": 3, "session": 1, "vm": "vm1", "from": "pm2", "to": "pm1", "mode": "paper",
        "staged_flow_mods": 0}]
    assert not staged_adds(w)
    assert VM1 in w.h.router.pinned


def test_a_vm_the_router_has_not_seen_yet_is_detected_with_no_switch():
    """A VNC connection to a VM the hypervisor runs but the router never
    learnt: the session is detected, its VM's switch unknown (None)."""
    w = World(enabled=False)
    w.hv.add_vm("pm2", "vm3", VM3, VM3_MAC, 256)
    for kind in ("start", "accept"):
        w.engine.handle(VncConnection(kind, "10.0.0.1", 40000, VM3, 5900, 2, 2, w.clock()))
    (det,) = w.event("ovct_detect")
    assert (det["vm"], det["vm_host"], det["vm_switch"]) == ("vm3", "pm2", None)
    assert w.event("ovct_decision")[0]["reason"] == "OVCT disabled"


def test_a_vm_booted_after_the_inventory_was_read_is_asked_for_again():
    """The inventory was read a moment ago, without the VM that just
    booted: a SYN to it reads the hypervisors again and makes a session."""
    w = World(enabled=False)
    w.engine.vms_by_ip()
    w.hv.add_vm("pm2", "vm3", VM3, VM3_MAC, 256)
    w.arp(VM3, VM3_MAC, 3, 2)
    w.clock.t += 0.5
    w.syn(vm_ip=VM3)
    assert [(d["vm"], d["vm_host"]) for d in w.event("ovct_detect")] == [("vm3", "pm2")]


def test_a_syn_to_a_vm_of_a_recent_inventory_reads_no_hypervisor():
    """A session to a VM the inventory read under 2 s ago knows its host
    from that read: no hypervisor is listed again."""
    w = World(enabled=False)
    w.engine.vms_by_ip()
    reads = count_domain_reads(w)
    w.clock.t += 1
    w.syn()
    assert [d["vm_host"] for d in w.event("ovct_detect")] == ["pm2"]
    assert reads == []


def test_unanswered_syns_are_bounded_per_client_address():
    """At most 16 unanswered SYNs are remembered per client address; other
    clients are not held back by one client's."""
    w = World()
    for k in range(40):
        w.syn(sport=41000 + k, accepted=False)
    assert len(w.engine.pending) == 16
    assert {k[0] for k in w.engine.pending} == {"10.0.0.1"}
    w.syn(client="tcl2", sport=42000, accepted=False)
    assert len(w.engine.pending) == 17 and ("10.0.0.2", 42000, VM1, 5900) in w.engine.pending


def test_a_retransmitted_syn_does_not_keep_it_waiting_longer():
    """A SYN is forgotten 10 s after it was first seen, retransmitted or
    not: an answer after that makes no session.  A retransmitted SYN of an
    established session leaves nothing waiting."""
    w = World()
    w.syn(accepted=False)
    w.clock.t += 6
    w.syn(accepted=False)                   # retransmitted
    w.clock.t += 4.5
    w.run()
    assert w.engine.pending == {}
    w.syn(send_syn=False)                   # the answer comes too late
    assert not w.event("ovct_detect")
    w.syn(sport=40001)                      # an established session ...
    w.syn(sport=40001, accepted=False)      # ... and its SYN again
    assert len(w.event("ovct_detect")) == 1 and w.engine.pending == {}


def test_a_retransmitted_early_answer_does_not_keep_it_waiting_longer():
    """An answer seen before its SYN is forgotten 10 s after it was first
    seen; a retransmitted answer of an established session is not kept."""
    w = World()
    w.syn(send_syn=False)
    w.clock.t += 6
    w.syn(send_syn=False)                   # retransmitted
    w.clock.t += 4.5
    w.run()
    assert w.engine.accepted_early == {}
    w.syn(accepted=False)                   # the SYN comes too late
    assert not w.event("ovct_detect")
    w.syn(sport=40001)
    w.syn(sport=40001, send_syn=False)      # the established session's answer again
    assert len(w.event("ovct_detect")) == 1 and w.engine.accepted_early == {}


def test_a_reset_forgets_the_syn_so_a_late_answer_makes_no_session():
    """A reset ends a SYN still waiting for its answer: the answer after it makes no session."""
    w = World()
    w.syn(accepted=False)
    w.syn(flags=F.TCP_RST)
    assert w.engine.pending == {}
    w.syn(send_syn=False)
    assert not w.event("ovct_detect") and w.hv.jobs == []


def test_an_input_of_an_unknown_kind_is_refused_with_a_message():
    """The engine refuses an input that is none of its kinds, and says what it got."""
    w = World()
    with pytest.raises(TypeError, match=r"^not an OVCT input: 'what'$"):
        w.engine.handle("what")


def test_a_session_end_reports_its_duration_to_the_millisecond():
    """A session's end is logged with its reason and its length rounded to the millisecond."""
    w = World(enabled=False)
    w.syn()
    w.clock.t += 12.3456789
    w.syn(flags=F.TCP_FIN | F.TCP_ACK)
    assert w.event("ovct_session_end") == [
        {"session": 1, "vm": "vm1", "reason": "fin", "duration_s": 12.346}]


# -- phase 2: the decision's reasons and candidates -----------------------------------------

def test_a_second_session_to_a_moving_vm_stays_with_the_reason_spelt_out():
    """A second session to a VM whose migration is in flight stays, and says so."""
    w = World()
    w.syn(sport=40000)
    w.syn(client="tcl2", sport=40001)
    d = w.event("ovct_decision")[1]
    assert (d["decision"], d["reason"]) == ("stay", "a migration of this VM is already in flight")


def test_a_vm_already_on_the_nearest_host_stays_with_the_empty_search_recorded():
    """A VM already next to its client stays: the decision records its distance
    and an empty candidate list."""
    w = World()
    by_hand(w, "vm1", "pm2", "pm1")
    w.arp(VM1, VM1_MAC, 2, 4)
    w.syn()
    (d,) = w.event("ovct_decision")
    assert d == {"phase": 2, "session": 1, "vm": "vm1", "from": "pm1", "decision": "stay",
                 "reason": "already on the nearest host with the client",
                 "detect_to_decision_s": 0.0, "current_hops": 0, "candidates": []}


def test_the_hold_time_reason_says_how_long_ago_and_ends_at_exactly_the_hold_time():
    """A VM moved at t stays put until t + hold time; at exactly t + hold
    time it may move again."""
    w = World("fast", hold_time_s=60)
    w.syn()
    w.land()
    assert w.engine.last_moved["vm1"] == 106.0
    w.clock.t = 136.0
    w.syn(client="pm2", sport=41000)
    d = w.event("ovct_decision")[-1]
    assert (d["decision"], d["reason"]) == ("stay", "moved 30 s ago; hold time 60 s")
    w.clock.t = 166.0
    w.syn(client="pm2", sport=41001)
    assert w.event("ovct_decision")[-1]["decision"] == "migrate"


def test_a_host_that_cannot_be_asked_is_a_refused_candidate():
    """A closer host whose hypervisor cannot be asked is listed as a refused
    candidate with the error."""
    w = World()
    w.hv.down.add("pm1")
    w.syn()
    d = w.event("ovct_decision")[0]
    assert (d["decision"], d["reason"]) == ("stay", "no closer host has capacity")
    assert d["candidates"] == [
        {"host": "pm1", "hops": 0, "ok": False, "why": "cannot reach libvirtd of pm1"}]


def test_a_busy_candidate_is_refused_with_its_idle_cpus_to_the_thousandth():
    """A closer host with too few idle CPUs is refused; the candidate lists its
    free memory and idle CPUs (to 0.001)."""
    w = World(min_idle_cpus=1.9)
    w.hv.add_vm("pm1", "hog", "10.0.0.150", "52:54:00:00:00:99", 256, cpu_used=0.12345)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["candidates"] == [
        {"host": "pm1", "hops": 0, "free_memory_mib": 2048 - 256, "idle_cpus": 1.877,
         "ok": False, "why": "idle CPUs 1.88 < 1.9"}]


def test_a_candidate_with_exactly_the_idle_cpus_needed_is_taken():
    """A host with exactly the idle CPUs the policy asks for has room."""
    w = World(min_idle_cpus=2.0)
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["decision"] == "migrate"
    assert d["candidates"] == [
        {"host": "pm1", "hops": 0, "free_memory_mib": 2048, "idle_cpus": 2.0, "ok": True}]


def test_an_incoming_migration_takes_its_share_of_the_destinations_idle_cpus():
    """A VM on its way to a host counts there: its memory and the idle CPUs
    a migration needs are taken off what the host reports."""
    w = World(max_concurrent_migrations=2, min_idle_cpus=0.5)
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    d = w.event("ovct_decision")[1]
    assert d["candidates"] == [
        {"host": "pm1", "hops": 0, "free_memory_mib": 2048 - 256, "idle_cpus": 1.5,
         "reserved_for": ["vm1"], "ok": True}]


def test_a_vm_whose_hosts_place_is_unknown_still_gets_a_decision():
    """The router has not learnt where the VM's current host is (no hop
    count): placement looks at every host and the VM moves next to the
    client."""
    w = World()
    del w.h.router.view.hosts["10.0.0.12"]
    w.syn()
    (d,) = w.event("ovct_decision")
    assert (d["decision"], d["to"]) == ("migrate", "pm1") and "current_hops" not in d
    assert d["reason"] == "pm1 is 0 hop(s) from the client, pm2 is None"
    assert len(w.hv.jobs) == 1


def test_a_fresh_engine_can_decide_before_any_inventory_read():
    """Nothing read yet: no VM is known to run twice, placement has looked
    at no host, and a decision asked for directly is taken."""
    w = World()
    assert w.engine.conflicts == {} and w.engine.hosts_ranked == 0
    w.engine.decide(Session(1, "10.0.0.1", 40000, "vm1", VM1, 5900, 2, w.clock()), "pm2", 256)
    assert [d["decision"] for d in w.event("ovct_decision")] == ["migrate"]
    assert w.engine.hosts_ranked == 1


def test_the_cost_unit_bytes_makes_the_break_even_one_of_bytes():
    """With cost_unit bytes the predicted break-even is the cost in bytes over
    the saving in bytes/s (not packets')."""
    w = World(cost_unit="bytes")
    w.syn()
    d = w.event("ovct_decision")[0]
    assert d["breakeven_s"] == pytest.approx(d["cost_bytes"] / d["saving_bps"], rel=1e-5)
    assert d["breakeven_s"] != pytest.approx(d["cost_packets"] / d["saving_pps"], rel=1e-3)


class Recorder(P.Decider):
    """A decision policy that moves and keeps what it was shown."""
    name = "recorder"

    def __init__(self, actions=(P.MIGRATE,)):
        self.seen = []
        self.actions = list(actions)

    def verdict(self, ctx):
        self.seen.append(ctx)
        action = self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]
        if action == P.DEFER:
            return P.Verdict(P.DEFER, "later", ctx.now + 5)
        return P.Verdict(action, "" if action == P.MIGRATE else "no")


def test_a_policy_that_reads_no_history_is_told_no_past_session():
    """A policy that reads no history is given 0 past sessions and no expected
    time left, with the move's two switches."""
    w = World()
    w.engine.decider = rec = Recorder()
    w.syn()
    (ctx,) = rec.seen
    assert (ctx.history_n, ctx.expected_remaining_s) == (0, None)
    assert (ctx.src_switch, ctx.dst_switch, ctx.now, ctx.started) == (3, 2, 100.0, 100.0)
    assert w.event("ovct_decision")[0]["policy"] == "recorder"


def test_a_recheck_that_decides_clears_the_sessions_recheck_time():
    """A deferred decision is taken again at its recheck time; once decided,
    the session has no recheck time left."""
    w = World()
    w.engine.decider = Recorder([P.DEFER, P.MIGRATE])
    w.syn()
    (s,) = w.engine.sessions.values()
    assert w.event("ovct_decision")[0]["recheck_mono"] == 105.0 and s.recheck_at == 105.0
    w.clock.t = 105.0
    w.run()
    assert [d["decision"] for d in w.event("ovct_decision")] == ["defer", "migrate"]
    assert s.recheck_at is None


def test_the_deferred_decision_records_the_reason_and_the_recheck_to_the_microsecond():
    """A deferred decision says where and why, and when it is taken again (to the microsecond)."""
    w = World(decision="breakeven")
    w.clock.t = 100.1234567
    w.syn()
    (d,) = w.event("ovct_decision")
    assert d["decision"] == "defer" and d["recheck_mono"] == 130.123457
    assert d["reason"].startswith("pm1 is 0 hop(s) from the client, pm2 is 2; lasted 0 s < "
                                  "break-even ")


def test_a_stale_recheck_does_not_hold_back_the_next_one_due():
    """Two deferred decisions are due; the first one's session ended: the
    second is taken on the same poll."""
    w = World(decision="breakeven")
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.clock.t += 0.5
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    assert [d["recheck_mono"] for d in w.event("ovct_decision")] == [130.0, 130.5]
    w.clock.t = 110.0
    w.syn(client="tcl1", vm_ip=VM1, sport=40000, flags=F.TCP_FIN | F.TCP_ACK)
    w.clock.t = 131.0
    w.engine.poll()
    d = w.event("ovct_decision")
    assert [(x["vm"], x["decision"]) for x in d] == [("vm1", "defer"), ("vm2", "defer"),
                                                     ("vm2", "defer")]


def test_the_expected_time_left_rests_on_the_clients_own_sessions():
    """The history-based policy estimates the time a session has left from
    that client's past sessions with the VM (to the millisecond), not from
    every client's."""
    w = World(decision="predicted", history_min_sessions=1)
    w.syn(client="tcl1", sport=40000)
    w.clock.t = 200.12345
    w.syn(client="tcl1", sport=40000, flags=F.TCP_FIN | F.TCP_ACK)      # 100.12345 s
    w.clock.t = 300.0
    w.syn(client="tcl2", sport=40001)
    w.clock.t = 1300.0
    w.syn(client="tcl2", sport=40001, flags=F.TCP_FIN | F.TCP_ACK)      # 1000 s
    w.clock.t = 1400.0
    w.syn(client="tcl1", sport=40002)
    d = w.event("ovct_decision")[-1]
    assert (d["session"], d["expected_remaining_s"], d["history_n"]) == (3, 100.123, 1)
    assert d["decision"] == "stay"


# -- switching OVCT on and off --------------------------------------------------------------

def test_switching_on_records_when_and_why_by_default_nothing():
    """Switching OVCT on is logged with when, and why (empty unless given)."""
    w = World(enabled=False)
    w.engine.set_enabled(True)
    assert w.event("ovct_enabled") == [{"why": "", "switched_mono": 100.0, "changed": True,
                                        "running_sessions": 0, "decided_sessions": 0}]


def test_switching_on_when_already_on_decides_nothing_again():
    """Switching OVCT on while it is on changes nothing: no session is decided again."""
    w = World()
    by_hand(w, "vm1", "pm2", "pm1")
    w.arp(VM1, VM1_MAC, 2, 4)
    w.syn()
    n = len(w.event("ovct_decision"))
    w.engine.set_enabled(True, "again")
    assert len(w.event("ovct_decision")) == n
    assert w.event("ovct_enabled")[-1] == {"why": "again", "switched_mono": 100.0,
                                           "changed": False, "running_sessions": 1,
                                           "decided_sessions": 0}


def test_switching_on_again_skips_a_session_whose_vm_is_moving():
    """Switched off and on during a migration: the session whose VM is moving
    is not decided again."""
    w = World()
    w.syn()
    w.engine.set_enabled(False, "off")
    w.engine.set_enabled(True, "on")
    assert len(w.event("ovct_decision")) == 1
    on = w.event("ovct_enabled")[-1]
    assert (on["changed"], on["running_sessions"], on["decided_sessions"]) == (True, 1, 0)


def test_switching_on_reads_where_the_vms_run_now():
    """Switched on a moment after the last inventory read, with the VM
    moved meanwhile: the decision is taken where the VM runs now."""
    w = World(enabled=False)
    w.syn()
    by_hand(w, "vm1", "pm2", "pm1")
    w.clock.t += 0.5
    w.engine.set_enabled(True, "on")
    d = w.event("ovct_decision")[-1]
    assert (d["from"], d["decision"]) == ("pm1", "stay")
    assert not w.event("ovct_migration_failed") and w.hv.jobs == []


def test_a_waiting_decision_is_taken_again_where_the_vm_runs_now():
    """vm2 waits behind vm1's migration and meanwhile moves next to its
    client: when the slot frees it stays, with no migration attempted."""
    w = World()
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl1", vm_ip=VM2, sport=40001)
    assert [d["decision"] for d in w.event("ovct_decision")] == ["migrate", "wait"]
    w.clock.t += 6
    w.run()
    w.clock.t += 0.5
    w.engine.vms_by_ip(max_age=0)
    by_hand(w, "vm2", "pm2", "pm1")
    w.clock.t += 0.5
    w.ack_barriers()
    d = w.event("ovct_decision")[-1]
    assert (d["vm"], d["from"], d["decision"]) == ("vm2", "pm1", "stay")
    assert not w.event("ovct_migration_failed") and len(w.hv.jobs) == 1


# -- phase 3 -----------------------------------------------------------------------------------

def test_the_migration_timeout_reaches_the_hypervisor():
    """The policy's migration timeout is the one the hypervisor enforces."""
    w = World(migration_timeout_s=3)
    w.syn()
    w.clock.t += 3.5
    w.run()
    (f,) = w.event("ovct_migration_failed")
    assert f["reason"] == "migration of vm1 timed out and was aborted"


def test_a_migration_started_without_memory_reserves_none_at_the_destination():
    """A migration started without the VM's memory reserves nothing at its destination."""
    w = World(max_concurrent_migrations=2)
    w.engine.migrate(Session(1, "10.0.0.1", 40000, "vm1", VM1, 5900, 2, w.clock()),
                     "pm2", "pm1", (2, 4))
    assert w.engine.moves["vm1"].memory_mib == 0
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    c = w.event("ovct_decision")[-1]["candidates"][0]
    assert (c["free_memory_mib"], c["reserved_for"]) == (2048, ["vm1"])


def test_at_the_migrations_start_the_router_expects_the_vm_at_its_source_only():
    """When the migration starts the router is told the VM may be learnt only
    at its source's port."""
    w = World()
    w.engine.vms_by_ip()
    told = []
    inner = w.engine.net.expect_vm
    w.engine.net.expect_vm = lambda ip, where: told.append((ip, where)) or inner(ip, where)
    w.syn()
    assert w.event("ovct_migration_start")
    assert told == [(VM1, frozenset({(3, 2)}))]
    assert w.h.router.trust.vm_allowed[VM1] == frozenset({(3, 2)})


# -- phase 4 -----------------------------------------------------------------------------------

def test_the_vm_seen_at_its_destination_is_reported_once_to_the_microsecond():
    """The first sighting of the VM at its new port is reported (and in
    fast mode switches the flows); a second one there, or one elsewhere,
    adds nothing."""
    w = World("fast")
    w.syn()
    w.clock.t += 5.12345678
    w.queue.append(HostSeen(VM1, 2, 4, w.clock()))
    w.run()
    assert w.event("ovct_vm_seen") == [{"phase": 4, "session": 1, "vm": "vm1", "switch": 2,
                                        "port": 4, "migration_start_to_seen_s": 5.123457}]
    (up,) = w.event("ovct_network_update")
    assert (up["trigger"], up["seen_to_switch_s"]) == ("VM seen at destination (RARP)", 0.0)
    w.clock.t += 0.1
    w.queue += [HostSeen(VM1, 2, 4, w.clock()), HostSeen(VM1, 3, 2, w.clock())]
    w.run()
    assert len(w.event("ovct_vm_seen")) == 1 and len(w.event("ovct_network_update")) == 1


def test_two_vms_moving_to_one_host_are_seen_each_by_its_own_address():
    """Two VMs moving to the same host port: one VM's RARP there is that VM's sighting only."""
    w = World(max_concurrent_migrations=2)
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    assert len(w.engine.moves) == 2
    w.clock.t += 1
    w.queue.append(HostSeen(VM1, 2, 4, w.clock()))
    w.run()
    assert [e["vm"] for e in w.event("ovct_vm_seen")] == ["vm1"]
    assert [e["vm"] for e in w.event("ovct_network_update")] == ["vm1"]
    assert w.engine.moves["vm2"].seen_at_dst is None


def test_paper_mode_waits_for_the_migrations_end_even_when_the_vm_is_seen():
    """Paper mode reports the VM seen at its destination but switches no flow
    before the migration ends."""
    w = World("paper")
    w.syn()
    w.clock.t += 3
    w.queue.append(HostSeen(VM1, 2, 4, w.clock()))
    w.run()
    assert [e["vm"] for e in w.event("ovct_vm_seen")] == ["vm1"]
    assert not w.event("ovct_network_update") and w.path() == FAR


def test_the_confirmation_is_timed_to_the_microsecond():
    """The network update's confirmation is timed from the switch, to the microsecond."""
    w = World("fast")
    w.syn()
    w.clock.t += 6
    w.run()
    assert w.engine.moves["vm1"].switched == 106.0
    w.clock.t = 106.1234567
    w.ack_barriers()
    assert [c["switch_to_confirmed_s"] for c in w.event("ovct_network_confirmed")] == [0.123457]


def test_next_due_is_the_resume_grace_then_the_barrier_timeout():
    """The VM resumed at the destination (libvirt) and no RARP came: the
    engine is next due when the grace runs out; once the flows switched,
    when the barriers time out."""
    w = World("fast")
    w.hv.completion_lag_s = 1.6
    w.syn()
    assert w.engine.next_due() is None
    w.clock.t = 106.0
    w.run()
    assert w.engine.moves["vm1"].dst_resumed == 106.0
    assert w.engine.next_due() == 106.5
    w.clock.t = 106.5
    w.run()
    assert w.event("ovct_network_update")
    assert w.engine.next_due() == 116.5


# -- the inventory -----------------------------------------------------------------------------

def test_the_inventory_is_cached_for_two_seconds_then_read_again():
    """vms_by_ip answers from its last read for 2 s (inclusive), then reads the
    hypervisors again."""
    w = World()
    assert VM3 not in w.engine.vms_by_ip()
    w.hv.add_vm("pm1", "vm3", VM3, VM3_MAC, 256)
    w.clock.t += 2.0
    assert VM3 not in w.engine.vms_by_ip()
    w.clock.t += 0.5
    assert w.engine.vms_by_ip()[VM3] == ("vm3", "pm1", 256)


def test_max_age_zero_reads_every_host_even_when_the_hypervisor_saw_no_change():
    """max_age=0 lists every host, so a change the hypervisor did not report is seen."""
    w = World()
    w.engine.vms_by_ip()
    by_hand(w, "vm1", "pm2", "pm1")
    w.clock.t += 0.1
    assert w.engine.vms_by_ip(max_age=0)[VM1][1] == "pm1"


def test_a_read_that_is_not_forced_lists_only_the_hosts_that_changed():
    """Once every KVM host's place is known, a read lists only the hosts
    the hypervisor says changed -- read after read."""
    w = World()
    w.engine.vms_by_ip()
    reads = count_domain_reads(w)
    w.hv.add_vm("pm1", "vm3", VM3, VM3_MAC, 256)
    w.clock.t += 0.6
    assert w.engine.vms_by_ip(max_age=0.5)[VM3][1] == "pm1"
    assert reads == ["pm1"]
    w.hv.add_vm("pm2", "vm4", "10.0.0.104", "52:54:00:00:00:04", 256)
    w.clock.t += 0.6
    assert "10.0.0.104" in w.engine.vms_by_ip(max_age=0.5)
    assert reads == ["pm1", "pm2"]


def test_a_host_of_unknown_place_makes_the_next_read_a_full_one():
    """A read that found a KVM host whose place the router does not know makes
    the next read list every host."""
    w = World()
    del w.h.router.view.hosts["10.0.0.12"]
    w.engine.vms_by_ip()
    reads = count_domain_reads(w)
    w.clock.t += 0.6
    w.engine.vms_by_ip(max_age=0.5)
    assert reads == ["pm1", "pm2"]


def test_a_split_brain_that_ends_is_forgotten_and_a_stopped_vm_is_dropped():
    """vm1 runs on both hosts, then only on pm2 again, and vm2 stops: an
    incremental read of the changed hosts forgets the conflict and the
    stopped VM, and vm1 moves again."""
    w = World()
    w.hv.add_vm("pm1", "vm1", VM1, VM1_MAC, 256)
    w.engine.vms_by_ip(max_age=0)
    assert w.engine.conflicts == {"vm1": {"pm1", "pm2"}}
    del w.hv.vms["pm1"]["vm1"]
    del w.hv.vms["pm2"]["vm2"]
    w.hv.add_vm("pm1", "vm8", "10.0.0.108", "52:54:00:00:00:08", 256)   # both hosts changed
    w.hv.add_vm("pm2", "vm9", "10.0.0.109", "52:54:00:00:00:09", 256)
    w.clock.t += 0.6
    inv = w.engine.vms_by_ip(max_age=0.5)
    assert VM2 not in inv and inv[VM1] == ("vm1", "pm2", 256)
    assert w.engine.conflicts == {}
    w.syn()
    assert w.event("ovct_decision")[-1]["decision"] == "migrate"


def test_an_inventory_read_during_a_move_leaves_the_vm_expected_at_its_destination():
    """The source paused (the VM may now only show up at the destination):
    a full inventory read meanwhile, which still finds the VM at its
    source, does not take that back -- its RARP at the destination
    switches the flows."""
    w = World("fast")
    w.syn()
    w.clock.t += 6 - 0.15
    w.run()
    assert w.h.router.trust.vm_allowed[VM1] == frozenset({(2, 4)})
    w.engine.vms_by_ip(max_age=0)
    assert w.h.router.trust.vm_allowed[VM1] == frozenset({(2, 4)})
    w.clock.t += 0.1
    w.rarp(VM1_MAC, 2, 4)
    assert w.event("ovct_vm_seen") and w.path() == NEAR


def test_a_vm_on_a_host_of_unknown_place_may_be_learnt_at_any_kvm_port():
    """A VM whose host's place is not known is not tied to a port: the router
    may learn it at any KVM host's."""
    w = World()
    del w.h.router.view.hosts["10.0.0.12"]
    w.engine.vms_by_ip(max_age=0)
    assert VM1 not in w.h.router.trust.vm_allowed
    w.arp(VM1, VM1_MAC, 2, 4)
    assert w.engine.net.locate(VM1) == (2, 4)


# -- a restart ----------------------------------------------------------------------------------

def end_while_no_controller_ran(fails):
    w = World("fast")
    if fails:
        w.hv.fail_next, w.hv.fail_after_s = "connection reset", 4.0
    w.syn()
    w.clock.t += 2
    w.run()
    w.clock.t += 6
    w.hv.pump()
    w.restart_controller()
    w.run()
    return w


@pytest.mark.parametrize("fails", [False, True])
def test_the_outcome_of_a_migration_that_ended_unobserved_is_logged_in_full(fails):
    """The outcome of a migration that ended while no controller ran is logged
    with its session and hosts, and starts the VM's hold time."""
    w = end_while_no_controller_ran(fails)
    if fails:
        assert w.event("ovct_migration_failed") == [{
            "phase": 3, "session": 1, "vm": "vm1", "from": "pm2", "to": "pm1",
            "reason": "ended while no controller ran", "observed_at": "pm2", "flows_at": "pm2"}]
    else:
        assert w.event("ovct_migration_done") == [{
            "phase": 3, "session": 1, "vm": "vm1", "from": "pm2", "to": "pm1",
            "elapsed_ms": None, "downtime_ms": None, "data_total_bytes": None,
            "iterations": None, "memory_bps": None, "setup_ms": None, "wall_s": None,
            "seen_at_dst_before_done_s": None, "transferred_bytes": None, "job": None,
            "ended_unobserved": True}]
    assert w.engine.last_moved["vm1"] == w.clock()
    w.syn(client="tcl2", sport=40009)
    d = w.event("ovct_decision")[-1]
    assert (d["decision"], d["reason"]) == ("stay", "moved 0 s ago; hold time 300 s")


def test_an_unfinished_migration_of_a_vm_seen_nowhere_does_not_hold_back_the_others():
    """Two migrations the log left unfinished; the first one's VM runs nowhere:
    the second still gets its outcome."""
    w = World()
    rec = {"type": "ovct_migration_start", "mono": 50.0, "phase": 3, "from": "pm2",
           "to": "pm1", "mode": "fast", "staged_flow_mods": 0}
    w.engine.restore([{**rec, "session": 7, "vm": "ghost"}, {**rec, "session": 8, "vm": "vm1"}])
    w.run()
    assert [(f["session"], f["vm"]) for f in w.event("ovct_migration_failed")] == [(8, "vm1")]


def test_a_controller_started_without_a_log_reports_the_migration_it_adopted():
    """A controller with no log to restore that finds a migration in flight
    adopts it and reports it, with no sessions and no moves known."""
    w = World("fast")
    w.syn()
    w.clock.t += 2
    w.run()
    eng = Ovct(w.engine.policy, w.hv, RouterNetwork(w.h.router, w.h.feed), w._emit, w.clock)
    eng.poll()
    assert w.event("ovct_restored") == [{"sessions": 0, "last_moved": 0, "adopted": ["vm1"]}]


def test_the_first_failure_to_list_migrations_in_flight_is_logged(caplog):
    """The first time the hypervisors cannot list their migrations in flight is
    logged (once, not at every poll)."""
    w = World()

    def down():
        raise HypervisorError("pm1 (libvirtd restarting)")
    w.hv.in_flight = down
    with caplog.at_level(logging.WARNING, logger="ovct.engine"):
        w.engine.poll()
        w.engine.poll()
    assert [r.getMessage() for r in caplog.records] == [
        "migrations in flight unknown, asking again: pm1 (libvirtd restarting)"]


# -- with a network the test sets up ----------------------------------------------------------

class StubNet:
    """A :class:`controller.ovct.Network` a test sets up: switches joined by
    links, the places of addresses, a session's measured relay per
    (client, VM), and the migration stream's counters per address."""

    def __init__(self, links, loc):
        self.adj: dict[int, set[int]] = {}
        for a, b in links:
            self.adj.setdefault(a, set()).add(b)
            self.adj.setdefault(b, set()).add(a)
        self.loc = dict(loc)
        self.rates: dict[tuple[str, str], Rates] = {}
        self.counted: dict[str, tuple[int, int]] = {}
        self.no_path: set[tuple[int, int]] = set()      # (a, b): path unknown
        self.no_hops: set[tuple[int, int]] = set()      # (a, b): distance unknown

    def _parents(self, root):
        parent, queue = {root: None}, [root]
        for d in queue:
            for n in sorted(self.adj.get(d, ())):
                if n not in parent:
                    parent[n] = d
                    queue.append(n)
        return parent

    def locate(self, ip):
        return self.loc.get(ip)

    def levels(self, dpid):
        seen, level = {dpid}, [dpid]
        while level:
            yield level
            nxt = sorted({n for d in level for n in self.adj.get(d, ()) if n not in seen})
            seen.update(nxt)
            level = nxt

    def hops(self, a, b):
        if (a, b) in self.no_hops:
            return None
        return next((k for k, lv in enumerate(self.levels(a)) if b in lv), None)

    def path(self, a, b):
        if (a, b) in self.no_path:
            return None
        parent = self._parents(b)
        if a not in parent:
            return None
        out = [a]
        while out[-1] != b:
            out.append(parent[out[-1]])
        return out

    def session_rates(self, client_ip, vm_ip):
        return self.rates.get((client_ip, vm_ip))

    def relayed(self, cls, ips):
        if cls != C.MIGRATION:
            return None
        got = [self.counted.get(ip, (0, 0)) for ip in ips]
        return (sum(g[0] for g in got), sum(g[1] for g in got))

    def prepare_move(self, ip, dpid, port):
        return 0

    def hold(self, ip):
        return 0

    def commit_move(self, ip, tag):
        return Update(1)

    def settle(self, ip, dpid, port):
        return 0

    def pin(self, ip):
        pass

    def paper_move(self, ip, dpid, port, tag):
        return Update(1)

    def session_monitor(self, conn, idle_s):
        pass

    def trust_vms(self, macs):
        pass

    def expect_vm(self, ip, where):
        pass


class Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def stub_engine(net, hosts, vms, memory=None, **policy):
    """An engine on ``net`` with KVM hosts {name: address} and VMs
    {name: (host, address)}; returns (engine, hypervisor, events, clock)."""
    clock = Clock()
    memory = memory or {}
    hv = FakeHypervisor([HostSpec(n, "u", a, memory.get(n, 4096), 4) for n, a in hosts.items()],
                        clock, migration_s=6)
    for k, (name, (host, ip)) in enumerate(vms.items()):
        hv.add_vm(host, name, ip, f"52:54:00:00:09:{k:02x}", 256)
    events = []
    eng = Ovct(Policy(**policy), hv, net, events.append, clock)
    return eng, hv, events, clock


def open_session(eng, client_ip, client_port, vm_ip, dpid, t):
    for kind in ("start", "accept"):
        eng.handle(VncConnection(kind, client_ip, client_port, vm_ip, 5900, dpid, 1, t))


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


# a line of three switches; the client and h1 on switch 1, h2 on switch 3
LINE = [(1, 2), (2, 3)]
LINE_HOSTS = {"h1": "10.9.1.1", "h2": "10.9.1.2"}
LINE_LOC = {"10.9.1.1": (1, 2), "10.9.1.2": (3, 2), "10.9.2.1": (3, 2), "10.9.2.2": (3, 2),
            "10.9.0.1": (1, 1), "10.9.0.2": (1, 3)}
LINE_VMS = {"va": ("h2", "10.9.2.1"), "vb": ("h2", "10.9.2.2")}


def test_an_unmeasured_session_is_predicted_from_its_vms_last_measured_rate():
    """A session measured from its very start counts as measured; its mean
    per-switch rate is learnt for its VM, and a later session to that VM
    not measured yet is predicted with it (not another VM's, not the
    prior)."""
    net = StubNet(LINE, LINE_LOC)
    eng, _hv, events, clock = stub_engine(net, LINE_HOSTS, LINE_VMS, decision="never")
    net.rates[("10.9.0.1", "10.9.2.1")] = Rates({d: (10.0, 1000.0) for d in (1, 2, 3)}, 100.0)
    net.rates[("10.9.0.1", "10.9.2.2")] = Rates({d: (40.0, 4000.0) for d in (1, 2, 3)}, 100.0)
    open_session(eng, "10.9.0.1", 40000, "10.9.2.1", 1, clock())
    open_session(eng, "10.9.0.1", 40001, "10.9.2.2", 1, clock())
    open_session(eng, "10.9.0.2", 40002, "10.9.2.1", 1, clock())
    d = of(events, Decision)
    assert [(x.vm, x.rates, x.saving_pps, x.saving_bps) for x in d] == [
        ("va", "measured", 20.0, 2000.0), ("vb", "measured", 80.0, 8000.0),
        ("va", "prior", 20.0, 2000.0)]
    assert {x.reason for x in d} == {
        "h1 is 0 hop(s) from the client, h2 is 2; policy never: the VM stays where it is"}


def test_no_prediction_when_any_of_the_three_paths_is_unknown():
    """No prediction when the VM's place, or the old, new or migration path, is not known."""
    net = StubNet(LINE, LINE_LOC)
    eng, _hv, _events, clock = stub_engine(net, LINE_HOSTS, LINE_VMS)
    s = Session(1, "10.9.0.1", 40000, "va", "10.9.2.1", 5900, 1, clock())
    assert eng.predict(s, (3, 2), (1, 2), 256) is not None
    assert eng.predict(s, None, (1, 2), 256) is None
    for missing in ((1, 3), (1, 1), (3, 1)):          # the old, the new, the migration's
        net.no_path = {missing}
        assert eng.predict(s, (3, 2), (1, 2), 256) is None, missing


# a line 1-2-3 with a branch 1-4: from switch 1, h3 (switch 4) is 1 hop away,
# h2 (switch 3) 2; the new path adds switch 4
BRANCH = [(1, 2), (2, 3), (1, 4)]
BRANCH_HOSTS = {"h2": "10.9.1.2", "h3": "10.9.1.3"}
BRANCH_LOC = {"10.9.1.2": (3, 2), "10.9.1.3": (4, 2), "10.9.2.1": (3, 2), "10.9.0.1": (1, 1)}


def test_without_hysteresis_a_move_that_saves_nothing_is_still_the_policys_call():
    """hysteresis_saving_frac 0 (the default) turns the hysteresis off: a
    move predicted to save less than nothing is decided by the policy."""
    net = StubNet(BRANCH, BRANCH_LOC)
    eng, hv, events, clock = stub_engine(net, BRANCH_HOSTS, {"va": ("h2", "10.9.2.1")})
    net.rates[("10.9.0.1", "10.9.2.1")] = Rates({1: (90.0, 9000.0), 2: (0.0, 0.0),
                                                 3: (0.0, 0.0)}, 100.0)
    open_session(eng, "10.9.0.1", 40000, "10.9.2.1", 1, clock())
    (d,) = of(events, Decision)
    assert (d.decision, d.dst, d.saving_pps) == ("migrate", "h3", -30.0)
    assert [j.dst for j in hv.jobs] == ["h3"]


def test_the_hysteresis_lets_a_saving_of_exactly_its_share_through():
    """Client and h1 on switch 2, the VM on h2 (switch 3): the move saves
    one switch of two, exactly the 0.5 share the hysteresis asks for."""
    loc = {"10.9.1.1": (2, 2), "10.9.1.2": (3, 2), "10.9.2.1": (3, 2), "10.9.0.1": (2, 1)}
    net = StubNet(LINE, loc)
    eng, hv, events, clock = stub_engine(net, LINE_HOSTS, {"va": ("h2", "10.9.2.1")},
                                         hysteresis_saving_frac=0.5)
    open_session(eng, "10.9.0.1", 40000, "10.9.2.1", 2, clock())
    (d,) = of(events, Decision)
    assert (d.decision, d.dst, d.saving_pps) == ("migrate", "h1", 303.9)
    assert [j.dst for j in hv.jobs] == ["h1"]
    eng2, hv2, events2, clock2 = stub_engine(net, LINE_HOSTS, {"va": ("h2", "10.9.2.1")},
                                             hysteresis_saving_frac=0.6)
    open_session(eng2, "10.9.0.1", 40000, "10.9.2.1", 2, clock2())
    (d2,) = of(events2, Decision)
    assert (d2.decision, d2.reason) == (
        "stay", ("h1 is 0 hop(s) from the client, h2 is 1; hysteresis: the predicted saving "
                 "304 packets/s is under 0.6 of the session's relay now (608)"))
    assert hv2.jobs == []


def test_the_vms_own_host_never_ends_the_search_for_a_closer_one():
    """The distance to the VM's switch is not known (the network changed
    between the reads) so every host is looked at: the VM's own host,
    first by name, is skipped and the next one taken."""
    loc = {"10.9.1.1": (1, 2), "10.9.1.2": (1, 3), "10.9.2.1": (1, 2), "10.9.0.1": (1, 1)}
    net = StubNet(LINE, loc)
    net.no_hops = {(1, 1)}
    eng, hv, events, clock = stub_engine(net, LINE_HOSTS, {"va": ("h1", "10.9.2.1")})
    open_session(eng, "10.9.0.1", 40000, "10.9.2.1", 1, clock())
    (d,) = of(events, Decision)
    assert (d.decision, d.dst, d.reason) == ("migrate", "h2",
                                             "h2 is 0 hop(s) from the client, h1 is None")
    assert [j.dst for j in hv.jobs] == ["h2"]


def test_the_prediction_check_counts_the_stream_between_both_hosts_of_each_move():
    """Two moves at once on four different hosts: each one's stream is
    counted by the switches between its own two hosts (not shared), and
    the session's relay measured only since before the move is no
    measurement of its saving."""
    hosts = {"h1": "10.9.1.1", "h2": "10.9.1.2", "h3": "10.9.1.3", "h4": "10.9.1.4"}
    loc = {"10.9.1.1": (1, 2), "10.9.1.2": (3, 2), "10.9.1.3": (1, 3), "10.9.1.4": (3, 3),
           "10.9.2.1": (3, 2), "10.9.2.2": (3, 3), "10.9.0.1": (1, 1), "10.9.0.2": (1, 4)}
    net = StubNet(LINE, loc)
    vms = {"va": ("h2", "10.9.2.1"), "vb": ("h4", "10.9.2.2")}
    eng, hv, events, clock = stub_engine(net, hosts, vms, memory={"h1": 400},
                                         max_concurrent_migrations=2)
    net.counted = {"10.9.1.1": (100, 100_000), "10.9.1.2": (10, 10_000),
                   "10.9.1.3": (7, 7_000), "10.9.1.4": (1, 1_000)}
    net.rates[("10.9.0.1", "10.9.2.1")] = Rates({d: (10.0, 1000.0) for d in (1, 2, 3)}, 100.0)
    open_session(eng, "10.9.0.1", 40000, "10.9.2.1", 1, clock())
    open_session(eng, "10.9.0.2", 40001, "10.9.2.2", 1, clock())
    assert sorted((j.vm, j.src, j.dst) for j in hv.jobs) == [("va", "h2", "h1"),
                                                            ("vb", "h4", "h3")]
    clock.t += 6
    eng.poll()
    assert eng.moves == {}
    net.counted = {"10.9.1.1": (150, 150_000), "10.9.1.2": (15, 15_000),
                   "10.9.1.3": (9, 9_000), "10.9.1.4": (2, 2_000)}
    clock.t += 30
    eng.poll()
    checks = {c.vm: c for c in of(events, PredictionCheck)}
    a, b = checks["va"], checks["vb"]
    assert (a.cost_source, a.relayed_cost_packets, a.relayed_cost_bytes) == (
        "switches", 55, 55_000)
    assert (b.cost_source, b.relayed_cost_packets, b.relayed_cost_bytes) == (
        "switches", 3, 3_000)
    assert a.why_unmeasured == "the session was not measured since the move"
    assert a.realised_saving_pps is None


# -- placement's index on the simulator's five sites (dpid 101 is site 1's edge) -------------


def sim_decide(eng, hv, net):
    hv.add_vm("p3x1", "v", "10.1.2.1", "52:54:00:00:01:01", 256)
    net.place_vm("10.1.2.1", net.loc["10.3.1.1"], 0.0)
    eng.vms_by_ip()
    eng.decide(Session(1, "10.1.0.1", 40000, "v", "10.1.2.1", 5900, 101, 0.0), "p3x1", 256)


def names(ranked):
    return [(h, n) for h, n, _loc in ranked]


def test_placement_counts_the_hosts_it_looked_at():
    """hosts_ranked counts the hosts placement looked at: none before, two when
    the nearest is full, all five for a full ranking."""
    eng, hv, net, events = sim_engine({"p1x1": 100})
    assert eng.hosts_ranked == 0
    sim_decide(eng, hv, net)
    assert [(c["host"], c["ok"]) for c in events[-2].candidates] == [("p1x1", False),
                                                                     ("p2x1", True)]
    assert eng.hosts_ranked == 2
    list(eng.nearest_hosts(101))
    assert eng.hosts_ranked == 5


def test_placement_asks_the_next_host_when_one_cannot_be_asked():
    """A nearest host that cannot be asked does not end the search: the next one is taken."""
    eng, hv, net, events = sim_engine()
    hv.down.add("p1x1")
    sim_decide(eng, hv, net)
    d = events[-2]
    assert (d.decision, d.dst) == ("migrate", "p2x1")
    assert [(c["host"], c["ok"]) for c in d.candidates] == [("p1x1", False), ("p2x1", True)]


def test_a_kvm_host_whose_place_is_no_longer_known_is_left_out():
    """A KVM host the router no longer knows the place of is left out of both rankings."""
    eng, _hv, net, _events = sim_engine()
    assert len(list(eng.nearest_hosts(101))) == 5
    del net.loc["10.2.1.1"]
    want = [(0, "p1x1"), (3, "p5x1"), (4, "p3x1"), (4, "p4x1")]
    assert names(eng.nearest_hosts(101)) == want
    assert names(eng.ranked_hosts(101)) == want
    assert names(eng.nearest_hosts(101)) == want


def test_a_kvm_host_moved_as_far_away_keeps_its_rank_at_its_new_place():
    """A KVM host found at another switch as far away keeps its rank, at its
    new place, in this and the next ranking."""
    eng, _hv, net, _events = sim_engine()
    list(eng.nearest_hosts(101))
    net.loc["10.2.1.1"] = (105, 77)          # site 5's edge: 3 hops, as before
    got = list(eng.nearest_hosts(101))
    assert [(h, n) for h, n, _ in got] == [(0, "p1x1"), (3, "p2x1"), (3, "p5x1"), (4, "p3x1"),
                                           (4, "p4x1")]
    assert got[1][2] == (105, 77)
    assert list(eng.nearest_hosts(101)) == got           # indexed again, same answer


def test_a_kvm_host_moved_closer_is_skipped_at_its_old_distance_only():
    """A KVM host now closer is skipped at its old distance without hiding the
    next host there; the next ranking has it at its new distance."""
    eng, _hv, net, _events = sim_engine()
    list(eng.nearest_hosts(101))
    net.loc["10.2.1.1"] = (101, 77)          # now on the client's switch
    assert names(eng.nearest_hosts(101)) == [(0, "p1x1"), (3, "p5x1"), (4, "p3x1"),
                                             (4, "p4x1")]
    assert names(eng.nearest_hosts(101)) == [(0, "p1x1"), (0, "p2x1"), (3, "p5x1"),
                                             (4, "p3x1"), (4, "p4x1")]


def test_max_age_zero_reads_again_even_at_the_same_instant():
    """vms_by_ip(max_age=0) is a forced read: a VM moved since the last
    read, at the same clock instant (a simulated clock makes that common),
    is seen where it is now, not where the cached read saw it."""
    w = World()
    w.engine.vms_by_ip()
    w.hv.vms["pm1"]["vm1"] = w.hv.vms["pm2"].pop("vm1")     # moved, same instant
    assert w.engine.vms_by_ip(max_age=0)[VM1][1] == "pm1"
    assert w.engine.vms_by_ip()[VM1][1] == "pm1"             # and that read is cached
