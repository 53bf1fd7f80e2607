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
come.
"""
from __future__ import annotations

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


class FakeHypervisor(Hypervisor):
    def __init__(self, specs: list[HostSpec], clock: Callable[[], float],
                 migration_s: float = 5.0, downtime_ms: float = 150.0, setup_s: float = 0.3,
                 events: bool = True, completion_lag_s: float = 0.0):
        super().__init__(specs)
        self.clock = clock
        self.migration_s = migration_s
        self.downtime_ms = downtime_ms
        self.setup_s = setup_s
        self.completion_lag_s = completion_lag_s
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

    def _reachable(self, host: str) -> None:
        self.spec(host)
        if host in self.down:
            raise HypervisorError(f"cannot reach libvirtd of {host}")

    def domains(self, host: str) -> list[DomainInfo]:
        self._reachable(host)
        for job in self.jobs:
            job.done()      # let finished jobs land
        return [v.info for v in self.vms[host].values()]

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
        return job

    def in_flight(self) -> list[MigrationJob]:
        return [j for j in self.jobs if not j.done()]

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
        due = sorted((ev for job in self.jobs for ev in job.due(now)), key=lambda e: e.time)
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
        end = self.started + hv.migration_s
        ev = lambda host, kind, t, **kw: DomainEvent(vm, host, kind, "migrated", t, **kw)  # noqa: E731
        self._timeline = [
            ev(dst, H.STARTED, self.started + hv.setup_s),
            ev(src, H.ITERATION, self.started + hv.setup_s, iteration=1),
            ev(src, H.SUSPENDED, end - hv.downtime_ms / 1000),
            ev(dst, H.RESUMED, end),
            ev(src, H.STOPPED, end + hv.completion_lag_s),
        ]

    @property
    def end(self) -> float:
        return self.started + self.hv.migration_s

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
            raw = {"time_elapsed": self.hv.migration_s * 1000, "downtime": self.hv.downtime_ms,
                   "data_total": total, "data_processed": int(total * 0.7),
                   "memory_iteration": 3, "memory_bps": 10.0, "setup_time": 3}
            self._outcome = MigrationStats(
                self.vm, self.src, self.dst, self.hv.migration_s * 1000, self.hv.downtime_ms,
                total, 10.0, 3, 3, self.hv.migration_s, raw, int(total * 0.7))
        if isinstance(self._outcome, str):
            self._failed_at = now

    def _move(self) -> FakeVM:
        moved = self.hv.vms[self.src].pop(self.vm)
        moved.info = replace(moved.info, host=self.dst)
        self.hv.vms[self.dst][self.vm] = moved
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
