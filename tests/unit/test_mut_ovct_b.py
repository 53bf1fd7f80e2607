"""The OVCT engine's switchover, migration phases, foreign migrations,
adoption of migrations in flight and restart from the event log, pinned
field by field (mutation testing of ``controller/ovct.py``: ``switch``,
``domain_event``, ``_foreign_migration``, ``_adopt``, ``restore``).

Most tests drive the engine alone against :class:`StubNet`, a network that
records what the engine asks of it and keeps, as the router's trust map
does, where each VM may be learnt now; the restart tests use the unit
``World`` (router, fake flow table, fake hypervisor, fake clock)."""
import logging

import pytest

from controller import flows as F
from controller import hypervisor as H
from controller.config import Policy
from controller.cost import Prediction, Rates
from controller.events import MigrationProgress, MigrationStart, NetworkUpdate
from controller.fake_hypervisor import FakeHypervisor, MigrationProfile
from controller.hypervisor import DomainEvent, HostSpec, HypervisorError, MigrationError
from controller.ovct import Ovct, Session
from controller.routing import Update, VncConnection

from tests.unit.world import VM1, VM1_MAC, VM2, VM2_MAC, World

# where each KVM host hangs off the network: (switch, port)
PM1, PM2, PM3 = (2, 4), (3, 2), (1, 3)
PLACES = {"10.0.0.11": PM1, "10.0.0.12": PM2, "10.0.0.13": PM3}


class Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


class StubNet:
    """The routing side as the engine sees it: ``places`` (address ->
    switch, port) is what the router has learnt; ``allowed`` is the trust
    map (VM address -> the places it may be learnt at; absent: any KVM
    host's port); ``calls`` what the engine asked, in order."""

    def __init__(self, places=None):
        self.places = dict(PLACES if places is None else places)
        self.allowed = {}
        self.calls = []
        self.rates = None                        # the session's measured relay
        self.update = Update(7, frozenset({1, 2, 3}), 4, 2)

    def locate(self, ip):
        return self.places.get(ip)

    def hops(self, a, b):
        return 0 if a == b else 1

    def levels(self, dpid):
        return [[dpid]]

    def path(self, a, b):
        return [a] if a == b else [a, b]

    def session_rates(self, client_ip, vm_ip):
        return self.rates

    def relayed(self, cls, ips):
        return None

    def prepare_move(self, ip, dpid, port):
        self.calls.append(("prepare_move", ip, dpid, port))
        return 5

    def hold(self, ip):
        self.calls.append(("hold", ip))
        return 3

    def commit_move(self, ip, tag):
        self.calls.append(("commit_move", ip, tag))
        return self.update

    def settle(self, ip, dpid, port):
        self.calls.append(("settle", ip, dpid, port))
        return 1

    def pin(self, ip):
        self.calls.append(("pin", ip))

    def paper_move(self, ip, dpid, port, tag):
        self.calls.append(("paper_move", ip, dpid, port, tag))
        return self.update

    def session_monitor(self, conn, idle_s):
        self.calls.append(("session_monitor", conn.client_ip, idle_s))

    def trust_vms(self, macs):
        pass

    def expect_vm(self, ip, where):
        if where is None:
            self.allowed.pop(ip, None)
        else:
            self.allowed[ip] = frozenset(where)


class Rig:
    """The engine alone: fake hypervisor (pm1, pm2, pm3; no domain events
    unless fed by hand), fake clock, :class:`StubNet`."""

    def __init__(self, mode="fast", places=None, hosts=("pm1", "pm2"), **policy):
        self.clock = Clock()
        addr = {"pm1": "10.0.0.11", "pm2": "10.0.0.12", "pm3": "10.0.0.13"}
        self.hv = FakeHypervisor([HostSpec(h, f"u-{h}", addr[h], 2048, 2) for h in hosts],
                                 self.clock, migration_s=6)
        self.hv.add_vm("pm2", "vm1", VM1, VM1_MAC, 256)
        self.net = StubNet(places)
        self.events = []
        self.engine = Ovct(Policy(update_mode=mode, **policy), self.hv, self.net,
                           self.events.append, self.clock)

    def payloads(self, cls):
        return [e.payload() for e in self.events if isinstance(e, cls)]

    def event(self, vm, host, kind, detail="migrated", dt=0.0, **kw):
        self.engine.handle(DomainEvent(vm, host, kind, detail, self.clock() + dt, **kw))

    def start_move(self, session=1, prediction=None, started=90.0):
        """OVCT decided to move vm1 (pm2 -> pm1) for a session and started it."""
        s = Session(session, "10.0.0.1", 40000, "vm1", VM1, 5900, 2, started)
        self.engine.vms_by_ip()
        self.engine.migrate(s, "pm2", "pm1", PM1, 256, prediction)
        return self.engine.moves["vm1"]


