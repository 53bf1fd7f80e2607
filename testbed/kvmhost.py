"""A Mininet host that is a KVM host: its own libvirtd, guests on a bridge.

Inside the host's namespaces:

* ``br0`` enslaves the uplink (``pm1-eth0``) and carries the host's IP and
  MAC, so guests appear on the emulated network with their own MAC and IP,
  which they keep when they move;
* a private libvirtd (``libvirtd --listen``) with private /etc/libvirt,
  /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt,
  reachable from the root namespace through its UNIX socket and from the
  other KVM hosts over TCP on the data network (peer-to-peer migration).

Runtime state lives under a short directory (UNIX socket paths are limited
to 108 bytes); libvirt's logs go to the run directory for post-mortems.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess

import psutil

from testbed.procs import identity, same_process

from mininet.node import Host

from testbed import libvirt_config as LC
from testbed.libvirt_config import PRIVATE
from testbed.network import must


class KvmHost(Host):
    """``state_dir``: short root-namespace directory for the private
    directories; ``log_dir``: where /var/log/libvirt is kept."""

    def __init__(self, name, state_dir: str, log_dir: str, **params):
        self.state_dir = state_dir
        self.log_dir = log_dir
        dirs = []
        for mount, short in PRIVATE.items():
            backing = log_dir if short == "log" else os.path.join(state_dir, short)
            os.makedirs(backing, exist_ok=True)
            dirs.append((mount, backing))
        super().__init__(name, privateDirs=dirs, **params)
        self.libvirtd: subprocess.Popen | None = None
        #: QEMU processes seen on this host: pid -> (start time, command
        #: name); a pid is signalled only while it still is that process
        self.qemu_pids: dict[int, tuple[float, str]] = {}

    # -- paths seen from the root namespace ------------------------------------
    def backing(self, mount: str) -> str:
        short = PRIVATE[mount]
        return self.log_dir if short == "log" else os.path.join(self.state_dir, short)

    @property
    def caps_cache(self) -> str:
        """Its libvirtd's QEMU capabilities cache, seen from the root namespace."""
        return os.path.join(self.backing("/var/cache/libvirt"), "qemu")

    # -- bridge ---------------------------------------------------------------
    def _must(self, *cmd: str) -> str:
        return must(self, list(cmd))

    def setup_bridge(self, ip_cidr: str, mac: str, bridge: str = "br0") -> None:
        """Move the host's address from its uplink onto a Linux bridge that
        enslaves the uplink; guests' tap devices join the same bridge."""
        up = self.defaultIntf().name
        self._must("ip", "link", "add", bridge, "type", "bridge", "forward_delay", "0")
        self._must("ip", "link", "set", bridge, "address", mac)
        self._must("ip", "link", "set", up, "master", bridge)
        self._must("ip", "addr", "flush", "dev", up)
        self._must("ip", "addr", "add", ip_cidr, "dev", bridge)
        self._must("ip", "link", "set", bridge, "up")
        # the host's own TCP (libvirtd, migration streams) leaves through the
        # bridge: full checksums, as for every host interface
        self._must("ethtool", "-K", bridge, "tx", "off")
        self.bridge = bridge
        # Mininet re-reads a node's address off its default interface (its
        # CLI puts it in place of the node's name: `tcl1 ping pm2`); the
        # address now lives on the bridge
        address = ip_cidr.split("/")[0]
        self.defaultIntf().updateIP = lambda: address

    def announce_interface(self) -> str:
        return getattr(self, "bridge", None) or self.defaultIntf().name

    # -- libvirtd -------------------------------------------------------------
    def close_libvirt_to_others(self, peers: list[str]) -> None:
        """Only the KVM hosts (``peers``) may reach this host's libvirtd and
        migration ports: a firewall in its own network namespace."""
        path = os.path.join(self.backing("/etc/libvirt"), "ovct.nft")
        with open(path, "w") as fh:
            fh.write(LC.firewall_rules(peers))
        self._must("nft", "-f", "/etc/libvirt/ovct.nft")

    def start_libvirtd(self, run_id: str) -> None:
        etc = self.backing("/etc/libvirt")
        with open(os.path.join(etc, "libvirtd.conf"), "w") as fh:
            fh.write(LC.libvirtd_conf(LC.host_uuid(self.name, run_id), self.IP(),
                                      "/var/log/libvirt/libvirtd.log"))
        with open(os.path.join(etc, "qemu.conf"), "w") as fh:
            fh.write(LC.qemu_conf())
        out = open(os.path.join(self.log_dir, "libvirtd.out"), "ab")
        self.libvirtd = self.popen(
            ["libvirtd", "--listen", "--config", "/etc/libvirt/libvirtd.conf",
             "--pid-file", "/run/libvirt/libvirtd.pid"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def libvirtd_alive(self) -> bool:
        return self.libvirtd is not None and self.libvirtd.poll() is None

    def note_qemu_pids(self) -> dict[int, tuple[float, str]]:
        """Remember this host's QEMU processes (libvirt writes their PIDs to
        /run/libvirt/qemu/<vm>.pid) with their start time, so they can be
        stopped by PID -- and only while the PID is still the same process
        (a source QEMU exits after migrating; its PID may be reused)."""
        for path in glob.glob(os.path.join(self.backing("/run/libvirt"), "qemu", "*.pid")):
            try:
                pid = int(open(path).read().strip())
            except (OSError, ValueError):
                continue
            seen = identity(pid)
            if pid not in self.qemu_pids and seen is not None:
                self.qemu_pids[pid] = seen
        return self.qemu_pids

    def stop_libvirtd(self, timeout: float = 15.0, kill_qemu: bool = True) -> list[str]:
        """Stop libvirtd by PID and (``kill_qemu``) any QEMU it left running.
        Returns problems.  ``kill_qemu=False`` is a daemon outage: guests keep
        running and a restarted libvirtd takes them over again."""
        problems = []
        self.note_qemu_pids()
        if self.libvirtd is not None and self.libvirtd.poll() is None:
            self.libvirtd.send_signal(signal.SIGTERM)
            try:
                self.libvirtd.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.name}: libvirtd ignored SIGTERM")
                self.libvirtd.kill()
                self.libvirtd.wait(5)
        for pid, seen in sorted(self.qemu_pids.items()) if kill_qemu else ():
            proc = same_process(pid, seen)
            if proc is not None:
                problems.append(f"{self.name}: QEMU pid {pid} still running; killed")
                try:
                    proc.kill()             # psutil checks it is still that process
                except psutil.Error:
                    pass
        return problems

    def kill_libvirtd(self) -> None:
        """SIGKILL libvirtd, as a crash would (its guests keep running; a
        restarted libvirtd takes them over, or ends an incoming one)."""
        self.note_qemu_pids()
        if self.libvirtd is not None and self.libvirtd.poll() is None:
            self.libvirtd.kill()
            self.libvirtd.wait(10)

    def leftovers(self) -> list[str]:
        out = []
        if self.libvirtd is not None and self.libvirtd.poll() is None:
            out.append(f"{self.name}: libvirtd pid {self.libvirtd.pid}")
        out += [f"{self.name}: QEMU pid {p}" for p, seen in sorted(self.qemu_pids.items())
                if same_process(p, seen) is not None]
        return out

    def terminate(self):
        super().terminate()
        shutil.rmtree(self.state_dir, ignore_errors=True)
