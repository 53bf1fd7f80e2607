"""Preflight: refuse to start without root or with missing dependencies,
and say exactly how to install what is missing."""
from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass

SETUP_HINT = "sudo scripts/setup.sh"


@dataclass(frozen=True)
class Requirement:
    what: str          # command name or Python module
    kind: str          # "command" or "module"
    debian: str | None = None   # Debian package providing it
    pip: str | None = None      # PyPI distribution providing it

    def present(self) -> bool:
        if self.kind == "command":
            return shutil.which(self.what, path=_PATH) is not None
        return importlib.util.find_spec(self.what) is not None

    def install_command(self) -> str:
        if self.debian:
            return f"apt-get install -y {self.debian}"
        return f"pip install {self.pip}   (or: {SETUP_HINT})"


# the PATH that root's tools live in, even when our caller's PATH is short
_PATH = os.pathsep.join(dict.fromkeys(
    os.environ.get("PATH", "").split(os.pathsep)
    + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]))

NETWORK = (
    Requirement("ovs-vsctl", "command", debian="openvswitch-switch"),
    Requirement("ovs-ofctl", "command", debian="openvswitch-switch"),
    Requirement("mnexec", "command", debian="mininet"),
    Requirement("ip", "command", debian="iproute2"),
    Requirement("tc", "command", debian="iproute2"),
    Requirement("ping", "command", debian="iputils-ping"),
    Requirement("arping", "command", debian="iputils-arping"),
    Requirement("iperf3", "command", debian="iperf3"),
    Requirement("ethtool", "command", debian="ethtool"),
    Requirement("tcpdump", "command", debian="tcpdump"),
    Requirement("unshare", "command", debian="util-linux"),
    Requirement("mininet", "module", debian="mininet"),
    Requirement("os_ken", "module", pip="os-ken"),
    Requirement("networkx", "module", pip="networkx"),
    Requirement("pingparsing", "module", pip="pingparsing"),
)


#: what KVM hosts and guests need on top of NETWORK
KVM = (
    Requirement("qemu-system-x86_64", "command", debian="qemu-system-x86"),
    Requirement("libvirtd", "command", debian="libvirt-daemon"),
    Requirement("virsh", "command", debian="libvirt-clients"),
    Requirement("libvirt", "module", debian="python3-libvirt"),
    Requirement("debootstrap", "command", debian="debootstrap"),
    Requirement("mksquashfs", "command", debian="squashfs-tools"),
    Requirement("cpio", "command", debian="cpio"),
    Requirement("nft", "command", debian="nftables"),
)


#: cluster mode (Mininet's cluster edition runs ssh and sudo) ...
CLUSTER = (
    Requirement("ssh", "command", debian="openssh-client"),
    Requirement("sudo", "command", debian="sudo"),
)
#: ... and its stand-in servers on this machine (their own sshd)
STANDIN = (
    Requirement("sshd", "command", debian="openssh-server"),
    Requirement("ssh-keygen", "command", debian="openssh-client"),
    Requirement("ovsdb-tool", "command", debian="openvswitch-switch"),
)


class PreflightError(RuntimeError):
    pass


def missing(requirements=NETWORK) -> list[Requirement]:
    return [r for r in requirements if not r.present()]


def report(missing_reqs: list[Requirement]) -> str:
    lines = ["missing dependencies:"]
    for r in missing_reqs:
        lines.append(f"  - {r.kind} {r.what}: {r.install_command()}")
    debs = sorted({r.debian for r in missing_reqs if r.debian})
    if debs:
        lines.append(f"all at once: apt-get install -y {' '.join(debs)}")
    lines.append(f"or run the project's set-up step: {SETUP_HINT}")
    return "\n".join(lines)


def check(requirements=NETWORK, need_root: bool = True) -> None:
    """Raise PreflightError with a readable message if anything is missing."""
    problems = []
    if need_root and os.geteuid() != 0:
        problems.append("the testbed needs root (network namespaces, Open vSwitch): "
                        "run it with sudo")
    gone = missing(requirements)
    if gone:
        problems.append(report(gone))
    if problems:
        raise PreflightError("\n".join(problems))


#: what another server needs for its KVM hosts (cluster mode), by command
REMOTE_KVM = tuple(r for r in NETWORK + KVM
                   if r.what in ("mnexec", "qemu-system-x86_64", "libvirtd", "nft")) + (
    Requirement("sha256sum", "command", debian="coreutils"),
    Requirement("tar", "command", debian="tar"),
)


def remote_probe(reqs=REMOTE_KVM) -> list[str]:
    """The command that prints, on another server, each of ``reqs`` it lacks."""
    names = " ".join(r.what for r in reqs)
    return ["sh", "-c", f"for c in {names}; do command -v $c >/dev/null || echo $c; done"]


def remote_missing(server: str, output: str, reqs=REMOTE_KVM) -> str | None:
    """What ``remote_probe``'s ``output`` says is missing on ``server``,
    with the command that installs it there (None: nothing)."""
    missing = [r for r in reqs if r.what in output.split()]
    if not missing:
        return None
    pkgs = " ".join(dict.fromkeys(r.debian for r in missing if r.debian))
    return (f"server {server} lacks {', '.join(r.what for r in missing)} for its KVM "
            f"hosts; on it: apt-get install -y {pkgs}   (or: {SETUP_HINT})")
