"""When moving pays: the cost model on fixture statistics, each decision
policy on crafted sessions (short and long, with and without history),
hysteresis, the prediction checked against what was measured, the
incremental inventory against a full read, and the policy's bad values
refused.  (Placement's index at scale: test_policy_sim.py.)"""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import config as cfg
from controller import cost as K
from controller import flows as F
from controller import policies as P
from controller.classes import MIGRATION, VNC
from controller.fake_hypervisor import FakeHypervisor
from controller.hypervisor import HostSpec
from controller.inventory import Inventory
from controller.rundir import ROOT
from controller.stats import RateMeter
from testbed import scenario

from tests.unit.world import VM1, World

MIB = 1 << 20
RAM = 256 * MIB
CLIENT = "10.0.0.1"
PM1, PM2 = "10.0.0.11", "10.0.0.12"


def prior_breakeven(switches_old=3, switches_new=1, migration_switches=3):
    """By hand: the report's network with the reference priors."""
    cost = RAM * 0.788 * migration_switches / 1206           # relayed packets
    saving = 303.9 * (switches_old - switches_new)            # packets per second
    return cost / saving


# -- the cost model -------------------------------------------------------------------

def test_rate_meter_rates_and_totals_from_cumulative_polls():
    m = RateMeter(window=2)
    for t, k in ((10.0, 0), (12.0, 1), (14.0, 2), (16.0, 3)):
        m.observe(1, t, {VM1: {VNC: [100 * k, 10_000 * k], MIGRATION: [0, 0]}})
    m.observe(2, 15.0, {VM1: {VNC: [7, 700]}})              # polled once: no rate yet
    assert m.rates(VM1, VNC) == {1: (50.0, 5000.0, 12.0)}    # the last 2 windows, from t=12
    assert m.total(VNC, [VM1]) == (307, 30_700)
    assert m.total(VNC, ["10.9.9.9"]) is None
    m.observe(1, 15.0, {VM1: {VNC: [999, 999]}})             # out of order: ignored
    assert m.rates(VM1, VNC)[1][0] == 50.0


def test_prediction_on_fixture_rates_by_hand():
    model = K.CostModel()
    rates = K.Rates({2: (310.0, 4e5), 1: (300.0, 3.9e5), 3: (290.0, 3.8e5)}, since=0.0)
    pred = model.predict("vm1", RAM, rates, old_path=[2, 1, 3], new_path=[2],
                         migration_path=[3, 1, 2])
    transfer = RAM * 0.788
    assert pred.transfer_bytes == pytest.approx(transfer)
    assert pred.cost_bytes == pytest.approx(transfer * 3)
    assert pred.cost_packets == pytest.approx(transfer * 3 / 1206)
    # saved: the relay on s1 and s3, which the new path no longer uses
    assert (pred.saving_pps, pred.saving_bps) == (590.0, 7.7e5)
    assert (pred.current_pps, pred.rates) == (900.0, "measured")
    assert pred.breakeven_s == pytest.approx(transfer * 3 / 1206 / 590)
    # a new path with a switch the old one lacked costs that switch's mean rate
    other = model.predict("vm1", RAM, rates, [2, 1, 3], [2, 4], [3, 1, 2, 4])
    assert other.saving_pps == pytest.approx(590.0 - 300.0)
    assert other.cost_packets == pytest.approx(transfer * 4 / 1206)


def test_prior_rates_until_measured_then_the_vms_own():
    model = K.CostModel()
    pred = model.predict("vm1", RAM, None, [2, 1, 3], [2], [3, 1, 2])
    assert (pred.rates, pred.saving_pps) == ("prior", 607.8)
    assert pred.breakeven_s == pytest.approx(prior_breakeven())
    model.learn_session("vm1", (100.0, 1e5))
    assert model.prior_rate("vm1") == (100.0, 1e5)
    assert model.prior_rate("vm9") == (100.0, 1e5)            # all sessions' mean
    model.learn_session("vm2", (200.0, 2e5))
    assert model.prior_rate("vm9")[0] == pytest.approx(0.7 * 100 + 0.3 * 200)
    assert model.prior_rate("vm1") == (100.0, 1e5)
    no_saving = model.predict("vm1", RAM, None, [2], [2], [3, 2])
    assert no_saving.saving_pps == 0 and no_saving.breakeven_s is None


