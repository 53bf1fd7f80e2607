"""Run a scenario end to end: ``ovct run <scenario.yaml> --out <dir>``.

Brings the scenario's network up with its VMs and the OVCT policy, starts
each thin-client session at its time in its client's namespace, runs the
ping probes, switches OVCT on at ``ovct_on_at_s`` if the scenario says so,
waits until every session has ended and no migration is in flight, tears
everything down, and leaves in ``<dir>``:

* ``events.jsonl`` (every OVCT phase and routing event), ``stats.jsonl``
  (per-switch, per-class relayed packets/bytes over time), ``state.json``,
  ``controller.log``, ``controller.yaml`` (the policy and inventory used);
* ``thinclients/<client>-<vm>-<n>.jsonl`` (one line per screen update);
* ``pings/<src>-<dst>.txt`` (raw ``ping -D`` output);
* ``flows/<switch>.txt`` (every switch's flow tables at the end);
* ``placement.json`` (where each VM ended), ``summary.json`` (per session:
  updates and the largest gap between them; per probe: loss and the largest
  gap; per migration: libvirt's job statistics and the OVCT phase times).
"""
from __future__ import annotations

import json
import os
import time

from controller.record import read_jsonl
from testbed import ROOT
from testbed.net import Testbed
from testbed.scenario import Scenario
from testbed.wait import wait_until


def update_gaps(path: str) -> dict:
    """Updates received and the largest silence between two of them."""
    recs = read_jsonl(path) if os.path.exists(path) else []
    ts = [r["mono"] for r in recs if r.get("event") == "update"]
    closed_early = any(r.get("event") == "closed" for r in recs) and \
        not any(r.get("event") == "closing" for r in recs)
    gap = max((b - a for a, b in zip(ts, ts[1:])), default=None)
    return {"updates": len(ts), "max_gap_s": gap, "first_mono": ts[0] if ts else None,
            "last_mono": ts[-1] if ts else None, "closed_early": closed_early,
            "failed": any(r.get("event") == "failed" for r in recs)}


def migrations_from_events(events: list[dict]) -> list[dict]:
    """One row per OVCT migration, with every phase's time."""
    by_session: dict[int, dict] = {}
    for e in events:
        sid = e.get("session")
        if sid is None or not e["type"].startswith("ovct_"):
            continue
        row = by_session.setdefault(sid, {"session": sid})
        t = e["type"]
        if t == "ovct_detect":
            row.update(vm=e["vm"], client=e["client_ip"], detected=e["detected_mono"])
        elif t == "ovct_decision":
            row.update(decision=e["decision"], reason=e["reason"], decided=e["mono"],
                       detect_to_decision_s=e["detect_to_decision_s"])
        elif t == "ovct_migration_start":
            row.update(mode=e["mode"], src=e["from"], dst=e["to"], migration_started=e["mono"])
        elif t == "ovct_vm_seen":
            row.update(vm_seen=e["mono"])
        elif t == "ovct_network_update":
            row.update(network_updated=e["mono"], trigger=e["trigger"], flow_mods=e["flow_mods"])
        elif t == "ovct_network_confirmed":
            row.update(network_confirmed=e["mono"])
        elif t == "ovct_migration_done":
            row.update(migration_done=e["mono"], elapsed_ms=e["elapsed_ms"],
                       downtime_ms=e["downtime_ms"], data_total_bytes=e["data_total_bytes"],
                       iterations=e["iterations"])
        elif t == "ovct_migration_failed":
            row.update(failed=e["reason"])
    return [r for r in by_session.values() if r.get("decision") == "migrate"]


