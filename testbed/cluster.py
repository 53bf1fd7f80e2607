"""Cluster mode: the emulated network spread over several servers with
Mininet's own cluster edition (``mininet/examples/cluster.py``: nodes on a
remote server are shells over ssh, a link between two servers is an ssh
Ethernet tunnel between tap devices).

What this module adds to Mininet's classes:

* every ssh that cluster mode runs (node shells, tunnels, the controller
  forward) reads one ssh client configuration (``ssh -F``): a real cluster's
  keys and host names, or the stand-in server's own key;
* the controller stays on 127.0.0.1 of the first server: each other server
  reaches it through an ``ssh -R`` forward to its own 127.0.0.1, so remote
  switches connect to ``tcp:127.0.0.1:<port>`` as local ones do;
* :class:`StandInServer`: a second "server" on this machine, for tests and
  for trying cluster mode on one machine.  It is a network namespace with
  its own Open vSwitch (ovsdb-server and ovs-vswitchd, in a mount namespace
  where ``/run/openvswitch`` is its own), its own sshd, and one veth to the
  first server as its "cluster network".  Everything it starts is stopped
  by PID; deleting it leaves nothing.

GRE links (Mininet's RemoteGRELink) need the kernel's ``ip_gre`` module;
:func:`gre_available` says whether this kernel has it.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass

import psutil

from testbed import procs
from testbed.wait import WaitTimeout, wait_until as until

LOG = logging.getLogger("ovct.testbed")

#: the stand-in servers' cluster network: server k (k >= 2) is .2 of
#: 10.254.k.0/30, the first server .1
STANDIN_NET = "10.254.{k}.0/30"
NETNS_PREFIX = "ovct-srv"


class ClusterError(RuntimeError):
    pass


def gre_available() -> tuple[bool, str]:
    """Can this kernel make a gretap device?  (name, no change made:
    a dry run is not possible, so a device is made and deleted at once)."""
    name = f"ovctgre{os.getpid() % 10000}"
    p = subprocess.run(["ip", "link", "add", name, "type", "gretap", "local", "127.0.0.1",
                        "remote", "127.0.0.2"], capture_output=True, text=True)
    if p.returncode == 0:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        return True, ""
    return False, (p.stderr or p.stdout).strip()


@dataclass(frozen=True)
class Server:
    """One server of the cluster: its name in the placement, the address
    ssh and the tunnels use, and the ssh user (root: cluster mode runs
    ``sudo`` there)."""
    name: str
    address: str
    user: str = "root"


def ssh_base(config: str | None) -> list[str]:
    return ["ssh"] + (["-F", config] if config else [])


def run_here(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """A command on this machine (the first server), its output kept."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def run_over_ssh(config: str | None, server: Server, cmd: list[str],
                 timeout: float = 60, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """A command on ``server`` as its root (``sudo`` for another user),
    ``stdin`` its input.  ssh joins its arguments into one line for the
    remote shell: each is quoted, so the command runs there with the
    arguments it has here."""
    return subprocess.run(ssh_base(config) + [
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"{server.user}@{server.address}",
        *(["sudo"] if server.user != "root" else []), *map(shlex.quote, cmd)],
        stdin=stdin, capture_output=True, text=True, timeout=timeout)


def mininet_classes(ssh_config: str | None):
    """Mininet's cluster classes (RemoteHost, RemoteOVSSwitch, RemoteSSHLink),
    subclassed so that every ssh they run reads ``ssh_config``.  Imported
    here: Debian's Mininet is only importable in the project's venv."""
    from mininet.examples import cluster as mc

    Ssh = _ssh_mixin(ssh_config)

    class Host(Ssh, mc.RemoteHost):
        pass

    class Switch(Ssh, mc.RemoteOVSSwitch):
        pass

    return Host, Switch, mc.RemoteSSHLink


