"""Policy evaluation at scale: the controller's own OVCT engine
(:class:`controller.ovct.Ovct`, unchanged) on a simulated clock, with the
:class:`controller.fake_hypervisor.FakeHypervisor` (migrations calibrated
from a live run) and a fast simulated :class:`controller.ovct.Network`
on a multi-site topology (:func:`testbed.topology.multisite_topology`).

Pure (no emulation, no root): what ``experiments/policy_sim.py`` runs and
the unit tests check.  What is measured and what is modelled is spelt out
in ``docs/POLICIES.md``; in short:

* **calibrated from a live run** (:func:`calibrate`; defaults from
  ``results/reference-180s``): a session's relay per switch, a migration's
  duration, downtime, bytes sent per byte of RAM, the stream's bandwidth,
  bytes per relayed packet;
* **modelled**: everything else -- session arrivals and lengths, where
  users sit, each user's traffic (a multiple of the measured rate), each
  VM's dirty rate, that relay grows linearly with the switches crossed.

The network side keeps, per VM, the switch it hangs off; a session's
traffic crosses the switches of the router's path between the client's
switch and the VM's (``Ledger``); a VM's place changes when the engine
switches its flows.  Nothing here decides anything: the engine does.
"""
from __future__ import annotations

import csv
import heapq
import math
import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from controller import events as E
from controller import policies as P
from controller.classes import MIGRATION
from controller.config import Policy
from controller.cost import REFERENCE, Rates
from controller.fake_hypervisor import FakeHypervisor, MigrationProfile
from controller.hypervisor import HostSpec
from controller.ovct import Ovct
from controller.routing import Update, VncConnection
from controller.rundir import RunDir
from testbed import topology as T

MIB = 1 << 20
PAGE = 4096

