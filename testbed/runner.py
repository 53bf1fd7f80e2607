"""Run a scenario end to end: ``ovct run <scenario.yaml> --out <dir>``.

Brings the scenario's network up with its VMs and the OVCT policy, starts
each thin-client session at its time in its client's namespace, runs the
ping probes, switches OVCT on at ``ovct_on_at_s`` if the scenario says so,
waits until every session has ended and no migration is in flight, tears
everything down, and leaves in ``<dir>`` (a :class:`controller.rundir.RunDir`):

* ``events.jsonl`` (every OVCT phase and routing event), ``stats.jsonl``
  (per-switch, per-class relayed packets/bytes over time), ``state.json``,
  ``controller.log``, ``controller.yaml`` (the policy and inventory used);
* ``thinclients/<client>-<vm>-<n>.jsonl`` (one line per screen update);
* ``pings/<src>-<dst>.txt`` (raw ``ping -D`` output);
* ``flows/<switch>.txt`` (every switch's flow tables at the end);
* ``placement.json`` (where each VM ended), ``summary.json`` (per session:
  updates and the largest gap between them; per probe: loss and the largest
  gap; per migration: libvirt's job statistics and the OVCT phase times).

:class:`ScenarioRun` does it in steps that can be read (and tested) one by
one: :meth:`~ScenarioRun.start_due_sessions`, :meth:`~ScenarioRun.switch_ovct`,
:meth:`~ScenarioRun.measure_if_steady`, :meth:`~ScenarioRun.stop_clients`,
:meth:`~ScenarioRun.stop_probes`, :meth:`~ScenarioRun.collect`,
:meth:`~ScenarioRun.write_summary`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from controller import events as E
from controller.rundir import RunDir
from controller.stats import by_class
from testbed.net import Testbed
from testbed.scenario import Scenario
from testbed.wait import wait_until

#: the scheduler's tick: how often due sessions start and phases are checked
TICK_S = 0.2
#: sessions that have not ended this long after their schedule are an error
OVERRUN_S = 120.0


def update_gaps(path: str) -> dict:
    """Updates received and the largest silence between two of them."""
    recs = E.read(path)
    ts = [r["mono"] for r in recs if r.get("event") == "update"]
    closed_early = any(r.get("event") == "closed" for r in recs) and \
        not any(r.get("event") == "closing" for r in recs)
    gap = max((b - a for a, b in zip(ts, ts[1:])), default=None)
    return {"updates": len(ts), "max_gap_s": gap, "first_mono": ts[0] if ts else None,
            "last_mono": ts[-1] if ts else None, "closed_early": closed_early,
            "failed": any(r.get("event") == "failed" for r in recs)}


def steady_at(phase: str, phase_from: float, steady_after_s: float,
              switch_at: float | None, measure_s: float) -> float:
    """When (s since the run's start) a phase is steady enough to measure:
    ``steady_after_s`` after ``phase_from`` (the phase's start, or the last
    migration's end), and for "before" as late as it can be, ending about
    2 s before the switch (``measure_s``: how long a measurement takes)."""
    ready = phase_from + steady_after_s
    if phase == "before":
        ready = max(ready, switch_at - measure_s - 2.0)
    return ready


@dataclass
class Running:
    """A thin-client session that was started."""
    index: int
    spec: object
    log: str
    proc: object


class ScenarioRun:
    """``on_steady(tb, phase)``, if given, is called once per phase while the
    sessions run, when the phase is steady (:func:`steady_at`; no migration
    in flight or waiting).  Phases: "before" and "after" when the scenario
    switches OVCT on at ``ovct_on_at_s``, else just "steady".  What it
    returns is stored under ``summary["steady"][phase]``.  ``on_start(tb)``,
    if given, runs once the network and VMs are up, before the first
    session (e.g. a bandwidth measurement); its result is
    ``summary["on_start"]``."""

    def __init__(self, scn: Scenario, out: str, mode: str | None = None, log=print,
                 accel: str | None = None, ovct_enabled: bool | None = None,
                 on_steady=None, steady_after_s: float = 0.0, measure_s: float = 0.0,
                 on_start=None, cluster=None):
        self.scn = scn
        self.cluster = cluster        # cluster mode: a testbed.cluster.ClusterRun
        self.run = RunDir(out)
        self.run.ensure(self.run.thinclients, self.run.pings)
        self.log = log
        self.accel = accel
        self.on_steady = on_steady
        self.on_start = on_start
        self.steady_after_s = steady_after_s
        self.measure_s = measure_s
        self.policy = scn.ovct.model_dump(mode="json")
        if mode:
            self.policy["update_mode"] = mode
        if ovct_enabled is not None:
            self.policy["enabled"] = ovct_enabled
        self.switch_at = scn.ovct_on_at_s
        if self.switch_at is not None:
            self.policy["enabled"] = False          # routing only until switch_at
        self.summary: dict = {"scenario": scn.name, "update_mode": self.policy["update_mode"],
                              "ovct_enabled": self.policy["enabled"],
                              "ovct_on_at_s": self.switch_at, "steady": {}, "steady_at_s": {}}
        self.pending = sorted(enumerate(scn.sessions), key=lambda x: x[1].start_s)
        self.running: list[Running] = []
        self.probes: list = []
        self.phase = "steady" if self.switch_at is None else "before"
        self.phase_from = min((s.start_s for s in scn.sessions), default=0.0)
        self.tb: Testbed | None = None
        self.t0 = 0.0

    # -- the whole run ----------------------------------------------------------------
    def execute(self) -> dict:
        with Testbed(self.scn.build_topology(), run_dir=self.run.path,
                     stats_interval=self.scn.stats_interval_s, link_bw=self.scn.link_bw_mbit,
                     accel=self.accel or self.scn.accel,
                     host_memory_mib=self.scn.host_memory_mib, host_cpus=self.scn.host_cpus,
                     ovct=self.policy, cluster=self.cluster) as tb:
            self.tb = tb
            self.summary.update(accel=tb.accel, boot_to_vnc_s=tb.vm_boot_s,
                                initial_placement=tb.hv.placement())
            self.log(f"{self.scn.name}: network and VMs up ({tb.accel}); placement "
                     f"{self.summary['initial_placement']}")
            if self.on_start is not None:
                self.summary["on_start"] = self.on_start(tb)
            self.probes = [(p, tb.start_ping(p.src, p.dst, p.interval_ms / 1000,
                                             log=self.run.ping_log(p.src, p.dst)))
                           for p in self.scn.probes]
            self.t0 = time.monotonic()
            try:
                while self.pending or self.sessions_running():
                    self.tick(time.monotonic() - self.t0)
                    time.sleep(TICK_S)   # a scheduler tick, not a wait for state
                # let a migration that is still in flight finish
                wait_until(lambda: not self.migration_activity()[0],
                           self.scn.ovct.migration_timeout_s,
                           "migrations in flight to finish", interval=0.5)
            finally:
                self.stop_clients()
                self.stop_probes()
            self.collect()
        self.write_summary()
        return self.summary

    def tick(self, now: float) -> None:
        self.start_due_sessions(now)
        if now > self.scn.end_s() + OVERRUN_S:
            raise TimeoutError(f"sessions did not end within {OVERRUN_S:g} s of their schedule")
        if self.phase == "before" and now >= self.switch_at:
            self.switch_ovct(now)
        else:
            self.measure_if_steady(now)

    # -- steps ---------------------------------------------------------------------------
    def sessions_running(self) -> bool:
        return any(r.proc.poll() is None for r in self.running)

    def start_due_sessions(self, now: float) -> None:
        while self.pending and self.pending[0][1].start_s <= now:
            i, s = self.pending.pop(0)
            path = self.run.thinclient_log(s.client, s.vm, i)
            proc = self.tb.start_session(s.client, s.vm, path, s.port, s.duration_s,
                                         s.input_rate_hz)
            self.running.append(Running(i, s, path, proc))
            self.log(f"  t={now:5.1f} s  session {i}: {s.client} -> {s.vm}:{s.port} "
                     f"for {s.duration_s:g} s")

    def switch_ovct(self, now: float) -> None:
        ev = self.tb.set_ovct(True)
        self.summary["ovct_switched_on_mono"] = ev["switched_mono"]
        self.summary["ovct_switched_on_at_s"] = ev["switched_mono"] - self.t0
        self.log(f"  t={now:5.1f} s  OVCT switched on ({ev['decided_sessions']} "
                 f"running session(s) decided)")
        if self.on_steady is not None and "before" not in self.summary["steady"]:
            self.log("  warning: the 'before' phase never became steady")
        self.phase, self.phase_from = "after", now

    def migration_activity(self) -> tuple[bool, float | None]:
        """(in flight or waiting, last end) from the events seen so far."""
        tail = self.tb.client.events
        tail.new()
        return E.migration_activity(tail.records)

    def measure_if_steady(self, now: float) -> None:
        if self.on_steady is None or self.phase in self.summary["steady"] or self.pending:
            return
        busy, last_end = self.migration_activity()
        if last_end is not None:               # settle after the last one
            last_end -= self.t0
            self.phase_from = max(self.phase_from, last_end)
        ready = steady_at(self.phase, self.phase_from, self.steady_after_s,
                          self.switch_at, self.measure_s)
        if not busy and now >= ready:
            self.log(f"  t={now:5.1f} s  {self.phase} steady: measuring")
            self.summary["steady"][self.phase] = self.on_steady(self.tb, self.phase)
            self.summary["steady_at_s"][self.phase] = now

    def stop_clients(self) -> None:
        for r in self.running:
            if r.proc.poll() is None:
                r.proc.terminate()
            r.proc.wait(10)

    def stop_probes(self) -> None:
        pings = {}
        for p, bg in self.probes:
            res = bg.stop()                # its raw output is in pings/ already
            pings[f"{p.src}->{p.dst}"] = {"sent": res.transmitted, "lost": res.loss,
                                          "max_gap_ms": res.max_gap_ms,
                                          "interval_ms": p.interval_ms}
        self.summary["probes"] = pings

    def collect(self) -> None:
        """Where the VMs ended, the flow tables as the run left them, the
        sessions' screen updates and the relayed traffic per class."""
        tb = self.tb
        self.summary["final_placement"] = tb.hv.placement()
        tb.dump_flows(self.run.flows)
        tb.wait_fresh_stats()
        self.summary["sessions"] = [
            {"session": r.index, "client": r.spec.client, "vm": r.spec.vm,
             "exit_code": r.proc.returncode, **update_gaps(r.log)} for r in self.running]
        self.summary["relayed_by_class"] = by_class(tb.totals())

    def write_summary(self) -> None:
        self.summary["migrations"] = E.migrations(E.read(self.run.events))
        self.run.write_json(self.run.placement, self.summary["final_placement"])
        self.run.write_json(self.run.summary, self.summary)


def run_scenario(scn: Scenario, out: str, **kw) -> dict:
    """Run ``scn`` into ``out``; see :class:`ScenarioRun` for the options."""
    return ScenarioRun(scn, out, **kw).execute()
