"""OVCT, the method itself (``../shared/paper/SUMMARY.md``), as pure logic.

Phase 1, detection: the router reports the first packet of a TCP connection
to a VNC port (a SYN copied by the switches' detect table); if its server is
a known VM, a session starts, located by the client's and the VM's switches.
Phase 2, placement: KVM hosts ordered by hop distance from the client's
switch (the report's rule: same switch first); the first one closer than the
VM's current host that has free memory for the VM plus a reserve and enough
idle CPU (through the hypervisor adapter, no SSH) is chosen.  Nothing moves
when the VM is already as close as it can get, no host has capacity, a
migration of it is in flight, or it moved less than the hold time ago; the
decision and its reason are recorded either way.
Phase 3, migration through the hypervisor adapter, asynchronously.  On
failure or timeout the old flows stay and the reason is recorded.
Phase 4, network update, in one of two modes:
``paper``: the report's -- after the migration completed, delete every flow
for the VM's address, then install the new ones;
``fast``: make-before-break -- the new path is staged while pre-copy runs and
switched the moment the VM resumes at the destination (QEMU's RARP from the
VM's MAC at the new port, or the migration's completion, whichever comes
first), confirmed with barriers.

Whether a possible move is made is the decision policy's call
(:mod:`controller.policies`, ``Policy.decision``; ``always``, the report's
rule, by default), from the move's predicted cost and saving
(:mod:`controller.cost`), learnt from the controller's own statistics and
libvirt's; a move's prediction is checked against what was measured once
it is over (``ovct_prediction_check``).

The engine is driven by one thread (the shim's worker): typed inputs in
through :meth:`handle` (:class:`VncConnection`, :class:`HostSeen`,
:class:`BarrierReply`, :class:`SessionIdle`), time through :meth:`poll`;
flows go out through ``net`` (a :class:`Network`; the shim's is
:class:`controller.routernet.RouterNetwork`) and typed events
(:mod:`controller.events`) through ``emit``.  The policy is
:class:`controller.config.Policy`.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

from controller import events as E
from controller import hypervisor as H
from controller import policies as P
from controller.classes import MIGRATION
from controller.config import Policy
from controller.cost import CostModel, Prediction, Rates, dirty_bps_from_job
from controller.inventory import Inventory
from controller.hypervisor import (DomainEvent, Hypervisor, HypervisorError, MigrationError,
                                   MigrationJob, MigrationStats)
from controller.modes import FAST
from controller.routing import Update, VncConnection

LOG = logging.getLogger("ovct.engine")


class Network(Protocol):
    """What OVCT needs of the routing side (the shim adds locking)."""

    def locate(self, ip: str) -> tuple[int, int] | None: ...
    def hops(self, a: int, b: int) -> int | None: ...
    # the switches at 0, 1, 2 ... hops from a switch, read lazily (placement
    # looks only as far as it must); the switches a path crosses, both ends
    # included
    def levels(self, dpid: int) -> Iterable[list[int]]: ...
    def path(self, a: int, b: int) -> list[int] | None: ...
    # measured: a session's VNC relay per switch (None: not measured), the
    # cumulative relay of a traffic class to some addresses (None: no statistics)
    def session_rates(self, client_ip: str, vm_ip: str) -> Rates | None: ...
    def relayed(self, cls: str, ips: tuple[str, ...]) -> tuple[int, int] | None: ...
    # each returns the number of flow-mods sent (and, for the two that
    # switch traffic, the switches whose barrier replies will carry ``tag``)
    def prepare_move(self, ip: str, dpid: int, port: int) -> int: ...
    def hold(self, ip: str) -> int: ...
    def commit_move(self, ip: str, tag: str) -> Update: ...
    def settle(self, ip: str, dpid: int, port: int) -> int: ...
    def pin(self, ip: str) -> None: ...
    def paper_move(self, ip: str, dpid: int, port: int, tag: str) -> Update: ...
    def session_monitor(self, conn: VncConnection, idle_s: int) -> None: ...
    # what the router may believe about VMs (controller.trust)
    def trust_vms(self, macs: dict[str, str]) -> None: ...
    def expect_vm(self, ip: str, where: frozenset[tuple[int, int]] | None) -> None: ...


# -- inputs (besides VncConnection, from the router) ---------------------------------

@dataclass(frozen=True)
class HostSeen:
    """A host OVCT watches (a moving VM) showed up at ``(dpid, port)``."""
    ip: str
    dpid: int
    port: int
    time: float


@dataclass(frozen=True)
class BarrierReply:
    """A switch answered a barrier sent with ``tag``."""
    tag: str
    dpid: int
    time: float


@dataclass(frozen=True)
class SessionIdle:
    """A session's monitor flow expired (no client packet for its idle time)."""
    client_ip: str
    client_port: int
    vm_ip: str
    vm_port: int
    time: float

    @property
    def key(self) -> tuple[str, int, str, int]:
        return (self.client_ip, self.client_port, self.vm_ip, self.vm_port)


Input = VncConnection | HostSeen | BarrierReply | SessionIdle | DomainEvent


@dataclass
class Session:
    id: int
    client_ip: str
    client_port: int
    vm: str
    vm_ip: str
    vm_port: int
    client_dpid: int
    started: float
    ended: float | None = None
    recheck_at: float | None = None       # a deferred decision is taken again then
    #: a decision deferred before the session was measured was brought
    #: forward once (PRIOR_RECHECK_S)
    rechecked_measured: bool = False