# -- calibration ------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """What the simulation takes from a live run.  Defaults: measured in
    ``results/reference-180s`` (:func:`calibrate` on that folder gives
    them; a unit test checks)."""
    session_pps: float = REFERENCE["session_pps"]        # VNC relay per session and switch
    session_bps: float = REFERENCE["session_bps"]
    migration_s: float = 4.98        # median elapsed_ms of the 6 migrations (3.1-7.3 s)
    downtime_ms: float = 179.0       # median downtime_ms
    transfer_ratio: float = REFERENCE["transfer_ratio"]   # bytes sent per byte of RAM
    memory_bps: float = REFERENCE["migration_bps"]       # libvirt's memory_bps, median
    bytes_per_packet: float = REFERENCE["bytes_per_packet"]   # relayed migration packets
    memory_mib: int = 256            # the guests' RAM there
    source: str = "results/reference-180s (built-in)"


def _median(values) -> float:
    return float(np.median(list(values)))


def calibrate(folder: str) -> Calibration:
    """Calibration from a results folder of the paired before/after
    experiment (``migrations.csv``, ``relayed.csv``; ``projection.csv``
    for the number of sessions; raw trials' events for libvirt's
    bandwidth): medians over trials."""
    import pandas as pd     # here: the simulation itself runs without pandas
    mig = pd.read_csv(os.path.join(folder, "migrations.csv"))
    rel = pd.read_csv(os.path.join(folder, "relayed.csv"))
    sessions = 2
    proj = os.path.join(folder, "projection.csv")
    if os.path.exists(proj):
        sessions = int(pd.read_csv(proj).sessions.median())
    # VNC relay per switch and session, steady part of the "before" windows
    vnc = rel[(rel["class"] == "vnc") & (rel.condition == "before") & (rel.t_s >= 10)]
    pps, bps = [], []
    for _key, g in vnc.groupby(["trial", "switch"]):
        g = g.sort_values("t_s")
        dt = g.t_s.iloc[-1] - g.t_s.iloc[0]
        if dt > 0:
            pps.append((g.packets.iloc[-1] - g.packets.iloc[0]) / dt / sessions)
            bps.append((g.bytes.iloc[-1] - g.bytes.iloc[0]) / dt / sessions)
    # the migration stream per switch, per migration of the "after" windows
    per_trial = mig.groupby("trial").size()
    m = rel[(rel["class"] == "migration") & (rel.condition == "after")]
    last = m.sort_values("t_s").groupby(["trial", "switch"]).last().reset_index()
    last = last[last.trial.isin(per_trial.index) & (last.bytes > 0)]
    by_mig = [r.bytes / per_trial[r.trial] for r in last.itertuples()]
    bpp = [r.bytes / r.packets for r in last.itertuples()]
    # libvirt's data_total is the RAM plus some device state: 256 MiB -> 256.76
    ram = int(_median(mig.data_total_bytes) // MIB) * MIB
    if "transferred_bytes" in mig and mig.transferred_bytes.notna().any():
        ratio = _median(mig.transferred_bytes.dropna()) / ram
    else:                       # the relayed bytes stand for the bytes sent
        ratio = _median(by_mig) / ram
    bw = REFERENCE["migration_bps"]
    if "job_memory_bps" in mig and mig.job_memory_bps.notna().any():
        bw = _median(mig.job_memory_bps.dropna())
    else:
        found = [r["memory_bps"] for d in sorted(os.listdir(os.path.join(folder, "raw")))
                 if d.startswith("trial-")
                 for r in E.read(RunDir(os.path.join(folder, "raw", d)).events)
                 if r.get("type") == E.OVCT_MIGRATION_DONE and r.get("memory_bps")] \
            if os.path.isdir(os.path.join(folder, "raw")) else []
        if found:
            bw = _median(found)
    return Calibration(
        session_pps=round(_median(pps), 1), session_bps=round(_median(bps), -3),
        migration_s=round(_median(mig.elapsed_ms) / 1000, 2),
        downtime_ms=round(_median(mig.downtime_ms), 1),
        transfer_ratio=round(ratio, 3), memory_bps=round(bw, -5),
        bytes_per_packet=round(_median(bpp)), memory_mib=ram // MIB,
        source=os.path.relpath(folder))


# -- the trace ----------------------------------------------------------------------

@dataclass(frozen=True)
class SessionSpec:
    id: int
    start_s: float
    duration_s: float
    client: str            # a thin client of the topology
    vm: str
    pps: float             # its VNC relay per switch (packets/s, bytes/s)
    bps: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class VmSpec:
    name: str
    ip: str
    mac: str
    home: str              # the KVM host it starts on
    memory_mib: int
    dirty_bps: float       # bytes of RAM it dirties per second (modelled)


@dataclass
class Trace:
    sessions: list[SessionSpec]
    vms: dict[str, VmSpec]

    def overlapping_vms(self) -> set[str]:
        """VMs with two sessions at once (the lower bound assumes none)."""
        out, last = set(), {}
        for s in sorted(self.sessions, key=lambda s: s.start_s):
            if s.vm in last and s.start_s < last[s.vm]:
                out.add(s.vm)
            last[s.vm] = max(last.get(s.vm, 0.0), s.end_s)
        return out


@dataclass(frozen=True)
class TraceModel:
    """How the synthetic trace is drawn (a model; docs/POLICIES.md).  One
    user per thin client, each with one desktop VM on a KVM host of the
    user's home site.  Session lengths are lognormal (heavy-tailed): each
    user's median is ``median_s`` times a lognormal factor (``user_sigma``),
    each session's length lognormal around it (``session_sigma``), capped
    at ``max_s``.  A user's sessions are spread over the working day
    (``day_s``) at uniform random times, one after another (``gap_s`` at
    least between them).  Where a user sits is a Markov chain over the
    home site and ``other_sites`` sites the user visits (drawn per user):
    the day's first session is at home with probability ``p_home``, each
    next one at the same site as the last with probability ``p_stay``,
    else at another of the user's sites (uniformly); each session from a
    random thin client of its site.  Each
    user's traffic is the measured per-switch rate times a lognormal factor
    (``rate_sigma``); each VM dirties ``dirty_median_bps`` times a
    lognormal factor (``dirty_sigma``) bytes per second."""
    day_s: float = 10 * 3600.0
    median_s: float = 900.0
    user_sigma: float = 0.8
    session_sigma: float = 1.0
    max_s: float = 10 * 3600.0
    gap_s: float = 60.0
    p_home: float = 0.7
    p_stay: float = 0.7
    other_sites: int = 2
    rate_sigma: float = 0.5
    dirty_median_bps: float = 1e6
    dirty_sigma: float = 1.0


def _mac(n: int) -> str:
    return ":".join(f"{(n >> s) & 0xff:02x}" for s in range(40, -8, -8))


def vm_of(client: T.Host, hosts_per_site: int, memory_mib: int, dirty_bps: float) -> VmSpec:
    """The desktop VM of a thin client's user: ``v<s>x<i>`` at 10.s.2.i
    (multisite_topology's VM address plan), on KVM host p<s>x<j> of the
    user's site."""
    s, i = client.site, int(client.name.split("x")[1])
    return VmSpec(f"v{s}x{i}", f"10.{s}.2.{i}", _mac(0x525400000000 | (s << 8) | i),
                  f"p{s}x{(i - 1) % hosts_per_site + 1}", memory_mib, dirty_bps)


def generate(topo: T.Topology, n_sessions: int, seed: int, cal: Calibration = Calibration(),
             model: TraceModel = TraceModel()) -> Trace:
    """A synthetic working day (:class:`TraceModel`), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    clients = topo.hosts_by_role(T.CLIENT)
    by_site: dict[int, list[T.Host]] = {}
    for c in clients:
        by_site.setdefault(c.site, []).append(c)
    sites = sorted(by_site)
    hosts_per_site = len([h for h in topo.hosts_by_role(T.KVM_HOST) if h.site == sites[0]])
    users = len(clients)
    vms = {}
    user_median = model.median_s * rng.lognormal(0, model.user_sigma, users)
    user_rate = rng.lognormal(0, model.rate_sigma, users)
    dirty = model.dirty_median_bps * rng.lognormal(0, model.dirty_sigma, users)
    visits = []
    for u, c in enumerate(clients):
        vm = vm_of(c, hosts_per_site, cal.memory_mib, float(dirty[u]))
        vms[vm.name] = vm
        others = [s for s in sites if s != c.site]
        k = min(model.other_sites, len(others))
        visits.append(list(rng.choice(others, size=k, replace=False)) if k else [])
    counts = rng.multinomial(n_sessions, [1 / users] * users)
    rows = []
    for u, c in enumerate(clients):
        k = counts[u]
        if not k:
            continue
        starts = np.sort(rng.uniform(0, model.day_s, k))
        lengths = np.minimum(rng.lognormal(math.log(user_median[u]), model.session_sigma, k),
                             model.max_s)
        mine = [c.site] + [int(x) for x in visits[u]]
        stay = rng.random(k)
        site = c.site if rng.random() < model.p_home or len(mine) == 1 \
            else mine[1 + int(rng.integers(len(mine) - 1))]
        t_free = 0.0
        vm = vm_of(c, hosts_per_site, cal.memory_mib, 0.0).name
        for j in range(k):
            start = max(float(starts[j]), t_free)
            if j and stay[j] >= model.p_stay and len(mine) > 1:
                site = [x for x in mine if x != site][int(rng.integers(len(mine) - 1))]
            client = by_site[site][int(rng.integers(len(by_site[site])))]
            rows.append((start, float(lengths[j]), client.name, vm,
                         cal.session_pps * user_rate[u], cal.session_bps * user_rate[u]))
            t_free = start + float(lengths[j]) + model.gap_s
    rows.sort()
    sessions = [SessionSpec(i + 1, round(a, 3), round(b, 3), c, v, round(p, 3), round(q, 1))
                for i, (a, b, c, v, p, q) in enumerate(rows)]
    return Trace(sessions, vms)


#: a trace file: one row per VNC session; ``start_s`` from the start of the
#: day, ``duration_s``, ``client`` a thin client of the topology
#: (t<site>x<i>), ``vm`` a VM name; optional: ``vm_home`` (the KVM host it
#: starts on; default: host p<s>x<j> of the site of the VM's first session's
#: client), ``pps``/``bps`` (the session's relay per switch; default: the
#: calibration's), ``memory_mib`` (default: the calibration's) and
#: ``dirty_bps`` (default 1e6)
TRACE_COLUMNS = ["start_s", "duration_s", "client", "vm"]
TRACE_OPTIONAL = ["vm_home", "pps", "bps", "memory_mib", "dirty_bps"]


def write_trace(trace: Trace, path: str) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRACE_COLUMNS + TRACE_OPTIONAL)
        for s in trace.sessions:
            v = trace.vms[s.vm]
            w.writerow([s.start_s, s.duration_s, s.client, s.vm, v.home, s.pps, s.bps,
                        v.memory_mib, round(v.dirty_bps, 1)])


class TraceError(ValueError):
    pass


def read_trace(path: str, topo: T.Topology, cal: Calibration = Calibration()) -> Trace:
    """A user's trace (:data:`TRACE_COLUMNS`), checked against the topology;
    a bad row is refused naming its line and column."""
    clients = {h.name: h for h in topo.hosts_by_role(T.CLIENT)}
    kvm = {h.name: h for h in topo.hosts_by_role(T.KVM_HOST)}
    per_site = max(1, len([h for h in kvm.values() if h.site == 1]))
    sessions, vms = [], {}
    with open(path, newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        missing = [c for c in TRACE_COLUMNS if c not in (rd.fieldnames or [])]
        if missing:
            raise TraceError(f"{path}: missing column(s) {', '.join(missing)}")
        for n, row in enumerate(rd, 2):
            where = f"{path}:{n}"
            try:
                start, dur = float(row["start_s"]), float(row["duration_s"])
                pps = float(row.get("pps") or cal.session_pps)
                bps = float(row.get("bps") or cal.session_bps)
                mem = int(row.get("memory_mib") or cal.memory_mib)
                dirty = float(row.get("dirty_bps") or 1e6)
            except ValueError as exc:
                raise TraceError(f"{where}: {exc}") from None
            if not (math.isfinite(start) and start >= 0 and math.isfinite(dur) and dur > 0):
                raise TraceError(f"{where}: start_s must be >= 0 and duration_s > 0")
            if not (pps >= 0 and bps >= 0 and 32 <= mem <= 65536 and dirty >= 0):
                raise TraceError(f"{where}: pps, bps, dirty_bps >= 0, memory_mib in [32, 65536]")
            client = clients.get(row["client"])
            if client is None:
                raise TraceError(f"{where}: client {row['client']!r} is not a thin client "
                                 f"of {topo.name}")
            name = row["vm"]
            if name not in vms:
                home = row.get("vm_home") or f"p{client.site}x{(len(vms) % per_site) + 1}"
                if home not in kvm:
                    raise TraceError(f"{where}: vm_home {home!r} is not a KVM host of {topo.name}")
                k = len(vms) + 1
                if k >= 4 << 16:
                    raise TraceError(f"{where}: more than {(4 << 16) - 1} VMs")
                # 10.251-254.x.y: outside multisite_topology's plan (10.s.*, s <= 250)
                vms[name] = VmSpec(name, f"10.{251 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}",
                                   _mac(0x525400000000 | k), home, mem, dirty)
            sessions.append((start, dur, row["client"], name, pps, bps))
    sessions.sort()
    return Trace([SessionSpec(i + 1, a, b, c, v, p, q)
                  for i, (a, b, c, v, p, q) in enumerate(sessions)], vms)


# -- the network: places, paths, and the relay they cause --------------------------

def attachments(topo: T.Topology) -> dict[str, tuple[str, int]]:
    """Every host's (switch, port), in one pass over the links (what
    Topology.attachment answers one host at a time)."""
    switches = {s.name for s in topo.switches}
    out = {}
    for ln in topo.links:
        if ln.b in switches and ln.a not in switches:
            out[ln.a] = (ln.b, ln.b_port)
        elif ln.a in switches and ln.b not in switches:
            out[ln.b] = (ln.a, ln.a_port)
    return out


class Paths:
    """Hop distances, BFS levels and the router's paths on a topology's
    switch graph (as :class:`controller.netview.NetView` computes them:
    trees towards the destination, neighbours in dpid order), cached."""

    def __init__(self, topo: T.Topology):
        self.dpid = {s.name: s.dpid for s in topo.switches}
        self.adj: dict[int, list[int]] = {d: [] for d in self.dpid.values()}
        for ln in topo.switch_links():
            a, b = self.dpid[ln.a], self.dpid[ln.b]
            self.adj[a].append(b)
            self.adj[b].append(a)
        for v in self.adj.values():
            v.sort()
        self._levels: dict[int, list[list[int]]] = {}
        self._dist: dict[int, dict[int, int]] = {}
        self._parent: dict[int, dict[int, int | None]] = {}
        self._len: dict[tuple[int, int], int] = {}

    def levels(self, a: int) -> list[list[int]]:
        out = self._levels.get(a)
        if out is None:
            out, seen, level = [], {a}, [a]
            while level:
                out.append(level)
                nxt = []
                for d in level:
                    for n in self.adj[d]:
                        if n not in seen:
                            seen.add(n)
                            nxt.append(n)
                level = nxt
            self._levels[a] = out
            self._dist[a] = {d: k for k, lv in enumerate(out) for d in lv}
        return out

    def hops(self, a: int, b: int) -> int | None:
        if a not in self._dist:
            self.levels(a)
        return self._dist[a].get(b)

    def path(self, a: int, b: int) -> list[int] | None:
        parent = self._parent.get(b)
        if parent is None:                     # BFS from b, neighbours in order
            parent, queue, i = {b: None}, [b], 0
            while i < len(queue):
                d = queue[i]
                i += 1
                for n in self.adj[d]:
                    if n not in parent:
                        parent[n] = d
                        queue.append(n)
            self._parent[b] = parent
        if a not in parent:
            return None
        out = [a]
        while out[-1] != b:
            out.append(parent[out[-1]])
        return out

    def switches(self, a: int, b: int) -> int:
        """How many switches traffic between a and b crosses."""
        n = self._len.get((a, b))
        if n is None:
            n = self._len[(a, b)] = self._len[(b, a)] = len(self.path(a, b))
        return n


@dataclass
class Live:
    """A session under way: its relay so far and where it stands."""
    spec: SessionSpec
    client_dpid: int
    vm_ip: str
    last_t: float
    packets: float = 0.0
    nbytes: float = 0.0
    far_s: float = 0.0


@dataclass
class Totals:
    session_packets: float = 0.0
    session_bytes: float = 0.0
    migration_packets: float = 0.0
    migration_bytes: float = 0.0
    migrations: int = 0
    downtime_s: float = 0.0           # migrations' downtime while their VM had a session
    far_s: float = 0.0                # session time with the VM off the client's switch
    session_s: float = 0.0

    @property
    def packets(self) -> float:
        return self.session_packets + self.migration_packets

    @property
    def bytes(self) -> float:
        return self.session_bytes + self.migration_bytes


class Ledger:
    """Accounts for the relay: each session's traffic on every switch
    between its client and its VM's current switch, each migration's
    stream on every switch between the two hosts (bytes sent x switches;
    packets: bytes / bytes per packet)."""

    def __init__(self, paths: Paths, cal: Calibration):
        self.paths = paths
        self.cal = cal
        self.live: dict[int, Live] = {}
        self.by_vm: dict[str, set[int]] = {}
        self.vm_at: dict[str, int] = {}
        self.moved_at: dict[str, float] = {}
        self.totals = Totals()
        self.migration_by_dst: dict[str, list[float]] = {}

    def _settle(self, s: Live, t: float) -> None:
        dt = t - s.last_t
        if dt <= 0:
            return
        at = self.vm_at[s.vm_ip]
        n = self.paths.switches(s.client_dpid, at)
        s.packets += s.spec.pps * n * dt
        s.nbytes += s.spec.bps * n * dt
        if at != s.client_dpid:
            s.far_s += dt
        s.last_t = t

    def start(self, spec: SessionSpec, client_dpid: int, vm_ip: str, t: float) -> None:
        self.live[spec.id] = Live(spec, client_dpid, vm_ip, t)
        self.by_vm.setdefault(vm_ip, set()).add(spec.id)

    def end(self, sid: int, t: float) -> Live:
        s = self.live.pop(sid)
        self._settle(s, t)
        self.by_vm[s.vm_ip].discard(sid)
        tot = self.totals
        tot.session_packets += s.packets
        tot.session_bytes += s.nbytes
        tot.far_s += s.far_s
        tot.session_s += s.spec.duration_s
        return s

    def move(self, vm_ip: str, dpid: int, t: float) -> None:
        if self.vm_at.get(vm_ip) == dpid:
            return
        for sid in self.by_vm.get(vm_ip, ()):
            self._settle(self.live[sid], t)
        self.vm_at[vm_ip] = dpid
        self.moved_at[vm_ip] = t

    def migration(self, vm_ip: str, src: tuple[str, int], dst: tuple[str, int],
                  sent_bytes: float, downtime_ms: float) -> None:
        n = self.paths.switches(src[1], dst[1])
        by = sent_bytes * n
        pk = by / self.cal.bytes_per_packet
        tot = self.totals
        tot.migration_bytes += by
        tot.migration_packets += pk
        tot.migrations += 1
        if self.by_vm.get(vm_ip):
            tot.downtime_s += downtime_ms / 1000
        c = self.migration_by_dst.setdefault(dst[0], [0.0, 0.0])
        c[0] += pk
        c[1] += by


class SimNetwork:
    """The engine's :class:`controller.ovct.Network`, simulated: places of
    hosts and VMs, hop distances and paths from the topology graph, a
    session's relay rates as the switches would report them (its rate on
    every switch of its current path, once it has been under way for a
    statistics interval), the migration stream's counts.  No flow-mods:
    a VM's flows "switch" when the engine commits (fast) or replaces
    (paper) them, and the ledger follows."""

    def __init__(self, topo: T.Topology, clock, ledger: Ledger, stats_interval_s: float = 2.0):
        self.paths = ledger.paths
        self.clock = clock
        self.ledger = ledger
        self.stats_interval_s = stats_interval_s
        self.loc: dict[str, tuple[int, int]] = {}
        self.client_ip: dict[str, str] = {}
        att = attachments(topo)
        for h in topo.hosts:
            sw, port = att[h.name]
            self.loc[h.ip] = (self.paths.dpid[sw], port)
        self.staged: dict[str, tuple[int, int]] = {}
        self.started: dict[tuple[str, str], tuple[float, int]] = {}   # (client ip, vm ip)

    # where things are
    def locate(self, ip: str):
        return self.loc.get(ip)

    def hops(self, a: int, b: int):
        return self.paths.hops(a, b)

    def levels(self, dpid: int):
        return self.paths.levels(dpid) if dpid in self.paths.adj else []

    def path(self, a: int, b: int):
        return self.paths.path(a, b)

    def place_vm(self, ip: str, loc: tuple[int, int], t: float) -> None:
        self.loc[ip] = loc
        self.ledger.move(ip, loc[0], t)

    # what the switches would report
    def session_rates(self, client_ip: str, vm_ip: str):
        info = self.started.get((client_ip, vm_ip))
        if info is None:
            return None
        t0, sid = info
        s = self.ledger.live.get(sid)
        now = self.clock()
        if s is None or now - t0 < self.stats_interval_s:
            return None
        since = max(t0, self.ledger.moved_at.get(vm_ip, t0))
        if now - since < self.stats_interval_s:
            since = t0                 # the window still spans the move
        at = self.ledger.vm_at[vm_ip]
        rate = (s.spec.pps, s.spec.bps)
        return Rates({d: rate for d in self.paths.path(s.client_dpid, at)}, since)

    def relayed(self, cls: str, ips):
        if cls != MIGRATION:
            return None
        pk = by = 0.0
        for ip in ips:
            c = self.ledger.migration_by_dst.get(ip)
            if c:
                pk += c[0]
                by += c[1]
        return (round(pk), round(by))

    # moving flows: the VM's place changes when its flows switch
    def prepare_move(self, ip, dpid, port):
        self.staged[ip] = (dpid, port)
        return 0

    def hold(self, ip):
        return 0

    def commit_move(self, ip, tag):
        self.place_vm(ip, self.staged.pop(ip), self.clock())
        return Update(0)

    def paper_move(self, ip, dpid, port, tag):
        self.place_vm(ip, (dpid, port), self.clock())
        return Update(0)

    def settle(self, ip, dpid, port):
        self.staged.pop(ip, None)
        self.place_vm(ip, (dpid, port), self.clock())
        return 0

    def pin(self, ip):
        pass

    def session_monitor(self, conn, idle_s):
        pass

    def trust_vms(self, macs):
        pass

    def expect_vm(self, ip, where):
        pass


class SimHypervisor(FakeHypervisor):
    """The fake hypervisor with its inventory looked up in O(1) (a
    simulation changes it only through migrations): where a VM runs, a
    host's capacity; finished jobs land once per instant of the clock."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._where: dict[str, str] = {}
        self._cap: dict[str, object] = {}
        self._landed_at: float | None = None

    def _land(self) -> None:
        now = self.clock()
        if now != self._landed_at or not self._open:
            self._landed_at = now
            super()._land()

    def _start_migration(self, *a, **kw):
        self._landed_at = None
        return super()._start_migration(*a, **kw)

    def add_vm(self, host, name, *a, **kw):
        super().add_vm(host, name, *a, **kw)
        self._where[name] = host
        self._cap.pop(host, None)

    def locate(self, vm):
        self._land()
        return self._where.get(vm)

    def capacity(self, host):
        self._reachable(host)
        self._land()
        cap = self._cap.get(host)
        if cap is None:
            cap = self._cap[host] = super().capacity(host)
        return cap

    def _landed(self, vm, src, dst):
        super()._landed(vm, src, dst)
        self._where[vm] = dst
        self._cap.pop(src, None)
        self._cap.pop(dst, None)