def _types(events):
    return [e.TYPE for e in events]


# -- the switchover (switch) -----------------------------------------------------------

def test_the_network_update_event_reports_every_field_of_a_fast_switch():
    """A fast-mode switch after the VM's RARP: the update's flow-mods,
    barriers and released/dropped frames come from the network; the times
    from the migration's start and from the sighting are rounded to the
    microsecond; the VM may now be learnt at its destination only, its
    traffic is no longer held, and the move waits for the barriers."""
    r = Rig("fast")
    m = r.start_move(session=7)
    assert r.net.allowed[VM1] == {PM2}
    m.seen_at_dst = 103.25
    m.held = True
    r.events.clear()
    r.clock.t = 106.1234567
    r.engine.switch(m, "VM seen at destination (RARP)")
    assert [e.payload() for e in r.events] == [{
        "phase": 4, "session": 7, "vm": "vm1", "mode": "fast",
        "trigger": "VM seen at destination (RARP)", "to": "pm1", "to_switch": 2,
        "to_port": 4, "flow_mods": 7, "migration_start_to_switch_s": 6.123457,
        "seen_to_switch_s": 2.873457, "released_frames": 4, "dropped_frames": 2}]
    assert r.net.calls[-1] == ("commit_move", VM1, "vm1-7")
    assert r.net.allowed == {VM1: {PM1}}
    assert m.switched == 106.1234567 and m.switch_trigger == "VM seen at destination (RARP)"
    assert m.held is False
    assert m.pending_barriers == {1, 2, 3} and m.confirmed is None


def test_a_paper_switch_without_a_sighting_or_barriers_is_confirmed_at_once():
    """Paper mode replaces the flows towards the destination's port; with no
    RARP seen there is no sighting time, and an update that needs no
    barrier counts as confirmed when it is sent."""
    r = Rig("paper")
    m = r.start_move(session=2)
    r.net.update = Update(11)
    r.events.clear()
    r.clock.t = 106.5
    r.engine.switch(m, "migration completed")
    (up,) = [e.payload() for e in r.events]
    assert up == {"phase": 4, "session": 2, "vm": "vm1", "mode": "paper",
                  "trigger": "migration completed", "to": "pm1", "to_switch": 2, "to_port": 4,
                  "flow_mods": 11, "migration_start_to_switch_s": 6.5,
                  "seen_to_switch_s": None, "released_frames": 0, "dropped_frames": 0}
    assert r.net.calls[-1] == ("paper_move", VM1, 2, 4, "vm1-2")
    assert m.confirmed == 106.5 and m.pending_barriers == set()


def test_a_move_without_a_prediction_switches_without_reading_the_sessions_rates():
    """A move decided without a prediction (the current host's place was
    not known) keeps no "before" rates, measured or not."""
    r = Rig("fast")
    m = r.start_move(prediction=None)
    r.net.rates = None
    r.engine.switch(m, "VM seen at destination (RARP)")
    assert m.rates_before is None and len(r.payloads(NetworkUpdate)) == 1


def _prediction(rates="measured"):
    return Prediction(unit="packets", memory_bytes=256 << 20, transfer_bytes=200e6,
                      migration_switches=2, cost_bytes=400e6, cost_packets=330_000.0,
                      current_pps=600.0, current_bps=750_000.0, saving_pps=400.0,
                      saving_bps=500_000.0, rates=rates)


