"""Topologies as pure data.

A :class:`Topology` lists switches, hosts and links with fixed OpenFlow port
numbers and fixed addresses.  Nothing here needs root, Mininet or OVS: the
Mininet adapter (:mod:`testbed.mn_topos`) turns a Topology into a
``mininet.topo.Topo`` and the controller's tests use :meth:`Topology.graph`.

Address plan (one flat 10.0.0.0/8 subnet; the controller routes per IP):

* paper network: tcl1 10.0.0.1, tcl2 10.0.0.2, pm1 10.0.0.11, pm2 10.0.0.12
* multi-site: site *s* (1-based), thin client *i* -> 10.s.0.i,
  KVM host *j* -> 10.s.1.j
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import networkx as nx

PREFIX_LEN = 8
CLIENT = "client"
KVM_HOST = "kvmhost"
HOST_ROLES = (CLIENT, KVM_HOST)


class TopologyError(ValueError):
    """A topology's parameters or structure are invalid."""


@dataclass(frozen=True)
class Switch:
    name: str
    dpid: int


@dataclass(frozen=True)
class Host:
    name: str
    role: str
    ip: str
    mac: str
    site: int = 0

    @property
    def ip_cidr(self) -> str:
        return f"{self.ip}/{PREFIX_LEN}"


@dataclass(frozen=True)
class VM:
    """A desktop VM: keeps its IP and MAC wherever it runs."""
    name: str
    ip: str
    mac: str
    host: str              # KVM host it starts on
    memory_mib: int = 256
    vcpus: int = 1

    @property
    def ip_cidr(self) -> str:
        return f"{self.ip}/{PREFIX_LEN}"


@dataclass(frozen=True)
class Link:
    """A link between two nodes; ``*_port`` is the OpenFlow port on a switch
    (or the ethN index on a host)."""
    a: str
    a_port: int
    b: str
    b_port: int


@dataclass
class Topology:
    name: str
    switches: list[Switch] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    vms: list[VM] = field(default_factory=list)

    # -- look-ups ----------------------------------------------------------
    def switch(self, name: str) -> Switch:
        for s in self.switches:
            if s.name == name:
                return s
        raise KeyError(name)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def vm(self, name: str) -> VM:
        for v in self.vms:
            if v.name == name:
                return v
        raise KeyError(name)

    def hosts_by_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if h.role == role]

    def switch_links(self) -> list[Link]:
        names = {s.name for s in self.switches}
        return [ln for ln in self.links if ln.a in names and ln.b in names]

    def attachment(self, host: str) -> tuple[str, int]:
        """(switch name, switch port) where a host is plugged in."""
        for ln in self.links:
            if ln.a == host:
                return ln.b, ln.b_port
            if ln.b == host:
                return ln.a, ln.a_port
        raise KeyError(host)

    def port(self, node: str, peer: str) -> int:
        """The port on ``node`` that faces ``peer``."""
        for ln in self.links:
            if (ln.a, ln.b) == (node, peer):
                return ln.a_port
            if (ln.b, ln.a) == (node, peer):
                return ln.b_port
        raise KeyError((node, peer))

    def graph(self) -> nx.Graph:
        """An undirected networkx graph; edges carry ``ports={node: port}``."""
        g = nx.Graph()
        for s in self.switches:
            g.add_node(s.name, kind="switch", dpid=s.dpid)
        for h in self.hosts:
            g.add_node(h.name, kind=h.role, ip=h.ip, mac=h.mac)
        for ln in self.links:
            g.add_edge(ln.a, ln.b, ports={ln.a: ln.a_port, ln.b: ln.b_port})
        return g

    # -- checks -------------------------------------------------------------
    def validate(self) -> "Topology":
        seen: set[str] = set()
        dup = set()
        for n in (*self.switches, *self.hosts, *self.vms):
            (dup if n.name in seen else seen).add(n.name)
        if dup:
            raise TopologyError(f"duplicate node names: {sorted(dup)}")
        for attr in ("dpid",):
            vals = [getattr(s, attr) for s in self.switches]
            if len(set(vals)) != len(vals):
                raise TopologyError(f"duplicate switch {attr}s")
        for attr in ("ip", "mac"):
            vals = [getattr(h, attr) for h in (*self.hosts, *self.vms)]
            if len(set(vals)) != len(vals):
                raise TopologyError(f"duplicate host {attr} addresses")
        for h in self.hosts:
            if h.role not in HOST_ROLES:
                raise TopologyError(f"host {h.name}: unknown role {h.role!r}")
            if len(f"{h.name}-eth0") > 15:
                raise TopologyError(f"host name {h.name!r} too long for an "
                                    "interface name")
        kvm_hosts = {h.name for h in self.hosts if h.role == KVM_HOST}
        for v in self.vms:
            if v.host not in kvm_hosts:
                raise TopologyError(f"vm {v.name}: {v.host!r} is not a KVM host")
            if not 32 <= v.memory_mib <= 65536 or not 1 <= v.vcpus <= 64:
                raise TopologyError(f"vm {v.name}: memory_mib/vcpus out of range")
        used: set[tuple[str, int]] = set()
        known = {n.name for n in (*self.switches, *self.hosts)}
        for ln in self.links:
            for node, port in ((ln.a, ln.a_port), (ln.b, ln.b_port)):
                if node not in known:
                    raise TopologyError(f"link to unknown node {node!r}")
                if (node, port) in used:
                    raise TopologyError(f"port {port} of {node} used twice")
                used.add((node, port))
        g = self.graph()
        if self.switches and not nx.is_connected(g):
            raise TopologyError("topology is not connected")
        for h in self.hosts:
            if g.degree(h.name) != 1:
                raise TopologyError(f"host {h.name} must have exactly one link")
        return self


