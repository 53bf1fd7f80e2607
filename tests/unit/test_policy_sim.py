"""The policy simulation (experiments/sim.py): the controller's engine on a
simulated clock.  Deterministic for a seed; a 3-site, 5-session trace
computed by hand; the offline lower bound never beaten by any policy
(nor by the hindsight rule, which is no lower bound: shown too); the
calibration is the reference run's; a bad trace names its line.  And
placement at scale: the engine's host index ranks as ranking every host
does, and a decision looks only at the hosts it needs."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import Policy
from controller.fake_hypervisor import FakeHypervisor
from controller.hypervisor import HostSpec
from controller.ovct import Ovct, Session
from controller.rundir import ROOT
from experiments import sim

MIB = 1 << 20
#: simple numbers: 100 packets/s (1e5 bytes/s) per switch, 256 MiB sent at
#: 0.5 bytes per byte of RAM in 5 s, 1000 bytes per relayed packet
CAL = sim.Calibration(session_pps=100.0, session_bps=1e5, migration_s=5.0, downtime_ms=100.0,
                      transfer_ratio=0.5, memory_bps=1e12, bytes_per_packet=1000.0,
                      memory_mib=256, source="test")
SENT = 256 * MIB * 0.5                       # bytes a migration sends
MOVE = SENT * 3 / 1000                       # ... relayed by 3 switches, in packets
BREAKEVEN = MOVE / (100 * 2)                 # 2 of 3 switches' relay saved: 2013.27 s
#: the engine's priors made equal to the truth, so its break-even is exact
POLICY = Policy(prior_session_pps=100.0, prior_session_bps=1e5, prior_transfer_ratio=0.5,
                prior_bytes_per_packet=1000.0, max_concurrent_migrations=4)


def three_sites():
    """e1, e2, e3 around core c1: any two sites are 3 switches apart."""
    return sim.World.multisite(3, clients=1, hosts=1, core=1)


def trace_file(tmp_path, rows, home="p1x1"):
    path = tmp_path / "trace.csv"
    lines = ["start_s,duration_s,client,vm,vm_home,dirty_bps"]
    lines += [f"{a},{b},{c},u1,{home},0" for a, b, c in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


#: one user, VM u1 at home on site 1
FIVE = [(0, 1000, "t2x1"),       # s1: site 2, shorter than the break-even
        (2000, 100, "t2x1"),     # s2: site 2 again
        (3000, 50, "t1x1"),      # s3: home
        (4000, 5000, "t3x1"),    # s4: site 3, long
        (10000, 10, "t3x1")]     # s5: site 3 again


def run(world, trace, decision, **kw):
    return sim.run(world, trace, sim.with_decision(POLICY, decision), CAL, **kw).totals


def test_five_sessions_by_hand(tmp_path):
    w = three_sites()
    tr = sim.read_trace(trace_file(tmp_path, FIVE), w.topo, CAL)
    assert BREAKEVEN == pytest.approx(2013.26592)
    # never: the VM stays on site 1; 3 switches but for s3 (1)
    never = run(w, tr, "never")
    assert never.packets == pytest.approx(100 * (3 * 1000 + 3 * 100 + 50 + 3 * 5000 + 3 * 10))
    assert never.migrations == 0 and never.far_s == pytest.approx(1000 + 100 + 5000 + 10)
    # always: every far session moves at once (5 s far, then 1 switch) -- s1, s3 (back
    # home), s4; s2 and s5 find the VM at their site
    always = run(w, tr, "always")
    sessions = 100 * ((3 * 5 + 995) + 100 + (3 * 5 + 45) + (3 * 5 + 4995) + 10)
    assert always.session_packets == pytest.approx(sessions)
    assert always.migrations == 3 and always.migration_packets == pytest.approx(3 * MOVE)
    assert always.downtime_s == pytest.approx(0.3)
    # breakeven: s1 ends before its break-even; s4 moves once it has lasted it
    be = run(w, tr, "breakeven")
    far = BREAKEVEN + 5
    assert be.migrations == 1
    assert be.packets == pytest.approx(100 * (3 * 1000 + 3 * 100 + 50 + 3 * far + (5000 - far)
                                              + 10) + MOVE)
    # the hindsight rule moves exactly s4, at once
    hs = sim.run(w, tr, POLICY, CAL, hindsight=True).totals
    assert hs.migrations == 1
    assert hs.packets == pytest.approx(100 * (3 * 1000 + 3 * 100 + 50 + 3 * 5 + 4995 + 10)
                                       + MOVE)
    # the lower bound: the same plan, minus the 5 s the migration takes
    assert sim.lower_bound(w, tr, CAL) == pytest.approx(hs.packets - 100 * 2 * 5)
    assert sim.lower_bound(w, tr, CAL, "bytes") == pytest.approx(
        (hs.packets - 100 * 2 * 5 - MOVE) * 1000 + SENT * 3)


def test_the_hindsight_rule_is_no_lower_bound(tmp_path):
    """A session just longer than its break-even away, then a long one at
    home: hindsight moves the VM there and back; never moving is cheaper.
    (Hence the offline lower bound beside it.)"""
    w = three_sites()
    tr = sim.read_trace(trace_file(tmp_path, [(0, 2100, "t2x1"), (3000, 3000, "t1x1")]),
                        w.topo, CAL)
    never = run(w, tr, "never")
    hs = sim.run(w, tr, POLICY, CAL, hindsight=True).totals
    assert hs.migrations == 2 and hs.packets > never.packets
    assert sim.lower_bound(w, tr, CAL) == pytest.approx(never.packets)


def test_the_simulation_is_deterministic_for_a_seed():
    w = sim.World.multisite(6, clients=3, hosts=1, core=2)
    a, b = (sim.generate(w.topo, 150, seed=7) for _ in range(2))
    assert a.sessions == b.sessions and a.vms == b.vms
    assert sim.generate(w.topo, 150, seed=8).sessions != a.sessions
    assert len(a.sessions) == 150 and not a.overlapping_vms()
    r1 = sim.run(w, a, sim.with_decision(POLICY, "adaptive"))
    r2 = sim.run(w, b, sim.with_decision(POLICY, "adaptive"))
    assert r1.totals == r2.totals and r1.decisions == r2.decisions
    assert r1.predictions == r2.predictions and r1.totals.migrations > 0


def test_a_trace_round_trips_through_its_csv(tmp_path):
    w = sim.World.multisite(4, clients=2, hosts=1, core=1)
    tr = sim.generate(w.topo, 40, seed=3)
    path = str(tmp_path / "t.csv")
    sim.write_trace(tr, path)
    back = sim.read_trace(path, w.topo)
    assert [(s.start_s, s.duration_s, s.client, s.vm, s.pps) for s in back.sessions] == \
        [(s.start_s, s.duration_s, s.client, s.vm, s.pps) for s in tr.sessions]
    assert {v.name: v.home for v in back.vms.values()} == \
        {v.name: v.home for v in tr.vms.values() if v.name in back.vms}


@pytest.mark.parametrize("text,needle", [
    ("start_s,duration_s,client\n0,1,t1x1\n", "missing column(s) vm"),
    ("start_s,duration_s,client,vm\n0,1,t9x1,u\n", ":2: client 't9x1'"),
    ("start_s,duration_s,client,vm\n0,1,t1x1,u\n5,-1,t1x1,u\n", ":3: start_s must be"),
    ("start_s,duration_s,client,vm\nx,1,t1x1,u\n", ":2: could not convert"),
    ("start_s,duration_s,client,vm,vm_home\n0,1,t1x1,u,p7x1\n", ":2: vm_home 'p7x1'"),
    ("start_s,duration_s,client,vm,memory_mib\n0,1,t1x1,u,1\n", ":2: pps, bps"),
])
def test_a_bad_trace_names_its_line(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(sim.TraceError) as exc:
        sim.read_trace(str(path), three_sites().topo)
    assert needle in str(exc.value), str(exc.value)


def test_the_default_calibration_is_the_reference_runs():
    got = sim.calibrate(os.path.join(ROOT, "results", "reference-180s"))
    want = sim.Calibration()
    for f in ("session_pps", "session_bps", "migration_s", "downtime_ms", "transfer_ratio",
              "memory_bps", "bytes_per_packet", "memory_mib"):
        assert getattr(got, f) == pytest.approx(getattr(want, f), rel=2e-3), f


@st.composite
def small_traces(draw):
    """Up to 3 VMs on 3-4 sites, sessions one after another per VM."""
    sites = draw(st.integers(3, 4))
    rows = []
    for vm in range(draw(st.integers(1, 3))):
        t = draw(st.floats(0, 500))
        for _ in range(draw(st.integers(1, 5))):
            length = draw(st.sampled_from([30.0, 400.0, 1500.0, 2500.0, 6000.0]))
            site = draw(st.integers(1, sites))
            rows.append((t, length, f"t{site}x1", f"u{vm}", f"p{draw(st.integers(1, sites))}x1",
                         draw(st.sampled_from([50.0, 100.0, 300.0]))))
            t += length + draw(st.sampled_from([10.0, 200.0, 1000.0]))
    return sites, rows


@settings(max_examples=12, deadline=None)
@given(small_traces())
def test_no_policy_beats_the_offline_lower_bound(tmp_path_factory, case):
    sites, rows = case
    w = sim.World.multisite(sites, clients=1, hosts=1, core=1)
    path = tmp_path_factory.mktemp("t") / "trace.csv"
    seen = {}
    lines = ["start_s,duration_s,client,vm,vm_home,pps,bps,dirty_bps"]
    for a, b, c, v, home, pps in rows:
        home = seen.setdefault(v, home)
        lines.append(f"{a},{b},{c},{v},{home},{pps},{pps * 1000},0")
    path.write_text("\n".join(lines) + "\n")
    tr = sim.read_trace(str(path), w.topo, CAL)
    lb = {u: sim.lower_bound(w, tr, CAL, u) for u in ("packets", "bytes")}
    runs = [sim.run(w, tr, sim.with_decision(POLICY, d), CAL).totals
            for d in ("always", "never", "breakeven", "predicted", "adaptive")]
    runs.append(sim.run(w, tr, POLICY, CAL, hindsight=True).totals)
    for t in runs:
        assert t.packets >= lb["packets"] * (1 - 1e-9)
        assert t.bytes >= lb["bytes"] * (1 - 1e-9)


# -- placement at scale -----------------------------------------------------------------

def _sim_engine(sites, hosts, core, seed_caps):
    world = sim.World.multisite(sites, 1, hosts, core)
    clock = sim.Clock(0.0)
    paths = sim.Paths(world.topo)
    net = sim.SimNetwork(world.topo, clock, sim.Ledger(paths, sim.Calibration()))
    kvm = world.topo.hosts_by_role("kvmhost")
    hv = FakeHypervisor([HostSpec(h.name, "u", h.ip, 4096, 2) for h in kvm], clock)
    eng = Ovct(Policy(), hv, net, lambda ev: None, clock)
    return world, paths, eng


@settings(max_examples=25, deadline=None)
@given(sites=st.integers(1, 12), hosts=st.integers(1, 3), core=st.integers(1, 4),
       limit=st.one_of(st.none(), st.integers(0, 6)), data=st.data())
def test_the_index_ranks_hosts_as_ranking_every_host_does(sites, hosts, core, limit, data):
    core = min(core, sites)
    world, paths, eng = _sim_engine(sites, hosts, core, 0)
    dpid = data.draw(st.sampled_from(sorted(paths.adj)))
    want = [r for r in eng.ranked_hosts(dpid) if limit is None or r[0] < limit]
    assert list(eng.nearest_hosts(dpid, limit)) == want


def test_a_decision_looks_at_the_hosts_it_needs_not_at_all_of_them():
    """100 KVM hosts; the VM is far, the client's own site has room: the
    decision locates a handful of addresses, not every host's."""
    world, paths, eng = _sim_engine(50, 2, 5, 0)
    eng.hv.add_vm("p2x1", "v1x1", "10.1.2.1", "52:54:00:00:01:01", 256)
    eng.net.place_vm("10.1.2.1", eng.net.loc["10.2.1.1"], 0.0)
    eng.vms_by_ip()
    list(eng.nearest_hosts(101))                   # the index is built once
    calls = []
    inner = eng.net.locate
    eng.net.locate = lambda ip: calls.append(ip) or inner(ip)
    s = Session(1, "10.1.0.1", 40000, "v1x1", "10.1.2.1", 5900, 101, 0.0)
    eng.decide(s, "p2x1", 256)
    assert eng.hv.jobs and eng.hv.jobs[0].dst == "p1x1"
    assert len(calls) <= 4, calls
