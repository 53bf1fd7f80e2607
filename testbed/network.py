"""The emulated data network: Mininet hosts and Open vSwitch switches built
from a pure :class:`testbed.topology.Topology`, prepared for the userspace
datapath, and the waits that say it is ready (every switch connected, every
link discovered, every host learnt by the controller)."""
from __future__ import annotations

import logging
import os
import subprocess
import time
from functools import partial

from testbed import cluster as cluster_mod
from testbed import ovs, procs
from testbed.controller_proc import ControllerClient
from testbed.probes import reap
from testbed.topology import Topology
from testbed.wait import WaitTimeout, size_deadline, wait_until

LOG = logging.getLogger("ovct.testbed")


class NetworkError(RuntimeError):
    pass


def must(node, cmd: list[str]) -> str:
    """Run ``cmd`` in a Mininet node; its failure is an error (``cmd()``
    would hide the exit code)."""
    out, err, rc = node.pexec(cmd)
    if rc != 0:
        raise NetworkError(f"{node.name}: {' '.join(cmd)} failed ({rc}): {err.strip()}")
    return out


def run_all(nodes, command, timeout: float = 60.0) -> None:
    """Run ``command(node)`` in every node at the same time; any failure is
    an error naming the node (all are reaped either way)."""
    procs = [(n, n.popen(command(n), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)) for n in nodes]
    failed = []
    try:
        for n, proc in procs:
            _out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                failed.append(f"{n.name}: {' '.join(command(n))} failed "
                              f"({proc.returncode}): {err.strip()}")
    finally:
        for _n, proc in procs:
            reap(proc)
    if failed:
        raise NetworkError("; ".join(failed))