# -- a run -----------------------------------------------------------------------------

class Clock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class World:
    """A topology with its KVM hosts' declared capacity."""
    topo: T.Topology
    host_memory_mib: int = 8192
    host_cpus: int = 8

    @classmethod
    def multisite(cls, sites: int, clients: int = 10, hosts: int = 2, core: int | None = None,
                  **kw) -> "World":
        core = core if core is not None else max(1, min(sites, round(sites / 10)))
        return cls(T.multisite_topology(sites, clients, hosts, core), **kw)


class Hindsight(P.Decider):
    """The hindsight rule (not an online policy: it knows the future):
    move at detection exactly the sessions whose true remaining length
    exceeds the true break-even of the move (true rates, true migration
    bytes, on the paths the move changes)."""
    name = "hindsight"

    def __init__(self, truth):
        self.truth = truth

    def verdict(self, ctx: P.Context) -> P.Verdict:
        remaining, breakeven = self.truth(ctx)
        if breakeven is not None and remaining > breakeven:
            return P.Verdict(P.MIGRATE, f"hindsight: {remaining:.0f} s left > true break-even "
                                        f"{breakeven:.0f} s")
        return P.Verdict(P.STAY, "hindsight: the move would not pay")


@dataclass
class RunResult:
    policy: str
    totals: Totals
    decisions: dict[str, int]
    predictions: list[dict]
    wall_s: float
    decide_s: list[float] = field(default_factory=list)
    hosts_ranked: list[int] = field(default_factory=list)
    sim_end_s: float = 0.0
    exhaustive_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0                   # this process's CPU time (robust to other load)