def test_migrations_teach_efficiency_bandwidth_dirty_rate_and_relay():
    model = K.CostModel()
    # a VM dirtying 7.12 MB/s at 71.2 MB/s: a tenth of the bandwidth
    model.learn_migration("vm1", RAM, int(RAM * 0.5 / 0.9), 71.2e6, 7.12e6)
    assert model.efficiency == pytest.approx(0.5)
    assert model.dirty_share("vm1") == pytest.approx(0.1)
    assert model.transfer_bytes("vm1", RAM) == pytest.approx(RAM * 0.5 / 0.9)
    # another VM: the dirty rate of those seen so far
    assert model.transfer_bytes("vm2", RAM) == pytest.approx(RAM * 0.5 / 0.9)
    model.learn_relay(1000, 3, packets=3, nbytes=3300)
    assert model.relay_per_byte() == (pytest.approx(0.001), pytest.approx(1.1))
    # a dirty rate above the bandwidth is cut at MAX_DIRTY_SHARE
    model.learn_migration("vm3", RAM, None, None, 1e12)
    assert model.dirty_share("vm3") == K.MAX_DIRTY_SHARE
    assert K.dirty_bps_from_job({"memory_dirty_rate": 10, "memory_page_size": 8192}) == 81920
    assert K.dirty_bps_from_job({}) is None


# -- the policies on crafted sessions -----------------------------------------------------

def _ctx(age, be=100.0, rem=None, n=0, margin=0.0, saving=1.0):
    pred = K.Prediction("packets", RAM, 1.0, 3, be * saving, be * saving, 3.0, 3.0, saving,
                        saving, "prior")
    return P.Context(now=1000.0 + age, started=1000.0, prediction=pred,
                     expected_remaining_s=rem, history_n=n, margin=margin)


@pytest.mark.parametrize("policy,ctx,action", [
    ("always", _ctx(0), P.MIGRATE),
    ("never", _ctx(10_000), P.STAY),
    ("breakeven", _ctx(0), P.DEFER),
    ("breakeven", _ctx(100), P.MIGRATE),
    ("breakeven", _ctx(150, margin=1.0), P.DEFER),            # hysteresis: 2 x break-even
    ("breakeven", _ctx(0, saving=0.0), P.STAY),               # nothing saved: never pays
    ("predicted", _ctx(0), P.DEFER),                          # no history: rent or buy
    ("predicted", _ctx(0, rem=500, n=5), P.MIGRATE),          # long history
    ("predicted", _ctx(0, rem=50, n=5), P.STAY),              # short history
    ("predicted", _ctx(0, rem=150, n=5, margin=1.0), P.STAY),
    ("adaptive", _ctx(0, rem=500, n=5), P.MIGRATE),
    ("adaptive", _ctx(0, rem=50, n=5), P.DEFER),              # short history: rent or buy
    ("adaptive", _ctx(100, rem=50, n=5), P.MIGRATE),          # ... and it lasted
])
def test_each_policy_on_crafted_sessions(policy, ctx, action):
    v = P.make(policy).verdict(ctx)
    assert v.action == action, v
    if action == P.DEFER:
        assert v.recheck_at == pytest.approx(ctx.started + ctx.threshold_s)


def test_a_deferral_never_asks_again_at_once():
    v = P.make("breakeven").verdict(_ctx(99.9))
    assert v.recheck_at == pytest.approx(1099.9 + P.MIN_RECHECK_S)


