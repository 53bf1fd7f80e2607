"""The running VMs as the hypervisors last reported them (pure): read in
full, or only the hosts a hypervisor says changed since an earlier read
(:meth:`controller.hypervisor.Hypervisor.inventory_changes`), so keeping
the engine's copy fresh costs what changed, not the number of VMs.

Both ways give the same copy: for each running VM with an address, the
host it runs on (a VM running on two hosts -- a split brain -- counts at
the last of them in the hypervisors' order, and is a conflict), its
memory and its MAC.
"""
from __future__ import annotations

from controller.hypervisor import DomainInfo, Hypervisor, HypervisorError


class Inventory:
    def __init__(self, hosts: list[str]):
        self.order = {h: i for i, h in enumerate(hosts)}
        self.by_host: dict[str, list[DomainInfo]] = {}
        #: ip -> (vm, host, memory_mib)
        self.by_ip: dict[str, tuple[str, str, int]] = {}
        #: vm -> the hosts it runs on (with an address)
        self.where: dict[str, set[str]] = {}
        #: ip -> MAC
        self.macs: dict[str, str] = {}
        # ip -> {(host, vm): info}: every report of the address
        self._at: dict[str, dict[tuple[str, str], DomainInfo]] = {}

    @staticmethod
    def _domains(hv: Hypervisor, host: str) -> list[DomainInfo]:
        try:
            return [d for d in hv.domains(host) if d.active and d.ip]
        except HypervisorError:
            return []            # unreachable: its VMs are not known to run

    def read_all(self, hv: Hypervisor) -> None:
        self.by_host, self.by_ip, self.where, self.macs, self._at = {}, {}, {}, {}, {}
        self.read_hosts(hv, hv.hosts())

    def read_hosts(self, hv: Hypervisor, hosts) -> tuple[set[str], set[str], bool]:
        """Read ``hosts`` again; returns the addresses and the VMs whose
        entries may have changed, and whether any MAC did."""
        touched_ips: set[str] = set()
        vms: set[str] = set()
        for host in hosts:
            new = self._domains(hv, host)
            for d in self.by_host.get(host, ()):
                self._at[d.ip].pop((host, d.name), None)
                hosts_of = self.where.get(d.name)
                if hosts_of is not None:
                    hosts_of.discard(host)
                    if not hosts_of:
                        del self.where[d.name]
                touched_ips.add(d.ip)
                vms.add(d.name)
            for d in new:
                self._at.setdefault(d.ip, {})[(host, d.name)] = d
                self.where.setdefault(d.name, set()).add(host)
                touched_ips.add(d.ip)
                vms.add(d.name)
            self.by_host[host] = new
        macs_changed = False
        for ip in touched_ips:
            reports = self._at.get(ip)
            old_mac = self.macs.get(ip)
            if not reports:
                self._at.pop(ip, None)
                self.by_ip.pop(ip, None)
                self.macs.pop(ip, None)
            else:
                # the last report in the hypervisors' order wins, as a full
                # read that overwrites as it goes
                (host, _vm), d = max(reports.items(),
                                     key=lambda kv: (self.order[kv[0][0]], kv[0][1]))
                self.by_ip[ip] = (d.name, host, d.memory_mib)
                with_mac = [(self.order[h], n, r.mac) for (h, n), r in reports.items() if r.mac]
                if with_mac:
                    self.macs[ip] = max(with_mac)[2]
                else:
                    self.macs.pop(ip, None)
            macs_changed |= self.macs.get(ip) != old_mac
        return touched_ips, vms, macs_changed

    def conflicts(self, vms=None) -> dict[str, set[str]]:
        """VMs running on more than one host (of ``vms``; default: all)."""
        names = self.where if vms is None else vms
        return {vm: set(self.where[vm]) for vm in names
                if vm in self.where and len(self.where[vm]) > 1}
