"""The event schema: every event the controller writes, the writer, and the
readers the testbed and the experiments use.  No other module spells an
event name or parses ``events.jsonl``/``stats.jsonl`` by hand.

One JSON object per line (Faucet-style): an envelope -- ``version``,
``time`` (wall clock, s), ``mono`` (monotonic clock, s), ``event_id``,
``type`` -- plus the event's payload.  ``docs/ARCHITECTURE.md`` has the
table of types and fields.

* Routing and controller events (:data:`ROUTING`) carry small payloads
  built where they happen; their names are the constants below.
* OVCT events are typed records (:class:`Detect`, :class:`Decision` ...,
  one per ``ovct_*`` type); the engine emits those, never dicts.
* Statistics (``stats.jsonl``): :data:`FLOW_STATS` and :data:`PORT_STATS`.

Readers: :func:`read` (a whole file), :class:`Tail` (only what is new since
the last call: a runner polling a live run), :func:`typed` (a record as its
event class), :func:`migrations` (one row per decided migration with every
phase's time) and :func:`migration_activity` (is one in flight or waiting?).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Callable, ClassVar

VERSION = 1

# -- routing and controller events (payloads built where they happen) ---------
CONTROLLER_START = "controller_start"
CONTROLLER_STOP = "controller_stop"
SWITCH_ENTER = "switch_enter"
SWITCH_LEAVE = "switch_leave"
SWITCH_GONE = "switch_gone"        # still away after the grace: removed
LINK_ADD = "link_add"
LINK_DELETE = "link_delete"
HOST_LEARNT = "host_learnt"
HOST_MOVED = "host_moved"
FLOWS_STAGED = "flows_staged"          # make-before-break step 1
FLOWS_COMMITTED = "flows_committed"    # make-before-break step 2
FLOWS_REPLACED = "flows_replaced"      # the report's delete-then-install
TRAFFIC_HELD = "traffic_held"          # a paused VM's traffic kept at the controller
FLOWS_SETTLED = "flows_settled"        # a move ended otherwise: flows where the VM runs
REFUSED = "refused"                    # an address, session or flood refused (controller.trust)
ROUTING = (CONTROLLER_START, CONTROLLER_STOP, SWITCH_ENTER, SWITCH_LEAVE, SWITCH_GONE, LINK_ADD, LINK_DELETE, HOST_LEARNT,
           HOST_MOVED, FLOWS_STAGED, FLOWS_COMMITTED, FLOWS_REPLACED, TRAFFIC_HELD,
           FLOWS_SETTLED, REFUSED)

# -- statistics (stats.jsonl) ---------------------------------------------------
FLOW_STATS = "flow_stats"    # dpid, poll, by_class {cls: [pk, by]}, by_dst {ip: {cls: [pk, by]}}
PORT_STATS = "port_stats"    # dpid, ports {no: [rx_pk, tx_pk, rx_by, tx_by]}


# -- OVCT events: typed records ----------------------------------------------------

def _key(name: str) -> dict:
    """Field metadata: the JSON key when it is not the field's name (``from``
    and ``to`` are a Python keyword and a clash-prone name)."""
    return {"key": name}


@dataclass(frozen=True)
class Event:
    """An OVCT event.  ``TYPE`` names it in the log, ``PHASE`` (1-4, the
    report's phases) is written beside the payload; fields listed in
    ``OPTIONAL`` are left out of the record while they are None."""
    TYPE: ClassVar[str] = ""
    PHASE: ClassVar[int | None] = None
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    def payload(self) -> dict:
        out: dict = {} if self.PHASE is None else {"phase": self.PHASE}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.OPTIONAL:
                continue
            out[f.metadata.get("key", f.name)] = value
        return out

    @classmethod
    def from_record(cls, rec: dict) -> "Event":
        return cls(**{f.name: rec.get(f.metadata.get("key", f.name)) for f in fields(cls)})


EVENT_TYPES: dict[str, type[Event]] = {}


def _register(cls: type[Event]) -> type[Event]:
    EVENT_TYPES[cls.TYPE] = cls
    return cls


@_register
@dataclass(frozen=True)
class Detect(Event):
    """Phase 1: a VNC session to a running VM was seen (its SYN)."""
    TYPE: ClassVar[str] = "ovct_detect"
    PHASE: ClassVar[int] = 1
    session: int
    vm: str
    vm_ip: str
    vm_port: int
    client_ip: str
    client_port: int
    client_switch: int
    client_switch_port: int
    vm_switch: int | None
    vm_host: str
    detected_mono: float


@_register
@dataclass(frozen=True)
class Decision(Event):
    """Phase 2: where the session's VM should run, and why.  ``decision`` is
    migrate, stay, wait (for a free migration slot) or defer (the policy
    decides again at ``recheck_mono``).  Once a closer host with room was
    found: the decision ``policy`` (config ``decision``) and the move's
    prediction (controller.cost): its cost in relayed bytes and packets,
    the relay it saves per second, the predicted break-even (s; absent
    when nothing is saved), whether the session's rates were ``measured``
    or a ``prior``; for the history-based policies the expected time the
    session has left and how many past sessions that rests on."""
    TYPE: ClassVar[str] = "ovct_decision"
    PHASE: ClassVar[int] = 2
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({
        "dst", "current_hops", "candidates", "policy", "cost_bytes", "cost_packets",
        "saving_pps", "saving_bps", "breakeven_s", "rates", "expected_remaining_s",
        "history_n", "recheck_mono"})
    session: int
    vm: str
    src: str = field(metadata=_key("from"))
    decision: str = ""
    reason: str = ""
    detect_to_decision_s: float = 0.0
    dst: str | None = field(default=None, metadata=_key("to"))
    current_hops: int | None = None
    candidates: list | None = None
    policy: str | None = None
    cost_bytes: int | None = None
    cost_packets: int | None = None
    saving_pps: float | None = None
    saving_bps: float | None = None
    breakeven_s: float | None = None
    rates: str | None = None
    expected_remaining_s: float | None = None
    history_n: int | None = None
    recheck_mono: float | None = None


@_register
@dataclass(frozen=True)
class MigrationStart(Event):
    """Phase 3 began (``adopted``: a restarted controller found it in
    flight and took it over)."""
    TYPE: ClassVar[str] = "ovct_migration_start"
    PHASE: ClassVar[int] = 3
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"adopted"})
    session: int
    vm: str
    src: str = field(metadata=_key("from"))
    dst: str = field(metadata=_key("to"))
    mode: str = ""
    staged_flow_mods: int = 0
    adopted: bool | None = None


@_register
@dataclass(frozen=True)
class MigrationFailed(Event):
    """Phase 3 ended with an error from the hypervisor (refused at once,
    failed, timed out, aborted).  Once a move had begun: where the
    hypervisor then said the VM runs (``observed_at``; None: nowhere it
    could see), where the flows point now (``flows_at``: there, or the
    source if it is nowhere), ``kept_old_flows`` (flows_at is the source)."""
    TYPE: ClassVar[str] = "ovct_migration_failed"
    PHASE: ClassVar[int] = 3
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"kept_old_flows", "flow_mods",
                                                    "observed_at", "flows_at"})
    session: int
    vm: str
    src: str = field(metadata=_key("from"))
    dst: str = field(metadata=_key("to"))
    reason: str = ""
    kept_old_flows: bool | None = None
    flow_mods: int | None = None
    observed_at: str | None = None
    flows_at: str | None = None


@_register
@dataclass(frozen=True)
class MigrationDone(Event):
    """Phase 3 completed: libvirt's job statistics.  ``ended_unobserved``:
    the migration ended while no controller was running; a restarted one
    found the VM at the destination (no statistics then)."""
    TYPE: ClassVar[str] = "ovct_migration_done"
    PHASE: ClassVar[int] = 3
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"ended_unobserved"})
    session: int
    vm: str
    src: str = field(metadata=_key("from"))
    dst: str = field(metadata=_key("to"))
    elapsed_ms: float | None = None
    downtime_ms: float | None = None
    data_total_bytes: int | None = None
    iterations: int | None = None
    memory_bps: float | None = None
    setup_ms: float | None = None
    wall_s: float | None = None
    seen_at_dst_before_done_s: float | None = None
    transferred_bytes: int | None = None       # actually sent (data_processed)
    job: dict | None = None                    # every key of libvirt's jobStats
    ended_unobserved: bool | None = None


@_register
@dataclass(frozen=True)
class PredictionCheck(Event):
    """A migration's prediction against what was measured,
    ``prediction_check_s`` after it completed (or when its session ended
    before that).  Cost: libvirt's bytes sent (``transferred_bytes``,
    against ``predicted_transfer_bytes``) and, where the switches counted
    the stream (class migration, between the two hosts), the relayed bytes
    and packets (``relayed_cost_*``, against ``predicted_cost_*``).
    Saving: the session's relay rate on all its switches just before the
    move minus just after (``realised_saving_*``).  ``cost_error`` and
    ``saving_error`` are realised / predicted - 1 in ``unit``
    (``cost_source``: switches, or libvirt's bytes times the switches of
    the path when the switches did not report or another migration used
    one of the two hosts meanwhile)."""
    TYPE: ClassVar[str] = "ovct_prediction_check"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({
        "transferred_bytes", "relayed_cost_bytes", "relayed_cost_packets", "cost_source",
        "realised_saving_pps", "realised_saving_bps", "predicted_breakeven_s",
        "realised_breakeven_s", "cost_error", "saving_error", "why_unmeasured"})
    session: int
    vm: str
    src: str = field(metadata=_key("from"))
    dst: str = field(metadata=_key("to"))
    unit: str = ""
    migration_switches: int = 0
    predicted_transfer_bytes: int = 0
    predicted_cost_bytes: int = 0
    predicted_cost_packets: int = 0
    predicted_saving_pps: float = 0.0
    predicted_saving_bps: float = 0.0
    transferred_bytes: int | None = None
    relayed_cost_bytes: int | None = None
    relayed_cost_packets: int | None = None
    cost_source: str | None = None
    realised_saving_pps: float | None = None
    realised_saving_bps: float | None = None
    predicted_breakeven_s: float | None = None
    realised_breakeven_s: float | None = None
    cost_error: float | None = None
    saving_error: float | None = None
    why_unmeasured: str | None = None


@_register
@dataclass(frozen=True)
class MigrationProgress(Event):
    """Phase 3, as the hypervisor reported it: ``step`` is dest_started
    (incoming QEMU up), iteration (a pre-copy pass), source_paused
    (stop-and-copy begins; in fast mode the VM's traffic is held from here,
    ``held_flow_mods``), dest_resumed (the VM runs at the destination),
    source_resumed (the migration was cancelled), source_stopped or
    job_completed.  ``event_mono`` is when the event arrived."""
    TYPE: ClassVar[str] = "ovct_migration_progress"
    PHASE: ClassVar[int] = 3
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"iteration", "held_flow_mods"})
    session: int
    vm: str
    step: str
    host: str
    detail: str
    event_mono: float
    since_start_s: float
    iteration: int | None = None
    held_flow_mods: int | None = None


@_register
@dataclass(frozen=True)
class VmSeen(Event):
    """Phase 4: the migrating VM showed up at its destination port (RARP)."""
    TYPE: ClassVar[str] = "ovct_vm_seen"
    PHASE: ClassVar[int] = 4
    session: int
    vm: str
    switch: int
    port: int
    migration_start_to_seen_s: float


@_register
@dataclass(frozen=True)
class NetworkUpdate(Event):
    """Phase 4: the VM's flows were switched (fast) or replaced (paper)."""
    TYPE: ClassVar[str] = "ovct_network_update"
    PHASE: ClassVar[int] = 4
    session: int
    vm: str
    mode: str
    trigger: str
    dst: str = field(metadata=_key("to"))
    to_switch: int = 0
    to_port: int = 0
    flow_mods: int = 0
    migration_start_to_switch_s: float = 0.0
    seen_to_switch_s: float | None = None
    released_frames: int = 0      # held while the VM was paused, delivered now
    dropped_frames: int = 0       # held beyond the limit, lost


