"""Who may claim which address, from which port -- the router's defence
against anyone on an edge port (pure; the router asks, the OVCT engine and
the inventory tell).

Ports have roles: a **KVM-host port** is where a hypervisor of the
inventory is attached (declared in the inventory, or where its address is
first seen); every other edge port is a **client port**.  Addresses have
owners:

* a KVM host's own address is learnt only at its port;
* a VM's address and MAC (from the hypervisors' inventory) are learnt only
  at a KVM-host port, only with the VM's own MAC, and only where the OVCT
  engine currently expects the VM (:meth:`Trust.expect`): at its host's
  port, and during a migration at the destination only once libvirt says
  the switchover has begun;
* a client port holds at most ``client_port_limit`` addresses, a KVM-host
  port at most ``kvm_port_limit``;
* every edge port may send at most ``rate`` packet-ins a second (a token
  bucket of ``burst``): a flood is dropped at the controller.

With no inventory (a routing-only controller) nothing is protected and no
port limit applies; the rate limit always does.  Every refusal is counted,
and reported (through ``events``) at most once a second per port and reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

Loc = tuple[int, int]

REFUSED = "refused"


@dataclass
class Trust:
    kvm_ports: set[Loc] = field(default_factory=set)
    #: KVM host address -> its port (None: learnt at the first KVM port seen)
    host_addrs: dict[str, Loc | None] = field(default_factory=dict)
    #: VM address -> its MAC (from the hypervisors)
    vm_macs: dict[str, str] = field(default_factory=dict)
    #: VM address -> the ports it may be learnt at now (no entry: any KVM port)
    vm_allowed: dict[str, frozenset[Loc]] = field(default_factory=dict)
    client_port_limit: int = 4
    kvm_port_limit: int = 64
    rate: float = 200.0
    burst: float = 400.0
    events: Callable[[str, dict], None] | None = None
    refusals: dict[str, int] = field(default_factory=dict)
    _buckets: dict[Loc, tuple[float, float]] = field(default_factory=dict)
    _reported: dict[tuple[Loc, str], float] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.host_addrs or self.vm_macs or self.kvm_ports)

    # -- what the inventory and the engine tell -----------------------------------
    def set_hosts(self, hosts: dict[str, Loc | None]) -> None:
        self.host_addrs = dict(hosts)
        self.kvm_ports |= {loc for loc in hosts.values() if loc is not None}

    def set_vms(self, macs: dict[str, str]) -> None:
        self.vm_macs = dict(macs)

    def expect(self, ip: str, where: frozenset[Loc] | None) -> None:
        """Where the VM at ``ip`` may be learnt from now on (None: anywhere
        a KVM host is)."""
        if where is None:
            self.vm_allowed.pop(ip, None)
        else:
            self.vm_allowed[ip] = frozenset(where)

    def is_vm_mac(self, mac: str) -> bool:
        return mac in self.vm_macs.values()

    # -- questions the router asks ---------------------------------------------------
    def admit(self, loc: Loc, now: float) -> bool:
        """Rate limit of packet-ins per edge port (token bucket)."""
        tokens, last = self._buckets.get(loc, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[loc] = (tokens, now)
            self.refuse(loc, "packet-in rate limit", now)
            return False
        self._buckets[loc] = (tokens - 1.0, now)
        return True

    def may_learn(self, ip: str, mac: str, loc: Loc, addresses_at: Callable[[Loc], set[str]],
                  now: float) -> bool:
        """May ``ip``/``mac`` be (re)learnt at ``loc``?  ``addresses_at``
        gives the addresses learnt at a port so far."""
        why = self._why_not(ip, mac, loc, addresses_at)
        if why is None:
            return True
        self.refuse(loc, why, now, ip=ip, mac=mac)
        return False

    def _why_not(self, ip: str, mac: str, loc: Loc, addresses_at) -> str | None:
        if ip in self.host_addrs:
            home = self.host_addrs[ip]
            if home is None:                  # not declared: trust on first use
                self.host_addrs[ip] = loc
                self.kvm_ports.add(loc)
                return None
            return None if loc == home else "KVM host address claimed from another port"
        if ip in self.vm_macs:
            if loc not in self.kvm_ports:
                return "VM address claimed from a port that is no KVM host's"
            if mac != self.vm_macs[ip]:
                return "VM address claimed with another MAC"
            allowed = self.vm_allowed.get(ip)
            if allowed is not None and loc not in allowed:
                return "VM address seen where it is not expected now"
            return None
        if self.is_vm_mac(mac):
            return "a VM's MAC with another address"
        if ip in addresses_at(loc):
            return None
        if not self.configured:
            return None
        limit = self.kvm_port_limit if loc in self.kvm_ports else self.client_port_limit
        if len(addresses_at(loc)) >= limit:
            return f"port address limit ({limit})"
        return None

    def refuse(self, loc: Loc, why: str, now: float, **what) -> None:
        self.refusals[why] = self.refusals.get(why, 0) + 1
        key = (loc, why)
        last = self._reported.get(key)
        if self.events is not None and (last is None or now - last >= 1.0):
            self._reported[key] = now
            self.events(REFUSED, {"reason": why, "dpid": loc[0], "port": loc[1],
                                  "count": self.refusals[why], **what})