def run_scenario(scn: Scenario, out: str, mode: str | None = None, log=print,
                 accel: str | None = None, ovct_enabled: bool | None = None,
                 on_steady=None, steady_after_s: float = 0.0, measure_s: float = 0.0) -> dict:
    """``on_steady(tb, phase)``, if given, is called once per phase while the
    sessions run, when the phase is steady: every session has started, no
    migration is in flight or waiting, and ``steady_after_s`` seconds have
    passed since the phase began (the first session's start, the last
    migration's end).  Phases: "before" and "after" when the scenario
    switches OVCT on at ``ovct_on_at_s``, else just "steady".  "before" is
    measured as late as it can be, ending about 2 s before the switch
    (``measure_s``: how long ``on_steady`` takes), so both conditions are
    measured close together.  What it returns is stored under
    ``summary["steady"][phase]``."""
    policy = scn.ovct.model_dump(mode="json")
    if mode:
        policy["update_mode"] = mode
    if ovct_enabled is not None:
        policy["enabled"] = ovct_enabled
    switch_at = scn.ovct_on_at_s
    if switch_at is not None:
        policy["enabled"] = False          # routing only until switch_at
    topo = scn.build_topology()
    os.makedirs(out, exist_ok=True)
    tc_dir = os.path.join(out, "thinclients")
    ping_dir = os.path.join(out, "pings")
    os.makedirs(tc_dir, exist_ok=True)
    os.makedirs(ping_dir, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT)
    summary: dict = {"scenario": scn.name, "update_mode": policy["update_mode"],
                     "ovct_enabled": policy["enabled"], "ovct_on_at_s": switch_at,
                     "steady": {}, "steady_at_s": {}}
    with Testbed(topo, run_dir=out, stats_interval=scn.stats_interval_s,
                 link_bw=scn.link_bw_mbit, accel=accel or scn.accel,
                 host_memory_mib=scn.host_memory_mib, host_cpus=scn.host_cpus,
                 ovct=policy) as tb:
        summary.update(accel=tb.accel, boot_to_vnc_s=tb.vm_boot_s,
                       initial_placement=tb.hv.placement())
        log(f"{scn.name}: network and VMs up ({tb.accel}); placement "
            f"{summary['initial_placement']}")
        probes = [(p, tb.start_ping(p.src, p.dst, p.interval_ms / 1000)) for p in scn.probes]
        t0 = time.monotonic()
        pending = sorted(enumerate(scn.sessions), key=lambda x: x[1].start_s)
        running = []
        phase = "steady" if switch_at is None else "before"
        phase_from = min((s.start_s for s in scn.sessions), default=0.0)
        try:
            while pending or any(proc.poll() is None for *_, proc in running):
                now = time.monotonic() - t0
                while pending and pending[0][1].start_s <= now:
                    i, s = pending.pop(0)
                    path = os.path.join(tc_dir, f"{s.client}-{s.vm}-{i}.jsonl")
                    proc = tb.host(s.client).popen(
                        [tb.python, "-m", "testbed.thinclient", tb.ip(s.vm),
                         "--port", str(s.port), "--duration", str(s.duration_s),
                         "--input-rate", str(s.input_rate_hz), "--log", path], env=env)
                    running.append((i, s, path, proc))
                    log(f"  t={now:5.1f} s  session {i}: {s.client} -> {s.vm}:{s.port} "
                        f"for {s.duration_s:g} s")
                if now > scn.end_s() + 120:
                    raise TimeoutError("sessions did not end within 120 s of their schedule")
                if phase == "before" and now >= switch_at:
                    ev = tb.set_ovct(True)
                    summary["ovct_switched_on_mono"] = ev["switched_mono"]
                    summary["ovct_switched_on_at_s"] = ev["switched_mono"] - t0
                    log(f"  t={now:5.1f} s  OVCT switched on ({ev['decided_sessions']} "
                        f"running session(s) decided)")
                    phase, phase_from = "after", now
                    if on_steady is not None and "before" not in summary["steady"]:
                        log("  warning: the 'before' phase never became steady")
                elif on_steady is not None and phase not in summary["steady"] and not pending:
                    busy, last_end = _migrations(out)
                    if last_end is not None:              # settle after the last one
                        phase_from = max(phase_from, last_end - t0)
                    ready = phase_from + steady_after_s
                    if phase == "before":
                        ready = max(ready, switch_at - measure_s - 2.0)
                    if not busy and now >= ready:
                        log(f"  t={now:5.1f} s  {phase} steady: measuring")
                        summary["steady"][phase] = on_steady(tb, phase)
                        summary["steady_at_s"][phase] = now
                time.sleep(0.2)   # a scheduler tick, not a wait for state
            # let a migration that is still in flight finish
            wait_until(lambda: not _migrations(out)[0], scn.ovct.migration_timeout_s,
                       "migrations in flight to finish", interval=0.5)
        finally:
            for *_, proc in running:
                if proc.poll() is None:
                    proc.terminate()
                proc.wait(10)
            pings = {}
            for p, bg in probes:
                res = bg.stop()
                with open(os.path.join(ping_dir, f"{p.src}-{p.dst}.txt"), "w") as fh:
                    fh.write(res.raw)
                pings[f"{p.src}->{p.dst}"] = {"sent": res.transmitted, "lost": res.loss,
                                              "max_gap_ms": res.max_gap_ms,
                                              "interval_ms": p.interval_ms}
            summary["probes"] = pings
        placement = tb.hv.placement()
        tb.dump_flows(os.path.join(out, "flows"))     # the tables as the run left them
        tb.wait_fresh_stats()
        summary["final_placement"] = placement
        summary["sessions"] = []
        for i, s, path, proc in running:
            gaps = update_gaps(path)
            summary["sessions"].append({"session": i, "client": s.client, "vm": s.vm,
                                        "exit_code": proc.returncode, **gaps})
        summary["relayed_by_class"] = _relayed_by_class(tb.totals())
    summary["migrations"] = migrations_from_events(read_jsonl(os.path.join(out, "events.jsonl")))
    with open(os.path.join(out, "placement.json"), "w") as fh:
        json.dump(placement, fh, indent=1, sort_keys=True)
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1, sort_keys=True)
    return summary


def _migrations(run_dir: str) -> tuple[bool, float | None]:
    """(whether a migration has started and not ended or a decision waits
    for a free migration slot, when the last migration ended (monotonic))."""
    started, ended, waiting = set(), set(), set()
    last_end = None
    for e in read_jsonl(os.path.join(run_dir, "events.jsonl")):
        if e["type"] == "ovct_migration_start":
            started.add(e["session"])
            waiting.discard(e["vm"])
        elif e["type"] in ("ovct_migration_done", "ovct_migration_failed"):
            ended.add(e["session"])
            last_end = e["mono"] if last_end is None else max(last_end, e["mono"])
        elif e["type"] == "ovct_decision" and e["decision"] == "wait":
            waiting.add(e["vm"])
        elif e["type"] == "ovct_decision" and e["vm"] in waiting:
            waiting.discard(e["vm"])       # decided again: stay
    return bool(started - ended) or bool(waiting), last_end


def _relayed_by_class(totals: dict) -> dict:
    out: dict[str, list[int]] = {}
    for (_d, cls, _dst), (pk, by) in totals.items():
        o = out.setdefault(cls, [0, 0])
        o[0] += pk
        o[1] += by
    return {k: {"packets": v[0], "bytes": v[1]} for k, v in sorted(out.items())}
