"""What a move costs and what it saves, learnt from the controller's own
measurements (pure: no os-ken, no libvirt).

A session's traffic is relayed by every switch of its path.  Moving its VM
next to the client costs a live migration -- the VM's memory, plus the
pages it dirties while it is copied, relayed by every switch of the
migration's path -- and saves, from then on, the relay on the switches the
new path no longer uses.  Predicted break-even = cost / saving per second.

The model (``docs/POLICIES.md``; every quantity is labelled there as
measured or modelled):

* transfer (bytes the migration sends) = RAM x efficiency / (1 - q), with
  q = dirty rate / migration bandwidth (pre-copy's geometric series of
  re-sent pages, capped at :data:`MAX_DIRTY_SHARE`); efficiency (bytes sent
  per byte of RAM with nothing dirtied: zero pages, headers) and bandwidth
  learnt from past migrations (libvirt's ``data_processed`` and
  ``memory_bps``), the dirty rate per VM from its own past migrations
  (libvirt's ``memory_dirty_rate`` x ``memory_page_size``);
* cost = transfer x switches on the migration path x relay per byte sent
  (bytes and packets the switches counted, class ``migration``, per byte
  libvirt sent: learnt where the switches report it);
* saving per second = the session's measured relay rate on the switches the
  new path leaves out, minus its mean per-switch rate on switches the new
  path adds.  Before a session has been measured (at detection, the first
  seconds), its per-switch rate is the last one measured for its VM, else
  the mean over sessions measured so far, else the policy's prior.

The priors' defaults come from the 180 s reference run
(``results/reference-180s``; :data:`REFERENCE`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

PACKETS = "packets"
BYTES = "bytes"
UNITS = (PACKETS, BYTES)

MIB = 1 << 20
#: a dirty rate at or above this share of the bandwidth is treated as this
#: share (pre-copy would not converge; libvirt then throttles or forces the
#: stop-and-copy): the series is cut at 1 / (1 - 0.9) = 10 x RAM
MAX_DIRTY_SHARE = 0.9
#: weight of a new observation in the running means
LEARN_RATE = 0.3
PAGE_SIZE = 4096

#: Measured in results/reference-180s (3 paired trials, 2 VNC sessions of
#: 180 s each, 256 MiB TCG guests; relayed.csv, migrations.csv, the trials'
#: events; experiments.sim.calibrate computes them, a unit test checks):
#: VNC relay per session and switch, medians over trials and switches of
#: the steady "before" windows: 303.9 packets/s and 376 kB/s; the migration
#: stream: 1206 bytes per relayed packet and 211.5 MB per migration and
#: switch, 0.788 bytes per byte of the guest's RAM (256 MiB); libvirt's
#: memory_bps of the 6 migrations: median 71.2 MB/s.  (That run did not
#: record data_processed, so the relayed bytes stand for the bytes sent:
#: relay per byte sent = 1 until a run measures both.)
REFERENCE = {
    "session_pps": 303.9,
    "session_bps": 376_000.0,
    "transfer_ratio": 0.788,
    "bytes_per_packet": 1206.0,
    "migration_bps": 71_200_000.0,
}


@dataclass(frozen=True)
class Rates:
    """A session's relay rates per switch, as measured: {dpid: (packets/s,
    bytes/s)} over a window that began at ``since`` (controller clock)."""
    per_switch: dict[int, tuple[float, float]]
    since: float

    def total(self) -> tuple[float, float]:
        return (sum(p for p, _ in self.per_switch.values()),
                sum(b for _, b in self.per_switch.values()))

    def mean(self, switches) -> tuple[float, float] | None:
        got = [self.per_switch[s] for s in switches if s in self.per_switch]
        if not got:
            return None
        return (sum(p for p, _ in got) / len(got), sum(b for _, b in got) / len(got))


@dataclass(frozen=True)
class Prediction:
    """One candidate move, predicted.  Rates are per second; ``current_*``
    is the session's relay on all switches of its path now; ``rates`` says
    whether the session's own rates were measured or a prior stood in."""
    unit: str
    memory_bytes: int
    transfer_bytes: float
    migration_switches: int
    cost_bytes: float
    cost_packets: float
    current_pps: float
    current_bps: float
    saving_pps: float
    saving_bps: float
    rates: str

    @property
    def cost(self) -> float:
        return self.cost_packets if self.unit == PACKETS else self.cost_bytes

    @property
    def saving(self) -> float:
        return self.saving_pps if self.unit == PACKETS else self.saving_bps

    @property
    def current(self) -> float:
        return self.current_pps if self.unit == PACKETS else self.current_bps

    @property
    def breakeven_s(self) -> float | None:
        """How long the session must go on after the move for the move to
        pay (None: it never does, nothing is saved)."""
        return self.cost / self.saving if self.saving > 0 else None

    def fields(self) -> dict:
        """What a decision event carries (rounded for the log)."""
        be = self.breakeven_s
        return {"cost_bytes": round(self.cost_bytes), "cost_packets": round(self.cost_packets),
                "saving_pps": round(self.saving_pps, 3), "saving_bps": round(self.saving_bps, 1),
                "breakeven_s": None if be is None else round(be, 3), "rates": self.rates}


@dataclass
class Priors:
    """What the model assumes before it has measured anything."""
    session_pps: float = REFERENCE["session_pps"]
    session_bps: float = REFERENCE["session_bps"]
    transfer_ratio: float = REFERENCE["transfer_ratio"]
    bytes_per_packet: float = REFERENCE["bytes_per_packet"]
    migration_bps: float = REFERENCE["migration_bps"]