def test_a_session_not_measured_since_the_decision_is_checked_against_the_decisions_rates():
    """The session's relay was measured for the decision but the window
    was reset before the switch: the "before" of the prediction check is
    the relay the decision measured (600 packets/s, 750 kB/s), so the
    realised saving is that minus the relay after the move."""
    r = Rig("fast")
    m = r.start_move(session=3, prediction=_prediction(), started=90.0)
    r.net.update = Update(7)                  # confirmed at once
    r.net.rates = None                        # not measured just before the switch
    r.clock.t = 100.5
    r.engine.switch(m, "VM seen at destination (RARP)")
    assert m.rates_before is not None and m.rates_before.total() == (600.0, 750_000.0)
    assert m.rates_before.since == 90.0       # the window the decision measured
    r.net.rates = Rates({2: (150.0, 190_000.0)}, 107.0)
    r.clock.t = 106.0
    r.engine.poll()                           # the migration completes
    assert _types(r.events)[-1] == "ovct_migration_done" and r.engine.moves == {}
    r.clock.t = 136.0
    r.engine.poll()                           # the prediction is checked
    (check,) = [e.payload() for e in r.events if e.TYPE == "ovct_prediction_check"]
    assert (check["realised_saving_pps"], check["realised_saving_bps"]) == (450.0, 560_000.0)
    assert check["saving_error"] == 0.125 and "why_unmeasured" not in check


def test_a_session_measured_just_before_the_switch_keeps_those_rates():
    """Measured since the decision: the "before" is that measurement, not
    the decision's."""
    r = Rig("fast")
    m = r.start_move(session=3, prediction=_prediction(), started=90.0)
    r.net.rates = Rates({2: (300.0, 400_000.0), 1: (310.0, 410_000.0)}, 95.0)
    r.engine.switch(m, "VM seen at destination (RARP)")
    assert m.rates_before.total() == (610.0, 810_000.0)


def test_a_prior_based_move_has_no_before_rates_when_the_session_was_never_measured():
    r = Rig("fast")
    m = r.start_move(session=3, prediction=_prediction("prior"), started=90.0)
    r.net.rates = None
    r.engine.switch(m, "VM seen at destination (RARP)")
    assert m.rates_before is None


# -- the migration's phases as the hypervisor reports them (domain_event) ---------------

def test_progress_events_carry_the_hypervisors_step_host_detail_and_times():
    """Each phase is reported with the VM, the host and libvirt's detail,
    when the event arrived and how long after the migration started
    (rounded to the microsecond); an iteration carries its number, and
    only a pause in fast mode carries held flow-mods."""
    r = Rig("fast")
    r.start_move(session=4)
    r.events.clear()
    r.engine.handle(DomainEvent("vm1", "pm1", H.STARTED, "migrated", 100.3000004))
    r.engine.handle(DomainEvent("vm1", "pm2", H.ITERATION, "", 100.5, iteration=2))
    assert r.payloads(MigrationProgress) == [
        {"phase": 3, "session": 4, "vm": "vm1", "step": "dest_started", "host": "pm1",
         "detail": "migrated", "event_mono": 100.3000004, "since_start_s": 0.3},
        {"phase": 3, "session": 4, "vm": "vm1", "step": "iteration", "host": "pm2",
         "detail": "", "event_mono": 100.5, "since_start_s": 0.5, "iteration": 2}]
    assert r.engine.moves["vm1"].dst_started == 100.3000004


def test_events_that_are_no_phase_of_the_move_are_not_reported():
    """An iteration reported by the destination, a start at the source, a
    completion at the destination: none is a phase of this migration."""
    r = Rig("fast")
    r.start_move()
    r.events.clear()
    r.event("vm1", "pm1", H.ITERATION, "", iteration=1)
    r.event("vm1", "pm2", H.STARTED, "booted")
    r.event("vm1", "pm1", H.JOB_COMPLETED, "")
    r.event("vm1", "pm1", H.STOPPED, "")
    assert r.events == []