class EmulatedNetwork:
    """``host_opts``: extra Mininet node options per host name (the KVM
    hosts' class and directories)."""

    def __init__(self, topology: Topology, client: ControllerClient, datapath: str,
                 link_bw: float | None = None, link_delay: str | None = None,
                 timeout: float = 60.0, cluster=None, owner: str = ""):
        """``cluster``: a :class:`testbed.cluster.ClusterRun` whose servers are
        up (cluster mode), or None (every node here).  ``owner``: the tag
        put on every bridge (:func:`testbed.ovs.tag_bridges`)."""
        self.topology = topology
        self.cluster = cluster
        self.client = client
        self.datapath = datapath
        self.link_bw = link_bw
        self.link_delay = link_delay
        self.timeout = timeout
        self.owner = owner
        self.net = None
        #: every node's shell as we started it: pid -> (start time, name)
        #: (a node on another server: its ssh here, whose pid is ours)
        self.shells: dict[int, tuple | None] = {}
        self.intfs: list[str] = []
        self.lldp_nudged_ports: list[tuple[str, int]] = []
        #: seconds per start-up step (build, start, hosts_configured,
        #: switches_connected, links_discovered, hosts_learnt)
        self.startup_s: dict[str, float] = {}
        self._last_lap = time.monotonic()

    # -- bring-up ----------------------------------------------------------------
    def start(self, controller_port: int, host_opts: dict | None = None) -> None:
        # Debian's Mininet is importable only in the project's venv (system
        # site packages): imported when a network starts, so the pure parts
        # of the testbed load anywhere
        from mininet.link import Link, TCLink
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController

        from testbed.mn_topos import DataTopo

        self._last_lap = time.monotonic()
        setLogLevel(os.environ.get("OVCT_MININET_LOG", "warning"))
        link_opts = {}
        if self.link_bw:
            link_opts["bw"] = self.link_bw
        if self.link_delay:
            link_opts["delay"] = self.link_delay
        host_opts = dict(host_opts or {})
        switch_opts: dict = {}
        host_cls, switch_cls, link_cls = None, OVSSwitch, TCLink if link_opts else Link
        if self.cluster is not None:
            # Mininet's cluster edition: nodes on other servers over ssh,
            # links between servers as ssh tunnels
            if link_opts:
                raise NetworkError("cluster mode: link bandwidth/delay are not supported "
                                   "(Mininet's tunnels are plain links)")
            host_cls, switch_cls, link_cls = cluster_mod.mininet_classes(
                self.cluster.ssh_config)
            self.cluster.place(self.topology)
            for h in self.topology.hosts:
                host_opts[h.name] = {**self.cluster.node_opts(h.name),
                                     **host_opts.get(h.name, {})}
            switch_opts = {s.name: self.cluster.node_opts(s.name)
                           for s in self.topology.switches}
            self.cluster.start_forwards(controller_port)
        self.net = Mininet(
            topo=DataTopo(self.topology, link_opts=link_opts, host_opts=host_opts,
                          switch_opts=switch_opts),
            switch=partial(switch_cls, protocols="OpenFlow13", failMode="secure",
                           datapath=self.datapath),
            controller=None, link=link_cls,
            autoSetMacs=False, autoStaticArp=False, build=False,
            waitConnected=False, **({"host": host_cls} if host_cls else {}))
        class Controller(RemoteController):
            def checkListening(self):
                """Mininet checks with `echo A | telnet ...`, which reads
                our controller's binary OpenFlow HELLO into a UTF-8 decoder
                (UnicodeDecodeError, depending on its random xid); the
                testbed has waited until it listens already."""
        self.net.addController(Controller("c0", ip="127.0.0.1", port=controller_port))
        self.net.build()
        # every Mininet node has a shell: hosts, switches, and the remote
        # controller's node too (whose stop() does nothing)
        self.shells = {pid: procs.identity(pid) for pid in (
            n.shell.pid if getattr(n, "isRemote", False) else n.pid
            for n in (*self.net.hosts, *self.net.switches, *self.net.controllers))}
        self.intfs = [i.name for n in (*self.net.hosts, *self.net.switches)
                      for i in n.intfList() if i.name != "lo"]
        self._lap("build")
        self.net.start()
        self._lap("start")
        self.controller_port = controller_port
        # a restarted controller is back in <= 1 s; a busy one is not dropped
        for run, names in self._by_server([s.name for s in self.net.switches]):
            ovs.tag_bridges(names, self.owner, run=run)
            ovs.tune_controllers(names, run=run)
        # every host at once: one shell per host, all running side by side
        # (one after another, three commands per host took ~1 s per 10 hosts)
        run_all(self.net.hosts, lambda h: [
            "sh", "-ec",
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n"
            # userspace OVS does not fill in checksums: TCP hangs without this
            f"ethtool -K {h.defaultIntf().name} tx off rx off"])
        for h in self.net.hosts:
            if hasattr(h, "setup_bridge"):
                spec = self.topology.host(h.name)
                h.setup_bridge(spec.ip_cidr, spec.mac)
        # per-interface, in the root namespace: keeps IPv6 noise off the
        # switch ports (no global sysctl is touched); one sysctl for all
        for run, names in self._by_server([s.name for s in self.net.switches]):
            ports = [i.name for n in names for i in self.net[n].intfList() if i.name != "lo"]
            if ports:
                run(["sysctl", "-qw"] + [f"net.ipv6.conf.{p}.disable_ipv6=1" for p in ports])
        self._lap("hosts_configured")

    def _runner(self, node: str):
        """How to run a command on ``node``'s server (root namespace)."""
        if self.cluster is None:
            return cluster_mod.run_here
        srv = self.cluster.where.get(node, cluster_mod.LOCAL)
        return partial(self.cluster.run_on, srv)

    def _by_server(self, names: list[str], running_only: bool = False):
        """``names`` grouped by server: [(run, names)], this machine first
        (``running_only``: only servers still there: a stopped stand-in's
        bridges went with its Open vSwitch)."""
        if self.cluster is None:
            return [(cluster_mod.run_here, names)] if names else []
        groups: dict[str, list[str]] = {}
        for n in names:
            groups.setdefault(self.cluster.where.get(n, cluster_mod.LOCAL), []).append(n)
        return [(partial(self.cluster.run_on, srv), groups[srv])
                for srv in self.cluster.names if srv in groups
                and not (running_only and not self.cluster.running(srv))]

    def _lap(self, step: str) -> None:
        """Where start-up time goes: seconds since the previous step."""
        now = time.monotonic()
        self.startup_s[step] = round(now - self._last_lap, 3)
        self._last_lap = now

    def deadline(self) -> float:
        """This network's wait deadline: the base one, grown with its size."""
        t = self.topology
        return size_deadline(self.timeout, len(t.hosts), len(t.switches),
                             len(t.switch_links()))

    def wait_ready(self) -> None:
        topo = self.topology
        dpids = {s.dpid for s in topo.switches}
        n_links = 2 * len(topo.switch_links())
        state = self.client.state
        deadline = self.deadline()
        wait_until(lambda: set(state().get("switches", [])) >= dpids,
                   deadline, "every switch to connect to the controller",
                   describe=lambda: f"connected {state().get('switches')}")
        self._lap("switches_connected")
        try:
            wait_until(lambda: len(state().get("links", [])) >= n_links,
                       size_deadline(15, links=len(topo.switch_links())),
                       f"LLDP to discover {n_links} directed links")
        except WaitTimeout:
            self._nudge_lldp()
            wait_until(lambda: len(state().get("links", [])) >= n_links,
                       deadline, f"LLDP to discover {n_links} directed links",
                       describe=lambda: f"seen {state().get('links')}")
        self._lap("links_discovered")
        self.wait_hosts_learnt([h.name for h in topo.hosts])
        self._lap("hosts_learnt")

    def _nudge_lldp(self) -> None:
        """os-ken's LLDP discovery sometimes never sends on a port whose
        link came up while its switch was still registering (the port-status
        message is dropped): seen about once in 40 starts here.  Bouncing the
        silent ports gives it the port-status it missed.  Logged, and kept
        in :attr:`lldp_nudged_ports` (the testbed records it)."""
        seen = {tuple(src) for src, _dst in self.client.state().get("links", [])}
        silent = []
        for ln in self.topology.switch_links():
            for sw, port in ((ln.a, ln.a_port), (ln.b, ln.b_port)):
                if (self.topology.switch(sw).dpid, port) not in seen:
                    silent.append((sw, port))
        LOG.warning("LLDP silent on %s after 15 s: bouncing those ports", silent)
        for sw, port in silent:
            for st in ("down", "up"):
                subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-port", sw, str(port),
                                st], capture_output=True, check=True)
        self.lldp_nudged_ports = silent

    def wait_hosts_learnt(self, names: list[str], timeout: float | None = None) -> None:
        """Make every missing host announce itself (a gratuitous ARP), all
        at once, until the controller knows where each is; a host is
        announced again at most once a second, once its last arping ended."""
        last: dict[str, float] = {}
        running: dict[str, object] = {}

        def missing() -> list[str]:
            known = self.client.state().get("hosts", {})
            return [n for n in names if self.topology.host(n).ip not in known]

        def done() -> bool:
            gone = missing()
            now = time.monotonic()
            for n in gone:
                proc = running.get(n)
                if proc is not None and proc.poll() is None:
                    continue
                if now - last.get(n, -1e9) >= 1.0:
                    running[n] = self._announce(n)
                    last[n] = now
            return not gone
        try:
            wait_until(done, timeout or self.deadline(), "every host to be learnt",
                       describe=lambda: f"missing {missing()}", interval=0.2)
        finally:
            for proc in running.values():
                reap(proc)

    def _announce(self, name: str):
        """A gratuitous ARP from ``name`` (on its bridge, for a KVM host),
        in the background."""
        h = self.net[name]
        intf = h.announce_interface() if hasattr(h, "announce_interface") \
            else h.defaultIntf().name
        return h.popen(["arping", "-q", "-U", "-c", "1", "-w", "1", "-I", intf,
                        self.topology.host(name).ip],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    # -- nodes ---------------------------------------------------------------------
    def host(self, name: str):
        return self.net[name]

    # -- faults ---------------------------------------------------------------------
    def disconnect_switch(self, name: str) -> None:
        """Cut ``name``'s connection to the controller (it keeps its flows)."""
        ovs.disconnect_controller(name)

    def reconnect_switch(self, name: str) -> None:
        ovs.connect_controller(name, f"tcp:127.0.0.1:{self.controller_port}")

    def set_link(self, a: str, b: str, up: bool) -> None:
        """Take the link between nodes ``a`` and ``b`` down or up (both ends)."""
        self.net.configLinkStatus(a, b, "up" if up else "down")

    # -- forensics and tear-down -------------------------------------------------------
    def flows(self) -> dict[str, str]:
        """Every switch's flow tables as ``ovs-ofctl`` prints them."""
        return {s.name: ovs.dump_flows(s.name, run=self._runner(s.name))
                for s in self.topology.switches}

    def dump_flows(self, dest: str) -> str:
        os.makedirs(dest, exist_ok=True)
        for name, text in self.flows().items():
            with open(os.path.join(dest, f"{name}.txt"), "w") as fh:
                fh.write(text)
        return dest

    def stop(self) -> None:
        """Mininet removes its namespaces, links and bridges; safe twice.
        Mininet's RemoteController.stop() does nothing, so its node's shell
        is ended here (it leaked one bash per network before)."""
        if self.net is not None:
            net, self.net = self.net, None
            try:
                net.stop()
            finally:
                for c in net.controllers:
                    c.terminate()
                self._reap_shells()

    def _reap_shells(self, grace: float = 5.0) -> None:
        """Wait for the node shells Mininet ended.  Cluster mode's shells
        leave their own process group (Mininet's cluster classes detach
        them), so they end only once their terminal closes: not always by
        the time ``net.stop()`` returns.  One still there after ``grace``
        is killed, by PID, while it is still the process we started."""
        try:
            wait_until(lambda: not self._shells_alive(), grace, "the node shells to end",
                       interval=0.05)
        except WaitTimeout:
            for p in self._shells_alive():
                LOG.warning("node shell pid %d still there after %g s: killed", p.pid, grace)
                p.kill()

    def _shells_alive(self) -> list:
        """The node shells still running (a zombie is not)."""
        return [p for pid, seen in self.shells.items()
                if seen and (p := procs.same_process(pid, seen)) is not None]

    def leftovers(self) -> list[str]:
        """What of the network is still around (nothing after stop())."""
        out = [f"host shell pid {p.pid}" for p in self._shells_alive()]
        for run, names in self._by_server([s.name for s in self.topology.switches],
                                          running_only=True):
            bridges = set(ovs.list_bridges(run=run))
            out += [f"bridge {n}" for n in names if n in bridges]
        existing = set(os.listdir("/sys/class/net"))
        out += [f"interface {i}" for i in self.intfs if i in existing]
        return out
