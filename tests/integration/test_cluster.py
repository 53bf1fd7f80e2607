"""Cluster mode on this machine: Mininet's cluster edition with a stand-in
second server (its own namespace, Open vSwitch and sshd).  Proves the code
path a real two-machine run takes: remote nodes as shells over ssh, the
link between servers as an ssh Ethernet tunnel, the remote switches
reaching the controller through an ``ssh -R`` forward to their own
127.0.0.1."""
from testbed import machine, ovs
from testbed.cluster import ClusterRun
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
