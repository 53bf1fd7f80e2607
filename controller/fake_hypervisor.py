"""A hypervisor with no libvirt, driven by a (fake) clock: for unit tests of
the controller's logic and for dry runs.  Same interface as
:class:`controller.libvirt_hv.LibvirtHypervisor`."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from controller.hypervisor import (DomainInfo, HostCapacity, HostSpec, Hypervisor,
                                   HypervisorError, MigrationError, MigrationJob,
                                   MigrationStats)


@dataclass
class FakeVM:
    info: DomainInfo
    cpu_used: float = 0.0


class FakeHypervisor(Hypervisor):
    def __init__(self, specs: list[HostSpec], clock: Callable[[], float],
                 migration_s: float = 5.0, downtime_ms: float = 150.0):
        super().__init__(specs)
        self.clock = clock
        self.migration_s = migration_s
        self.downtime_ms = downtime_ms
        self.vms: dict[str, dict[str, FakeVM]] = {h: {} for h in self.specs}
        self.down: set[str] = set()         # hosts whose libvirtd is unreachable
        self.fail_next: str | None = None   # make the next migration fail with this
        self.jobs: list["FakeMigrationJob"] = []

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

    def _start_migration(self, vm: str, src: str, dst: str, timeout: float) -> MigrationJob:
        job = FakeMigrationJob(self, vm, src, dst, timeout, self.fail_next)
        self.fail_next = None
        self.jobs.append(job)
        return job


class FakeMigrationJob(MigrationJob):
    def __init__(self, hv: FakeHypervisor, vm: str, src: str, dst: str, timeout: float,
                 fail: str | None):
        super().__init__(vm, src, dst)
        self.hv = hv
        self.started = hv.clock()
        self.timeout = timeout
        self.fail = fail
        self.aborted = False
        self._outcome: MigrationStats | str | None = None

    def _finish(self) -> None:
        if self._outcome is not None:
            return
        now = self.hv.clock()
        end = self.started + self.hv.migration_s
        if self.aborted:
            self._outcome = f"migration of {self.vm} aborted"
        elif self.fail and now >= self.started:
            self._outcome = f"migration of {self.vm} failed: {self.fail}"
        elif self.dst in self.hv.down:
            self._outcome = f"migration of {self.vm} failed: cannot reach libvirtd of {self.dst}"
        elif now >= self.started + self.timeout and end > self.started + self.timeout:
            self._outcome = f"migration of {self.vm} timed out and was aborted"
        elif now >= end:
            moved = self.hv.vms[self.src].pop(self.vm)
            moved.info = replace(moved.info, host=self.dst)
            self.hv.vms[self.dst][self.vm] = moved
            self._outcome = MigrationStats(
                self.vm, self.src, self.dst, self.hv.migration_s * 1000, self.hv.downtime_ms,
                moved.info.memory_mib << 20, None, 3, 10.0, self.hv.migration_s)

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
