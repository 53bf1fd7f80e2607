"""Rent or buy live, quick form (experiments/scenarios/policy-quick.yaml):
under ``breakeven`` the 20 s session keeps its VM where it is and the 180 s
session's VM moves next to its client -- decided only once the session had
lasted the predicted break-even -- and the prediction is then checked
against what the switches counted."""
import os

from controller import events as E
from experiments import analysis as A
from testbed import ROOT, scenario
from testbed.runner import run_scenario

from tests.integration.conftest import run_dir

QUICK = os.path.join(ROOT, "experiments", "scenarios", "policy-quick.yaml")


def test_breakeven_keeps_the_short_sessions_vm_and_moves_the_long_ones():
    scn = scenario.load(QUICK)
    assert scn.ovct.decision == "breakeven"
    out = run_dir("policy-quick")
    summary = run_scenario(scn, out)

    assert summary["initial_placement"] == {"v1x1": "p2x1", "v2x1": "p1x1"}
    # the long session's VM moved next to t1x1; the short one's stayed
    assert summary["final_placement"] == {"v1x1": "p1x1", "v2x1": "p1x1"}
    (mig,) = summary["migrations"]
    assert (mig["vm"], mig["src"], mig["dst"], mig["policy"]) == ("v1x1", "p2x1", "p1x1",
                                                                  "breakeven")

    # v1x1: deferred at detection, moved once its session had lasted the
    # break-even its decision predicted (on the session's measured rates);
    # v2x1's session ended before its break-even
    ses = A.session_rows([out]).set_index("vm")
    long, short = ses.loc["v1x1"], ses.loc["v2x1"]
    assert bool(long.moved) and long.rates == "measured"
    assert long.moved_at_age_s >= long.breakeven_s
    assert long.decisions >= 2                     # defer, then migrate
    assert not bool(short.moved) and short.final_decision == "defer"
    assert short.duration_s < short.breakeven_s

    # the move's prediction was checked against the switches' counts
    (check,) = E.of_type(E.read(os.path.join(out, "events.jsonl")), E.OVCT_PREDICTION_CHECK)
    assert check["vm"] == "v1x1" and check["cost_source"] == "switches"
    assert check["relayed_cost_packets"] > 0 and check["realised_saving_pps"] > 0

    # both sessions ran to their end on the same connection
    assert all(s["exit_code"] == 0 and not s["closed_early"] for s in summary["sessions"])
