"""The hypervisor interface the controller uses (pure: no libvirt here).

Two implementations share it: :class:`controller.libvirt_hv.LibvirtHypervisor`
(real libvirt, one libvirtd per KVM host) and
:class:`controller.fake_hypervisor.FakeHypervisor` (unit tests, fake clock).

Capacity of an *emulated* KVM host: all emulated hosts share one physical
machine, so libvirt's node figures (free memory, CPU time) describe the
whole machine.  Each host therefore has a declared capacity (memory, CPUs)
in the inventory; free memory is that minus the memory of its running
domains, idle CPU is its CPUs minus what its domains used, measured from
their CPU-time deltas.  The machine-wide node figures are reported beside.
"""
from __future__ import annotations

import abc
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable


class HypervisorError(RuntimeError):
    pass


class MigrationError(HypervisorError):
    pass


@dataclass(frozen=True)
class HostSpec:
    name: str
    uri: str             # how the controller reaches this host's libvirtd
    address: str         # the host's IP on the data network
    memory_mib: int = 2048
    cpus: int = 2

    @property
    def migrate_uri(self) -> str:
        """How other hosts' libvirtd reach this one (peer-to-peer)."""
        return f"qemu+tcp://{self.address}/system"


@dataclass(frozen=True)
class DomainInfo:
    name: str
    host: str
    active: bool
    mac: str | None
    ip: str | None
    memory_mib: int
    vcpus: int


@dataclass(frozen=True)
class HostCapacity:
    host: str
    memory_mib: int            # declared
    used_memory_mib: int       # sum over running domains
    cpus: int                  # declared
    cpu_used: float            # vCPU-equivalents used by its domains
    sampled_over_s: float      # length of the CPU-time window
    node_free_memory_mib: int | None = None   # the physical machine's

    @property
    def free_memory_mib(self) -> int:
        free = self.memory_mib - self.used_memory_mib
        if self.node_free_memory_mib is not None:
            free = min(free, self.node_free_memory_mib)
        return free

    @property
    def idle_cpus(self) -> float:
        return max(0.0, self.cpus - self.cpu_used)


@dataclass(frozen=True)
class MigrationStats:
    """A completed migration: libvirt's completed-job statistics, every key
    of them in ``raw`` (``jobStats(COMPLETED)``), the commonly used ones
    named.  ``data_total_bytes`` is what libvirt planned to transfer (the
    guest's RAM); ``transferred_bytes`` is what was actually sent
    (``data_processed``: RAM pages written to the stream, with their
    headers)."""
    vm: str
    src: str
    dst: str
    elapsed_ms: float | None
    downtime_ms: float | None
    data_total_bytes: int | None
    memory_bps: float | None
    iterations: int | None
    setup_ms: float | None
    wall_s: float                    # measured by the caller around the call
    raw: dict = field(default_factory=dict)
    transferred_bytes: int | None = None


#: libvirt's completed-job statistics keys -> our names for the ones we use
JOB_STAT_KEYS = {
    "time_elapsed": "elapsed_ms", "downtime": "downtime_ms", "data_total": "data_total_bytes",
    "memory_bps": "memory_bps", "memory_iteration": "iterations", "setup_time": "setup_ms",
    "data_processed": "transferred_bytes",
}


def stats_from_job(vm: str, src: str, dst: str, job: dict, wall_s: float) -> MigrationStats:
    vals = {ours: job.get(theirs) for theirs, ours in JOB_STAT_KEYS.items()}
    if vals["transferred_bytes"] is None:
        vals["transferred_bytes"] = job.get("memory_processed")
    return MigrationStats(vm=vm, src=src, dst=dst, wall_s=wall_s, raw=dict(job), **vals)


def cpu_used(prev: dict[str, tuple[float, int]], cur: dict[str, tuple[float, int]]) -> tuple[float, float]:
    """vCPU-equivalents used between two samples of {domain: (t_s, cpu_ns)}.
    Domains present in only one sample are ignored.  Returns (used, window_s)."""
    used = 0.0
    window = 0.0
    for name, (t1, ns1) in cur.items():
        if name in prev:
            t0, ns0 = prev[name]
            if t1 > t0 and ns1 >= ns0:
                used += (ns1 - ns0) / 1e9 / (t1 - t0)
                window = max(window, t1 - t0)
    return used, window


def parse_domain_xml(xml: str) -> dict:
    """MAC, IP (from our guests' kernel command line), memory, vCPUs."""
    root = ET.fromstring(xml)
    mac = root.find("./devices/interface/mac")
    cmdline = root.findtext("./os/cmdline") or ""
    m = re.search(r"\bovct\.ip=([0-9.]+)(?:/\d+)?", cmdline)
    mem = root.find("./memory")
    kib = int(mem.text) if mem is not None and mem.text else 0
    unit = (mem.get("unit") if mem is not None else None) or "KiB"
    scale = {"KiB": 1 / 1024, "k": 1 / 1024, "MiB": 1, "M": 1, "GiB": 1024, "G": 1024,
             "b": 1 / 1048576, "bytes": 1 / 1048576}.get(unit, 1 / 1024)
    return {"mac": mac.get("address") if mac is not None else None,
            "ip": m.group(1) if m else None,
            "memory_mib": int(round(kib * scale)),
            "vcpus": int(root.findtext("./vcpu") or 1)}


