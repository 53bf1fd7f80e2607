"""What of the testbed's kind runs on this machine, seen from outside: the
check that a run left nothing behind does not trust the testbed's own
records (a process it lost track of would not be in them).

:func:`snapshot` lists named network namespaces, host-side links of Mininet
(``<node>-ethN``), our guests' taps and cluster tunnels' ``tapN``, OVS bridges, and the processes of
the kinds the testbed starts (libvirtd, QEMU, Xvnc, our controller, thin
clients, pings, iperf3, ``mnexec``-started shells, cluster mode's sshd,
ssh and stand-in OVS, and what drives a run: ``ovct``, experiment scripts,
Debian's ``mn``) and the stand-in servers' veths; :func:`left_behind`
compares two snapshots.
"""
from __future__ import annotations

import os
import re
import subprocess

import psutil

from testbed import ovs

#: process name or command line patterns of what the testbed starts
PROCESS_KINDS = {
    "libvirtd": lambda name, cmd: name == "libvirtd",
    "qemu": lambda name, cmd: name.startswith("qemu-system"),
    "Xvnc": lambda name, cmd: name == "Xvnc",
    "controller": lambda name, cmd: "-m controller" in cmd or "-m\x00controller" in cmd,
    "thin client": lambda name, cmd: "testbed.thinclient" in cmd,
    "ping": lambda name, cmd: name == "ping",
    "iperf3": lambda name, cmd: name == "iperf3",
    "mininet shell": lambda name, cmd: "mininet:" in cmd,
    # cluster mode: the stand-in servers' sshd and OVS, and every ssh of a
    # run (they read the ssh configuration in its run directory's cluster/)
    "cluster sshd": lambda name, cmd: name == "sshd" and "/srv" in cmd and "sshd_config" in cmd,
    "stand-in OVS": lambda name, cmd: name in ("ovsdb-server", "ovs-vswitchd")
    and "/cluster/srv" in cmd,
    "cluster ssh": lambda name, cmd: name == "ssh" and "/cluster/" in cmd,
    # what drives a run: our CLI, an experiment script, Debian's mn (one of
    # them orphaned goes on making and removing bridges after its caller)
    "ovct command": lambda name, cmd: "bin/ovct " in cmd + " ",
    "experiment": lambda name, cmd: bool(re.search(r"\bexperiments/\w+\.py\b", cmd)),
    "mn": lambda name, cmd: bool(re.search(r"(^|/|\s)mn(\s|$)", cmd)),
}
_LINK = re.compile(r"^([\w.]+-eth\d+|vnet\d+|ovctg[AB]|ovct-srv\d+|tap\d+)$")


def _processes() -> set[str]:
    out = set()
    for p in psutil.process_iter(["pid", "name", "cmdline", "status", "create_time"]):
        info = p.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(info["cmdline"] or [])
        for kind, match in PROCESS_KINDS.items():
            if match(info["name"] or "", cmd):
                out.add(f"{kind} pid {info['pid']} ({cmd[:80]}) started {info['create_time']:.0f}")
    return out


def _links() -> set[str]:
    return {f"link {name}" for name in os.listdir("/sys/class/net") if _LINK.match(name)}


def _netns() -> set[str]:
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return {f"netns {line.split()[0]}" for line in res.stdout.splitlines() if line.strip()}


def snapshot() -> set[str]:
    # OVS not running (yet): it has no bridges to show
    bridges = ovs.list_bridges() if ovs.ovs_running() else []
    return _processes() | _links() | _netns() | {f"bridge {b}" for b in bridges}


def left_behind(before: set[str], after: set[str] | None = None) -> list[str]:
    """What is there now that was not there ``before``."""
    return sorted((after if after is not None else snapshot()) - before)
