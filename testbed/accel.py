"""KVM or TCG: probe whether KVM acceleration actually works here.

A /dev/kvm that exists is not enough (on a paravirtualised host QEMU with
``-accel kvm`` aborts), so we boot the guest kernel under KVM with no root
disk and ``panic=-1``: a working KVM reaches the kernel's "VFS: Unable to
mount root" panic and QEMU exits cleanly (``-no-reboot``).
"""
from __future__ import annotations

import os
import subprocess

QEMU = "qemu-system-x86_64"
KVM, TCG, AUTO = "kvm", "tcg", "auto"
#: what a user may ask for (auto: KVM if the probe boots, else TCG)
CHOICES = (AUTO, KVM, TCG)


def probe_kvm(kernel: str, timeout: float = 60.0) -> tuple[bool, str]:
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm not accessible"
    cmd = [QEMU, "-accel", "kvm", "-M", "pc", "-m", "64", "-nodefaults", "-display", "none",
           "-no-reboot", "-serial", "stdio", "-kernel", kernel,
           "-append", "console=ttyS0 panic=-1 quiet loglevel=3"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"KVM probe did not finish in {timeout:g} s"
    except OSError as exc:
        return False, f"cannot run {QEMU}: {exc}"
    text = res.stdout + res.stderr
    if res.returncode == 0 and "Kernel panic" in text:
        return True, "KVM probe booted the guest kernel"
    last = (text.strip().splitlines() or ["no output"])[-1]
    return False, f"QEMU with KVM failed (exit {res.returncode}): {last}"


def choose(kernel: str, forced: str | None = None) -> tuple[str, str]:
    """('kvm' | 'tcg', why)."""
    if forced in (KVM, TCG):
        return forced, "forced by option"
    if forced not in (None, AUTO):
        raise ValueError(f"accel must be kvm, tcg or auto, not {forced!r}")
    ok, why = probe_kvm(kernel)
    return (KVM if ok else TCG), why
