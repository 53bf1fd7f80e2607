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
