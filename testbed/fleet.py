"""The KVM fleet: one libvirtd per emulated KVM host, the guests on them,
and their VNC servers.

Before the network starts, :meth:`KvmFleet.prepare` builds (or finds) the
guest image and chooses KVM or TCG, and :meth:`KvmFleet.host_opts` tells
Mininet to make the KVM hosts :class:`testbed.kvmhost.KvmHost` nodes.  Once
the network is ready, :meth:`KvmFleet.start` starts each host's libvirtd,
defines and starts every VM on its initial host, and waits until each VM is
learnt by the controller and serves RFB on port 5900.  :meth:`KvmFleet.stop`
destroys the guests and stops every libvirtd (and any QEMU it left) by PID.

QEMU capabilities are probed once per machine, not once per emulated host:
a libvirtd with an empty cache spends ~4 s per ``qemu-system-*`` binary
probing them before it starts its first guest or accepts its first
incoming migration -- which used to land inside the first migration of
every emulation.  The first host's libvirtd starts with the machine's seed
cache (:data:`CAPS_SEED`), is asked for its capabilities (instant when the
seed is valid; libvirt itself re-probes when a binary, the kernel or the CPU
changed), and its cache becomes the seed and every other host's cache.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from controller.hypervisor import HostSpec
from controller.rundir import RunDir
from testbed import accel, guest_image, preflight
from testbed.cluster import LOCAL
from testbed.controller_proc import ControllerClient
from testbed.probes import project_module
from testbed import libvirt_config as LC
from testbed.topology import KVM_HOST, Topology
from testbed.wait import wait_until

LOG = logging.getLogger("ovct.testbed")

#: the machine's QEMU capabilities cache, shared by every emulated KVM host
#: (beside the guest images; never committed: it is per machine)
CAPS_SEED = os.environ.get("OVCT_CAPS_SEED", "/var/cache/ovct/libvirt-qemu")


class FleetError(RuntimeError):
    pass


class KvmFleet:
    def __init__(self, topology: Topology, run: RunDir, state_root: str, python: str,
                 accel: str | None = None, vm_boot_timeout: float = 120.0,
                 host_memory_mib: int = 2048, host_cpus: int = 2, cluster=None):
        """``cluster``: a :class:`testbed.cluster.ClusterRun` (cluster mode:
        a KVM host placed on another server is a remote node there)."""
        self.topology = topology
        self.cluster = cluster
        self.run = run
        self.state_root = state_root      # short: UNIX socket paths are limited
        self.python = python
        self.accel_request = accel
        self.vm_boot_timeout = vm_boot_timeout
        self.host_memory_mib = host_memory_mib
        self.host_cpus = host_cpus
        self.image = None
        self.accel: str | None = None
        self.accel_reason: str | None = None
        self.hv = None
        self.vm_boot_s: dict[str, float] = {}
        self.hosts: list = []              # testbed.kvmhost.KvmHost nodes
        self._left: list = []
        #: how long the first libvirtd took to answer for its capabilities
        #: (~0.05 s from a valid seed; ~8 s when it had to probe QEMU)
        self.caps_s: float | None = None

    # -- before the network -----------------------------------------------------------
    def prepare(self) -> None:
        self.image = guest_image.build(log=LOG.info)
        self.accel, self.accel_reason = accel.choose(self.image.kernel, self.accel_request)

    def _state_dir(self, host: str) -> str:
        return os.path.join(self.state_root, host)

    def server_of(self, host: str) -> str | None:
        """The other server a KVM host is placed on (None: this one)."""
        if self.cluster is None:
            return None
        srv = self.cluster.where.get(host, LOCAL)
        return None if srv == LOCAL else srv

    def _forward_socket(self, host: str) -> str:
        """Here, the end of the ssh forward to a remote host's libvirtd."""
        return os.path.join(self.state_root, f"{host}.fwd.sock")

    def host_opts(self) -> dict:
        """Mininet node options that make the KVM hosts KvmHost nodes (on
        another server: remote ones, whose shell and files are there)."""
        # a Mininet node class: imported once a network starts (Debian's
        # Mininet is importable only in the project's venv)
        from testbed.kvmhost import KvmHost
        remote = None
        if self.cluster is not None:
            from testbed.cluster import kvm_host_class
            remote = kvm_host_class(self.cluster.ssh_config)
        return {h.name: {"cls": remote if self.server_of(h.name) else KvmHost,
                         "state_dir": self._state_dir(h.name),
                         "log_dir": self.run.host_logs(h.name)}
                for h in self.topology.hosts_by_role(KVM_HOST)}

    def host_specs(self) -> list[HostSpec]:
        """The hypervisor inventory: where each KVM host's libvirtd will be
        reached from here (on another server: through the socket forward)."""
        return [HostSpec(h.name, LC.socket_uri(self._forward_socket(h.name))
                         if self.server_of(h.name) else LC.libvirt_uri(self._state_dir(h.name)),
                         h.ip, self.host_memory_mib, self.host_cpus)
                for h in self.topology.hosts_by_role(KVM_HOST)]

    # -- with the network ----------------------------------------------------------------
    def start(self, network, client: ControllerClient) -> None:
        # libvirt-python: needed only with KVM hosts
        from controller.libvirt_hv import LibvirtHypervisor
        self.hosts = [network.host(h.name) for h in self.topology.hosts_by_role(KVM_HOST)]
        self._left = list(self.hosts)
        self.network = network
        run_id = os.path.basename(self.run.path)
        specs = self.host_specs()
        self.hv = LibvirtHypervisor(specs)
        self.run.write_json(self.run.hypervisors, [vars(sp) for sp in specs])

        def reachable(h) -> bool:
            if not h.libvirtd_alive():
                raise FleetError(f"libvirtd of {h.name} exited; see {h.log_dir}")
            try:
                self.hv.domains(h.name)
                return True
            except Exception:
                return False
        peers = [h.ip for h in self.topology.hosts_by_role(KVM_HOST)]
        for h in self.hosts:
            h.close_libvirt_to_others(peers)
        self._prepare_servers()
        # the capabilities are warmed on a host of this machine (the seed is
        # this machine's); other servers' hosts are given the seed
        here = [h for h in self.hosts if not self.server_of(h.name)] or self.hosts
        first = here[0]
        rest = [h for h in self.hosts if h is not first]
        first.install_caps(CAPS_SEED)
        first.start_libvirtd(run_id)
        wait_until(lambda: reachable(first), 30, f"libvirtd of {first.name}")
        self.caps_s = self._warm_caps(first.name)
        if not self.server_of(first.name):
            LC.copy_caps(first.caps_cache, CAPS_SEED)
        for h in rest:
            h.install_caps(CAPS_SEED)
            h.start_libvirtd(run_id)
        for h in rest:
            wait_until(lambda: reachable(h), 30, f"libvirtd of {h.name}")
        self._start_vms(client)

    def _prepare_servers(self) -> None:
        """Cluster mode: each other server with a KVM host gets the guest
        image (same paths; copied only where its checksum differs) and the
        directory of the guests' console logs; its hosts' libvirtd sockets
        are forwarded here."""
        done: set[str] = set()
        os.makedirs(self.state_root, exist_ok=True)     # the forwards' ends live here
        for h in self.hosts:
            srv = self.server_of(h.name)
            if srv is None:
                continue
            if srv not in done:
                done.add(srv)
                if self.cluster.server(srv).user != "root":
                    raise FleetError(f"KVM hosts on server {srv}: ssh to it as root (its "
                                     "libvirtd's socket, forwarded here, is root's only)")
                probe = self.cluster.run_on(srv, preflight.remote_probe())
                lacking = preflight.remote_missing(srv, probe.stdout)
                if probe.returncode != 0 or lacking:
                    raise FleetError(lacking or f"server {srv}: {probe.stderr.strip()}")
                for path in (self.image.kernel, self.image.initrd, self.image.rootfs):
                    self.cluster.sync_file(srv, path)
                if self.topology.vms:
                    consoles = os.path.dirname(self.run.console_log(self.topology.vms[0].name))
                    made = self.cluster.run_on(srv, ["mkdir", "-p", consoles])
                    if made.returncode != 0:
                        raise FleetError(f"server {srv}: mkdir -p {consoles}: "
                                         f"{made.stderr.strip()}")
            self.cluster.forward_socket(srv, self._forward_socket(h.name),
                                        LC.socket_path(self._state_dir(h.name)))

    def _warm_caps(self, host: str) -> float:
        """Ask a libvirtd for its capabilities (every emulator's): from the
        seed in milliseconds, else it probes QEMU now, before any guest."""
        t0 = time.monotonic()
        conn = self.hv.open(host)
        try:
            conn.getCapabilities()
        finally:
            conn.close()
        took = time.monotonic() - t0
        LOG.info("%s: QEMU capabilities in %.2f s", host, took)
        return took

    def domain_xml(self, vm) -> str:
        os.makedirs(os.path.dirname(self.run.console_log(vm.name)), exist_ok=True)
        return LC.domain_xml(vm, self.image.kernel, self.image.initrd, self.image.rootfs,
                          self.accel, self.run.console_log(vm.name))

    def _start_vms(self, client: ControllerClient) -> None:
        started = {}
        for vm in self.topology.vms:
            conn = self.hv.open(vm.host)
            try:
                conn.defineXML(self.domain_xml(vm)).create()
            finally:
                conn.close()
            started[vm.name] = time.monotonic()
            self.network.host(vm.host).note_qemu_pids()
        for vm in self.topology.vms:
            wait_until(lambda: vm.ip in client.state().get("hosts", {}),
                       self.vm_boot_timeout, f"{vm.name} to boot and be learnt",
                       interval=0.2)
            self.wait_vnc(vm.name, self.vm_boot_timeout)
            self.vm_boot_s[vm.name] = time.monotonic() - started[vm.name]
        self.run.write_json(self.run.vm_boot, {"accel": self.accel,
                                               "boot_to_vnc_s": self.vm_boot_s})

    def rfb_greeting(self, vm: str, from_host: str | None = None) -> str:
        """The RFB greeting of a VM's VNC server, read from ``from_host``'s
        namespace.  By default from the KVM host the VM runs on: that
        connection stays on the host's bridge, so it neither crosses the
        OpenFlow network nor looks like a thin client to OVCT."""
        src = from_host or (self.hv.locate(vm) if self.hv else None) or self.topology.vm(vm).host
        out, err, _rc = self.network.host(src).pexec(
            project_module(self.python, "testbed.rfb", self.topology.vm(vm).ip))
        if out.strip():
            return out.strip()
        # no greeting: say why (refused, timed out), not just an empty string
        reasons = err.strip().splitlines()
        return reasons[-1] if reasons else ""

    def wait_vnc(self, vm: str, timeout: float = 60.0) -> str:
        """The VM's RFB greeting once its VNC server answers; WaitTimeout
        naming the last answer (or the probe's error) after ``timeout``."""
        last = [""]

        def greeted():
            last[0] = self.rfb_greeting(vm)
            return last[0] if last[0].startswith("RFB 003.") else None
        return wait_until(greeted, timeout, f"the VNC server of {vm}", interval=0.5,
                          describe=lambda: last[0] or "no answer")

    def vnc_restarts(self, vm: str) -> int:
        """How often the guest's init restarted a dead Xvnc (its console says so)."""
        try:
            with open(self.run.console_log(vm), errors="replace") as f:
                return sum("Xvnc died" in line for line in f)
        except FileNotFoundError:
            return 0

    # -- tear-down ------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Destroy every guest, stop every libvirtd -- all hosts at once (a
        guest's destroy waits for QEMU to exit); returns problems."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.hosts))) as pool:
            problems = [p for ps in pool.map(self._stop_host, self.hosts) for p in ps]
        if self.hv is not None:
            self.hv.close()
        self.hosts = []
        return problems

    def _stop_host(self, h) -> list[str]:
        """Every step is tried whatever the one before did; what failed is
        returned (a host on another server may not answer)."""
        try:
            return self._stop_host_steps(h)
        except Exception as exc:       # keep going: the rest must stop too
            return [f"{h.name}: stopping it failed: {exc!r}"]

    def _stop_host_steps(self, h) -> list[str]:
        problems = []
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
        return problems + h.stop_libvirtd()

    def leftovers(self) -> list[str]:
        """What of the fleet is still running; a host on another server is
        asked only while that server is there to ask (a stopped stand-in's
        processes are this machine's, seen by :mod:`testbed.machine`)."""
        out = []
        for h in self._left:
            srv = self.server_of(h.name)
            if srv is None or self.cluster.running(srv):
                out += h.leftovers()
        if os.path.exists(self.state_root):
            out.append(f"state directory {self.state_root}")
        return out