def test_a_second_pause_report_does_not_hold_the_traffic_again():
    """The source's pause holds the VM's traffic once; a repeated pause
    report (libvirt can report the same state twice) is reported as a
    phase but sends no second hold."""
    r = Rig("fast")
    m = r.start_move(session=5)
    r.events.clear()
    r.event("vm1", "pm2", H.SUSPENDED, dt=5.85)
    r.event("vm1", "pm2", H.SUSPENDED, dt=5.86)
    held = [p.get("held_flow_mods") for p in r.payloads(MigrationProgress)]
    assert held == [3, None]
    assert [c for c in r.net.calls if c[0] == "hold"] == [("hold", VM1)]
    assert m.held is True


def test_the_destination_resuming_lets_the_vm_be_learnt_there_even_without_a_pause_report():
    """While OVCT's move is in flight the VM may be learnt only at its
    source; once libvirt says it resumed at the destination, only there
    (also when the source's pause was never reported)."""
    r = Rig("fast")
    m = r.start_move()
    assert r.net.allowed == {VM1: {PM2}}
    r.event("vm1", "pm1", H.RESUMED, dt=6.0)
    assert r.net.allowed == {VM1: {PM1}}
    assert m.dst_resumed == 106.0


def test_a_cancelled_migration_lets_the_vm_be_learnt_at_its_source_again():
    """The source paused (the VM expected at the destination), then
    resumed: the migration was cancelled, the VM is expected at the source."""
    r = Rig("fast")
    r.start_move()
    r.event("vm1", "pm2", H.SUSPENDED, dt=5.85)
    assert r.net.allowed == {VM1: {PM1}}
    r.event("vm1", "pm2", H.RESUMED, "migration_canceled", dt=5.9)
    assert r.net.allowed == {VM1: {PM2}}
    assert [p["step"] for p in r.payloads(MigrationProgress)] == \
        ["source_paused", "source_resumed"]


def _land(r):
    """The move in flight completes and its update is confirmed at once."""
    r.net.update = Update(7)
    r.clock.t += 6
    r.engine.poll()
    assert r.engine.moves == {} and "vm1" in r.engine.ended_moves


def test_a_later_migration_towards_the_host_of_an_ended_move_is_no_phase_of_that_move():
    """OVCT moved vm1 to pm1 and the move ended; later (vm1 went back to
    pm2 meanwhile) another migration to pm1 starts: its destination
    starting is not reported as progress of the ended move."""
    r = Rig("fast")
    r.start_move(session=6)
    _land(r)
    r.hv.vms["pm2"]["vm1"] = r.hv.vms["pm1"].pop("vm1")       # moved back by hand
    r.engine.vms_by_ip(max_age=0)
    r.events.clear()
    r.clock.t += 100
    r.event("vm1", "pm1", H.STARTED)
    assert r.events == []
    assert "vm1" not in r.engine.ended_moves     # that move claims no later event


def test_a_late_resume_at_the_destination_of_an_ended_move_leaves_the_trust_map_alone():
    """libvirt's resume event arrives after OVCT's move already ended (its
    completion was handled first): it is reported, and changes nothing
    about where the VM may be learnt."""
    r = Rig("fast")
    r.start_move(session=6)
    _land(r)
    r.net.allowed[VM1] = frozenset({PM1, PM3})       # what the network was told since
    r.events.clear()
    r.event("vm1", "pm1", H.RESUMED)
    assert [p["step"] for p in r.payloads(MigrationProgress)] == ["dest_resumed"]
    assert r.net.allowed == {VM1: {PM1, PM3}}


# -- migrations OVCT did not start (_foreign_migration) ---------------------------------

def _foreign():
    r = Rig("fast", enabled=False)
    r.engine.vms_by_ip()
    assert r.net.allowed == {VM1: {PM2}}
    return r