def test_history_mean_residual_life_per_client_then_per_vm():
    h = P.SessionHistory(keep=3)
    assert h.expected_remaining("c1", "vm1", 0, 2) == (None, 0)
    for d in (100, 200, 300, 400):                # only the last 3 are kept
        h.add("c1", "vm1", d)
    assert h.expected_remaining("c1", "vm1", 0, 2) == (300.0, 3)
    assert h.expected_remaining("c1", "vm1", 250, 2) == (100.0, 3)     # (300+400)/2 - 250
    assert h.expected_remaining("c1", "vm1", 500, 2) == (0.0, 3)       # all ended by then
    h.add("c2", "vm1", 1000)
    # another client of vm1: too few of its own, the VM's (last 3) count
    assert h.expected_remaining("c2", "vm1", 0, 2) == (pytest.approx((300 + 400 + 1000) / 3), 3)
    assert h.expected_remaining("c3", "vm2", 0, 1) == (None, 0)


# -- the engine with each policy (the report's network, fake hypervisor) -------------------

def decisions(w):
    return w.event("ovct_decision")


def test_always_is_todays_behaviour_and_logs_the_prediction():
    w = World()
    w.syn()
    (d,) = decisions(w)
    assert d["decision"] == "migrate" and d["reason"] == "pm1 is 0 hop(s) from the client, pm2 is 2"
    assert d["policy"] == "always" and d["rates"] == "prior"
    assert d["cost_packets"] == round(RAM * 0.788 * 3 / 1206)
    assert d["saving_pps"] == 607.8
    assert d["breakeven_s"] == pytest.approx(prior_breakeven(), abs=1e-3)
    assert "expected_remaining_s" not in d and "recheck_mono" not in d


def test_never_keeps_the_vm_and_says_why():
    w = World(decision="never")
    w.syn()
    (d,) = decisions(w)
    assert d["decision"] == "stay" and "policy never" in d["reason"] and w.hv.jobs == []
    assert d["breakeven_s"] == pytest.approx(prior_breakeven(), abs=1e-3)


def test_breakeven_moves_a_long_session_once_it_has_lasted_the_break_even():
    w = World(decision="breakeven")
    w.syn()
    (d,) = decisions(w)
    be = prior_breakeven()
    # on the priors: looked at again once, 30 s on, when it may be measured
    assert d["decision"] == "defer" and d["to"] == "pm1" and d["rates"] == "prior"
    assert d["recheck_mono"] == pytest.approx(130, abs=1e-3)
    w.clock.t = w.engine.next_due()
    w.run()
    d = decisions(w)[-1]                   # still unmeasured: the priors' break-even
    assert d["decision"] == "defer" and d["recheck_mono"] == pytest.approx(100 + be, abs=1e-3)
    assert w.engine.next_due() == pytest.approx(100 + be)
    w.clock.t = 100 + be - 1
    w.run()
    assert len(decisions(w)) == 2 and w.hv.jobs == []
    w.clock.t = w.engine.next_due()
    w.run()
    d = decisions(w)[-1]
    assert d["decision"] == "migrate" and "break-even" in d["reason"] and len(w.hv.jobs) == 1


def test_breakeven_leaves_a_short_session_alone():
    w = World(decision="breakeven")
    w.syn()
    w.clock.t += 120
    w.syn(flags=F.TCP_FIN | F.TCP_ACK)
    w.clock.t += 2000
    w.run()
    assert w.hv.jobs == [] and [x["decision"] for x in decisions(w)] == ["defer"]
    assert w.engine.next_due() is None


def _history(w, durations, client="tcl1"):
    ip = w.h.topo.host(client).ip
    for d in durations:
        w.engine.history.add(ip, "vm1", d)


