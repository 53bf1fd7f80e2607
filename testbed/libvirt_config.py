"""Configuration text for one libvirtd per emulated KVM host, and the
libvirt domain definition of a guest.  Pure functions, unit-tested.

Each KVM host runs its own libvirtd with private /etc/libvirt, /run/libvirt,
/var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt (Mininet private
directories), a distinct host UUID (libvirt refuses to migrate "to the same
host" otherwise), TCP listening without auth on the host's own address -- which
exists only inside the emulated network -- for peer-to-peer migration.
"""
from __future__ import annotations

import os
import shutil
import uuid
import xml.etree.ElementTree as ET

from controller.classes import LIBVIRTD_TCP_PORT, MIGRATION_STREAM_PORTS
from testbed.accel import KVM, TCG
from testbed.topology import VM

#: a KVM host's private directories (Mininet privateDirs): mount point in
#: the host -> name of its backing directory under the host's state dir
PRIVATE = {"/etc/libvirt": "etc", "/run/libvirt": "run", "/var/lib/libvirt": "lib",
           "/var/cache/libvirt": "cache", "/var/log/libvirt": "log"}


def copy_caps(src: str, dst: str) -> None:
    """Copy a QEMU capabilities cache directory (``<cache>/qemu``) over
    another; a missing source copies nothing."""
    if os.path.isdir(src):
        shutil.copytree(src, dst, dirs_exist_ok=True)


def socket_path(state_dir: str) -> str:
    """Where a KVM host's libvirtd socket appears in the root namespace."""
    return os.path.join(state_dir, PRIVATE["/run/libvirt"], "libvirt-sock")


def libvirt_uri(state_dir: str) -> str:
    """How the root namespace (the controller, the testbed) reaches the
    libvirtd of the KVM host whose state lives in ``state_dir``."""
    return socket_uri(socket_path(state_dir))


def socket_uri(socket: str) -> str:
    """The libvirt URI of the libvirtd behind a UNIX socket here."""
    return f"qemu+unix:///system?socket={socket}"


_NS = uuid.UUID("6f7c2d0e-0c7a-4f6b-9a57-0ac7e5b1d0c7")


def host_uuid(host: str, run_id: str) -> str:
    """Distinct per emulated host and per run."""
    return str(uuid.uuid5(_NS, f"host/{run_id}/{host}"))


def domain_uuid(vm: str) -> str:
    return str(uuid.uuid5(_NS, f"vm/{vm}"))