@dataclass
class Move:
    session: int
    vm: str
    vm_ip: str
    src: str
    dst: str
    dst_loc: tuple[int, int]
    mode: str
    job: MigrationJob
    started: float
    memory_mib: int = 0                   # reserved at the destination while in flight
    seen_at_dst: float | None = None      # first packet from the VM at the new port
    switched: float | None = None         # flows switched (fast) / replaced (paper)
    switch_trigger: str | None = None
    pending_barriers: set[int] = field(default_factory=set)
    confirmed: float | None = None        # every switch acknowledged the update
    tag: str = ""
    stats: MigrationStats | None = None
    # from the hypervisor's domain events (monotonic), when it reports them
    dst_started: float | None = None      # the destination's QEMU is up (incoming)
    src_paused: float | None = None       # the source stopped for stop-and-copy
    dst_resumed: float | None = None      # the VM runs at the destination
    held: bool = False                    # its traffic is kept at the controller
    # the decision's prediction, and what its check needs
    prediction: Prediction | None = None
    sess: Session | None = None
    relayed_at_start: tuple[int, int] | None = None   # migration class, both hosts
    #: another migration used one of its hosts before its check: the
    #: switches' counts per host cannot tell the two streams apart
    shared: bool = False
    rates_before: Rates | None = None     # the session's relay just before the switch

#: give up waiting for barrier replies after this long (a switch went away)
BARRIER_TIMEOUT_S = 10.0
#: fast mode: the VM resumed at the destination (libvirt says) but its RARP
#: has not been seen this long after: switch anyway (the RARP normally comes
#: ~50 ms after the resume; libvirt's completion only ~1.6 s later)
RESUME_SWITCH_GRACE_S = 0.5
#: a client's SYN waits this long for the VM's SYN+ACK before it is forgotten
SYN_WAIT_S = 10.0
#: a decision deferred on the cost model's priors (the session not
#: measured yet) is taken again this soon -- once -- so the rule follows
#: the break-even of the session's own rates, not the priors' (live, the
#: measured one was up to 89 s shorter: results/policy-live)
PRIOR_RECHECK_S = 30.0
#: unanswered SYNs remembered per client address (more are ignored)
SYN_PENDING_LIMIT = 16
#: re-read every host's capacity this often in the background (hypervisors
#: whose capacity needs an earlier sample: Hypervisor.warm_capacity), so a decision
#: finds recent CPU-time samples and need not take a sampling window itself
#: (the report's SSH checks took ~10 s here)
CAPACITY_REFRESH_S = 5.0