def test_a_migration_by_hand_moves_where_the_vm_may_be_learnt_at_the_switchover():
    """Someone else migrates vm1 from pm2 to pm1: it may be learnt at pm1
    once the source pauses (the switchover begins), not when the incoming
    QEMU merely starts; after the resume, a new session finds it on pm1."""
    r = _foreign()
    r.event("vm1", "pm1", H.STARTED)
    assert r.net.allowed == {VM1: {PM2}}
    r.event("vm1", "pm2", H.SUSPENDED, dt=5.85)
    assert r.net.allowed == {VM1: {PM1}}
    r.hv.vms["pm1"]["vm1"] = r.hv.vms["pm2"].pop("vm1")
    r.hv._landed("vm1", "pm2", "pm1")        # the hypervisor lists it on pm1 now
    r.event("vm1", "pm1", H.RESUMED, dt=6.0)
    assert r.net.allowed == {VM1: {PM1}}
    assert r.events == []                    # nothing of ours moved
    r.clock.t += 0.1                         # the inventory read before is 0.1 s old
    r.engine.handle(_vnc("start", r.clock()))
    r.engine.handle(_vnc("accept", r.clock()))
    (det,) = [e.payload() for e in r.events if e.TYPE == "ovct_detect"]
    assert (det["vm"], det["vm_host"]) == ("vm1", "pm1")


def _vnc(kind, t):
    return VncConnection(kind, "10.0.0.1", 40000, VM1, 5900, 2, 1, t)


def test_a_cancelled_migration_by_hand_puts_the_vm_back_at_its_source():
    r = _foreign()
    r.event("vm1", "pm1", H.STARTED)
    r.event("vm1", "pm2", H.SUSPENDED, dt=5.85)
    r.event("vm1", "pm2", H.RESUMED, "migration_canceled", dt=5.9)
    assert r.net.allowed == {VM1: {PM2}}


def test_a_cancelled_migration_by_hand_leaves_no_destination_behind():
    """After a cancelled migration to pm1, a later migration to a host
    this controller does not watch (so no start is reported) pauses the
    source: the VM is not expected at pm1, the old destination."""
    r = _foreign()
    r.event("vm1", "pm1", H.STARTED)
    r.event("vm1", "pm2", H.RESUMED, "migration_canceled", dt=1.0)
    r.event("vm1", "pm2", H.SUSPENDED, dt=20.0)
    assert r.net.allowed == {VM1: {PM2}}


def test_a_vm_paused_and_resumed_by_hand_stays_where_it_runs():
    r = _foreign()
    r.event("vm1", "pm2", H.SUSPENDED, "paused")
    r.event("vm1", "pm2", H.RESUMED, "unpaused", dt=1.0)
    assert r.net.allowed == {VM1: {PM2}} and r.events == []


def test_events_of_a_domain_that_is_no_known_vm_change_nothing():
    r = _foreign()
    for kind in (H.STARTED, H.SUSPENDED, H.RESUMED):
        r.event("scratch", "pm1", kind)
    assert r.net.allowed == {VM1: {PM2}} and r.events == []


# -- migrations found in flight at start (_adopt) ----------------------------------------

@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_a_migration_in_flight_at_start_is_adopted_and_reported_field_by_field(mode):
    """A controller starts while a migration it knows nothing of (no event
    log, no session) runs: it is adopted as session 0's move, its flows
    prepared (fast) or taken over (paper) for the VM at its destination,
    the VM expected at its source until the switchover, and the start is
    logged as adopted with nothing staged by this controller."""
    r = Rig(mode)
    r.hv.migrate("vm1", "pm1")
    r.clock.t += 2
    r.engine.poll()
    assert [e.payload() for e in r.events] == [
        {"phase": 3, "session": 0, "vm": "vm1", "from": "pm2", "to": "pm1", "mode": mode,
         "staged_flow_mods": 0, "adopted": True},
        {"sessions": 0, "last_moved": 0, "adopted": ["vm1"]}]
    m = r.engine.moves["vm1"]
    assert (m.src, m.dst, m.dst_loc, m.mode, m.memory_mib) == ("pm2", "pm1", PM1, mode, 256)
    took = ("prepare_move", VM1, 2, 4) if mode == "fast" else ("pin", VM1)
    assert [c for c in r.net.calls if c[0] in ("prepare_move", "pin")] == [took]
    assert r.net.allowed == {VM1: {PM2}}


