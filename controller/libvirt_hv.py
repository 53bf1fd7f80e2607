"""The hypervisor interface on real libvirt (libvirt-python); thin.

Live migration is the report's ``virsh migrate --live --persistent``, plus
``--undefine-source``: ``migrateToURI3`` with LIVE | PEER2PEER |
PERSIST_DEST | UNDEFINE_SOURCE, so a VM that moved is defined on exactly one
host (without it the source kept an inactive copy that listings, and a
later migration back, saw as "the VM is here too"); the source libvirtd
talking to the destination's over the emulated network and the QEMU
migration stream sent to the destination's data-network address.  It runs
in a thread; the caller gets a :class:`MigrationJob` at once.

Domain events (:meth:`LibvirtHypervisor.watch`): one connection per host
kept open for libvirt's lifecycle, migration-iteration and job-completed
events, dispatched by libvirt's default event loop in a thread of its own
(registered before any connection is opened, so keepalives are answered
too).  They time a migration's phases: the destination's QEMU starting, the
source pausing for stop-and-copy, the destination resuming.  A watch
connection that dies (a libvirtd restarted) is opened again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import libvirt

from controller import hypervisor as H
from controller.hypervisor import (DomainEvent, DomainInfo, HostCapacity, HostSpec,
                                   Hypervisor, HypervisorError, MigrationError, MigrationJob,
                                   MigrationStats, cpu_used, parse_domain_xml,
                                   stats_from_job)

LOG = logging.getLogger("ovct.libvirt")

MIGRATE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
                 | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)


def _silence(_ctx, _err):
    """libvirt prints every error to stderr by default; we raise instead."""


libvirt.registerErrorHandler(_silence, None)

_LOOP_LOCK = threading.Lock()
_LOOP: threading.Thread | None = None


def _ensure_event_loop() -> None:
    """libvirt's default event loop, once per process, in a daemon thread."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is not None:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()
        _LOOP = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _LOOP.start()


#: libvirt lifecycle event -> our kind, and its detail codes -> names
_LIFECYCLE = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: (H.STARTED, {
        libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED: "migrated"}),
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: (H.SUSPENDED, {
        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED: "migrated"}),
    libvirt.VIR_DOMAIN_EVENT_RESUMED: (H.RESUMED, {
        libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED: "migrated"}),
    libvirt.VIR_DOMAIN_EVENT_STOPPED: (H.STOPPED, {
        libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED: "migrated"}),
}


