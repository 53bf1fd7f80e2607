"""A KVM host on another server (testbed.kvmhost.RemoteKvm): its files and
processes are reached with shell commands there.  Here the "server" is
this machine: ``rpopen`` runs the command locally, so the shell snippets
(the /proc identity, the checked kill, the file writes, the tar copy) are
exercised for real, without ssh or root."""
import os
import signal
import subprocess
import time

import pytest

from testbed.cluster import proc_identities
from testbed.kvmhost import KvmHost, RemoteKvm


class Here(RemoteKvm, KvmHost):
    """A RemoteKvm without Mininet's node set-up: just the paths."""

    def __init__(self, state_dir, log_dir):   # no Node.__init__: no shell
        self.name, self.server = "pm9", "srv9"
        self.state_dir, self.log_dir = str(state_dir), str(log_dir)
        self.libvirtd, self.qemu_pids = None, {}
        self._libvirtd_there = None            # as start_libvirtd leaves it

    def rpopen(self, cmd, tt=True, **opts):
        assert tt is False              # binary data must not go through a tty
        return subprocess.Popen(cmd, **opts)


@pytest.fixture
def host(tmp_path):
    return Here(tmp_path / "state" / "pm9", tmp_path / "log")


@pytest.fixture
def sleeper():
    p = subprocess.Popen(["sleep", "60"])
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


def test_a_process_is_known_by_its_start_time_and_name(host, sleeper):
    seen = host._identity(sleeper.pid)
    assert seen is not None and seen[1] == "sleep" and seen[0].isdigit()
    assert host._alive_as(sleeper.pid, seen)
    assert not host._alive_as(sleeper.pid, ("1", "sleep"))     # another start time
    assert not host._alive_as(sleeper.pid, (seen[0], "qemu"))  # another name
    assert host._identity(2 ** 22 + 1) is None                 # no such PID
    assert proc_identities(host._on_server, []) == {}


def test_a_kill_hits_only_the_process_that_was_seen(host, sleeper):
    seen = host._identity(sleeper.pid)
    host._kill_as(sleeper.pid, ("1", "sleep"))
    assert sleeper.poll() is None                # not the one seen: left alone
    host._kill_as(sleeper.pid, seen)
    assert sleeper.wait(10) == -signal.SIGKILL
    host._kill_as(sleeper.pid, seen)             # gone: nothing to do, no error


def test_a_zombie_is_not_running(host):
    p = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while proc_identities(host._on_server, [p.pid]).get(p.pid, ("", "R"))[1] != "Z":
        assert time.monotonic() < deadline, "never became a zombie"
        time.sleep(0.02)
    assert host._identity(p.pid) is None
    p.wait()


def test_files_go_into_its_private_directories_and_qemu_pids_are_read_back(host):
    host._put("/etc/libvirt", "qemu.conf", "a = 1\n")
    with open(os.path.join(host.state_dir, "etc", "qemu.conf")) as f:
        assert f.read() == "a = 1\n"
    assert host._qemu_pids() == []               # no directory yet
    # as libvirt writes them: no newline; driver.pid is libvirtd's own
    host._put("/run/libvirt", "qemu/vm1.pid", "412")
    host._put("/run/libvirt", "qemu/vm2.pid", "1035")
    host._put("/run/libvirt", "qemu/driver.pid", "1008")
    host._put("/run/libvirt", "qemu/vm2.xml", "<domstatus/>")
    assert sorted(host._qemu_pids()) == [412, 1035]


def test_the_capabilities_cache_is_copied_over_and_the_state_removed(host, tmp_path):
    seed = tmp_path / "seed"
    (seed / "capabilities").mkdir(parents=True)
    (seed / "capabilities" / "x86_64.xml").write_text("<caps/>")
    host.install_caps(str(seed))
    assert open(os.path.join(host.caps_cache, "capabilities", "x86_64.xml")).read() == "<caps/>"
    host.install_caps(str(tmp_path / "no-seed"))  # nothing to copy: nothing done
    host._remove_state()
    assert not os.path.exists(host.state_dir)
    assert not os.path.exists(os.path.dirname(host.state_dir))   # its empty parent too


