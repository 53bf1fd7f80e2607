"""Cluster mode on this machine: Mininet's cluster edition with a stand-in
second server (its own namespace, Open vSwitch and sshd).  Proves the code
path a real two-machine run takes: remote nodes as shells over ssh, the
link between servers as an ssh Ethernet tunnel, the remote switches
reaching the controller through an ``ssh -R`` forward to their own
127.0.0.1."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

from controller import events as E
from testbed import machine, ovs
from testbed.cluster import ClusterError, ClusterRun
from testbed.net import Testbed
from testbed.topology import paper_topology
from testbed.wait import wait_until
from tests.integration.conftest import finish, paper_policy, start, wait_event


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
        # a ping left running on pm2 (over there) is stopped by its PID there:
        # SIGINT reaches it, it prints its summary, nothing is left
        bg = tb.start_ping("pm2", "tcl1", interval=0.05)
        wait_until(lambda: os.path.getsize(bg.path) > 200, 30, "pm2's ping to answer")
        r = bg.stop()
        assert r.transmitted >= 3 and r.received >= r.transmitted - 1, r.raw
        # a file (the guest image's way to another server) is copied only
        # where it differs: the stand-in's /run/openvswitch is its own, so a
        # file there is not this machine's file
        path = f"/run/openvswitch/ovct-sync-{os.getpid()}.bin"
        with open(path, "wb") as f:
            f.write(os.urandom(1 << 20))
        try:
            assert cluster.sync_file("srv2", path) is True
            there = cluster.run_on("srv2", ["sha256sum", path]).stdout.split()[0]
            assert there == hashlib.sha256(open(path, "rb").read()).hexdigest()
            assert cluster.sync_file("srv2", path) is False     # the same now: not copied
            assert cluster.run_on("srv2", ["sh", "-c", f"ls {path}.ovct-* 2>/dev/null; true"]
                                  ).stdout == ""                 # no temporary file left
        finally:
            os.unlink(path)
            cluster.run_on("srv2", ["rm", "-f", path])
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


def _rx_bytes(intf: str) -> int:
    with open(f"/sys/class/net/{intf}/statistics/rx_bytes") as f:
        return int(f.read())


def test_kvm_hosts_over_two_servers_and_ovct_migrates_across_the_tunnel(attach):
    """pm2 (and its guests) on the stand-in server: its libvirtd runs there
    in pm2's namespaces and is reached here through an ``ssh -L`` forward
    of its socket.  A thin client's VNC session from tcl1 makes OVCT move
    vm1 to pm1 on this server: the migration stream crosses the s3-s1 ssh
    tunnel, and vm1 answers from pm1 afterwards."""
    before = machine.snapshot()
    topo = paper_topology()
    cluster = ClusterRun(standins=1)
    tb = attach(start(topo, "cluster-kvm", kvm=True, cluster=cluster, ovct=paper_policy()))
    session = None
    try:
        assert tb.host("pm2").isRemote and not getattr(tb.host("pm1"), "isRemote", False)
        uris = {sp.name: sp.uri for sp in tb.fleet.host_specs()}
        assert uris["pm2"].endswith("/pm2.fwd.sock") and "pm1/run/libvirt-sock" in uris["pm1"]
        assert tb.hv.placement() == {"vm1": "pm2", "vm2": "pm2"}
        # vm1's VNC server, read on pm2 over there
        assert tb.rfb_greeting("vm1").startswith("RFB 003.")
        (tunnel,) = [ln for ln in tb.net.links if getattr(ln, "tunnel", None) is not None]
        here = next(i for i in (tunnel.intf1, tunnel.intf2) if i.node.name == "s1")
        rx0 = _rx_bytes(here.name)
        tail = E.Tail(tb.rundir.events)
        tb.rundir.ensure(tb.rundir.thinclients)
        log = tb.rundir.thinclient_log("tcl1", "vm1", 0)
        session = tb.start_session("tcl1", "vm1", log, duration_s=600)
        end = wait_event(tail, ("ovct_migration_done", "ovct_migration_failed"), 400, vm="vm1")
        rx = _rx_bytes(here.name) - rx0
        with open(os.path.join(tb.run_dir, "tunnel.json"), "w") as f:   # for the record
            json.dump({"s1_rx_from_tunnel_bytes": rx, "migration": end}, f, indent=1)
        assert end["type"] == "ovct_migration_done", end
        assert (end["from"], end["to"]) == ("pm2", "pm1"), end
        # vm1's memory came over the tunnel: s1 received there at least what
        # QEMU sent (the session's own traffic crosses it too)
        assert end["transferred_bytes"] and rx >= end["transferred_bytes"], (rx, end)
        wait_until(lambda: tb.client.state()["hosts"].get(topo.vm("vm1").ip, {}).get("dpid")
                   == topo.switch("s2").dpid, 30, "the controller to see vm1 behind s2")
        assert tb.hv.placement() == {"vm1": "pm1", "vm2": "pm2"}
        assert tb.ping("tcl1", "vm1", count=5, interval=0.1).received == 5
        assert tb.ping("tcl2", "vm2", count=5, interval=0.1).received == 5
        # the session kept receiving screen updates after the move
        t_done = time.monotonic()
        wait_until(lambda: any(r.get("event") == "update" and r["mono"] > t_done
                               for r in E.read(log)), 60, "screen updates after the move",
                   interval=0.5)
    finally:
        if session is not None and session.poll() is None:
            session.send_signal(signal.SIGTERM)
            session.wait(15)
        finish(tb, before)
    assert not cluster.leftovers()