class LibvirtHypervisor(Hypervisor):
    warm_capacity = True          # CPU use is measured between two capacity() calls

    def __init__(self, specs: list[HostSpec], cpu_sample_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        _ensure_event_loop()
        super().__init__(specs)
        self.cpu_sample_s = cpu_sample_s
        self.clock = clock
        self._conns: dict[str, libvirt.virConnect] = {}
        self._cpu: dict[str, tuple[float, dict[str, tuple[float, int]]]] = {}
        self._lock = threading.Lock()
        self._sink: Callable[[DomainEvent], None] | None = None
        self._watch_conns: dict[str, libvirt.virConnect] = {}
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        self._unwatched: set[str] = set()      # hosts whose failure was logged

    def open(self, host: str) -> libvirt.virConnect:
        """A fresh connection to a host's libvirtd (callers own it)."""
        spec = self.spec(host)
        try:
            return libvirt.open(spec.uri)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot reach libvirtd of {host} ({spec.uri}): "
                                  f"{exc.get_error_message()}") from None

    def _conn(self, host: str) -> libvirt.virConnect:
        with self._lock:
            conn = self._conns.get(host)
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except libvirt.libvirtError:
                    pass
            conn = self.open(host)
            self._conns[host] = conn
            return conn

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for conn in [*self._conns.values(), *self._watch_conns.values()]:
                try:
                    conn.close()
                except libvirt.libvirtError:
                    pass
            self._conns.clear()
            self._watch_conns.clear()

    # -- domain events ----------------------------------------------------------
    def watch(self, sink: Callable[[DomainEvent], None]) -> bool:
        self._sink = sink
        for host in self.specs:
            self._watch_host(host)
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._rewatch, name="libvirt-watch",
                                             daemon=True)
            self._watcher.start()
        return True

    def watching(self) -> set[str]:
        """The hosts whose domain events arrive now."""
        with self._lock:
            conns = dict(self._watch_conns)
        out = set()
        for host, conn in conns.items():
            try:
                if conn.isAlive():
                    out.add(host)
            except libvirt.libvirtError:
                pass
        return out

    def _watch_host(self, host: str) -> None:
        try:
            conn = self.open(host)
            conn.setKeepAlive(5, 3)
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                        self._on_lifecycle, host)
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
                                        self._on_iteration, host)
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                        self._on_job_completed, host)
        except (HypervisorError, libvirt.libvirtError) as exc:
            if host not in self._unwatched:    # say it once, keep trying
                LOG.info("cannot watch %s's domain events yet (retrying every second): %s",
                         host, exc)
                self._unwatched.add(host)
            return
        self._unwatched.discard(host)
        LOG.info("watching %s's domain events", host)
        with self._lock:
            self._watch_conns[host] = conn

    def _rewatch(self) -> None:
        """Open a host's watch connection again when it died."""
        while not self._closed.wait(1.0):
            for host in self.specs:
                conn = self._watch_conns.get(host)
                try:
                    alive = conn is not None and conn.isAlive()
                except libvirt.libvirtError:
                    alive = False
                if not alive:
                    self._watch_host(host)

    def _emit(self, ev: DomainEvent) -> None:
        if self._sink is not None:
            self._sink(ev)

    def _on_lifecycle(self, _conn, dom, event, detail, host) -> None:
        kind, details = _LIFECYCLE.get(event, (None, {}))
        if kind is not None:
            self._emit(DomainEvent(dom.name(), host, kind, details.get(detail, str(detail)),
                                   self.clock()))

    def _on_iteration(self, _conn, dom, iteration, host) -> None:
        self._emit(DomainEvent(dom.name(), host, H.ITERATION, "", self.clock(),
                               iteration=iteration))

    def _on_job_completed(self, _conn, dom, params, host) -> None:
        self._emit(DomainEvent(dom.name(), host, H.JOB_COMPLETED, "", self.clock(),
                               stats=dict(params)))

    def domains(self, host: str) -> list[DomainInfo]:
        conn = self._conn(host)
        out = []
        try:
            for dom in conn.listAllDomains():
                info = parse_domain_xml(dom.XMLDesc())
                out.append(DomainInfo(dom.name(), host, bool(dom.isActive()), info["mac"],
                                      info["ip"], info["memory_mib"], info["vcpus"]))
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{host}: {exc.get_error_message()}") from None
        return out

    def _cpu_sample(self, conn) -> tuple[float, dict[str, tuple[float, int]]]:
        now = time.monotonic()
        return now, {d.name(): (now, d.info()[4]) for d in conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}

    def capacity(self, host: str) -> HostCapacity:
        """CPU use is measured between this call's sample and the previous
        one (kept per host); without a sample from the last 30 s, a
        ``cpu_sample_s`` window is taken now."""
        spec = self.spec(host)
        conn = self._conn(host)
        try:
            prev = self._cpu.get(host)
            cur = self._cpu_sample(conn)
            if prev is None or cur[0] - prev[0] > 30:
                time.sleep(self.cpu_sample_s)
                prev, cur = cur, self._cpu_sample(conn)
            self._cpu[host] = cur
            used, window = cpu_used(prev[1], cur[1])
            mem = sum(parse_domain_xml(d.XMLDesc())["memory_mib"]
                      for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
            node_free = conn.getFreeMemory() // (1024 * 1024)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{host}: {exc.get_error_message()}") from None
        return HostCapacity(host, spec.memory_mib, mem, spec.cpus, used,
                            window or cur[0] - prev[0], node_free)

    def in_flight(self) -> list[MigrationJob]:
        """Outgoing migrations running now (some other process -- a previous
        controller -- started them): the source domain has an outgoing
        migration job, and its destination is the host where the same domain
        waits paused for it."""
        outgoing, incoming, unreachable = [], {}, []
        for host in self.specs:
            try:
                doms = self._conn(host).listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            except (HypervisorError, libvirt.libvirtError) as exc:
                unreachable.append(f"{host} ({exc})")
                continue
            for dom in doms:
                try:
                    op = dom.jobStats().get("operation")
                except libvirt.libvirtError:
                    # the destination's incoming domain: libvirt gives
                    # migration statistics only at the source
                    op = libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN
                if op == libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT:
                    outgoing.append((dom.name(), host))
                elif (op == libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN
                      or dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED):
                    incoming[dom.name()] = host
        if unreachable:
            # an unseen host may hold either end of a migration: no answer
            # rather than a wrong one
            raise HypervisorError("cannot list the migrations of " + ", ".join(unreachable))
        return [AdoptedMigrationJob(self, vm, src, incoming[vm])
                for vm, src in outgoing if incoming.get(vm) not in (None, src)]

    def _start_migration(self, vm: str, src: str, dst: str, timeout: float,
                         bandwidth_mibps: int = 0) -> MigrationJob:
        job = LibvirtMigrationJob(self, vm, src, dst, timeout, bandwidth_mibps)
        job.start()
        return job


class LibvirtMigrationJob(MigrationJob):
    def __init__(self, hv: LibvirtHypervisor, vm: str, src: str, dst: str, timeout: float,
                 bandwidth_mibps: int = 0):
        super().__init__(vm, src, dst)
        self.hv = hv
        self.timeout = timeout
        self.bandwidth_mibps = bandwidth_mibps
        self._done = threading.Event()
        self._stats: MigrationStats | None = None
        self._error: str | None = None
        self._aborted = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"migrate-{vm}", daemon=True)
        self._watch = threading.Thread(target=self._watchdog, name=f"watch-{vm}", daemon=True)
        self.started = time.monotonic()

    def start(self) -> None:
        self._thread.start()
        self._watch.start()

    def _run(self) -> None:
        dst = self.hv.spec(self.dst)
        t0 = time.monotonic()
        conn = None
        try:
            conn = self.hv.open(self.src)
            dom = conn.lookupByName(self.vm)
            params = {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{dst.address}"}
            if self.bandwidth_mibps:            # MiB/s; libvirt: 0 is unlimited
                params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(self.bandwidth_mibps)
            dom.migrateToURI3(dst.migrate_uri, params, MIGRATE_FLAGS)
            wall = time.monotonic() - t0
            # the VM has moved: statistics that cannot be read do not undo that
            self._stats = stats_from_job(self.vm, self.src, self.dst, self._job_stats(), wall)
        except libvirt.libvirtError as exc:
            why = "timed out and was aborted" if self._aborted.is_set() else "failed"
            self._error = (f"migration of {self.vm} {self.src}->{self.dst} {why}: "
                           f"{exc.get_error_message()}")
        except HypervisorError as exc:
            self._error = f"migration of {self.vm} {self.src}->{self.dst} failed: {exc}"
        finally:
            if conn is not None:
                try:
                    conn.close()
                except libvirt.libvirtError:
                    pass
            self._done.set()

    def _job_stats(self) -> dict:
        """The destination's completed-job statistics ({} if unreadable)."""
        try:
            dconn = self.hv.open(self.dst)
        except HypervisorError as exc:
            LOG.warning("%s: migration statistics unreadable: %s", self.vm, exc)
            return {}
        try:
            return dconn.lookupByName(self.vm).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except libvirt.libvirtError as exc:
            LOG.warning("%s: migration statistics unreadable: %s", self.vm,
                        exc.get_error_message())
            return {}
        finally:
            dconn.close()

    def _watchdog(self) -> None:
        # (a wait beyond the platform's limit raises OverflowError)
        if self._done.wait(min(self.timeout, 30 * 24 * 3600.0)):
            return
        # the job may not have started yet when the deadline passes: keep
        # asking until the migration call returns
        while not self._done.is_set():
            self.abort()
            self._done.wait(0.5)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> MigrationStats:
        if not self._done.wait(timeout):
            raise TimeoutError(f"migration of {self.vm} still running")
        if self._error:
            raise MigrationError(self._error)
        assert self._stats is not None
        return self._stats

    def abort(self) -> None:
        """Ask libvirt to cancel the job; the VM keeps running on the source."""
        self._aborted.set()
        try:
            conn = self.hv.open(self.src)
        except HypervisorError:
            return
        try:
            conn.lookupByName(self.vm).abortJob()
        except libvirt.libvirtError:
            pass   # finished or failed meanwhile
        finally:
            conn.close()


class AdoptedMigrationJob(MigrationJob):
    """A migration someone else started (a controller before a restart):
    watched through the source's job until it ends; the outcome is where
    the VM then runs."""

    POLL_S = 0.5        # the engine asks every few ms; libvirt is asked at most this often

    def __init__(self, hv: LibvirtHypervisor, vm: str, src: str, dst: str):
        super().__init__(vm, src, dst)
        self.hv = hv
        self.started = time.monotonic()
        self._checked = 0.0
        self._done = False

    def done(self) -> bool:
        now = time.monotonic()
        if self._done or now - self._checked < self.POLL_S:
            return self._done
        self._checked = now
        try:
            dom = self.hv._conn(self.src).lookupByName(self.vm)
            self._done = not dom.isActive() or dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE
        except (HypervisorError, libvirt.libvirtError):
            self._done = True          # the source domain is gone, or unreachable
        return self._done

    def result(self, timeout: float | None = None) -> MigrationStats:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"migration of {self.vm} still running")
            time.sleep(self.POLL_S)
        where = self.hv.locate(self.vm)
        if where != self.dst:
            raise MigrationError(f"adopted migration of {self.vm} {self.src}->{self.dst} ended "
                                 f"with the VM on {where or 'no host'}")
        try:
            job = self.hv._conn(self.dst).lookupByName(self.vm).jobStats(
                libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except libvirt.libvirtError:
            job = {}
        return stats_from_job(self.vm, self.src, self.dst, job, time.monotonic() - self.started)

    def abort(self) -> None:
        try:
            self.hv._conn(self.src).lookupByName(self.vm).abortJob()
        except (HypervisorError, libvirt.libvirtError):
            pass

