"""The multi-site generator reaches full connectivity with our controller,
including a ring core (loops in the switch graph)."""
from testbed.topology import multisite_topology

from tests.integration.conftest import finish, start


def test_multisite_four_sites_ring_core_full_connectivity(attach):
    topo = multisite_topology(sites=4, clients=2, hosts=1, core=3)
    tb = attach(start(topo, "multisite"))
    try:
        res = tb.ping_all(count=1)
        assert len(res) == 12 * 11
        unreachable = sorted(f"{a}->{b}" for (a, b), r in res.items() if r.received != 1)
        assert not unreachable
    finally:
        finish(tb)


def test_a_hundred_hosts_start_learn_and_reach_each_other_on_the_first_ping(attach):
    """25 sites x (3 thin clients + 1 KVM host), 5 core switches in a ring:
    100 hosts, 30 switches.  Once the testbed says it is ready, every host
    is learnt and a large random sample of ordered pairs (2,000 of 9,900)
    answers the first ping: no first-packet loss."""
    topo = multisite_topology(sites=25, clients=3, hosts=1, core=5)
    assert (len(topo.hosts), len(topo.switches)) == (100, 30)
    tb = attach(start(topo, "multisite-100", kvm=False))
    try:
        known = tb.client.state()["hosts"]
        assert {h.ip for h in topo.hosts} <= set(known)
        res = tb.ping_all(count=1, sample=2000, seed=1)
        assert len(res) == 2000
        unreachable = sorted(f"{a}->{b}" for (a, b), r in res.items() if r.received != 1)
        assert not unreachable
        steps = tb.network.startup_s
        assert set(steps) >= {"build", "start", "hosts_configured", "switches_connected",
                              "links_discovered", "hosts_learnt"}
    finally:
        finish(tb)
