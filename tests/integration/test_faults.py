"""Fault injection on the live testbed, each case during a real OVCT
migration: tcl1 opens a VNC session to vm1 (on pm2), OVCT moves vm1 to pm1,
a 10 ms ping runs tcl1 -> vm1, and the moment libvirt reports the
destination's QEMU up (pre-copy under way) the fault strikes:

* ``dest_libvirtd_killed`` -- pm1's libvirtd SIGKILLed (restarted 3 s later);
* ``link_s1_s3_cut``       -- the s1-s3 link down for 3 s (the migration
  stream's only path);
* ``controller_killed``    -- the controller SIGKILLed and restarted;
* ``switch_s2_disconnected`` -- s2 (client and destination side) loses its
  controller connection for 3 s;
* ``spoofed_rarp``         -- tcl2 sends RARPs with vm1's MAC (what QEMU
  sends when a VM resumes) for 3 s;
* ``none``                 -- no fault: the baseline row of the table.

Each must end with vm1 running on exactly one KVM host (libvirt's word),
every switch's flows for vm1 leading there (read from the switches:
:mod:`testbed.flowcheck`), vm1 answering its client, and the VNC session
receiving screen updates again (the same connection, or a new one).  Each
case adds a row to ``runs/pytest/<time>/faults.csv``: outcome, where vm1
ended, the probe's longest gap and losses, and the stale flows seen when
the migration ended and once settled.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import pytest

from controller import events as E
from experiments.common import metadata
from testbed import flowcheck
from testbed.probes import project_module
from testbed.topology import paper_topology
from testbed.wait import WaitTimeout, wait_until
from tests.integration.conftest import ARTIFACTS, finish, paper_policy, start, wait_event

VM, CLIENT, SRC, DST = "vm1", "tcl1", "pm2", "pm1"
VM_MAC = "52:54:00:00:00:01"
FAULT_S = 3.0           # how long an outage lasts (the fault itself, not a wait for state)
TABLE = os.path.join(ARTIFACTS, "faults.csv")


# -- the faults: inject(tb) -> heal(tb) ----------------------------------------------
def _libvirtd_kill(tb):
    tb.host(DST).kill_libvirtd()


def _libvirtd_restart(tb):
    tb.host(DST).start_libvirtd(os.path.basename(tb.run_dir))


def _link_down(tb):
    tb.set_link("s1", "s3", up=False)


def _link_up(tb):
    tb.set_link("s1", "s3", up=True)


def _controller_restart(tb):
    tb.restart_controller(crash=True)


def _s2_off(tb):
    tb.disconnect_switch("s2")


def _s2_on(tb):
    tb.reconnect_switch("s2")


SPOOFER: dict = {}


def _spoof(tb):
    intf = tb.host("tcl2").defaultIntf().name
    SPOOFER["proc"] = tb.host("tcl2").popen(
        project_module(tb.python, "testbed.spoof", "rarp", "--iface", intf, "--mac", VM_MAC,
                       "--count", str(int(FAULT_S / 0.1)), "--interval", "0.1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def _spoof_done(tb):
    proc = SPOOFER.pop("proc")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


CASES = {
    # case: (inject, heal, heal right after injecting instead of FAULT_S later)
    "none": (None, None, True),          # the baseline: the same migration, no fault
    "dest_libvirtd_killed": (_libvirtd_kill, _libvirtd_restart, False),
    "link_s1_s3_cut": (_link_down, _link_up, False),
    "controller_killed": (_controller_restart, None, True),
    "switch_s2_disconnected": (_s2_off, _s2_on, False),
    "spoofed_rarp": (_spoof, _spoof_done, False),
}


def _record(row: dict, accel: str) -> None:
    new = not os.path.exists(TABLE)
    os.makedirs(os.path.dirname(TABLE), exist_ok=True)
    with open(TABLE, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
    print(row)
    if new:     # what the table was measured with (versions, KVM or TCG, commit)
        with open(os.path.join(os.path.dirname(TABLE), "faults-metadata.json"), "w") as fh:
            json.dump(metadata({"command": "python -m pytest tests/integration/test_faults.py",
                                "fault_s": FAULT_S}, {"accel": accel}),
                      fh, indent=1, sort_keys=True)


@pytest.mark.parametrize("case", list(CASES))
def test_fault_during_migration_ends_with_vm_in_one_place(case, attach):
    inject, heal, at_once = CASES[case]
    tb = attach(start(paper_topology(), f"fault-{case}", kvm=True, ovct=paper_policy(),
                      stats_interval=2.0))
    session = None
    try:
        tail = E.Tail(tb.rundir.events)
        probe = tb.start_ping(CLIENT, VM, interval=0.01)
        tb.rundir.ensure(tb.rundir.thinclients)
        session_log = tb.rundir.thinclient_log(CLIENT, VM, 0)
        session = tb.start_session(CLIENT, VM, session_log, duration_s=600)
        wait_event(tail, ("ovct_migration_start",), 90, vm=VM)
        wait_event(tail, ("ovct_migration_progress",), 60, vm=VM, step="dest_started")
        t_fault = time.monotonic()
        if inject is not None:
            inject(tb)
        if heal is not None:
            if not at_once:
                time.sleep(FAULT_S)      # the outage's length: the fault itself
            heal(tb)
        t_healed = time.monotonic()
        # the migration ends one way or the other (a restarted controller
        # logs the outcome of the job it adopted)
        end = wait_event(tail, ("ovct_migration_done", "ovct_migration_failed"), 300, vm=VM)
        at_end = flowcheck.vm_problems(tb, VM)
        settled: dict = {}

        def one_place_and_flows_there() -> bool:
            hosts = flowcheck.running_on(tb.hv, VM)
            settled["hosts"], settled["problems"] = hosts, flowcheck.vm_problems(tb, VM)
            return len(hosts) == 1 and not settled["problems"]
        wait_until(one_place_and_flows_there, 90, f"{VM} in one place with its flows there",
                   describe=lambda: str(settled), interval=0.5)
        t_settled = time.monotonic()
        assert tb.ping(CLIENT, VM, count=5, interval=0.1).received >= 4

        # the VNC session: the same connection updating again, else a new one
        vnc = "resumed"

        def updated_after_heal() -> bool:
            recs = E.read(session_log)
            return any(r.get("event") == "update" and r["mono"] > t_settled for r in recs)
        try:
            wait_until(updated_after_heal, 30, "screen updates after the fault",
                       interval=0.5)
        except WaitTimeout:
            assert "RFB" in tb.rfb_greeting(VM, from_host=CLIENT)
            vnc = "reconnected"
        res = probe.stop()
        tcl2_at = tb.topology.attachment("tcl2")
        spoofed = [r for r in E.read(tb.rundir.events) if r.get("type") == "refused"
                   and (r.get("dpid"), r.get("port")) == (tb.topology.switch(tcl2_at[0]).dpid,
                                                          tcl2_at[1])]
        _record({"case": case, "outcome": end["type"].removeprefix("ovct_migration_"),
                 "vm_on": settled["hosts"][0], "vnc": vnc,
                 "probe_max_gap_ms": round(res.max_gap_ms or 0, 1),
                 "probe_lost": res.loss, "probe_sent": res.transmitted,
                 "stale_flow_problems_at_end": len(at_end),
                 "settled_after_fault_s": round(t_settled - t_fault, 2),
                 "healed_after_s": round(t_healed - t_fault, 2),
                 "refused_spoofs": len(spoofed)}, tb.accel)
        # the event log tells the truth: "done" exactly when vm1 ended at the destination
        assert (end["type"] == "ovct_migration_done") == (settled["hosts"] == [DST]), end
        if case == "controller_killed":
            restored = [r for r in E.read(tb.rundir.events) if r.get("type") == "ovct_restored"]
            assert restored, "the restarted controller did not take over"
            # it adopted the job in flight, or found it already ended
            assert restored[-1]["adopted"] == [VM] or end.get("ended_unobserved"), restored
        if case in ("none", "spoofed_rarp", "switch_s2_disconnected"):
            assert end["type"] == "ovct_migration_done"
        if case == "spoofed_rarp":
            # the spoof moved nothing: vm1 went where OVCT sent it, and the
            # controller said why it refused each claim
            assert spoofed, "no refused event for the spoofed RARPs"
    finally:
        for proc in (session, SPOOFER.pop("proc", None)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            if proc is not None:
                proc.wait(15)
        finish(tb)