def kvm_host_class(ssh_config: str | None):
    """The KVM host node for another server: Mininet's remote node (its
    shell over ssh) made a :class:`testbed.kvmhost.KvmHost` whose files and
    processes are on that server (:class:`testbed.kvmhost.RemoteKvm`)."""
    from mininet.examples import cluster as mc

    from testbed.kvmhost import KvmHost, RemoteKvm

    class RemoteKvmHost(_ssh_mixin(ssh_config), RemoteKvm, mc.RemoteMixin, KvmHost):
        pass
    return RemoteKvmHost


def _ssh_mixin(ssh_config: str | None):
    extra = ["-F", ssh_config] if ssh_config else []

    class _Ssh:
        # node shells and remote commands (RemoteMixin._popen)
        sshbase = ["ssh", *extra, "-q", "-o", "BatchMode=yes", "-tt"]

        def _popen(self, cmd, *args, **kwargs):
            root_ns = kwargs.pop("ovct_root_ns", False)
            if not getattr(self, "isRemote", False) and not root_ns:
                # a node on this machine starts its processes as plain
                # Mininet does: Mininet's cluster preexec would make each the
                # leader of its own process group, and ``mnexec -d`` then
                # forks -- the Popen's PID would not be the command's (a
                # thin client outlived its SIGTERM that way); ``mnexec -d``
                # puts it in a session of its own, out of reach of a Ctrl-C
                from mininet.node import Node
                kwargs.pop("sudo", None)
                kwargs.pop("tt", None)
                return Node._popen(self, cmd, *args, **kwargs)
            # ssh joins its arguments into one remote shell line: a list
            # command must reach the server as the same list (``sh -c
            # "a\nb"`` was split into words)
            if getattr(self, "isRemote", False) and isinstance(cmd, list):
                cmd = [shlex.quote(str(c)) for c in cmd]
            return super()._popen(cmd, *args, **kwargs)

        @staticmethod
        def _ignoreSignal():
            # Mininet's preexec for every remote process: its own process
            # group -- and SIGHUP as by default, since SIGHUP is how Mininet
            # ends a remote shell (ssh -tt: closing its input does not).
            # Started from a shell that ignores SIGHUP (nohup), ssh kept it
            # ignored and stopping the network waited for it forever.
            os.setpgrp()
            signal.signal(signal.SIGHUP, signal.SIG_DFL)

        def rpopen(self, *cmd, **opts):
            # the tunnel: RemoteLink.makeTunnel runs a bare ``ssh ... -w 9:9``
            # through the local node's rpopen
            if cmd and isinstance(cmd[0], list) and cmd[0][:1] == ["ssh"]:
                cmd = (["ssh", *extra, "-o", "BatchMode=yes"] + cmd[0][1:],) + cmd[1:]
            # a command in the server's root namespace (a tunnel's ssh): in
            # its own process group, as Mininet's cluster edition starts it
            return super().rpopen(*cmd, ovct_root_ns=True, **opts)
    return _Ssh


# -- a node's server, reached over ssh -------------------------------------------------

