"""A hypervisor with no libvirt, driven by a (fake) clock: for unit tests of
the controller's logic and for dry runs.  Same interface as
:class:`controller.libvirt_hv.LibvirtHypervisor`, including the domain
events a live migration produces, in libvirt's order:

    t0 + setup_s                    destination STARTED (incoming QEMU up)
    t0 + setup_s + k * pass_s       ITERATION k (pre-copy passes)
    end - downtime                  source SUSPENDED (stop-and-copy begins)
    end = t0 + migration_s          destination RESUMED; the VM runs there
    end + completion_lag_s          source STOPPED, JOB_COMPLETED; the job is done
                                    (libvirt: ~1.6 s later, the source QEMU exiting)

Events are delivered to the watcher by :meth:`FakeHypervisor.pump` (the
engine calls it on every poll), each once its time on the fake clock has
come.  A simulation passes ``profile`` to give each migration its own
duration, downtime and bytes (a :class:`MigrationProfile`), and asks
:meth:`FakeHypervisor.next_event_time` when to look again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from controller import hypervisor as H
from controller.hypervisor import (DomainEvent, DomainInfo, HostCapacity, HostSpec, Hypervisor,
                                   HypervisorError, MigrationError, MigrationJob,
                                   MigrationStats)


@dataclass
class FakeVM:
    info: DomainInfo
    cpu_used: float = 0.0


@dataclass(frozen=True)
class MigrationProfile:
    """One migration as a simulation wants it: how long it takes, the
    downtime, what libvirt reports it sent, the stream's bandwidth and the
    VM's dirty rate (libvirt's ``memory_dirty_rate``, pages/s)."""
    migration_s: float
    downtime_ms: float
    transferred_bytes: int
    memory_bps: float = 10.0
    dirty_pages_per_s: float | None = None


class FakeHypervisor(Hypervisor):
    def __init__(self, specs: list[HostSpec], clock: Callable[[], float],
                 migration_s: float = 5.0, downtime_ms: float = 150.0, setup_s: float = 0.3,
                 events: bool = True, completion_lag_s: float = 0.0,
                 transfer_ratio: float = 0.7,
                 profile: Callable[[str, int], MigrationProfile] | None = None):
        super().__init__(specs)
        self.clock = clock
        self.migration_s = migration_s
        self.downtime_ms = downtime_ms
        self.setup_s = setup_s
        self.completion_lag_s = completion_lag_s
        #: bytes sent per byte of RAM (libvirt's data_processed / data_total)
        self.transfer_ratio = transfer_ratio
        #: (vm, memory MiB) -> that migration's profile (None: the constants above)
        self.profile = profile
        self._changes: list[str] = []                  # hosts, each time one's VMs changed
        self._open: list[FakeMigrationJob] = []       # not done yet
        self._pumping: list[FakeMigrationJob] = []    # events still to deliver
        self.vms: dict[str, dict[str, FakeVM]] = {h: {} for h in self.specs}
        self.down: set[str] = set()         # hosts whose libvirtd is unreachable
        self.fail_next: str | None = None   # make the next migration fail with this ...
        self.fail_after_s = 0.0             # ... this long after it started
        self.land_on_failure = False        # ... and yet the VM ends at the destination
        self.jobs: list["FakeMigrationJob"] = []
        self.sink: Callable[[DomainEvent], None] | None = None
        self.events = events                # False: a hypervisor that reports none

    def add_vm(self, host: str, name: str, ip: str, mac: str, memory_mib: int = 256,
               vcpus: int = 1, cpu_used: float = 0.0) -> None:
        self.spec(host)
        self.vms[host][name] = FakeVM(DomainInfo(name, host, True, mac, ip, memory_mib, vcpus),
                                      cpu_used)
        self._changes.append(host)

    def _landed(self, vm: str, src: str, dst: str) -> None:
        """A migrated VM now runs on ``dst``."""
        self._changes += [src, dst]

    def inventory_changes(self, since):
        """The hosts whose VMs were added or moved through this class, or
        that went down or came back (tests that edit ``vms`` by hand read
        the inventory with max_age=0, which always lists every host)."""
        token = (len(self._changes), frozenset(self.down))
        if since is None or since[1] != token[1] or since[0] > token[0]:
            return token, None
        return token, set(self._changes[since[0]:])

    def _reachable(self, host: str) -> None:
        self.spec(host)
        if host in self.down:
            raise HypervisorError(f"cannot reach libvirtd of {host}")

    def domains(self, host: str) -> list[DomainInfo]:
        self._reachable(host)
        self._land()
        return [v.info for v in self.vms[host].values()]

    def _land(self) -> None:
        """Let finished jobs land."""
        if self._open:
            self._open = [job for job in self._open if not job.done()]

    def capacity(self, host: str) -> HostCapacity:
        self._reachable(host)
        spec = self.specs[host]
        active = [v for v in self.vms[host].values() if v.info.active]
        return HostCapacity(host, spec.memory_mib, sum(v.info.memory_mib for v in active),
                            spec.cpus, sum(v.cpu_used for v in active), 1.0)

    def _start_migration(self, vm: str, src: str, dst: str, timeout: float,
                         bandwidth_mibps: int = 0) -> MigrationJob:
        job = FakeMigrationJob(self, vm, src, dst, timeout, self.fail_next, bandwidth_mibps,
                               self.fail_after_s)
        self.fail_next = None
        self.jobs.append(job)
        self._open.append(job)
        self._pumping.append(job)
        return job

    def in_flight(self) -> list[MigrationJob]:
        self._land()
        return list(self._open)

    def next_event_time(self) -> float | None:
        """The earliest time something of a migration is due (an event, its
        end, its failure or timeout); None: nothing is."""
        due = [t for job in self._pumping for t in job.pending_times()]
        return min(due, default=None)

    def watch(self, sink: Callable[[DomainEvent], None]) -> bool:
        if not self.events:
            return False
        self.sink = sink
        return True

    def pump(self) -> None:
        """Deliver every event whose time has come (in time order)."""
        if self.sink is None:
            return
        now = self.clock()
        due = sorted((ev for job in self._pumping for ev in job.due(now)), key=lambda e: e.time)
        self._pumping = [job for job in self._pumping if not job.exhausted()]
        for ev in due:
            self.sink(ev)


class FakeMigrationJob(MigrationJob):
    def __init__(self, hv: FakeHypervisor, vm: str, src: str, dst: str, timeout: float,
                 fail: str | None, bandwidth_mibps: int = 0, fail_after_s: float = 0.0):
        super().__init__(vm, src, dst)
        self.fail_after_s = fail_after_s
        self.hv = hv
        self.started = hv.clock()
        self.timeout = timeout
        self.fail = fail
        self.bandwidth_mibps = bandwidth_mibps
        self.aborted = False
        self._outcome: MigrationStats | str | None = None
        self._sent: set[str] = set()
        memory = next((v.info.memory_mib for v in hv.vms.get(src, {}).values()
                       if v.info.name == vm), 0)
        self.profile = hv.profile(vm, memory) if hv.profile is not None else None
        end = self.end
        downtime = self.profile.downtime_ms if self.profile else hv.downtime_ms
        ev = lambda host, kind, t, **kw: DomainEvent(vm, host, kind, "migrated", t, **kw)  # noqa: E731
        self._timeline = [
            ev(dst, H.STARTED, self.started + hv.setup_s),
            ev(src, H.ITERATION, self.started + hv.setup_s, iteration=1),
            ev(src, H.SUSPENDED, end - downtime / 1000),
            ev(dst, H.RESUMED, end),
            ev(src, H.STOPPED, end + hv.completion_lag_s),
        ]

    @property
    def end(self) -> float:
        return self.started + (self.profile.migration_s if self.profile else self.hv.migration_s)

    def pending_times(self) -> list[float]:
        """When something of this job is due next (for next_event_time)."""
        failed = isinstance(self._outcome, str)
        out = [ev.time for ev in self._timeline if f"{ev.host}/{ev.kind}" not in self._sent
               and not (failed and ev.time >= self._failed_at)]
        if self._outcome is None:
            out.append(self.end + self.hv.completion_lag_s)
            if self.fail:
                out.append(self.started + self.fail_after_s)
            if self.timeout < math.inf:
                out.append(self.started + self.timeout)
        elif ("failed" if failed else "completed") not in self._sent:
            out.append(self.hv.clock())       # its outcome is due now; later events keep their times
        return out

    def exhausted(self) -> bool:
        """Over, and every event it will ever produce delivered."""
        if self._outcome is None:
            return False
        if isinstance(self._outcome, str):
            return "failed" in self._sent
        return "completed" in self._sent and all(
            f"{ev.host}/{ev.kind}" in self._sent for ev in self._timeline)

    def due(self, now: float) -> list[DomainEvent]:
        """Events that have happened by ``now`` and were not delivered yet;
        a failed job stops producing them (and reports its source running)."""
        self._finish()
        out = []
        for ev in self._timeline:
            key = f"{ev.host}/{ev.kind}"
            if key in self._sent or ev.time > now:
                continue
            if isinstance(self._outcome, str) and ev.time >= self._failed_at:
                continue
            self._sent.add(key)
            out.append(ev)
        if isinstance(self._outcome, str) and "failed" not in self._sent:
            self._sent.add("failed")
            paused = f"{self.src}/{H.SUSPENDED}" in self._sent
            if paused:      # libvirt resumes a source paused for a migration that failed
                out.append(DomainEvent(self.vm, self.src, H.RESUMED, "migration_canceled",
                                       self._failed_at))
        if isinstance(self._outcome, MigrationStats) and "completed" not in self._sent:
            self._sent.add("completed")
            out.append(DomainEvent(self.vm, self.src, H.JOB_COMPLETED, "",
                                   self.end + self.hv.completion_lag_s,
                                   stats=dict(self._outcome.raw)))
        return out

    def _finish(self) -> None:
        if self._outcome is not None:
            return
        now = self.hv.clock()
        end = self.end
        if self.aborted:
            self._outcome = f"migration of {self.vm} aborted"
        elif self.fail and now >= self.started + self.fail_after_s:
            self._outcome = f"migration of {self.vm} failed: {self.fail}"
            if self.hv.land_on_failure:     # e.g. an error after the switchover
                self._move()
        elif self.dst in self.hv.down:
            self._outcome = f"migration of {self.vm} failed: cannot reach libvirtd of {self.dst}"
        elif now >= self.started + self.timeout and end > self.started + self.timeout:
            self._outcome = f"migration of {self.vm} timed out and was aborted"
        elif now >= end + self.hv.completion_lag_s:
            moved = self._move()
            total = moved.info.memory_mib << 20
            pr = self.profile
            secs = pr.migration_s if pr else self.hv.migration_s
            down = pr.downtime_ms if pr else self.hv.downtime_ms
            sent = pr.transferred_bytes if pr else int(total * self.hv.transfer_ratio)
            bps = pr.memory_bps if pr else 10.0
            raw = {"time_elapsed": secs * 1000, "downtime": down,
                   "data_total": total, "data_processed": sent,
                   "memory_iteration": 3, "memory_bps": bps, "setup_time": 3}
            if pr is not None and pr.dirty_pages_per_s is not None:
                raw.update(memory_dirty_rate=pr.dirty_pages_per_s, memory_page_size=4096)
            self._outcome = MigrationStats(
                self.vm, self.src, self.dst, secs * 1000, down,
                total, bps, 3, 3, secs, raw, sent)
        if isinstance(self._outcome, str):
            self._failed_at = now

    def _move(self) -> FakeVM:
        moved = self.hv.vms[self.src].pop(self.vm)
        moved.info = replace(moved.info, host=self.dst)
        self.hv.vms[self.dst][self.vm] = moved
        self.hv._landed(self.vm, self.src, self.dst)
        return moved

    def done(self) -> bool:
        self._finish()
        return self._outcome is not None

    def result(self, timeout: float | None = None) -> MigrationStats:
        if not self.done():
            raise TimeoutError(f"migration of {self.vm} still running")
        if isinstance(self._outcome, str):
            raise MigrationError(self._outcome)
        return self._outcome

    def abort(self) -> None:
        if self._outcome is None:
            self.aborted = True
            self._finish()
