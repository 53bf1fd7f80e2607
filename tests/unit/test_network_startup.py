"""Start-up that scales (testbed/network.py, probes.py, wait.py), with fake
Mininet nodes: hosts are configured and announced all at once, deadlines
grow with the network, connectivity can be sampled."""
import pytest

from testbed import network as N
from testbed.probes import all_pairs
from testbed.topology import multisite_topology, paper_topology
from testbed.wait import size_deadline


class FakeProc:
    def __init__(self, rc=0, err="", running=False):
        self.returncode, self.err, self.running = rc, err, running
        self.killed = False

    def poll(self):
        return None if self.running else self.returncode

    def communicate(self, timeout=None):
        self.running = False
        return "", self.err

    def kill(self):
        self.killed, self.running = True, False

    def wait(self, timeout=None):
        self.running = False
        return self.returncode


class FakeIntf:
    def __init__(self, name):
        self.name = name


class FakeHost:
    def __init__(self, name, on_popen=None, rc=0):
        self.name, self.on_popen, self.rc = name, on_popen, rc
        self.commands = []

    def defaultIntf(self):
        return FakeIntf(f"{self.name}-eth0")

    def popen(self, cmd, **kw):
        self.commands.append(cmd)
        if self.on_popen:
            self.on_popen(self, cmd)
        return FakeProc(self.rc, err=f"{self.name} says no" if self.rc else "")


def test_run_all_starts_every_node_before_waiting_and_names_the_failures():
    started = []
    hosts = [FakeHost(f"h{i}", on_popen=lambda h, c: started.append(h.name),
                      rc=1 if i == 2 else 0) for i in range(4)]
    with pytest.raises(N.NetworkError) as err:
        N.run_all(hosts, lambda h: ["true", h.name])
    assert started == ["h0", "h1", "h2", "h3"]
    assert "h2: true h2 failed (1): h2 says no" in str(err.value)
    assert "h1" not in str(err.value)


def test_reap_kills_what_still_runs():
    p = FakeProc(running=True)
    N.reap(p)
    assert p.killed
    done = FakeProc()
    N.reap(done)
    assert not done.killed


class FakeClient:
    def __init__(self):
        self.known = {}
        self.reads = 0

    def state(self):
        self.reads += 1
        return {"hosts": dict(self.known)}


def test_every_missing_host_is_announced_in_the_first_round():
    topo = multisite_topology(sites=6, clients=3, hosts=1, core=1)
    client = FakeClient()
    first_round = []

    def learnt(h, cmd):                # the controller learns a host from its ARP
        first_round.append(h.name)
        client.known[topo.host(h.name).ip] = {}
    net = N.EmulatedNetwork(topo, client, "user")
    net.net = {h.name: FakeHost(h.name, on_popen=learnt) for h in topo.hosts}
    net.wait_hosts_learnt([h.name for h in topo.hosts], timeout=5)
    assert sorted(first_round) == sorted(h.name for h in topo.hosts)   # each once
    assert all(c[0] == "arping" and "-U" in c for h in net.net.values() for c in h.commands)


def test_a_host_is_announced_again_only_after_its_arping_ended(monkeypatch):
    topo = paper_topology()
    client = FakeClient()
    net = N.EmulatedNetwork(topo, client, "user")
    net.net = {h.name: FakeHost(h.name) for h in topo.hosts}
    procs = []

    def announce(name):
        procs.append((name, FakeProc(running=True)))
        return procs[-1][1]
    monkeypatch.setattr(net, "_announce", announce)
    with pytest.raises(N.WaitTimeout) as err:
        net.wait_hosts_learnt(["tcl1"], timeout=1.5)
    # still running: never announced again, and reaped at the end
    assert [n for n, _ in procs] == ["tcl1"] and procs[0][1].killed
    assert "missing ['tcl1']" in str(err.value)


def test_deadlines_grow_with_the_network():
    assert size_deadline(60, hosts=4, switches=3, links=2) == 60
    assert size_deadline(60, hosts=3, switches=1, links=0) == 60       # never below base
    big = size_deadline(60, hosts=250, switches=62, links=80)
    assert big == pytest.approx(60 + 0.3 * 246 + 0.5 * 59 + 0.2 * 78)
    topo = multisite_topology(sites=25, clients=3, hosts=1, core=5)
    net = N.EmulatedNetwork(topo, FakeClient(), "user", timeout=60)
    assert net.deadline() == size_deadline(60, len(topo.hosts), len(topo.switches),
                                           len(topo.switch_links())) > 60


def test_all_pairs_or_a_reproducible_sample():
    names = ["a", "b", "c", "d"]
    assert len(all_pairs(names)) == 12 and ("a", "a") not in all_pairs(names)
    s1, s2 = all_pairs(names, sample=5, seed=3), all_pairs(names, sample=5, seed=3)
    assert s1 == s2 and len(set(s1)) == 5 and set(s1) <= set(all_pairs(names))
    assert s1 == sorted(s1)                        # in the names' order
    assert all_pairs(names, sample=50) == all_pairs(names)


def test_controllers_are_tuned_in_two_ovs_vsctl_calls(monkeypatch):
    from testbed import ovs
    calls = []

    class Res:
        def __init__(self, out=""):
            self.returncode, self.stdout, self.stderr = 0, out, ""

    def run(cmd, timeout=30):
        calls.append(cmd)
        return Res("[aa]\n[bb, cc]\n[]\n" if "get" in cmd else "")
    monkeypatch.setattr(ovs, "_run", run)
    ovs.tune_controllers(["s1", "s2", "s3"], max_backoff_ms=1000, inactivity_probe_ms=30000)
    assert len(calls) == 2
    assert calls[0].count("get") == 3 and "s3" in calls[0]
    sets = [calls[1][k + 3:k + 5] for k, a in enumerate(calls[1]) if a == "set"]
    assert [calls[1][k + 2] for k, a in enumerate(calls[1]) if a == "set"] == ["aa", "bb", "cc"]
    assert sets[0] == ["max_backoff=1000", "inactivity_probe=30000"]
    assert ovs.controller_uuids("[]\n") == []