def migration_profile(trace: Trace, cal: Calibration):
    """Each VM's migration (a model calibrated from the live run): bytes
    sent = RAM x transfer ratio / (1 - dirty rate / bandwidth), time
    scaled from the measured median by the bytes, the measured downtime."""
    ref = cal.memory_mib * MIB * cal.transfer_ratio

    def profile(vm: str, memory_mib: int) -> MigrationProfile:
        v = trace.vms[vm]
        q = min(0.9, v.dirty_bps / cal.memory_bps)
        sent = memory_mib * MIB * cal.transfer_ratio / (1 - q)
        return MigrationProfile(migration_s=cal.migration_s * sent / ref,
                                downtime_ms=cal.downtime_ms, transferred_bytes=int(sent),
                                memory_bps=cal.memory_bps, dirty_pages_per_s=v.dirty_bps / PAGE)
    return profile


def truth_for(world: World, trace: Trace, cal: Calibration, paths: Paths, unit: str,
              net: SimNetwork):
    """What the hindsight rule knows: a session's true remaining length and
    the true break-even of the move the engine considers."""
    ips = {h.name: h.ip for h in world.topo.hosts}
    by_key = {(ips[s.client], 1024 + s.id % 60000): s for s in trace.sessions}
    profile = migration_profile(trace, cal)

    def truth(ctx: P.Context):
        sess = ctx.session
        spec = by_key[(sess.client_ip, sess.client_port)]
        remaining = spec.end_s - ctx.now
        src, dst = ctx.src_switch, ctx.dst_switch
        if src is None or dst is None:
            return remaining, None
        c = sess.client_dpid
        saved = paths.switches(c, src) - paths.switches(c, dst)
        if saved <= 0:
            return remaining, None
        sent = profile(spec.vm, trace.vms[spec.vm].memory_mib).transferred_bytes
        n = paths.switches(src, dst)
        if unit == "packets":
            return remaining, sent * n / cal.bytes_per_packet / (spec.pps * saved)
        return remaining, sent * n / (spec.bps * saved)
    return truth


