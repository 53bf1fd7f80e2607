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
from controller.fake_hypervisor import FakeHypervisor, MigrationProfile
from controller.hypervisor import DomainEvent, HostSpec, HypervisorError, MigrationError
from controller.events import MigrationProgress, MigrationStart, NetworkUpdate
from controller.ovct import Move, Ovct, Session
from controller.routing import Update

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
    assert r.engine.ended_moves["vm1"].dst_started is None


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
    from controller.routing import VncConnection
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
