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
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from functools import partial

from testbed import ROOT, ovs, preflight
from testbed import ping as pingmod
from testbed.topology import KVM_HOST, Topology
from testbed.wait import WaitTimeout, wait_until

LOG = logging.getLogger("ovct.testbed")


class TestbedError(RuntimeError):
    pass


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_run_dir(prefix: str = "net") -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join(ROOT, "runs", f"{prefix}-{stamp}-{os.getpid()}")


class Testbed:
    __test__ = False  # not a pytest class

    def __init__(self, topology: Topology, run_dir: str | None = None,
                 stats_interval: float = 5.0, link_bw: float | None = None,
                 link_delay: str | None = None, timeout: float = 60.0,
                 python: str = sys.executable, kvm: bool | None = None,
                 accel: str | None = None, vm_boot_timeout: float = 120.0,
                 host_memory_mib: int = 2048, host_cpus: int = 2,
                 ovct: dict | None = None):
        self.topology = topology.validate()
        self.kvm = bool(topology.vms) if kvm is None else kvm
        self.accel_request = accel
        self.accel: str | None = None
        self.accel_reason: str | None = None
        self.vm_boot_timeout = vm_boot_timeout
        self.host_memory_mib = host_memory_mib
        self.host_cpus = host_cpus
        self.image = None
        self.hv = None
        self.vm_boot_s: dict[str, float] = {}
        # the controller's policy; validated now so a bad one fails early
        from controller import config as cfgmod
        self.policy = cfgmod.parse(ovct or {}, "ovct policy", cfgmod.Policy)
        self._state_root = os.path.join("/run/ovct", f"{os.getpid()}-{id(self) & 0xffff:x}")
        self.run_dir = os.path.abspath(run_dir or default_run_dir(topology.name))
        self.stats_interval = stats_interval
        self.link_bw = link_bw
        self.link_delay = link_delay
        self.timeout = timeout
        self.python = python
        self.net = None
        self.controller: subprocess.Popen | None = None
        self.controller_port: int | None = None
        self.datapath: str | None = None
        self._host_pids: list[int] = []
        self._intfs: list[str] = []

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
        preflight.check(preflight.NETWORK + (preflight.KVM if self.kvm else ()))
        if self.link_delay and not ovs.netem_available():
            raise TestbedError(
                f"link delay {self.link_delay!r} needs the sch_netem qdisc, which "
                "this kernel does not have (tc qdisc ... netem fails); run without "
                "a link delay, or on a kernel with netem")
        ovs.ensure_running()
        clash = sorted(set(ovs.list_bridges()) & {s.name for s in self.topology.switches})
        if clash:
            raise TestbedError(f"OVS bridges {clash} already exist (another run, or "
                               "something of yours?); not touching them")
        self.datapath = ovs.choose_datapath(ovs.kernel_datapath_available())
        os.makedirs(self.run_dir, exist_ok=True)
        if self.kvm:
            from testbed import accel, guest_image
            self.image = guest_image.build(log=LOG.info)
            self.accel, self.accel_reason = accel.choose(self.image.kernel, self.accel_request)
        self._write_meta()
        self._start_controller()
        self._start_network()
        self.wait_ready()
        if self.kvm:
            self._start_hypervisors()
            self._start_vms()

    def _write_meta(self) -> None:
        meta = {"topology": self.topology.name, "datapath": self.datapath,
                "stats_interval": self.stats_interval, "link_bw": self.link_bw,
                "link_delay": self.link_delay, "started": time.time(),
                "kvm_hosts": self.kvm, "accel": self.accel,
                "accel_reason": self.accel_reason,
                "guest_image": self.image.path if self.image else None}
        with open(os.path.join(self.run_dir, "testbed.json"), "w") as fh:
            json.dump(meta, fh, indent=1)

    def host_specs(self) -> list:
        """The hypervisor inventory: where each KVM host's libvirtd will be."""
        from controller.hypervisor import HostSpec
        from testbed.kvmhost import socket_path
        if not self.kvm:
            return []
        return [HostSpec(h.name, f"qemu+unix:///system?socket="
                         f"{socket_path(os.path.join(self._state_root, h.name))}",
                         h.ip, self.host_memory_mib, self.host_cpus)
                for h in self.topology.hosts_by_role(KVM_HOST)]

    def controller_config(self) -> str:
        from controller import config as cfgmod
        conf = cfgmod.ControllerConfig(
            ovct=self.policy,
            hypervisors=tuple(cfgmod.HypervisorEntry(**vars(sp)) for sp in self.host_specs()))
        path = os.path.join(self.run_dir, "controller.yaml")
        with open(path, "w") as fh:
            fh.write(cfgmod.dump(conf))
        return path

    def _start_controller(self) -> None:
        self.controller_port = free_tcp_port()
        config = self.controller_config()
        log = open(os.path.join(self.run_dir, "controller.out"), "ab")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        self.controller = subprocess.Popen(
            [self.python, "-m", "controller", "--host", "127.0.0.1",
             "--port", str(self.controller_port), "--run-dir", self.run_dir,
             "--stats-interval", str(self.stats_interval),
             "--config", config,
             "--log-file", os.path.join(self.run_dir, "controller.log")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)   # Ctrl-C goes to us; we stop it by PID
        log.close()

        def listening() -> bool:
            if self.controller.poll() is not None:
                raise TestbedError("controller exited with code "
                                   f"{self.controller.returncode}; see "
                                   f"{self.run_dir}/controller.out")
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex(("127.0.0.1", self.controller_port)) == 0
        wait_until(listening, 30, "the controller to listen")

    def _start_network(self) -> None:
        from mininet.link import Link, TCLink
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController

        from testbed.mn_topos import DataTopo

        setLogLevel(os.environ.get("OVCT_MININET_LOG", "warning"))
        link_opts = {}
        if self.link_bw:
            link_opts["bw"] = self.link_bw
        if self.link_delay:
            link_opts["delay"] = self.link_delay
        host_opts = {}
        if self.kvm:
            from testbed.kvmhost import KvmHost
            for h in self.topology.hosts_by_role(KVM_HOST):
                host_opts[h.name] = {
                    "cls": KvmHost, "state_dir": os.path.join(self._state_root, h.name),
                    "log_dir": os.path.join(self.run_dir, "hosts", h.name)}
        self.net = Mininet(
            topo=DataTopo(self.topology, link_opts=link_opts, host_opts=host_opts),
            switch=partial(OVSSwitch, protocols="OpenFlow13", failMode="secure",
                           datapath=self.datapath),
            controller=None, link=TCLink if link_opts else Link,
            autoSetMacs=False, autoStaticArp=False, build=False,
            waitConnected=False)
        self.net.addController(RemoteController(
            "c0", ip="127.0.0.1", port=self.controller_port))
        self.net.build()
        self._host_pids = [h.pid for h in self.net.hosts]
        self._intfs = [i.name for n in (*self.net.hosts, *self.net.switches)
                       for i in n.intfList() if i.name != "lo"]
        self.net.start()
        for h in self.net.hosts:
            intf = h.defaultIntf().name
            self._must(h, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            self._must(h, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
            # userspace OVS does not fill in checksums: TCP hangs without this
            self._must(h, ["ethtool", "-K", intf, "tx", "off", "rx", "off"])
            if hasattr(h, "setup_bridge"):
                spec = self.topology.host(h.name)
                h.setup_bridge(spec.ip_cidr, spec.mac)
        for s in self.net.switches:
            for i in s.intfList():
                if i.name != "lo":
                    # per-interface, in the root namespace: keeps IPv6 noise
                    # off the switch ports (no global sysctl is touched)
                    subprocess.run(["sysctl", "-qw",
                                    f"net.ipv6.conf.{i.name}.disable_ipv6=1"],
                                   capture_output=True)

    @staticmethod
    def _must(node, cmd: list[str]) -> str:
        out, err, rc = node.pexec(cmd)
        if rc != 0:
            raise TestbedError(f"{node.name}: {' '.join(cmd)} failed ({rc}): {err.strip()}")
        return out

    def wait_ready(self) -> None:
        topo = self.topology
        dpids = {s.dpid for s in topo.switches}
        n_links = 2 * len(topo.switch_links())
        wait_until(lambda: set(self.state().get("switches", [])) >= dpids,
                   self.timeout, "every switch to connect to the controller",
                   describe=lambda: f"connected {self.state().get('switches')}")
        try:
            wait_until(lambda: len(self.state().get("links", [])) >= n_links,
                       15, f"LLDP to discover {n_links} directed links")
        except WaitTimeout:
            self._nudge_lldp()
            wait_until(lambda: len(self.state().get("links", [])) >= n_links,
                       self.timeout, f"LLDP to discover {n_links} directed links",
                       describe=lambda: f"seen {self.state().get('links')}")
        self.wait_hosts_learnt([h.name for h in topo.hosts])

    def _nudge_lldp(self) -> None:
        """os-ken's LLDP discovery sometimes never sends on a port whose
        link came up while its switch was still registering (the port-status
        message is dropped): seen about once in 40 starts here.  Bouncing the
        silent ports gives it the port-status it missed.  Logged, and
        recorded in testbed.json."""
        seen = {tuple(src) for src, _dst in self.state().get("links", [])}
        silent = []
        for ln in self.topology.switch_links():
            for sw, port in ((ln.a, ln.a_port), (ln.b, ln.b_port)):
                if (self.topology.switch(sw).dpid, port) not in seen:
                    silent.append((sw, port))
        LOG.warning("LLDP silent on %s after 15 s: bouncing those ports", silent)
        for sw, port in silent:
            for state in ("down", "up"):
                subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-port", sw, str(port),
                                state], capture_output=True, check=True)
        path = os.path.join(self.run_dir, "testbed.json")
        meta = json.load(open(path))
        meta["lldp_nudged_ports"] = silent
        with open(path, "w") as fh:
            json.dump(meta, fh, indent=1)

    def wait_hosts_learnt(self, names: list[str], timeout: float | None = None) -> None:
        """Make each host announce itself (gratuitous ARP) until the
        controller knows where it is; re-announce at most once a second."""
        last: dict[str, float] = {}

        def missing() -> list[str]:
            known = self.state().get("hosts", {})
            return [n for n in names if self.topology.host(n).ip not in known]

        def done() -> bool:
            gone = missing()
            now = time.monotonic()
            for n in gone:
                if now - last.get(n, -1e9) >= 1.0:
                    h = self.net[n]
                    intf = (h.announce_interface() if hasattr(h, "announce_interface")
                            else h.defaultIntf().name)
                    h.pexec(["arping", "-q", "-U", "-c", "1", "-I", intf,
                             self.topology.host(n).ip])
                    last[n] = now
            return not gone
        wait_until(done, timeout or self.timeout, "every host to be learnt",
                   describe=lambda: f"missing {missing()}")

    # -- KVM hosts and VMs ---------------------------------------------------------
    def kvm_hosts(self) -> list:
        if self.net is None or not self.kvm:
            return []
        return [self.net[h.name] for h in self.topology.hosts_by_role(KVM_HOST)]

    def _start_hypervisors(self) -> None:
        from controller.libvirt_hv import LibvirtHypervisor
        run_id = os.path.basename(self.run_dir)
        for h in self.kvm_hosts():
            h.start_libvirtd(run_id)
        specs = self.host_specs()
        assert [sp.uri for sp in specs] == [h.uri for h in self.kvm_hosts()]
        self.hv = LibvirtHypervisor(specs)
        with open(os.path.join(self.run_dir, "hypervisors.json"), "w") as fh:
            json.dump([vars(sp) for sp in specs], fh, indent=1)

        def reachable(h) -> bool:
            if not h.libvirtd_alive():
                raise TestbedError(f"libvirtd of {h.name} exited; see {h.log_dir}")
            try:
                self.hv.domains(h.name)
                return True
            except Exception:
                return False
        for h in self.kvm_hosts():
            wait_until(lambda: reachable(h), 30, f"libvirtd of {h.name}")

    def domain_xml(self, vm) -> str:
        from testbed.libvirt_config import domain_xml
        logs = os.path.join(self.run_dir, "vms")
        os.makedirs(logs, exist_ok=True)
        return domain_xml(vm, self.image.kernel, self.image.initrd, self.image.rootfs,
                          self.accel, os.path.join(logs, f"{vm.name}-console.log"))

    def _start_vms(self) -> None:
        started = {}
        for vm in self.topology.vms:
            conn = self.hv.open(vm.host)
            try:
                conn.defineXML(self.domain_xml(vm)).create()
            finally:
                conn.close()
            started[vm.name] = time.monotonic()
            self.net[vm.host].note_qemu_pids()
        for vm in self.topology.vms:
            wait_until(lambda: vm.ip in self.state().get("hosts", {}),
                       self.vm_boot_timeout, f"{vm.name} to boot and be learnt",
                       interval=0.2)
            self.wait_vnc(vm.name, self.vm_boot_timeout)
            self.vm_boot_s[vm.name] = time.monotonic() - started[vm.name]
        with open(os.path.join(self.run_dir, "vm_boot.json"), "w") as fh:
            json.dump({"accel": self.accel, "boot_to_vnc_s": self.vm_boot_s}, fh, indent=1)

    def rfb_greeting(self, vm: str, from_host: str | None = None) -> str:
        """The RFB greeting of a VM's VNC server, read from ``from_host``'s
        namespace.  By default from the KVM host the VM runs on: that
        connection stays on the host's bridge, so it neither crosses the
        OpenFlow network nor looks like a thin client to OVCT."""
        src = from_host or (self.hv.locate(vm) if self.hv else None) or self.topology.vm(vm).host
        env = dict(os.environ, PYTHONPATH=ROOT)
        out, _err, _rc = self.host(src).pexec(
            [self.python, "-m", "testbed.rfb", self.topology.vm(vm).ip], env=env)
        return out.strip()

    def wait_vnc(self, vm: str, timeout: float = 60.0) -> str:
        def greeted():
            text = self.rfb_greeting(vm)
            return text if text.startswith("RFB 003.") else None
        return wait_until(greeted, timeout, f"the VNC server of {vm}", interval=0.5)

    def _stop_hypervisors(self) -> list[str]:
        problems = []
        for h in self.kvm_hosts():
            h.note_qemu_pids()
            if self.hv is not None and h.libvirtd_alive():
                try:
                    conn = self.hv.open(h.name)
                    try:
                        for dom in conn.listAllDomains():
                            if dom.isActive():
                                dom.destroy()
                    finally:
                        conn.close()
                except Exception as exc:
                    problems.append(f"{h.name}: could not destroy guests: {exc}")
            problems += h.stop_libvirtd()
        if self.hv is not None:
            self.hv.close()
        return problems

    def stop(self) -> None:
        """Stop what we started; safe to call twice."""
        errors = []
        if self.net is not None and self.kvm:
            self._kvm_left = self.kvm_hosts()
            errors += self._stop_hypervisors()
        if self.net is not None:
            try:
                self.net.stop()
            except Exception as exc:  # keep going: the controller must stop too
                errors.append(f"mininet stop: {exc}")
            self.net = None
        if self.controller is not None:
            if self.controller.poll() is None:
                self.controller.send_signal(signal.SIGTERM)
                try:
                    self.controller.wait(10)
                except subprocess.TimeoutExpired:
                    self.controller.kill()
                    self.controller.wait(5)
            self.controller = None
        if self.kvm:
            shutil.rmtree(self._state_root, ignore_errors=True)
        if errors:
            raise TestbedError("; ".join(errors))

    def leftovers(self) -> list[str]:
        """What of ours is still around (should be nothing after stop())."""
        out = []
        for h in getattr(self, "_kvm_left", []):
            out += h.leftovers()
        if self.kvm and os.path.exists(self._state_root):
            out.append(f"state directory {self._state_root}")
        for pid in self._host_pids:
            try:
                os.kill(pid, 0)
                out.append(f"host shell pid {pid}")
            except ProcessLookupError:
                pass
        bridges = set(ovs.list_bridges())
        out += [f"bridge {s.name}" for s in self.topology.switches if s.name in bridges]
        existing = set(os.listdir("/sys/class/net"))
        out += [f"interface {i}" for i in self._intfs if i in existing]
        return out

    # -- state and measurements -------------------------------------------------
    def state(self) -> dict:
        try:
            with open(os.path.join(self.run_dir, "state.json")) as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def totals(self) -> dict[tuple[int, str, str], tuple[int, int]]:
        """Cumulative (packets, bytes) per (dpid, class, destination)."""
        return {(d, c, t): (pk, by) for d, c, t, pk, by in self.state().get("totals", [])}

    def polls(self) -> dict[int, int]:
        return {int(k): v for k, v in self.state().get("polls", {}).items()}

    def set_ovct(self, on: bool, timeout: float = 10.0) -> dict:
        """Switch OVCT on or off in the running controller (SIGUSR1/SIGUSR2 to
        its PID) and wait until it has logged the switch; returns that event."""
        from controller.record import read_jsonl
        if self.controller is None or self.controller.poll() is not None:
            raise TestbedError("the controller is not running")
        kind = "ovct_enabled" if on else "ovct_disabled"
        events = os.path.join(self.run_dir, "events.jsonl")
        seen = sum(1 for e in read_jsonl(events) if e["type"] == kind)
        self.controller.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        found: list[dict] = []

        def logged() -> bool:
            found[:] = [e for e in read_jsonl(events) if e["type"] == kind]
            return len(found) > seen
        wait_until(logged, timeout, f"the controller to log {kind}", interval=0.05)
        return found[-1]

    def wait_fresh_stats(self, timeout: float | None = None) -> dict:
        """Wait until every switch has answered a statistics poll that was
        sent after this call (two completed polls later), and return the
        totals then."""
        start = self.polls()
        dpids = [s.dpid for s in self.topology.switches]
        wait_until(lambda: all(self.polls().get(d, 0) >= start.get(d, 0) + 2 for d in dpids),
                   timeout or max(10.0, 4 * self.stats_interval),
                   "fresh flow statistics from every switch")
        return self.totals()

    def host(self, name: str):
        return self.net[name]

    def ip(self, name: str) -> str:
        """Address of a host or VM by name (an address is returned as is)."""
        for getter in (self.topology.host, self.topology.vm):
            try:
                return getter(name).ip
            except KeyError:
                pass
        return name

    def ping(self, src: str, dst: str, count: int = 10, interval: float = 0.2,
             wait: float = 1.0) -> pingmod.PingResult:
        return self.ping_pairs([(src, dst)], count, interval, wait)[(src, dst)]

    def ping_pairs(self, pairs, count: int = 10, interval: float = 0.2,
                   wait: float = 1.0) -> dict[tuple[str, str], pingmod.PingResult]:
        """Ping every (src, dst) pair at the same time; returns when all are done."""
        procs = [((src, dst), self.host(src).popen(
            pingmod.command(self.ip(dst), count, interval, wait), text=True))
            for src, dst in pairs]
        res = {}
        for (src, dst), proc in procs:
            out, err = proc.communicate(timeout=count * interval + wait + 30)
            res[(src, dst)] = pingmod.parse(out + err, src=src, dst=dst)
        return res

    def start_ping(self, src: str, dst: str, interval: float = 0.01) -> "BackgroundPing":
        """Ping continuously from ``src`` until .stop() (which parses)."""
        return BackgroundPing(self.host(src).popen(
            pingmod.command(self.ip(dst), None, interval), text=True), src, dst)

    def ping_all(self, count: int = 1) -> dict[tuple[str, str], pingmod.PingResult]:
        res = {}
        for a in self.topology.hosts:
            for b in self.topology.hosts:
                if a is not b:
                    res[(a.name, b.name)] = self.ping(a.name, b.name, count=count,
                                                      interval=0.05)
        return res

    # -- forensics --------------------------------------------------------------
    def dump_flows(self, dest_dir: str | None = None) -> str:
        dest = dest_dir or os.path.join(self.run_dir, "flows")
        os.makedirs(dest, exist_ok=True)
        for s in self.topology.switches:
            with open(os.path.join(dest, f"{s.name}.txt"), "w") as fh:
                fh.write(ovs.dump_flows(s.name))
        return dest

    def _post_mortem(self) -> None:
        try:
            if self.net is not None:
                self.dump_flows(os.path.join(self.run_dir, "failure-flows"))
        except Exception as exc:  # never mask the original error
            LOG.warning("could not dump flows: %s", exc)


class BackgroundPing:
    def __init__(self, proc: subprocess.Popen, src: str, dst: str):
        self.proc, self.src, self.dst = proc, src, dst

    def stop(self) -> pingmod.PingResult:
        """SIGINT (ping then prints its summary), wait, parse."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=15)
        return pingmod.parse(out + err, self.src, self.dst)


__all__ = ["BackgroundPing", "Testbed", "TestbedError", "WaitTimeout"]