class Ovct:
    def __init__(self, policy: Policy, hv: Hypervisor, net: Network,
                 emit: Callable[[E.Event], None], clock: Callable[[], float],
                 decider: P.Decider | None = None):
        self.policy = policy
        self.hv = hv
        self.net = net
        self.emit = emit
        self.clock = clock
        #: whether a possible move is made (the policy's ``decision``; a
        #: simulation may pass its own, e.g. one that knows the future)
        self.decider = decider or P.make(policy.decision)
        self.model = CostModel(priors=policy.priors(), unit=policy.cost_unit)
        self.history = P.SessionHistory()
        self._seq = itertools.count()
        #: (when, n, session key): deferred decisions, taken again then
        self._rechecks: list[tuple[float, int, tuple]] = []
        #: (when, n, move): predictions to check against measurements then
        self._checks: list[tuple[float, int, Move]] = []
        #: KVM hosts by the switch they hang off (placement's index), the
        #: switch each was indexed at, and those whose place is not known
        self._hosts_at: dict[int, list[str]] | None = None
        self._indexed_at: dict[str, int] = {}
        self._unplaced: set[str] = set()
        #: KVM hosts placement looked at in its last decision (the cost of
        #: a decision grows with these, not with all hosts)
        self.hosts_ranked = 0
        #: the hypervisors' inventory, kept fresh host by host when they can
        #: say which hosts changed (the fake can; libvirt: read in full)
        self._inventory = Inventory(hv.hosts())
        self._inv_token: object | None = None
        self._inv_placed = False
        self.sessions: dict[tuple[str, int, str, int], Session] = {}
        self.moves: dict[str, Move] = {}          # vm -> move in flight
        #: vm -> its last move that ended: domain events that arrive after
        #: the outcome (the source resuming after a failure) still count
        self.ended_moves: dict[str, Move] = {}
        #: vm -> host whose QEMU waits for it, in migrations OVCT did not start
        self._incoming: dict[str, str] = {}
        self.last_moved: dict[str, float] = {}     # vm -> when its last move ended
        self._next_session = 1
        self._vm_cache: tuple[float, dict[str, tuple[str, str, int]]] = (-1e9, {})
        self._refreshed = -1e9
        self.waiting: list[tuple[Session, str, int]] = []   # decisions deferred
        #: vm -> the hosts it is active on, when that is more than one
        self.conflicts: dict[str, set[str]] = {}
        #: (client, port, server, port) -> the client's SYN, until the
        #: server's SYN+ACK makes it a session
        self.pending: dict[tuple[str, int, str, int], VncConnection] = {}
        #: the same key -> a server's SYN+ACK seen before the client's SYN
        self.accepted_early: dict[tuple[str, int, str, int], VncConnection] = {}
        #: on/off at run time (:meth:`set_enabled`); starts as the policy says
        self.enabled = bool(policy.enabled)
        self._enabled_at = float("-inf")
        #: migrations found in flight at start, not adopted yet (their
        #: destination's place is not known until the network is learnt)
        self._to_adopt: list[MigrationJob] | None = None
        self._restored: tuple[int, int] | None = None      # set by restore()
        #: migrations the log shows started and never ended (set by restore())
        self._unfinished: dict[str, E.MigrationStart] = {}
        self._adopt_waiting = False

    # -- a restart ----------------------------------------------------------------------
    def restore(self, records: list[dict]) -> None:
        """Take over from a previous controller's event log (the same run
        directory): the sessions it saw open, when each VM last moved, the
        next session number.  Monotonic times carry over: the clock is the
        machine's.  Migrations in flight are adopted from the hypervisors
        on the first polls (:meth:`_adopt`)."""
        opened: dict[int, E.Detect] = {}
        clients: dict[int, str] = {}
        for rec in records:
            ev = E.typed(rec)
            if isinstance(ev, E.MigrationStart):
                self._unfinished[ev.vm] = ev
            elif isinstance(ev, (E.MigrationDone, E.MigrationFailed)):
                self._unfinished.pop(ev.vm, None)
            if isinstance(ev, E.Detect):
                opened[ev.session] = ev
                clients[ev.session] = ev.client_ip
            elif isinstance(ev, E.SessionEnd):
                opened.pop(ev.session, None)
                if ev.session in clients and ev.duration_s is not None:
                    self.history.add(clients.pop(ev.session), ev.vm, ev.duration_s)
            elif isinstance(ev, (E.MigrationDone, E.MigrationFailed)):
                self.last_moved[ev.vm] = rec["mono"]
                if isinstance(ev, E.MigrationDone) and ev.data_total_bytes:
                    self.model.learn_migration(ev.vm, ev.data_total_bytes, ev.transferred_bytes,
                                               ev.memory_bps, dirty_bps_from_job(ev.job or {}))
            if getattr(ev, "session", None) is not None:
                self._next_session = max(self._next_session, ev.session + 1)
        for d in opened.values():
            key = (d.client_ip, d.client_port, d.vm_ip, d.vm_port)
            self.sessions[key] = Session(d.session, d.client_ip, d.client_port, d.vm, d.vm_ip,
                                         d.vm_port, d.client_switch, d.detected_mono)
        self._restored = (len(self.sessions), len(self.last_moved))

    def _report_restored(self) -> None:
        adopted = sorted(m.vm for m in self.moves.values() if m.tag.endswith("-adopted"))
        if self._restored is not None or adopted:
            sessions, moved = self._restored or (len(self.sessions), len(self.last_moved))
            self.emit(E.Restored(sessions=sessions, last_moved=moved, adopted=adopted))

    def _adopt(self) -> None:
        """Migrations the hypervisors report in flight become moves of ours
        once the destination's place is known: flows follow the VM when the
        job ends; no second migration of it starts meanwhile."""
        if self._to_adopt is None:
            try:
                jobs = self.hv.in_flight()
            except HypervisorError as exc:
                # not every host answers yet (a controller started before
                # its KVM hosts, a libvirtd restarting): ask again next poll
                if not self._adopt_waiting:
                    self._adopt_waiting = True
                    LOG.warning("migrations in flight unknown, asking again: %s", exc)
                return
            self._to_adopt = [j for j in jobs if j.vm not in self.moves]
            for job in self._to_adopt:
                self._unfinished.pop(job.vm, None)
            if not self._to_adopt:
                self._report_restored()
        if self._unfinished:
            self._close_unfinished()
        if not self._to_adopt:
            return
        inventory = {name: (ip, mem) for ip, (name, _h, mem) in self.vms_by_ip().items()}
        for job in list(self._to_adopt):
            dst_loc = self.host_location(job.dst)
            if job.vm not in inventory or dst_loc is None:
                continue              # the VM or its destination host not known yet: next poll
            # (the VM itself need not be learnt: a migrating VM is expected at
            # its source only, and after the switchover at neither end until
            # the job ends -- waiting for it would wait for the job)
            ip, mem = inventory[job.vm]
            s = next((s for s in self.sessions.values() if s.vm == job.vm), None)
            m = Move(s.id if s else 0, job.vm, ip, job.src, job.dst, dst_loc,
                     self.policy.update_mode, job, self.clock(), tag=f"{job.vm}-adopted",
                     memory_mib=mem)
            self.moves[job.vm] = m
            if m.mode == FAST:
                self.net.prepare_move(ip, *dst_loc)
            else:
                self.net.pin(ip)
            self._expect(ip, job.src)
            self._to_adopt.remove(job)
            self.emit(E.MigrationStart(session=m.session, vm=m.vm, src=m.src, dst=m.dst,
                                       mode=m.mode, staged_flow_mods=0, adopted=True))
        if not self._to_adopt:
            self._report_restored()

    def _close_unfinished(self) -> None:
        """A migration the previous controller started that ended while no
        controller ran: its outcome is where the hypervisor now says the VM
        runs (the destination: done; the source: failed).  A VM not seen
        anywhere yet is looked for again at the next poll."""
        where = {name: host for _ip, (name, host, _m) in self.vms_by_ip().items()}
        for vm, st in list(self._unfinished.items()):
            host = where.get(vm)
            if host is None:
                continue
            del self._unfinished[vm]
            self.last_moved[vm] = self.clock()
            if host == st.dst:
                self.emit(E.MigrationDone(session=st.session, vm=vm, src=st.src, dst=st.dst,
                                          ended_unobserved=True))
            else:
                self.emit(E.MigrationFailed(
                    session=st.session, vm=vm, src=st.src, dst=st.dst,
                    reason="ended while no controller ran", observed_at=host,
                    flows_at=host))

    # -- inventory ----------------------------------------------------------------
    def vms_by_ip(self, max_age: float = 2.0) -> dict[str, tuple[str, str, int]]:
        """{ip: (vm, host, memory_mib)} of running VMs, cached briefly.  A
        fresh read also tells the router who the VMs are and where each may
        be (the host it runs on; during a move, see :meth:`_expect`)."""
        t, cached = self._vm_cache
        now = self.clock()
        if max_age > 0 and now - t <= max_age:
            return cached       # (max_age=0 reads again even at the same instant)
        inv = self._inventory
        # max_age=0 asks for a full read; so does a hypervisor that cannot
        # tell what changed, and a last read that found a host's place unknown
        token, changed = self.hv.inventory_changes(self._inv_token if max_age > 0 else None)
        if changed is None or not self._inv_placed:
            inv.read_all(self.hv)
            self.conflicts = inv.conflicts()
            ips, macs_changed, placed = list(inv.by_ip), True, True
        else:
            ips, vms, macs_changed = inv.read_hosts(self.hv, changed)
            for vm in vms:
                self.conflicts.pop(vm, None)
            self.conflicts.update(inv.conflicts(vms))
            placed = self._inv_placed
        self._inv_token = token
        out = inv.by_ip
        self._vm_cache = (now, out)
        if macs_changed:
            self.net.trust_vms(dict(inv.macs))
        for ip in ips:
            if ip in out and out[ip][0] not in self.moves:
                placed = self._expect(ip, out[ip][1]) and placed
        self._inv_placed = placed
        return out

    def _expect(self, ip: str, *hosts: str) -> bool:
        """The router may learn the VM at ``ip`` only where these hosts are
        (anywhere a KVM host is, while their place is not known yet).
        Returns whether every place was known."""
        locs = [self.host_location(h) for h in hosts]
        known = None not in locs
        self.net.expect_vm(ip, frozenset(locs) if known else None)
        return known

    def host_location(self, host: str) -> tuple[int, int] | None:
        return self.net.locate(self.hv.spec(host).address)

    def set_enabled(self, on: bool, why: str = "") -> None:
        """Switch OVCT on or off while the network runs.  On: every VNC
        session already running is decided at once, as if just detected
        (sessions are tracked while OVCT is off).  Off: migrations in flight
        finish, deferred decisions are dropped, nothing new starts."""
        now = self.clock()
        decided = 0
        changed = on != self.enabled
        self.enabled = on
        if changed and on:
            self._enabled_at = now
            inventory = self.vms_by_ip(max_age=0)
            for s in sorted(self.sessions.values(), key=lambda s: s.id):
                where = inventory.get(s.vm_ip)
                if where is not None and s.vm not in self.moves:
                    self.decide(s, where[1], where[2])
                    decided += 1
        elif changed:
            self.waiting.clear()
            self._rechecks.clear()
        # logged after the decisions, so whoever sees it also sees them
        self.emit((E.Enabled if on else E.Disabled)(
            why=why, switched_mono=now, changed=changed,
            running_sessions=len(self.sessions), decided_sessions=decided))

    # -- events in ----------------------------------------------------------------
    def handle(self, ev: Input) -> None:
        if isinstance(ev, VncConnection):
            key = (ev.client_ip, ev.client_port, ev.server_ip, ev.server_port)
            if ev.kind == "start":
                if self.accepted_early.pop(key, None) is not None:
                    self.session_start(ev)      # its SYN+ACK overtook it
                else:
                    self.syn(ev, key)
            elif ev.kind == "accept":
                c = self.pending.pop(key, None)
                if c is not None:               # the VM took the connection
                    self.session_start(c)
                else:
                    self.accept_early(ev, key)
            else:
                self.pending.pop(key, None)
                self.accepted_early.pop(key, None)
                self.session_end(key, ev.kind, ev.time)
        elif isinstance(ev, HostSeen):
            self.vm_seen(ev.ip, (ev.dpid, ev.port), ev.time)
        elif isinstance(ev, BarrierReply):
            self.barrier_ack(ev.tag, ev.dpid, ev.time)
        elif isinstance(ev, SessionIdle):
            self.session_end(ev.key, "idle", ev.time)
        elif isinstance(ev, DomainEvent):
            self.domain_event(ev)
        else:
            raise TypeError(f"not an OVCT input: {ev!r}")

    # -- phase 1 ------------------------------------------------------------------
    def syn(self, c: VncConnection, key) -> None:
        """A client asks a server for a VNC connection: a session only once
        the server answers (a SYN nobody accepts moves nothing)."""
        if key in self.sessions or key in self.pending:
            return                                   # a retransmitted SYN
        if sum(1 for k in self.pending if k[0] == c.client_ip) >= SYN_PENDING_LIMIT:
            return
        self.pending[key] = c

    def accept_early(self, c: VncConnection, key) -> None:
        """A server's SYN+ACK before the client's SYN was seen: the two
        copies come from different switches, over different connections,
        and a busy switch's packet-in can arrive later than the answer it
        caused.  Kept as long as a SYN is, so the SYN makes the session."""
        if key in self.sessions or key in self.accepted_early:
            return                                   # established, or retransmitted
        if sum(1 for k in self.accepted_early if k[2] == c.server_ip) >= SYN_PENDING_LIMIT:
            return
        self.accepted_early[key] = c

    def session_start(self, c: VncConnection) -> None:
        key = (c.client_ip, c.client_port, c.server_ip, c.server_port)
        if key in self.sessions:
            return                                   # a retransmitted SYN
        # not in the cached inventory: maybe it just booted, ask again
        vm = self.vms_by_ip().get(c.server_ip) or self.vms_by_ip(max_age=0).get(c.server_ip)
        if vm is None:
            return                                   # VNC to something that is not a VM
        name, host, memory = vm
        s = Session(self._next_session, c.client_ip, c.client_port, name, c.server_ip,
                    c.server_port, c.dpid, c.time)
        self._next_session += 1
        self.sessions[key] = s
        self.net.session_monitor(c, self.policy.session_idle_s)
        vm_loc = self.net.locate(c.server_ip)
        self.emit(E.Detect(
            session=s.id, vm=name, vm_ip=c.server_ip, vm_port=c.server_port,
            client_ip=c.client_ip, client_port=c.client_port,
            client_switch=c.dpid, client_switch_port=c.in_port,
            vm_switch=vm_loc[0] if vm_loc else None, vm_host=host, detected_mono=c.time))
        self.decide(s, host, memory)

    def session_end(self, key, reason: str, t: float) -> None:
        s = self.sessions.pop(key, None)
        if s is None:
            return
        s.ended = t
        self.history.add(s.client_ip, s.vm, t - s.started)
        self.emit(E.SessionEnd(session=s.id, vm=s.vm, reason=reason,
                               duration_s=round(t - s.started, 3)))

    # -- phase 2 ------------------------------------------------------------------
    def decide(self, s: Session, current: str, memory_mib: int) -> None:
        p = self.policy
        now = self.clock()

        def record(decision: str, reason: str, **extra) -> None:
            # from detection, or from switching OVCT on for a session it found running
            since = max(s.started, self._enabled_at)
            self.emit(E.Decision(session=s.id, vm=s.vm, src=current, decision=decision,
                                 reason=reason,
                                 detect_to_decision_s=round(self.clock() - since, 6), **extra))
        if not self.enabled:
            return record("stay", "OVCT disabled")
        if s.vm in self.moves:
            return record("stay", "a migration of this VM is already in flight")
        twice = self.conflicts.get(s.vm)
        if twice:
            return record("stay", f"refused: {s.vm} is active on {len(twice)} hosts "
                                  f"({', '.join(sorted(twice))}); its place is not known")
        if len(self.moves) >= p.max_concurrent_migrations:
            # every session waits for itself (two sessions to one VM both
            # get decided, the second once the first's move is over)
            if not any(w[0].id == s.id for w in self.waiting):
                self.waiting.append((s, current, memory_mib))
            return record("wait", f"{len(self.moves)} migration(s) in flight; limit "
                                  f"{p.max_concurrent_migrations}: decided again when one ends")
        last = self.last_moved.get(s.vm)
        if last is not None and now - last < p.hold_time_s:
            return record("stay", f"moved {now - last:.0f} s ago; hold time {p.hold_time_s:g} s")
        cur_loc = self.host_location(current)
        cur_hops = self.net.hops(s.client_dpid, cur_loc[0]) if cur_loc else None
        candidates = []
        chosen = None
        for hops, host, loc in self.nearest_hosts(s.client_dpid, cur_hops):
            if host == current:
                continue
            entry = {"host": host, "hops": hops}
            try:
                cap = self.hv.capacity(host)
            except HypervisorError as exc:
                candidates.append({**entry, "ok": False, "why": str(exc)})
                continue
            need = memory_mib + p.memory_reserve_mib
            # VMs on their way there count as if they had arrived
            incoming = [m for m in self.moves.values() if m.dst == host]
            free = cap.free_memory_mib - sum(m.memory_mib for m in incoming)
            idle = cap.idle_cpus - p.min_idle_cpus * len(incoming)
            entry.update(free_memory_mib=free, idle_cpus=round(idle, 3))
            if incoming:
                entry["reserved_for"] = sorted(m.vm for m in incoming)
            if free < need:
                candidates.append({**entry, "ok": False,
                                   "why": f"free memory {free} < {need} MiB"})
            elif idle < p.min_idle_cpus:
                candidates.append({**entry, "ok": False,
                                   "why": f"idle CPUs {idle:.2f} < {p.min_idle_cpus:g}"})
            else:
                candidates.append({**entry, "ok": True})
                chosen = (host, loc, hops)
                break
        extra = {"current_hops": cur_hops, "candidates": candidates}
        if chosen is None:
            if not candidates:
                return record("stay", "already on the nearest host with the client", **extra)
            return record("stay", "no closer host has capacity", **extra)
        host, loc, hops = chosen
        pred = self.predict(s, cur_loc, loc, memory_mib)
        verdict = self._verdict(s, now, pred, extra, cur_loc[0] if cur_loc else None, loc[0])
        where = f"{host} is {hops} hop(s) from the client, {current} is {cur_hops}"
        if verdict.action == P.MIGRATE:
            record("migrate", f"{where}; {verdict.reason}" if verdict.reason else where,
                   dst=host, **extra)
            self.migrate(s, current, host, loc, memory_mib, pred)
        elif verdict.action == P.DEFER:
            s.recheck_at = verdict.recheck_at
            if pred is not None and pred.rates == "prior" and not s.rechecked_measured:
                s.rechecked_measured = True
                s.recheck_at = min(s.recheck_at, now + PRIOR_RECHECK_S)
            heapq.heappush(self._rechecks, (s.recheck_at, next(self._seq),
                                            (s.client_ip, s.client_port, s.vm_ip, s.vm_port)))
            record("defer", f"{where}; {verdict.reason}", dst=host,
                   recheck_mono=round(s.recheck_at, 6), **extra)
        else:
            record("stay", f"{where}; {verdict.reason}", **extra)

    def _verdict(self, s: Session, now: float, pred: Prediction | None, extra: dict,
                 src_switch: int | None, dst_switch: int) -> P.Verdict:
        """The policy's verdict on a possible move, after the hysteresis on
        its predicted gain (every policy); ``extra`` gets what the decision
        event carries about it."""
        p = self.policy
        extra["policy"] = self.decider.name
        if pred is not None:
            extra.update(pred.fields())
        rem, n = None, 0
        if self.decider.uses_history:
            rem, n = self.history.expected_remaining(s.client_ip, s.vm, now - s.started,
                                                     p.history_min_sessions)
            extra["history_n"] = n
            if rem is not None:
                extra["expected_remaining_s"] = round(rem, 3)
        if (p.hysteresis_saving_frac > 0 and pred is not None
                and pred.saving < p.hysteresis_saving_frac * pred.current):
            return P.Verdict(P.STAY, f"hysteresis: the predicted saving {pred.saving:.3g} "
                                     f"{pred.unit}/s is under {p.hysteresis_saving_frac:g} of "
                                     f"the session's relay now ({pred.current:.3g})")
        return self.decider.verdict(P.Context(
            now=now, started=s.started, prediction=pred, expected_remaining_s=rem, history_n=n,
            margin=p.hysteresis_margin, session=s, src_switch=src_switch, dst_switch=dst_switch))

    def predict(self, s: Session, cur_loc: tuple[int, int] | None, dst_loc: tuple[int, int],
                memory_mib: int) -> Prediction | None:
        """The cost model's prediction for moving ``s``'s VM from where it
        is to ``dst_loc`` (None: a path is not known)."""
        if cur_loc is None:
            return None
        old = self.net.path(s.client_dpid, cur_loc[0])
        new = self.net.path(s.client_dpid, dst_loc[0])
        mig = self.net.path(cur_loc[0], dst_loc[0])
        if old is None or new is None or mig is None:
            return None
        rates = self._session_rates(s)
        if rates is not None:
            mean = rates.mean(old)
            if mean is not None:
                self.model.learn_session(s.vm, mean)
        return self.model.predict(s.vm, memory_mib << 20, rates, old, new, mig)

    def _session_rates(self, s: Session, since: float | None = None) -> Rates | None:
        """The session's measured relay, over a window that began no
        earlier than ``since`` (default: the session's start)."""
        rates = self.net.session_rates(s.client_ip, s.vm_ip)
        if rates is None or rates.since < (s.started if since is None else since):
            return None
        return rates

    # -- placement's index ---------------------------------------------------------
    def nearest_hosts(self, dpid: int, limit: int | None = None
                      ) -> Iterator[tuple[int, str, tuple[int, int]]]:
        """KVM hosts by hop distance from switch ``dpid``, nearest first,
        ties by name, only those under ``limit`` hops: (hops, host, place).
        Reads the switches level by level from ``dpid`` and the hosts off
        each from an index, so a decision that stops at the first host with
        room costs what it looked at, not the number of hosts.  KVM hosts
        do not move (controller.trust binds each to its port); one seen
        elsewhere than indexed makes the index be rebuilt."""
        hosts_at = self._host_index()
        self.hosts_ranked = 0
        for hops, level in enumerate(self.net.levels(dpid)):
            if limit is not None and hops >= limit:
                return
            for host in sorted(h for d in level for h in hosts_at.get(d, ())):
                loc = self.host_location(host)
                if loc is None or loc[0] != self._indexed_at[host]:
                    self._hosts_at = None             # gone, or moved: index again
                    if loc is None or self.net.hops(dpid, loc[0]) != hops:
                        continue
                self.hosts_ranked += 1
                yield hops, host, loc

    def _host_index(self) -> dict[int, list[str]]:
        if self._hosts_at is None:
            self._hosts_at, self._indexed_at = {}, {}
            self._unplaced = set(self.hv.hosts())
        for host in sorted(self._unplaced):
            loc = self.host_location(host)
            if loc is not None:
                self._unplaced.discard(host)
                self._hosts_at.setdefault(loc[0], []).append(host)
                self._indexed_at[host] = loc[0]
        return self._hosts_at

    def ranked_hosts(self, dpid: int) -> list[tuple[int, str, tuple[int, int]]]:
        """Every KVM host by (hops from ``dpid``, name), looked up one by
        one: what :meth:`nearest_hosts` must agree with (tests)."""
        ranked = []
        for host in self.hv.hosts():
            loc = self.host_location(host)
            hops = self.net.hops(dpid, loc[0]) if loc else None
            if hops is not None:
                ranked.append((hops, host, loc))
        return sorted(ranked)

    # -- phase 3 ------------------------------------------------------------------
    def migrate(self, s: Session, src: str, dst: str, dst_loc: tuple[int, int],
                memory_mib: int = 0, prediction: Prediction | None = None) -> None:
        mode = self.policy.update_mode
        now = self.clock()
        try:
            job = self.hv.migrate(s.vm, dst, timeout=self.policy.migration_timeout_s,
                                  bandwidth_mibps=self.policy.migration_bandwidth_mibps())
        except MigrationError as exc:
            self.emit(E.MigrationFailed(session=s.id, vm=s.vm, src=src, dst=dst, reason=str(exc)))
            return
        m = Move(s.id, s.vm, s.vm_ip, src, dst, dst_loc, mode, job, now,
                 tag=f"{s.vm}-{s.id}", memory_mib=memory_mib, prediction=prediction, sess=s)
        if prediction is not None:
            m.relayed_at_start = self.net.relayed(MIGRATION, self._addresses(src, dst))
        for other in [*self.moves.values(), *(c[2] for c in self._checks)]:
            if {other.src, other.dst} & {src, dst}:
                other.shared = m.shared = True
        self.moves[s.vm] = m
        # until the switchover begins, the VM is where it was: a RARP for it
        # at the destination now would be a lie
        self._expect(s.vm_ip, src)
        if mode == FAST:
            staged = self.net.prepare_move(s.vm_ip, *dst_loc)
        else:
            self.net.pin(s.vm_ip)
            staged = 0
        self.emit(E.MigrationStart(session=s.id, vm=s.vm, src=src, dst=dst, mode=mode,
                                   staged_flow_mods=staged))

    def refresh_capacity(self) -> None:
        """Keep the hypervisor adapter's CPU-time samples warm."""
        self._refreshed = self.clock()
        for host in self.hv.hosts():
            try:
                self.hv.capacity(host)
            except HypervisorError:
                pass

    def _addresses(self, *hosts: str) -> tuple[str, ...]:
        return tuple(self.hv.spec(h).address for h in hosts)

    def next_due(self) -> float | None:
        """When the engine next has something to do on its own (a deferred
        decision, a prediction check, a switchover's grace or a barrier's
        timeout), for a driver with a simulated clock; None: nothing."""
        while self._rechecks:
            due, _n, key = self._rechecks[0]
            s = self.sessions.get(key)
            if s is not None and s.recheck_at == due:
                break
            heapq.heappop(self._rechecks)           # stale: the session ended or was re-decided
        due = [q[0][0] for q in (self._rechecks, self._checks) if q]
        for m in self.moves.values():
            if m.mode == FAST and m.switched is None and m.dst_resumed is not None:
                due.append(m.dst_resumed + RESUME_SWITCH_GRACE_S)
            if m.switched is not None and m.confirmed is None:
                due.append(m.switched + BARRIER_TIMEOUT_S)
        return min(due, default=None)

    def _recheck(self, now: float) -> None:
        """Take the deferred decisions whose time has come."""
        while self._rechecks and self._rechecks[0][0] <= now:
            due, _n, key = heapq.heappop(self._rechecks)
            s = self.sessions.get(key)
            if s is None or s.recheck_at != due:
                continue
            s.recheck_at = None
            where = self.vms_by_ip().get(s.vm_ip)
            if where is not None:
                self.decide(s, where[1], where[2])

    def _check(self, m: Move) -> None:
        """Compare a move's prediction with what was measured: the bytes
        libvirt sent, the migration stream the switches counted, and the
        session's relay after the move against before it."""
        pred, st, s = m.prediction, m.stats, m.sess
        unit = pred.unit
        out: dict = {}
        sent = st.transferred_bytes if st is not None else None
        realised_cost = None
        after = self.net.relayed(MIGRATION, self._addresses(m.src, m.dst))
        if m.relayed_at_start is not None and after is not None and not m.shared:
            pk = after[0] - m.relayed_at_start[0]
            by = after[1] - m.relayed_at_start[1]
            out.update(relayed_cost_packets=pk, relayed_cost_bytes=by, cost_source="switches")
            realised_cost = pk if unit == "packets" else by
            if sent:
                self.model.learn_relay(sent, pred.migration_switches, pk, by)
        elif sent and pred.transfer_bytes > 0:
            # (a VM whose memory read 0 MiB was predicted to send nothing:
            # no scale to turn libvirt's bytes into the cost's unit)
            out["cost_source"] = "libvirt"
            realised_cost = pred.cost * sent / pred.transfer_bytes
        if realised_cost is not None and pred.cost > 0:
            out["cost_error"] = round(realised_cost / pred.cost - 1, 6)
        why = None
        if s is not None and s.ended is not None:
            why = "the session ended before the check"
        else:
            before = m.rates_before
            later = (self._session_rates(s, m.switched)
                     if s is not None and m.switched is not None else None)
            if before is None:
                why = "the session was not measured before the move"
            elif later is None:
                why = "the session was not measured since the move"
            else:
                (b_pk, b_by), (a_pk, a_by) = before.total(), later.total()
                out.update(realised_saving_pps=round(b_pk - a_pk, 3),
                           realised_saving_bps=round(b_by - a_by, 1))
                saving = (b_pk - a_pk) if unit == "packets" else (b_by - a_by)
                if pred.saving > 0:
                    out["saving_error"] = round(saving / pred.saving - 1, 6)
                if realised_cost is not None and saving > 0:
                    out["realised_breakeven_s"] = round(realised_cost / saving, 3)
        be = pred.breakeven_s
        self.emit(E.PredictionCheck(
            session=m.session, vm=m.vm, src=m.src, dst=m.dst, unit=unit,
            migration_switches=pred.migration_switches,
            predicted_transfer_bytes=round(pred.transfer_bytes),
            predicted_cost_bytes=round(pred.cost_bytes),
            predicted_cost_packets=round(pred.cost_packets),
            predicted_saving_pps=round(pred.saving_pps, 3),
            predicted_saving_bps=round(pred.saving_bps, 1), transferred_bytes=sent,
            predicted_breakeven_s=None if be is None else round(be, 3),
            why_unmeasured=why, **out))

    def poll(self) -> None:
        self.hv.pump()
        if self._to_adopt is None or self._to_adopt or self._unfinished:
            self._adopt()
        now = self.clock()
        if self._rechecks:
            self._recheck(now)
        while self._checks and self._checks[0][0] <= now:
            self._check(heapq.heappop(self._checks)[2])
        for waiting in (self.pending, self.accepted_early):
            for key in [k for k, c in waiting.items() if now - c.time > SYN_WAIT_S]:
                del waiting[key]
        # also while off: switching on then decides at once, and the
        # hypervisors see the same background load either way
        if self.hv.warm_capacity and now - self._refreshed >= CAPACITY_REFRESH_S:
            self.refresh_capacity()
        for m in list(self.moves.values()):
            if (m.mode == FAST and m.switched is None and m.dst_resumed is not None
                    and now - m.dst_resumed >= RESUME_SWITCH_GRACE_S):
                self.switch(m, "VM resumed at destination (libvirt)")
            if m.switched is not None and m.confirmed is None and \
                    now - m.switched > BARRIER_TIMEOUT_S:
                m.confirmed = now
                self.emit(E.NetworkUnconfirmed(session=m.session, vm=m.vm,
                                               missing_barriers=sorted(m.pending_barriers)))
                self._maybe_finish(m)
            if m.stats is not None or not m.job.done():
                continue
            try:
                m.stats = m.job.result(0)
            except MigrationError as exc:
                self._end_move(m)
                self.last_moved[m.vm] = now
                # the VM is where its hypervisor says, whatever the job
                # reported and whatever the router saw meanwhile (a RARP
                # at the destination before the failure, say)
                observed = self._locate(m.vm)
                at = observed or m.src
                loc = self.host_location(at)
                undone = self.net.settle(m.vm_ip, *loc) if loc else 0
                m.held = False
                self._expect(m.vm_ip, at)
                self.emit(E.MigrationFailed(session=m.session, vm=m.vm, src=m.src, dst=m.dst,
                                            reason=str(exc), kept_old_flows=at == m.src,
                                            flow_mods=undone, observed_at=observed,
                                            flows_at=at))
                self._resume_waiting()
                continue
            st = m.stats
            self.emit(E.MigrationDone(
                session=m.session, vm=m.vm, src=m.src, dst=m.dst,
                elapsed_ms=st.elapsed_ms, downtime_ms=st.downtime_ms,
                data_total_bytes=st.data_total_bytes, iterations=st.iterations,
                memory_bps=st.memory_bps, setup_ms=st.setup_ms, wall_s=st.wall_s,
                seen_at_dst_before_done_s=(round(now - m.seen_at_dst, 6)
                                           if m.seen_at_dst else None),
                transferred_bytes=st.transferred_bytes, job=dict(st.raw)))
            self.last_moved[m.vm] = now
            self.model.learn_migration(m.vm, m.memory_mib << 20 or st.data_total_bytes or 0,
                                       st.transferred_bytes, st.memory_bps,
                                       dirty_bps_from_job(st.raw))
            if m.prediction is not None:
                heapq.heappush(self._checks, (now + self.policy.prediction_check_s,
                                              next(self._seq), m))
            if m.switched is None:
                self.switch(m, "migration completed")
            self._maybe_finish(m)

    def _maybe_finish(self, m: Move) -> None:
        if m.stats is not None and m.confirmed is not None:
            self._end_move(m)
            self.last_moved[m.vm] = self.clock()
        self._resume_waiting()

    def _resume_waiting(self) -> None:
        while self.waiting and len(self.moves) < self.policy.max_concurrent_migrations:
            s, _current, memory = self.waiting.pop(0)
            if s.ended is not None:
                continue                       # the session is over: nothing to do
            where = self.vms_by_ip(max_age=0).get(s.vm_ip)
            if where is not None:
                self.decide(s, where[1], memory)

    # -- phase 4 ------------------------------------------------------------------
    def vm_seen(self, ip: str, loc: tuple[int, int], t: float) -> None:
        """The VM's MAC showed up at a new switch port (QEMU's RARP)."""
        for m in self.moves.values():
            if m.vm_ip == ip and m.seen_at_dst is None and tuple(loc) == tuple(m.dst_loc):
                m.seen_at_dst = t
                self.emit(E.VmSeen(session=m.session, vm=m.vm, switch=loc[0], port=loc[1],
                                   migration_start_to_seen_s=round(t - m.started, 6)))
                if m.mode == FAST and m.switched is None:
                    self.switch(m, "VM seen at destination (RARP)")

    def _locate(self, vm: str) -> str | None:
        """Where the hypervisors say ``vm`` runs (None: nowhere they can see)."""
        self._vm_cache = (-1e9, {})             # what we cached may be stale now
        self._inv_token = None
        return self.hv.locate(vm)

    def _end_move(self, m: Move) -> None:
        self.moves.pop(m.vm, None)
        self.ended_moves[m.vm] = m

    def _foreign_migration(self, ev: DomainEvent) -> None:
        """A migration OVCT did not start (by hand, another tool): the
        router may learn the VM at its destination once libvirt says the
        switchover has begun there (its RARP then moves the routes), and
        back at the source if it is cancelled."""
        if ev.detail != "migrated" and ev.kind != H.RESUMED:
            return
        ip = next((ip for ip, (name, _h, _m) in self.vms_by_ip().items() if name == ev.vm), None)
        if ip is None:
            return
        if ev.kind == H.STARTED:
            self._incoming[ev.vm] = ev.host
        elif ev.kind == H.SUSPENDED and ev.vm in self._incoming:
            self._expect(ip, self._incoming[ev.vm])
        elif ev.kind == H.RESUMED:
            self._incoming.pop(ev.vm, None)
            self._vm_cache = (-1e9, {})          # it runs elsewhere now
            self._expect(ip, ev.host)

    def domain_event(self, ev: DomainEvent) -> None:
        """What the hypervisor reported about a VM that is moving: the
        migration's phases.  In fast mode, the moment the source pauses for
        stop-and-copy, the VM's traffic is held at the controller (the hold
        flows outrank its live ones), so packets that would reach the
        stopped source wait instead, and are delivered at the destination
        when the flows switch (or, should the migration fail, where the VM
        still runs)."""
        ended = self.ended_moves.get(ev.vm)
        m = self.moves.get(ev.vm) or ended
        if m is not None and m is ended and ev.kind == H.STARTED:
            # a new migration (by hand) of a VM OVCT moved before: the old
            # move's late events are over, and the new one's pause and
            # resume must not be read as that move's
            del self.ended_moves[ev.vm]
            m = None
        if m is None:
            self._foreign_migration(ev)
            return
        at_src, at_dst = ev.host == m.src, ev.host == m.dst
        step = None
        held_flow_mods = None
        if ev.kind == H.STARTED and at_dst:
            m.dst_started, step = ev.time, "dest_started"
        elif ev.kind == H.ITERATION and at_src:
            step = "iteration"
        elif ev.kind == H.SUSPENDED and at_src:
            m.src_paused, step = ev.time, "source_paused"
            if self.moves.get(m.vm) is m:       # from now on it can only resume there
                self._expect(m.vm_ip, m.dst)
            if (m.mode == FAST and m.switched is None and not m.held
                    and self.moves.get(m.vm) is m):
                held_flow_mods = self.net.hold(m.vm_ip)
                m.held = True
        elif ev.kind == H.RESUMED and at_dst:
            m.dst_resumed, step = ev.time, "dest_resumed"
            if self.moves.get(m.vm) is m:
                self._expect(m.vm_ip, m.dst)
        elif ev.kind == H.RESUMED and at_src:
            step = "source_resumed"             # the migration was cancelled
            self._expect(m.vm_ip, m.src)
        elif ev.kind == H.STOPPED and at_src:
            step = "source_stopped"
        elif ev.kind == H.JOB_COMPLETED and at_src:
            step = "job_completed"
        if step is not None:
            self.emit(E.MigrationProgress(
                session=m.session, vm=m.vm, step=step, host=ev.host, detail=ev.detail,
                event_mono=ev.time, since_start_s=round(ev.time - m.started, 6),
                iteration=ev.iteration, held_flow_mods=held_flow_mods))

    def switch(self, m: Move, trigger: str) -> None:
        m.switched = self.clock()
        m.switch_trigger = trigger
        if m.prediction is not None and m.sess is not None:
            m.rates_before = self._session_rates(m.sess)
            if m.rates_before is None and m.prediction.rates == "measured":
                # measured at the decision, not since: that is the "before"
                p = m.prediction
                m.rates_before = Rates({0: (p.current_pps, p.current_bps)}, m.sess.started)
        self._expect(m.vm_ip, m.dst)
        if m.mode == FAST:
            up = self.net.commit_move(m.vm_ip, m.tag)
        else:
            up = self.net.paper_move(m.vm_ip, *m.dst_loc, m.tag)
        m.held = False
        m.pending_barriers = set(up.barriers)
        if not up.barriers:
            m.confirmed = m.switched
        self.emit(E.NetworkUpdate(
            session=m.session, vm=m.vm, mode=m.mode, trigger=trigger, dst=m.dst,
            to_switch=m.dst_loc[0], to_port=m.dst_loc[1], flow_mods=up.flow_mods,
            migration_start_to_switch_s=round(m.switched - m.started, 6),
            seen_to_switch_s=(round(m.switched - m.seen_at_dst, 6)
                              if m.seen_at_dst else None),
            released_frames=up.released, dropped_frames=up.dropped))

    def barrier_ack(self, tag: str, dpid: int, t: float) -> None:
        m = next((m for m in self.moves.values() if m.tag == tag), None)
        if m is None or m.confirmed is not None:
            return
        m.pending_barriers.discard(dpid)
        if not m.pending_barriers:
            m.confirmed = t
            self.emit(E.NetworkConfirmed(session=m.session, vm=m.vm, mode=m.mode,
                                         switch_to_confirmed_s=round(t - m.switched, 6)))
            self._maybe_finish(m)