def test_a_migration_whose_destination_is_not_learnt_yet_is_adopted_once_it_is():
    """At the first poll the router knows neither KVM host's place: the
    VM may be learnt anywhere a KVM host is, and the migration waits; once
    both are learnt (0.5 s later, the inventory still cached) it is
    adopted and the VM expected at its source only."""
    r = Rig("fast", places={})
    r.hv.migrate("vm1", "pm1")
    r.engine.poll()
    assert r.events == [] and r.engine.moves == {} and r.net.allowed == {}
    r.net.places = dict(PLACES)
    r.clock.t += 0.5
    r.engine.poll()
    assert [e.TYPE for e in r.events] == ["ovct_migration_start", "ovct_restored"]
    assert r.net.allowed == {VM1: {PM2}}
    assert r.net.calls[-1] == ("prepare_move", VM1, 2, 4)


def test_a_migration_waiting_for_its_destination_does_not_hold_back_the_next_one():
    """Two migrations in flight at start: vm1's destination (pm1) is not
    learnt yet, vm2's (pm3) is: vm2's is adopted at once, vm1's later."""
    r = Rig("fast", places={"10.0.0.12": PM2, "10.0.0.13": PM3}, hosts=("pm1", "pm2", "pm3"))
    r.hv.add_vm("pm2", "vm2", VM2, VM2_MAC, 256)
    r.hv.migrate("vm1", "pm1")
    r.hv.migrate("vm2", "pm3")
    r.engine.poll()
    assert [(p["vm"], p["to"]) for p in r.payloads(MigrationStart)] == [("vm2", "pm3")]
    assert list(r.engine.moves) == ["vm2"]
    r.net.places["10.0.0.11"] = PM1
    r.clock.t += 0.5
    r.engine.poll()
    assert [(p["vm"], p["to"]) for p in r.payloads(MigrationStart)] == \
        [("vm2", "pm3"), ("vm1", "pm1")]
    assert r.events[-1].payload() == {"sessions": 0, "last_moved": 0, "adopted": ["vm1", "vm2"]}


def _detect(session, client_ip, client_port, vm, vm_ip, t):
    return {"type": "ovct_detect", "mono": t, "phase": 1, "session": session, "vm": vm,
            "vm_ip": vm_ip, "vm_port": 5900, "client_ip": client_ip, "client_port": client_port,
            "client_switch": 2, "client_switch_port": 1, "vm_switch": 3, "vm_host": "pm2",
            "detected_mono": t}


def test_an_adopted_migration_belongs_to_the_open_session_of_its_vm():
    """The log shows sessions to vm2 (session 1) and to vm1 (session 2)
    still open: the migration of vm1 found in flight is session 2's."""
    r = Rig("fast")
    r.hv.add_vm("pm2", "vm2", VM2, VM2_MAC, 256)
    r.engine.restore([_detect(1, "10.0.0.1", 40000, "vm2", VM2, 50.0),
                      _detect(2, "10.0.0.2", 40001, "vm1", VM1, 60.0)])
    r.hv.migrate("vm1", "pm1")
    r.engine.poll()
    (start,) = r.payloads(MigrationStart)
    assert (start["session"], start["vm"], start["adopted"]) == (2, "vm1", True)
    assert r.engine.moves["vm1"].session == 2
    assert r.events[-1].payload() == {"sessions": 2, "last_moved": 0, "adopted": ["vm1"]}


def test_an_adopted_migration_reserves_the_vms_memory_at_its_destination():
    """After a restart with vm1's migration to pm1 in flight (two
    migrations allowed at once), a session to vm2 finds pm1's free memory
    less vm1's 256 MiB, reserved for it."""
    w = World("fast", max_concurrent_migrations=2)
    w.syn()
    w.clock.t += 2
    w.run()
    w.restart_controller()
    w.run()
    assert w.event("ovct_restored")[-1]["adopted"] == ["vm1"]
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    d = w.event("ovct_decision")[-1]
    (c,) = d["candidates"]
    assert (c["host"], c["reserved_for"], c["free_memory_mib"]) == ("pm1", ["vm1"], 2048 - 256)