def run(world: World, trace: Trace, policy: Policy, cal: Calibration = Calibration(),
        hindsight: bool = False, stats_interval_s: float = 2.0, measure: bool = False,
        exhaustive_every: int = 0) -> RunResult:
    """Drive the engine through the trace: each session's SYN (and the
    VM's answer) at its start, its FIN at its end, the fake hypervisor's
    migration events when due, the engine's own deferred work when due.
    ``measure``: time every decision (and count the hosts placement looked
    at); ``exhaustive_every``: also time, on every n-th decision, ranking
    every host as the engine did before its index (for comparison)."""
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    topo = world.topo
    clock = Clock(0.0)
    paths = Paths(topo)
    ledger = Ledger(paths, cal)
    net = SimNetwork(topo, clock, ledger, stats_interval_s)
    kvm = topo.hosts_by_role(T.KVM_HOST)
    specs = [HostSpec(h.name, f"qemu:///sim/{h.name}", h.ip, world.host_memory_mib,
                      world.host_cpus) for h in kvm]
    hv = SimHypervisor(specs, clock, migration_s=cal.migration_s, downtime_ms=cal.downtime_ms,
                       setup_s=0.3, profile=migration_profile(trace, cal))
    host_loc = {h.name: net.loc[h.ip] for h in kvm}
    host_ip = {h.name: h.ip for h in kvm}
    att = attachments(topo)
    where = {h.name: (h.ip, att[h.name]) for h in topo.hosts_by_role(T.CLIENT)}
    for v in trace.vms.values():
        hv.add_vm(v.home, v.name, v.ip, v.mac, v.memory_mib, cpu_used=0.1)
        net.place_vm(v.ip, host_loc[v.home], 0.0)
    vm_ip = {v.name: v.ip for v in trace.vms.values()}
    queue: list = []
    hv.watch(queue.append)
    decisions: dict[str, int] = {}
    predictions: list[dict] = []
    host_dpid = {h.name: host_loc[h.name] for h in kvm}

    def emit(ev: E.Event) -> None:
        if isinstance(ev, E.Decision):
            decisions[ev.decision] = decisions.get(ev.decision, 0) + 1
        elif isinstance(ev, E.MigrationDone):
            ledger.migration(vm_ip[ev.vm], (host_ip[ev.src], host_dpid[ev.src][0]),
                             (host_ip[ev.dst], host_dpid[ev.dst][0]),
                             ev.transferred_bytes or 0, ev.downtime_ms or 0.0)
        elif isinstance(ev, E.PredictionCheck):
            predictions.append(ev.payload())

    decider = truth = None
    if hindsight:
        truth = truth_for(world, trace, cal, paths, policy.cost_unit, net)
        decider = Hindsight(truth)
    engine = Ovct(policy, hv, net, emit, clock, decider=decider)
    decide_s: list[float] = []
    ranked: list[int] = []
    exhaustive: list[float] = []
    if measure:
        inner = engine.decide

        def timed(s, current, memory_mib):
            t0 = time.perf_counter()
            inner(s, current, memory_mib)
            decide_s.append(time.perf_counter() - t0)
            ranked.append(engine.hosts_ranked)
            engine.hosts_ranked = 0
            if exhaustive_every and len(decide_s) % exhaustive_every == 0:
                t0 = time.perf_counter()
                engine.ranked_hosts(s.client_dpid)
                exhaustive.append(time.perf_counter() - t0)
        engine.decide = timed

    todo = []
    for s in trace.sessions:
        ip, (sw, port) = where[s.client]
        conn = (ip, 1024 + s.id % 60000, vm_ip[s.vm], 5900, paths.dpid[sw], port)
        todo.append((s.start_s, 1, s.id, s, conn))
        todo.append((s.end_s, 0, s.id, s, conn))
    heapq.heapify(todo)

    def drain():
        while True:
            while queue:
                engine.handle(queue.pop(0))
            engine.poll()
            if not queue:
                return

    while True:
        nxt = [t for t in (todo[0][0] if todo else None, engine.next_due(),
                           hv.next_event_time()) if t is not None]
        if not nxt:
            break
        clock.t = max(clock.t, min(nxt))
        while todo and todo[0][0] <= clock.t:
            _t, start, sid, spec, (cip, cport, vip, vport, dpid, port) = heapq.heappop(todo)
            if start:
                ledger.start(spec, dpid, vip, clock.t)
                net.started[(cip, vip)] = (clock.t, sid)
                engine.handle(VncConnection("start", cip, cport, vip, vport, dpid, port, clock.t))
                engine.handle(VncConnection("accept", cip, cport, vip, vport, dpid, port,
                                            clock.t))
            else:
                engine.handle(VncConnection("fin", cip, cport, vip, vport, dpid, port, clock.t))
                ledger.end(sid, clock.t)
                if net.started.get((cip, vip), (0, None))[1] == sid:
                    del net.started[(cip, vip)]
        drain()
    return RunResult(policy.decision if not hindsight else "hindsight", ledger.totals, decisions,
                     predictions, time.perf_counter() - t_wall, decide_s, ranked, clock.t,
                     exhaustive, time.process_time() - t_cpu)