def _mix(old: float | None, new: float) -> float:
    return new if old is None else (1 - LEARN_RATE) * old + LEARN_RATE * new


@dataclass
class CostModel:
    """The cost model's learnt state (all running means, None: not yet
    measured, the prior holds)."""
    priors: Priors = field(default_factory=Priors)
    unit: str = PACKETS
    efficiency: float | None = None          # bytes sent per byte of RAM, q = 0
    bandwidth_bps: float | None = None       # migration stream, bytes/s
    dirty_bps: dict[str, float] = field(default_factory=dict)    # per VM
    relay_bytes_per_byte: float | None = None
    relay_packets_per_byte: float | None = None
    session_rate: tuple[float, float] | None = None              # per switch, all sessions
    vm_rate: dict[str, tuple[float, float]] = field(default_factory=dict)
    migrations: int = 0

    # -- migration -----------------------------------------------------------------
    def dirty_share(self, vm: str) -> float:
        d = self.dirty_bps.get(vm)
        if d is None:
            known = list(self.dirty_bps.values())
            d = sum(known) / len(known) if known else 0.0
        bw = self.bandwidth_bps or self.priors.migration_bps
        return min(MAX_DIRTY_SHARE, d / bw) if bw > 0 else MAX_DIRTY_SHARE

    def transfer_bytes(self, vm: str, memory_bytes: int) -> float:
        eff = self.efficiency if self.efficiency is not None else self.priors.transfer_ratio
        return memory_bytes * eff / (1 - self.dirty_share(vm))

    def relay_per_byte(self) -> tuple[float, float]:
        """(packets, bytes) the switches relay per byte sent, per switch."""
        by = self.relay_bytes_per_byte if self.relay_bytes_per_byte is not None else 1.0
        pk = (self.relay_packets_per_byte if self.relay_packets_per_byte is not None
              else 1.0 / self.priors.bytes_per_packet)
        return pk, by

    def learn_migration(self, vm: str, memory_bytes: int, transferred_bytes: int | None,
                        bandwidth_bps: float | None, dirty_bps: float | None) -> None:
        """A migration completed: libvirt's statistics (bytes of RAM, bytes
        sent, stream bandwidth, the VM's dirty rate; None: not reported)."""
        self.migrations += 1
        if bandwidth_bps and bandwidth_bps > 0:
            self.bandwidth_bps = _mix(self.bandwidth_bps, float(bandwidth_bps))
        if dirty_bps is not None and dirty_bps >= 0:
            self.dirty_bps[vm] = float(dirty_bps)
        if transferred_bytes and memory_bytes > 0:
            q = self.dirty_share(vm) if dirty_bps is not None else 0.0
            self.efficiency = _mix(self.efficiency, transferred_bytes * (1 - q) / memory_bytes)

    def learn_relay(self, transferred_bytes: int, switches: int, packets: int,
                    nbytes: int) -> None:
        """The switches counted a migration's stream (class migration)."""
        sent = transferred_bytes * switches
        if sent > 0 and nbytes > 0:
            self.relay_bytes_per_byte = _mix(self.relay_bytes_per_byte, nbytes / sent)
            self.relay_packets_per_byte = _mix(self.relay_packets_per_byte, packets / sent)

    # -- sessions ------------------------------------------------------------------
    def learn_session(self, vm: str, per_switch: tuple[float, float]) -> None:
        """A session's mean per-switch relay rate, measured."""
        self.vm_rate[vm] = per_switch
        if self.session_rate is None:
            self.session_rate = per_switch
        else:
            self.session_rate = (_mix(self.session_rate[0], per_switch[0]),
                                 _mix(self.session_rate[1], per_switch[1]))

    def prior_rate(self, vm: str) -> tuple[float, float]:
        return (self.vm_rate.get(vm) or self.session_rate
                or (self.priors.session_pps, self.priors.session_bps))

    def predict(self, vm: str, memory_bytes: int, rates: Rates | None, old_path: list[int],
                new_path: list[int], migration_path: list[int]) -> Prediction:
        """The move of ``vm`` (``memory_bytes`` of RAM) that changes its
        session's path from ``old_path`` to ``new_path`` (switches, client
        side first) with a migration over ``migration_path``.  ``rates``:
        the session's measured rates (None: not measured yet)."""
        transfer = self.transfer_bytes(vm, memory_bytes)
        n = len(migration_path)
        pk_b, by_b = self.relay_per_byte()
        mean = rates.mean(old_path) if rates is not None else None
        source = "measured" if mean is not None else "prior"
        if mean is None:
            mean = self.prior_rate(vm)
        per = rates.per_switch if rates is not None and source == "measured" else {}
        old, new = set(old_path), set(new_path)
        cur = [per.get(s, mean) for s in old_path]
        left = [per.get(s, mean) for s in old_path if s not in new]
        added = len([s for s in new_path if s not in old])
        return Prediction(
            unit=self.unit, memory_bytes=memory_bytes, transfer_bytes=transfer,
            migration_switches=n, cost_bytes=transfer * n * by_b, cost_packets=transfer * n * pk_b,
            current_pps=sum(p for p, _ in cur), current_bps=sum(b for _, b in cur),
            saving_pps=sum(p for p, _ in left) - added * mean[0],
            saving_bps=sum(b for _, b in left) - added * mean[1], rates=source)


def dirty_bps_from_job(job: dict) -> float | None:
    """The VM's dirty rate (bytes/s) from libvirt's job statistics, if
    reported (``memory_dirty_rate`` in pages/s)."""
    rate = job.get("memory_dirty_rate")
    if rate is None:
        return None
    return float(rate) * float(job.get("memory_page_size") or PAGE_SIZE)