@_register
@dataclass(frozen=True)
class NetworkConfirmed(Event):
    """Phase 4: every switch answered the update's barrier."""
    TYPE: ClassVar[str] = "ovct_network_confirmed"
    PHASE: ClassVar[int] = 4
    session: int
    vm: str
    mode: str
    switch_to_confirmed_s: float


@_register
@dataclass(frozen=True)
class NetworkUnconfirmed(Event):
    """Phase 4: some barrier replies never came (a switch went away)."""
    TYPE: ClassVar[str] = "ovct_network_unconfirmed"
    PHASE: ClassVar[int] = 4
    session: int
    vm: str
    missing_barriers: list


@_register
@dataclass(frozen=True)
class SessionEnd(Event):
    TYPE: ClassVar[str] = "ovct_session_end"
    session: int
    vm: str
    reason: str
    duration_s: float


@dataclass(frozen=True)
class _Switched(Event):
    why: str
    switched_mono: float
    changed: bool
    running_sessions: int
    decided_sessions: int


@_register
@dataclass(frozen=True)
class Enabled(_Switched):
    """OVCT switched on at run time, logged after the running sessions'
    decisions."""
    TYPE: ClassVar[str] = "ovct_enabled"


@_register
@dataclass(frozen=True)
class Disabled(_Switched):
    TYPE: ClassVar[str] = "ovct_disabled"