@pytest.mark.parametrize("policy,past,decision", [
    ("predicted", [], "defer"),                    # no history: rent or buy
    ("predicted", [60, 90, 120], "stay"),          # short sessions: do not move
    ("predicted", [3000, 4000, 5000], "migrate"),  # long ones: move at detection
    ("adaptive", [60, 90, 120], "defer"),          # short: rent or buy all the same
    ("adaptive", [3000, 4000, 5000], "migrate"),
])
def test_history_policies_with_and_without_history(policy, past, decision):
    w = World(decision=policy)
    _history(w, past)
    w.syn()
    (d,) = decisions(w)
    assert d["decision"] == decision, d["reason"]
    assert d["history_n"] == len(past)
    if past:
        assert d["expected_remaining_s"] == pytest.approx(sum(past) / len(past))


def test_history_is_learnt_from_ended_sessions_and_from_the_event_log():
    w = World(decision="predicted")
    for port in (40001, 40002, 40003):
        w.syn(sport=port)
        w.clock.t += 60
        w.syn(sport=port, flags=F.TCP_FIN | F.TCP_ACK)
    assert w.engine.history.expected_remaining(CLIENT, "vm1", 0, 3) == (60.0, 3)
    w.restart_controller()
    assert w.engine.history.expected_remaining(CLIENT, "vm1", 0, 3) == (60.0, 3)
    w.syn(sport=40004)
    d = decisions(w)[-1]
    assert d["decision"] == "stay" and "expected 60 s left" in d["reason"]


@pytest.mark.parametrize("frac,decision", [(0.5, "migrate"), (0.7, "stay")])
def test_hysteresis_on_the_predicted_saving_applies_to_every_policy(frac, decision):
    # the move saves 2 of the 3 switches' relay: 2/3 of it
    w = World(hysteresis_saving_frac=frac)
    w.syn()
    (d,) = decisions(w)
    assert d["decision"] == decision
    if decision == "stay":
        assert d["reason"].split("; ")[1].startswith("hysteresis")


def test_hysteresis_margin_delays_the_rent_or_buy_move():
    w = World(decision="breakeven", hysteresis_margin=0.5)
    w.syn()
    w.clock.t = w.engine.next_due()          # the early look (priors, still unmeasured)
    w.run()
    assert decisions(w)[-1]["recheck_mono"] == pytest.approx(100 + 1.5 * prior_breakeven(),
                                                             abs=1e-3)


def test_switching_off_drops_deferred_decisions():
    w = World(decision="breakeven")
    w.syn()
    w.engine.set_enabled(False, "test")
    w.clock.t += 5000
    w.run()
    assert w.hv.jobs == [] and w.engine.next_due() is None


# -- measured rates and the prediction's check ------------------------------------------------

def _feed(meter, t, per_switch, t0=0.0, migration=None):
    """One poll of every switch: the session's VNC traffic at the given
    per-switch rate (half to the VM, half to the client) since ``t0``, and
    the migration stream's cumulative counts (to pm1)."""
    for dpid, rate in per_switch.items():
        half = [int(rate * (t - t0) / 2), int(rate * 1000 * (t - t0) / 2)]
        by_dst = {VM1: {VNC: half}, CLIENT: {VNC: list(half)}}
        if migration is not None:
            by_dst[PM1] = {MIGRATION: list(migration)}
            by_dst[PM2] = {MIGRATION: [0, 0]}
        meter.observe(dpid, t, by_dst)


def test_measured_rates_set_the_break_even():
    w = World(decision="breakeven")
    meter = RateMeter()
    w.engine.net.rates = meter
    _feed(meter, 90.0, {1: 300, 2: 300, 3: 300})      # polls before the session: not its own
    _feed(meter, 98.0, {1: 300, 2: 300, 3: 300})
    w.syn()
    assert decisions(w)[0]["rates"] == "prior"
    for t in range(102, 962, 2):                      # measured: 300 packets/s on each switch
        _feed(meter, float(t), {1: 300, 2: 300, 3: 300}, t0=100.0)
    w.clock.t = w.engine.next_due()
    assert w.clock.t == pytest.approx(130)          # the deferral on priors, looked at again
    w.run()
    d = decisions(w)[-1]
    be = RAM * 0.788 * 3 / 1206 / 600                 # saving: s1 and s3, 300 each
    assert d["rates"] == "measured" and d["saving_pps"] == pytest.approx(600, rel=1e-3)
    assert d["decision"] == "defer" and d["breakeven_s"] == pytest.approx(be, rel=1e-3)
    w.clock.t = 100 + be + 0.01
    w.run()
    assert decisions(w)[-1]["decision"] == "migrate"


