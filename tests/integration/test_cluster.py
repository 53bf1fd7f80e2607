"""Cluster mode on this machine: Mininet's cluster edition with a stand-in
second server (its own namespace, Open vSwitch and sshd).  Proves the code
path a real two-machine run takes: remote nodes as shells over ssh, the
link between servers as an ssh Ethernet tunnel, the remote switches
reaching the controller through an ``ssh -R`` forward to their own
127.0.0.1."""
import os
import subprocess

import pytest

from testbed import machine, ovs
from testbed.cluster import ClusterError, ClusterRun
from testbed.net import Testbed
from testbed.topology import paper_topology
from tests.integration.conftest import finish, start


def test_the_paper_network_over_two_servers(attach):
    before = machine.snapshot()
    topo = paper_topology()
    cluster = ClusterRun(standins=1)
    tb = attach(start(topo, "cluster-paper", kvm=False, cluster=cluster))
    try:
        assert cluster.where["s3"] == cluster.where["pm2"] == "srv2"
        # s3 is a bridge of the stand-in's Open vSwitch, not of this one's
        assert "s3" not in ovs.list_bridges()
        remote = cluster.run_on("srv2", ["ovs-vsctl", "list-br"])
        assert remote.stdout.split() == ["s3"], remote
        target = cluster.run_on("srv2", ["ovs-vsctl", "get-controller", "s3"]).stdout.strip()
        assert target == f"tcp:127.0.0.1:{tb.controller_port}"
        # pm2's shell runs there (over ssh), the other hosts here
        assert tb.host("pm2").isRemote and not tb.host("tcl1").isRemote
        # the one link between the servers (s1-s3) is an ssh tunnel
        tunnels = [ln for ln in tb.net.links if getattr(ln, "tunnel", None) is not None]
        assert [sorted((ln.intf1.node.name, ln.intf2.node.name)) for ln in tunnels] == \
            [["s1", "s3"]]
        # the controller saw all three switches, the tunnelled link, pm2 on s3
        state = tb.client.state()
        assert state["hosts"][topo.host("pm2").ip]["dpid"] == topo.switch("s3").dpid
        res = tb.ping_all(count=3)
        assert sorted(f"{a}->{b}" for (a, b), r in res.items() if r.received != 3) == []
        # TCP across the servers (the path a VNC session and a migration take)
        bw = tb.iperf("tcl1", "pm2", seconds=2)
        assert bw["mbit_s"] > 0, bw
        dumps = tb.flow_dumps()
        assert topo.host("pm2").ip in dumps["s3"]
    finally:
        finish(tb, before)
    assert not cluster.leftovers()


def test_a_namespace_of_that_name_is_refused_and_left_alone(tmp_path):
    """Someone's ``ovct-srv2`` exists: the run stops before the network,
    names it, and neither deletes it nor leaves anything of its own."""
    subprocess.run(["ip", "netns", "add", "ovct-srv2"], check=True)
    try:
        before = machine.snapshot()
        tb = Testbed(paper_topology(), run_dir=str(tmp_path / "run"), kvm=False,
                     cluster=ClusterRun(standins=1))
        with pytest.raises(ClusterError, match="ovct-srv2 exists already"):
            tb.__enter__()
        assert os.path.exists("/run/netns/ovct-srv2")
        assert not tb.leftovers()
        assert not machine.left_behind(before)
    finally:
        subprocess.run(["ip", "netns", "del", "ovct-srv2"], check=True)
