"""OVCT across many sites, quick form of experiments/scenarios/manysite.yaml:
six sites, six real guests, six concurrent VNC sessions; migrations queued
one at a time; every VM ends next to its client, and never two migrations
ran at once."""
import os

import pandas as pd

from controller import events as E
from experiments import manysite as M
from testbed import ROOT, scenario
from testbed.runner import run_scenario

from tests.integration.conftest import run_dir

MANYSITE = os.path.join(ROOT, "experiments", "scenarios", "manysite.yaml")


def test_every_vm_moves_next_to_its_client_one_migration_at_a_time():
    data = scenario.load(MANYSITE).model_dump(mode="json")
    data["sessions"] = [{**s, "duration_s": 75.0} for s in data["sessions"]]
    scn = scenario.parse(data, "manysite quick")
    out = run_dir("manysite-quick")
    summary = run_scenario(scn, out)

    sessions = {s["vm"]: s["client"] for s in summary["sessions"]}
    assert len(sessions) == 6
    for vm, client in sessions.items():
        site = client[1:].split("x")[0]
        assert summary["initial_placement"][vm] != f"p{site}x1"
        assert summary["final_placement"][vm] == f"p{site}x1", (vm, summary["final_placement"])
    events = E.read(os.path.join(out, "events.jsonl"))
    assert not E.of_type(events, E.OVCT_MIGRATION_FAILED)
    # the slot was busy: some sessions waited for it, and no two ran at once
    assert any(e["decision"] == "wait" for e in E.of_type(events, E.OVCT_DECISION))
    mig = pd.DataFrame([{"trial": "t", "migration_start_s": m["migration_started"],
                         "migration_done_s": m["migration_done"]}
                        for m in summary["migrations"]])
    assert len(mig) == 6 and M.max_overlap(mig) == 1
    assert all(s["exit_code"] == 0 and not s["closed_early"] for s in summary["sessions"])