def test_a_measured_break_even_shorter_than_the_priors_moves_the_vm_sooner():
    """Live, the deferral waited for the priors' 866 s although the session's
    own rates gave 777 s: once measured, the measured break-even rules."""
    w = World(decision="breakeven")
    meter = RateMeter()
    w.engine.net.rates = meter
    w.syn()
    be0 = prior_breakeven()
    for t in range(102, 132, 2):                      # 600 packets/s per switch: twice the prior
        _feed(meter, float(t), {1: 600, 2: 600, 3: 600}, t0=100.0)
    w.clock.t = w.engine.next_due()
    w.run()
    d = decisions(w)[-1]
    be = RAM * 0.788 * 3 / 1206 / 1200
    assert d["rates"] == "measured" and d["breakeven_s"] == pytest.approx(be, rel=1e-3)
    assert d["recheck_mono"] == pytest.approx(100 + be, rel=1e-3) and be < be0 / 1.9
    for t in range(132, int(100 + be) + 4, 2):
        _feed(meter, float(t), {1: 600, 2: 600, 3: 600}, t0=100.0)
    w.clock.t = 100 + be + 0.01
    w.run()
    assert decisions(w)[-1]["decision"] == "migrate" and len(w.hv.jobs) == 1
    # looked at early once only: 3 decisions in all
    assert [x["decision"] for x in decisions(w)] == ["defer", "defer", "migrate"]


def test_prediction_checked_against_libvirt_without_switch_statistics():
    w = World()
    w.syn()
    w.land()
    assert not w.event("ovct_prediction_check")
    w.clock.t += 30
    w.run()
    (c,) = w.event("ovct_prediction_check")
    sent = int(RAM * 0.7)                             # the fake hypervisor's bytes sent
    assert c["transferred_bytes"] == sent and c["cost_source"] == "libvirt"
    assert c["predicted_transfer_bytes"] == round(RAM * 0.788)
    assert c["cost_error"] == pytest.approx(0.7 / 0.788 - 1, abs=1e-5)
    assert c["why_unmeasured"] == "the session was not measured before the move"
    # and the model learnt the hypervisor's efficiency
    assert w.engine.model.efficiency == pytest.approx(0.7)


