"""Cluster-mode options are checked before anything starts (pure: no
server is started, nothing is run)."""
import argparse

import pytest

from testbed import cli
from testbed import net as tbnet
from testbed.cluster import LOCAL, ClusterError, ClusterRun, Server, parse_server
from testbed.topology import TopologyError, multisite_topology, paper_topology


def _args(**over):
    base = dict(servers=None, ssh_config=None, standin=0, place=[])
    base.update(over)
    return argparse.Namespace(**base)


def test_no_cluster_option_means_no_cluster_mode():
    assert cli._cluster(_args(), paper_topology()) is None


def test_standins_are_named_and_placed():
    run = cli._cluster(_args(standin=2), multisite_topology(sites=4))
    assert run.names == [LOCAL, "srv2", "srv3"]
    assert [s.address for s in run.servers] == ["10.254.2.2", "10.254.3.2"]
    assert [run.where[f"e{i}"] for i in range(1, 5)] == [LOCAL, "srv2", "srv3", LOCAL]
    assert run.node_opts("t2x1") == {"server": "srv2", "serverIP": "10.254.2.2",
                                     "user": "root"}
    assert run.node_opts("e1") == {"server": "localhost", "user": "root"}


def test_real_servers_with_users(tmp_path):
    conf = tmp_path / "ssh_config"
    conf.write_text("Host *\n")
    run = cli._cluster(_args(servers="alice@b.example,10.1.1.3", ssh_config=str(conf),
                             place=["s2=10.1.1.3"]), paper_topology())
    assert run.servers == [Server("b.example", "b.example", "alice"),
                           Server("10.1.1.3", "10.1.1.3", "root")]
    assert (run.where["s2"], run.where["pm1"], run.where["s3"]) == ("10.1.1.3", "10.1.1.3",
                                                                    "b.example")


@pytest.mark.parametrize("over,err,words", [
    (dict(place=["s3=srv2"]), tbnet.TestbedError, "at least one other server"),
    (dict(standin=1, place=["s3"]), tbnet.TestbedError, "SWITCH=SERVER"),
    (dict(standin=1, place=["s9=srv2"]), TopologyError, "'s9'"),
    (dict(standin=1, place=["s3=srv7"]), TopologyError, "'srv7'"),
    (dict(standin=-1), tbnet.TestbedError, "--standin"),
    (dict(standin=1, servers="h2"), tbnet.TestbedError, "either"),
    (dict(servers="a@b@c"), tbnet.TestbedError, "user@host"),
    (dict(servers="h2,h2"), tbnet.TestbedError, "named twice"),
    (dict(servers="local"), tbnet.TestbedError, "named twice"),
    (dict(servers="h2", ssh_config="/nonexistent/ssh_config"), tbnet.TestbedError, "no such file"),
])
def test_bad_cluster_options_name_what_is_wrong(over, err, words):
    with pytest.raises((err, ClusterError), match=words):
        cli._cluster(_args(**over), paper_topology())


def test_a_kvm_host_on_another_server_is_a_remote_node_reached_through_a_forward(tmp_path):
    """pm2 (on s3) goes to the stand-in: its node class is the remote KVM
    host, and its libvirtd is reached here through the forwarded socket;
    pm1 stays a local KvmHost reached through its own socket."""
    from controller.rundir import RunDir
    from testbed.fleet import KvmFleet
    from testbed.kvmhost import KvmHost, RemoteKvm
    topo = paper_topology()
    cluster = ClusterRun(standins=1)
    cluster.place(topo)
    fleet = KvmFleet(topo, RunDir(str(tmp_path / "run")), "/run/ovct/x", "python",
                     cluster=cluster)
    assert (fleet.server_of("pm1"), fleet.server_of("pm2")) == (None, "srv2")
    opts = fleet.host_opts()
    assert opts["pm1"]["cls"] is KvmHost
    assert issubclass(opts["pm2"]["cls"], RemoteKvm) and issubclass(opts["pm2"]["cls"], KvmHost)
    uris = {sp.name: sp.uri for sp in fleet.host_specs()}
    assert uris == {"pm1": "qemu+unix:///system?socket=/run/ovct/x/pm1/run/libvirt-sock",
                    "pm2": "qemu+unix:///system?socket=/run/ovct/x/pm2.fwd.sock"}
    # without cluster mode every KVM host is here
    plain = KvmFleet(topo, RunDir(str(tmp_path / "run")), "/run/ovct/x", "python")
    assert plain.server_of("pm2") is None and plain.host_opts()["pm2"]["cls"] is KvmHost