@_register
@dataclass(frozen=True)
class Restored(Event):
    """A (re)started controller took over from its own event log: the VNC
    sessions still open, when VMs last moved; and migrations it found in
    flight at the hypervisors and adopted (``adopted``: their VMs)."""
    TYPE: ClassVar[str] = "ovct_restored"
    sessions: int
    last_moved: int
    adopted: list


@_register
@dataclass(frozen=True)
class Error(Event):
    """The OVCT worker caught an exception (routing goes on)."""
    TYPE: ClassVar[str] = "ovct_error"
    error: str


OVCT_DETECT = Detect.TYPE
OVCT_DECISION = Decision.TYPE
OVCT_MIGRATION_START = MigrationStart.TYPE
OVCT_MIGRATION_FAILED = MigrationFailed.TYPE
OVCT_MIGRATION_DONE = MigrationDone.TYPE
OVCT_MIGRATION_PROGRESS = MigrationProgress.TYPE
OVCT_PREDICTION_CHECK = PredictionCheck.TYPE
OVCT_VM_SEEN = VmSeen.TYPE
OVCT_NETWORK_UPDATE = NetworkUpdate.TYPE
OVCT_NETWORK_CONFIRMED = NetworkConfirmed.TYPE
OVCT_NETWORK_UNCONFIRMED = NetworkUnconfirmed.TYPE
OVCT_SESSION_END = SessionEnd.TYPE
OVCT_ENABLED = Enabled.TYPE
OVCT_DISABLED = Disabled.TYPE
OVCT_ERROR = Error.TYPE
OVCT_RESTORED = Restored.TYPE