#: what a domain event says happened (libvirt's lifecycle events, as far
#: as a migration needs them)
STARTED = "started"          # a domain started (at a migration's destination: incoming)
SUSPENDED = "suspended"      # paused (detail "migrated": the source's stop-and-copy)
RESUMED = "resumed"          # running again (at the destination: switchover done;
#                              at the source, detail "migrated": the migration was cancelled)
STOPPED = "stopped"          # shut off (at the source after a completed migration)
ITERATION = "iteration"      # a pre-copy pass began (``iteration`` counts them)
JOB_COMPLETED = "job_completed"   # the source's job ended; ``stats`` holds libvirt's


@dataclass(frozen=True)
class DomainEvent:
    """Something a hypervisor reported about one domain, with the time (on
    the watcher's clock) it arrived."""
    vm: str
    host: str
    kind: str
    detail: str = ""
    time: float = 0.0
    iteration: int | None = None
    stats: dict | None = None


class MigrationJob(abc.ABC):
    """A live migration in progress; never blocks the caller."""

    def __init__(self, vm: str, src: str, dst: str):
        self.vm, self.src, self.dst = vm, src, dst

    @abc.abstractmethod
    def done(self) -> bool: ...

    @abc.abstractmethod
    def result(self, timeout: float | None = None) -> MigrationStats:
        """Wait (at most ``timeout`` s) and return the statistics, or raise
        MigrationError (failed, aborted, timed out) or TimeoutError (still
        running after ``timeout``)."""

    @abc.abstractmethod
    def abort(self) -> None: ...


class Hypervisor(abc.ABC):
    #: capacity() is quick only with an earlier call's CPU-time sample of
    #: the host (libvirt's): the engine then reads every host's capacity in
    #: the background, so a decision never waits for a sampling window
    warm_capacity: bool = False

    def __init__(self, specs: list[HostSpec]):
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise HypervisorError(f"duplicate host names in {names}")
        self.specs = {s.name: s for s in specs}

    def hosts(self) -> list[str]:
        return list(self.specs)

    @abc.abstractmethod
    def domains(self, host: str) -> list[DomainInfo]: ...

    @abc.abstractmethod
    def capacity(self, host: str) -> HostCapacity: ...

    @abc.abstractmethod
    def _start_migration(self, vm: str, src: str, dst: str, timeout: float,
                         bandwidth_mibps: int = 0) -> MigrationJob: ...

    def in_flight(self) -> list[MigrationJob]:
        """Migrations running now (a restarted controller adopts them, so it
        never starts a second migration of a VM already moving).  Raises
        HypervisorError when a host cannot be asked (the answer would be
        incomplete)."""
        return []

    def inventory_changes(self, since: object | None) -> tuple[object | None, set[str] | None]:
        """(token, hosts): a token for the inventory as it is now, and the
        hosts whose domains may have changed since ``since`` (a token an
        earlier call returned; None: the first call) -- if this hypervisor
        can tell without listing every host.  hosts None: it cannot (the
        engine then lists them all, as it does for libvirt)."""
        return None, None

    def pump(self) -> None:
        """Deliver pending domain events now, on the caller's thread (the
        engine calls it on every poll); real hypervisors deliver them from
        their own thread and need not."""

    def watch(self, sink: Callable[[DomainEvent], None]) -> bool:
        """Deliver domain events (:class:`DomainEvent`) to ``sink`` from now
        on, possibly from another thread; ``sink`` must not block.  Returns
        False if this hypervisor reports none (then only polling tells)."""
        return False

    def spec(self, host: str) -> HostSpec:
        try:
            return self.specs[host]
        except KeyError:
            raise HypervisorError(f"unknown host {host!r}; known: "
                                  f"{', '.join(sorted(self.specs))}") from None

    def locate(self, vm: str) -> str | None:
        """The host where ``vm`` is running, if any (hosts that cannot be
        reached are skipped)."""
        for host in self.specs:
            try:
                doms = self.domains(host)
            except HypervisorError:
                continue
            if any(d.name == vm and d.active for d in doms):
                return host
        return None

    def placement(self) -> dict[str, str]:
        """{vm: host} for every running VM on reachable hosts."""
        out = {}
        for host in self.specs:
            try:
                for d in self.domains(host):
                    if d.active:
                        out[d.name] = host
            except HypervisorError:
                continue
        return out

    def migrate(self, vm: str, dst: str, timeout: float = 300.0,
                bandwidth_mibps: int = 0) -> MigrationJob:
        """Start a live migration of ``vm`` to ``dst``; checks arguments
        first so a bad request changes nothing.  ``bandwidth_mibps`` caps the
        migration stream (MiB/s; 0: unlimited)."""
        if dst not in self.specs:
            raise MigrationError(f"unknown destination host {dst!r}; known: "
                                 f"{', '.join(sorted(self.specs))}")
        src = self.locate(vm)
        if src is None:
            raise MigrationError(f"unknown VM {vm!r}: not running on any host")
        if src == dst:
            raise MigrationError(f"{vm} already runs on {dst}")
        if not timeout > 0:
            raise MigrationError("timeout must be > 0")
        if bandwidth_mibps < 0:
            raise MigrationError("bandwidth must be >= 0 MiB/s (0: unlimited)")
        return self._start_migration(vm, src, dst, timeout, bandwidth_mibps)
