"""Where the switches send a VM's traffic, read from their flow tables --
not from the controller's records -- and whether that is where the VM runs.

Pure: it takes ``ovs-ofctl dump-flows`` text and the topology, so the fault
suite, the soak experiment and the unit tests share it.  A VM's traffic is
*misdirected* if any of our flows for its address

* holds it at the controller (a ``hold`` flow left after a switchover),
* belongs to a generation other than the rest (a staging copy left behind),
* disagrees with another class's flow on the same switch, or
* starting from any switch, following the output ports over the links
  does not end at the VM's KVM host's port (it ends at another edge port,
  loops, or reaches a switch with no flow for the address).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from controller import classes as C
from testbed.topology import Topology

_FIELD = re.compile(r"(\w+)=([^,\s]+)")


@dataclass(frozen=True)
class FlowEntry:
    switch: str
    table: int
    cookie: int
    priority: int
    match: str
    actions: str

    @property
    def info(self) -> C.CookieInfo:
        return C.parse_cookie(self.cookie)

    def output(self) -> int | str | None:
        """The one output of the actions: a port number, "CONTROLLER",
        "drop", or None for anything else (several outputs, goto_table)."""
        acts = self.actions
        if acts == "drop":
            return "drop"
        outs = re.findall(r"output:\"?([\w-]+)\"?", acts)
        if acts.startswith("CONTROLLER"):
            return "CONTROLLER"
        if len(outs) == 1 and "," not in acts:
            name = outs[0]
            m = re.fullmatch(r"(?:\w+-eth)?(\d+)", name)
            return int(m.group(1)) if m else None
        return None

    def nw_dst(self) -> str | None:
        m = re.search(r"(?:^|,)nw_dst=([\d.]+)(?:,|$)", self.match)
        return m.group(1) if m else None


def parse_dump(switch: str, text: str) -> list[FlowEntry]:
    """Flow entries of one ``ovs-ofctl -O OpenFlow13 dump-flows`` output."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("cookie=") or " actions=" not in line:
            continue
        head, actions = line.rsplit(" actions=", 1)
        fields = dict(_FIELD.findall(head))
        # the match is the last space-separated word of the head
        match = head.split()[-1]
        prio = re.search(r"priority=(\d+)", match)
        match = re.sub(r"^priority=\d+,?", "", match)
        out.append(FlowEntry(switch, int(fields.get("table", "0")), int(fields["cookie"], 16),
                             int(prio.group(1)) if prio else 0, match, actions.strip()))
    return out


def vm_flows(entries: list[FlowEntry], ip: str) -> list[FlowEntry]:
    """Our forwarding (table 1) and hold flows for one destination."""
    return [e for e in entries if e.info.ours and e.table == 1 and e.nw_dst() == ip]


def misdirected(topology: Topology, dumps: dict[str, str], ip: str, host: str) -> list[str]:
    """Problems with where the switches send ``ip``'s traffic, given that
    the VM runs on KVM host ``host``; [] if every switch's flows lead there."""
    problems: list[str] = []
    entries = {sw: vm_flows(parse_dump(sw, text), ip) for sw, text in dumps.items()}
    gens = {e.info.gen for es in entries.values() for e in es}
    if len(gens) > 1:
        problems.append(f"{ip}: flows of generations {sorted(gens)} at once (staging left)")
    nxt: dict[str, int] = {}
    for sw in sorted(entries):
        outs = set()
        for e in entries[sw]:
            if e.info.cls == C.HOLD:
                problems.append(f"{sw}: hold flow for {ip} left ({e.match})")
                continue
            outs.add(e.output())
        if not entries[sw]:
            problems.append(f"{sw}: no flow for {ip}")
        elif len(outs) != 1 or not isinstance(next(iter(outs)), int):
            problems.append(f"{sw}: flows for {ip} disagree or do not output to one port: "
                            f"{sorted(map(str, outs))}")
        else:
            nxt[sw] = next(iter(outs))
    target = topology.attachment(host)
    peer = {}
    for ln in topology.switch_links():
        peer[(ln.a, ln.a_port)] = ln.b
        peer[(ln.b, ln.b_port)] = ln.a
    for start in sorted(nxt):
        sw, seen = start, []
        while True:
            if sw in seen:
                problems.append(f"{ip}: from {start} the flows loop: {' -> '.join(seen + [sw])}")
                break
            seen.append(sw)
            if sw not in nxt:
                problems.append(f"{ip}: from {start} the path breaks at {sw}")
                break
            port = nxt[sw]
            if (sw, port) in peer:
                sw = peer[(sw, port)]
                continue
            if (sw, port) != target:
                problems.append(f"{ip}: from {start} the flows end at {sw} port {port}, "
                                f"not at {host} ({target[0]} port {target[1]})")
            break
    return problems


# -- on a running testbed (the fault suite and the soak experiment) ------------------
def running_on(hv, vm: str) -> list[str]:
    """KVM hosts where the hypervisor says ``vm`` is active (a host whose
    libvirtd cannot be reached says nothing)."""
    out = []
    for host in hv.hosts():
        try:
            if any(d.name == vm and d.active for d in hv.domains(host)):
                out.append(host)
        except Exception:  # noqa: BLE001 -- HypervisorError or a dead connection
            continue
    return out


def vm_problems(tb, vm: str) -> list[str]:
    """Everything wrong with where ``vm`` runs and where the switches send
    its traffic; [] when it runs on exactly one host and every flow leads there."""
    ip = tb.topology.vm(vm).ip
    hosts = running_on(tb.hv, vm)
    if len(hosts) != 1:
        return [f"{vm} runs on {hosts or 'no host'}"]
    return misdirected(tb.topology, tb.flow_dumps(), ip, hosts[0])