def test_libvirtd_is_signalled_by_its_pid_file_only_while_that_is_libvirtd(host, sleeper):
    ended_ssh = subprocess.Popen(["true"])
    ended_ssh.wait()
    host.libvirtd = ended_ssh                    # the ssh that started it has ended
    host._put("/run/libvirt", "libvirtd.pid", f"{sleeper.pid}\n")
    host._daemon_signal(signal.SIGTERM)
    assert sleeper.poll() is None                # a PID that is not libvirtd's
    assert not host.libvirtd_alive()
    host._put("/run/libvirt", "libvirtd.pid", "")
    host._daemon_signal(signal.SIGTERM)          # no PID written: nothing


def test_libvirtd_there_outlives_its_ssh_and_is_stopped_by_its_pid(host, tmp_path):
    """The ssh that started libvirtd may end (a dropped connection) while the
    daemon goes on: it is alive, stopped and waited for by its PID there."""
    import shutil
    fake = tmp_path / "libvirtd"                 # a sleep whose name is libvirtd
    shutil.copy(shutil.which("sleep"), fake)
    daemon = subprocess.Popen([str(fake), "60"])
    ssh = subprocess.Popen(["sleep", "60"])      # stands in for the ssh
    try:
        host.libvirtd = ssh
        host._put("/run/libvirt", "libvirtd.pid", f"{daemon.pid}\n")
        ssh.kill()
        ssh.wait()
        assert host.libvirtd_alive()             # its ssh is gone, the daemon is not
        assert any("libvirtd" in x for x in host.leftovers())
        assert host.stop_libvirtd(timeout=10) == []
        assert daemon.wait(10) == -signal.SIGTERM
        assert not host.libvirtd_alive() and host.leftovers() == []
    finally:
        for p in (daemon, ssh):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_failing_command_there_names_the_host_and_server(host):
    with pytest.raises(RuntimeError, match=r"pm9 on srv9: sh -c 'exit 3' exited 3"):
        host._on_server("exit 3")


# -- a process left running on another server (testbed.cluster.RemoteProcess) --------

class Node:
    """A remote node whose "server" is this machine: popen and rpopen run here."""
    name, server, isRemote = "tcl9", "srv9", True

    def popen(self, cmd, **kw):
        return subprocess.Popen(cmd, **kw)

    def rpopen(self, cmd, tt=True, **kw):
        return subprocess.Popen(cmd, **kw)


def test_a_remote_process_is_signalled_by_its_pid_there_not_through_its_ssh(tmp_path):
    from testbed.cluster import RemoteProcess
    out = open(tmp_path / "out", "w")
    # the command says when SIGINT reaches it
    p = RemoteProcess(Node(), ["sh", "-c", "trap 'echo got INT; exit 7' INT; "
                               "while :; do sleep 0.05; done"],
                      stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    pid_there, seen = p._remote()
    assert pid_there == p.pid            # here the "server" is this machine: exec kept the PID
    assert seen[1] is None               # known by start time only (its name changes on exec)
    assert p.poll() is None
    p.send_signal(signal.SIGINT)
    assert p.wait(10) == 7
    assert open(tmp_path / "out").read() == "got INT\n"
    assert not os.path.exists(p.pidfile)  # cleaned once it ended
    p.send_signal(signal.SIGTERM)         # ended: nothing to do
    p.kill()


def test_a_remote_process_that_ended_first_is_not_waited_for():
    from testbed.cluster import RemoteProcess
    p = RemoteProcess(Node(), ["true"], stdin=subprocess.DEVNULL)
    assert p.wait(10) == 0 and p.returncode == 0
    p.terminate()                          # nothing running: no error, no wait


def test_kill_ends_the_ssh_when_the_server_does_not_answer():
    from testbed.cluster import ClusterError, RemoteProcess

    def gone(script):
        raise ClusterError("ssh: connect to host 10.254.9.2 port 22: No route to host")
    p = RemoteProcess(Node(), ["sleep", "60"], sh=gone, stdin=subprocess.DEVNULL)
    p.kill()
    assert p.proc.wait(10) == -signal.SIGKILL


def test_only_qemu_processes_are_noted_as_its_guests(host, sleeper):
    host._put("/run/libvirt", "qemu/vm1.pid", str(sleeper.pid))    # a PID now not QEMU's
    assert host.note_qemu_pids() == {}