def server_sh(node, script: str, data: bytes | None = None, timeout: float = 120) -> str:
    """``script`` run by ``sh`` as root in the root namespace of ``node``'s
    server (Mininet's ``rpopen``: over ssh for a remote node), ``data`` on
    its input; its output, or an error naming the node and server."""
    p = node.rpopen(["sh", "-c", script], tt=False, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()                # the ssh here (its own process group): not left
        p.communicate()
        raise ClusterError(f"{node.name} on {node.server}: sh -c {script[:120]!r} took "
                           f"more than {timeout:g} s") from None
    if p.returncode != 0:
        raise ClusterError(f"{node.name} on {node.server}: sh -c {script[:120]!r} exited "
                           f"{p.returncode}: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


#: processes' identities on a server, read from /proc: start time (clock
#: ticks since boot: kept across exec), state and command name
_PROC_IDENTITY = (
    'for p in {pids}; do s=$(cat /proc/$p/stat 2>/dev/null) || continue; '
    'r=${{s##*) }}; set -- $r; echo "$p ${{20}} $1 $(cat /proc/$p/comm)"; done')


def proc_identities(sh, pids) -> dict[int, tuple[str, str, str]]:
    """pid -> (start time, state, name) of those of ``pids`` running where
    ``sh(script)`` runs its scripts."""
    pids = [int(p) for p in pids]
    if not pids:
        return {}
    found = {}
    for line in sh(_PROC_IDENTITY.format(pids=" ".join(map(str, pids)))).splitlines():
        pid, start, state, name = (line.split(" ", 3) + ["", "", ""])[:4]
        found[int(pid)] = (start, state, name)
    return found


def proc_identity(sh, pid: int) -> tuple[str, str] | None:
    """(start time, name) of a running (not zombie) process, else None."""
    got = proc_identities(sh, [pid]).get(pid)
    return None if got is None or got[1] == "Z" else (got[0], got[2])


def kill_as(sh, pid: int, seen: tuple[str, str | None], sig: int = signal.SIGKILL) -> None:
    """Signal ``pid`` there while it is still the process ``seen`` (its
    start time, and its name unless None): checked and signalled in one
    script, so no new process can take the PID between the two."""
    start, name = seen
    same_name = f'[ "$(cat /proc/{pid}/comm)" = {shlex.quote(name)} ] && ' if name else ""
    sh(f"s=$(cat /proc/{pid}/stat 2>/dev/null) || exit 0; r=${{s##*) }}; set -- $r; "
       f'[ "${{20}}" = {shlex.quote(start)} ] && {same_name}kill -{int(sig)} {pid}; true')


class RemoteProcess:
    """A command left running in a node on another server, stopped by its
    PID there.  Started through the node's ``popen`` (an ssh here whose
    exit status and output are the command's), wrapped so the command
    writes its PID there first; ``send_signal``, ``terminate`` and
    ``kill`` signal that PID while it is still the process that started
    (its start time), not the ssh -- ending an ssh that has no terminal
    does not end what it runs.  Enough of ``subprocess.Popen`` for the
    testbed's pings and thin clients."""

    def __init__(self, node, cmd: list[str], sh=None, pid_timeout: float = 30.0, **popen_kw):
        self.node = node
        self._sh = sh or (lambda script: server_sh(node, script))
        self.pidfile = f"/tmp/ovct-{os.getpid()}-{id(self):x}.pid"
        self.proc = node.popen(["sh", "-c", f'echo $$ > {self.pidfile}; exec "$@"', "sh",
                                *map(str, cmd)], **popen_kw)
        self.pid_timeout = pid_timeout
        self._there: tuple[int, tuple[str, None]] | None = None
        self._cleaned = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.returncode

    @property
    def stdout(self):
        return self.proc.stdout

    def poll(self):
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout)
        self._clean()
        return rc

    def communicate(self, *args, **kwargs):
        out = self.proc.communicate(*args, **kwargs)
        self._clean()
        return out

    def _clean(self) -> None:
        if not self._cleaned:
            self._cleaned = True
            try:
                self._sh(f"rm -f {self.pidfile}")
            except (ClusterError, OSError, subprocess.TimeoutExpired):
                pass          # the server is gone: so is the file's meaning

    def _remote(self) -> tuple[int, tuple[str, None]] | None:
        """(PID there, identity), once the wrapper wrote it; None if the
        command ended first."""
        if self._there is None:
            def written() -> bool:
                if self.proc.poll() is not None:
                    return True
                out = self._sh(f"cat {self.pidfile} 2>/dev/null; true").strip()
                if out.isdigit():
                    seen = proc_identity(self._sh, int(out))
                    if seen is not None:
                        self._there = (int(out), (seen[0], None))
                return self._there is not None
            until(written, self.pid_timeout, f"the PID of a process on {self.node.name}",
                  interval=0.1)
        return self._there

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is not None:
            return
        there = self._remote()
        if there is not None:
            kill_as(self._sh, there[0], there[1], sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL there; if the server does not answer, the ssh here (what
        it ran may then be left there: said in the log)."""
        try:
            self.send_signal(signal.SIGKILL)
        except (ClusterError, OSError, subprocess.TimeoutExpired, WaitTimeout) as exc:
            LOG.warning("%s: could not kill %s there (%s); ending its ssh",
                        self.node.name, self.pidfile, exc)
            self.proc.kill()


class SshForward:
    """``ssh -N`` with one forward to one server, ``what`` it carries:
    ``-R 127.0.0.1:<port>:127.0.0.1:<port>`` (the server's switches reach
    the controller on their own loopback) or ``-L <local socket>:<remote
    socket>`` (a remote libvirtd reached from here)."""

    def __init__(self, server: Server, forward: list[str], ssh_config: str | None, log: str,
                 what: str):
        self.server, self.log, self.what = server, log, what
        self.cmd = ssh_base(ssh_config) + [
            "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=5", "-o", "StreamLocalBindUnlink=yes",
            *forward, f"{server.user}@{server.address}"]
        self.proc: subprocess.Popen | None = None

    def start(self, probe, timeout: float = 20.0) -> None:
        """``probe()`` says whether the forward answers on the far side."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise ClusterError(f"{self.what} forward to {self.server.name} exited "
                                   f"{self.proc.returncode}: see {self.log}")
            return probe()
        until(up, timeout, f"the {self.what} forward to {self.server.name}")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` (our child: not reaped
        until waited for, so its PID is still it)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None


def _stop_pid(pid: int, seen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace``, only while ``pid`` is still
    the process that was started (a daemon: not our child)."""
    proc = procs.same_process(pid, seen) if seen else None
    if proc is None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except psutil.TimeoutExpired:
        proc.kill()


class StandInServer:
    """A second server on this machine (see the module's docstring).

    ``k`` numbers it (2, 3, ...): namespace ``ovct-srv<k>``, address
    10.254.k.2 (this machine is 10.254.k.1 on the veth ``ovct-srv<k>``)."""

    def __init__(self, k: int, workdir: str):
        if not 2 <= k <= 250:
            raise ValueError("stand-in servers are numbered 2..250")
        self.k = k
        self.ns = f"{NETNS_PREFIX}{k}"
        net = ipaddress.ip_network(STANDIN_NET.format(k=k))
        self.local_ip, self.address = str(net[1]), str(net[2])
        self.workdir = workdir
        self.server = Server(f"srv{k}", self.address)
        self._pids: list[tuple[int, tuple]] = []
        self.sshd: subprocess.Popen | None = None
        self._made = False      # the namespace is ours to remove
        self._ever = False      # ... or was (what leftovers() looks for)

    # -- files ----------------------------------------------------------------------
    @property
    def dir(self) -> str:
        return os.path.abspath(os.path.join(self.workdir, f"srv{self.k}"))

    @property
    def ssh_config(self) -> str:
        return os.path.join(self.dir, "ssh_config")

    def _p(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _write_files(self) -> None:
        os.makedirs(self._p("run"), exist_ok=True)
        os.chmod(self.dir, 0o700)
        for key in ("host_key", "id_ed25519"):
            if not os.path.exists(self._p(key)):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                f"ovct {self.ns}", "-f", self._p(key)], check=True)
        shutil.copy(self._p("id_ed25519.pub"), self._p("authorized_keys"))
        with open(self._p("host_key.pub")) as f:
            host_key = " ".join(f.read().split()[:2])
        with open(self._p("known_hosts"), "w") as f:
            f.write(f"{self.address} {host_key}\n")
        with open(self._p("sshd_config"), "w") as f:
            f.write(f"""# the stand-in server {self.ns}: key login as root only, tunnels allowed
ListenAddress {self.address}
Port 22
HostKey {self._p('host_key')}
AuthorizedKeysFile {self._p('authorized_keys')}
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitTunnel yes
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
UseDNS no
StrictModes no
MaxStartups 200
MaxSessions 200
LogLevel ERROR
""")
        with open(self.ssh_config, "w") as f:
            f.write(f"""# ssh to the stand-in server {self.ns} (read by every ssh of cluster mode)
Host {self.address}
  User root
  IdentityFile {self._p('id_ed25519')}
  IdentitiesOnly yes
  UserKnownHostsFile {self._p('known_hosts')}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  LogLevel ERROR
""")

    # -- life ----------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        self._write_files()
        if os.path.exists(f"/run/netns/{self.ns}") or os.path.exists(f"/sys/class/net/{self.ns}"):
            raise ClusterError(f"namespace or interface {self.ns} exists already (another "
                               "run, or something of yours?); not touching it")
        _run(["ip", "netns", "add", self.ns])
        self._made = self._ever = True
        _run(["ip", "link", "add", self.ns, "type", "veth", "peer", "name", "eth0",
              "netns", self.ns])
        _run(["ip", "addr", "add", f"{self.local_ip}/30", "dev", self.ns])
        _run(["ip", "link", "set", self.ns, "up"])
        for cmd in (["ip", "addr", "add", f"{self.address}/30", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            _run(["ip", "netns", "exec", self.ns, *cmd])
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # sshd's privsep dir
        run = self._p("run")
        schema = "/usr/share/openvswitch/vswitch.ovsschema"
        db = self._p("conf.db")
        if not os.path.exists(db):
            _run(["ovsdb-tool", "create", db, schema])
        # one mount namespace for its OVS and its sshd (and so every ssh
        # session): /run/openvswitch there is this server's own
        script = f"""set -e
mount --bind {run} /run/openvswitch
ovsdb-server {db} --remote=punix:/run/openvswitch/db.sock --pidfile={run}/ovsdb-server.pid \\
  --detach --no-chdir --log-file={self._p('ovsdb-server.log')}
ovs-vsctl --no-wait init
ovs-vswitchd --pidfile={run}/ovs-vswitchd.pid --detach --no-chdir \\
  --log-file={self._p('ovs-vswitchd.log')} unix:/run/openvswitch/db.sock
exec /usr/sbin/sshd -D -e -f {self._p('sshd_config')}
"""
        with open(self._p("server.log"), "ab") as log:
            self.sshd = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation",
                 "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        for name in ("ovsdb-server", "ovs-vswitchd"):
            pidfile = os.path.join(run, f"{name}.pid")
            until(lambda pidfile=pidfile: self._alive() and os.path.exists(pidfile), timeout,
                  f"{self.ns}'s {name}")
            with open(pidfile) as f:
                pid = int(f.read())
            self._pids.append((pid, procs.identity(pid)))
        until(lambda: self._alive() and self.ssh(["true"], check=False).returncode == 0,
              timeout, f"ssh to {self.ns}")

    def _alive(self) -> bool:
        if self.sshd is not None and self.sshd.poll() is not None:
            with open(self._p("server.log"), errors="replace") as f:
                tail = f.read()[-1500:]
            raise ClusterError(f"stand-in server {self.ns} stopped "
                               f"(exit {self.sshd.returncode}):\n{tail}")
        return True

    def ssh(self, cmd: list[str], check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess:
        p = run_over_ssh(self.ssh_config, self.server, cmd, timeout)
        if check and p.returncode != 0:
            raise ClusterError(f"ssh {self.ns} {' '.join(cmd)}: {p.stderr.strip()}")
        return p

    def stop(self) -> None:
        """Every process in the namespace (its sshd, the ssh sessions and
        what runs in them, its OVS), then the namespace and the veth.
        Safe twice, and after a start that failed half-way; a namespace
        this object did not make is left alone."""
        if not self._made:
            return
        if os.path.exists(f"/run/netns/{self.ns}"):
            for _ in range(3):
                pids = _ns_pids(self.ns)
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                try:
                    until(lambda: not _ns_pids(self.ns), 5.0, f"{self.ns}'s processes")
                except TimeoutError:
                    for pid in _ns_pids(self.ns):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        for pid, seen in self._pids:
            _stop_pid(pid, seen)
        self._pids = []
        if self.sshd is not None:
            try:
                self.sshd.wait(5)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
                self.sshd.wait()
            self.sshd = None
        subprocess.run(["ip", "link", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        self._made = os.path.exists(f"/run/netns/{self.ns}")

    def leftovers(self) -> list[str]:
        out = []
        if not self._ever:
            return out
        if os.path.exists(f"/run/netns/{self.ns}"):
            out.append(f"namespace {self.ns}")
        if os.path.exists(f"/sys/class/net/{self.ns}"):
            out.append(f"interface {self.ns}")
        for pid, seen in self._pids:
            if procs.same_process(pid, seen):
                out.append(f"pid {pid}")
        return out


LOCAL = "local"   # the first server's name in a placement: the controller's


def parse_server(text: str) -> Server:
    """``host``, ``address`` or ``user@host`` as given on the command line."""
    user, _, host = text.rpartition("@")
    if not host or any(c.isspace() for c in text) or text.count("@") > 1:
        raise ClusterError(f"server {text!r}: give host, address or user@host")
    return Server(host, host, user or "root")


class ClusterRun:
    """The servers of one cluster-mode run and what joins them: stand-in
    servers started here (``standins``) and/or real ones (``servers``),
    one controller forward per server, and the placement of every node.

    Life: :meth:`start_servers` (before the network), :meth:`start_forwards`
    (once the controller listens), :meth:`stop` (after the network)."""

    def __init__(self, servers: list[Server] = (), standins: int = 0,
                 ssh_config: str | None = None, fixed: dict[str, str] | None = None,
                 workdir: str | None = None):
        """``workdir``: where keys, configurations and logs go (the testbed
        sets its run directory's ``cluster/`` when it is None)."""
        if standins and (servers or ssh_config):
            raise ClusterError("stand-in servers bring their own ssh set-up: give either "
                               "--standin or --servers/--ssh-config")
        if not servers and not standins:
            raise ClusterError("cluster mode needs at least one other server")
        self.standins = [StandInServer(k, ".") for k in range(2, 2 + standins)]
        self.workdir = ""
        self.use_workdir(workdir or ".")
        self.has_workdir = workdir is not None
        self.servers: list[Server] = list(servers) or [s.server for s in self.standins]
        if len({s.name for s in self.servers} | {LOCAL}) != len(self.servers) + 1:
            raise ClusterError(f"servers named twice (or '{LOCAL}', the first server's "
                               f"name): {[s.name for s in self.servers]}")
        self.ssh_config = ssh_config
        self.fixed = dict(fixed or {})
        self.forwards: list[SshForward] = []
        self.where: dict[str, str] = {}

    def use_workdir(self, path: str) -> None:
        self.workdir = os.path.abspath(path)
        self.has_workdir = True
        for st in self.standins:
            st.workdir = self.workdir

    @property
    def names(self) -> list[str]:
        return [LOCAL] + [s.name for s in self.servers]

    def server(self, name: str) -> Server:
        return next(s for s in self.servers if s.name == name)

    def place(self, topology) -> dict[str, str]:
        from testbed.topology import place
        self.where = place(topology, self.names, self.fixed)
        return self.where

    def node_opts(self, name: str) -> dict:
        """Mininet node options for one node (cluster.py's server, serverIP,
        user; the first server's nodes are 'localhost')."""
        srv = self.where.get(name, LOCAL)
        if srv == LOCAL:
            return {"server": "localhost", "user": "root"}
        s = self.server(srv)
        return {"server": s.name, "serverIP": s.address, "user": s.user}

    def _ssh_config(self) -> str | None:
        """One ssh configuration for every server (stand-ins: theirs, joined)."""
        if not self.standins:
            return self.ssh_config
        path = os.path.join(self.workdir, "ssh_config")
        with open(path, "w") as f:
            f.write("".join(f"Include {st.ssh_config}\n" for st in self.standins))
        return path

    def start_servers(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        for st in self.standins:
            st.start()
        self.ssh_config = self._ssh_config()
        for s in self.servers:   # every server answers, with root, before anything
            p = self.run_on(s.name, ["true"])
            if p.returncode != 0:
                raise ClusterError(f"cannot run commands on server {s.name} as {s.user} "
                                   f"over ssh: {p.stderr.strip() or p.returncode}")

    def run_on(self, name: str, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """A command on one server (the first: here), as its root."""
        if name == LOCAL:
            return run_here(cmd, timeout)
        return run_over_ssh(self.ssh_config, self.server(name), cmd, timeout)

    def standin(self, name: str) -> StandInServer | None:
        """The stand-in server named ``name`` (None: a real one, or here)."""
        return next((x for x in self.standins if x.server.name == name), None)

    def running(self, name: str) -> bool:
        """Is server ``name`` there to ask (a stand-in: until stopped)?"""
        st = self.standin(name)
        return st is None or st.sshd is not None

    def start_forwards(self, port: int) -> None:
        for s in self.servers:
            fw = SshForward(s, ["-R", f"127.0.0.1:{port}:127.0.0.1:{port}"], self.ssh_config,
                            os.path.join(self.workdir, f"forward-{s.name}.log"), "controller")
            self.forwards.append(fw)
            # listening on the far side's 127.0.0.1 (no test connection: the
            # controller would see a switch that never says hello)
            probe = ["ss", "-Hltn", f"src 127.0.0.1:{port}"]
            fw.start(lambda s=s, probe=probe: bool(self.run_on(s.name, probe, 10).stdout.strip()))

    def sync_file(self, name: str, path: str) -> bool:
        """Server ``name`` has this machine's ``path`` at the same path
        afterwards; True if it had to be copied (its sha256 differed or it
        was missing), False if it was there already."""
        local = _sha256(path)
        there = self.run_on(name, ["sha256sum", path], timeout=300).stdout.split()[:1]
        if there == [local]:
            return False
        tmp = shlex.quote(f"{path}.ovct-{os.getpid()}")
        # installed only once its checksum is this file's: a copy cut short
        # (the ssh killed, a full disk) leaves neither a short file nor the
        # temporary one
        script = (f"trap 'rm -f {tmp}' EXIT; mkdir -p {shlex.quote(os.path.dirname(path))} && "
                  f"cat > {tmp} && echo '{local}  '{tmp} | sha256sum -c --quiet && "
                  f"mv {tmp} {shlex.quote(path)}")
        with open(path, "rb") as src:
            p = run_over_ssh(self.ssh_config, self.server(name), ["sh", "-c", script],
                             timeout=1800, stdin=src)
        if p.returncode != 0:
            raise ClusterError(f"copying {path} to {name}: {p.stderr.strip()}")
        return True

    def forward_socket(self, name: str, local: str, remote: str) -> None:
        """``local``, a UNIX socket here, leads to ``remote`` on server
        ``name`` (a remote libvirtd's socket), until :meth:`stop`."""
        fw = SshForward(self.server(name), ["-L", f"{local}:{remote}"], self.ssh_config,
                        os.path.join(self.workdir, f"forward-{name}-"
                                     f"{os.path.basename(local)}.log"), "socket")
        self.forwards.append(fw)
        fw.start(lambda: os.path.exists(local))

    def stop(self) -> list[str]:
        errors = []
        for fw in self.forwards:
            try:
                fw.stop()
            except Exception as exc:
                errors.append(f"{fw.what} forward to {fw.server.name}: {exc}")
        self.forwards = []
        for st in self.standins:
            try:
                st.stop()
            except Exception as exc:
                errors.append(f"stand-in server {st.ns}: {exc}")
        return errors

    def leftovers(self) -> list[str]:
        out = [f"{fw.what} forward to {fw.server.name}" for fw in self.forwards]
        for st in self.standins:
            out += st.leftovers()
        return out


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ns_pids(ns: str) -> list[int]:
    p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(x) for x in p.stdout.split()]


def _run(cmd: list[str]) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)}: {(p.stderr or p.stdout).strip()}")
    return p.stdout