def test_hosts_that_cannot_be_asked_at_start_are_logged_once_and_asked_again(caplog):
    """Listing the migrations in flight fails twice (a libvirtd
    restarting): one warning names the error, the second failure adds no
    other; the third poll adopts what is in flight."""
    r = Rig("fast")
    r.hv.migrate("vm1", "pm1")
    real = r.hv.in_flight
    errors = iter([HypervisorError("cannot reach libvirtd of pm1"),
                   HypervisorError("cannot reach libvirtd of pm1 (again)")])

    def flaky():
        for exc in errors:
            raise exc
        return real()
    r.hv.in_flight = flaky
    with caplog.at_level(logging.WARNING, logger="ovct.engine"):
        r.engine.poll()
        r.engine.poll()
    assert [(rec.levelno, rec.getMessage()) for rec in caplog.records
            if rec.name == "ovct.engine"] == [
        (logging.WARNING,
         "migrations in flight unknown, asking again: cannot reach libvirtd of pm1")]
    assert r.events == []
    r.engine.poll()
    assert [e.TYPE for e in r.events] == ["ovct_migration_start", "ovct_restored"]


# -- a restart from the event log (restore) ----------------------------------------------

def _tcl(w, name):
    return w.h.topo.host(name).ip


def test_a_restarted_controller_has_the_same_open_sessions_and_numbers_on():
    """Three sessions were detected, one of them ended: the restarted
    controller has exactly the two open ones, as the old one had them
    (client, ports, VM, client's switch, start), ends them with their own
    numbers and durations, and numbers the next session 4."""
    w = World(enabled=False)
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.clock.t += 1
    w.syn(client="tcl2", vm_ip=VM2, sport=40001, dport=5901)
    w.clock.t += 1
    w.syn(client="tcl1", vm_ip=VM2, sport=40002)
    w.clock.t += 1
    w.syn(client="tcl1", vm_ip=VM2, sport=40002, flags=F.TCP_FIN | F.TCP_ACK)
    before = dict(w.engine.sessions)
    assert sorted(s.id for s in before.values()) == [1, 2]
    w.restart_controller()
    w.run()
    assert w.engine.sessions == before
    assert w.event("ovct_restored")[-1] == {"sessions": 2, "last_moved": 0, "adopted": []}
    w.clock.t += 10
    w.syn(client="tcl2", vm_ip=VM2, sport=40001, dport=5901, flags=F.TCP_FIN | F.TCP_ACK)
    assert w.event("ovct_session_end")[-1] == {
        "session": 2, "vm": "vm2", "reason": "fin", "duration_s": 12.0}
    w.syn(client="tcl2", vm_ip=VM1, sport=40003)
    assert [d["session"] for d in w.event("ovct_detect")] == [1, 2, 3, 4]


def test_a_restarted_controller_remembers_how_long_each_clients_sessions_lasted():
    """The history-based policies read how long a client's sessions with a
    VM lasted: a restart keeps that, per client."""
    w = World(enabled=False)
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.clock.t += 12.5
    w.syn(client="tcl1", vm_ip=VM1, sport=40000, flags=F.TCP_FIN | F.TCP_ACK)
    w.restart_controller()
    w.run()
    assert w.engine.history.lengths(_tcl(w, "tcl1"), "vm1", 1) == ([12.5], "client")
    assert w.engine.history.lengths(_tcl(w, "tcl2"), "vm1", 1) == ([12.5], "vm")


def test_a_log_whose_detections_were_lost_still_restores():
    """Records without the detection of some session (a torn line, a log
    cut short): its end is skipped, the rest restored."""
    r = Rig("fast", enabled=False)
    eng = r.engine
    eng.restore([
        {"type": "ovct_session_end", "mono": 40.0, "session": 5, "vm": "vm1",
         "reason": "fin", "duration_s": 3.0},
        _detect(6, "10.0.0.2", 40001, "vm1", VM1, 50.0)])
    assert [s.id for s in eng.sessions.values()] == [6]
    assert eng.history.lengths("10.0.0.1", "vm1", 1) == ([], "none")
    eng.handle(_vnc("start", r.clock()))
    eng.handle(_vnc("accept", r.clock()))
    assert [e.session for e in r.events if e.TYPE == "ovct_detect"] == [7]


def test_a_restart_after_a_migration_the_hypervisor_refused_at_once():
    """A refused migration is logged as failed without a start: the
    restarted controller counts it as the VM's last move (its hold time)
    and has no unfinished migration to conclude."""
    w = World("fast")

    def refuse(*_a, **_kw):
        raise MigrationError("operation failed: migration refused by libvirtd")
    w.hv._start_migration = refuse
    w.syn()
    assert w.kinds()[-1] == "ovct_migration_failed"
    w.restart_controller()
    w.run()
    assert w.event("ovct_restored")[-1] == {"sessions": 1, "last_moved": 1, "adopted": []}
    assert len(w.event("ovct_migration_failed")) == 1