def _mac(n: int) -> str:
    return ":".join(f"{(n >> s) & 0xff:02x}" for s in range(40, -8, -8))


def paper_topology(vm_memory_mib: int = 256) -> Topology:
    """The report's network (Fig. 25): s1 joins edge switches s2 and s3;
    thin clients tcl1, tcl2 and KVM host pm1 on s2; KVM host pm2 on s3;
    VMs vm1 (10.0.0.101) and vm2 (10.0.0.102) start on pm2, as in the report.

    Fixed ports: s1-1->s2, s1-2->s3; s2-1->s1, s2-2 tcl1, s2-3 tcl2,
    s2-4 pm1; s3-1->s1, s3-2 pm2.
    """
    t = Topology("paper")
    t.switches = [Switch("s1", 1), Switch("s2", 2), Switch("s3", 3)]
    t.hosts = [
        Host("tcl1", CLIENT, "10.0.0.1", _mac(0x01), site=2),
        Host("tcl2", CLIENT, "10.0.0.2", _mac(0x02), site=2),
        Host("pm1", KVM_HOST, "10.0.0.11", _mac(0x0b), site=2),
        Host("pm2", KVM_HOST, "10.0.0.12", _mac(0x0c), site=3),
    ]
    t.links = [
        Link("s1", 1, "s2", 1),
        Link("s1", 2, "s3", 1),
        Link("tcl1", 0, "s2", 2),
        Link("tcl2", 0, "s2", 3),
        Link("pm1", 0, "s2", 4),
        Link("pm2", 0, "s3", 2),
    ]
    t.vms = [
        VM("vm1", "10.0.0.101", "52:54:00:00:00:01", "pm2", vm_memory_mib),
        VM("vm2", "10.0.0.102", "52:54:00:00:00:02", "pm2", vm_memory_mib),
    ]
    return t.validate()


