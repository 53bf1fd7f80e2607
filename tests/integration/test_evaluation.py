"""The users' main job in its CI profile: run_all --quick produces every
CSV, figure, summary.md and metadata.json; OVCT lowers RTT for all four
client/VM pairs and the relayed packet rate per VNC session; the notebook
runs headless against that output."""
import json
import os

import nbformat
import pandas as pd
from nbclient import NotebookClient

from controller import events as E
from controller.rundir import RunDir
from experiments import run_all
from testbed import ROOT

from tests.integration.conftest import run_dir

FILES = ["metadata.json", "summary.md", "ping.csv", "rtt_table.csv", "rtt_explained.csv",
         "relayed.csv", "migrations.csv", "projection.csv", "phases.csv", "collateral.csv"] + [
    f"{name}.{ext}" for name in ("fig27_rtt", "fig29_relayed", "fig30_projection",
                                 "fig31_phases", "fig31_collateral") for ext in ("png", "svg")]


def test_run_all_quick_and_notebook():
    out = run_dir("evaluation")
    assert run_all.main(["--quick", "--out", out]) == 0
    missing = [f for f in FILES if not os.path.exists(os.path.join(out, f))]
    assert not missing

    meta = json.load(open(os.path.join(out, "metadata.json")))
    assert meta["git_commit"] and meta["accel"] and meta["ovs"] and meta["os_ken"]
    assert meta["qemu"] and meta["libvirt"] and meta["kernel"]

    f27 = json.load(open(os.path.join(out, "fig27.json")))
    table = pd.read_csv(os.path.join(out, "rtt_table.csv"))
    vms = set(pd.read_csv(os.path.join(out, "ping.csv")).query("target == 'vm'").dst)
    pairs = table[table.dst.isin(vms)]                   # the hosts' pairs have rows too
    assert len(pairs) == 4 and vms == {"vm1", "vm2"}
    assert (pairs.after_median_ms < pairs.before_median_ms).all(), pairs
    assert f27["pairs_lower_after"] == 4

    f29 = json.load(open(os.path.join(out, "fig29.json")))
    assert f29["rate_per_session_after_pkt_s"] < f29["rate_per_session_before_pkt_s"]

    # both conditions came from one emulation: OVCT was switched on mid-run
    events = E.read(RunDir(os.path.join(out, "raw", "trial-1")).events)
    assert [e["decided_sessions"] for e in E.of_type(events, E.OVCT_ENABLED)] == [2]

    mig = pd.read_csv(os.path.join(out, "migrations.csv"))
    assert set(mig[mig.condition == "after"].vm) == {"vm1", "vm2"}
    assert mig[mig.condition == "before"].empty           # OVCT off: nothing moved
    phases = pd.read_csv(os.path.join(out, "phases.csv"))
    assert set(phases["mode"]) == {"fast", "paper"}
    assert "PROJECTION" in open(os.path.join(out, "summary.md")).read()

    nb = nbformat.read(os.path.join(ROOT, "notebooks", "ovct_results.ipynb"), as_version=4)
    os.environ["OVCT_RESULTS"] = out
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    finally:
        del os.environ["OVCT_RESULTS"]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
