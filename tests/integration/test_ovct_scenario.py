"""OVCT end to end on the paper scenario, once per network-update mode: a
real VNC session from tcl1 to vm1 (on pm2) makes the controller move vm1 to
pm1 with no manual step; the session keeps receiving screen updates; vm1's
flows everywhere point to pm1 only; the events show the four phases."""
import json
import os
import re

import pytest

from controller import classes as C
from controller import events as E
from experiments import analysis as A
from testbed import ROOT, scenario
from testbed.runner import run_scenario

from tests.integration.conftest import run_dir

PAPER = os.path.join(ROOT, "experiments", "scenarios", "paper.yaml")
#: fast mode, pings (10 ms) lost between the source pausing and the flows
#: switching: the bound measured over repeated runs (see the README)
SWITCHOVER_LOSS_BOUND = 2
VM1 = "10.0.0.101"
#: the port towards pm1 (s2 port 4) on each switch
TOWARDS_PM1 = {"s1": 1, "s2": 4, "s3": 1}


def _short(scn: scenario.Scenario, seconds: float) -> scenario.Scenario:
    data = scn.model_dump(mode="json")
    data["sessions"] = [{**s, "duration_s": seconds} for s in data["sessions"]]
    return scenario.parse(data)


@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_paper_scenario_moves_vm1_next_to_tcl1(mode):
    scn = _short(scenario.load(PAPER), 25.0)
    out = run_dir(f"ovct-{mode}")
    summary = run_scenario(scn, out, mode=mode)

    assert summary["initial_placement"]["vm1"] == "pm2"
    assert summary["final_placement"]["vm1"] == "pm1"
    assert summary["final_placement"]["vm2"] == "pm2"       # nobody used vm2

    # the four phases, in order, for one migration
    events = E.read(os.path.join(out, "events.jsonl"))
    kinds = [e["type"] for e in events if e.get("vm") == "vm1" and e["type"].startswith("ovct_")]
    for a, b in [("ovct_detect", "ovct_decision"), ("ovct_decision", "ovct_migration_start"),
                 ("ovct_migration_start", "ovct_network_update"),
                 ("ovct_migration_start", "ovct_migration_done"),
                 ("ovct_network_update", "ovct_network_confirmed")]:
        assert kinds.index(a) < kinds.index(b), kinds
    (mig,) = summary["migrations"]
    assert mig["mode"] == mode and mig["src"] == "pm2" and mig["dst"] == "pm1"
    if mode == "paper":
        assert mig["trigger"] == "migration completed"
        assert mig["network_updated"] >= mig["migration_done"]
    else:
        assert mig["network_updated"] <= mig["migration_done"]

    # the same VNC session kept receiving screen updates, after the move too
    (sess,) = summary["sessions"]
    assert sess["exit_code"] == 0 and not sess["closed_early"] and not sess["failed"]
    assert sess["updates"] > 20
    assert sess["last_mono"] > mig["network_updated"] + 5

    # every switch's flows for vm1 lead to pm1, and no staging copy is left
    for sw, port in TOWARDS_PM1.items():
        text = open(os.path.join(out, "flows", f"{sw}.txt")).read()
        lines = [ln for ln in text.splitlines() if f"nw_dst={VM1}" in ln and "table=1," in ln]
        assert lines, sw
        for ln in lines:
            assert re.search(rf"actions=output:\"?{sw}-eth{port}\"?$|actions=output:{port}$",
                             ln.strip()), ln
            cookie = int(ln.split("cookie=")[1].split(",")[0], 16)
            assert C.parse_cookie(cookie).gen == 0, ln

    # the migration's phases came from libvirt's domain events, and the
    # probe's loss is counted in each
    for key in ("dest_started", "source_paused", "dest_resumed"):
        assert mig.get(key), key
    col = A.collateral_rows([out]).set_index("phase")
    switchover = int(col.pings_lost.get("stop_and_copy", 0)
                     + col.pings_lost.get("resume_to_switch", 0))
    if mode == "fast":
        # loss-less cut-over: packets for the stopped VM were held at the
        # controller and delivered at pm1; what remains is what was already
        # in flight to the source when it paused (0-1 pings at 10 ms)
        assert mig["released_frames"] > 0
        assert switchover <= SWITCHOVER_LOSS_BOUND, col
    probe = summary["probes"]["tcl2->vm1"]
    record = {"mode": mode, "accel": summary["accel"], "pings_lost_switchover": switchover,
              "released_frames": mig.get("released_frames"),
              "detect_to_decision_ms": round(mig["detect_to_decision_s"] * 1000, 1),
              "migration_ms": mig["elapsed_ms"], "qemu_downtime_ms": mig["downtime_ms"],
              "ping_gap_ms": round(probe["max_gap_ms"], 1), "pings_lost": probe["lost"],
              "vnc_max_update_gap_ms": round(sess["max_gap_s"] * 1000, 1)}
    with open(os.path.join(out, "measurement.json"), "w") as fh:
        json.dump(record, fh)
    print(record)