def test_prediction_checked_against_the_switches_counts():
    w = World()
    meter = RateMeter()
    w.engine.net.rates = meter
    for dpid in (1, 2, 3):                            # the switches' baseline
        meter.observe(dpid, 99.0, {PM1: {MIGRATION: [1000, 10**6]}, PM2: {MIGRATION: [0, 0]}})
    w.syn()                                           # at t = 100; moves at once (always)
    start = w.clock.t
    for t in range(102, 106, 2):
        _feed(meter, float(t), {1: 300, 2: 300, 3: 300}, t0=start, migration=(1000, 10**6))
    w.land()                                          # switched at t = 106
    moved = w.clock.t
    sent = int(RAM * 0.7)
    each = (sent // 1200, sent)                       # every switch relays the stream
    relayed = (3 * each[0], 3 * each[1])              # 3 switches, 1200 bytes per packet
    base = {1: 300 * (moved - start), 2: 300 * (moved - start), 3: 300 * (moved - start)}
    for t in range(int(moved) + 2, int(moved) + 32, 2):
        # after the move only s2 relays the session (330 packets/s)
        for dpid in (1, 2, 3):
            rate = 330 if dpid == 2 else 0
            n = base[dpid] + rate * (t - moved)
            half = [int(n / 2), int(n * 500)]
            meter.observe(dpid, float(t), {VM1: {VNC: half}, CLIENT: {VNC: list(half)},
                                           PM1: {MIGRATION: [1000 + each[0],
                                                             10**6 + each[1]]},
                                           PM2: {MIGRATION: [0, 0]}})
    w.clock.t = moved + 30
    w.run()
    (c,) = w.event("ovct_prediction_check")
    assert c["cost_source"] == "switches"
    assert (c["relayed_cost_packets"], c["relayed_cost_bytes"]) == relayed
    assert c["cost_error"] == pytest.approx(relayed[0] / c["predicted_cost_packets"] - 1,
                                            abs=1e-5)
    assert c["realised_saving_pps"] == pytest.approx(900 - 330, abs=1)
    assert c["saving_error"] == pytest.approx(570 / 607.8 - 1, abs=1e-2)
    assert c["realised_breakeven_s"] == pytest.approx(relayed[0] / 570, rel=1e-2)
    # what the switches said is learnt
    assert w.engine.model.relay_packets_per_byte == pytest.approx(relayed[0] / (3 * sent))


def test_migrations_sharing_a_host_are_not_told_apart_by_the_switches():
    """Two VMs move to pm1 at once: the switches count both streams under
    pm1's address, so neither check uses them (nor learns from them)."""
    from tests.unit.world import VM2
    w = World(max_concurrent_migrations=2)
    meter = RateMeter()
    w.engine.net.rates = meter
    for dpid in (1, 2, 3):
        meter.observe(dpid, 99.0, {PM1: {MIGRATION: [0, 0]}, PM2: {MIGRATION: [0, 0]}})
    w.syn(client="tcl1", vm_ip=VM1, sport=40000)
    w.syn(client="tcl2", vm_ip=VM2, sport=40001)
    assert len(w.hv.jobs) == 2
    w.land()
    for dpid in (1, 2, 3):
        meter.observe(dpid, 120.0, {PM1: {MIGRATION: [10**6, 10**9]}, PM2: {MIGRATION: [0, 0]}})
    w.clock.t += 30
    w.run()
    checks = w.event("ovct_prediction_check")
    assert [c["cost_source"] for c in checks] == ["libvirt", "libvirt"]
    assert "relayed_cost_packets" not in checks[0]
    assert w.engine.model.relay_packets_per_byte is None


def test_migration_rows_carry_the_prediction_and_its_check(tmp_path):
    from controller import events as E
    w = World()
    w.syn()
    w.land()
    w.clock.t += 30
    w.run()
    (m,) = E.migrations(w.records)
    assert m["policy"] == "always" and m["breakeven_s"] == pytest.approx(prior_breakeven(),
                                                                          abs=1e-3)
    assert m["cost_source"] == "libvirt" and m["cost_error"] < 0
    assert m["predicted_transfer_bytes"] == round(RAM * 0.788)


# -- the incremental inventory ---------------------------------------------------------------

def _hv(clock=lambda: 0.0):
    hv = FakeHypervisor([HostSpec(f"h{i}", "u", f"10.0.1.{i}", 4096, 2) for i in range(4)],
                        clock)
    return hv


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "move", "down", "up", "twin"]),
                              st.integers(0, 5), st.integers(0, 3)), max_size=25))
