"""Bring up an emulated network with our controller, and take it down again.

    with Testbed(paper_topology()) as tb:
        print(tb.ping("tcl1", "pm2", count=20).rtt_median_ms)
        print(tb.hv.placement())          # {'vm1': 'pm2', 'vm2': 'pm2'}

On entry: preflight (root, dependencies), Open vSwitch started if needed,
the controller started as its own process (listening on 127.0.0.1 only),
the Mininet network built with OVS (OpenFlow 1.3, fail-mode secure,
userspace datapath unless the kernel module is loaded), checksum offload
and IPv6 turned off on host interfaces; then we wait -- with deadlines, no
fixed sleeps -- until every switch is connected, every link discovered and
every host learnt.  With ``kvm`` (the default when the topology has VMs)
the KVM hosts are :class:`testbed.kvmhost.KvmHost` nodes running their own
libvirtd, and each VM is defined and started on its initial host from the
shared guest image (KVM if it works, else TCG); we wait until every VM is
learnt by the controller and serves RFB on port 5900.  On exit, even after
an error or Ctrl-C: flows and state are saved for a post-mortem if something
failed, guests are destroyed, and exactly what we started is stopped, by PID;
Mininet removes its namespaces, links and bridges.

``Testbed`` is a facade over the parts that do the work, each usable on its
own: :class:`testbed.controller_proc.ControllerProcess` (the controller's
process) and :class:`~testbed.controller_proc.ControllerClient` (its state,
statistics and events), :class:`testbed.network.EmulatedNetwork` (Mininet
and OVS), :class:`testbed.fleet.KvmFleet` (libvirtds, guests, VNC) and
:class:`testbed.probes.Probes` (pings).  Files go where
:class:`controller.rundir.RunDir` says.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time

from controller import config as cfgmod
from controller.rundir import RunDir, default_run
from testbed import ovs, preflight, procs
from testbed.cluster import ClusterRun
from testbed.controller_proc import ControllerClient, ControllerProcess
from testbed.fleet import KvmFleet
from testbed.network import EmulatedNetwork
from testbed.probes import BackgroundPing, Probes
from testbed.topology import Topology
from testbed.wait import WaitTimeout, wait_until

LOG = logging.getLogger("ovct.testbed")


class TestbedError(RuntimeError):
    pass


class Testbed:
    __test__ = False  # not a pytest class

    def __init__(self, topology: Topology, run_dir: str | None = None,
                 stats_interval: float = 5.0, link_bw: float | None = None,
                 link_delay: str | None = None, timeout: float = 60.0,
                 python: str = sys.executable, kvm: bool | None = None,
                 accel: str | None = None, vm_boot_timeout: float = 120.0,
                 host_memory_mib: int = 2048, host_cpus: int = 2,
                 ovct: dict | None = None, cluster: ClusterRun | None = None):
        self.topology = topology.validate()
        self.kvm = bool(topology.vms) if kvm is None else kvm
        #: cluster mode (the network over several servers), or None
        self.cluster = cluster
        # the controller's policy; validated now so a bad one fails early
        self.policy = cfgmod.parse(ovct or {}, "ovct policy", cfgmod.Policy)
        self.rundir = RunDir(run_dir or default_run(topology.name, pid=True))
        self.run_dir = self.rundir.path
        if cluster is not None and not cluster.has_workdir:
            cluster.use_workdir(os.path.join(self.run_dir, "cluster"))
        self.stats_interval = stats_interval
        self.link_bw = link_bw
        self.link_delay = link_delay
        self.timeout = timeout
        self.python = python
        self.datapath: str | None = None
        self.controller_proc = ControllerProcess(self.rundir, python, stats_interval)
        self.client = ControllerClient(self.rundir, self.controller_proc)
        self.network: EmulatedNetwork | None = None
        self.probes = Probes(self.topology, self.host, self.rundir)
        state_root = os.path.join("/run/ovct", f"{os.getpid()}-{id(self) & 0xffff:x}")
        self.fleet = KvmFleet(self.topology, self.rundir, state_root, python, accel,
                              vm_boot_timeout, host_memory_mib, host_cpus,
                              cluster=cluster) if self.kvm else None
        self._meta: dict = {}

    # -- life cycle -------------------------------------------------------------
    def __enter__(self) -> "Testbed":
        try:
            self.start()
        except BaseException:
            self._post_mortem()
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._post_mortem()
        self.stop()

    def start(self) -> None:
        preflight.check(preflight.NETWORK + (preflight.KVM if self.kvm else ())
                        + (preflight.CLUSTER if self.cluster else ())
                        + (preflight.STANDIN if self.cluster and self.cluster.standins else ()))
        if self.link_delay and not ovs.netem_available():
            raise TestbedError(
                f"link delay {self.link_delay!r} needs the sch_netem qdisc, which "
                "this kernel does not have (tc qdisc ... netem fails); run without "
                "a link delay, or on a kernel with netem")
        ovs.ensure_running()
        clash = sorted(set(ovs.list_bridges()) & {s.name for s in self.topology.switches})
        if clash:
            raise TestbedError(ovs.clash_message(
                ovs.bridge_owners(clash), lambda pid: procs.identity(pid) is not None))
        self.datapath = ovs.choose_datapath(ovs.kernel_datapath_available())
        self.rundir.ensure()
        if self.fleet:
            self.fleet.prepare()
        self._write_meta()
        if self.cluster:
            self.cluster.start_servers()
            self._write_meta(cluster={"servers": self.cluster.names,
                                      "standins": len(self.cluster.standins),
                                      "placement": self.cluster.place(self.topology)})
        self.controller_proc.start(self.controller_config())
        self.network = EmulatedNetwork(self.topology, self.client, self.datapath,
                                       self.link_bw, self.link_delay, self.timeout,
                                       cluster=self.cluster,
                                       owner=ovs.owner_tag(os.getpid(), self.run_dir))
        self.network.start(self.controller_port,
                           self.fleet.host_opts() if self.fleet else None)
        self.network.wait_ready()
        self._write_meta(network_startup_s=self.network.startup_s)
        if self.network.lldp_nudged_ports:
            self._write_meta(lldp_nudged_ports=self.network.lldp_nudged_ports)
        if self.fleet:
            self.fleet.start(self.network, self.client)
            self._write_meta(libvirt_caps_s=round(self.fleet.caps_s, 3))

    def _write_meta(self, **extra) -> None:
        self._meta.update({
            "topology": self.topology.name, "datapath": self.datapath,
            "stats_interval": self.stats_interval, "link_bw": self.link_bw,
            "link_delay": self.link_delay, "kvm_hosts": self.kvm, "accel": self.accel,
            "accel_reason": self.fleet.accel_reason if self.fleet else None,
            "guest_image": self.fleet.image.path if self.fleet and self.fleet.image else None,
            **extra})
        self._meta.setdefault("started", time.time())
        self.rundir.write_json(self.rundir.testbed_meta, self._meta)

    def host_specs(self) -> list:
        """The hypervisor inventory: where each KVM host's libvirtd will be."""
        return self.fleet.host_specs() if self.fleet else []

    def controller_config(self) -> str:
        attach = {}
        for sp in self.host_specs():
            sw, port = self.topology.attachment(sp.name)
            attach[sp.name] = (self.topology.switch(sw).dpid, port)
        conf = cfgmod.ControllerConfig(
            ovct=self.policy,
            hypervisors=tuple(cfgmod.HypervisorEntry.of(sp, attach[sp.name])
                              for sp in self.host_specs()))
        path = self.rundir.controller_config
        with open(path, "w") as fh:
            fh.write(cfgmod.dump(conf))
        return path

    def stop(self) -> None:
        """Stop what we started; safe to call twice."""
        errors = []
        if self.network is not None and self.network.net is not None and self.fleet:
            try:
                errors += self.fleet.stop()
            except Exception as exc:  # keep going: the network and controller too
                errors.append(f"KVM hosts stop: {exc!r}")
        if self.network is not None:
            try:
                self.network.stop()
            except Exception as exc:  # keep going: the controller must stop too
                errors.append(f"mininet stop: {exc}")
        self.controller_proc.stop()
        if self.cluster:
            errors += self.cluster.stop()
        if self.fleet:
            shutil.rmtree(self.fleet.state_root, ignore_errors=True)
        if errors:
            raise TestbedError("; ".join(errors))

    def leftovers(self) -> list[str]:
        """What of ours is still around (should be nothing after stop())."""
        out = self.fleet.leftovers() if self.fleet else []
        if self.network is not None:
            out += self.network.leftovers()
        if self.cluster:
            out += self.cluster.leftovers()
        return out

    # -- the parts, as users of Testbed know them ---------------------------------------
    @property
    def net(self):
        """The Mininet network (None before start and after stop)."""
        return self.network.net if self.network else None

    @property
    def controller(self):
        """The controller's Popen (None when not running)."""
        return self.controller_proc.proc

    @property
    def controller_port(self) -> int | None:
        return self.controller_proc.port

    @property
    def hv(self):
        return self.fleet.hv if self.fleet else None

    @property
    def accel(self) -> str | None:
        return self.fleet.accel if self.fleet else None

    @property
    def vm_boot_s(self) -> dict[str, float]:
        return self.fleet.vm_boot_s if self.fleet else {}

    def host(self, name: str):
        return self.network.host(name)

    def ip(self, name: str) -> str:
        return self.probes.ip(name)

    def kvm_hosts(self) -> list:
        return self.fleet.hosts if self.fleet else []

    def wait_hosts_learnt(self, names: list[str], timeout: float | None = None) -> None:
        self.network.wait_hosts_learnt(names, timeout)

    def rfb_greeting(self, vm: str, from_host: str | None = None) -> str:
        return self.fleet.rfb_greeting(vm, from_host)

    def wait_vnc(self, vm: str, timeout: float = 60.0) -> str:
        return self.fleet.wait_vnc(vm, timeout)

    def vnc_restarts(self, vm: str) -> int:
        return self.fleet.vnc_restarts(vm)

    # -- the controller's view -----------------------------------------------------------
    def state(self) -> dict:
        return self.client.state()

    def totals(self) -> dict[tuple[int, str, str], tuple[int, int]]:
        """Cumulative (packets, bytes) per (dpid, class, destination)."""
        return self.client.totals()

    def polls(self) -> dict[int, int]:
        return self.client.polls()

    # -- faults (the fault-injection suite and the soak experiment) ------------------
    def restart_controller(self, crash: bool = True) -> float:
        """Kill the controller (SIGKILL when ``crash``, else a clean stop)
        and start it again on the same port with the same run directory and
        policy; wait until the new process has every switch back and every
        link rediscovered.  Returns how long that took (s)."""
        port = self.controller_proc.port
        if crash:
            self.controller_proc.crash()
        else:
            self.controller_proc.stop()
        t0 = time.monotonic()
        self.controller_proc.start(self.rundir.controller_config, port=port)
        pid = self.controller_proc.pid
        wait_until(lambda: self.client.state().get("pid") == pid, self.timeout,
                   "the restarted controller to write its state")
        self.network.wait_ready()
        return time.monotonic() - t0

    def disconnect_switch(self, name: str) -> None:
        self.network.disconnect_switch(name)

    def reconnect_switch(self, name: str) -> None:
        self.network.reconnect_switch(name)

    def set_link(self, a: str, b: str, up: bool) -> None:
        self.network.set_link(a, b, up)

    def flow_dumps(self) -> dict[str, str]:
        """Every switch's flow tables as ``ovs-ofctl`` prints them."""
        return self.network.flows()

    def set_ovct(self, on: bool, timeout: float = 10.0) -> dict:
        """Switch OVCT on or off in the running controller and wait until it
        has logged the switch; returns that event."""
        return self.client.set_ovct(on, timeout)

    def wait_fresh_stats(self, timeout: float | None = None) -> dict:
        """Wait until every switch has answered a statistics poll that was
        sent after this call (two completed polls later), and return the
        totals then."""
        return self.client.wait_fresh_stats([s.dpid for s in self.topology.switches],
                                            timeout or max(10.0, 4 * self.stats_interval))

    # -- probes ------------------------------------------------------------------------------
    def ping(self, src: str, dst: str, count: int = 10, interval: float = 0.2,
             wait: float = 1.0):
        return self.probes.ping(src, dst, count, interval, wait)

    def ping_pairs(self, pairs, count: int = 10, interval: float = 0.2, wait: float = 1.0,
                   batch: int | None = None):
        return self.probes.ping_pairs(pairs, count, interval, wait, batch=batch)

    def start_session(self, client: str, vm: str, log: str, port: int = 5900,
                      duration_s: float = 60.0, input_rate_hz: float = 2.0):
        return self.probes.start_session(client, vm, self.python, log, port, duration_s,
                                         input_rate_hz)

    def start_ping(self, src: str, dst: str, interval: float = 0.01,
                   log: str | None = None) -> BackgroundPing:
        return self.probes.start_ping(src, dst, interval, log)

    def ping_all(self, count: int = 1, sample: int | None = None, seed: int = 0):
        return self.probes.ping_all(count, sample, seed)

    def iperf(self, client: str, server: str, seconds: float = 3.0) -> dict:
        return self.probes.iperf(client, server, seconds)

    # -- forensics --------------------------------------------------------------
    def dump_flows(self, dest_dir: str | None = None) -> str:
        return self.network.dump_flows(dest_dir or self.rundir.flows)

    def _post_mortem(self) -> None:
        try:
            if self.net is not None:
                self.dump_flows(self.rundir.failure_flows())
        except Exception as exc:  # never mask the original error
            LOG.warning("could not dump flows: %s", exc)


__all__ = ["BackgroundPing", "Testbed", "TestbedError", "WaitTimeout"]
