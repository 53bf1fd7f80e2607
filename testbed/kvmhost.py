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

:class:`RemoteKvm` (cluster mode) puts the same host on another server: its
private directories, files and processes are that server's, written, read
and signalled over ssh; the root namespace here reaches its libvirtd
through an ``ssh -L`` forward of the socket (the fleet sets that up).
"""
from __future__ import annotations

import glob
import io
import os
import shlex
import shutil
import signal
import subprocess
import tarfile

import psutil

from testbed.procs import identity, same_process

from mininet.node import Host

from testbed import libvirt_config as LC
from testbed.cluster import kill_as, proc_identity, server_sh
from testbed.probes import reap
from testbed.wait import WaitTimeout, wait_until as until
from testbed.libvirt_config import PRIVATE
from testbed.network import must


class KvmHost(Host):
    """``state_dir``: short root-namespace directory for the private
    directories; ``log_dir``: where /var/log/libvirt is kept."""

    def __init__(self, name, state_dir: str, log_dir: str, **params):
        self.state_dir = state_dir
        self.log_dir = log_dir
        dirs = [(mount, log_dir if short == "log" else os.path.join(state_dir, short))
                for mount, short in PRIVATE.items()]
        self._make_dirs([backing for _mount, backing in dirs])
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

    # -- its server's files and processes (here; RemoteKvm: over ssh) -----------
    def _make_dirs(self, paths: list[str]) -> None:
        for path in paths:
            os.makedirs(path, exist_ok=True)

    def _put(self, mount: str, name: str, text: str) -> None:
        """A file in one of its private directories."""
        with open(os.path.join(self.backing(mount), name), "w") as fh:
            fh.write(text)

    def _qemu_pids(self) -> list[int]:
        """The PIDs libvirt wrote to /run/libvirt/qemu/<vm>.pid (not its
        driver.pid, which is libvirtd's)."""
        pids = []
        for path in glob.glob(os.path.join(self.backing("/run/libvirt"), "qemu", "*.pid")):
            if os.path.basename(path) == "driver.pid":
                continue
            try:
                pids.append(int(open(path).read().strip()))
            except (OSError, ValueError):
                continue
        return pids

    def _identity(self, pid: int):
        return identity(pid)

    def _alive_as(self, pid: int, seen) -> bool:
        return same_process(pid, seen) is not None

    def _kill_as(self, pid: int, seen) -> None:
        """SIGKILL ``pid`` while it is still the process ``seen``."""
        proc = same_process(pid, seen)
        if proc is not None:
            try:
                proc.kill()             # psutil checks it is still that process
            except psutil.Error:
                pass

    def install_caps(self, src: str) -> None:
        """A QEMU capabilities cache (a directory here) becomes its libvirtd's."""
        LC.copy_caps(src, self.caps_cache)

    def _remove_state(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)

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
        self._put("/etc/libvirt", "ovct.nft", LC.firewall_rules(peers))
        self._must("nft", "-f", "/etc/libvirt/ovct.nft")

    def start_libvirtd(self, run_id: str) -> None:
        self._put("/etc/libvirt", "libvirtd.conf",
                  LC.libvirtd_conf(LC.host_uuid(self.name, run_id), self.IP(),
                                   "/var/log/libvirt/libvirtd.log"))
        self._put("/etc/libvirt", "qemu.conf", LC.qemu_conf())
        os.makedirs(self.log_dir, exist_ok=True)
        out = open(os.path.join(self.log_dir, "libvirtd.out"), "ab")
        self.libvirtd = self.popen(
            ["libvirtd", "--listen", "--config", "/etc/libvirt/libvirtd.conf",
             "--pid-file", "/run/libvirt/libvirtd.pid"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def libvirtd_alive(self) -> bool:
        return self.libvirtd is not None and self._daemon_running()

    # the daemon as a process: here our child (RemoteKvm: by its PID there)
    def _daemon_running(self) -> bool:
        return self.libvirtd.poll() is None

    def _daemon_signal(self, sig: int) -> None:
        """Our child: not reaped until waited for, so its PID is still it."""
        self.libvirtd.send_signal(sig)

    def _daemon_wait(self, timeout: float) -> bool:
        """True once it has ended (within ``timeout``)."""
        try:
            self.libvirtd.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def note_qemu_pids(self) -> dict[int, tuple[float, str]]:
        """Remember this host's QEMU processes (libvirt writes their PIDs to
        /run/libvirt/qemu/<vm>.pid) with their start time, so they can be
        stopped by PID -- and only while the PID is still the same process
        (a source QEMU exits after migrating; its PID may be reused)."""
        for pid in self._qemu_pids():
            seen = self._identity(pid)
            if pid not in self.qemu_pids and seen is not None and seen[1].startswith("qemu"):
                self.qemu_pids[pid] = seen
        return self.qemu_pids

    def stop_libvirtd(self, timeout: float = 15.0, kill_qemu: bool = True) -> list[str]:
        """Stop libvirtd by PID and (``kill_qemu``) any QEMU it left running.
        Returns problems.  ``kill_qemu=False`` is a daemon outage: guests keep
        running and a restarted libvirtd takes them over again."""
        problems = []
        self.note_qemu_pids()
        if self.libvirtd_alive():
            self._daemon_signal(signal.SIGTERM)
            if not self._daemon_wait(timeout):
                problems.append(f"{self.name}: libvirtd ignored SIGTERM")
                self._daemon_signal(signal.SIGKILL)
                if not self._daemon_wait(5):
                    problems.append(f"{self.name}: libvirtd still there after SIGKILL")
        for pid, seen in sorted(self.qemu_pids.items()) if kill_qemu else ():
            if self._alive_as(pid, seen):
                problems.append(f"{self.name}: QEMU pid {pid} still running; killed")
                self._kill_as(pid, seen)
        return problems

    def kill_libvirtd(self) -> None:
        """SIGKILL libvirtd, as a crash would (its guests keep running; a
        restarted libvirtd takes them over, or ends an incoming one)."""
        self.note_qemu_pids()
        if self.libvirtd_alive():
            self._daemon_signal(signal.SIGKILL)
            self._daemon_wait(10)

    def leftovers(self) -> list[str]:
        out = []
        if self.libvirtd_alive():
            out.append(f"{self.name}: libvirtd (started as pid {self.libvirtd.pid} here)")
        out += [f"{self.name}: QEMU pid {p}" for p, seen in sorted(self.qemu_pids.items())
                if self._alive_as(p, seen)]
        return out

    def terminate(self):
        super().terminate()
        self._remove_state()


class RemoteKvm:
    """Mix-in for a KVM host on another server (before
    ``mininet.examples.cluster.RemoteMixin`` and :class:`KvmHost` in the
    class's bases).  Its private directories are made by its own shell
    there (Mininet's mount of private directories runs ``mkdir -p``); the
    files and processes of the other methods are reached over ssh as the
    server's root: a process is still identified by its PID and start time
    before it is signalled.  Logs stay on that server, in the same paths."""

    def _make_dirs(self, paths: list[str]) -> None:
        pass

    def _on_server(self, script: str, data: bytes | None = None) -> str:
        return server_sh(self, script, data)

    def _put(self, mount: str, name: str, text: str) -> None:
        path = os.path.join(self.backing(mount), name)
        self._on_server(f"mkdir -p {shlex.quote(os.path.dirname(path))} && "
                        f"cat > {shlex.quote(path)}", text.encode())

    def _qemu_pids(self) -> list[int]:
        # one PID per line (libvirt writes them without a newline), not
        # libvirtd's driver.pid
        d = shlex.quote(os.path.join(self.backing("/run/libvirt"), "qemu"))
        out = self._on_server(f'for f in {d}/*.pid; do [ -f "$f" ] || continue; '
                              f'[ "${{f##*/}}" = driver.pid ] && continue; cat "$f"; echo; done')
        return [int(x) for x in out.split() if x.isdigit()]

    def _identity(self, pid: int):
        return proc_identity(self._on_server, pid)

    def _alive_as(self, pid: int, seen) -> bool:
        return self._identity(pid) == seen

    def _kill_as(self, pid: int, seen, sig: int = signal.SIGKILL) -> None:
        kill_as(self._on_server, pid, seen, sig)

    # libvirtd there: ``self.libvirtd`` is the ssh that started it, which
    # may end (a dropped connection) while the daemon goes on; the daemon is
    # known by the PID it wrote and its start time
    def start_libvirtd(self, run_id: str) -> None:
        self._libvirtd_there: tuple[int, tuple[str, str]] | None = None   # not written yet
        super().start_libvirtd(run_id)

    def _daemon_there(self) -> tuple[int, tuple[str, str]] | None:
        if self._libvirtd_there is None:
            pidfile = os.path.join(self.backing("/run/libvirt"), "libvirtd.pid")
            out = self._on_server(f"cat {shlex.quote(pidfile)} 2>/dev/null; true").strip()
            seen = self._identity(int(out)) if out.isdigit() else None
            if seen is not None and seen[1] == "libvirtd":
                self._libvirtd_there = (int(out), seen)
        return self._libvirtd_there

    def _daemon_running(self) -> bool:
        there = self._daemon_there()
        if there is None:       # not written yet: still starting while its ssh runs
            return self.libvirtd.poll() is None
        return self._alive_as(*there)

    def _daemon_signal(self, sig: int) -> None:
        there = self._daemon_there()
        if there is None:
            # not written (yet): wait for it, at most a few seconds
            try:
                until(lambda: self._daemon_there() is not None or self.libvirtd.poll()
                      is not None, 10, f"{self.name}'s libvirtd PID", interval=0.2)
            except WaitTimeout:
                pass
            there = self._daemon_there()
        if there is not None:
            self._kill_as(there[0], there[1], sig)

    def _daemon_wait(self, timeout: float) -> bool:
        try:
            until(lambda: not self._daemon_running(), timeout, f"{self.name}'s libvirtd to end",
                  interval=0.2)
        except WaitTimeout:
            return False
        reap(self.libvirtd)     # its ssh, once the daemon there has ended
        return True

    def install_caps(self, src: str) -> None:
        if not os.path.isdir(src):
            return
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(src, arcname=".")
        dst = shlex.quote(self.caps_cache)
        self._on_server(f"mkdir -p {dst} && tar -C {dst} -xf -", buf.getvalue())

    def _remove_state(self) -> None:
        d = shlex.quote(self.state_dir)
        self._on_server(f"rm -rf {d} && rmdir --ignore-fail-on-non-empty "
                        f"$(dirname {d}) 2>/dev/null; true")