def _q(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def libvirtd_conf(host_uuid_: str, listen_addr: str, log_file: str) -> str:
    return "\n".join([
        "# written by the OVCT testbed for one emulated KVM host",
        "listen_tcp = 1",
        "listen_tls = 0",
        f"listen_addr = {_q(listen_addr)}",
        f"tcp_port = {_q(LIBVIRTD_TCP_PORT)}",
        'auth_tcp = "none"',
        'auth_unix_rw = "none"',
        'auth_unix_ro = "none"',
        'unix_sock_dir = "/run/libvirt"',
        f"host_uuid = {_q(host_uuid_)}",
        "log_level = 3",
        f'log_outputs = "3:file:{log_file}"',
        "keepalive_interval = 5",
        "",
    ])


def qemu_conf() -> str:
    return "\n".join([
        "# written by the OVCT testbed for one emulated KVM host",
        'user = "root"',
        'group = "root"',
        "dynamic_ownership = 0",
        'security_driver = "none"',
        "cgroup_controllers = [ ]",
        "namespaces = [ ]",
        'stdio_handler = "file"',
        # written out so the controller's "migration" class matches them
        f"migration_port_min = {MIGRATION_STREAM_PORTS[0]}",
        f"migration_port_max = {MIGRATION_STREAM_PORTS[1]}",
        "",
    ])


def firewall_rules(peers: list[str]) -> str:
    """nftables rules for a KVM host's own namespace: libvirtd's TCP port and
    the migration ports accept only the KVM hosts' addresses.  What stays
    on the host's bridge (its guests) never crosses an OpenFlow switch, so
    the switches' ACL cannot see it; this does."""
    ports = (f"{LIBVIRTD_TCP_PORT}, {MIGRATION_STREAM_PORTS[0]}-{MIGRATION_STREAM_PORTS[1]}")
    return "\n".join([
        "table inet ovct {",
        "  chain input {",
        "    type filter hook input priority 0; policy accept;",
        f"    tcp dport {{ {ports} }} ip saddr != {{ {', '.join(sorted(peers))} }} drop",
        "  }",
        "}",
        "",
    ])


def domain_xml(vm: VM, kernel: str, initrd: str, rootfs: str, accel: str,
               console_log: str, bridge: str = "br0",
               emulator: str = "/usr/bin/qemu-system-x86_64",
               extra_cmdline: str = "") -> str:
    """A libvirt domain for a desktop guest.

    ``accel`` is "kvm" or "tcg" (libvirt type 'qemu').  The kernel command
    line carries the guest's address (the guest configures itself from its
    own domain definition).  The root image is attached read-only and
    shareable, so every host can use the same file and migration moves
    memory only.  Checksum/segmentation offloads are off on the virtio NIC:
    Open vSwitch's userspace datapath does not complete partial checksums.
    """
    if accel not in (KVM, TCG):
        raise ValueError(f"accel must be kvm or tcg, not {accel!r}")
    d = ET.Element("domain", type="kvm" if accel == KVM else "qemu")
    ET.SubElement(d, "name").text = vm.name
    ET.SubElement(d, "uuid").text = domain_uuid(vm.name)
    ET.SubElement(d, "memory", unit="MiB").text = str(vm.memory_mib)
    ET.SubElement(d, "currentMemory", unit="MiB").text = str(vm.memory_mib)
    ET.SubElement(d, "vcpu").text = str(vm.vcpus)
    os_ = ET.SubElement(d, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_, "kernel").text = kernel
    ET.SubElement(os_, "initrd").text = initrd
    cmdline = f"console=ttyS0 quiet ovct.ip={vm.ip_cidr} ovct.name={vm.name}"
    ET.SubElement(os_, "cmdline").text = (cmdline + " " + extra_cmdline).strip()
    feats = ET.SubElement(d, "features")
    ET.SubElement(feats, "acpi")
    if accel == KVM:
        ET.SubElement(d, "cpu", mode="host-model")
    ET.SubElement(d, "clock", offset="utc")
    ET.SubElement(d, "on_poweroff").text = "destroy"
    ET.SubElement(d, "on_reboot").text = "destroy"
    ET.SubElement(d, "on_crash").text = "destroy"
    dev = ET.SubElement(d, "devices")
    ET.SubElement(dev, "emulator").text = emulator
    disk = ET.SubElement(dev, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    ET.SubElement(disk, "source", file=rootfs)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    ET.SubElement(disk, "readonly")
    ET.SubElement(disk, "shareable")
    nic = ET.SubElement(dev, "interface", type="bridge")
    ET.SubElement(nic, "source", bridge=bridge)
    ET.SubElement(nic, "mac", address=vm.mac)
    ET.SubElement(nic, "model", type="virtio")
    drv = ET.SubElement(nic, "driver", name="qemu")
    off = {k: "off" for k in ("csum", "gso", "tso4", "tso6", "ecn", "ufo")}
    ET.SubElement(drv, "host", **off)
    ET.SubElement(drv, "guest", **{k: "off" for k in ("csum", "tso4", "tso6", "ecn", "ufo")})
    serial = ET.SubElement(dev, "serial", type="file")
    ET.SubElement(serial, "source", path=console_log, append="on")
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(dev, "memballoon", model="none")
    return ET.tostring(d, encoding="unicode")