def test_a_restarted_controller_predicts_migrations_from_what_the_log_measured():
    """The completed migration's statistics (bytes of RAM and sent, the
    stream's bandwidth, the VM's dirty rate from libvirt's job) teach the
    restarted controller's cost model what they taught the old one's."""
    w = World("fast", hold_time_s=0)
    w.hv.profile = lambda vm, mib: MigrationProfile(6.0, 150.0, 230 << 20, memory_bps=5e7,
                                                    dirty_pages_per_s=1000.0)
    w.syn()
    w.land()
    old = w.engine.model
    assert old.dirty_bps == {"vm1": 1000.0 * 4096} and old.bandwidth_bps == 5e7
    w.restart_controller()
    w.run()
    new = w.engine.model
    assert (new.migrations, new.bandwidth_bps, new.dirty_bps) == (1, 5e7, {"vm1": 4096000.0})
    assert new.efficiency == pytest.approx(old.efficiency) and new.efficiency == \
        pytest.approx(230 / 256 * (1 - 4096000.0 / 5e7))
    assert new.transfer_bytes("vm1", 256 << 20) == pytest.approx(old.transfer_bytes("vm1", 256 << 20))


# -- found by this file's mutants: a migration by hand after an OVCT move --------

def _moved_then_by_hand(r):
    r.start_move(session=6)                       # OVCT: vm1 pm2 -> pm1, ended
    _land(r)
    r.engine.vms_by_ip(max_age=0)
    assert r.net.allowed[VM1] == {PM1}
    r.events.clear()
    # later, someone migrates vm1 by hand from pm1 to pm3
    r.event("vm1", "pm3", H.STARTED, dt=100.0)
    r.event("vm1", "pm1", H.SUSPENDED, dt=105.85)


def test_the_switchover_of_a_later_migration_by_hand_lets_the_vm_be_learnt_at_its_destination():
    """A VM OVCT moved pm2 -> pm1 is later migrated by hand to pm3: its
    pause and resume belong to that migration, not to OVCT's ended move,
    so the router expects the VM at pm3 (it refused it there before)."""
    r = Rig("fast", hosts=("pm1", "pm2", "pm3"))
    _moved_then_by_hand(r)
    assert r.net.allowed[VM1] == {PM3}
    r.event("vm1", "pm3", H.RESUMED, dt=106.0)
    assert r.net.allowed[VM1] == {PM3}


def test_a_later_migration_by_hand_back_to_the_source_is_not_reported_as_the_old_move_cancelled():
    """A hand migration back to the old source logs no progress event of
    OVCT's ended move (it was logged as that move's 'source_resumed')."""
    r = Rig("fast")
    r.start_move(session=6)
    _land(r)
    r.events.clear()
    r.event("vm1", "pm2", H.STARTED, dt=100.0)
    r.event("vm1", "pm1", H.SUSPENDED, dt=105.85)
    r.event("vm1", "pm2", H.RESUMED, dt=106.0)
    assert [p["step"] for p in r.payloads(MigrationProgress)] == []   


def test_after_a_migration_by_hand_the_next_inventory_read_is_fresh():
    """A hand migration's resume says the VM runs elsewhere now: the
    cached inventory is dropped, so the next ordinary read (not a forced
    one) already finds the VM at its new host."""
    r = Rig("fast", hosts=("pm1", "pm2", "pm3"))
    assert r.engine.vms_by_ip()[VM1][1] == "pm2"
    r.event("vm1", "pm3", H.STARTED)
    r.hv.vms["pm3"]["vm1"] = r.hv.vms["pm2"].pop("vm1")
    r.hv._landed("vm1", "pm2", "pm3")         # the fake's change log, as libvirt's
    r.event("vm1", "pm3", H.RESUMED)
    assert r.engine.vms_by_ip()[VM1][1] == "pm3"
