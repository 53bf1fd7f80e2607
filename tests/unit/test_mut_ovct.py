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
from tests.unit.helpers import sim_engine
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


# -- placement: the nearest host with room, ties by name ---------------------------------
# The unit World has two KVM hosts, so at most one candidate: these use the
# simulator's network on five sites around a ring of five core switches.
# Seen from site 1's edge switch (dpid 101): p1x1 at 0 hops, p2x1 and p5x1
# at 3, p3x1 and p4x1 at 4.

def placement(memory=None):
    from controller.ovct import Session
    eng, hv, net, events = sim_engine(memory)
    hv.add_vm("p3x1", "v", "10.1.2.1", "52:54:00:00:01:01", 256)
    net.place_vm("10.1.2.1", net.loc["10.3.1.1"], 0.0)
    eng.vms_by_ip()
    eng.decide(Session(1, "10.1.0.1", 40000, "v", "10.1.2.1", 5900, 101, 0.0), "p3x1", 256)
    decision = [e for e in events if type(e).__name__ == "Decision"]
    assert len(decision) == 1
    return eng, hv, decision[0]


def test_the_ranking_is_by_hops_then_name():
    eng, _hv, _d = placement()
    assert [(h, n) for h, n, _loc in eng.ranked_hosts(101)] == \
        [(0, "p1x1"), (3, "p2x1"), (3, "p5x1"), (4, "p3x1"), (4, "p4x1")]
    assert [(h, n) for h, n, _loc in eng.nearest_hosts(101)] == \
        [(0, "p1x1"), (3, "p2x1"), (3, "p5x1"), (4, "p3x1"), (4, "p4x1")]
    assert [n for _h, n, _loc in eng.nearest_hosts(101, 4)] == ["p1x1", "p2x1", "p5x1"]
    assert [n for _h, n, _loc in eng.nearest_hosts(101, 0)] == []


def test_placement_picks_the_nearest_host_when_every_closer_one_has_room():
    _eng, hv, d = placement()
    assert (d.decision, d.dst, d.current_hops) == ("migrate", "p1x1", 4)
    assert [(c["host"], c["hops"], c["ok"]) for c in d.candidates] == [("p1x1", 0, True)]
    assert [j.dst for j in hv.jobs] == ["p1x1"]


def test_placement_skips_a_full_nearest_host_for_the_next_nearest_by_name():
    _eng, hv, d = placement({"p1x1": 100})
    assert (d.decision, d.dst) == ("migrate", "p2x1")
    assert [(c["host"], c["hops"], c["ok"]) for c in d.candidates] == \
        [("p1x1", 0, False), ("p2x1", 3, True)]
    assert d.candidates[0]["why"] == "free memory 100 < 320 MiB"
    assert [j.dst for j in hv.jobs] == ["p2x1"]


def test_placement_takes_the_one_closer_host_with_room_not_a_farther_one():
    _eng, hv, d = placement({"p1x1": 100, "p2x1": 100})
    assert (d.decision, d.dst) == ("migrate", "p5x1")
    assert [(c["host"], c["ok"]) for c in d.candidates] == \
        [("p1x1", False), ("p2x1", False), ("p5x1", True)]
    assert [j.dst for j in hv.jobs] == ["p5x1"]


def test_placement_stays_when_no_closer_host_has_room_and_says_why_for_each():
    _eng, hv, d = placement({"p1x1": 100, "p2x1": 100, "p5x1": 100})
    assert (d.decision, d.reason) == ("stay", "no closer host has capacity")
    assert [(c["host"], c["hops"], c["ok"]) for c in d.candidates] == \
        [("p1x1", 0, False), ("p2x1", 3, False), ("p5x1", 3, False)]
    assert hv.jobs == []


def test_a_hypervisor_that_samples_cpu_gets_every_host_asked_every_5_s_even_one_down():
    w = World(enabled=False)
    w.hv.warm_capacity = True
    inner, asked = w.hv.capacity, []

    def capacity(host):
        asked.append((round(w.clock(), 3), host))
        return inner(host)
    w.hv.capacity = capacity
    w.hv.down.add("pm1")                       # its error is swallowed, pm2 still asked
    w.run()
    assert asked == [(w.clock(), "pm1"), (w.clock(), "pm2")]
    t0 = w.clock()
    w.clock.t += 4.9
    w.run()
    assert len(asked) == 2
    w.clock.t += 0.1
    w.run()
    assert asked[2:] == [(round(t0 + 5.0, 3), "pm1"), (round(t0 + 5.0, 3), "pm2")]
    w.hv.warm_capacity = False
    w.clock.t += 60
    w.run()
    assert len(asked) == 4