def test_parse_server():
    assert parse_server("h") == Server("h", "h", "root")
    assert parse_server("bob@10.0.0.9") == Server("10.0.0.9", "10.0.0.9", "bob")
    for bad in ("", "bob@", "a b"):
        with pytest.raises(ClusterError):
            parse_server(bad)


def test_the_cluster_line_counts_the_tunnels():
    topo = paper_topology()
    run = ClusterRun(standins=1)
    run.place(topo)
    line = cli.cluster_line(topo, run)
    assert line == ("cluster: local: 2 switches (s1, s2), 3 hosts; srv2 (stand-in): "
                    "1 switches (s3), 1 hosts; 1 switch links cross servers (ssh tunnels)")


def test_another_server_missing_kvm_tools_is_told_what_to_install():
    from testbed import preflight
    cmd = preflight.remote_probe()
    assert cmd[:2] == ["sh", "-c"] and "libvirtd" in cmd[2] and "qemu-system-x86_64" in cmd[2]
    assert preflight.remote_missing("srv2", "") is None
    msg = preflight.remote_missing("srv2", "libvirtd\nnft\n")
    assert msg.startswith("server srv2 lacks libvirtd, nft for its KVM hosts")
    assert "apt-get install -y libvirt-daemon nftables" in msg


def test_remote_shells_end_on_sighup_even_when_started_with_it_ignored():
    """Mininet ends a remote shell (ssh -tt) with SIGHUP: its processes get
    SIGHUP back as by default, in their own process group, even from a
    caller that ignores it (nohup; stopping the network hung on that)."""
    import signal
    import subprocess
    from testbed.cluster import _ssh_mixin
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        p = subprocess.run(["sh", "-c", "grep SigIgn /proc/$$/status; ps -o pgid= -p $$; echo $$"],
                           preexec_fn=_ssh_mixin(None)._ignoreSignal, capture_output=True,
                           text=True, check=True)
        plain = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True,
                               text=True, check=True)
    finally:
        signal.signal(signal.SIGHUP, old)
    sigign, pgid, pid = p.stdout.split("\n")[:3]
    assert int(plain.stdout.split()[1], 16) & 1          # the caller's: ignored
    assert not int(sigign.split()[1], 16) & 1            # theirs: not
    assert pgid.strip() == pid.strip()                   # their own group


def test_ovct_run_takes_the_cluster_options_and_refuses_bad_ones_before_starting(
        monkeypatch, capsys):
    from testbed import ROOT
    paper = f"{ROOT}/experiments/scenarios/paper.yaml"
    seen = {}

    def run_scenario(scn, out, **kw):
        seen.update(kw)
        raise RuntimeError("stop here: nothing may start in the unit tier")
    monkeypatch.setattr(cli, "run_scenario", run_scenario)
    assert cli.main(["run", paper, "--standin", "1", "--place", "s9=srv2"]) == 2
    assert "s9" in capsys.readouterr().err and not seen
    with pytest.raises(RuntimeError, match="stop here"):
        cli.main(["run", paper, "--standin", "1", "--out", "/nonexistent/x"])
    cluster = seen["cluster"]
    assert [s.name for s in cluster.servers] == ["srv2"]
    assert cluster.where["pm2"] == "srv2" and cluster.where["pm1"] == "local"
