"""The OVCT engine's paths the other unit tests never took (mutation testing
and the reviewer's deliberate bugs, issue 14): sessions on every port of
the VNC range, a confirmation that waits for every barrier, a migration
the hypervisor refuses at once, and a failed paper-mode move that hands
the VM back to the router."""
import pytest

from controller import classes as C
from controller import flows as F
from controller.hypervisor import MigrationError
from controller.ovct import BarrierReply

from tests.unit.world import VM1, VM1_MAC, World

FAR = [(2, 1), (1, 2), (3, 2)]        # tcl1 -> vm1 on pm2
NEAR = [(2, 4)]                       # tcl1 -> vm1 on pm1


def moved_by_hand_to_pm1(w):
    """vm1 is migrated to pm1 by someone else; its RARP arrives there."""
    w.hv.vms["pm1"]["vm1"] = w.hv.vms["pm2"].pop("vm1")
    w.engine.vms_by_ip(max_age=0)
    w.rarp(VM1_MAC, 2, 4)


@pytest.mark.parametrize("port", [5900, 5901, 5950, 5999])
def test_a_session_on_any_port_of_the_vnc_range_is_detected_and_ends(port):
    w = World(enabled=False)
    w.syn(sport=40000, dport=port)
    det = w.event("ovct_detect")
    assert [(d["vm"], d["vm_port"], d["client_port"]) for d in det] == [("vm1", port, 40000)]
    w.syn(sport=40000, dport=port, flags=F.TCP_FIN | F.TCP_ACK)
    assert [e["reason"] for e in w.event("ovct_session_end")] == ["fin"]


@pytest.mark.parametrize("port", [5899, 6000, 22])
def test_a_connection_outside_the_vnc_range_is_no_session(port):
    w = World(enabled=False)
    w.syn(sport=40000, dport=port)
    assert w.events == [] and w.engine.sessions == {} and w.engine.pending == {}


def barriers(w, tag):
    return sorted(m.dpid for m in w.h.sent if isinstance(m, F.Barrier) and m.tag == tag)


@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_the_move_is_confirmed_only_once_every_switch_answered_its_barrier(mode):
    w = World(mode)
    w.syn()
    w.clock.t += 6
    w.run()                                   # completed: the flows switch
    m = w.engine.moves["vm1"]
    dpids = barriers(w, m.tag)
    assert len(dpids) >= 2 and m.pending_barriers == set(dpids)
    w.clock.t += 0.01
    for n, dpid in enumerate(dpids[:-1]):
        w.queue.append(BarrierReply(m.tag, dpid, w.clock()))
        w.queue.append(BarrierReply(m.tag, dpid, w.clock()))          # a duplicate
        w.queue.append(BarrierReply(m.tag + ":other", dpids[-1], w.clock()))
        w.run()
        assert not w.event("ovct_network_confirmed"), (n, dpid)
        assert w.engine.moves.get("vm1") is m and m.confirmed is None
    w.clock.t += 0.02
    w.queue.append(BarrierReply(m.tag, dpids[-1], w.clock()))
    w.run()
    conf = w.event("ovct_network_confirmed")
    assert conf == [{"phase": 4, "session": m.session, "vm": "vm1", "mode": mode,
                     "switch_to_confirmed_s": 0.03}]
    assert w.engine.moves == {} and m.confirmed == w.clock()
    w.queue.append(BarrierReply(m.tag, dpids[0], w.clock()))        # late: changes nothing
    w.run()
    assert len(w.event("ovct_network_confirmed")) == 1


@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_a_migration_the_hypervisor_refuses_at_once_is_reported_and_changes_nothing(mode):
    w = World(mode)
    start = w.hv._start_migration

    def refuse(*_a, **_kw):
        raise MigrationError("operation failed: migration refused by libvirtd")
    w.hv._start_migration = refuse
    w.syn()
    assert w.kinds() == ["ovct_detect", "ovct_decision", "ovct_migration_failed"]
    assert w.event("ovct_migration_failed") == [{
        "phase": 3, "session": 1, "vm": "vm1", "from": "pm2", "to": "pm1",
        "reason": "operation failed: migration refused by libvirtd"}]
    assert w.engine.moves == {} and w.hv.jobs == []
    assert not w.h.router.pinned and not w.h.router.staging
    assert not [e for t in w.h.table.tables.values() for e in t
                if C.parse_cookie(e.cookie).gen == 1]
    assert w.path() == FAR
    # nothing is left that would hold the VM back: the next session moves it
    w.hv._start_migration = start
    w.syn(sport=40001)
    assert w.event("ovct_decision")[-1]["decision"] == "migrate" and len(w.hv.jobs) == 1
    w.land()
    assert w.hv.locate("vm1") == "pm1" and w.path() == NEAR


def test_a_failed_paper_mode_migration_hands_the_vm_back_to_the_router():
    w = World("paper")
    w.hv.fail_next = "destination refused"
    w.syn()
    assert w.event("ovct_migration_start")[0]["mode"] == "paper"
    w.clock.t += 1
    w.run()
    f = w.event("ovct_migration_failed")[0]
    assert "destination refused" in f["reason"] and f["kept_old_flows"] is True
    assert VM1 not in w.h.router.pinned and w.engine.moves == {}
    assert w.path() == FAR
    moved_by_hand_to_pm1(w)                   # the router follows it again
    assert w.path() == NEAR