# -- the offline lower bound ----------------------------------------------------------------

def lower_bound(world: World, trace: Trace, cal: Calibration, unit: str = "packets"
                ) -> float | None:
    """The least relay (``unit``) any placement plan could achieve on this
    trace, knowing the future, with the same costs as the ledger: per VM, a
    shortest path over its sessions (in time order) whose states are the
    switches the VM may sit at (its home, its clients' switches); between
    two sessions it may move (a migration's cost, no relay while it runs);
    capacity, hold time and migration slots ignored (a relaxation).  No
    online policy -- nor the hindsight rule -- can do better (property
    test).  None if some VM has overlapping sessions."""
    if trace.overlapping_vms():
        return None
    topo = world.topo
    paths = Paths(topo)
    dp = {name: paths.dpid[sw] for name, (sw, _port) in attachments(topo).items()}
    profile = migration_profile(trace, cal)
    per_vm: dict[str, list[SessionSpec]] = {}
    for s in sorted(trace.sessions, key=lambda s: s.start_s):
        per_vm.setdefault(s.vm, []).append(s)
    total = 0.0
    for vm, sessions in per_vm.items():
        v = trace.vms[vm]
        sent = profile(vm, v.memory_mib).transferred_bytes
        per_switch_move = sent if unit == "bytes" else sent / cal.bytes_per_packet
        states = sorted({dp[v.home]} | {dp[s.client] for s in sessions})
        cost = {x: (0.0 if x == dp[v.home] else math.inf) for x in states}
        for s in sessions:
            c = dp[s.client]
            rate = s.bps if unit == "bytes" else s.pps
            best_in = {y: min(cost[x] + (0.0 if x == y else per_switch_move *
                                         paths.switches(x, y)) for x in states)
                       for y in states}
            cost = {y: best_in[y] + rate * paths.switches(c, y) * s.duration_s for y in states}
        total += min(cost.values())
    return total


def with_decision(policy: Policy, decision: str) -> Policy:
    return policy.model_copy(update={"decision": decision})


__all__ = ["Calibration", "calibrate", "TraceModel", "generate", "read_trace", "write_trace",
           "World", "run", "lower_bound", "Hindsight", "RunResult", "replace"]