def test_the_inventory_kept_host_by_host_equals_a_full_read(ops):
    clock = [0.0]
    hv = _hv(lambda: clock[0])
    inv = Inventory(hv.hosts())
    inv.read_all(hv)
    token, _ = hv.inventory_changes(None)
    for op, vm, host in ops:
        name, h = f"vm{vm}", f"h{host}"
        where = [x for x in hv.hosts() if name in hv.vms[x]]
        if op == "add" and not where:
            hv.add_vm(h, name, f"10.0.2.{vm}", f"52:54:00:00:00:{vm:02x}", 256)
        elif op == "twin" and where and h not in where:       # a split brain
            hv.add_vm(h, name, f"10.0.2.{vm}", f"52:54:00:00:00:{vm:02x}", 256)
        elif op == "move" and len(where) == 1 and where[0] != h and h not in hv.down \
                and where[0] not in hv.down:
            hv.migrate(name, h)
            clock[0] += 10
            hv.in_flight()
        elif op == "down":
            hv.down.add(h)
        elif op == "up":
            hv.down.discard(h)
        token, changed = hv.inventory_changes(token)
        if changed is None:
            inv.read_all(hv)
        else:
            inv.read_hosts(hv, changed)
        full = Inventory(hv.hosts())
        full.read_all(hv)
        assert (inv.by_ip, inv.where, inv.macs) == (full.by_ip, full.where, full.macs)
        assert inv.conflicts() == full.conflicts()


def test_the_engine_reads_only_the_hosts_that_changed():
    w = World()
    w.engine.vms_by_ip(max_age=0)
    read = []
    inner = w.hv.domains
    w.hv.domains = lambda host: read.append(host) or inner(host)
    w.clock.t += 5
    w.engine.vms_by_ip()
    assert read == []                                  # nothing changed: nothing read
    w.syn()
    w.land()
    read.clear()
    w.clock.t += 5
    assert w.engine.vms_by_ip()[VM1][1] == "pm1"
    assert sorted(set(read)) == ["pm1", "pm2"]


# -- the policy file --------------------------------------------------------------------------

@pytest.mark.parametrize("ovct,needle", [
    ({"decision": "sometimes"}, "ovct.decision"),
    ({"decision": 1}, "ovct.decision"),
    ({"cost_unit": "flows"}, "ovct.cost_unit"),
    ({"hysteresis_saving_frac": 1.0}, "ovct.hysteresis_saving_frac"),
    ({"hysteresis_saving_frac": -0.1}, "ovct.hysteresis_saving_frac"),
    ({"hysteresis_margin": 1e9}, "ovct.hysteresis_margin"),
    ({"hysteresis_margin": float("nan")}, "ovct.hysteresis_margin"),
    ({"history_min_sessions": 0}, "ovct.history_min_sessions"),
    ({"prior_session_pps": 0}, "ovct.prior_session_pps"),
    ({"prior_session_bps": float("inf")}, "ovct.prior_session_bps"),
    ({"prior_transfer_ratio": 10 ** 400}, "ovct.prior_transfer_ratio"),
    ({"prior_bytes_per_packet": 10}, "ovct.prior_bytes_per_packet"),
    ({"prediction_check_s": 0}, "ovct.prediction_check_s"),
])
def test_a_bad_decision_policy_is_refused_naming_the_field(ovct, needle):
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.parse({"ovct": ovct}, "c.yaml")
    assert needle in str(exc.value), str(exc.value)


def test_the_policy_scenario_has_short_and_long_sessions_around_the_break_even():
    s = scenario.load(os.path.join(ROOT, "experiments", "scenarios", "policy.yaml"))
    topo = s.build_topology()
    assert s.topology.kind == "multisite" and len(topo.vms) >= 4
    assert s.ovct.decision in ("breakeven", "predicted", "adaptive")
    # every session's VM starts at another site than its client: 3 switches apart
    for x in s.sessions:
        assert topo.host(x.client).site != topo.host(topo.vm(x.vm).host).site
    be = K.CostModel(priors=s.ovct.priors()).predict(
        "v", s.vm_memory_mib * MIB, None, [1, 2, 3], [1], [3, 2, 1]).breakeven_s
    short = [x for x in s.sessions if x.duration_s < be]
    long = [x for x in s.sessions if x.duration_s > be + 60 + s.ovct.prediction_check_s]
    assert short and long and len(short) + len(long) == len(s.sessions)
