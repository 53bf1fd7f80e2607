"""The report's network with our controller: reachability, TCP throughput
through the userspace datapath, and per-switch relayed-packet statistics."""
import subprocess
import time

import psutil
import pytest

from controller import classes as C
from controller.stats import relayed
from testbed import ovs
from testbed.topology import paper_topology

from tests.integration.conftest import finish, start

TCL1, PM1, PM2 = "10.0.0.1", "10.0.0.11", "10.0.0.12"
BURST = 200


@pytest.fixture(scope="module")
def net():
    tb = start(paper_topology(), "paper", stats_interval=1.0, kvm=False)
    yield tb
    finish(tb)


def test_every_pair_of_hosts_pings(net, attach):
    attach(net)
    res = net.ping_all(count=3)
    bad = {pair: (r.transmitted, r.received) for pair, r in res.items()
           if r.transmitted != 3 or r.received != 3}
    assert not bad
    assert len(res) == 12


def test_controller_listens_on_loopback_only(net):
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    mine = [ln for ln in out.splitlines() if f"pid={net.controller.pid}," in ln]
    assert mine, out
    assert all(f"127.0.0.1:{net.controller_port}" in ln for ln in mine), mine


def test_iperf3_tcp_between_tcl1_and_pm2(net, attach):
    attach(net)
    mbit = net.iperf("tcl1", "pm2", seconds=3)["mbit_s"]
    print(f"iperf3 tcl1->pm2: {mbit:.0f} Mbit/s")
    assert mbit > 100
    assert _our_pings() == [] and not [p for p in psutil.Process().children(recursive=True)
                                       if p.name() == "iperf3"]


def _delta(after, before, **kw):
    return relayed(after, **kw)[0] - relayed(before, **kw)[0]


def test_counted_burst_is_relayed_by_each_switch_on_the_path(net, attach):
    attach(net)
    before = net.wait_fresh_stats()
    r = net.ping("tcl1", "pm2", count=BURST, interval=0.01)
    assert r.received == BURST
    after = net.wait_fresh_stats()
    for dpid in (2, 1, 3):
        assert _delta(after, before, dpid=dpid, dst=PM2) >= BURST, dpid   # requests
        assert _delta(after, before, dpid=dpid, dst=TCL1) >= BURST, dpid  # replies

    before = after
    r = net.ping("tcl1", "pm1", count=BURST, interval=0.01)
    assert r.received == BURST
    after = net.wait_fresh_stats()
    assert _delta(after, before, dpid=2, dst=PM1) >= BURST
    assert _delta(after, before, dpid=2, dst=TCL1) >= BURST
    for dpid in (1, 3):   # s2 alone relays traffic between its own hosts
        assert _delta(after, before, dpid=dpid, dst=PM1) == 0
        assert _delta(after, before, dpid=dpid, dst=TCL1) == 0
    # the burst is ICMP: class "other", not VNC or migration
    assert _delta(after, before, dpid=2, dst=PM1, cls=C.VNC) == 0
    assert _delta(after, before, dpid=2, dst=PM1, cls=C.OTHER) >= BURST


def test_every_installed_flow_carries_our_cookie(net):
    for sw in ("s1", "s2", "s3"):
        flows = [ln for ln in ovs.dump_flows(sw).splitlines() if "cookie=" in ln]
        assert flows
        for ln in flows:
            cookie = int(ln.split("cookie=")[1].split(",")[0], 16)
            info = C.parse_cookie(cookie)
            # os-ken's own LLDP trap (cookie 0, priority 65535) is the one exception
            assert info.ours or "priority=65535" in ln, ln


def _our_pings() -> list[int]:
    """ping processes started by this test process (Mininet's popen execs
    ping through mnexec, so they are our children)."""
    return [p.pid for p in psutil.Process().children(recursive=True) if p.name() == "ping"]


def test_background_probe_covers_its_whole_window_and_leaves_no_ping(net, attach):
    """A 10 ms probe over 60 s records (nearly) every reply: it writes to a
    file, so it never blocks on a full pipe (it used to stop after ~800
    replies, 13 s)."""
    attach(net)
    window_s = 60.0
    bg = net.start_ping("tcl1", "pm2", interval=0.01)
    time.sleep(window_s)          # the measurement's length, not a wait for state
    res = bg.stop()
    expected = window_s / 0.01
    print(f"probe: {res.received} replies of {expected:.0f} expected, {res.transmitted} sent")
    # ping paces itself: on a loaded 2-core machine it sends fewer than
    # window/interval, so what must hold is no loss, no hole, and replies
    # recorded from the first second to the last.
    assert res.received >= 0.99 * res.transmitted, (res.received, res.transmitted)
    assert res.received >= 0.25 * expected, (res.received, expected)
    assert res.times[-1] - res.times[0] >= window_s - 1
    assert res.max_gap_ms < 1000, res.max_gap_ms
    net.ping_pairs([("tcl1", "pm1"), ("tcl2", "pm2")], count=3, interval=0.05)
    assert _our_pings() == []
