"""Preflight, set-up consistency, ping parsing, waiting."""
import os
import re
import subprocess

import pytest

from controller.rundir import RunDir
from testbed import ROOT, ovs, preflight
from testbed.probes import Probes
from testbed.topology import paper_topology
from testbed import ping as P
from testbed.wait import WaitTimeout, wait_until

PING_OUT = """PING 10.0.0.12 (10.0.0.12) 56(84) bytes of data.
[1795670000.100000] 64 bytes from 10.0.0.12: icmp_seq=1 ttl=64 time=0.512 ms
[1795670000.300000] 64 bytes from 10.0.0.12: icmp_seq=2 ttl=64 time=0.301 ms
[1795670000.700000] 64 bytes from 10.0.0.12: icmp_seq=4 ttl=64 time=0.355 ms

--- 10.0.0.12 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 602ms
rtt min/avg/max/mdev = 0.301/0.389/0.512/0.090 ms
"""


def test_ping_parse():
    r = P.parse(PING_OUT, "tcl1", "pm2")
    assert (r.transmitted, r.received, r.loss) == (4, 3, 1)
    assert r.rtts_ms == [0.512, 0.301, 0.355] and r.seqs == [1, 2, 4]
    assert r.rtt_min_ms == 0.301 and r.rtt_median_ms == 0.355
    assert r.times == [1795670000.1, 1795670000.3, 1795670000.7]
    assert r.max_gap_ms == pytest.approx(400, abs=0.01)


def test_ping_parse_total_loss():
    out = ("PING 10.0.0.9 (10.0.0.9) 56(84) bytes of data.\n\n--- 10.0.0.9 ping statistics ---\n"
           "3 packets transmitted, 0 received, 100% packet loss, time 2030ms\n")
    r = P.parse(out)
    assert (r.transmitted, r.received, r.rtt_median_ms) == (3, 0, None)


def test_ping_command():
    assert P.command("10.0.0.1", 20, 0.01) == ["ping", "-D", "-n", "-c", "20", "-i", "0.01",
                                               "-W", "1", "10.0.0.1"]
    assert "-c" not in P.command("10.0.0.1", None)
    with pytest.raises(ValueError):
        P.command("10.0.0.1", 0)


def test_setup_script_installs_every_debian_package_preflight_names():
    text = open(os.path.join(ROOT, "scripts", "setup.sh")).read()
    block = re.search(r"^DEB_PACKAGES=\((.*?)^\)", text, re.S | re.M).group(1)
    listed = {w for line in block.splitlines() for w in line.split("#", 1)[0].split()}
    wanted = {r.debian for r in preflight.NETWORK + preflight.KVM + preflight.CLUSTER
              + preflight.STANDIN if r.debian}
    assert wanted <= listed, wanted - listed


def test_preflight_names_missing_things_with_install_commands(monkeypatch):
    fake = (preflight.Requirement("no-such-cmd-ovct", "command", debian="ovct-pkg"),
            preflight.Requirement("no_such_module_ovct", "module", pip="ovct-mod"),
            preflight.Requirement("sh", "command", debian="dash"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(preflight.PreflightError) as exc:
        preflight.check(fake)
    msg = str(exc.value)
    assert "needs root" in msg
    assert "apt-get install -y ovct-pkg" in msg and "pip install ovct-mod" in msg
    assert "dash" not in msg     # present things are not listed


def test_preflight_passes_when_all_present(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    preflight.check((preflight.Requirement("sh", "command", debian="dash"),))


def test_datapath_choice():
    assert ovs.choose_datapath(True) == "kernel"
    assert ovs.choose_datapath(False) == "user"
    assert ovs.kernel_datapath_available("/nonexistent/ovct") is False


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, dt):
        self.t += dt


def test_wait_until_returns_value_and_times_out():
    clk = FakeClock()
    calls = []

    def pred():
        calls.append(clk.t)
        return "ok" if clk.t >= 1.0 else None
    assert wait_until(pred, 5, "x", interval=0.25, clock=clk, sleep=clk.sleep) == "ok"
    assert calls[-1] == 1.0
    clk = FakeClock()
    with pytest.raises(WaitTimeout, match="waiting for the moon: still 3"):
        wait_until(lambda: False, 2, "the moon", interval=0.5, clock=clk, sleep=clk.sleep,
                   describe=lambda: "still 3")
    assert clk.t == 2.0


class _LocalHost:
    """Runs commands in this namespace (a stand-in for a Mininet node)."""

    def __init__(self, argv):
        self.argv = argv

    def popen(self, cmd, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv, **kw)


def test_ping_helpers_reap_their_process_on_timeout_and_stop(tmp_path):
    started = []

    class Host(_LocalHost):
        def popen(self, cmd, **kw):
            p = super().popen(cmd, **kw)
            started.append(p)
            return p
    probes = Probes(paper_topology(), lambda name: Host(["sleep", "30"]), RunDir(str(tmp_path)))
    with pytest.raises(subprocess.TimeoutExpired):
        probes.ping_pairs([("tcl1", "pm1"), ("tcl2", "pm1")], timeout=0.3)
    assert len(started) == 2 and all(p.returncode is not None for p in started)
    # a background "ping" that ignores SIGINT is killed, and what it wrote is parsed
    probes = Probes(paper_topology(), lambda name: _LocalHost(
        ["sh", "-c", "trap '' INT; echo 'PING 10.0.0.11 (10.0.0.11) 56(84) bytes of data.'; "
                     "sleep 30"]), RunDir(str(tmp_path)))
    bg = probes.start_ping("tcl1", "pm1")
    res = bg.stop(timeout=0.5)
    assert bg.proc.returncode is not None and res.received == 0
    assert bg.path.startswith(str(tmp_path / "pings"))
