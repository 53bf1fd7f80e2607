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


def test_cluster_mode_with_kvm_hosts_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(tbnet.TestbedError, match="--no-vms"):
        tbnet.Testbed(paper_topology(), run_dir=str(tmp_path / "run"), kvm=True,
                cluster=ClusterRun(standins=1))
    assert not (tmp_path / "run").exists()


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