# -- the writer -----------------------------------------------------------------------

class EventLog:
    """Appends records to a JSON-lines file (line-buffered, so a reader sees
    whole lines); ``path=None`` keeps nothing (returns the records only).
    Thread-safe: the os-ken loop and the OVCT worker both write."""

    def __init__(self, path: str | None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        # a restarted controller appends to its run's log: ids go on
        self._next_id = max((r.get("event_id", 0) for r in read(path)), default=0) + 1 \
            if path else 1
        self._fh = open(path, "a", buffering=1, encoding="utf-8") if path else None

    def __call__(self, kind: str, payload: dict) -> dict:
        with self._lock:
            rec = {"version": VERSION, "time": self._wall(),
                   "mono": self._clock(), "event_id": self._next_id,
                   "type": kind, **payload}
            self._next_id += 1
            if self._fh:
                self._fh.write(json.dumps(rec, sort_keys=True) + "\n")
        return rec

    def emit(self, ev: Event) -> dict:
        """Write a typed OVCT event."""
        return self(ev.TYPE, ev.payload())

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


# -- readers --------------------------------------------------------------------------

def _parse_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue     # a torn line (the writer was killed mid-write)
    return out


def read(path: str) -> list[dict]:
    """Every record of a JSON-lines file (events.jsonl, stats.jsonl, a thin
    client's log); a missing file has none."""
    try:
        with open(path, encoding="utf-8") as fh:
            return _parse_lines(fh.read())
    except FileNotFoundError:
        return []


class Tail:
    """Follow a JSON-lines file that another process appends to: each
    :meth:`new` returns the whole lines added since the last call (a line
    still being written waits for the next call); :attr:`records` holds all
    of them.  Polling a live run costs only what is new."""

    def __init__(self, path: str):
        self.path = path
        self.records: list[dict] = []
        self._offset = 0

    def new(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1          # whole lines only
        self._offset += end
        recs = _parse_lines(chunk[:end].decode("utf-8", "replace"))
        self.records += recs
        return recs

    def count(self, kind: str) -> int:
        self.new()
        return sum(1 for r in self.records if r.get("type") == kind)


def of_type(records: list[dict], *kinds: str) -> list[dict]:
    return [r for r in records if r.get("type") in kinds]


def typed(rec: dict) -> Event | None:
    """A record as its OVCT event class (None for routing/statistics)."""
    cls = EVENT_TYPES.get(rec.get("type", ""))
    return cls.from_record(rec) if cls else None


@dataclass
class MigrationTimeline:
    """One decided migration, every phase on the controller's monotonic
    clock (what ``summary.json`` and the figures read)."""
    session: int
    vm: str | None = None
    client: str | None = None
    detected: float | None = None
    decision: str | None = None
    reason: str | None = None
    decided: float | None = None
    detect_to_decision_s: float | None = None
    mode: str | None = None
    src: str | None = None
    dst: str | None = None
    migration_started: float | None = None
    vm_seen: float | None = None
    network_updated: float | None = None
    trigger: str | None = None
    flow_mods: int | None = None
    network_confirmed: float | None = None
    migration_done: float | None = None
    elapsed_ms: float | None = None
    downtime_ms: float | None = None
    data_total_bytes: int | None = None
    iterations: int | None = None
    failed: str | None = None
    # from the hypervisor's domain events (arrival, monotonic)
    dest_started: float | None = None
    source_paused: float | None = None
    dest_resumed: float | None = None
    transferred_bytes: int | None = None
    released_frames: int | None = None
    dropped_frames: int | None = None
    job: dict | None = None
    # the decision's prediction (controller.cost) and its check
    policy: str | None = None
    breakeven_s: float | None = None
    cost_bytes: int | None = None
    cost_packets: int | None = None
    saving_pps: float | None = None
    saving_bps: float | None = None
    rates: str | None = None
    predicted_transfer_bytes: int | None = None
    relayed_cost_bytes: int | None = None
    relayed_cost_packets: int | None = None
    cost_source: str | None = None
    realised_saving_pps: float | None = None
    realised_saving_bps: float | None = None
    realised_breakeven_s: float | None = None
    cost_error: float | None = None
    saving_error: float | None = None

    def as_dict(self) -> dict:
        """Only what was observed (a phase that did not happen is absent)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


_PREDICTION_FIELDS = ("policy", "breakeven_s", "cost_bytes", "cost_packets", "saving_pps",
                      "saving_bps", "rates")
_CHECK_FIELDS = ("relayed_cost_bytes", "relayed_cost_packets", "cost_source",
                 "realised_saving_pps", "realised_saving_bps", "realised_breakeven_s",
                 "cost_error", "saving_error")

_PROGRESS_FIELDS = {"dest_started": "dest_started", "source_paused": "source_paused",
                    "dest_resumed": "dest_resumed"}


def migrations(records: list[dict]) -> list[dict]:
    """One row (:meth:`MigrationTimeline.as_dict`) per session whose last
    decision was to migrate, in order of detection."""
    rows: dict[int, MigrationTimeline] = {}
    for rec in records:
        ev = typed(rec)
        if ev is None or not hasattr(ev, "session"):
            continue
        row = rows.setdefault(ev.session, MigrationTimeline(ev.session))
        mono = rec["mono"]
        if isinstance(ev, Detect):
            row.vm, row.client, row.detected = ev.vm, ev.client_ip, ev.detected_mono
        elif isinstance(ev, Decision):
            row.decision, row.reason, row.decided = ev.decision, ev.reason, mono
            row.detect_to_decision_s = ev.detect_to_decision_s
            for name in _PREDICTION_FIELDS:
                setattr(row, name, getattr(ev, name))
        elif isinstance(ev, PredictionCheck):
            row.predicted_transfer_bytes = ev.predicted_transfer_bytes
            for name in _CHECK_FIELDS:
                setattr(row, name, getattr(ev, name))
            if row.transferred_bytes is None:
                row.transferred_bytes = ev.transferred_bytes
        elif isinstance(ev, MigrationStart):
            row.mode, row.src, row.dst, row.migration_started = ev.mode, ev.src, ev.dst, mono
        elif isinstance(ev, VmSeen):
            row.vm_seen = mono
        elif isinstance(ev, NetworkUpdate):
            row.network_updated, row.trigger, row.flow_mods = mono, ev.trigger, ev.flow_mods
            row.released_frames, row.dropped_frames = ev.released_frames, ev.dropped_frames
        elif isinstance(ev, MigrationProgress) and ev.step in _PROGRESS_FIELDS:
            setattr(row, _PROGRESS_FIELDS[ev.step], ev.event_mono)
        elif isinstance(ev, NetworkConfirmed):
            row.network_confirmed = mono
        elif isinstance(ev, MigrationDone):
            row.migration_done, row.elapsed_ms, row.downtime_ms = mono, ev.elapsed_ms, ev.downtime_ms
            row.data_total_bytes, row.iterations = ev.data_total_bytes, ev.iterations
            row.transferred_bytes, row.job = ev.transferred_bytes, ev.job
        elif isinstance(ev, MigrationFailed):
            row.failed = ev.reason
    return [r.as_dict() for r in rows.values() if r.decision == "migrate"]


def migration_activity(records: list[dict]) -> tuple[bool, float | None]:
    """(whether a migration has started and not ended, or a decision waits
    for a free migration slot; when the last migration ended (monotonic))."""
    started, ended, waiting = set(), set(), set()
    last_end = None
    for e in records:
        kind = e.get("type")
        if kind == OVCT_MIGRATION_START:
            started.add(e["session"])
            waiting.discard(e["vm"])
        elif kind in (OVCT_MIGRATION_DONE, OVCT_MIGRATION_FAILED):
            ended.add(e["session"])
            last_end = e["mono"] if last_end is None else max(last_end, e["mono"])
        elif kind == OVCT_DECISION and e["decision"] == "wait":
            waiting.add(e["vm"])
        elif kind == OVCT_DECISION and e["vm"] in waiting:
            waiting.discard(e["vm"])       # decided again: stay
    return bool(started - ended) or bool(waiting), last_end


def write_json_atomic(path: str, data: dict) -> None:
    """Replace ``path`` in one step (readers never see half a file)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
    os.replace(tmp, path)