def multisite_topology(sites: int = 4, clients: int = 2, hosts: int = 1,
                       core: int = 1, vms: int = 0, vm_memory_mib: int = 256) -> Topology:
    """N edge sites around a core, for scale work.

    ``core`` core switches c1..cK (dpids 1..K) form a ring (K >= 3), a single
    link (K == 2) or a single switch (K == 1).  Edge switch of site s is
    ``e<s>`` (dpid 100 + s), attached to core switch ``((s-1) mod K) + 1``.
    Site s has thin clients ``t<s>x<i>`` (10.s.0.i) and KVM hosts
    ``p<s>x<j>`` (10.s.1.j).  ``vms`` VMs per site, ``v<s>x<k>``
    (10.s.2.k), start on the KVM hosts of the *next* site (round robin), so
    each is far from its site's clients until OVCT moves it.

    Ports: on core switch ck, ports 1..2 go to the ring neighbours (when
    present) and then one port per attached site, in site order; on edge
    switch e<s>, port 1 is the uplink, then clients 2.., then hosts.
    """
    for name, val, lo, hi in (("sites", sites, 1, 250), ("clients", clients, 0, 250),
                              ("hosts", hosts, 0, 250), ("core", core, 1, 99),
                              ("vms", vms, 0, 250)):
        if not isinstance(val, int) or isinstance(val, bool) or not lo <= val <= hi:
            raise TopologyError(f"{name} must be an integer in [{lo}, {hi}], "
                                f"got {val!r}")
    if clients + hosts == 0:
        raise TopologyError("a site needs at least one client or host")
    if core > sites:
        raise TopologyError("core must not exceed sites")
    if vms and not hosts:
        raise TopologyError("vms need at least one KVM host per site (hosts >= 1)")

    t = Topology(f"multisite-{sites}x{clients}c{hosts}h-core{core}")
    cores = [Switch(f"c{k}", k) for k in range(1, core + 1)]
    edges = [Switch(f"e{s}", 100 + s) for s in range(1, sites + 1)]
    t.switches = cores + edges
    next_port = {c.name: 1 for c in cores}

    def core_port(name: str) -> int:
        p = next_port[name]
        next_port[name] += 1
        return p

    # core interconnect: a single link for two core switches, else a ring in
    # which port 1 of ck goes to the next core switch and port 2 to the
    # previous one
    if core == 2:
        t.links.append(Link("c1", core_port("c1"), "c2", core_port("c2")))
    elif core >= 3:
        for k in range(1, core + 1):
            t.links.append(Link(f"c{k}", 1, f"c{k % core + 1}", 2))
            next_port[f"c{k}"] = 3

    for s in range(1, sites + 1):
        edge = f"e{s}"
        c = f"c{(s - 1) % core + 1}"
        t.links.append(Link(edge, 1, c, core_port(c)))
        port = 2
        for i in range(1, clients + 1):
            h = Host(f"t{s}x{i}", CLIENT, f"10.{s}.0.{i}",
                     _mac((s << 16) | i), site=s)
            t.hosts.append(h)
            t.links.append(Link(h.name, 0, edge, port))
            port += 1
        for j in range(1, hosts + 1):
            h = Host(f"p{s}x{j}", KVM_HOST, f"10.{s}.1.{j}",
                     _mac((s << 16) | 0x100 | j), site=s)
            t.hosts.append(h)
            t.links.append(Link(h.name, 0, edge, port))
            port += 1
    for s in range(1, sites + 1):
        home = s % sites + 1
        for k in range(1, vms + 1):
            t.vms.append(VM(f"v{s}x{k}", f"10.{s}.2.{k}", _mac(0x525400000000 | (s << 8) | k),
                            f"p{home}x{(k - 1) % hosts + 1}", vm_memory_mib))
    return t.validate()


@dataclass(frozen=True)
class TopologyKind:
    """A kind of topology the CLI, scenario files and ``mn --custom`` offer:
    its factory and the parameters it takes (besides ``vm_memory_mib``), in
    the order ``mn --topo <name>,<p1>,<p2>...`` gives them."""
    name: str
    factory: Callable[..., Topology]
    params: tuple[str, ...]
    summary: str


#: the one registry of topology kinds
KINDS: dict[str, TopologyKind] = {k.name: k for k in (
    TopologyKind("paper", paper_topology, (),
                 "the report's network: s1 joins s2 (tcl1, tcl2, pm1) and s3 (pm2)"),
    TopologyKind("multisite", multisite_topology, ("sites", "clients", "hosts", "core", "vms"),
                 "edge sites around a core ring; clients, KVM hosts and VMs per site"),
)}


def kind(name: str) -> TopologyKind:
    try:
        return KINDS[name]
    except KeyError:
        raise TopologyError(f"unknown topology {name!r}; known: "
                            f"{', '.join(sorted(KINDS))}") from None


def build(name: str, **params) -> Topology:
    """Build a named topology with keyword parameters (CLI / scenario use)."""
    factory = kind(name).factory
    try:
        return factory(**params)
    except TypeError as exc:
        raise TopologyError(f"topology {name!r}: {exc}") from None


def place(topology: Topology, servers: list[str],
          fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Cluster mode: which server each switch and host runs on.

    The first server (the controller's) keeps the switches without hosts
    (the core); the switches with hosts (the sites) go round the servers in
    name order, the first site to the first server; every host goes with
    its switch, so only switch-to-switch links cross servers.  ``fixed``
    names a server for some switches (their hosts follow them).  Raises
    :class:`TopologyError` for an unknown server or switch."""
    if not servers:
        raise TopologyError("cluster placement needs at least one server")
    if len(set(servers)) != len(servers):
        raise TopologyError(f"servers named twice: {servers}")
    fixed = dict(fixed or {})
    names = {s.name for s in topology.switches}
    for sw, srv in fixed.items():
        if sw not in names:
            raise TopologyError(f"placement names switch {sw!r}, which the topology "
                                f"does not have (switches: {', '.join(sorted(names))})")
        if srv not in servers:
            raise TopologyError(f"placement puts {sw} on server {srv!r}, which is not one "
                                f"of the servers ({', '.join(servers)})")
    with_hosts = sorted({topology.attachment(h.name)[0] for h in topology.hosts})
    where = {s.name: servers[0] for s in topology.switches}
    for i, sw in enumerate(with_hosts):
        where[sw] = servers[i % len(servers)]
    where.update(fixed)
    for h in topology.hosts:
        where[h.name] = where[topology.attachment(h.name)[0]]
    return where
