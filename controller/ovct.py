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

The engine is driven by one thread (the shim's worker): typed inputs in
through :meth:`handle` (:class:`VncConnection`, :class:`HostSeen`,
:class:`BarrierReply`, :class:`SessionIdle`), time through :meth:`poll`;
flows go out through ``net`` (a :class:`Network`; the shim's is
:class:`controller.routernet.RouterNetwork`) and typed events
(:mod:`controller.events`) through ``emit``.  The policy is
:class:`controller.config.Policy`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from controller import events as E
from controller import hypervisor as H
from controller.config import Policy
from controller.hypervisor import (DomainEvent, Hypervisor, HypervisorError, MigrationError,
                                   MigrationJob, MigrationStats)
from controller.modes import FAST
from controller.routing import Update, VncConnection


class Network(Protocol):
    """What OVCT needs of the routing side (the shim adds locking)."""

    def locate(self, ip: str) -> tuple[int, int] | None: ...
    def hops(self, a: int, b: int) -> int | None: ...
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

#: give up waiting for barrier replies after this long (a switch went away)
BARRIER_TIMEOUT_S = 10.0
#: fast mode: the VM resumed at the destination (libvirt says) but its RARP
#: has not been seen this long after: switch anyway (the RARP normally comes
#: ~50 ms after the resume; libvirt's completion only ~1.6 s later)
RESUME_SWITCH_GRACE_S = 0.5
#: a client's SYN waits this long for the VM's SYN+ACK before it is forgotten
SYN_WAIT_S = 10.0
#: unanswered SYNs remembered per client address (more are ignored)
SYN_PENDING_LIMIT = 16
#: re-read every host's capacity this often in the background, so a decision
#: finds recent CPU-time samples and need not take a sampling window itself
#: (the report's SSH checks took ~10 s here)
CAPACITY_REFRESH_S = 5.0


class Ovct:
    def __init__(self, policy: Policy, hv: Hypervisor, net: Network,
                 emit: Callable[[E.Event], None], clock: Callable[[], float]):
        self.policy = policy
        self.hv = hv
        self.net = net
        self.emit = emit
        self.clock = clock
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
        #: on/off at run time (:meth:`set_enabled`); starts as the policy says
        self.enabled = bool(policy.enabled)
        self._enabled_at = float("-inf")
        #: migrations found in flight at start, not adopted yet (their
        #: destination's place is not known until the network is learnt)
        self._to_adopt: list[MigrationJob] | None = None
        self._restored: tuple[int, int] | None = None      # set by restore()

    # -- a restart ----------------------------------------------------------------------
    def restore(self, records: list[dict]) -> None:
        """Take over from a previous controller's event log (the same run
        directory): the sessions it saw open, when each VM last moved, the
        next session number.  Monotonic times carry over: the clock is the
        machine's.  Migrations in flight are adopted from the hypervisors
        on the first polls (:meth:`_adopt`)."""
        opened: dict[int, E.Detect] = {}
        for rec in records:
            ev = E.typed(rec)
            if isinstance(ev, E.Detect):
                opened[ev.session] = ev
            elif isinstance(ev, E.SessionEnd):
                opened.pop(ev.session, None)
            elif isinstance(ev, (E.MigrationDone, E.MigrationFailed)):
                self.last_moved[ev.vm] = rec["mono"]
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
            self._to_adopt = [j for j in self.hv.in_flight() if j.vm not in self.moves]
            if not self._to_adopt:
                self._report_restored()
        if not self._to_adopt:
            return
        inventory = {name: (ip, mem) for ip, (name, _h, mem) in self.vms_by_ip().items()}
        for job in list(self._to_adopt):
            dst_loc = self.host_location(job.dst)
            if job.vm not in inventory or dst_loc is None or self.net.locate(
                    inventory[job.vm][0]) is None:
                continue                              # not learnt yet: next poll
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

    # -- inventory ----------------------------------------------------------------
    def vms_by_ip(self, max_age: float = 2.0) -> dict[str, tuple[str, str, int]]:
        """{ip: (vm, host, memory_mib)} of running VMs, cached briefly.  A
        fresh read also tells the router who the VMs are and where each may
        be (the host it runs on; during a move, see :meth:`_expect`)."""
        t, cached = self._vm_cache
        now = self.clock()
        if now - t <= max_age:
            return cached
        out = {}
        macs = {}
        where: dict[str, set[str]] = {}
        for host in self.hv.hosts():
            try:
                for d in self.hv.domains(host):
                    if d.active and d.ip:
                        out[d.ip] = (d.name, host, d.memory_mib)
                        where.setdefault(d.name, set()).add(host)
                        if d.mac:
                            macs[d.ip] = d.mac
            except HypervisorError:
                continue
        self.conflicts = {vm: hosts for vm, hosts in where.items() if len(hosts) > 1}
        self._vm_cache = (now, out)
        self.net.trust_vms(macs)
        for ip, (name, host, _mem) in out.items():
            if name not in self.moves:
                self._expect(ip, host)
        return out

    def _expect(self, ip: str, *hosts: str) -> None:
        """The router may learn the VM at ``ip`` only where these hosts are
        (anywhere a KVM host is, while their place is not known yet)."""
        locs = [self.host_location(h) for h in hosts]
        self.net.expect_vm(ip, None if None in locs else frozenset(locs))

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
        # logged after the decisions, so whoever sees it also sees them
        self.emit((E.Enabled if on else E.Disabled)(
            why=why, switched_mono=now, changed=changed,
            running_sessions=len(self.sessions), decided_sessions=decided))

    # -- events in ----------------------------------------------------------------
    def handle(self, ev: Input) -> None:
        if isinstance(ev, VncConnection):
            key = (ev.client_ip, ev.client_port, ev.server_ip, ev.server_port)
            if ev.kind == "start":
                self.syn(ev, key)
            elif ev.kind == "accept":
                c = self.pending.pop(key, None)
                if c is not None:               # the VM took the connection
                    self.session_start(c)
            else:
                self.pending.pop(key, None)
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
        ranked = []
        for host in self.hv.hosts():
            loc = self.host_location(host)
            hops = self.net.hops(s.client_dpid, loc[0]) if loc else None
            if hops is not None:
                ranked.append((hops, host, loc))
        ranked.sort()
        candidates = []
        chosen = None
        for hops, host, loc in ranked:
            if host == current or (cur_hops is not None and hops >= cur_hops):
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
        record("migrate", f"{host} is {hops} hop(s) from the client, {current} is {cur_hops}",
               dst=host, **extra)
        self.migrate(s, current, host, loc, memory_mib)

    # -- phase 3 ------------------------------------------------------------------
    def migrate(self, s: Session, src: str, dst: str, dst_loc: tuple[int, int],
                memory_mib: int = 0) -> None:
        mode = self.policy.update_mode
        now = self.clock()
        try:
            job = self.hv.migrate(s.vm, dst, timeout=self.policy.migration_timeout_s,
                                  bandwidth_mibps=self.policy.migration_bandwidth_mibps())
        except MigrationError as exc:
            self.emit(E.MigrationFailed(session=s.id, vm=s.vm, src=src, dst=dst, reason=str(exc)))
            return
        m = Move(s.id, s.vm, s.vm_ip, src, dst, dst_loc, mode, job, now,
                 tag=f"{s.vm}-{s.id}", memory_mib=memory_mib)
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

    def poll(self) -> None:
        self.hv.pump()
        if self._to_adopt is None or self._to_adopt:
            self._adopt()
        now = self.clock()
        for key in [k for k, c in self.pending.items() if now - c.time > SYN_WAIT_S]:
            del self.pending[key]
        # also while off: switching on then decides at once, and the
        # hypervisors see the same background load either way
        if now - self._refreshed >= CAPACITY_REFRESH_S:
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
        m = self.moves.get(ev.vm) or self.ended_moves.get(ev.vm)
        if m is None or (m is self.ended_moves.get(ev.vm) and ev.kind == H.STARTED):
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


